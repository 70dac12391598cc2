//! Regression metrics over k targets: MAE and RMSE (lower is better) and R² (higher),
//! each computed per target and averaged over the targets with equal weight, as
//! scikit-learn's `multioutput="uniform_average"` does.

/// MAE, RMSE and R² of a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegressionScores {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Coefficient of determination, 1 − SSE/SST.
    pub r2: f64,
}

impl RegressionScores {
    /// The scores under their stored metric names.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        vec![("mae", self.mae), ("rmse", self.rmse), ("r2", self.r2)]
    }
}

/// Sums per target, added batch by batch (bounded by k, not by the split).
#[derive(Clone, Debug)]
pub struct RegressionAccumulator {
    targets: usize,
    count: usize,
    /// Per target: Σ|e|, Σe², Σy, and Σ(y − shift)² with `shift` the target's first
    /// value (a shifted sum of squares keeps the variance accurate when |mean| ≫ spread).
    abs_error: Vec<f64>,
    squared_error: Vec<f64>,
    sum: Vec<f64>,
    shifted_squares: Vec<f64>,
    shift: Vec<f64>,
}

impl RegressionAccumulator {
    /// For `targets` values per example (at least 1).
    pub fn new(targets: usize) -> Self {
        let zeros = vec![0.0; targets.max(1)];
        RegressionAccumulator {
            targets: targets.max(1),
            count: 0,
            abs_error: zeros.clone(),
            squared_error: zeros.clone(),
            sum: zeros.clone(),
            shifted_squares: zeros.clone(),
            shift: zeros,
        }
    }

    /// Adds examples: `predictions` and `targets` are `[n, k]`, row by row, in original units.
    pub fn add(&mut self, predictions: &[f32], targets: &[f32]) {
        assert_eq!(predictions.len(), targets.len(), "regression: predictions and targets differ in length");
        assert_eq!(targets.len() % self.targets, 0, "regression: not a whole number of examples");
        for (prediction, target) in predictions.chunks_exact(self.targets).zip(targets.chunks_exact(self.targets)) {
            if self.count == 0 {
                self.shift.iter_mut().zip(target).for_each(|(shift, &y)| *shift = y as f64);
            }
            for t in 0..self.targets {
                let (y, error) = (target[t] as f64, prediction[t] as f64 - target[t] as f64);
                self.abs_error[t] += error.abs();
                self.squared_error[t] += error * error;
                self.sum[t] += y;
                self.shifted_squares[t] += (y - self.shift[t]).powi(2);
            }
            self.count += 1;
        }
    }

    /// The scores; `None` before any example. A target with no variance has R² 1 when
    /// predicted exactly and 0 otherwise (scikit-learn's `force_finite`).
    pub fn scores(&self) -> Option<RegressionScores> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        let (mut mae, mut rmse, mut r2) = (0.0, 0.0, 0.0);
        for t in 0..self.targets {
            mae += self.abs_error[t] / n;
            rmse += (self.squared_error[t] / n).sqrt();
            let shifted_mean = self.sum[t] / n - self.shift[t];
            let total = self.shifted_squares[t] - n * shifted_mean * shifted_mean;
            r2 += match (total > 0.0, self.squared_error[t] == 0.0) {
                (true, _) => 1.0 - self.squared_error[t] / total,
                (false, true) => 1.0,
                (false, false) => 0.0,
            };
        }
        let k = self.targets as f64;
        Some(RegressionScores { mae: mae / k, rmse: rmse / k, r2: r2 / k })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }

    #[test]
    fn one_target_by_hand() {
        // errors 1, −1, 2, 0: MAE 4/4 = 1, RMSE √(6/4); targets 1..4, mean 2.5, SST 5 → R² = 1 − 6/5.
        let mut acc = RegressionAccumulator::new(1);
        acc.add(&[2.0, 1.0], &[1.0, 2.0]);
        acc.add(&[5.0, 4.0], &[3.0, 4.0]);
        let s = acc.scores().expect("examples");
        close(s.mae, 1.0);
        close(s.rmse, 1.5f64.sqrt());
        close(s.r2, 1.0 - 6.0 / 5.0);
    }

    #[test]
    fn two_targets_match_scikit_learn_reference() {
        // metrics_reference.py, "regression": y_true and y_pred below, uniform_average.
        let targets = [3.0, -0.5, 2.0, 1.0, 7.0, 2.0, 4.5, 8.0];
        let predictions = [2.5, 0.0, 2.0, 2.0, 8.0, 1.5, 4.0, 7.0];
        let mut acc = RegressionAccumulator::new(2);
        acc.add(&predictions, &targets);
        let s = acc.scores().expect("examples");
        close(s.mae, 0.625);
        close(s.rmse, 0.7014709253689446);
        close(s.r2, 0.9171515563804);
    }

    #[test]
    fn batches_add_up_to_the_whole_and_a_constant_target_follows_scikit_learn() {
        let (predictions, targets) = ([1.0, 2.0, 2.5, 4.0, 4.0, 7.0], [1.5, 2.0, 3.0, 3.5, 4.0, 6.0]);
        let mut whole = RegressionAccumulator::new(1);
        whole.add(&predictions, &targets);
        let mut parts = RegressionAccumulator::new(1);
        parts.add(&predictions[..1], &targets[..1]);
        parts.add(&predictions[1..], &targets[1..]);
        let (a, b) = (whole.scores().expect("whole"), parts.scores().expect("parts"));
        close(a.r2, b.r2);
        close(a.rmse, b.rmse);
        let mut constant = RegressionAccumulator::new(1);
        constant.add(&[2.0, 2.0], &[2.0, 2.0]);
        assert_eq!(constant.scores().expect("examples").r2, 1.0);
        constant.add(&[3.0], &[2.0]);
        assert_eq!(constant.scores().expect("examples").r2, 0.0);
        assert_eq!(RegressionAccumulator::new(1).scores(), None);
    }

    #[test]
    fn an_offset_far_from_zero_keeps_r2_exact() {
        // y = 10⁶ + (1, 2, 3) (exact in f32), predictions off by 0.5: SST 2, SSE 0.75 → R² 0.625.
        let mut acc = RegressionAccumulator::new(1);
        acc.add(&[1e6 + 1.5, 1e6 + 2.5, 1e6 + 3.5], &[1e6 + 1.0, 1e6 + 2.0, 1e6 + 3.0]);
        assert_eq!(acc.scores().expect("examples").r2, 0.625);
    }
}
