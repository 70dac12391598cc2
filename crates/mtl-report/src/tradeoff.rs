//! The numbers of the trade-off charts: the Pareto front of one task against
//! another, and Δm% over strategy × weighting or λ × strategy. Pure: no IO, no plotting.
//!
//! Every value is a run's test accuracy at its best validation epoch
//! ([`selected_metric`]), as in `mtl compare`.

use crate::aggregate::headline_key;
use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{MetricKey, ParamValue, RunId, RunRecord, RunStatus};

use crate::aggregate::{group_runs, seed_stats, SeedStats};
use crate::compare::{compare, selected_metric, CompareSpec, GroupRow};
use crate::groups::{is_single_task, method_label};
use crate::stats::Verdict;

/// One seed group (finished runs that differ only in their seed, [`group_runs`])
/// as a point of the Pareto chart: the means over its seeds, with their spread.
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoPoint {
    /// The group's label ([`crate::aggregate::RunGroup::label`]), which names the
    /// settings that set it apart, e.g. `hard, weighting=pcgrad` or `hard λ=0.5`.
    pub label: String,
    /// Its strategy (`single-task` for single-task runs that logged both tasks,
    /// e.g. MultiMNIST's two columns).
    pub strategy: String,
    /// Its weighting method, where the runs record one.
    pub weighting: Option<String>,
    /// Its λ, where it has one.
    pub lambda: Option<f64>,
    /// Whether its tasks are weighted equally (λ = 1 under static weighting, or `equal`).
    pub equal_weights: bool,
    /// The x task's test accuracy over the group's seeds.
    pub x: SeedStats,
    /// The y task's test accuracy over the same seeds.
    pub y: SeedStats,
    /// Whether it is on the front: no other group's means are at least as high on
    /// both tasks and higher on one.
    pub on_front: bool,
}

/// Task `x` against task `y`: every seed group as a point, and the front of their means.
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoData {
    /// The task on the x axis.
    pub x_task: String,
    /// The task on the y axis.
    pub y_task: String,
    /// The metrics on the axes, x then y: each task's headline metric on test.
    pub metrics: (String, String),
    /// Every seed group whose runs have both tasks' test accuracy, in group order.
    pub points: Vec<ParetoPoint>,
    /// The non-dominated group means (higher is better on both axes), x ascending,
    /// duplicates once. A lucky seed cannot define it: it is made of means.
    pub front: Vec<(f64, f64)>,
    /// The single-task baselines: mean test accuracy of each task's single-task runs.
    pub single_task: Option<(f64, f64)>,
}

fn text_param(run: &RunRecord, key: &str) -> Option<String> {
    match run.params.get(key) {
        Some(ParamValue::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

fn has_equal_weights(run: &RunRecord) -> bool {
    let weighting = text_param(run, "weighting");
    let lambda_one = matches!(run.params.get("lambda"), Some(ParamValue::Num(l)) if *l == 1.0);
    weighting.as_deref() == Some("equal") || (lambda_one && matches!(weighting.as_deref(), None | Some("static")))
}

/// The Pareto data of `x_task` against `y_task` over the finished `runs`: one point
/// per seed group (mean ± sample std of [`selected_metric`] over the group's runs that
/// have both tasks), the front of those means, and the single-task baselines.
pub fn pareto(runs: &[RunRecord], x_task: &str, y_task: &str) -> ParetoData {
    let (x_key, y_key) = (headline_key(runs, x_task, "test"), headline_key(runs, y_task, "test"));
    let run_by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|run| (run.id, run)).collect();
    let mut points = Vec::new();
    for group in group_runs(runs) {
        let members: Vec<&RunRecord> = group.runs.iter().filter_map(|id| run_by_id.get(id).copied()).collect();
        let pairs: Vec<(f64, f64)> = members
            .iter()
            .filter_map(|run| Some((selected_metric(run, &x_key)?, selected_metric(run, &y_key)?)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let xs: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let (Some(x), Some(y), Some(first)) = (seed_stats(&xs), seed_stats(&ys), members.first()) else { continue };
        points.push(ParetoPoint {
            label: group.label(),
            strategy: text_param(first, "strategy").unwrap_or_else(|| "unknown".into()),
            weighting: text_param(first, "weighting"),
            lambda: group.lambda,
            equal_weights: !is_single_task(first) && has_equal_weights(first),
            x,
            y,
            on_front: false,
        });
    }
    let means: Vec<(f64, f64)> = points.iter().map(|p| (p.x.mean, p.y.mean)).collect();
    let dominated = |(x, y): (f64, f64)| means.iter().any(|&(a, b)| a >= x && b >= y && (a > x || b > y));
    for point in &mut points {
        point.on_front = !dominated((point.x.mean, point.y.mean));
    }
    let mut front: Vec<(f64, f64)> = means.iter().copied().filter(|&p| !dominated(p)).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    front.dedup();
    // The baselines `mtl compare` uses (per experiment: the report draws one at a time).
    let baselines = crate::compare::baselines(runs, &[x_key.clone(), y_key.clone()]);
    let baseline = |key: &MetricKey| baselines.values().find_map(|b| b.get(key)).map(|s| s.mean);
    let single_task = baseline(&x_key).zip(baseline(&y_key));
    let metrics = (x_key.metric.clone(), y_key.metric.clone());
    ParetoData { x_task: x_task.into(), y_task: y_task.into(), metrics, points, front, single_task }
}

/// Every pair of tasks, in order: (a, b) with a before b.
pub fn task_pairs(tasks: &[String]) -> Vec<(String, String)> {
    tasks.iter().enumerate().flat_map(|(i, a)| tasks[i + 1..].iter().map(move |b| (a.clone(), b.clone()))).collect()
}

/// Δm% (see [`crate::delta`]) in a grid: one row per multi-task strategy (with the
/// settings that split it, e.g. `hard, epochs=3`), one column per weighting method or per λ.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaMGrid {
    /// What the columns are: `weighting` or `λ`.
    pub column_title: String,
    /// The strategies.
    pub rows: Vec<String>,
    /// The weighting methods or λ values.
    pub columns: Vec<String>,
    /// `cells[row][column]`, `None` where no run is.
    pub cells: Vec<Vec<Option<DeltaMCell>>>,
    /// The 95% interval of each cell's Δm%, where it has one.
    pub intervals: Vec<Vec<Option<(f64, f64)>>>,
    /// Each cell against single-task (`None`: no interval).
    pub verdicts: Vec<Vec<Option<Verdict>>>,
    /// The metrics Δm% averages over (every task's), as `mtl compare` names them.
    pub metrics: Vec<String>,
}

/// Δm% and, when the cell chose among several λ, the λ it shows.
pub type DeltaMCell = (f64, Option<f64>);

/// What the grid of `runs` compares: strategy × weighting with λ picked on validation
/// when the runs differ in weighting, else strategy × λ.
pub fn delta_m_spec(runs: &[RunRecord]) -> CompareSpec {
    let weightings: BTreeSet<String> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Done && !is_single_task(r))
        .map(|r| r.params.get("weighting").map_or("-".into(), ParamValue::to_string))
        .collect();
    if weightings.len() > 1 {
        CompareSpec { pick: Some("lambda".into()), ..CompareSpec::by(&["strategy", "weighting"]) }
    } else {
        CompareSpec::by(&["strategy", "lambda"])
    }
}

/// The grid of the finished runs, made of [`compare`] with [`delta_m_spec`], so each
/// cell is the number `mtl compare` prints for the same grouping. `None` without
/// single-task baselines or multi-task runs.
pub fn delta_m_grid(runs: &[RunRecord]) -> Option<DeltaMGrid> {
    let spec = delta_m_spec(runs);
    let by_weighting = spec.pick.is_some();
    let comparison = compare(runs, &spec);
    let text = |value: &Option<ParamValue>| value.as_ref().map_or("-".to_string(), |v| v.to_string());
    let row_label = |row: &GroupRow| {
        let split = comparison.split_by.iter().zip(&row.values[2..]);
        method_label(&text(&row.values[0]), split.filter_map(|(name, value)| Some((name.as_str(), value.as_ref()?))))
    };
    let multi_task: Vec<&GroupRow> = comparison.rows.iter().filter(|r| !r.baseline && r.delta_m.is_some()).collect();
    if multi_task.is_empty() {
        return None;
    }
    let strategies: Vec<String> = ordered(multi_task.iter().map(|r| row_label(r)));
    let mut columns: Vec<String> = Vec::new();
    for row in &multi_task {
        let column = text(&row.values[1]);
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    if by_weighting {
        columns.sort();
    } else {
        // λ ascending, "-" (no λ) last.
        columns.sort_by(|a, b| {
            let number = |t: &str| t.parse::<f64>().unwrap_or(f64::INFINITY);
            number(a).total_cmp(&number(b))
        });
    }
    let mut cells = vec![vec![None; columns.len()]; strategies.len()];
    let mut intervals = vec![vec![None; columns.len()]; strategies.len()];
    let mut verdicts = vec![vec![None; columns.len()]; strategies.len()];
    for row in multi_task {
        let r = strategies.iter().position(|s| *s == row_label(row)).expect("a row");
        let c = columns.iter().position(|c| *c == text(&row.values[1])).expect("a column");
        let delta = row.delta_m.as_ref().expect("filtered");
        let shown_lambda = match (&row.picked, row.candidates > 1) {
            (Some(ParamValue::Num(lambda)), true) => Some(*lambda),
            _ => None,
        };
        cells[r][c] = Some((delta.value, shown_lambda));
        intervals[r][c] = delta.ci95;
        verdicts[r][c] = delta.verdict;
    }
    let column_title = if by_weighting { "weighting" } else { "λ" }.to_string();
    let metrics = comparison.delta_metrics.clone();
    Some(DeltaMGrid { column_title, rows: strategies, columns, cells, intervals, verdicts, metrics })
}

/// Strategy names in [`crate::aggregate::MULTI_TASK_STRATEGY_ORDER`], unknown ones after, alphabetically.
fn ordered(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect::<BTreeSet<_>>().into_iter().collect();
    let order = crate::aggregate::MULTI_TASK_STRATEGY_ORDER;
    names.sort_by_key(|n| order.iter().position(|k| Some(*k) == n.split(',').next()).unwrap_or(order.len()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_store::RunId;

    fn run(id: i64, params: &[(&str, ParamValue)], accuracies: &[(&str, &str, f64)]) -> RunRecord {
        let best = accuracies
            .iter()
            .map(|&(task, split, v)| {
                (MetricKey { task: task.into(), split: split.into(), metric: "accuracy".into() }, v)
            })
            .collect();
        RunRecord {
            id: RunId(id),
            status: RunStatus::Done,
            params: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            best_epoch: Some(1),
            best_metrics: best,
            ..RunRecord::default()
        }
    }

    fn text(s: &str) -> ParamValue {
        ParamValue::Text(s.into())
    }

    #[test]
    fn the_pareto_front_and_markers_match_a_hand_computation() {
        let seeded = |id, strategy: &str, lambda: Option<f64>, seed: f64, accuracies: &[(&str, &str, f64)]| {
            let mut params = vec![("strategy", text(strategy)), ("seed", ParamValue::Num(seed))];
            params.extend(lambda.map(|lambda| ("lambda", ParamValue::Num(lambda))));
            run(id, &params, accuracies)
        };
        let hard =
            |id, lambda: f64, seed, a, b| seeded(id, "hard", Some(lambda), seed, &[("a", "test", a), ("b", "test", b)]);
        let runs = vec![
            // Single-task baselines: a (0.8 + 0.9)/2 = 0.85 from two runs, b 0.7 from one.
            seeded(1, "single-task", None, 0.0, &[("a", "test", 0.8)]),
            seeded(2, "single-task", None, 1.0, &[("a", "test", 0.9)]),
            seeded(3, "single-task", None, 0.0, &[("b", "test", 0.7)]),
            // λ=0.5: one lucky seed (0.9 would be on a front of single runs); the mean
            // (0.8, 0.6) is dominated by λ=1's (0.85, 0.7). Sample std of a: 0.1·√2.
            hard(4, 0.5, 0.0, 0.9, 0.6),
            hard(5, 0.5, 1.0, 0.7, 0.6),
            hard(6, 1.0, 0.0, 0.85, 0.7), // on the front, equal weights
            hard(7, 1.0, 1.0, 0.85, 0.7),
            hard(8, 2.0, 0.0, 0.8, 0.75),  // on the front (best b)
            hard(9, 3.0, 0.0, 0.8, 0.65),  // dominated by λ=2
            hard(10, 4.0, 0.0, 0.85, 0.7), // the same means as λ=1: on the front, listed once
        ];
        let data = pareto(&runs, "a", "b");
        let labels: Vec<&str> = data.points.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            ["hard λ=0.5", "hard λ=1", "hard λ=2", "hard λ=3", "hard λ=4"],
            "single-task runs with one task are no points"
        );
        let lucky = &data.points[0];
        assert!((lucky.x.mean - 0.8).abs() < 1e-12 && (lucky.x.std - 0.1 * 2f64.sqrt()).abs() < 1e-12, "{lucky:?}");
        assert_eq!((lucky.x.n, lucky.y.std, lucky.on_front), (2, 0.0, false));
        let on_front: Vec<bool> = data.points.iter().map(|p| p.on_front).collect();
        assert_eq!(on_front, [false, true, true, false, true]);
        let equal: Vec<bool> = data.points.iter().map(|p| p.equal_weights).collect();
        assert_eq!(equal, [false, true, false, false, false]);
        assert_eq!((data.points[1].strategy.as_str(), data.points[1].lambda), ("hard", Some(1.0)));
        assert_eq!(data.front, vec![(0.8, 0.75), (0.85, 0.7)]);
        let (x, y) = data.single_task.expect("baselines");
        assert!((x - 0.85).abs() < 1e-12 && (y - 0.7).abs() < 1e-12, "{x} {y}");
        assert_eq!(task_pairs(&["a".into(), "b".into(), "c".into()]).len(), 3);
    }

    #[test]
    fn the_delta_m_grid_picks_lambda_on_validation_and_reports_test() {
        let with = |id, strategy: &str, weighting: &str, lambda: f64, val: f64, test: f64| {
            run(
                id,
                &[("strategy", text(strategy)), ("weighting", text(weighting)), ("lambda", ParamValue::Num(lambda))],
                &[("a", "val", val), ("a", "test", test)],
            )
        };
        let base = run(
            1,
            &[("strategy", text("single-task")), ("weighting", text("static"))],
            &[("a", "val", 0.5), ("a", "test", 0.8)],
        );
        let runs = vec![
            base,
            // hard/static: λ=1 is better on val (0.6 vs 0.55) though worse on test: Δm (0.72 − 0.8)/0.8 = −10%.
            with(2, "hard", "static", 1.0, 0.6, 0.72),
            with(3, "hard", "static", 2.0, 0.55, 0.88),
            // hard/pcgrad: one λ, test 0.84 → +5%.
            with(4, "hard", "pcgrad", 1.0, 0.5, 0.84),
        ];
        let grid = delta_m_grid(&runs).expect("a grid");
        assert_eq!(grid.column_title, "weighting");
        assert_eq!(grid.rows, ["hard"]);
        assert_eq!(grid.columns, ["pcgrad", "static"]);
        let (pcgrad, static_) = (grid.cells[0][0].expect("pcgrad"), grid.cells[0][1].expect("static"));
        assert!((pcgrad.0 - 5.0).abs() < 1e-9 && pcgrad.1.is_none(), "{pcgrad:?}");
        assert!((static_.0 - -10.0).abs() < 1e-9 && static_.1 == Some(1.0), "{static_:?}");

        // One weighting: λ × strategy, every λ its own column.
        let grid = delta_m_grid(&runs[..3]).expect("a grid");
        assert_eq!((grid.column_title.as_str(), grid.columns.clone()), ("λ", vec!["1".to_string(), "2".into()]));
        assert!((grid.cells[0][1].expect("λ=2").0 - 10.0).abs() < 1e-9);
        assert_eq!(delta_m_grid(&runs[1..]), None, "no baselines");
    }
}
