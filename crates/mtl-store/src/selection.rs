//! Which validation metric of each task picks a run's best epoch: the one rule that the
//! store's [`RunRecord::best_epoch`](crate::RunRecord::best_epoch), early stopping and
//! reduce-on-plateau read.
//!
//! An epoch's score is the mean over tasks of each task's selecting metric on validation,
//! a lower-is-better one ([`lower_is_better`]) with its sign flipped; the best epoch has
//! the highest score, the first on ties. Runs record their selection in the param
//! [`Selection::PARAM`] (`shapes=accuracy,sum=r2`); a run without it (every run before
//! task kinds, and every all-classification run) selects by accuracy on every task.

use crate::{lower_is_better, MetricKey};

/// Each task's selecting metric (none: accuracy for every task).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    by_task: Vec<(String, String)>,
}

impl Selection {
    /// The run param that records a selection other than the default.
    pub const PARAM: &'static str = "select";

    /// `(task, metric)` for each task; all accuracy is the default.
    pub fn new(by_task: Vec<(String, String)>) -> Selection {
        if by_task.iter().all(|(_, metric)| metric == "accuracy") {
            return Selection::default();
        }
        Selection { by_task }
    }

    /// Whether every task selects by accuracy (nothing to record).
    pub fn is_default(&self) -> bool {
        self.by_task.is_empty()
    }

    /// The param's text: `task=metric` pairs joined by commas.
    pub fn to_param(&self) -> String {
        let pairs: Vec<String> = self.by_task.iter().map(|(task, metric)| format!("{task}={metric}")).collect();
        pairs.join(",")
    }

    /// Reads [`Selection::to_param`]'s text; pairs without `=` are skipped.
    pub fn from_param(text: &str) -> Selection {
        let pairs = text.split(',').filter_map(|pair| pair.split_once('=')).map(|(t, m)| (t.to_owned(), m.to_owned()));
        Selection::new(pairs.collect())
    }

    /// The metric that selects for `task`.
    pub fn metric_for(&self, task: &str) -> &str {
        self.by_task.iter().find(|(t, _)| t == task).map_or("accuracy", |(_, metric)| metric.as_str())
    }

    /// Whether `key` is a point of `split` that enters the score.
    fn selects(&self, split: &str, key: &MetricKey) -> bool {
        key.split == split
            && match self.by_task.is_empty() {
                true => key.metric == "accuracy",
                false => self.by_task.iter().any(|(t, m)| *t == key.task && *m == key.metric),
            }
    }

    /// One epoch's score from its points; `None` when none of them selects.
    pub fn score<'a>(&self, points: impl IntoIterator<Item = (&'a MetricKey, f64)>) -> Option<f64> {
        self.score_on("val", points)
    }

    /// [`Selection::score`] over the points of `split` (`test`: the same mean on the test split).
    pub fn score_on<'a>(&self, split: &str, points: impl IntoIterator<Item = (&'a MetricKey, f64)>) -> Option<f64> {
        let (mut sum, mut n) = (0f64, 0usize);
        for (key, value) in points.into_iter().filter(|(key, _)| self.selects(split, key)) {
            sum += if lower_is_better(&key.metric) { -value } else { value };
            n += 1;
        }
        (n > 0).then(|| sum / n as f64)
    }

    /// The epoch with the highest score among `epochs` (in ascending order), the first on ties.
    pub fn best_epoch<'a>(&self, epochs: impl IntoIterator<Item = (u32, Vec<(&'a MetricKey, f64)>)>) -> Option<u32> {
        let mut best: Option<(u32, f64)> = None;
        for (epoch, points) in epochs {
            if let Some(score) = self.score(points) {
                if best.is_none_or(|(_, top)| score > top) {
                    best = Some((epoch, score));
                }
            }
        }
        best.map(|(epoch, _)| epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(task: &str, split: &str, metric: &str) -> MetricKey {
        MetricKey { task: task.into(), split: split.into(), metric: metric.into() }
    }

    #[test]
    fn default_is_mean_validation_accuracy() {
        let (a, b, t) = (key("a", "val", "accuracy"), key("b", "val", "accuracy"), key("a", "test", "accuracy"));
        let selection = Selection::new(vec![("a".into(), "accuracy".into()), ("b".into(), "accuracy".into())]);
        assert!(selection.is_default());
        assert_eq!(selection.score([(&a, 0.5), (&b, 0.7), (&t, 1.0)]), Some(0.6));
        assert_eq!(selection.score([(&t, 1.0)]), None);
    }

    #[test]
    fn mixed_kinds_flip_lower_is_better_and_round_trip() {
        let selection = Selection::new(vec![("d".into(), "accuracy".into()), ("s".into(), "mae".into())]);
        assert_eq!(Selection::from_param(&selection.to_param()), selection);
        assert_eq!(selection.to_param(), "d=accuracy,s=mae");
        let (d, s, other) = (key("d", "val", "accuracy"), key("s", "val", "mae"), key("s", "val", "r2"));
        // (0.9 − 2.0) / 2; r2 does not enter.
        assert_eq!(selection.score([(&d, 0.9), (&s, 2.0), (&other, 0.5)]), Some(-0.55));
        let epochs =
            vec![(1, vec![(&d, 0.5), (&s, 3.0)]), (2, vec![(&d, 0.9), (&s, 2.0)]), (3, vec![(&d, 1.0), (&s, 2.1)])];
        // Scores −1.25, −0.55, −0.55: the first of the tie.
        assert_eq!(selection.best_epoch(epochs), Some(2));
    }
}
