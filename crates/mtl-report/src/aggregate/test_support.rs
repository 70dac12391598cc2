//! Runs and diagnostic rows the tests of the aggregate modules build on.

use std::collections::BTreeMap;

use mtl_store::{DiagnosticRow, MetricKey, ParamValue, RunId, RunRecord, RunStatus};

/// A done run with `strategy`, optional λ, a seed and one final test accuracy for `shapes`.
pub(super) fn run(id: i64, strategy: &str, lambda: Option<f64>, seed: f64, accuracy: f64) -> RunRecord {
    let mut params = BTreeMap::from([
        ("strategy".to_string(), ParamValue::Text(strategy.into())),
        ("seed".to_string(), ParamValue::Num(seed)),
        ("lr".to_string(), ParamValue::Num(0.001)),
    ]);
    if let Some(lambda) = lambda {
        params.insert("lambda".into(), ParamValue::Num(lambda));
    }
    RunRecord {
        id: RunId(id),
        experiment: "e".into(),
        trial_key: format!("k{id}"),
        status: RunStatus::Done,
        started_at: None,
        ended_at: None,
        error: None,
        params,
        final_epoch: Some(2),
        final_metrics: BTreeMap::from([(test_accuracy(), accuracy)]),
        ..RunRecord::default()
    }
}

pub(super) fn test_accuracy() -> MetricKey {
    MetricKey { task: "shapes".into(), split: "test".into(), metric: "accuracy".into() }
}

/// A done `strategy` run with `weighting`, optional λ and timing, and a final `shapes` test accuracy.
pub(super) fn weighted_run(
    id: i64,
    strategy: &str,
    weighting: &str,
    lambda: Option<f64>,
    seed: f64,
    timing: Option<(f64, f64)>,
    accuracy: f64,
) -> RunRecord {
    let mut record = run(id, strategy, lambda, seed, accuracy);
    record.params.insert("weighting".into(), ParamValue::Text(weighting.into()));
    if let Some((train_seconds, steps)) = timing {
        record.params.insert("train_seconds".into(), ParamValue::Num(train_seconds));
        record.params.insert("steps".into(), ParamValue::Num(steps));
    }
    record
}

pub(super) fn diagnostic(run: i64, step: u64, name: &str, task: &str, other: &str, value: f64) -> DiagnosticRow {
    let point = mtl_store::DiagnosticPoint { name: name.into(), task: task.into(), other: other.into(), value };
    DiagnosticRow { run: RunId(run), step, epoch: 1, point }
}
