//! Metrics from predictions and targets, per task kind: classification here, and in
//! the sub-modules regression, multi-label and the dense kinds (segmentation, depth,
//! surface normals). Each is computed over a whole split (accumulators where a split is
//! seen batch by batch), in f64; each `*_reference` case of the tests is printed by
//! `benches/reference/metrics_reference.py` (scikit-learn and numpy). Which metrics are
//! lower-is-better, for Δm% and the best-epoch rule, is [`mtl_store::lower_is_better`]; each
//! kind's scores give their stored names with `named`.

pub mod dense;
pub mod multi_label;
pub mod regression;

/// Accuracy and macro-F1 of a set of predictions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// Unweighted mean of per-class F1 over the classes that occur in the labels
    /// or the predictions (scikit-learn's `f1_score(average="macro")`).
    pub macro_f1: f64,
}

/// Scores `predictions` against `labels` (same length, classes below `n_classes`).
pub fn scores(predictions: &[u32], labels: &[u32], n_classes: usize) -> Scores {
    let mut true_pos = vec![0usize; n_classes];
    let mut predicted = vec![0usize; n_classes];
    let mut actual = vec![0usize; n_classes];
    for (&p, &l) in predictions.iter().zip(labels) {
        predicted[p as usize] += 1;
        actual[l as usize] += 1;
        if p == l {
            true_pos[p as usize] += 1;
        }
    }
    let correct: usize = true_pos.iter().sum();
    let present: Vec<usize> = (0..n_classes).filter(|&c| predicted[c] + actual[c] > 0).collect();
    // F1 = 2·TP / (2·TP + FP + FN) = 2·TP / (predicted + actual).
    let f1_sum: f64 = present.iter().map(|&c| 2.0 * true_pos[c] as f64 / (predicted[c] + actual[c]) as f64).sum();
    Scores {
        accuracy: if labels.is_empty() { 0.0 } else { correct as f64 / labels.len() as f64 },
        macro_f1: if present.is_empty() { 0.0 } else { f1_sum / present.len() as f64 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_case() {
        // labels      0 0 1 1 2 2
        // predictions 0 1 1 1 0 2
        // class 0: TP 1, FP 1, FN 1 → F1 = 2/4; class 1: TP 2, FP 1, FN 0 → 4/5; class 2: TP 1, FN 1 → 2/3.
        // sklearn.metrics.f1_score([0,0,1,1,2,2], [0,1,1,1,0,2], average="macro") = 0.6555…
        let s = scores(&[0, 1, 1, 1, 0, 2], &[0, 0, 1, 1, 2, 2], 3);
        assert!((s.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((s.macro_f1 - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn classes_absent_from_both_do_not_count() {
        let s = scores(&[1, 1], &[1, 1], 5);
        assert_eq!((s.accuracy, s.macro_f1), (1.0, 1.0));
    }

    #[test]
    fn every_kind_s_metric_names_have_the_documented_direction() {
        use super::dense::{DepthScores, NormalScores, SegmentationScores};
        use super::multi_label::MultiLabelScores;
        use super::regression::RegressionScores;
        let regression = RegressionScores { mae: 0.0, rmse: 0.0, r2: 0.0 };
        let multi_label =
            MultiLabelScores { mean_average_precision: 0.0, micro_f1: 0.0, macro_f1: 0.0, subset_accuracy: 0.0 };
        let segmentation = SegmentationScores { mean_iou: 0.0, pixel_accuracy: 0.0 };
        let depth = DepthScores { abs_error: 0.0, rel_error: 0.0, deltas: [0.0; 3] };
        let normals = NormalScores { mean_angle: 0.0, median_angle: 0.0, within: [0.0; 3] };
        let names: Vec<&str> =
            [regression.named(), multi_label.named(), segmentation.named(), depth.named(), normals.named()]
                .concat()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
        let lower: Vec<&str> = names.iter().copied().filter(|name| mtl_store::lower_is_better(name)).collect();
        // The table: errors and angles are lower-is-better, everything else higher.
        assert_eq!(lower, ["mae", "rmse", "abs_err", "rel_err", "mean_angle", "median_angle"]);
        assert_eq!(names.len(), 19);
        assert!(!mtl_store::lower_is_better("accuracy") && !mtl_store::lower_is_better("macro_f1"));
    }
}
