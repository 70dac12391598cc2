//! Methods that solve a small problem over the Gram matrix `K = GᵀG` (n × n, `K_ij = g_i·g_j`)
//! for task weights α and update the shared parameters with `Σ_i α_i g_i`:
//! mgda, cagrad, imtl-g and imtl, aligned-mtl, fairgrad (nash-mtl, which also solves over K, is in `nash`).

use super::linalg::{combine, dot, gram, mat_vec, project_to_simplex, quadratic, solve, symmetric_eigen, Adam};
use super::{shared_gradients, Decision, StepInput, Weighter};

/// A method whose task weights are a function of this step's Gram matrix alone.
pub(super) struct GramSolver {
    pub(super) weights_of: fn(&[Vec<f64>]) -> Vec<f64>,
}

impl Weighter for GramSolver {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let weights = (self.weights_of)(&gram(grads));
        Decision::SharedGradient { gradient: combine(grads, &weights), weights }
    }
}

/// CAGrad needs its `c`, so it is not a plain function of K.
pub(super) struct Cagrad {
    pub(super) c: f64,
}

impl Weighter for Cagrad {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let weights = cagrad_weights(&gram(grads), self.c);
        Decision::SharedGradient { gradient: combine(grads, &weights), weights }
    }
}

/// MGDA's min-norm point of the convex hull of `gradients`: the α on the simplex minimising
/// `‖Σ_i α_i g_i‖²` (Sener & Koltun 2018, Sec. 3.1).
pub fn min_norm_weights(gradients: &[Vec<f64>]) -> Vec<f64> {
    min_norm_from_gram(&gram(gradients))
}

/// Frank–Wolfe over the simplex (Sener & Koltun 2018, Alg. 2): start at α = 1/n, move towards
/// the vertex t = argmin_r (Kα)_r with the closed-form line search of their Alg. 1
/// (`min_γ ‖(1−γ)θ̄ + γ g_t‖²`, clipped to [0, 1]). We add away steps (Lacoste-Julien & Jaggi
/// 2015): when moving away from the worst vertex in use gains more, do that instead. Plain FW
/// converges as O(1/k) when the answer lies inside a face (their code, isl-org/
/// MultiObjectiveOptimization at bf5bbb3, stops after 250 iterations or a change below 1e-5);
/// with away steps it converges linearly, here to a duality gap of 1e-15 relative. No gradient
/// normalisation (`mgda_gn = none`, LibMTL's default at 4336804).
pub(super) fn min_norm_from_gram(k: &[Vec<f64>]) -> Vec<f64> {
    let n = k.len();
    let mut alpha = vec![1.0 / n as f64; n];
    let scale = (0..n).map(|i| k[i][i]).fold(0.0, f64::max);
    for _ in 0..1000 {
        let k_alpha = mat_vec(k, &alpha);
        let current = dot(&alpha, &k_alpha);
        let toward = argmin(&k_alpha);
        let away =
            (0..n).filter(|&i| alpha[i] > 0.0).max_by(|&a, &b| k_alpha[a].total_cmp(&k_alpha[b])).unwrap_or(toward);
        let gap_toward = current - k_alpha[toward];
        let gap_away = k_alpha[away] - current;
        // The FW gap bounds the distance to the optimum of αᵀKα from above.
        if gap_toward <= 1e-15 * scale {
            break;
        }
        // Direction d in α-space and the largest step that stays on the simplex.
        let (direction, max_step) = if gap_toward >= gap_away {
            let mut d: Vec<f64> = alpha.iter().map(|a| -a).collect();
            d[toward] += 1.0;
            (d, 1.0)
        } else {
            let mut d = alpha.clone();
            d[away] -= 1.0;
            (d, alpha[away] / (1.0 - alpha[away]))
        };
        // Exact line search of the quadratic along d (Alg. 1 when d points at a vertex).
        let curvature = quadratic(k, &direction);
        let slope = dot(&direction, &k_alpha);
        let step = if curvature > 0.0 { (-slope / curvature).clamp(0.0, max_step) } else { max_step };
        if step == 0.0 {
            break;
        }
        for (a, d) in alpha.iter_mut().zip(&direction) {
            *a = (*a + step * d).max(0.0);
        }
        let total: f64 = alpha.iter().sum();
        alpha.iter_mut().for_each(|a| *a /= total);
    }
    alpha
}

/// CAGrad (Liu et al. 2021, Alg. 1), following the official code (Cranial-XIX/CAGrad at dc3d481,
/// `cagrad(grads, alpha=c, rescale=1)`, which the code of Nash-MTL at cce18403, of FAMO at 0a6ad06
/// and LibMTL at 4336804 copy): with
/// `g_0 = mean_i g_i` and `√φ = c‖g_0‖`, find w on the simplex minimising
/// `F(w) = g_wᵀ g_0 + √φ ‖g_w‖` (`g_w = Σ w_i g_i`), then
/// `d = (g_0 + √φ/‖g_w‖ · g_w) / (1 + c²)` — the `rescale = 1` division of the official code,
/// which the paper does not have; it makes c = 0 give exactly the mean gradient.
/// Returns the effective weights: `d = Σ_i weights_i g_i`.
///
/// The official code minimises F with scipy's SLSQP; we use projected gradient descent with a
/// backtracking line search to a tighter tolerance, on K scaled to unit mean diagonal (the
/// minimiser does not change with the scale of K; the official `+1e-8` terms are absolute).
pub(super) fn cagrad_weights(k: &[Vec<f64>], c: f64) -> Vec<f64> {
    let n = k.len();
    let mean = vec![1.0 / n as f64; n];
    let scale = (0..n).map(|i| k[i][i]).sum::<f64>() / n as f64;
    if scale <= 0.0 {
        return mean; // every gradient is zero: the update is zero whatever the weights
    }
    let k: Vec<Vec<f64>> = k.iter().map(|row| row.iter().map(|v| v / scale).collect()).collect();
    let k_mean = mat_vec(&k, &mean);
    let sqrt_phi = c * dot(&mean, &k_mean).max(0.0).sqrt();
    let objective = |w: &[f64]| dot(w, &k_mean) + sqrt_phi * quadratic(&k, w).max(0.0).sqrt();
    let gradient = |w: &[f64]| -> Vec<f64> {
        let norm = quadratic(&k, w).max(1e-300).sqrt();
        let k_w = mat_vec(&k, w);
        k_mean.iter().zip(&k_w).map(|(a, b)| a + sqrt_phi * b / norm).collect()
    };

    let mut w = mean.clone();
    let mut value = objective(&w);
    let mut step = 1.0;
    for _ in 0..10_000 {
        let g = gradient(&w);
        // Backtracking on the projection arc (sufficient decrease of Beck & Teboulle 2009).
        let (next, next_value) = loop {
            let candidate = project_to_simplex(&w.iter().zip(&g).map(|(x, d)| x - step * d).collect::<Vec<_>>());
            let moved: Vec<f64> = candidate.iter().zip(&w).map(|(a, b)| a - b).collect();
            let candidate_value = objective(&candidate);
            if candidate_value <= value + dot(&g, &moved) + dot(&moved, &moved) / (2.0 * step) || step < 1e-20 {
                break (candidate, candidate_value);
            }
            step /= 2.0;
        };
        let change = next.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        w = next;
        value = next_value;
        if change < 1e-15 {
            break;
        }
        step *= 2.0;
    }

    let norm_w = quadratic(&k, &w).max(0.0).sqrt();
    let lambda = if norm_w > 0.0 { sqrt_phi / norm_w } else { 0.0 };
    mean.iter().zip(&w).map(|(m, wi)| (m + lambda * wi) / (1.0 + c * c)).collect()
}

/// IMTL-G (Liu et al. 2021, "Towards Impartial Multi-task Learning", Sec. 3.2, closed form):
/// the update `Σ α_i g_i` with `Σ α_i = 1` whose projections onto every unit gradient
/// `u_i = g_i/‖g_i‖` are equal. With `D = [g_1 − g_i]` and `U = [u_1 − u_i]` (i = 2..n),
/// `α_{2..n} = g_1 Uᵀ (D Uᵀ)⁻¹` and `α_1 = 1 − Σ α_{2..n}` (LibMTL's `IMTL.py` at 4336804,
/// without its IMTL-L loss scaling). The paper computes the gradients with respect to the shared
/// representation; we use those of the shared parameters (LibMTL's `rep_grad = False`).
/// When a gradient is zero or the system is singular (e.g. two parallel gradients), the
/// condition has no unique answer and we return the mean weights 1/n.
pub(super) fn imtl_weights(k: &[Vec<f64>]) -> Vec<f64> {
    let n = k.len();
    let mean = vec![1.0 / n as f64; n];
    let norms: Vec<f64> = (0..n).map(|i| k[i][i].max(0.0).sqrt()).collect();
    if n < 2 || norms.contains(&0.0) {
        return mean;
    }
    // (g_1 − g_i)·(u_1 − u_j) and g_1·(u_1 − u_j) from K.
    let g_dot_u = |a: usize, b: usize| k[a][b] / norms[b];
    let system: Vec<Vec<f64>> = (1..n)
        .map(|i| (1..n).map(|j| g_dot_u(0, 0) - g_dot_u(0, j) - g_dot_u(i, 0) + g_dot_u(i, j)).collect())
        .collect();
    let rhs: Vec<f64> = (1..n).map(|j| g_dot_u(0, 0) - g_dot_u(0, j)).collect();
    // α is a row vector: α (D Uᵀ) = g_1 Uᵀ, i.e. (D Uᵀ)ᵀ αᵀ = (g_1 Uᵀ)ᵀ.
    let transposed: Vec<Vec<f64>> = (0..n - 1).map(|r| (0..n - 1).map(|c| system[c][r]).collect()).collect();
    match solve(transposed, rhs) {
        Some(rest) => {
            let mut alpha = vec![1.0 - rest.iter().sum::<f64>()];
            alpha.extend(rest);
            alpha
        }
        None => mean,
    }
}

/// IMTL as a whole (Liu et al. 2021): IMTL-L's learned loss scales with IMTL-G's gradient
/// weights. The losses are scaled to `e^(s_i) L_i − s_i`, whose gradients are `e^(s_i) g_i`;
/// IMTL-G ([`imtl_weights`]) weighs those, so the shared update is `Σ_i α_i e^(s_i) g_i` (the
/// reported weights are `α_i e^(s_i)`), as LibMTL's `IMTL.py` (at 2d842d6). The scales take an
/// Adam step on `∂/∂s_i = e^(s_i) L_i − 1` (rate `scale_lr`, by default that of the other
/// methods' own parameters, `UNCERTAINTY_LR`), from s = 0. Task-specific parameters keep their unscaled
/// gradients, as with every shared-gradient method here (LibMTL's heads get `e^(s_i) ∇L_i`).
pub(super) struct Imtl {
    pub(super) scales: Vec<f64>,
    pub(super) adam: Adam,
}

impl Weighter for Imtl {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let factors: Vec<f64> = self.scales.iter().map(|s| s.exp()).collect();
        let k = gram(grads);
        let scaled: Vec<Vec<f64>> =
            (0..k.len()).map(|i| (0..k.len()).map(|j| factors[i] * factors[j] * k[i][j]).collect()).collect();
        let weights: Vec<f64> = imtl_weights(&scaled).iter().zip(&factors).map(|(a, f)| a * f).collect();
        let scale_grads: Vec<f64> = factors.iter().zip(input.losses).map(|(f, l)| f * l - 1.0).collect();
        self.adam.step(&mut self.scales, &scale_grads);
        Decision::SharedGradient { gradient: combine(grads, &weights), weights }
    }
}

/// FairGrad needs its `alpha`, so it is not a plain function of K.
pub(super) struct FairGrad {
    pub(super) alpha: f64,
}

impl Weighter for FairGrad {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let k = gram(grads);
        let weights = fairgrad_weights(&k, self.alpha).unwrap_or_else(|| vec![1.0 / k.len() as f64; k.len()]);
        Decision::SharedGradient { gradient: combine(grads, &weights), weights }
    }
}

/// FairGrad's weights (Ban & Ji 2024, Sec. 3): the α-fair allocation, the w > 0 with
/// `(K w)_i = w_i^(−1/α)` (α = 1 gives Nash-MTL's condition). The official code (LibMTL's
/// `FairGrad.py` at 2ab0216) finds it with scipy's `least_squares` from w = 1/n; we minimise the
/// convex `½ wᵀKw − Σ_i φ(w_i)` with `φ' = w^(−1/α)` (φ = ln w for α = 1, else
/// `w^(1−1/α)/(1−1/α)`), whose stationary point is that w, by Newton steps with a backtracking
/// line search that keeps w > 0, from `w_i = K_ii^(−α/(α+1))` (exact for orthogonal gradients).
/// `None` when it has no solution (a zero gradient, or a nonnegative combination of the
/// gradients that vanishes: f is then unbounded below); the caller then uses 1/n, where the
/// official code would keep least squares' best point.
pub(super) fn fairgrad_weights(k: &[Vec<f64>], alpha: f64) -> Option<Vec<f64>> {
    let n = k.len();
    let power = -1.0 / alpha;
    let phi = |w: f64| if alpha == 1.0 { w.ln() } else { w.powf(1.0 + power) / (1.0 + power) };
    let f = |w: &[f64]| 0.5 * quadratic(k, w) - w.iter().map(|&x| phi(x)).sum::<f64>();
    let mut w: Vec<f64> =
        (0..n).map(|i| if k[i][i] > 0.0 { k[i][i].powf(-alpha / (alpha + 1.0)) } else { 1.0 }).collect();
    for _ in 0..200 {
        let gradient: Vec<f64> = mat_vec(k, &w).iter().zip(&w).map(|(kw, x)| kw - x.powf(power)).collect();
        let scale = (0..n).map(|i| mat_vec(k, &w)[i].abs() + w[i].powf(power)).fold(0.0, f64::max);
        if gradient.iter().all(|g| g.abs() <= 1e-12 * scale) {
            return w.iter().all(|x| x.is_finite() && *x > 0.0).then_some(w);
        }
        let mut hessian = k.to_vec();
        for i in 0..n {
            hessian[i][i] += -power * w[i].powf(power - 1.0);
        }
        let step = solve(hessian, gradient.iter().map(|g| -g).collect())?;
        let slope = dot(&gradient, &step);
        if slope.is_nan() || slope >= 0.0 {
            return None;
        }
        let (current, mut t) = (f(&w), 1.0);
        let moved = |t: f64| -> Vec<f64> { w.iter().zip(&step).map(|(x, d)| x + t * d).collect() };
        while t > 1e-12 && (moved(t).iter().any(|x| *x <= 0.0) || f(&moved(t)) > current + 0.25 * t * slope) {
            t *= 0.5;
        }
        if t <= 1e-12 {
            // No decrease left to find: accept w only if it already (nearly) solves the system.
            let close = gradient.iter().all(|g| g.abs() <= 1e-8 * scale);
            return close.then_some(w);
        }
        w = moved(t);
    }
    None
}

/// Aligned-MTL's gradient transform B (Senushkin et al. 2023, Sec. 4 / Alg. 1; the official
/// `ProcrustesSolver` with `scale_mode = "min"`, SamsungLabs/MTL at 3f577f1): with `K = V Λ Vᵀ`
/// (eigenvalues above
/// `λ_max · n · ε_f32` only, the official rank tolerance),
/// `B = √λ_min · V Λ^{-1/2} Vᵀ`. The aligned gradients `G B` are orthogonal with equal norms
/// `√λ_min` (condition number 1): `Bᵀ K B = λ_min · I` on the span of the gradients.
/// `B[i][j]`: the weight of `g_i` in aligned gradient j.
pub fn aligned_mtl_transform(gram: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = gram.len();
    let (values, vectors) = symmetric_eigen(gram);
    let largest = values.first().copied().unwrap_or(0.0);
    // torch.finfo() is float32's by default in the official code; our gradients are f32 too.
    let tolerance = largest * n as f64 * f64::from(f32::EPSILON);
    let kept: Vec<usize> = (0..n).filter(|&e| values[e] > tolerance && values[e] > 0.0).collect();
    let mut b = vec![vec![0.0; n]; n];
    if let Some(&smallest) = kept.last() {
        let sqrt_min = values[smallest].sqrt();
        for &e in &kept {
            let factor = sqrt_min / values[e].sqrt();
            for i in 0..n {
                for j in 0..n {
                    b[i][j] += factor * vectors[e][i] * vectors[e][j];
                }
            }
        }
    }
    b
}

/// The update of Aligned-MTL sums the aligned gradients (equal task weights 1, as the official
/// balancer's `grads[0].sum(-1)`): `G B 1`, so α = B·1.
pub(super) fn aligned_mtl_weights(k: &[Vec<f64>]) -> Vec<f64> {
    aligned_mtl_transform(k).iter().map(|row| row.iter().sum()).collect()
}

fn argmin(x: &[f64]) -> usize {
    (0..x.len()).min_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap_or(0)
}

/// MGDA-UB: the min-norm weights of the representation gradients, as loss weights
/// (Sener & Koltun 2018, Sec. 3.3: the weights found on ∂L_i/∂Z scale the losses).
pub(super) struct MinNormLossWeights;

impl Weighter for MinNormLossWeights {
    fn step(&mut self, input: &StepInput) -> Decision {
        let gradients: Vec<Vec<f64>> =
            shared_gradients(input).iter().map(|g| g.iter().map(|&x| x as f64).collect()).collect();
        Decision::LossWeights(min_norm_weights(&gradients))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_close, check_shared};
    use super::super::Method;
    use super::*;

    fn gram_of(grads: &[&[f64]]) -> Vec<Vec<f64>> {
        gram(&grads.iter().map(|g| g.to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn mgda_two_vectors_closed_form() {
        // Sener & Koltun Alg. 1: α_1 = clamp((g2 − g1)·g2 / ‖g1 − g2‖², 0, 1).
        // g1 = (1, 0), g2 = (0, 2): (−1, 2)·(0, 2)/5 = 0.8 → d = (0.8, 0.4), orthogonal to g1 − g2.
        check_shared(Method::Mgda, &[&[(1.0, &[1.0, 0.0]), (1.0, &[0.0, 2.0])]], &[0.8, 0.4], &[0.8, 0.2], 1e-7);
        // g1 = (1, 0), g2 = (2, 0): (1, 0)·(2, 0)/1 = 2 → clamped to 1: the shorter vector.
        assert_close(&min_norm_weights(&[vec![1.0, 0.0], vec![2.0, 0.0]]), &[1.0, 0.0], 1e-15, "mgda clamp");
        // A general pair, against the formula.
        let (g1, g2) = ([0.3, -1.2, 2.0], [1.1, 0.4, -0.5]);
        let diff: Vec<f64> = g2.iter().zip(&g1).map(|(b, a)| b - a).collect();
        let want = (dot(&diff, &g2) / dot(&diff, &diff)).clamp(0.0, 1.0);
        assert_close(&min_norm_weights(&[g1.to_vec(), g2.to_vec()]), &[want, 1.0 - want], 1e-12, "mgda pair");
    }

    #[test]
    fn mgda_three_vectors() {
        // Orthonormal vectors: the min-norm point is the centroid, α = 1/3 each.
        let e = |i: usize| (0..3).map(|j| f64::from(u8::from(i == j))).collect::<Vec<f64>>();
        assert_close(&min_norm_weights(&[e(0), e(1), e(2)]), &[1.0 / 3.0; 3], 1e-15, "orthonormal");
        // Orthogonal with norms 1, 2, 3: α_i ∝ 1/‖g_i‖² (Lagrange: α_i ‖g_i‖² equal) = (36, 9, 4)/49.
        let grads = [vec![1.0, 0.0, 0.0], vec![0.0, 2.0, 0.0], vec![0.0, 0.0, 3.0]];
        assert_close(&min_norm_weights(&grads), &[36.0 / 49.0, 9.0 / 49.0, 4.0 / 49.0], 1e-12, "orthogonal");
        // A general case with one weight at 0: benches/reference/weighting_reference.py (mgda).
        let grads = [vec![1.0, 0.2, -0.3], vec![-0.4, 1.0, 0.5], vec![0.9, 0.9, 0.1]];
        assert_close(&min_norm_weights(&grads), &MGDA_REFERENCE, 1e-9, "reference");
    }

    /// `weighting_reference.py`, section mgda.
    const MGDA_REFERENCE: [f64; 3] = [0.5432098765432098, 0.4567901234567901, 0.0];

    #[test]
    fn cagrad_with_c_zero_is_the_mean_gradient() {
        // Liu et al. 2021: c = 0 → d = g_0 (and the official 1/(1 + c²) = 1).
        check_shared(
            Method::Cagrad { c: 0.0 },
            &[&[(1.0, &[1.0, 0.0, 2.0]), (1.0, &[-3.0, 1.0, 0.0]), (1.0, &[0.5, 0.5, 0.5])]],
            &[-0.5, 0.5, 2.5 / 3.0],
            &[1.0 / 3.0; 3],
            1e-7,
        );
    }

    #[test]
    fn cagrad_symmetric_case_by_hand() {
        // g1 = (1, 0), g2 = (0, 1): g_w·g_0 = ½ for every w, so F is smallest where ‖g_w‖ is:
        // w = (½, ½), g_w = g_0, d = (1 + c) g_0 / (1 + c²) = (0.6, 0.6) for c = ½.
        check_shared(
            Method::Cagrad { c: 0.5 },
            &[&[(1.0, &[1.0, 0.0]), (1.0, &[0.0, 1.0])]],
            &[0.6, 0.6],
            &[0.6, 0.6],
            1e-7,
        );
    }

    #[test]
    fn imtl_scales_the_losses_then_equalises_projections() {
        // s = 0 at the first step: IMTL-G's weights. Losses (3, 0.5) give ∂/∂s = (2, −0.5), and
        // Adam's first step moves s by ∓lr: factors f = (e^−0.025, e^0.025). IMTL-G on f₁g₁ = (f₁, 0)
        // and f₂g₂ = (0, 2f₂) (orthogonal, norms a = f₁, b = 2f₂) gives α = (b, a)/(a + b), so the
        // weights of g are α_i f_i and the update (2f₁f₂/(f₁ + 2f₂))·(1, 1).
        let (g1, g2): (&[f32], &[f32]) = (&[1.0, 0.0], &[0.0, 2.0]);
        let step = [(3.0, g1), (0.5, g2)];
        let imtl = Method::default_for("imtl").unwrap();
        check_shared(imtl, &[&step], &[2.0 / 3.0, 2.0 / 3.0], &[2.0 / 3.0, 1.0 / 3.0], 1e-7);
        let lr = super::super::loss_level::UNCERTAINTY_LR;
        let (f1, f2) = ((-lr).exp(), lr.exp());
        let (a, b) = (f1, 2.0 * f2);
        let update = 2.0 * f1 * f2 / (f1 + 2.0 * f2);
        check_shared(imtl, &[&step, &step], &[update, update], &[b / (a + b) * f1, a / (a + b) * f2], 1e-7);
    }

    #[test]
    fn fairgrad_matches_the_reference_and_the_closed_forms() {
        // benches/reference/weighting_reference.py (fairgrad): the official least_squares.
        let k = gram_of(&[&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]]);
        let reference: [(f64, [f64; 3]); 3] = [
            (0.5, [0.8640619499720024, 0.8747243605697076, 0.637298427616921]),
            (1.0, [0.8614231961733311, 0.8523323341747431, 0.4626454323087875]),
            (2.0, [0.9381302069200876, 0.8781984722601052, 0.2664104115144826]),
        ];
        for (alpha, want) in reference {
            let got = fairgrad_weights(&k, alpha).expect("a solution");
            assert_close(&got, &want, 1e-12, &format!("fairgrad α = {alpha}"));
        }
        // α = 1 is Nash-MTL's fixed point.
        let nash = super::super::nash_weights(&k).expect("nash");
        assert_close(&fairgrad_weights(&k, 1.0).unwrap(), &nash, 1e-12, "fairgrad α = 1 vs nash");
        // Orthogonal gradients, K = diag(4, 1/4): w_i = K_ii^(−α/(α+1)); α = 3: (4^(−3/4), 4^(3/4)).
        let orthogonal = vec![vec![4.0, 0.0], vec![0.0, 0.25]];
        let want = [4f64.powf(-0.75), 4f64.powf(0.75)];
        assert_close(&fairgrad_weights(&orthogonal, 3.0).unwrap(), &want, 1e-12, "fairgrad orthogonal");
        // No solution for opposite gradients: the caller falls back to the mean.
        assert_eq!(fairgrad_weights(&gram_of(&[&[1.0, 0.0], &[-1.0, 0.0]]), 1.0), None);
    }

    #[test]
    fn cagrad_matches_the_reference() {
        // benches/reference/weighting_reference.py (cagrad): the official formula with SLSQP.
        let k = gram_of(&[&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]]);
        assert_close(&cagrad_weights(&k, 0.5), &CAGRAD_REFERENCE, 1e-7, "cagrad");
    }

    /// `weighting_reference.py`, section cagrad.
    const CAGRAD_REFERENCE: [f64; 3] = [0.5303121966118333, 0.5156413156185982, 0.26666666666666666];

    #[test]
    fn imtl_equalises_projections() {
        // g1 = (1, 0), g2 = (0, 2): u = e1, e2; D = (1, −2), U = (1, −1): α_2 = 1/3, α_1 = 2/3;
        // d = (2/3, 2/3) projects to 2/3 on both unit gradients.
        check_shared(
            Method::ImtlG,
            &[&[(1.0, &[1.0, 0.0]), (1.0, &[0.0, 2.0])]],
            &[2.0 / 3.0, 2.0 / 3.0],
            &[2.0 / 3.0, 1.0 / 3.0],
            1e-7,
        );
        // Three non-orthogonal gradients: Σ α = 1 and d·u_i equal for every i.
        let grads: [&[f64]; 3] = [&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]];
        let alpha = imtl_weights(&gram_of(&grads));
        assert!((alpha.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{alpha:?}");
        let d: Vec<f64> = (0..3).map(|c| (0..3).map(|i| alpha[i] * grads[i][c]).sum()).collect();
        let projections: Vec<f64> = grads.iter().map(|g| dot(&d, g) / dot(g, g).sqrt()).collect();
        assert_close(&projections, &[projections[0]; 3], 1e-12, "imtl projections");
        // Parallel gradients: no unique answer, mean weights.
        assert_close(&imtl_weights(&gram_of(&[&[1.0, 0.0], &[2.0, 0.0]])), &[0.5, 0.5], 0.0, "parallel");
    }

    #[test]
    fn aligned_mtl_orthogonal_gradients_of_different_norms() {
        // K = diag(a², b²), a = 3 > b = 1: V = I, B = b·diag(1/a, 1/b) = diag(1/3, 1), so the aligned
        // gradients are (1, 0), (0, 1) — equal norms, orthogonal — and the update is g1/3 + g2.
        check_shared(
            Method::AlignedMtl,
            &[&[(1.0, &[3.0, 0.0]), (1.0, &[0.0, 1.0])]],
            &[1.0, 1.0],
            &[1.0 / 3.0, 1.0],
            1e-7,
        );
    }

    #[test]
    fn aligned_mtl_gradients_are_orthogonal_with_the_smallest_norm() {
        // Senushkin et al. 2023: (GB)ᵀ(GB) = Bᵀ K B = λ_min I (condition number 1).
        let k = gram_of(&[&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]]);
        let (values, _) = symmetric_eigen(&k);
        let b = aligned_mtl_transform(&k);
        for i in 0..3 {
            for j in 0..3 {
                let entry: f64 = (0..3).map(|p| (0..3).map(|q| b[p][i] * k[p][q] * b[q][j]).sum::<f64>()).sum();
                let want = if i == j { values[2] } else { 0.0 };
                assert!((entry - want).abs() < 1e-12, "(BᵀKB)[{i}][{j}] = {entry}, want {want}");
            }
        }
        // And the weights against the official ProcrustesSolver (weighting_reference.py, aligned-mtl).
        assert_close(&aligned_mtl_weights(&k), &ALIGNED_REFERENCE, 1e-9, "aligned-mtl");
        // Rank-deficient: K = [[1, 2], [2, 4]] keeps λ = 5 with v = (1, 2)/√5, so B = v vᵀ.
        let b = aligned_mtl_transform(&gram_of(&[&[1.0, 0.0], &[2.0, 0.0]]));
        assert_close(&b.concat(), &[0.2, 0.4, 0.4, 0.8], 1e-12, "rank one");
    }

    /// `weighting_reference.py`, section aligned-mtl.
    const ALIGNED_REFERENCE: [f64; 3] = [0.3731677156797324, 0.24863382075516405, -0.2527059362821809];
}
