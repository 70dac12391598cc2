//! A run's result: the metrics of one epoch, chosen by the experiment's rule.
//!
//! Every place that shows a run's result (the run summary, the line `mtl run` prints as a
//! trial ends, `mtl ls`, `show`, `compare`, `export`, the report, the `result_metrics` view
//! and `runs_wide`) reads it through [`RunRecord::result_metrics`], so they all show the
//! same number.
//!
//! - [`ResultEpoch::BestVal`] (the default): the epoch with the highest mean over the
//!   tasks of each task's selecting metric on validation ([`crate::Selection`]: accuracy
//!   for classification, R² for regression, mAP for multi-label, mIoU for segmentation, δ₁ for depth, within 11.25° for normals), the first on ties ([`RunRecord::best_epoch`], chosen
//!   once per run when it finishes). A run without validation accuracy, or one not
//!   finished, falls back to its last epoch.
//! - [`ResultEpoch::Last`]: the last epoch logged.

use std::collections::BTreeMap;

use crate::{MetricKey, ResultEpoch, RunRecord};

impl RunRecord {
    /// Whether the run's result is its best validation epoch (else its last one).
    fn uses_best_epoch(&self) -> bool {
        self.result_rule == ResultEpoch::BestVal && self.best_epoch.is_some()
    }

    /// The epoch that stands for the run under its rule ([`RunRecord::result_rule`]).
    pub fn result_epoch(&self) -> Option<u32> {
        if self.uses_best_epoch() {
            self.best_epoch
        } else {
            self.final_epoch
        }
    }

    /// The metrics of [`RunRecord::result_epoch`].
    pub fn result_metrics(&self) -> &BTreeMap<MetricKey, f64> {
        if self.uses_best_epoch() {
            &self.best_metrics
        } else {
            &self.final_metrics
        }
    }

    /// The run's best-epoch rule: its `select` param, else accuracy on every task.
    pub fn selection(&self) -> crate::Selection {
        match self.params.get(crate::Selection::PARAM) {
            Some(crate::ParamValue::Text(text)) => crate::Selection::from_param(text),
            _ => crate::Selection::default(),
        }
    }

    /// One metric of the run's result.
    pub fn result(&self, key: &MetricKey) -> Option<f64> {
        self.result_metrics().get(key).copied()
    }
}

/// Applies a command's `--epoch` to runs read from the store (each carries its
/// experiment's rule until then).
pub fn override_result_epoch(runs: &mut [RunRecord], rule: Option<ResultEpoch>) {
    if let Some(rule) = rule {
        for run in runs {
            run.result_rule = rule;
        }
    }
}

/// The SQL expression of a run's result epoch, for `r` a row of `runs` and `e` its
/// experiment (the views use it; [`RunRecord::result_epoch`] is the same rule).
pub(crate) const RESULT_EPOCH_SQL: &str = "CASE WHEN e.result_epoch = 'last' OR r.best_epoch IS NULL
    THEN (SELECT MAX(epoch) FROM metrics l WHERE l.run_id = r.id) ELSE r.best_epoch END";

#[cfg(test)]
mod tests {
    use super::*;

    fn key(split: &str) -> MetricKey {
        MetricKey { task: "a".into(), split: split.into(), metric: "accuracy".into() }
    }

    #[test]
    fn best_val_reads_the_best_epoch_and_falls_back_to_the_last() {
        let mut run = RunRecord { final_epoch: Some(5), best_epoch: Some(3), ..RunRecord::default() };
        run.final_metrics.insert(key("test"), 0.7);
        run.best_metrics.insert(key("test"), 0.9);
        assert_eq!((run.result_epoch(), run.result(&key("test"))), (Some(3), Some(0.9)));
        run.result_rule = ResultEpoch::Last;
        assert_eq!((run.result_epoch(), run.result(&key("test"))), (Some(5), Some(0.7)));
        run.result_rule = ResultEpoch::BestVal;
        run.best_epoch = None;
        assert_eq!((run.result_epoch(), run.result(&key("test"))), (Some(5), Some(0.7)));
    }

    #[test]
    fn names_round_trip() {
        for name in ResultEpoch::NAMES {
            assert_eq!(ResultEpoch::parse(name).map(ResultEpoch::name), Some(name));
        }
        assert_eq!(ResultEpoch::parse("best"), None);
    }
}
