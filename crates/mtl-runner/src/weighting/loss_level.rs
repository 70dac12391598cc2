//! Methods that only reweigh the losses: static, equal, uncertainty, dwa, rlw, gls, famo, stch —
//! and gradnorm, which looks at gradient norms but still returns loss weights.

use mtl_data::Rng;

use super::linalg::{softmax, Adam};
use super::{shared_gradients, Decision, StepInput, Weighter};

/// Learning rate of uncertainty weighting's log-variances. Kendall et al. train them with the
/// network's optimiser; we follow the code of Nash-MTL (AvivNavon/nash-mtl cce18403) and FAMO
/// (Cranial-XIX/FAMO 0a6ad06), which give the weighting method's parameters an Adam parameter
/// group of their own at `--method-params-lr` = 0.025 (`experiments/utils.py` in both), so the
/// rate does not change with the trial's `lr`.
pub(super) const UNCERTAINTY_LR: f64 = 0.025;

/// Losses are clamped below at this value where a method divides by a loss or takes its log
/// (the 1e-8 of `log(losses + 1e-8)` in LibMTL's `DB_MTL.py` at 4336804 and of
/// `D = losses - min_losses + 1e-8` in FAMO's `famo.py` at 0a6ad06).
const LOSS_FLOOR: f64 = 1e-8;

/// `static` and `equal`: fixed weights.
pub(super) struct Fixed {
    /// `None`: the caller's static weights; `Some`: these.
    pub(super) weights: Option<Vec<f64>>,
}

impl Weighter for Fixed {
    fn step(&mut self, input: &StepInput) -> Decision {
        match &self.weights {
            Some(weights) => Decision::LossWeights(weights.clone()),
            None => {
                assert_eq!(input.static_weights.len(), input.losses.len(), "static: one weight per task");
                Decision::LossWeights(input.static_weights.to_vec())
            }
        }
    }
}

/// Kendall et al. 2018's objective in the form LibMTL (`UW.py` at 4336804) and Nash-MTL's code
/// (`Uncertainty` at cce18403) use for every task: `Σ_i ½·exp(−s_i)·L_i + ½·s_i`, with
/// `s_i = log σ_i²`
/// (Kendall et al. eq. 7 with `log σ_1 σ_2 = ½ Σ s_i`).
pub fn uncertainty_objective(losses: &[f64], log_variances: &[f64]) -> f64 {
    losses.iter().zip(log_variances).map(|(l, s)| 0.5 * (-s).exp() * l + 0.5 * s).sum()
}

/// Uncertainty weighting: learned `s_i`, initially 0, updated by Adam on
/// `∂/∂s_i = ½ − ½·exp(−s_i)·L_i` after each step's weights are given.
pub(super) struct Uncertainty {
    pub(super) log_variances: Vec<f64>,
    pub(super) adam: Adam,
}

impl Weighter for Uncertainty {
    fn step(&mut self, input: &StepInput) -> Decision {
        let weights: Vec<f64> = self.log_variances.iter().map(|s| 0.5 * (-s).exp()).collect();
        let grads: Vec<f64> = weights.iter().zip(input.losses).map(|(w, l)| 0.5 - w * l).collect();
        self.adam.step(&mut self.log_variances, &grads);
        Decision::LossWeights(weights)
    }
}

/// Dynamic weight average (Liu, Johns & Davison 2019, Sec. 3.3):
/// `w_i = n · softmax_i(r_i / T)` with `r_i = L_i(t−1) / L_i(t−2)`, the ratio of the last two
/// epochs' mean training losses (`history[e][task]`, oldest first). With fewer than two epochs
/// of history every weight is 1 (the paper's initialisation for t = 1, 2).
pub fn dwa_weights(history: &[Vec<f64>], temperature: f64) -> Vec<f64> {
    match history {
        [.., before, last] => {
            let ratios: Vec<f64> = last.iter().zip(before).map(|(l, b)| l / b.max(LOSS_FLOOR) / temperature).collect();
            softmax(&ratios, last.len() as f64)
        }
        _ => vec![1.0; history.first().map_or(0, Vec::len)],
    }
}

pub(super) struct Dwa {
    pub(super) temperature: f64,
    pub(super) n_tasks: usize,
    /// The last two epochs' mean losses.
    pub(super) history: Vec<Vec<f64>>,
}

impl Weighter for Dwa {
    fn step(&mut self, _input: &StepInput) -> Decision {
        if self.history.len() < 2 {
            return Decision::LossWeights(vec![1.0; self.n_tasks]);
        }
        Decision::LossWeights(dwa_weights(&self.history, self.temperature))
    }

    fn end_epoch(&mut self, mean_losses: &[f64]) {
        self.history.push(mean_losses.to_vec());
        if self.history.len() > 2 {
            self.history.remove(0);
        }
    }
}

/// Smooth Tchebycheff scalarisation (Lin et al. 2024), as LibMTL's `STCH.py` (at ea8b8b7)
/// computes it: until epoch `warmup_epoch` (counted from 0) the loss is `Σ_i log L_i`, and the
/// mean losses of epoch `warmup_epoch` become the nadir point `z`; after it the loss is
/// `n·μ·log Σ_i exp(log(L_i/z_i)/μ)`, a smooth maximum of the log loss ratios. The weights are
/// the loss's derivatives: `1/L_i`, then `n·softmax(log(L_i/z_i)/μ)_i / L_i` (losses clamped at
/// [`LOSS_FLOOR`]).
pub(super) struct Stch {
    pub(super) mu: f64,
    pub(super) warmup_epoch: usize,
    pub(super) epoch: usize,
    /// Sum and count of the losses of epoch `warmup_epoch`'s steps.
    pub(super) warmup_sum: Vec<f64>,
    pub(super) warmup_steps: usize,
}

impl Weighter for Stch {
    fn step(&mut self, input: &StepInput) -> Decision {
        let losses: Vec<f64> = input.losses.iter().map(|l| l.max(LOSS_FLOOR)).collect();
        if self.epoch == self.warmup_epoch {
            self.warmup_sum.resize(losses.len(), 0.0);
            self.warmup_sum.iter_mut().zip(&losses).for_each(|(sum, l)| *sum += l);
            self.warmup_steps += 1;
        }
        if self.epoch <= self.warmup_epoch || self.warmup_steps == 0 {
            return Decision::LossWeights(losses.iter().map(|l| 1.0 / l).collect());
        }
        let nadir = self.warmup_sum.iter().map(|sum| sum / self.warmup_steps as f64);
        let ratios: Vec<f64> = losses.iter().zip(nadir).map(|(l, z)| (l / z).ln() / self.mu).collect();
        let shares = softmax(&ratios, losses.len() as f64);
        Decision::LossWeights(shares.iter().zip(&losses).map(|(share, l)| share / l).collect())
    }

    fn end_epoch(&mut self, _mean_losses: &[f64]) {
        self.epoch += 1;
    }
}

/// Random loss weighting (Lin et al. 2022, Sec. 3): each step `w = softmax(z)`, `z ~ N(0, I)`,
/// so the weights sum to 1 (as in LibMTL's `RLW.py` at 4336804).
pub(super) struct Rlw {
    pub(super) rng: Rng,
}

impl Weighter for Rlw {
    fn step(&mut self, input: &StepInput) -> Decision {
        let draws: Vec<f64> = input.losses.iter().map(|_| self.rng.normal()).collect();
        Decision::LossWeights(softmax(&draws, 1.0))
    }
}

/// Geometric loss strategy (Chennupati et al. 2019, MultiNet++): minimise `G = (Π_i L_i)^(1/n)`,
/// whose gradient is `Σ_i G/(n·L_i) · ∇L_i` — those are the weights.
pub(super) struct Gls;

impl Weighter for Gls {
    fn step(&mut self, input: &StepInput) -> Decision {
        let n = input.losses.len() as f64;
        let clamped: Vec<f64> = input.losses.iter().map(|l| l.max(LOSS_FLOOR)).collect();
        // The geometric mean through logs, so that many small losses do not underflow.
        let geometric_mean = (clamped.iter().map(|l| l.ln()).sum::<f64>() / n).exp();
        Decision::LossWeights(clamped.iter().map(|l| geometric_mean / (n * l)).collect())
    }
}

/// FAMO (Liu et al. 2023, Alg. 1), following the official `famo.py` (Cranial-XIX/FAMO at
/// 0a6ad06, 2024-05-09):
/// logits ξ (initially 0), `z = softmax(ξ)`, the loss `Σ_i z_i/c · log(L_i + ε)` with
/// `c = Σ_j z_j/(L_j + ε)` held constant, i.e. loss weights `w_i = z_i / (c·(L_i + ε))`
/// (which sum to 1). The logits take one Adam step (weight decay γ) on
/// `δ = J_softmax(ξ)ᵀ (log L(t) − log L(t+1))`.
///
/// The official code evaluates L(t+1) on the same batch right after the optimiser step (an extra
/// forward pass). We see only the next step's losses, on the next batch, so the update of ξ from
/// L(t) to L(t+1) happens at the start of step t+1, before its weights are computed: noisier,
/// no extra pass. `min_losses` of the official code is 0 (its default). The official `FAMO` also
/// clips the shared parameters' gradient to norm `max_norm = 1` after the backward pass (as its
/// benchmark code's `WeightMethod` does for every method); we do not clip: a loss-level method's
/// single backward pass does not tell which parameters are shared.
pub(super) struct Famo {
    pub(super) logits: Vec<f64>,
    pub(super) adam: Adam,
    pub(super) previous_losses: Option<Vec<f64>>,
}

impl Weighter for Famo {
    fn step(&mut self, input: &StepInput) -> Decision {
        if let Some(previous) = &self.previous_losses {
            let z = softmax(&self.logits, 1.0);
            let delta: Vec<f64> =
                previous.iter().zip(input.losses).map(|(p, l)| (p + LOSS_FLOOR).ln() - (l + LOSS_FLOOR).ln()).collect();
            // Jᵀδ for the softmax Jacobian J = diag(z) − z zᵀ.
            let z_dot_delta: f64 = z.iter().zip(&delta).map(|(a, b)| a * b).sum();
            let grad: Vec<f64> = z.iter().zip(&delta).map(|(zi, di)| zi * (di - z_dot_delta)).collect();
            self.adam.step(&mut self.logits, &grad);
        }
        self.previous_losses = Some(input.losses.to_vec());
        let z = softmax(&self.logits, 1.0);
        let c: f64 = z.iter().zip(input.losses).map(|(zi, l)| zi / (l + LOSS_FLOOR)).sum();
        Decision::LossWeights(z.iter().zip(input.losses).map(|(zi, l)| zi / (c * (l + LOSS_FLOOR))).collect())
    }
}

/// GradNorm (Chen et al. 2018, Sec. 3.2 and Alg. 1) on the shared parameters' gradients given:
/// `G_i = w_i‖g_i‖`, `Ḡ = mean_i G_i`, `r_i = L̃_i / mean_j L̃_j` with `L̃_i = L_i(t)/L_i(0)`
/// (L(0): the first step's losses), and `L_grad = Σ_i |G_i − Ḡ·r_i^α|` with the target held
/// constant, so `∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α)·‖g_i‖`. The step uses the weights from
/// before the update (as Alg. 1 does); then one Adam step on w, a floor at 1e-6 (the paper does
/// not say how it keeps weights positive), and renormalisation to `Σ w_i = n`.
pub(super) struct GradNorm {
    pub(super) alpha: f64,
    pub(super) weights: Vec<f64>,
    pub(super) adam: Adam,
    pub(super) initial_losses: Option<Vec<f64>>,
}

impl Weighter for GradNorm {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let used = self.weights.clone();
        let initial = self.initial_losses.get_or_insert_with(|| input.losses.to_vec());
        let n = used.len() as f64;
        let grad_norms: Vec<f64> =
            grads.iter().map(|g| g.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt()).collect();
        let weighted_norms: Vec<f64> = used.iter().zip(&grad_norms).map(|(w, g)| w * g).collect();
        let mean_norm = weighted_norms.iter().sum::<f64>() / n;
        let inverse_rates: Vec<f64> =
            input.losses.iter().zip(initial.iter()).map(|(l, l0)| l / l0.max(LOSS_FLOOR)).collect();
        let mean_rate = inverse_rates.iter().sum::<f64>() / n;
        let grad_w: Vec<f64> = (0..used.len())
            .map(|i| {
                let target = mean_norm * (inverse_rates[i] / mean_rate).powf(self.alpha);
                sign(weighted_norms[i] - target) * grad_norms[i]
            })
            .collect();
        self.adam.step(&mut self.weights, &grad_w);
        for w in self.weights.iter_mut() {
            *w = w.max(1e-6);
        }
        let total: f64 = self.weights.iter().sum();
        for w in self.weights.iter_mut() {
            *w *= n / total;
        }
        Decision::LossWeights(used)
    }
}

/// The derivative of |x|, 0 at 0.
fn sign(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x.signum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_close, loss_weights};
    use super::super::Method;
    use super::*;

    /// One step's losses and, for the methods that need them, shared gradients.
    type Step<'a> = (&'a [f64], Option<&'a [Vec<f32>]>);

    /// Runs `method` on two tasks through `losses` (one entry per step, with `grads` for the
    /// methods that need them) and compares the weights of every step.
    fn check(method: Method, steps: &[Step], expected: &[&[f64]], tol: f64) {
        let mut weighter = method.start(steps[0].0.len(), 11);
        for (step, ((losses, grads), want)) in steps.iter().zip(expected).enumerate() {
            let input = StepInput { losses, static_weights: &[1.0, 0.5], shared_gradients: *grads };
            assert_close(&loss_weights(weighter.step(&input)), want, tol, &format!("{} step {step}", method.name()));
        }
    }

    #[test]
    fn stch_weights_by_hand() {
        // warmup_epoch 1. Epoch 0: 1/L. Epoch 1: 1/L, and its mean losses (2, 3) are the nadir.
        // Epoch 2, L = (2, 6): log ratios (0, ln 2)/μ; μ = 1: softmax (1/3, 2/3), times n = 2,
        // over L: (1/3, 2/9); μ = ½: exp (1, 4), softmax (1/5, 4/5): (0.2, 1.6/6).
        for (mu, last) in [(1.0, [1.0 / 3.0, 2.0 / 9.0]), (0.5, [0.2, 1.6 / 6.0])] {
            let method = Method::Stch { mu, warmup_epoch: 1.0 };
            let mut weighter = method.start(2, 0);
            let epochs: [&[([f64; 2], [f64; 2])]; 3] = [
                &[([0.5, 2.0], [2.0, 0.5])],
                &[([1.0, 4.0], [1.0, 0.25]), ([3.0, 2.0], [1.0 / 3.0, 0.5])],
                &[([2.0, 6.0], last)],
            ];
            for (epoch, steps) in epochs.iter().enumerate() {
                for (losses, want) in steps.iter() {
                    let input = StepInput { losses, static_weights: &[], shared_gradients: None };
                    assert_close(&loss_weights(weighter.step(&input)), want, 1e-15, &format!("μ {mu} epoch {epoch}"));
                }
                weighter.end_epoch(&[0.0, 0.0]);
            }
        }
    }

    #[test]
    fn static_and_equal() {
        check(Method::Static, &[(&[3.0, 4.0], None)], &[&[1.0, 0.5]], 0.0);
        check(Method::Equal, &[(&[3.0, 4.0], None)], &[&[1.0, 1.0]], 0.0);
    }

    #[test]
    fn uncertainty_objective_on_known_log_variances() {
        // L = (2, 3), s = (0, ln 2): ½·2 + 0 + ½·½·3 + ½·ln 2 = 1.75 + ½ ln 2 (Kendall et al. eq. 7).
        let got = uncertainty_objective(&[2.0, 3.0], &[0.0, 2f64.ln()]);
        assert!((got - (1.75 + 0.5 * 2f64.ln())).abs() < 1e-15, "{got}");
    }

    #[test]
    fn uncertainty_weights_follow_adam_on_the_log_variances() {
        // Step 1: s = 0 → weights ½. ∂/∂s = ½ − ½L: L = 3 → −1 (s grows), L = 0.5 → +¼ (s shrinks).
        // Adam's first step moves each s by lr·sign(grad) (m̂/√v̂ = ±1), so step 2 weighs with
        // ½·exp(∓0.025).
        let lr = UNCERTAINTY_LR;
        check(
            Method::Uncertainty,
            &[(&[3.0, 0.5], None), (&[3.0, 0.5], None)],
            &[&[0.5, 0.5], &[0.5 * (-lr).exp(), 0.5 * lr.exp()]],
            1e-9,
        );
    }

    #[test]
    fn dwa_weights_from_a_known_history() {
        // r = (1/2, 1/1); T = 2 → w = 2·softmax(0.25, 0.5) (Liu et al. 2019, Sec. 3.3).
        let (a, b) = (0.25f64.exp(), 0.5f64.exp());
        let want = [2.0 * a / (a + b), 2.0 * b / (a + b)];
        assert_close(&dwa_weights(&[vec![2.0, 1.0], vec![1.0, 1.0]], 2.0), &want, 1e-15, "dwa");
        // Only the last two epochs count.
        assert_close(&dwa_weights(&[vec![9.0, 9.0], vec![2.0, 1.0], vec![1.0, 1.0]], 2.0), &want, 1e-15, "dwa");
        assert_eq!(dwa_weights(&[vec![2.0, 1.0]], 2.0), vec![1.0, 1.0]);

        // The weighter: ones for the first two epochs, then the formula.
        let mut weighter = Method::Dwa { temperature: 2.0 }.start(2, 0);
        let input = StepInput { losses: &[1.0, 1.0], static_weights: &[], shared_gradients: None };
        for mean_losses in [[2.0, 1.0], [1.0, 1.0]] {
            assert_eq!(loss_weights(weighter.step(&input)), vec![1.0, 1.0]);
            weighter.end_epoch(&mean_losses);
        }
        assert_close(&loss_weights(weighter.step(&input)), &want, 1e-15, "dwa weighter");
    }

    #[test]
    fn rlw_is_a_softmax_of_normal_draws() {
        // The weighter's stream is Rng::derive(seed, "weighting.rlw"); redraw it here.
        let mut rng = Rng::derive(11, "weighting.rlw");
        let mut want = Vec::new();
        for _ in 0..2 {
            let (a, b) = (rng.normal().exp(), rng.normal().exp());
            want.push([a / (a + b), b / (a + b)]);
        }
        assert_ne!(want[0], want[1]);
        check(Method::Rlw, &[(&[1.0, 1.0], None), (&[1.0, 1.0], None)], &[&want[0], &want[1]], 1e-15);
    }

    #[test]
    fn gls_weights_are_the_gradient_of_the_geometric_mean() {
        // ∂/∂L_1 √(L_1 L_2) = ½√(L_2/L_1) = 1 and ∂/∂L_2 = ½√(L_1/L_2) = ¼ at L = (1, 4).
        check(Method::Gls, &[(&[1.0, 4.0], None)], &[&[1.0, 0.25]], 1e-15);
    }

    #[test]
    fn famo_weights_and_logit_update() {
        // Step 1: z = (½, ½), L = (1, 4): c = ½ + ⅛ = 0.625, w = (0.5, 0.125)/0.625 = (0.8, 0.2).
        // Step 2: L = (0.5, 4): δ = (ln 2, 0) (ε = 1e-8 is below the tolerance),
        // Jᵀδ = z ⊙ (δ − z·δ) = (ln 2/4, −ln 2/4); Adam's first step: ξ = (−lr, +lr).
        // Then z_1 = 1/(1 + e^{2 lr}) and w_i ∝ z_i / L_i: task 1 improved faster, so it weighs less.
        let lr: f64 = 0.025;
        let z1 = 1.0 / (1.0 + (2.0 * lr).exp());
        let (a, b) = (z1 / 0.5, (1.0 - z1) / 4.0);
        check(
            Method::Famo { gamma: 0.01, lr },
            &[(&[1.0, 4.0], None), (&[0.5, 4.0], None)],
            &[&[0.8, 0.2], &[a / (a + b), b / (a + b)]],
            1e-7,
        );
    }

    #[test]
    fn gradnorm_moves_weight_to_the_slower_task() {
        // Equal gradient norms (1, 1), L(0) = (1, 1); step 2 has L = (0.25, 1):
        // L̃ = (0.25, 1), r = (0.4, 1.6), target = Ḡ·r^α. With α = 1.5 task 1 (faster) is above
        // its target: ∂L_grad/∂w = (+1, −1), Adam moves w by ∓lr, the sum stays 2.
        // With α = 0 the target is Ḡ = G_i: no gradient, no change (Chen et al. 2018, Sec. 3.2).
        let grads = vec![vec![1.0f32, 0.0], vec![0.0, 1.0]];
        let steps: [Step; 3] =
            [(&[1.0, 1.0], Some(&grads)), (&[0.25, 1.0], Some(&grads)), (&[0.25, 1.0], Some(&grads))];
        check(Method::GradNorm { alpha: 0.0, lr: 0.025 }, &steps, &[&[1.0, 1.0], &[1.0, 1.0], &[1.0, 1.0]], 0.0);
        // Adam's first step (t = 1) had a zero gradient, so this one (t = 2) moves by
        // lr·m̂/√v̂ with m̂ = 0.1/(1 − 0.9²) and v̂ = 0.001/(1 − 0.999²), not by lr.
        let moved = 0.025 * (0.1 / (1.0 - 0.9f64.powi(2))) / (0.001 / (1.0 - 0.999f64.powi(2))).sqrt();
        check(
            Method::GradNorm { alpha: 1.5, lr: 0.025 },
            &steps,
            &[&[1.0, 1.0], &[1.0, 1.0], &[1.0 - moved, 1.0 + moved]],
            1e-8,
        );

        // Unequal norms ‖g‖ = (3, 1) at step 1 (r = 1): G = (3, 1), target Ḡ = 2, so
        // ∂/∂w = (+3, −1) and Adam moves w to (1 − lr, 1 + lr).
        let grads = vec![vec![3.0f32, 0.0], vec![0.0, 1.0]];
        check(
            Method::GradNorm { alpha: 1.5, lr: 0.025 },
            &[(&[1.0, 1.0], Some(&grads)), (&[1.0, 1.0], Some(&grads))],
            &[&[1.0, 1.0], &[0.975, 1.025]],
            1e-8,
        );
    }
}
