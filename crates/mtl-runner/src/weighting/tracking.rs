//! Methods that look at each gradient coordinate or keep per-parameter state across steps:
//! graddrop (a random sign choice per coordinate), moco (tracked gradient estimates) and
//! excess-mtl (accumulated squared gradients). Their state is n × shared-parameter vectors in
//! f64; their update is not a fixed combination `Σ_i w_i g_i` of this step's gradients, so the
//! weights they report are described on each.

use mtl_data::Rng;

use super::linalg::softmax;
use super::{shared_gradients, Decision, StepInput, Weighter};

/// GradDrop (Chen et al. 2020, Alg. 1, lines 10–15), on the shared parameters' gradients as
/// torchjd's `GradDrop` aggregator applies it (torchjd at 162f6f6, `_graddrop.py`; LibMTL's
/// `GradDrop.py` applies it to the representation's gradient only, with the input's sign): per
/// coordinate, the positive sign purity `P = ½(1 + Σ_i g_i / Σ_i |g_i|)` and a uniform draw U;
/// task i keeps the coordinate if `P > U` and `g_i > 0`, or `P < U` and `g_i < 0`, and passes
/// `leak` of it otherwise; the update sums what the tasks keep. A coordinate where every
/// gradient is zero stays zero. Reported weights: the share of each task's squared gradient
/// norm that it kept.
pub(super) struct GradDrop {
    pub(super) leak: f64,
    pub(super) rng: Rng,
}

impl Weighter for GradDrop {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let n = grads.len();
        let (mut gradient, mut kept, mut total) = (vec![0.0f32; grads[0].len()], vec![0.0; n], vec![0.0; n]);
        for (p, update) in gradient.iter_mut().enumerate() {
            let (sum, magnitude) =
                grads.iter().fold((0.0, 0.0), |(s, m), g| (s + f64::from(g[p]), m + f64::from(g[p]).abs()));
            // The draw is taken for every coordinate, so that the stream does not depend on the values.
            let draw = self.rng.uniform();
            if magnitude == 0.0 {
                continue;
            }
            let purity = 0.5 * (1.0 + sum / magnitude);
            let mut value = 0.0;
            for (i, g) in grads.iter().enumerate() {
                let g = f64::from(g[p]);
                let keeps = (purity > draw && g > 0.0) || (purity < draw && g < 0.0);
                let share = if keeps { 1.0 } else { self.leak };
                value += share * g;
                kept[i] += share * g * g;
                total[i] += g * g;
            }
            *update = value as f32;
        }
        let weights = kept.iter().zip(&total).map(|(k, t)| if *t > 0.0 { k / t } else { 0.0 }).collect();
        Decision::SharedGradient { gradient, weights }
    }
}

/// MoCo (Fernando et al. 2023, Alg. 1), as LibMTL's `MoCo.py` (at 8b8f1d0) computes it: each
/// gradient is rescaled to `L_i · g_i/(‖g_i‖ + 1e-8)`; tracked estimates move towards them,
/// `y_i ← y_i − β_t (y_i − g_i)`; the weights take one step on the simplex by softmax,
/// `λ ← softmax(λ − γ_t (Y Yᵀ + ρI) λ)`, from λ = 1/n; the update is `Σ_i λ_i y_i`, with
/// `β_t = β/t^σ_β` and `γ_t = γ/t^σ_γ` at step t (from 1). Reported weights: λ (they weigh the
/// tracked estimates, not this step's gradients).
pub(super) struct MoCo {
    pub(super) beta: f64,
    pub(super) beta_sigma: f64,
    pub(super) gamma: f64,
    pub(super) gamma_sigma: f64,
    pub(super) rho: f64,
    pub(super) step: u64,
    pub(super) estimates: Vec<Vec<f64>>,
    pub(super) lambda: Vec<f64>,
}

impl Weighter for MoCo {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let n = grads.len();
        self.step += 1;
        let t = self.step as f64;
        let (beta, gamma) = (self.beta / t.powf(self.beta_sigma), self.gamma / t.powf(self.gamma_sigma));
        if self.estimates.is_empty() {
            self.estimates = vec![vec![0.0; grads[0].len()]; n];
            self.lambda = vec![1.0 / n as f64; n];
        }
        for ((estimate, grad), loss) in self.estimates.iter_mut().zip(grads).zip(input.losses) {
            let norm = grad.iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt();
            let scale = loss / (norm + 1e-8);
            for (y, &g) in estimate.iter_mut().zip(grad) {
                *y -= beta * (*y - scale * f64::from(g));
            }
        }
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let moved: Vec<f64> = (0..n)
            .map(|i| {
                let pull: f64 = (0..n).map(|j| dot(&self.estimates[i], &self.estimates[j]) * self.lambda[j]).sum();
                self.lambda[i] - gamma * (pull + self.rho * self.lambda[i])
            })
            .collect();
        self.lambda = softmax(&moved, 1.0);
        let mut gradient = vec![0.0f64; grads[0].len()];
        for (estimate, weight) in self.estimates.iter().zip(&self.lambda) {
            gradient.iter_mut().zip(estimate).for_each(|(u, y)| *u += weight * y);
        }
        Decision::SharedGradient {
            gradient: gradient.iter().map(|&v| v as f32).collect(),
            weights: self.lambda.clone(),
        }
    }
}

/// ExcessMTL (He et al. 2024, Alg. 1), as LibMTL's `ExcessMTL.py` (at b65c914) computes it:
/// each task accumulates its squared gradient `H_i += g_i²` (per coordinate) and estimates its
/// excess risk `e_i = Σ g_i² / √(H_i + 1e-7)`; the first step's estimates are the reference
/// `e_i⁰`; from the second step the loss weights move multiplicatively,
/// `w_i ← w_i · exp(η e_i/e_i⁰)`, renormalised to sum to n (from w = 1). A task whose reference
/// is zero (a zero first gradient) keeps a ratio of 0, where the official code would divide by 0.
pub(super) struct ExcessMtl {
    pub(super) step_size: f64,
    pub(super) squared_sums: Vec<Vec<f64>>,
    pub(super) reference: Option<Vec<f64>>,
    pub(super) weights: Vec<f64>,
}

impl Weighter for ExcessMtl {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let n = grads.len();
        if self.squared_sums.is_empty() {
            self.squared_sums = vec![vec![0.0; grads[0].len()]; n];
            self.weights = vec![1.0; n];
        }
        let mut excess = vec![0.0; n];
        for ((sums, grad), e) in self.squared_sums.iter_mut().zip(grads).zip(&mut excess) {
            for (h, &g) in sums.iter_mut().zip(grad) {
                let g = f64::from(g);
                *h += g * g;
                *e += g * g / (*h + 1e-7).sqrt();
            }
        }
        match &self.reference {
            None => self.reference = Some(excess),
            Some(reference) => {
                for ((w, e), r) in self.weights.iter_mut().zip(&excess).zip(reference) {
                    let ratio = if *r > 0.0 { e / r } else { 0.0 };
                    *w *= (self.step_size * ratio).exp();
                }
                let total: f64 = self.weights.iter().sum();
                self.weights.iter_mut().for_each(|w| *w *= n as f64 / total);
            }
        }
        Decision::LossWeights(self.weights.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::tests::{assert_close, check_shared, loss_weights};
    use crate::weighting::Method;

    fn shared(decision: Decision) -> (Vec<f64>, Vec<f64>) {
        match decision {
            Decision::SharedGradient { gradient, weights } => {
                (gradient.iter().map(|&g| f64::from(g)).collect(), weights)
            }
            other => panic!("expected a shared gradient, got {other:?}"),
        }
    }

    fn graddrop_step(leak: f64, grads: &[Vec<f32>], seed: u64) -> (Vec<f64>, Vec<f64>) {
        let method = Method::default_for("graddrop").unwrap().with(&[("graddrop_leak", leak)]).unwrap();
        let input = StepInput { losses: &vec![1.0; grads.len()], static_weights: &[], shared_gradients: Some(grads) };
        shared(method.start(grads.len(), seed).step(&input))
    }

    #[test]
    fn graddrop_keeps_coordinates_whose_signs_agree() {
        // Purity 1 (all positive) keeps the positive values, purity 0 the negative ones: the sum.
        let grads = vec![vec![1.0f32, -2.0, 0.0], vec![3.0, -1.0, 0.0]];
        let (gradient, weights) = graddrop_step(0.0, &grads, 1);
        assert_close(&gradient, &[4.0, -3.0, 0.0], 0.0, "graddrop agreeing");
        assert_close(&weights, &[1.0, 1.0], 0.0, "graddrop agreeing weights");
    }

    #[test]
    fn graddrop_keeps_the_positive_side_with_the_purity_as_probability() {
        // Each coordinate (3, −1): P = ½(1 + 2/4) = ¾, so the update is 3 with probability ¾ and
        // −1 otherwise; over 4,000 coordinates the share of 3s is ¾ within sampling error.
        let coordinates = 4000;
        let grads = vec![vec![3.0f32; coordinates], vec![-1.0; coordinates]];
        let (gradient, weights) = graddrop_step(0.0, &grads, 2);
        assert!(gradient.iter().all(|&g| g == 3.0 || g == -1.0));
        let positive = gradient.iter().filter(|&&g| g == 3.0).count() as f64 / coordinates as f64;
        assert!((positive - 0.75).abs() < 0.03, "{positive}");
        assert_close(&weights, &[positive, 1.0 - positive], 1e-12, "graddrop weights");
        // leak 1 passes everything: the plain sum; leak ½ halves what is dropped.
        let (all, _) = graddrop_step(1.0, &grads, 2);
        assert!(all.iter().all(|&g| g == 2.0));
        let (half, _) = graddrop_step(0.5, &grads, 2);
        for (h, g) in half.iter().zip(&gradient) {
            assert_eq!(*h, if *g == 3.0 { 2.5 } else { 0.5 });
        }
    }

    #[test]
    fn moco_first_step_by_hand() {
        // g = (1, 0), (0, 2), L = (2, 1): normalised and scaled, (2, 0) and (0, 1) (to 1e-8);
        // y = β₁·those = (1, 0), (0, ½). YYᵀλ₀ = (½, ⅛) with λ₀ = ½: λ = softmax(½ − 0.1·(½, ⅛))
        // = softmax(0.45, 0.4875); the update λ₁y₁ + λ₂y₂ = (λ₁, ½λ₂).
        let l2 = 1.0 / (1.0 + (-0.0375f64).exp());
        let l1 = 1.0 - l2;
        let (g1, g2): (&[f32], &[f32]) = (&[1.0, 0.0], &[0.0, 2.0]);
        check_shared(
            Method::default_for("moco").unwrap(),
            &[&[(2.0, g1), (1.0, g2)]],
            &[l1, 0.5 * l2],
            &[l1, l2],
            1e-7,
        );
        // A second step with the same gradients: β₂ = ½/√2 moves y a further share of the way.
        let beta = 0.5 / 2f64.sqrt();
        let (y1, y2) = (1.0 + beta * (2.0 - 1.0), 0.5 + beta * (1.0 - 0.5));
        let gamma = 0.1 / 2f64.sqrt();
        let moved = [l1 - gamma * y1 * y1 * l1, l2 - gamma * y2 * y2 * l2];
        let total = moved[0].exp() + moved[1].exp();
        let lambda = [moved[0].exp() / total, moved[1].exp() / total];
        let step = [(2.0, g1), (1.0, g2)];
        check_shared(
            Method::default_for("moco").unwrap(),
            &[&step, &step],
            &[lambda[0] * y1, lambda[1] * y2],
            &lambda,
            1e-7,
        );
    }

    #[test]
    fn excess_mtl_weights_by_hand() {
        // Step 1: g = (2), (1): H = (4, 1), e⁰ = (4/√4, 1/√1) = (2, 1); weights stay 1.
        // Step 2: g = (2), (3): H = (8, 10), e = (4/√8, 9/√10); ratios (e/e⁰) = (√2/2, 9/√10);
        // w ∝ exp(0.01·ratio), summing to 2.
        let mut weighter = Method::default_for("excess-mtl").unwrap().start(2, 0);
        let mut step = |a: f32, b: f32| {
            let grads = vec![vec![a], vec![b]];
            loss_weights(weighter.step(&StepInput {
                losses: &[1.0, 1.0],
                static_weights: &[],
                shared_gradients: Some(&grads),
            }))
        };
        assert_close(&step(2.0, 1.0), &[1.0, 1.0], 0.0, "excess-mtl step 1");
        let (r1, r2) = (2f64.sqrt() / 2.0, 9.0 / 10f64.sqrt());
        let (w1, w2) = ((0.01 * r1).exp(), (0.01 * r2).exp());
        let want = [2.0 * w1 / (w1 + w2), 2.0 * w2 / (w1 + w2)];
        assert_close(&step(2.0, 3.0), &want, 1e-9, "excess-mtl step 2");
    }
}
