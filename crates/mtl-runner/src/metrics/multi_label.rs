//! Multi-label metrics over k binary labels, from logits (a label is predicted where its
//! logit is ≥ 0, i.e. its probability ≥ 0.5); all higher is better:
//! - **mAP**: the mean over labels of average precision, `Σ_n (R_n − R_{n−1}) P_n` over
//!   the score thresholds (scikit-learn's `average_precision_score`, tied scores one
//!   threshold), over the labels with at least one positive (a label without any has
//!   no precision-recall curve);
//! - **micro-F1**: `2·TP / (2·TP + FP + FN)` over every (example, label);
//! - **macro-F1**: the mean of per-label F1 over the labels that are positive in the
//!   targets or the predictions (as mtl-lab's classification macro-F1 skips classes
//!   absent from both);
//! - **subset accuracy**: the fraction of examples with every label right.

/// The multi-label scores of a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiLabelScores {
    /// mAP over the labels with a positive.
    pub mean_average_precision: f64,
    /// F1 over every (example, label).
    pub micro_f1: f64,
    /// Mean per-label F1 over the labels present in targets or predictions.
    pub macro_f1: f64,
    /// Examples with every label right.
    pub subset_accuracy: f64,
}

impl MultiLabelScores {
    /// The scores under their stored metric names.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("map", self.mean_average_precision),
            ("micro_f1", self.micro_f1),
            ("macro_f1", self.macro_f1),
            ("subset_accuracy", self.subset_accuracy),
        ]
    }
}

/// Scores `logits` against 0/1 `labels`, both `[n, k]` row by row; `None` without examples.
pub fn multi_label_scores(logits: &[f32], labels: &[u8], k: usize) -> Option<MultiLabelScores> {
    assert_eq!(logits.len(), labels.len(), "multi-label: logits and labels differ in length");
    let k = k.max(1);
    assert_eq!(labels.len() % k, 0, "multi-label: not a whole number of examples");
    let n = labels.len() / k;
    if n == 0 {
        return None;
    }
    let (mut true_pos, mut predicted, mut actual) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
    let mut all_right = 0;
    for (row_logits, row_labels) in logits.chunks_exact(k).zip(labels.chunks_exact(k)) {
        let mut right = true;
        for label in 0..k {
            let (guess, truth) = (row_logits[label] >= 0.0, row_labels[label] != 0);
            predicted[label] += usize::from(guess);
            actual[label] += usize::from(truth);
            true_pos[label] += usize::from(guess && truth);
            right &= guess == truth;
        }
        all_right += usize::from(right);
    }
    let f1 = |tp: usize, predicted: usize, actual: usize| 2.0 * tp as f64 / (predicted + actual) as f64;
    let (tp_all, predicted_all, actual_all): (usize, usize, usize) =
        (true_pos.iter().sum(), predicted.iter().sum(), actual.iter().sum());
    let present: Vec<usize> = (0..k).filter(|&l| predicted[l] + actual[l] > 0).collect();
    let with_positives: Vec<usize> = (0..k).filter(|&l| actual[l] > 0).collect();
    let average_precisions = with_positives.iter().map(|&label| {
        let scores: Vec<f32> = logits.iter().skip(label).step_by(k).copied().collect();
        let truths: Vec<bool> = labels.iter().skip(label).step_by(k).map(|&y| y != 0).collect();
        average_precision(&scores, &truths)
    });
    let mean =
        |values: Vec<f64>| if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 };
    Some(MultiLabelScores {
        mean_average_precision: mean(average_precisions.collect()),
        micro_f1: if predicted_all + actual_all == 0 { 0.0 } else { f1(tp_all, predicted_all, actual_all) },
        macro_f1: mean(present.iter().map(|&l| f1(true_pos[l], predicted[l], actual[l])).collect()),
        subset_accuracy: all_right as f64 / n as f64,
    })
}

/// Average precision of `scores` for the positives `truths` (at least one positive):
/// thresholds from the highest score down, tied scores taken together.
fn average_precision(scores: &[f32], truths: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Highest first; NaN scores last (total_cmp puts NaN above +inf, so reverse it there).
    order.sort_by(|&a, &b| match (scores[a].is_nan(), scores[b].is_nan()) {
        (false, false) => scores[b].total_cmp(&scores[a]),
        (nan_a, nan_b) => nan_a.cmp(&nan_b),
    });
    let positives = truths.iter().filter(|&&t| t).count() as f64;
    let (mut seen, mut hits, mut recall, mut sum) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        // One threshold: every example tied with this score.
        let score = scores[order[i]];
        while i < order.len() && (scores[order[i]] == score || (score.is_nan() && scores[order[i]].is_nan())) {
            seen += 1;
            hits += usize::from(truths[order[i]]);
            i += 1;
        }
        let new_recall = hits as f64 / positives;
        sum += (new_recall - recall) * hits as f64 / seen as f64;
        recall = new_recall;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12, "{a} vs {b}");
    }

    #[test]
    fn a_hand_computed_case() {
        // 3 examples × 2 labels. Label 0: logits 2, −1, 0.5 with truths 1, 0, 0 → predicted
        // 1, 0, 1: TP 1, FP 1, FN 0; AP: first threshold (2) recall 1 at precision 1 → 1.
        // Label 1: logits −2, 3, −0.5 with truths 1, 1, 0 → predicted 0, 1, 0: TP 1, FN 1;
        // AP: 3 → recall ½ at precision 1; −0.5 → recall ½ at ½; −2 → recall 1 at ⅔: ½ + ⅓.
        let logits = [2.0, -2.0, -1.0, 3.0, 0.5, -0.5];
        let labels = [1, 1, 0, 1, 0, 0];
        let s = multi_label_scores(&logits, &labels, 2).expect("examples");
        close(s.mean_average_precision, (1.0 + 0.5 + 1.0 / 3.0) / 2.0);
        // micro: TP 2, predicted 3, actual 3 → 4/6; macro: (2/3 + 2/3) / 2.
        close(s.micro_f1, 4.0 / 6.0);
        close(s.macro_f1, 2.0 / 3.0);
        // Rows right: row 1 (predicted 1,0 vs 1,1) no; row 2 (0,1 vs 0,1) yes; row 3 (1,0 vs 0,0) no.
        close(s.subset_accuracy, 1.0 / 3.0);
    }

    #[test]
    fn matches_scikit_learn_reference_with_ties() {
        // metrics_reference.py, "multi-label": 6 examples × 3 labels, tied logits in label 2.
        let logits = [0.9, -1.2, 0.3, -0.4, 0.8, 0.3, 1.5, 0.1, -0.7, -2.0, -0.3, 0.3, 0.2, 2.2, -0.7, -0.1, -1.0, 1.1];
        let labels = [1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1];
        let s = multi_label_scores(&logits, &labels, 3).expect("examples");
        close(s.mean_average_precision, 0.9444444444444443);
        close(s.micro_f1, 0.9);
        close(s.macro_f1, 0.9047619047619048);
        close(s.subset_accuracy, 0.6666666666666666);
    }

    #[test]
    fn labels_without_positives_leave_map_and_empty_input_gives_none() {
        // Label 1 never positive: mAP is label 0's alone (1.0).
        let s = multi_label_scores(&[1.0, -1.0, -1.0, -1.0], &[1, 0, 0, 0], 2).expect("examples");
        close(s.mean_average_precision, 1.0);
        close(s.macro_f1, 1.0);
        close(s.subset_accuracy, 1.0);
        assert_eq!(multi_label_scores(&[], &[], 3), None);
    }
}
