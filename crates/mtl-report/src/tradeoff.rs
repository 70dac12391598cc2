//! The numbers of the trade-off charts: the Pareto front of one task against
//! another, and Δm% over strategy × weighting or λ × strategy. Pure: no IO, no plotting.
//!
//! Every value is a run's test accuracy at its best validation epoch
//! ([`selected_metric`]), as in `mtl compare`.

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::{MetricKey, ParamValue, RunRecord, RunStatus};

use crate::aggregate::{seed_stats, SINGLE_TASK_STRATEGY};
use crate::compare::{compare, compare_on, selected_metric, GroupRow};

/// What a point of the Pareto chart stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointKind {
    /// A multi-task run with unequal task weights.
    Run,
    /// A multi-task run with equal task weights (λ = 1 under static weighting, or `equal`).
    EqualWeights,
    /// A single-task run that logged both tasks (e.g. MultiMNIST's two columns).
    SingleTask,
}

/// Task `x` against task `y`: every finished run as a point, and the front.
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoData {
    /// The task on the x axis.
    pub x_task: String,
    /// The task on the y axis.
    pub y_task: String,
    /// `(x, y, kind)` of every finished run that has both tasks' test accuracy.
    pub points: Vec<(f64, f64, PointKind)>,
    /// The non-dominated points (higher is better on both axes), x ascending.
    pub front: Vec<(f64, f64)>,
    /// The single-task baselines: mean test accuracy of each task's single-task runs.
    pub single_task: Option<(f64, f64)>,
}

fn test_accuracy(task: &str) -> MetricKey {
    MetricKey { task: task.into(), split: "test".into(), metric: "accuracy".into() }
}

fn is_single_task(run: &RunRecord) -> bool {
    matches!(run.params.get("strategy"), Some(ParamValue::Text(s)) if s == SINGLE_TASK_STRATEGY)
}

fn has_equal_weights(run: &RunRecord) -> bool {
    let text = |key: &str| match run.params.get(key) {
        Some(ParamValue::Text(s)) => Some(s.as_str()),
        _ => None,
    };
    let lambda_one = matches!(run.params.get("lambda"), Some(ParamValue::Num(l)) if *l == 1.0);
    text("weighting") == Some("equal") || (lambda_one && matches!(text("weighting"), None | Some("static")))
}

/// The Pareto data of `x_task` against `y_task` over the finished `runs`.
pub fn pareto(runs: &[RunRecord], x_task: &str, y_task: &str) -> ParetoData {
    let (x_key, y_key) = (test_accuracy(x_task), test_accuracy(y_task));
    let done: Vec<&RunRecord> = runs.iter().filter(|r| r.status == RunStatus::Done).collect();
    let points: Vec<(f64, f64, PointKind)> = done
        .iter()
        .filter_map(|run| {
            let (x, y) = (selected_metric(run, &x_key)?, selected_metric(run, &y_key)?);
            let kind = if is_single_task(run) {
                PointKind::SingleTask
            } else if has_equal_weights(run) {
                PointKind::EqualWeights
            } else {
                PointKind::Run
            };
            (x.is_finite() && y.is_finite()).then_some((x, y, kind))
        })
        .collect();
    let baseline = |key: &MetricKey| {
        let values: Vec<f64> =
            done.iter().filter(|r| is_single_task(r)).filter_map(|r| selected_metric(r, key)).collect();
        seed_stats(&values).map(|s| s.mean)
    };
    let single_task = baseline(&x_key).zip(baseline(&y_key));
    ParetoData { x_task: x_task.into(), y_task: y_task.into(), front: front(&points), points, single_task }
}

/// The points no other point beats on both coordinates (≥ on both and > on one),
/// x ascending, duplicates once.
fn front(points: &[(f64, f64, PointKind)]) -> Vec<(f64, f64)> {
    let dominated = |(x, y): (f64, f64)| points.iter().any(|&(a, b, _)| a >= x && b >= y && (a > x || b > y));
    let mut front: Vec<(f64, f64)> = points.iter().map(|&(x, y, _)| (x, y)).filter(|&p| !dominated(p)).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    front.dedup();
    front
}

/// Every pair of tasks, in order: (a, b) with a before b.
pub fn task_pairs(tasks: &[String]) -> Vec<(String, String)> {
    tasks.iter().enumerate().flat_map(|(i, a)| tasks[i + 1..].iter().map(move |b| (a.clone(), b.clone()))).collect()
}

/// Δm% (see [`crate::compare`]) in a grid: one row per multi-task strategy, one
/// column per weighting method or per λ.
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
}

/// Δm% and, when the cell chose among several λ, the λ it shows.
pub type DeltaMCell = (f64, Option<f64>);

/// The grid of the finished runs: strategy × weighting when the runs differ in
/// weighting (each cell at the λ with the best Δm% on validation), else
/// strategy × λ. `None` without single-task baselines or multi-task runs.
pub fn delta_m_grid(runs: &[RunRecord]) -> Option<DeltaMGrid> {
    let keys = ["strategy".to_string(), "weighting".into(), "lambda".into()];
    let on_test = compare(runs, &keys, None);
    let on_val = compare_on(runs, &keys, None, "val");
    let text = |row: &GroupRow, i: usize| row.values[i].as_ref().map_or("-".to_string(), |v| v.to_string());
    let lambda = |row: &GroupRow| match row.values[2] {
        Some(ParamValue::Num(l)) => Some(l),
        _ => None,
    };
    let multi_task: Vec<&GroupRow> =
        on_test.rows.iter().filter(|r| text(r, 0) != SINGLE_TASK_STRATEGY && r.delta_m.is_some()).collect();
    if multi_task.is_empty() {
        return None;
    }
    let strategies: Vec<String> = ordered(multi_task.iter().map(|r| text(r, 0)));
    let weightings: BTreeSet<String> = multi_task.iter().map(|r| text(r, 1)).collect();
    let by_weighting = weightings.len() > 1;
    let columns: Vec<String> = if by_weighting {
        weightings.into_iter().collect()
    } else {
        let mut lambdas: Vec<f64> = multi_task.iter().filter_map(|r| lambda(r)).collect();
        lambdas.sort_by(f64::total_cmp);
        lambdas.dedup();
        let mut columns: Vec<String> = lambdas.iter().map(|l| l.to_string()).collect();
        if multi_task.iter().any(|r| lambda(r).is_none()) {
            columns.push("-".into());
        }
        columns
    };
    let validation_delta: BTreeMap<Vec<String>, f64> =
        on_val.rows.iter().filter_map(|r| Some(((0..3).map(|i| text(r, i)).collect(), r.delta_m?))).collect();
    let mut cells = vec![vec![None; columns.len()]; strategies.len()];
    for (row_index, strategy) in strategies.iter().enumerate() {
        for (column_index, column) in columns.iter().enumerate() {
            let candidates: Vec<&&GroupRow> = multi_task
                .iter()
                .filter(|r| &text(r, 0) == strategy)
                .filter(|r| if by_weighting { &text(r, 1) == column } else { &text(r, 2) == column })
                .collect();
            // Several λ (or several weightings under one λ): the best on validation.
            let chosen = candidates.iter().max_by(|a, b| {
                let score =
                    |r: &GroupRow| validation_delta.get(&(0..3).map(|i| text(r, i)).collect::<Vec<_>>()).copied();
                score(a).unwrap_or(f64::NEG_INFINITY).total_cmp(&score(b).unwrap_or(f64::NEG_INFINITY))
            });
            if let Some(row) = chosen {
                let shown_lambda = (by_weighting && candidates.len() > 1).then(|| lambda(row)).flatten();
                cells[row_index][column_index] = row.delta_m.map(|d| (d, shown_lambda));
            }
        }
    }
    let column_title = if by_weighting { "weighting" } else { "λ" }.to_string();
    Some(DeltaMGrid { column_title, rows: strategies, columns, cells })
}

/// Strategy names in [`crate::aggregate::MULTI_TASK_STRATEGY_ORDER`], unknown ones after, alphabetically.
fn ordered(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.collect::<BTreeSet<_>>().into_iter().collect();
    let order = crate::aggregate::MULTI_TASK_STRATEGY_ORDER;
    names.sort_by_key(|n| order.iter().position(|k| k == n).unwrap_or(order.len()));
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
        let hard = |id, lambda: f64, a, b| {
            run(
                id,
                &[("strategy", text("hard")), ("lambda", ParamValue::Num(lambda))],
                &[("a", "test", a), ("b", "test", b)],
            )
        };
        let runs = vec![
            // Single-task baselines: a (0.8 + 0.9)/2 = 0.85 from two runs, b 0.7 from one.
            run(1, &[("strategy", text("single-task"))], &[("a", "test", 0.8)]),
            run(2, &[("strategy", text("single-task"))], &[("a", "test", 0.9)]),
            run(3, &[("strategy", text("single-task"))], &[("b", "test", 0.7)]),
            hard(4, 0.5, 0.9, 0.6),  // on the front (best a)
            hard(5, 1.0, 0.85, 0.7), // on the front, equal weights
            hard(6, 2.0, 0.8, 0.75), // on the front (best b)
            hard(7, 3.0, 0.8, 0.65), // dominated by 6
            hard(8, 4.0, 0.85, 0.7), // a duplicate of 5: on the front once
        ];
        let data = pareto(&runs, "a", "b");
        assert_eq!(data.points.len(), 5, "single-task runs with one task are no points");
        assert_eq!(data.points[1], (0.85, 0.7, PointKind::EqualWeights));
        assert_eq!(data.points[0].2, PointKind::Run);
        assert_eq!(data.front, vec![(0.8, 0.75), (0.85, 0.7), (0.9, 0.6)]);
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
