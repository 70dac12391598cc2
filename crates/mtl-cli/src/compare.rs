//! `mtl compare`: groups of runs by settings, mean with its 95% interval over seeds,
//! Δm% against the single-task baselines with its interval, tests against single-task
//! and the best group, the Pareto front (see `mtl_report::compare`). The run summary
//! prints the same table.

use std::collections::BTreeSet;
use std::process::ExitCode;

pub use mtl_report::compare::default_group_by;
use mtl_report::compare::{compare_against, CompareSpec, Comparison, GroupRow};
use mtl_report::stats::{marker, Verdict};
use mtl_store::RunRecord;
use serde_json::{json, Map, Value};

use crate::ls::{check_keys, Selection};
use crate::output::{self, Cell, Format};
use crate::BadInput;

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The runs; groups never mix experiments.
    #[command(flatten)]
    selection: Selection,
    /// Comma-separated settings to group by. Runs of a group that differ in any other
    /// setting but the seed are split by it (the table says which), unless --pool.
    /// Default: those of strategy, weighting, lambda the runs have (but the --pick key).
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    group_by: Option<Vec<String>>,
    /// A setting to choose per group, best on validation (the best-epoch score: the mean
    /// over tasks of each task's selecting metric, accuracy for classification; ties: the smaller value), e.g. `--group-by strategy --pick lambda`: each
    /// strategy at its best λ, as the report's strategy table.
    #[arg(long, value_name = "KEY")]
    pick: Option<String>,
    /// Pool the runs of a group even when they differ in settings other than the seed.
    #[arg(long)]
    pool: bool,
    /// Comma-separated metrics that Δm% averages and whose first (per task) spans the
    /// Pareto front. Default: every test metric but loss.
    #[arg(long, value_name = "METRICS", value_delimiter = ',')]
    delta_metrics: Option<Vec<String>>,
    /// Sort the groups by these comma-separated columns; a leading '-' sorts descending
    /// (e.g. "-delta_m", "lambda,-shapes.test.accuracy"). Columns: the grouping keys, the
    /// --pick key, n, delta_m (Δm%) and each metric as task.split.metric (its mean);
    /// missing values go last. Default: by experiment, then the grouping keys.
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    sort: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let (store, runs, known) = args.selection.select()?;
    let group_by: Vec<String> = match &args.group_by {
        Some(keys) => {
            check_list(keys, &known, "--group-by")?;
            keys.clone()
        }
        // A picked key is chosen per group, so it is not one of the default keys.
        None => default_group_by(&known).into_iter().filter(|k| Some(k) != args.pick.as_ref()).collect(),
    };
    if let Some(key) = &args.pick {
        check_list(std::slice::from_ref(key), &known, "--pick")?;
        if group_by.contains(key) {
            return Err(BadInput(format!("--pick {key}: it is also a --group-by key; pick it or group by it")).into());
        }
    }
    if let Some(names) = &args.delta_metrics {
        let known: BTreeSet<&str> =
            runs.iter().flat_map(|r| r.result_metrics().keys().map(|k| k.metric.as_str())).collect();
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
        Some(_) => Some(args.selection.all_runs(&store)?),
        None => None,
    };
    let baseline_runs = all_runs.as_deref().unwrap_or(&runs);
    let spec = CompareSpec {
        group_by,
        pick: args.pick.clone(),
        pool: args.pool,
        delta_metrics: args.delta_metrics.clone(),
        split: None,
    };
    let mut comparison = compare_against(&runs, baseline_runs, &spec);
    if let Some(text) = &args.sort {
        sort_groups(&mut comparison, text)?;
    }
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&Value::Array(json_rows(&comparison)))? + "\n",
        Format::Csv => {
            let (header, rows) = csv_rows(&comparison);
            output::csv(&header, &rows)
        }
        Format::Table => render_table(&comparison, &runs),
    };
    out!("{out}")?;
    if comparison.rows.is_empty() && args.format == Format::Table {
        note!("(no finished runs{})", if args.selection.filter.is_some() { " match" } else { "" });
    }
    Ok(ExitCode::SUCCESS)
}

/// What a group can be sorted by: the columns of `mtl compare`.
#[derive(Clone, Copy)]
enum SortColumn {
    /// The i-th of [`Comparison::keys`].
    Value(usize),
    /// The value picked by --pick.
    Picked,
    /// The number of runs.
    N,
    /// Δm%.
    DeltaM,
    /// The mean of the i-th of [`Comparison::columns`].
    Metric(usize),
}

/// Sorts the groups by the comma-separated columns of `text` (`-` before one: descending);
/// a column no group has is bad input that names the known ones.
fn sort_groups(comparison: &mut Comparison, text: &str) -> Result<(), BadInput> {
    let keys = comparison.keys();
    let metrics: Vec<String> = comparison.columns.iter().map(|k| k.to_string()).collect();
    let mut order = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (descending, name) = match part.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, part),
        };
        let column = if let Some(i) = keys.iter().position(|k| k == name) {
            SortColumn::Value(i)
        } else if comparison.pick.as_deref() == Some(name) {
            SortColumn::Picked
        } else if name == "n" {
            SortColumn::N
        } else if name == "delta_m" || name == "delta-m" {
            SortColumn::DeltaM
        } else if let Some(i) = metrics.iter().position(|k| k == name) {
            SortColumn::Metric(i)
        } else {
            let mut known = keys.clone();
            known.extend(comparison.pick.clone());
            known.extend(["n".to_string(), "delta_m".to_string()]);
            known.extend(metrics.iter().cloned());
            return Err(BadInput(format!("--sort: unknown column {name:?}; columns: {}", known.join(", "))));
        };
        order.push((column, descending));
    }
    let number = |x: Option<f64>| x.map(mtl_store::ParamValue::Num);
    let value = |row: &GroupRow, column: SortColumn| -> Option<mtl_store::ParamValue> {
        match column {
            SortColumn::Value(i) => row.values[i].clone(),
            SortColumn::Picked => row.picked.clone(),
            SortColumn::N => number(Some(row.runs.len() as f64)),
            SortColumn::DeltaM => number(row.delta_m.as_ref().map(|d| d.value)),
            SortColumn::Metric(i) => number(row.stats[i].map(|s| s.mean)),
        }
    };
    // A stable sort: groups equal on every column keep the default order.
    comparison.rows.sort_by(|a, b| {
        order
            .iter()
            .map(|&(column, descending)| sort_order(value(a, column), value(b, column), descending))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(())
}

/// Numbers before text, either way round; a missing value (or NaN) last whichever the direction.
fn sort_order(
    a: Option<mtl_store::ParamValue>,
    b: Option<mtl_store::ParamValue>,
    descending: bool,
) -> std::cmp::Ordering {
    use mtl_store::ParamValue::{Num, Text};
    use std::cmp::Ordering;
    let present = |v: Option<mtl_store::ParamValue>| v.filter(|v| !matches!(v, Num(x) if x.is_nan()));
    let ordered = |o: Ordering| if descending { o.reverse() } else { o };
    match (present(a), present(b)) {
        (Some(Num(x)), Some(Num(y))) => ordered(x.total_cmp(&y)),
        (Some(Text(x)), Some(Text(y))) => ordered(x.cmp(&y)),
        (Some(Num(_)), Some(Text(_))) => Ordering::Less,
        (Some(Text(_)), Some(Num(_))) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn check_list(keys: &[String], known: &BTreeSet<String>, flag: &str) -> Result<(), BadInput> {
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
    check_keys(&text, positions.into_iter(), known, flag)
}

fn several_experiments(comparison: &Comparison) -> bool {
    comparison.rows.iter().any(|r| r.experiment != comparison.rows[0].experiment)
}

/// The cells naming a group, rendered by `render` (`Cell::table` or `Cell::csv`).
fn group_cells(comparison: &Comparison, row: &GroupRow, render: fn(&Cell) -> String) -> Vec<String> {
    let text = |value: &Option<mtl_store::ParamValue>| render(&Cell::param(value.as_ref()));
    let mut cells = Vec::new();
    if several_experiments(comparison) {
        cells.push(row.experiment.clone());
    }
    cells.extend(row.values.iter().map(text));
    if comparison.pick.is_some() {
        cells.push(match (row.candidates, row.picked_without_validation) {
            (0 | 1, _) => text(&row.picked),
            (n, false) => format!("{} of {n}", text(&row.picked)),
            (n, true) => format!("{} of {n} (no val)", text(&row.picked)),
        });
    }
    cells.push(row.runs.len().to_string());
    cells
}

fn group_header(comparison: &Comparison) -> Vec<String> {
    let mut header = Vec::new();
    if several_experiments(comparison) {
        header.push("experiment".to_string());
    }
    header.extend(comparison.keys());
    if let Some(key) = &comparison.pick {
        header.push(format!("{key} picked"));
    }
    header.push("n".into());
    header
}

/// The table `mtl compare` prints, with its legend; the run summary prints it too.
pub fn render_table(comparison: &Comparison, runs: &[RunRecord]) -> String {
    // Δm% and the front first: a narrow terminal drops columns from the right.
    let mut header = group_header(comparison);
    header.extend(["Δm% [95% CI]".to_string(), "vs best".into(), "pareto".into()]);
    // Each task's headline metric (its selecting one: accuracy, R², mAP), then the other Δm%
    // metrics, then its loss and the rest, so a narrow terminal keeps the headlines longest.
    let headline = |i: usize| {
        let key = &comparison.columns[i];
        key.metric == mtl_report::aggregate::headline_key(runs, &key.task, &key.split).metric
    };
    let mut order: Vec<usize> = (0..comparison.columns.len()).collect();
    order.sort_by_key(|&i| {
        let metric = &comparison.columns[i].metric;
        (!headline(i), !comparison.delta_metrics.contains(metric), i)
    });
    header.extend(order.iter().map(|&i| format!("{} {}", comparison.columns[i].task, comparison.columns[i].metric)));
    let rows: Vec<Vec<String>> = comparison
        .rows
        .iter()
        .map(|row| {
            let mut cells = group_cells(comparison, row, Cell::table);
            cells.push(match &row.delta_m {
                None => "-".into(),
                Some(d) if row.baseline => format!("{:+.2} (baseline)", d.value),
                Some(d) => match d.ci95 {
                    Some((low, high)) => format!("{:+.2} [{low:+.2}, {high:+.2}]{}", d.value, marker(d.verdict)),
                    None => format!("{:+.2} [n/a]", d.value),
                },
            });
            cells.push(row.standing.map_or("-".into(), |s| s.name().to_string()));
            cells.push(if row.pareto { "*".into() } else { String::new() });
            for (stats, verdict) in order.iter().map(|&i| (&row.stats[i], &row.versus_single_task[i])) {
                cells.push(stats.map_or("-".into(), |s| {
                    let half = s.ci95.map_or("n/a".to_string(), |(low, high)| format!("{:.4}", (high - low) / 2.0));
                    format!("{:.4} ± {half}{}", s.mean, marker(*verdict))
                }));
            }
            cells
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = output::table(&header, &rows);
    out.push_str(&legend(comparison, runs));
    out
}

fn legend(comparison: &Comparison, runs: &[RunRecord]) -> String {
    let rules: BTreeSet<&str> = runs.iter().map(|r| r.result_rule.describe()).collect();
    let mut legend = format!(
        "\nColumns: test metrics. Each run's result: {}. Values: mean ± half-width of the 95% t interval over the n runs of a group \
         (n/a: one run).\n\
         Δm%: against the experiment's single-task runs, over {}; positive = better than single-task \
         (Maninis et al. 2019); interval by first-order propagation of both sides' spread.\n\
         + better, − worse, ≈ within noise than single-task at the 5% level (Welch's t-test; for Δm%, its interval). \
         vs best: the group with the highest Δm%, tested by seed-paired t-test where seeds match, else Welch's.\n\
         pareto: * = no other group is as good on every task and better on one.\n",
        rules.into_iter().collect::<Vec<_>>().join("; "),
        comparison.delta_metrics.join(", ")
    );
    if !comparison.split_by.is_empty() {
        legend.push_str(&format!(
            "Groups are split by {}: their runs differ in it (use --pool to pool them).\n",
            comparison.split_by.join(", ")
        ));
    }
    if !comparison.pooled.is_empty() {
        legend.push_str(&format!("Pooled on request although runs differ in: {}.\n", comparison.pooled.join(", ")));
    }
    if let Some(key) = &comparison.pick {
        legend.push_str(&format!(
            "{key} picked per group: the value with the highest validation score (mean over tasks of each task's selecting metric, as for the best epoch) (\"v of k\": \
             v chosen among k values).\n"
        ));
        if comparison.rows.iter().any(|r| r.picked_without_validation) {
            legend.push_str(&format!(
                "(no val): the group logged no validation score, so nothing was chosen: the smallest {key} is shown.\n"
            ));
        }
    }
    let revisions: BTreeSet<u32> = comparison.rows.iter().flat_map(|r| r.revisions.iter().copied()).collect();
    if revisions.len() > 1 {
        legend.push_str(&format!(
            "Runs come from {} revisions of the experiment file; groups hold only runs with identical settings.\n",
            revisions.len()
        ));
    }
    legend
}

fn csv_rows(comparison: &Comparison) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = group_header(comparison);
    if !header.contains(&"experiment".to_string()) {
        header.insert(0, "experiment".into());
    }
    for key in &comparison.columns {
        header.extend(["mean", "std", "n", "ci95_low", "ci95_high", "vs_single_task"].map(|s| format!("{key}.{s}")));
    }
    header.extend(
        ["delta_m", "delta_m.ci95_low", "delta_m.ci95_high", "delta_m.vs_single_task", "vs_best", "pareto"]
            .map(String::from),
    );
    let verdict = |v: Option<Verdict>| v.map_or(String::new(), |v| v.name().to_string());
    let interval = |ci: Option<(f64, f64)>| match ci {
        Some((low, high)) => [low.to_string(), high.to_string()],
        None => [String::new(), String::new()],
    };
    let rows = comparison
        .rows
        .iter()
        .map(|row| {
            let mut cells = group_cells(comparison, row, Cell::csv);
            if !several_experiments(comparison) {
                cells.insert(0, row.experiment.clone());
            }
            for (stats, vs) in row.stats.iter().zip(&row.versus_single_task) {
                match stats {
                    Some(s) => cells.extend([s.mean.to_string(), s.std.to_string(), s.n.to_string()]),
                    None => cells.extend([String::new(), String::new(), "0".into()]),
                }
                cells.extend(interval(stats.and_then(|s| s.ci95)));
                cells.push(verdict(*vs));
            }
            let delta = row.delta_m.as_ref();
            cells.push(delta.map_or(String::new(), |d| d.value.to_string()));
            cells.extend(interval(delta.and_then(|d| d.ci95)));
            cells.push(verdict(delta.and_then(|d| d.verdict)));
            cells.push(row.standing.map_or(String::new(), |s| s.name().to_string()));
            cells.push(row.pareto.to_string());
            cells
        })
        .collect();
    (header, rows)
}

fn json_rows(comparison: &Comparison) -> Vec<Value> {
    comparison.rows.iter().map(|row| json_row(comparison, row)).collect()
}

/// One group as `mtl compare --format json` writes it (`mtl best` too).
pub fn json_row(comparison: &Comparison, row: &GroupRow) -> Value {
    let keys = comparison.keys();
    let verdict = |v: Option<Verdict>| v.map(|v| v.name());
    let group: Map<String, Value> =
        keys.iter().zip(&row.values).map(|(k, v)| (k.clone(), Cell::param(v.as_ref()).json())).collect();
    let metrics: Map<String, Value> = comparison
        .columns
        .iter()
        .zip(row.stats.iter().zip(&row.versus_single_task))
        .filter_map(|(k, (s, vs))| {
            let s = (*s)?;
            Some((
                k.to_string(),
                json!({"mean": s.mean, "std": s.std, "n": s.n, "ci95_low": s.ci95.map(|c| c.0),
                               "ci95_high": s.ci95.map(|c| c.1), "vs_single_task": verdict(*vs)}),
            ))
        })
        .collect();
    let delta = row.delta_m.as_ref();
    json!({
        "experiment": row.experiment,
        "group": group,
        "picked": comparison.pick.as_ref().map(|key| json!({"key": key, "value": Cell::param(row.picked.as_ref()).json(),
            "among": row.candidates, "on_validation": !row.picked_without_validation})),
        "baseline": row.baseline,
        "runs": row.runs,
        "revisions": row.revisions,
        "metrics": metrics,
        "delta_m": delta.map(|d| d.value),
        "delta_m.ci95_low": delta.and_then(|d| d.ci95).map(|c| c.0),
        "delta_m.ci95_high": delta.and_then(|d| d.ci95).map(|c| c.1),
        "delta_m.vs_single_task": verdict(delta.and_then(|d| d.verdict)),
        "vs_best": row.standing.map(|s| s.name()),
        "pareto": row.pareto,
        "split_by": comparison.split_by,
    })
}
