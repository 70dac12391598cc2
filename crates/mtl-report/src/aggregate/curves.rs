//! Learning curves and training diagnostics (task weights, gradient cosines)
//! averaged over each group's seeds, per epoch and per step.

use std::collections::BTreeMap;

use mtl_store::{DiagnosticRow, MetricRow, RunId};

use super::run_groups::group_index_by_run;
use super::{seed_stats, RunGroup};

/// Which curve of a task: `(split, metric)`, e.g. `("val", "loss")`.
pub type SeriesKey = (String, String);

/// Per-epoch means over a group's seeds, `(epoch, mean)` by series of one task.
pub type MeanCurves = BTreeMap<SeriesKey, Vec<(u32, f64)>>;

/// Learning curves of `task` for each group, aligned with `groups` (a group
/// without rows for the task gets empty curves, so colours can follow the
/// group's index). An epoch's mean is over the seeds that logged it.
pub fn mean_curves(groups: &[RunGroup], rows: &[MetricRow], task: &str) -> Vec<MeanCurves> {
    let group_index_by_run = group_index_by_run(groups);
    let mut values: Vec<BTreeMap<SeriesKey, BTreeMap<u32, Vec<f64>>>> = vec![BTreeMap::new(); groups.len()];
    for row in rows.iter().filter(|row| row.key.task == task) {
        let Some(&group_index) = group_index_by_run.get(&row.run) else { continue };
        let series = (row.key.split.clone(), row.key.metric.clone());
        values[group_index].entry(series).or_default().entry(row.epoch).or_default().push(row.value);
    }
    values
        .into_iter()
        .map(|by_series| {
            by_series
                .into_iter()
                .map(|(series, by_epoch)| {
                    let points = by_epoch
                        .into_iter()
                        .filter_map(|(epoch, epoch_values)| Some((epoch, seed_stats(&epoch_values)?.mean)))
                        .collect();
                    (series, points)
                })
                .collect()
        })
        .collect()
}

/// Which series of a diagnostic: `(task, other task)`, the other task empty
/// unless the diagnostic is pairwise (`grad_cosine`).
pub type DiagnosticSeries = (String, String);

/// Per-step means over a group's seeds, `(step, mean)` by series of one diagnostic.
pub type MeanDiagnostics = BTreeMap<DiagnosticSeries, Vec<(u64, f64)>>;

/// The diagnostic `name` (e.g. `weight`) of each group, aligned with
/// `groups` (a group without rows gets no series). A series' mean at a step
/// is over the group's runs that logged the series, and only steps that every
/// one of those runs logged are kept: a mean over a changing set of seeds
/// would jump where a seed stops. Non-finite values are left out of a mean as
/// in [`seed_stats`].
pub fn mean_diagnostics(groups: &[RunGroup], rows: &[DiagnosticRow], name: &str) -> Vec<MeanDiagnostics> {
    let group_index_by_run = group_index_by_run(groups);
    type ValueByStep = BTreeMap<u64, f64>;
    let mut values: Vec<BTreeMap<DiagnosticSeries, BTreeMap<RunId, ValueByStep>>> = vec![BTreeMap::new(); groups.len()];
    for row in rows.iter().filter(|row| row.point.name == name) {
        let Some(&group_index) = group_index_by_run.get(&row.run) else { continue };
        let series = (row.point.task.clone(), row.point.other.clone());
        values[group_index].entry(series).or_default().entry(row.run).or_default().insert(row.step, row.point.value);
    }
    let mean_curve = |by_run: BTreeMap<RunId, ValueByStep>| -> Vec<(u64, f64)> {
        let steps_of_first_run = by_run.values().next().into_iter().flat_map(BTreeMap::keys);
        steps_of_first_run
            .filter_map(|step| {
                let step_values: Option<Vec<f64>> = by_run.values().map(|by_step| by_step.get(step).copied()).collect();
                Some((*step, seed_stats(&step_values?)?.mean))
            })
            .collect()
    };
    values
        .into_iter()
        .map(|by_series| by_series.into_iter().map(|(series, by_run)| (series, mean_curve(by_run))).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use mtl_store::MetricKey;

    use super::*;
    use crate::aggregate::test_support::diagnostic;

    #[test]
    fn mean_curves_average_each_epoch_over_seeds() {
        let groups = vec![
            RunGroup { method: "hard".into(), lambda: Some(1.0), runs: vec![RunId(1), RunId(2)] },
            RunGroup { method: "single-task".into(), lambda: None, runs: vec![RunId(3)] },
        ];
        let row = |run: i64, epoch: u32, task: &str, split: &str, value: f64| MetricRow {
            run: RunId(run),
            epoch,
            key: MetricKey { task: task.into(), split: split.into(), metric: "loss".into() },
            value,
        };
        let rows = vec![
            row(1, 1, "shapes", "train", 2.0),
            row(1, 2, "shapes", "train", 1.0),
            row(2, 1, "shapes", "train", 3.0),
            row(2, 2, "shapes", "train", 2.0),
            row(1, 1, "shapes", "val", 2.5),
            row(2, 1, "reviews", "train", 9.0),
            row(99, 1, "shapes", "train", 9.0),
        ];
        let curves = mean_curves(&groups, &rows, "shapes");
        assert_eq!(curves.len(), 2);
        let train_loss = &curves[0][&("train".to_string(), "loss".to_string())];
        // epoch 1: (2 + 3) / 2; epoch 2: (1 + 2) / 2
        assert_eq!(train_loss, &vec![(1, 2.5), (2, 1.5)]);
        assert_eq!(curves[0][&("val".to_string(), "loss".to_string())], vec![(1, 2.5)]);
        assert!(curves[1].is_empty());
    }

    #[test]
    fn mean_diagnostics_average_steps_every_run_of_the_series_logged() {
        let groups = vec![
            RunGroup { method: "hard, weighting=pcgrad".into(), lambda: None, runs: vec![RunId(1), RunId(2)] },
            RunGroup { method: "hard, weighting=static".into(), lambda: Some(1.0), runs: vec![RunId(3)] },
        ];
        let rows = vec![
            diagnostic(1, 10, "weight", "shapes", "", 1.5),
            diagnostic(1, 20, "weight", "shapes", "", 1.0),
            diagnostic(2, 10, "weight", "shapes", "", 0.5),
            diagnostic(2, 20, "weight", "shapes", "", 2.0),
            // Only run 1 reached step 30: dropped rather than shown as run 1 alone.
            diagnostic(1, 30, "weight", "shapes", "", 9.0),
            // Only run 1 logged `reviews`: its mean is run 1's value.
            diagnostic(1, 10, "weight", "reviews", "", 0.25),
            diagnostic(1, 10, "grad_cosine", "shapes", "reviews", -0.5),
            diagnostic(2, 10, "grad_norm", "shapes", "", 7.0),
            diagnostic(99, 10, "weight", "shapes", "", 9.0),
        ];
        let weights = mean_diagnostics(&groups, &rows, "weight");
        let series = |task: &str| (task.to_string(), String::new());
        // step 10: (1.5 + 0.5) / 2 = 1; step 20: (1 + 2) / 2 = 1.5
        let expected_pcgrad =
            BTreeMap::from([(series("reviews"), vec![(10, 0.25)]), (series("shapes"), vec![(10, 1.0), (20, 1.5)])]);
        assert_eq!(weights, vec![expected_pcgrad, BTreeMap::new()]);
        let cosines = mean_diagnostics(&groups, &rows, "grad_cosine");
        let pair = ("shapes".to_string(), "reviews".to_string());
        assert_eq!(cosines, vec![BTreeMap::from([(pair, vec![(10, -0.5)])]), BTreeMap::new()]);
    }
}
