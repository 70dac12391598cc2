//! One question, one answer: `mtl compare`, the report's strategy table (and chart) and
//! its Δm% heatmap give the same numbers for the same grouping, and none of them pools
//! runs that differ in a setting other than the seed — here one experiment name run with
//! `epochs = 2` and then with `epochs = 3`.

use std::collections::BTreeMap;

use mtl_report::aggregate::{compare_strategies, strategy_spec};
use mtl_report::compare::{compare, CompareSpec};
use mtl_report::tradeoff::{delta_m_grid, delta_m_spec};
use mtl_store::{MetricKey, ParamValue, RunId, RunRecord, RunStatus};

fn key(task: &str, split: &str) -> MetricKey {
    MetricKey { task: task.into(), split: split.into(), metric: "accuracy".into() }
}

/// A finished run whose best epoch (3) and last epoch (epochs) differ in every metric.
fn run(id: i64, strategy: &str, lambda: Option<f64>, epochs: f64, seed: f64) -> RunRecord {
    let mut params = BTreeMap::from([
        ("strategy".to_string(), ParamValue::Text(strategy.into())),
        ("weighting".to_string(), ParamValue::Text("static".into())),
        ("epochs".to_string(), ParamValue::Num(epochs)),
        ("seed".to_string(), ParamValue::Num(seed)),
        ("n_parameters".to_string(), ParamValue::Num(1000.0 + id as f64)),
    ]);
    if let Some(lambda) = lambda {
        params.insert("lambda".into(), ParamValue::Num(lambda));
    }
    // Deterministic, distinct values: each setting moves the numbers a little.
    let shift =
        0.01 * epochs + 0.003 * seed + 0.02 * lambda.unwrap_or(0.0) + if strategy == "cgc" { 0.015 } else { 0.0 };
    let mut best = BTreeMap::new();
    for (task, base) in [("shapes", 0.80), ("reviews", 0.70)] {
        best.insert(key(task, "val"), base + shift + 0.001 * (id % 3) as f64);
        best.insert(key(task, "test"), base + shift - 0.002 * (id % 2) as f64);
    }
    let last = best.iter().map(|(k, v)| (k.clone(), v - 0.05)).collect();
    RunRecord {
        id: RunId(id),
        experiment: "e".into(),
        status: RunStatus::Done,
        params,
        best_epoch: Some(3),
        best_metrics: best,
        final_epoch: Some(epochs as u32),
        final_metrics: last,
        revision: if epochs == 2.0 { 1 } else { 2 },
        ..RunRecord::default()
    }
}

fn two_revisions() -> Vec<RunRecord> {
    let mut runs = Vec::new();
    let mut id = 0;
    for epochs in [2.0, 3.0] {
        for seed in [0.0, 1.0] {
            id += 1;
            runs.push(run(id, "single-task", None, epochs, seed));
            for strategy in ["hard", "cgc"] {
                for lambda in [0.5, 1.0] {
                    id += 1;
                    runs.push(run(id, strategy, Some(lambda), epochs, seed));
                }
            }
        }
    }
    runs
}

#[test]
fn compare_and_the_strategy_table_agree_and_split_by_epochs() {
    let runs = two_revisions();
    let table = compare_strategies(&runs);
    let comparison = compare(&runs, &strategy_spec());
    assert_eq!(comparison.split_by, vec!["epochs"], "the two settings are split, not pooled");
    assert!(comparison.rows.iter().all(|row| row.runs.len() == 2), "n = 2 seeds, never 4");
    let labels: Vec<String> = table.methods().map(|m| m.label()).collect();
    assert_eq!(
        labels,
        [
            "single-task, epochs=2",
            "single-task, epochs=3",
            "hard, epochs=2 λ=1",
            "hard, epochs=3 λ=1",
            "cgc, epochs=2 λ=1",
            "cgc, epochs=3 λ=1"
        ]
    );
    // Each method of the table is a row of `mtl compare --group-by strategy --pick lambda`.
    for method in table.methods() {
        let row = comparison.rows.iter().find(|row| row.runs == method.row.runs).expect("the same group");
        assert_eq!(row, &method.row);
        for (task, stats) in table.tasks.iter().zip(&method.test_accuracy_by_task) {
            let i = comparison.columns.iter().position(|c| *c == key(task, "test")).expect("a column");
            assert_eq!(row.stats[i], *stats, "{task} of {}", method.label());
        }
    }
    // Results are each run's best-validation epoch: 3, not the last.
    let hard = &table.multi_task[0];
    let expected = [1, 2].map(|seed| 0.80 + 0.02 + 0.003 * f64::from(seed - 1) + 0.02);
    let ids = &hard.row.runs;
    assert_eq!(ids.len(), 2);
    let shapes = hard.test_accuracy_by_task[table.tasks.iter().position(|t| t == "shapes").expect("shapes")];
    let shapes = shapes.expect("shapes stats");
    let by_hand = (expected[0] - 0.002 * (ids[0].0 % 2) as f64 + expected[1] - 0.002 * (ids[1].0 % 2) as f64) / 2.0;
    assert!((shapes.mean - by_hand).abs() < 1e-12, "{} against {by_hand}", shapes.mean);
}

#[test]
fn the_heatmap_is_made_of_the_same_comparison() {
    let runs = two_revisions();
    let grid = delta_m_grid(&runs).expect("a grid");
    assert_eq!(grid.rows, ["hard, epochs=2", "hard, epochs=3", "cgc, epochs=2", "cgc, epochs=3"]);
    assert_eq!(grid.columns, ["0.5", "1"]);
    let comparison = compare(&runs, &delta_m_spec(&runs));
    let keys = comparison.keys();
    assert_eq!(keys, ["strategy", "lambda", "epochs"]);
    for row in comparison.rows.iter().filter(|r| r.values[0] != Some(ParamValue::Text("single-task".into()))) {
        let label = format!("{}, epochs={}", row.values[0].as_ref().unwrap(), row.values[2].as_ref().unwrap());
        let r = grid.rows.iter().position(|l| *l == label).expect("a grid row");
        let c = grid.columns.iter().position(|c| *c == row.values[1].as_ref().unwrap().to_string()).expect("a column");
        let delta = row.delta_m.as_ref().expect("Δm");
        assert_eq!(grid.cells[r][c].map(|cell| cell.0), Some(delta.value), "{label}");
        assert_eq!(grid.intervals[r][c], delta.ci95);
        assert_eq!(row.runs.len(), 2);
    }
    // Pooling is only on request, and then says so.
    let pooled = compare(&runs, &CompareSpec { pool: true, ..CompareSpec::by(&["strategy"]) });
    assert_eq!(pooled.pooled, vec!["epochs", "lambda"]);
    assert!(pooled.rows.iter().all(|row| row.runs.len() >= 4));
}
