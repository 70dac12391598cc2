//! Nash-MTL (Navon et al. 2022): the task weights α the official code computes, its clipping of
//! the shared gradient, and the Nash bargaining point the paper defines.
//!
//! What we compared against: AvivNavon/nash-mtl at commit cce18403 (`methods/weight_methods.py`,
//! `NashMTL`, unchanged since 8748f1ae of 2023-09-05) and LibMTL's `Nash_MTL` at 4336804, which
//! is the same procedure. With `K = GᵀG` (the Gram matrix of the task gradients of the shared
//! parameters) and `s = ‖K‖_F`, each step starts from the previous step's α (ones at the first)
//! and solves, with CVXPY and ECOS, up to `optim_niter = 20` convex problems
//!
//! ```text
//! min_a  1ᵀ(K/s)a + φ'(α_t)ᵀ(a − α_t)/s   s.t.  a_i ((K/s)a)_i · s ≥ 1  (i.e. a_i (Ka)_i ≥ 1),
//! φ'(α_t) = 1/α_t + (K/s)(1/((K/s)α_t)),
//! ```
//!
//! a concave–convex procedure for `min 1ᵀKa + Σ_i ln a_i + Σ_i ln (Ka)_i` over the same set. It
//! keeps α_t — not the new solution — and stops when a problem has no solution (or the solver
//! fails), when `‖(K/s)α_t − 1/(α_t + 1e-10)‖ < 1e-3`, or when the solution moved by less than
//! 1e-6. The division by s changes nothing but that test (the constraint puts s back): α solves
//! `α_i (Kα)_i = 1` on the raw K whenever the procedure ends with every constraint tight, which
//! is the common case; with gradients of very different norms it can end with one slack
//! (`benches/reference/weighting_reference.py`, case "slack"), and when `K·α_t` has a negative
//! entry the first problem can be unbounded, which keeps α_t (case "unbounded").
//!
//! We run the same procedure with the same starts, limits and stopping rules, but solve each
//! problem with our own interior-point method ([`ccp_problem`]) instead of ECOS, to a tighter
//! tolerance. Over 1574 random steps of 2–5 tasks (chains of 3 and 5 steps, float64) our
//! weights differed from the official code's by 1.4e-7 relative at the median — ECOS's own error
//! is of that order — and by at most 1.8e-3, where ECOS's errors made the procedure stop at
//! another problem or drift over its 20. Where no α > 0 has `Kα > 0` (some nonnegative
//! combination of the gradients vanishes) every problem is infeasible: we keep the previous α,
//! whereas ECOS can report an inaccurate "optimum" of weights in the thousands (26 of 1600
//! such steps in that comparison).
//!
//! Also as there: weights are updated every step (`update_weights_every = 1`), the weights
//! scale the losses (task-specific parameters get `α_i ∇L_i`), and after the backward pass the
//! shared parameters' gradient `Σ_i α_i g_i` is clipped to norm `max_norm` (default 1; 0
//! disables) with `torch.nn.utils.clip_grad_norm_`'s factor. Neither LibMTL nor nash-mtl clips
//! for any other method, so the training loop has no clipping setting of its own (FAMO's
//! benchmark code, Cranial-XIX/FAMO 0a6ad06, does clip every method's shared gradient at 1).

use super::linalg::{dot, mat_vec, quadratic, solve, solve_with_tolerance};
use super::{shared_gradients, Decision, StepInput, Weighter};

/// Convex problems per step at most (the official `optim_niter`, default 20).
const OPTIM_NITER: usize = 20;

/// Nash-MTL's state: the previous step's weights, the start of the next step's procedure.
pub(super) struct NashMtl {
    pub(super) max_norm: f64,
    pub(super) previous: Vec<f64>,
}

impl Weighter for NashMtl {
    fn step(&mut self, input: &StepInput) -> Decision {
        let k = super::linalg::gram(shared_gradients(input));
        self.previous = nash_mtl_weights(&k, &self.previous);
        let weights = self.previous.clone();
        if self.max_norm > 0.0 {
            // ‖Σ_i α_i g_i‖ = √(αᵀKα).
            let norm = quadratic(&k, &weights).max(0.0).sqrt();
            Decision::ClippedLossWeights { shared_scale: clip_factor(norm, self.max_norm), weights }
        } else {
            Decision::LossWeights(weights)
        }
    }
}

/// The factor `torch.nn.utils.clip_grad_norm_` multiplies the gradients by:
/// `min(1, max_norm / (norm + 1e-6))`, so a norm just below `max_norm` is scaled slightly too.
/// A NaN norm gives 1, leaving the NaN to the optimiser's check.
pub(super) fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// One step of the official procedure (see the module docs) on the Gram matrix `gram`, from
/// `start`, the previous step's weights (ones at the first step).
pub fn nash_mtl_weights(gram: &[Vec<f64>], start: &[f64]) -> Vec<f64> {
    let n = gram.len();
    let frobenius = gram.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    // Zero gradients: the official K/s is NaN and the solver fails, keeping α_t.
    if !(frobenius > 0.0 && frobenius.is_finite()) {
        return start.to_vec();
    }
    // Every problem is infeasible exactly when there is no fixed point; twice the fixed point
    // (a_i (Ka)_i = 4) is strictly inside every problem's feasible set when there is one.
    let Some(fixed_point) = nash_weights(gram) else { return start.to_vec() };
    let inside: Vec<f64> = fixed_point.iter().map(|a| 2.0 * a).collect();
    let row_sums: Vec<f64> = gram.iter().map(|row| row.iter().sum()).collect();
    let mut alpha = start.to_vec();
    for _ in 0..OPTIM_NITER {
        let k_alpha = mat_vec(gram, &alpha);
        let inverse: Vec<f64> = k_alpha.iter().map(|v| 1.0 / v).collect();
        let k_inverse = mat_vec(gram, &inverse);
        // s · (the official objective's coefficients): the scale does not move the minimiser.
        let c: Vec<f64> = (0..n).map(|i| row_sums[i] + 1.0 / alpha[i] + k_inverse[i]).collect();
        let Some(next) = ccp_problem(gram, &c, &inside) else { break };
        let residual = norm(&(0..n).map(|i| k_alpha[i] / frobenius - 1.0 / (alpha[i] + 1e-10)).collect::<Vec<_>>());
        let moved = norm(&next.iter().zip(&alpha).map(|(a, b)| a - b).collect::<Vec<_>>());
        if residual < 1e-3 || moved < 1e-6 {
            break;
        }
        alpha = next;
    }
    alpha
}

/// The Nash bargaining weights (Navon et al. 2022, Sec. 3): the α > 0 with `(GᵀG) α = 1/α`
/// elementwise, the unique minimiser of the strictly convex `f(α) = ½ αᵀKα − Σ_i ln α_i`
/// (gradient `Kα − 1/α`, Hessian `K + diag(1/α²)`). f is self-concordant, so Newton steps damped
/// by `1/(1 + λ)` (λ the Newton decrement) stay in α > 0 and decrease f by a fixed amount until
/// λ < ¼, after which full steps converge quadratically (Boyd & Vandenberghe 2004, Sec. 9.6).
/// No line search on f: near the optimum f's rounding hides the decrease, which stalled a
/// backtracking search at a residual of 1.5e-8 for g = (14, 8), (8, −5) (a test). Started at
/// `α_i = 1/√K_ii`, exact for orthogonal
/// gradients. `None` when there is none: a zero gradient, or gradients some nonnegative
/// combination of which vanishes (e.g. g_2 = −g_1), where f is unbounded below and λ stays large.
pub fn nash_weights(gram: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = gram.len();
    let k = gram;
    let mut alpha: Vec<f64> = (0..n).map(|i| if k[i][i] > 0.0 { 1.0 / k[i][i].sqrt() } else { 1.0 }).collect();
    let mut last = f64::INFINITY;
    for _ in 0..1000 {
        let gradient: Vec<f64> = mat_vec(k, &alpha).iter().zip(&alpha).map(|(ka, a)| ka - 1.0 / a).collect();
        let mut hessian = k.to_vec();
        for i in 0..n {
            hessian[i][i] += 1.0 / (alpha[i] * alpha[i]);
        }
        let newton = solve(hessian, gradient.iter().map(|g| -g).collect())?;
        let decrement_sq = -dot(&gradient, &newton);
        if decrement_sq.is_nan() || decrement_sq < 0.0 {
            return None;
        }
        // At the rounding floor: no further progress is possible.
        if decrement_sq <= 1e-12 && decrement_sq >= last {
            break;
        }
        let decrement = decrement_sq.sqrt();
        let damping = if decrement < 0.25 { 1.0 } else { 1.0 / (1.0 + decrement) };
        for (a, d) in alpha.iter_mut().zip(&newton) {
            *a += damping * d;
        }
        last = decrement_sq;
        if decrement_sq <= 1e-20 {
            break;
        }
    }
    let converged = last <= 1e-12 && alpha.iter().all(|a| a.is_finite() && *a > 0.0);
    converged.then_some(alpha)
}

/// The official procedure's convex problem `min cᵀa s.t. h_i(a) = ln a_i + ln (Ka)_i ≥ 0`
/// (a > 0), from `inside`, a point where every `h_i > 0`: a barrier method (Boyd & Vandenberghe
/// 2004, Sec. 11.3) to a relative duality gap of 1e-4, then primal-dual interior-point steps
/// (Sec. 11.7) from its central point to 1e-11. `None` when it has no solution or the steps
/// fail (the official code then keeps α_t): the feasible set contains `σa` for every σ ≥ 1 and
/// feasible a, so it is unbounded as soon as `cᵀa ≤ 0` somewhere in it. When the last digits
/// cannot be had, a point within ECOS's "inaccurate" tolerances (gap 5e-5, residual 1e-4) is
/// accepted, as CVXPY accepts ECOS's.
pub(super) fn ccp_problem(k: &[Vec<f64>], c: &[f64], inside: &[f64]) -> Option<Vec<f64>> {
    let n = k.len();
    let positive = |value: f64| value > 0.0; // false for NaN
    if !c.iter().all(|v| v.is_finite()) || !positive(dot(c, inside)) {
        return None;
    }
    let mut a = inside.to_vec();

    // Barrier: minimise t·cᵀa − Σ ln h_i(a) for t = n/cᵀa, 10×, 100×, … (Newton, backtracking).
    let mut t = n as f64 / dot(c, &a);
    let mut centred = false;
    for _ in 0..60 {
        for _ in 0..50 {
            let at = Constraints::at(k, &a)?;
            let gradient: Vec<f64> =
                (0..n).map(|j| t * c[j] - (0..n).map(|i| at.gradients[i][j] / at.values[i]).sum::<f64>()).collect();
            let weights: Vec<f64> = at.values.iter().map(|h| 1.0 / h).collect();
            let mut hessian = at.curvature(k, &a, &weights);
            for (gradient, h) in at.gradients.iter().zip(&at.values) {
                for (row, g_p) in hessian.iter_mut().zip(gradient) {
                    for (entry, g_q) in row.iter_mut().zip(gradient) {
                        *entry += g_p * g_q / (h * h);
                    }
                }
            }
            let direction = finite(solve_with_tolerance(hessian, gradient.iter().map(|g| -g).collect(), 0.0))?;
            let decrement = -dot(&gradient, &direction);
            if decrement / 2.0 <= 1e-8 {
                break;
            }
            let barrier = |x: &[f64], values: &[f64]| t * dot(c, x) - values.iter().map(|h| h.ln()).sum::<f64>();
            let value = barrier(&a, &at.values);
            let mut step = 1.0;
            let mut moved = None;
            while step >= 1e-12 {
                let x: Vec<f64> = a.iter().zip(&direction).map(|(p, d)| p + step * d).collect();
                if let Some(there) = Constraints::at(k, &x).filter(Constraints::feasible) {
                    if barrier(&x, &there.values) <= value - 0.25 * step * decrement {
                        moved = Some(x);
                        break;
                    }
                }
                step /= 2.0;
            }
            let Some(x) = moved else { break };
            a = x;
            if !positive(dot(c, &a)) {
                return None;
            }
        }
        if n as f64 / t <= 1e-4 * dot(c, &a) {
            centred = true;
            break;
        }
        t *= 10.0;
    }
    if !centred {
        return None;
    }

    // Primal-dual: Newton on c − Jᵀλ = 0 and λ_i h_i = 1/τ with τ = 10n/gap, the duals starting
    // at the central point's λ_i = 1/(t h_i); the step keeps λ > 0 and h > 0 and must shrink
    // the residual's norm.
    let mut lambda: Vec<f64> = Constraints::at(k, &a)?.values.iter().map(|h| 1.0 / (t * h)).collect();
    let residual = |at: &Constraints, lambda: &[f64], tau: f64| -> (Vec<f64>, Vec<f64>) {
        let dual = (0..n).map(|j| c[j] - (0..n).map(|i| lambda[i] * at.gradients[i][j]).sum::<f64>()).collect();
        let centrality = (0..n).map(|i| lambda[i] * at.values[i] - 1.0 / tau).collect();
        (dual, centrality)
    };
    let converged = |at: &Constraints, a: &[f64], lambda: &[f64], tolerance_gap: f64, tolerance_dual: f64| {
        let gap = dot(&at.values, lambda);
        let (dual, _) = residual(at, lambda, 1.0);
        let scale = norm(c) + (0..n).map(|i| lambda[i] * norm(&at.gradients[i])).sum::<f64>();
        gap <= tolerance_gap * dot(c, a) && norm(&dual) <= tolerance_dual * scale
    };
    for _ in 0..50 {
        let at = Constraints::at(k, &a)?;
        if converged(&at, &a, &lambda, 1e-11, 1e-11) {
            return Some(a);
        }
        let tau = 10.0 * n as f64 / dot(&at.values, &lambda);
        let (dual, centrality) = residual(&at, &lambda, tau);
        // [Σλ_i(−∇²h_i)  −Jᵀ; diag(λ)J  diag(h)] [Δa; Δλ] = −[dual; centrality]
        let curvature = at.curvature(k, &a, &lambda);
        let mut system = vec![vec![0.0; 2 * n]; 2 * n];
        for p in 0..n {
            system[p][..n].copy_from_slice(&curvature[p]);
            for i in 0..n {
                system[p][n + i] = -at.gradients[i][p];
                system[n + i][p] = lambda[i] * at.gradients[i][p];
            }
            system[n + p][n + p] = at.values[p];
        }
        let rhs: Vec<f64> = dual.iter().chain(&centrality).map(|r| -r).collect();
        let newton = finite(solve_with_tolerance(system, rhs, 0.0))?;
        let (step_a, step_lambda) = newton.split_at(n);
        let mut step = 1.0f64;
        for i in 0..n {
            if step_lambda[i] < 0.0 {
                step = step.min(-0.99 * lambda[i] / step_lambda[i]);
            }
        }
        let before = norm(&[dual, centrality].concat());
        let mut moved = None;
        while step >= 1e-12 {
            let x: Vec<f64> = a.iter().zip(step_a).map(|(p, d)| p + step * d).collect();
            let l: Vec<f64> = lambda.iter().zip(step_lambda).map(|(p, d)| p + step * d).collect();
            if let Some(there) = Constraints::at(k, &x).filter(Constraints::feasible) {
                let (dual, centrality) = residual(&there, &l, tau);
                if norm(&[dual, centrality].concat()) <= (1.0 - 0.01 * step) * before {
                    moved = Some((x, l));
                    break;
                }
            }
            step /= 2.0;
        }
        let Some((x, l)) = moved else {
            return converged(&at, &a, &lambda, 5e-5, 1e-4).then_some(a);
        };
        a = x;
        lambda = l;
    }
    let at = Constraints::at(k, &a)?;
    converged(&at, &a, &lambda, 5e-5, 1e-4).then_some(a)
}

/// The constraints `h_i(a) = ln a_i + ln (Ka)_i` at a point of their domain (a > 0, Ka > 0).
struct Constraints {
    k_a: Vec<f64>,
    values: Vec<f64>,
    /// `gradients[i][j] = ∂h_i/∂a_j = δ_ij/a_i + K_ij/(Ka)_i`.
    gradients: Vec<Vec<f64>>,
}

impl Constraints {
    fn at(k: &[Vec<f64>], a: &[f64]) -> Option<Constraints> {
        let k_a = mat_vec(k, a);
        if !a.iter().chain(&k_a).all(|v| *v > 0.0 && v.is_finite()) {
            return None;
        }
        let values = a.iter().zip(&k_a).map(|(x, y)| x.ln() + y.ln()).collect();
        let gradients = (0..a.len())
            .map(|i| (0..a.len()).map(|j| if i == j { 1.0 / a[i] } else { 0.0 } + k[i][j] / k_a[i]).collect())
            .collect();
        Some(Constraints { k_a, values, gradients })
    }

    fn feasible(&self) -> bool {
        self.values.iter().all(|h| *h > 0.0)
    }

    /// `Σ_i w_i (−∇²h_i) = Σ_i w_i (e_i e_iᵀ/a_i² + k_i k_iᵀ/(Ka)_i²)`, with k_i row i of K.
    fn curvature(&self, k: &[Vec<f64>], a: &[f64], w: &[f64]) -> Vec<Vec<f64>> {
        let n = a.len();
        let mut sum = vec![vec![0.0; n]; n];
        for i in 0..n {
            sum[i][i] += w[i] / (a[i] * a[i]);
            let factor = w[i] / (self.k_a[i] * self.k_a[i]);
            for p in 0..n {
                for q in 0..n {
                    sum[p][q] += factor * k[i][p] * k[i][q];
                }
            }
        }
        sum
    }
}

fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

fn finite(x: Option<Vec<f64>>) -> Option<Vec<f64>> {
    x.filter(|v| v.iter().all(|x| x.is_finite()))
}

#[cfg(test)]
mod tests {
    use super::super::linalg::gram;
    use super::super::tests::assert_close;
    use super::super::Method;
    use super::*;

    fn gram_of(grads: &[&[f64]]) -> Vec<Vec<f64>> {
        gram(&grads.iter().map(|g| g.to_vec()).collect::<Vec<_>>())
    }

    /// Runs Nash-MTL with `max_norm` over `steps` (each step's gradients) and returns the last
    /// decision's weights and shared-gradient factor (1 without clipping).
    fn run(max_norm: f64, steps: &[&[&[f32]]]) -> (Vec<f64>, f64) {
        let mut weighter = Method::NashMtl { max_norm }.start(steps[0].len(), 0);
        let mut last = None;
        for grads in steps {
            let grads: Vec<Vec<f32>> = grads.iter().map(|g| g.to_vec()).collect();
            let losses = vec![1.0; grads.len()];
            let input = StepInput { losses: &losses, static_weights: &[], shared_gradients: Some(&grads) };
            last = Some(weighter.step(&input));
        }
        match last {
            Some(Decision::LossWeights(weights)) if max_norm == 0.0 => (weights, 1.0),
            Some(Decision::ClippedLossWeights { weights, shared_scale }) if max_norm > 0.0 => (weights, shared_scale),
            other => panic!("max_norm {max_norm}: unexpected decision {other:?}"),
        }
    }

    /// A name, the steps' gradients, the official weights after the last step, the tolerance.
    type Case<'a> = (&'a str, &'a [&'a [&'a [f64]]], [f64; 3], f64);

    /// Relative agreement with the official procedure's numbers.
    fn assert_relative(got: &[f64], want: &[f64], tolerance: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!((g / w - 1.0).abs() <= tolerance, "{what}: got {got:?}, want {want:?} (±{tolerance} relative)");
        }
    }

    /// The reference script's gradient sets (`NASH_CASES`); the weighter's tests use
    /// `ORTHOGONAL`, whose f32 values are exact.
    const ORTHOGONAL: [&[f32]; 2] = [&[2.0, 0.0], &[0.0, 0.5]];
    const THREE: [&[f64]; 3] = [&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]];
    const SLACK: [&[f64]; 3] = [&[0.0, -0.2, -0.9], &[3.0, -8.0, 8.0], &[0.4, -0.3, 0.0]];
    const UNBOUNDED: [&[f64]; 3] = [&[-0.8, -0.1, 0.7], &[-0.4, -0.3, -0.5], &[0.5, -0.5, 1.0]];

    #[test]
    fn nash_mtl_orthogonal_gradients_get_the_official_weights() {
        // K = diag(4, 1/4): α_i (Kα)_i = 1 gives α = (1/2, 2) on the raw K, which the official
        // code's constraint `−log(α_i s) − log((K/s)α)_i ≤ 0` keeps (weighting_reference.py,
        // "orthogonal": (0.5000000024, 1.9999999940)). Before, we left K divided by s = ‖K‖_F and
        // got s^½ · (1/2, 2) = (1.0010, 4.0039).
        // Our interior-point method stops at a relative duality gap of 1e-11.
        let (weights, _) = run(0.0, &[&ORTHOGONAL]);
        assert_close(&weights, &[0.5, 2.0], 1e-11, "nash-mtl");
    }

    #[test]
    fn nash_mtl_matches_the_official_procedure() {
        // benches/reference/weighting_reference.py, the "nash-mtl official" lines: the official
        // NashMTL step (AvivNavon/nash-mtl cce18403) with CVXPY and ECOS, in float64. Each case
        // is a list of steps (gradients), the first from ones, each next from the last weights.
        let cases: [Case; 4] = [
            // Every constraint tight: the fixed point, to ECOS's tolerance.
            ("three", &[&THREE], [0.8614231937792283, 0.85233233280722, 0.46264543405048675], 1e-8),
            // 20 problems, ending with task 1's constraint slack; ECOS's errors add up over them.
            ("slack", &[&SLACK], [3.2747354746725543, 0.15480997359487236, 0.9969687814806307], 1e-5),
            // K·1 has a negative entry: the first problem is unbounded and the ones are kept.
            ("unbounded", &[&UNBOUNDED], [1.0, 1.0, 1.0], 0.0),
            // Started from the first step's weights, the same gradients reach their fixed point
            // (which ECOS misses by 3e-8 relative: see below).
            (
                "unbounded after three",
                &[&THREE, &UNBOUNDED],
                [0.7713911260479644, 2.213879338415812, 1.1913525447225481],
                1e-7,
            ),
        ];
        for (name, steps, want, tolerance) in cases {
            let mut alpha = vec![1.0; 3];
            for grads in steps {
                alpha = nash_mtl_weights(&gram_of(grads), &alpha);
            }
            assert_relative(&alpha, &want, tolerance, name);
        }
        let after_three = nash_mtl_weights(&gram_of(&UNBOUNDED), &nash_mtl_weights(&gram_of(&THREE), &[1.0; 3]));
        assert_close(&after_three, &nash_weights(&gram_of(&UNBOUNDED)).unwrap(), 1e-10, "fixed point");
        // The slack case is not the fixed point: α_1 (Kα)_1 ≈ 6.47.
        let k = gram_of(&SLACK);
        let alpha = nash_mtl_weights(&k, &[1.0; 3]);
        let products: Vec<f64> = mat_vec(&k, &alpha).iter().zip(&alpha).map(|(ka, a)| ka * a).collect();
        assert_close(&products, &[6.4722, 1.0, 1.0], 1e-4, "slack products");
    }

    #[test]
    fn nash_mtl_keeps_the_previous_weights_without_a_solution() {
        // Opposite gradients: no α > 0 has Kα > 0, every problem is infeasible and the
        // previous α is kept — first the ones, then the orthogonal step's (1/2, 2).
        let opposite: [&[f32]; 2] = [&[1.0, 2.0], &[-1.0, -2.0]];
        assert_eq!(run(0.0, &[&opposite]).0, [1.0, 1.0]);
        let (kept, _) = run(0.0, &[&ORTHOGONAL, &opposite]);
        assert_close(&kept, &[0.5, 2.0], 1e-11, "kept");
        // All gradients zero: the official K/‖K‖_F is NaN and the solver fails.
        let zero: [&[f32]; 2] = [&[0.0, 0.0], &[0.0, 0.0]];
        assert_eq!(run(0.0, &[&zero]).0, [1.0, 1.0]);
    }

    #[test]
    fn nash_mtl_clips_the_shared_gradient_as_clip_grad_norm_does() {
        // α = (1/2, 2) on g_1 = (2, 0), g_2 = (0, 1/2): Σ α_i g_i = (1, 1), norm √2.
        // torch.nn.utils.clip_grad_norm_ multiplies by min(1, max_norm / (norm + 1e-6)).
        let root_2 = 2.0f64.sqrt();
        let cases = [
            (1.0, 1.0 / (root_2 + 1e-6)),
            // At exactly max_norm it still scales, by √2/(√2 + 1e-6) < 1.
            (root_2, root_2 / (root_2 + 1e-6)),
            (2.0, 1.0),
        ];
        for (max_norm, want) in cases {
            let (weights, scale) = run(max_norm, &[&ORTHOGONAL]);
            assert_close(&weights, &[0.5, 2.0], 1e-11, "weights are not clipped");
            assert!((scale - want).abs() < 1e-11, "max_norm {max_norm}: factor {scale}, want {want}");
        }
        // max_norm = 0 disables clipping: plain loss weights (checked by `run`).
        assert_close(&run(0.0, &[&ORTHOGONAL]).0, &[0.5, 2.0], 1e-11, "no clipping");
        assert_eq!(clip_factor(f64::NAN, 1.0), 1.0, "a NaN norm is left to the optimiser's check");
    }

    #[test]
    fn nash_fixed_point_orthogonal_and_degenerate_gradients() {
        // K = diag(a², b²): a² α_1 = 1/α_1 → α = (1/a, 1/b) (Navon et al. 2022: Kα = 1/α).
        let k = gram_of(&[&[2.0, 0.0], &[0.0, 0.5]]);
        assert_close(&nash_weights(&k).unwrap(), &[0.5, 2.0], 1e-15, "nash");
        // Exactly opposite gradients and a zero gradient have no solution (f is unbounded).
        assert_eq!(nash_weights(&gram_of(&[&[1.0, 2.0], &[-1.0, -2.0]])), None);
        assert_eq!(nash_weights(&gram_of(&[&[0.0, 0.0], &[1.0, 2.0]])), None);
    }

    #[test]
    fn nash_fixed_point_for_non_orthogonal_gradients() {
        // The last case stalled the earlier line search on f at a residual of 1.5e-8 (None).
        let cases: [&[&[f64]]; 3] = [
            &[&[1.0, 0.0], &[1.0, 1.0]],
            &[&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]],
            &[&[14.0, 8.0], &[8.0, -5.0]],
        ];
        for grads in cases {
            let k = gram_of(grads);
            let alpha = nash_weights(&k).unwrap_or_else(|| panic!("{grads:?}: no fixed point"));
            let residual: Vec<f64> = mat_vec(&k, &alpha).iter().zip(&alpha).map(|(ka, a)| a * ka - 1.0).collect();
            assert!(
                alpha.iter().all(|&a| a > 0.0) && residual.iter().all(|r| r.abs() < 1e-12),
                "{alpha:?} {residual:?}"
            );
        }
        // Against scipy's root finder (weighting_reference.py, "nash fixed point").
        let k = gram_of(&[&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]]);
        assert_close(&nash_weights(&k).unwrap(), &NASH_FIXED_POINT, 1e-12, "nash fixed point");
    }

    /// `weighting_reference.py`, "nash fixed point".
    const NASH_FIXED_POINT: [f64; 3] = [0.8614231961733311, 0.8523323341747431, 0.4626454323087876];

    #[test]
    fn max_norm_is_a_swept_hyperparameter_in_the_trial_key() {
        let source = |values: &str| {
            format!(
                "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n\
                 [[tasks]]\nname = \"b\"\ndata = {{ format = \"synthetic-shapes\" }}\n\
                 [sweep]\nstrategy = [\"hard\"]\nweighting = [\"nash-mtl\"]\n[weighting.nash-mtl]\nmax_norm = {values}\n"
            )
        };
        let plan = crate::config::parse_str(&source("[0, 1]"), std::path::Path::new("x.toml")).expect("valid");
        let methods: Vec<Method> = plan.trials.iter().map(|trial| trial.weighting).collect();
        assert_eq!(methods, [Method::NashMtl { max_norm: 0.0 }, Method::NashMtl { max_norm: 1.0 }]);
        assert_ne!(plan.trials[0].key, plan.trials[1].key);
        let stored: Vec<bool> = plan
            .trials
            .iter()
            .map(|trial| trial.params().iter().any(|(name, _)| name == "nash_mtl_max_norm"))
            .collect();
        assert_eq!(stored, [true, true]);
        let error = crate::config::parse_str(&source("-1"), std::path::Path::new("x.toml")).expect_err("negative");
        assert_eq!(error.key.as_deref(), Some("weighting.nash-mtl.max_norm"), "{error:?}");
        assert!(error.message.contains("max_norm must be a finite number ≥ 0"), "{}", error.message);
    }
}
