//! Classification metrics from predictions and labels.

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
}
