//! `mtl compare`: groups of runs by settings, mean ± std over seeds, Δm% against
//! the single-task baselines, the Pareto front (see `mtl_report::compare`).

use std::process::ExitCode;

use std::collections::BTreeSet;

use mtl_report::compare::{compare_against, Comparison};
use serde_json::{json, Map, Value};

use crate::ls::{check_keys, Selection};
use crate::output::{self, Format};
use crate::BadInput;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The runs; groups never mix experiments.
    #[command(flatten)]
    selection: Selection,
    /// Comma-separated settings to group by; runs that differ only in other settings
    /// (the seed) are aggregated. Default: those of strategy, weighting, lambda the runs have.
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    group_by: Option<Vec<String>>,
    /// Comma-separated metrics that Δm% averages and whose first (per task) spans the
    /// Pareto front. Default: every test metric but loss.
    #[arg(long, value_name = "METRICS", value_delimiter = ',')]
    delta_metrics: Option<Vec<String>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let (store, runs, known) = args.selection.select()?;
    let group_by: Vec<String> = match &args.group_by {
        Some(keys) => {
            let text = keys.join(",");
            let mut offset = 0;
            let positions: Vec<(&str, usize)> = keys
                .iter()
                .map(|k| {
                    let at = offset;
                    offset += k.len() + 1;
                    (k.as_str(), at)
                })
                .collect();
            check_keys(&text, positions.into_iter(), &known, "--group-by")?;
            keys.clone()
        }
        None => {
            ["strategy", "weighting", "lambda"].iter().filter(|k| known.contains(**k)).map(|k| k.to_string()).collect()
        }
    };
    if let Some(names) = &args.delta_metrics {
        let known: BTreeSet<&str> =
            runs.iter().flat_map(|r| r.final_metrics.keys().map(|k| k.metric.as_str())).collect();
        if let Some(unknown) = names.iter().find(|n| !known.contains(n.as_str())) {
            let list: Vec<&str> = known.into_iter().collect();
            return Err(BadInput(format!(
                "--delta-metrics: no run has a metric {unknown:?}; metrics: {}",
                list.join(", ")
            ))
            .into());
        }
    }
    // The baselines are the experiment's single-task runs, whatever --where kept.
    let all_runs = match args.selection.filter {
        Some(_) => Some(store.runs(args.selection.experiment.as_deref())?),
        None => None,
    };
    let baseline_runs = all_runs.as_deref().unwrap_or(&runs);
    let comparison = compare_against(&runs, baseline_runs, &group_by, args.delta_metrics.as_deref(), "test");
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&Value::Array(json_rows(&comparison)))? + "\n",
        Format::Csv => {
            let (header, rows) = csv_rows(&comparison);
            output::csv(&header, &rows)
        }
        Format::Table => {
            let (header, rows) = table_rows(&comparison);
            let mut out = output::table(&header, &rows);
            if !comparison.rows.is_empty() {
                out.push_str(&legend(&comparison));
            }
            out
        }
    };
    out!("{out}")?;
    if comparison.rows.is_empty() && args.format == Format::Table {
        note!("(no finished runs{})", if args.selection.filter.is_some() { " match" } else { "" });
    }
    Ok(ExitCode::SUCCESS)
}

fn several_experiments(comparison: &Comparison) -> bool {
    comparison.rows.iter().any(|r| r.experiment != comparison.rows[0].experiment)
}

fn group_cells(comparison: &Comparison, row: &mtl_report::compare::GroupRow) -> Vec<String> {
    let mut cells = Vec::new();
    if several_experiments(comparison) {
        cells.push(row.experiment.clone());
    }
    cells.extend(row.values.iter().map(|v| v.as_ref().map_or("-".into(), |v| v.to_string())));
    cells.push(row.runs.len().to_string());
    cells
}

fn group_header(comparison: &Comparison) -> Vec<String> {
    let mut header = Vec::new();
    if several_experiments(comparison) {
        header.push("experiment".to_string());
    }
    header.extend(comparison.group_by.iter().cloned());
    header.push("n".into());
    header
}

fn table_rows(comparison: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    // Δm% and the front first: a narrow terminal drops columns from the right.
    let mut header = group_header(comparison);
    header.extend(["Δm%".to_string(), "pareto".into()]);
    header.extend(comparison.columns.iter().map(|k| format!("{} {}", k.task, k.metric)));
    let rows = comparison
        .rows
        .iter()
        .map(|row| {
            let mut cells = group_cells(comparison, row);
            cells.push(row.delta_m.map_or("-".into(), |d| format!("{d:+.2}")));
            cells.push(if row.pareto { "*".into() } else { String::new() });
            cells.extend(row.stats.iter().map(|s| s.map_or("-".into(), |s| format!("{:.4} ± {:.4}", s.mean, s.std))));
            cells
        })
        .collect();
    (header, rows)
}

fn legend(comparison: &Comparison) -> String {
    format!(
        "\nTest metrics at each run's best validation epoch, mean ± sample std over the n runs of a group.\n\
         Δm%: against the single-task runs of the same experiment, over {}; positive = better than single-task \
         (Maninis et al. 2019). pareto: * = no other group is as good on every task and better on one.\n",
        comparison.delta_metrics.join(", ")
    )
}

fn csv_rows(comparison: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = group_header(comparison);
    if !header.contains(&"experiment".to_string()) {
        header.insert(0, "experiment".into());
    }
    for key in &comparison.columns {
        header.extend(["mean", "std", "n"].map(|s| format!("{key}.{s}")));
    }
    header.extend(["delta_m_percent".to_string(), "pareto".into()]);
    let rows = comparison
        .rows
        .iter()
        .map(|row| {
            let mut cells = group_cells(comparison, row);
            if !several_experiments(comparison) {
                cells.insert(0, row.experiment.clone());
            }
            for stats in &row.stats {
                match stats {
                    Some(s) => cells.extend([s.mean.to_string(), s.std.to_string(), s.n.to_string()]),
                    None => cells.extend([String::new(), String::new(), "0".into()]),
                }
            }
            cells.push(row.delta_m.map_or(String::new(), |d| d.to_string()));
            cells.push(row.pareto.to_string());
            cells
        })
        .collect();
    (header, rows)
}

fn json_rows(comparison: &Comparison) -> Vec<Value> {
    comparison
        .rows
        .iter()
        .map(|row| {
            let group: Map<String, Value> = comparison
                .group_by
                .iter()
                .zip(&row.values)
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
                .collect();
            let metrics: Map<String, Value> = comparison
                .columns
                .iter()
                .zip(&row.stats)
                .filter_map(|(k, s)| s.map(|s| (k.to_string(), json!({"mean": s.mean, "std": s.std, "n": s.n}))))
                .collect();
            json!({
                "experiment": row.experiment,
                "group": group,
                "runs": row.runs,
                "metrics": metrics,
                "delta_m_percent": row.delta_m,
                "pareto": row.pareto,
            })
        })
        .collect()
}
