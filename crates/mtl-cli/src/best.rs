//! `mtl best`: the best seed group of each experiment — the groups of `mtl compare` with its
//! default grouping, ranked by Δm% or by one metric — with every setting of its runs, n,
//! the ranking value with its 95% interval, and its run ids.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use mtl_report::compare::{compare_against, CompareSpec, Comparison, GroupRow};
use mtl_report::stats::Verdict;
use mtl_store::{ParamValue, RunId, RunRecord};
use serde_json::Value;

use crate::compare::{default_group_by, json_row};
use crate::ls::Selection;
use crate::output::{self, Cell, Format};
use crate::BadInput;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  mtl best\n  mtl best --by shapes.test.accuracy --where \"lr = 0.01\"\n  \
mtl best --experiment small --format json\n\n\
The groups are those of `mtl compare` with its default grouping (strategy, weighting, lambda; runs that \
differ in any other setting but the seed are never pooled), so `mtl best` is the best row of \
`mtl compare --sort -delta_m` (or of the metric given to --by).")]
pub struct BestArgs {
    #[command(flatten)]
    selection: Selection,
    /// What "best" means: delta_m (also delta-m), the highest Δm% against the experiment's
    /// single-task runs; or a test metric task.test.metric, by its mean over the group's
    /// seeds (the highest; the lowest for loss, error and the other lower-is-better metrics).
    #[arg(long, value_name = "METRIC", default_value = "delta_m")]
    by: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The ranking: Δm% or the mean of one metric column.
#[derive(Clone, Copy)]
enum Ranking {
    DeltaM,
    /// The index in [`Comparison::columns`], and whether lower values are better.
    Metric(usize, bool),
}

pub fn best(args: BestArgs) -> anyhow::Result<ExitCode> {
    let (store, runs, known) = args.selection.select()?;
    // The baselines are the experiment's single-task runs, whatever --where kept (as in `mtl compare`).
    let all_runs = match args.selection.filter {
        Some(_) => Some(args.selection.all_runs(&store)?),
        None => None,
    };
    let spec = CompareSpec { group_by: default_group_by(&known), ..CompareSpec::default() };
    let comparison = compare_against(&runs, all_runs.as_deref().unwrap_or(&runs), &spec);
    let ranking = ranking(&args.by, &comparison)?;

    let mut winners: Vec<&GroupRow> = Vec::new();
    let mut unranked = Vec::new();
    let experiments: BTreeSet<&str> = comparison.rows.iter().map(|r| r.experiment.as_str()).collect();
    for experiment in experiments {
        let best = comparison
            .rows
            .iter()
            .filter(|row| row.experiment == experiment)
            .filter_map(|row| Some((row, score(row, ranking)?)))
            // The first of equals (groups come in order of their values).
            .fold(None::<(&GroupRow, f64)>, |best, (row, x)| match best {
                Some((_, y)) if y >= x => best,
                _ => Some((row, x)),
            });
        match best {
            Some((row, _)) => winners.push(row),
            None => unranked.push(experiment),
        }
    }
    for experiment in &unranked {
        note!("experiment {experiment:?}: no group has {}", what_is_missing(ranking, &comparison));
    }
    if winners.is_empty() {
        let why = if comparison.rows.is_empty() {
            format!("no finished runs{}", if args.selection.filter.is_some() { " match" } else { "" })
        } else {
            format!("no group has {}", what_is_missing(ranking, &comparison))
        };
        return Err(BadInput(format!("mtl best: {why}")).into());
    }

    let by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|r| (r.id, r)).collect();
    let out = match args.format {
        Format::Json => {
            let rows: Vec<Value> =
                winners.iter().map(|row| json_best(&comparison, row, &args.by, &settings(row, &by_id))).collect();
            serde_json::to_string_pretty(&Value::Array(rows))? + "\n"
        }
        Format::Csv => csv_best(&comparison, &winners, &by_id, &args.by),
        Format::Table => {
            let blocks: Vec<String> =
                winners.iter().map(|row| table_best(&comparison, row, ranking, &settings(row, &by_id))).collect();
            blocks.join("\n")
        }
    };
    out!("{out}")?;
    Ok(ExitCode::SUCCESS)
}

fn ranking(by: &str, comparison: &Comparison) -> Result<Ranking, BadInput> {
    if by == "delta_m" || by == "delta-m" {
        return Ok(Ranking::DeltaM);
    }
    match comparison.columns.iter().position(|k| k.to_string() == by) {
        Some(i) => Ok(Ranking::Metric(i, mtl_report::delta::lower_is_better(&comparison.columns[i].metric))),
        None => {
            let mut known = vec!["delta_m".to_string()];
            known.extend(comparison.columns.iter().map(|k| k.to_string()));
            Err(BadInput(format!("--by: unknown metric {by:?}; known: {}", known.join(", "))))
        }
    }
}

/// The value ranked, higher is better (a lower-is-better metric is negated); `None` when missing.
fn score(row: &GroupRow, ranking: Ranking) -> Option<f64> {
    let x = match ranking {
        Ranking::DeltaM => row.delta_m.as_ref()?.value,
        Ranking::Metric(i, lower) => row.stats[i]?.mean * if lower { -1.0 } else { 1.0 },
    };
    (!x.is_nan()).then_some(x)
}

fn what_is_missing(ranking: Ranking, comparison: &Comparison) -> String {
    match ranking {
        Ranking::DeltaM => {
            "a Δm% (it needs single-task runs with the same settings); rank by a metric with --by task.test.metric"
                .into()
        }
        Ranking::Metric(i, _) => format!("a value of {}", comparison.columns[i]),
    }
}

/// Every setting of the group's runs (not what a run measured about itself, such as
/// `train_seconds`), with the values its runs have: one for all but the seed.
fn settings(row: &GroupRow, by_id: &BTreeMap<RunId, &RunRecord>) -> BTreeMap<String, Vec<ParamValue>> {
    let mut settings: BTreeMap<String, Vec<ParamValue>> = BTreeMap::new();
    for run in row.runs.iter().filter_map(|id| by_id.get(id)) {
        for (key, value) in &run.params {
            if mtl_report::groups::OUTCOME_PARAMS.contains(&key.as_str()) {
                continue;
            }
            let values = settings.entry(key.clone()).or_default();
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
    }
    for values in settings.values_mut() {
        values.sort_by(|a, b| match (a, b) {
            (ParamValue::Num(x), ParamValue::Num(y)) => x.total_cmp(y),
            _ => a.to_string().cmp(&b.to_string()),
        });
    }
    settings
}

/// One setting's values as text (`0, 1` for the seeds), rendered by `render`.
fn setting_text(values: &[ParamValue], render: fn(&Cell) -> String) -> String {
    values.iter().map(|v| render(&Cell::param(Some(v)))).collect::<Vec<_>>().join(", ")
}

fn verdict_words(verdict: Option<Verdict>) -> String {
    verdict.map_or(String::new(), |v| format!(" ({})", v.against_single_task()))
}

fn interval(ci95: Option<(f64, f64)>, digits: usize) -> String {
    match ci95 {
        Some((low, high)) => format!("[{low:.digits$}, {high:.digits$}]"),
        None => "[n/a: one run]".into(),
    }
}

fn table_best(
    comparison: &Comparison,
    row: &GroupRow,
    ranking: Ranking,
    settings: &BTreeMap<String, Vec<ParamValue>>,
) -> String {
    let group: Vec<String> = comparison
        .keys()
        .iter()
        .zip(&row.values)
        .map(|(k, v)| format!("{k} {}", Cell::param(v.as_ref()).table()))
        .collect();
    let ids: Vec<String> = row.runs.iter().map(|id| id.0.to_string()).collect();
    let by = match ranking {
        Ranking::DeltaM => "highest Δm% against single-task".to_string(),
        Ranking::Metric(i, true) => format!("lowest mean {}", comparison.columns[i]),
        Ranking::Metric(i, false) => format!("highest mean {}", comparison.columns[i]),
    };
    let others = comparison.rows.iter().filter(|r| r.experiment == row.experiment).count();
    let mut out = format!("experiment  {}\n", row.experiment);
    out.push_str(&format!("best        {} (by {by}, of {others} groups)\n", group.join(", ")));
    out.push_str(&format!("n           {} runs: {}\n", row.runs.len(), ids.join(", ")));
    out.push_str(&match &row.delta_m {
        Some(d) if row.baseline => format!("Δm%         {:+.2} (the single-task baseline itself)\n", d.value),
        Some(d) => format!("Δm%         {:+.2} {}{}\n", d.value, interval(d.ci95, 2), verdict_words(d.verdict)),
        None => "Δm%         - (no single-task runs with the same settings)\n".into(),
    });
    if let Ranking::Metric(i, _) = ranking {
        if let Some(s) = row.stats[i] {
            out.push_str(&format!(
                "{}  {:.4} {}{}\n",
                comparison.columns[i],
                s.mean,
                interval(s.ci95, 4),
                verdict_words(row.versus_single_task[i])
            ));
        }
    }
    let setting_rows: Vec<Vec<String>> =
        settings.iter().map(|(k, v)| vec![k.clone(), setting_text(v, Cell::table)]).collect();
    out.push_str("\nsettings\n");
    out.push_str(&output::table(&["setting".into(), "value".into()], &setting_rows));
    let metric_rows: Vec<Vec<String>> = comparison
        .columns
        .iter()
        .zip(row.stats.iter().zip(&row.versus_single_task))
        .filter_map(|(k, (s, vs))| {
            let s = (*s)?;
            let (low, high) = s.ci95.map_or(("-".into(), "-".into()), |(l, h)| (format!("{l:.4}"), format!("{h:.4}")));
            let vs = vs.map_or("-", |v| v.name());
            Some(vec![k.to_string(), format!("{:.4}", s.mean), low, high, s.n.to_string(), vs.to_string()])
        })
        .collect();
    out.push_str(&format!("\nmetrics (mean and 95% t interval over the {} runs)\n", row.runs.len()));
    let header = ["metric", "mean", "ci95_low", "ci95_high", "n", "vs single-task"].map(String::from);
    out.push_str(&output::table(&header, &metric_rows));
    out
}

/// The group as `mtl compare --format json` writes it, plus what it was ranked by and its settings.
fn json_best(comparison: &Comparison, row: &GroupRow, by: &str, settings: &BTreeMap<String, Vec<ParamValue>>) -> Value {
    let mut value = json_row(comparison, row);
    if let Value::Object(object) = &mut value {
        let by = if by == "delta-m" { "delta_m" } else { by };
        object.insert("by".into(), by.into());
        object.insert("n".into(), row.runs.len().into());
        let settings: serde_json::Map<String, Value> = settings
            .iter()
            .map(|(k, values)| {
                let cells: Vec<Value> = values.iter().map(|v| Cell::param(Some(v)).json()).collect();
                // One value as itself; several (the seeds) as a list.
                let value = match cells.as_slice() {
                    [one] => one.clone(),
                    _ => Value::Array(cells),
                };
                (k.clone(), value)
            })
            .collect();
        object.insert("settings".into(), Value::Object(settings));
    }
    value
}

/// One row per experiment: its best group's runs, settings, Δm% and metrics with their intervals.
fn csv_best(comparison: &Comparison, winners: &[&GroupRow], by_id: &BTreeMap<RunId, &RunRecord>, by: &str) -> String {
    let all_settings: Vec<BTreeMap<String, Vec<ParamValue>>> = winners.iter().map(|r| settings(r, by_id)).collect();
    let keys: BTreeSet<&String> = all_settings.iter().flat_map(|s| s.keys()).collect();
    let mut header: Vec<String> = ["experiment", "by", "n", "runs"].map(String::from).to_vec();
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend(["delta_m", "delta_m.ci95_low", "delta_m.ci95_high"].map(String::from));
    for key in &comparison.columns {
        header.extend(["mean", "ci95_low", "ci95_high"].map(|s| format!("{key}.{s}")));
    }
    let by = if by == "delta-m" { "delta_m" } else { by };
    let number = |x: Option<f64>| Cell::metric(x).csv();
    let rows: Vec<Vec<String>> = winners
        .iter()
        .zip(&all_settings)
        .map(|(row, settings)| {
            let ids: Vec<String> = row.runs.iter().map(|id| id.0.to_string()).collect();
            let mut cells = vec![row.experiment.clone(), by.to_string(), row.runs.len().to_string(), ids.join(" ")];
            cells.extend(keys.iter().map(|k| settings.get(*k).map_or(String::new(), |v| setting_text(v, Cell::csv))));
            let delta = row.delta_m.as_ref();
            cells.push(number(delta.map(|d| d.value)));
            cells.push(number(delta.and_then(|d| d.ci95).map(|c| c.0)));
            cells.push(number(delta.and_then(|d| d.ci95).map(|c| c.1)));
            for stats in &row.stats {
                cells.push(number(stats.map(|s| s.mean)));
                cells.push(number(stats.and_then(|s| s.ci95).map(|c| c.0)));
                cells.push(number(stats.and_then(|s| s.ci95).map(|c| c.1)));
            }
            cells
        })
        .collect();
    output::csv(&header, &rows)
}
