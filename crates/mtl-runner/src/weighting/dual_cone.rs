//! Aggregators from Jacobian descent (Quinton & Rey 2024) and its library torchjd: upgrad and
//! dualproj keep the update in the dual cone of the task gradients (`{x : g_j·x ≥ 0 ∀j}`: to
//! first order no task's loss rises); config (ConFIG, Liu et al. 2024) takes the direction with
//! equal cosines to every task's gradient. All three are weights over the Gram matrix, so the
//! update is `Σ_i α_i g_i` exactly. Defaults and tolerances follow torchjd's `UPGrad`,
//! `DualProj` and `ConFIG` (torchjd at 098255d, `aggregation/_upgrad.py`, `_dualproj.py`,
//! `_config.py`, `_utils/gramian.py`, `_utils/dual_cone.py`), with their default preference
//! vectors (the mean for upgrad and dualproj, ones for config).

use super::linalg::{combine, dot, gram, mat_vec, nonnegative_quadratic, symmetric_eigen};
use super::{shared_gradients, Decision, StepInput, Weighter};

/// torchjd's `norm_eps`: a Gram matrix whose trace is below this is taken as zero.
const NORM_EPS: f64 = 1e-4;

/// torchjd's `reg_eps`: added to the diagonal of the normalised Gram matrix so that it is
/// positive definite (rounding can leave it slightly indefinite).
const REG_EPS: f64 = 1e-4;

/// `K / trace(K) + REG_EPS·I` (the trace is ‖G‖²_F; `K` is taken as zero when its trace is
/// below [`NORM_EPS`]), as torchjd's `regularize(normalize(K))`. The scaling does not move the
/// projections; the regularisation does, slightly.
fn regularised(k: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let trace: f64 = (0..k.len()).map(|i| k[i][i]).sum();
    let scale = if trace < NORM_EPS { 0.0 } else { 1.0 / trace };
    (0..k.len()).map(|i| (0..k.len()).map(|j| k[i][j] * scale + if i == j { REG_EPS } else { 0.0 }).collect()).collect()
}

/// The weights `v` of the projection of `Σ_i u_i g_i` onto the dual cone of the gradients whose
/// (positive definite) Gram matrix is `k`: by Quinton & Rey 2024 (Prop. 1), the `v` minimising
/// `vᵀ K v` subject to `v ≥ u`. With `v = u + x`, `x ≥ 0` minimises `½ xᵀKx + xᵀ(K u)`.
pub(super) fn project_weights(k: &[Vec<f64>], u: &[f64]) -> Vec<f64> {
    let b: Vec<f64> = mat_vec(k, u).iter().map(|v| -v).collect();
    let x = nonnegative_quadratic(k, &b);
    u.iter().zip(x).map(|(u, x)| u + x).collect()
}

/// UPGrad: each gradient (weighted 1/n) projected onto the dual cone, the projections summed.
pub(super) fn upgrad_weights(k: &[Vec<f64>]) -> Vec<f64> {
    let n = k.len();
    let k = regularised(k);
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut u = vec![0.0; n];
        u[i] = 1.0 / n as f64;
        weights.iter_mut().zip(project_weights(&k, &u)).for_each(|(w, v)| *w += v);
    }
    weights
}

/// DualProj: the mean gradient projected onto the dual cone (the projection of Lopez-Paz &
/// Ranzato 2017's GEM, Eq. 11).
pub(super) fn dualproj_weights(k: &[Vec<f64>]) -> Vec<f64> {
    let n = k.len();
    project_weights(&regularised(k), &vec![1.0 / n as f64; n])
}

/// ConFIG's weights for gradients with Gram matrix `k`, `n_params` long (Liu et al. 2024, Eq. 2):
/// with unit gradients `û_i` (zero for a zero gradient), the direction `d = pinv(Û)·1` (the
/// least-norm `d` with `û_i·d = 1` for all i, as far as they can hold) is normalised, and the
/// update is `(Σ_i g_i·d̂) d̂`. Since `d = Ûᵀ c` with `c = (Û Ûᵀ)⁺ 1`, everything follows from `k`.
/// The pseudo-inverse drops singular values of `Û` below `max(n, n_params)·ε_f32` times the
/// largest, as `torch.linalg.pinv`'s default does on torchjd's f32 matrices.
pub(super) fn config_weights(k: &[Vec<f64>], n_params: usize) -> Vec<f64> {
    let n = k.len();
    let norms: Vec<f64> = (0..n).map(|i| k[i][i].max(0.0).sqrt()).collect();
    let unit =
        |i: usize, j: usize| if norms[i] > 0.0 && norms[j] > 0.0 { k[i][j] / (norms[i] * norms[j]) } else { 0.0 };
    let unit_gram: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| unit(i, j)).collect()).collect();
    // c = N⁺ 1 from N = V Λ Vᵀ, keeping eigenvalues λ = σ² with σ above the tolerance.
    let (values, vectors) = symmetric_eigen(&unit_gram);
    let largest = values.first().copied().unwrap_or(0.0).max(0.0);
    let rtol = n.max(n_params) as f64 * f64::from(f32::EPSILON);
    let mut c = vec![0.0; n];
    for (value, vector) in values.iter().zip(&vectors) {
        if *value > 0.0 && value.sqrt() > rtol * largest.sqrt() {
            let along = vector.iter().sum::<f64>() / value;
            c.iter_mut().zip(vector).for_each(|(c, v)| *c += along * v);
        }
    }
    // d = Σ_j c_j û_j = Σ_j (c_j/‖g_j‖) g_j; ‖d‖² = cᵀNc; Σ_i g_i·d = Σ_ij K_ij c_j/‖g_j‖.
    let per_gradient: Vec<f64> = (0..n).map(|j| if norms[j] > 0.0 { c[j] / norms[j] } else { 0.0 }).collect();
    let length_of_d = dot(&c, &mat_vec(&unit_gram, &c)).max(0.0).sqrt();
    if length_of_d == 0.0 {
        return vec![0.0; n];
    }
    let along_d: f64 = mat_vec(k, &per_gradient).iter().sum::<f64>() / length_of_d;
    per_gradient.iter().map(|p| along_d / length_of_d * p).collect()
}

/// ConFIG needs the gradients' length for its pseudo-inverse tolerance.
pub(super) struct Config;

impl Weighter for Config {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let weights = config_weights(&gram(grads), grads[0].len());
        Decision::SharedGradient { gradient: combine(grads, &weights), weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::tests::{assert_close, check_shared};
    use crate::weighting::Method;

    /// torchjd's documented example (the docstrings of `DualProj` and `ConFIG`):
    /// J = [[−4, 1, 1], [6, 1, 1]].
    const EXAMPLE: [&[f32]; 2] = [&[-4.0, 1.0, 1.0], &[6.0, 1.0, 1.0]];

    fn example_gradient(method: &str) -> Vec<f64> {
        let mut weighter = Method::default_for(method).unwrap().start(2, 0);
        let grads: Vec<Vec<f32>> = EXAMPLE.iter().map(|g| g.to_vec()).collect();
        let input = StepInput { losses: &[1.0, 1.0], static_weights: &[], shared_gradients: Some(&grads) };
        match weighter.step(&input) {
            Decision::SharedGradient { gradient, .. } => gradient.iter().map(|&g| f64::from(g)).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dualproj_and_config_reproduce_torchjds_documented_example() {
        // torchjd prints 4 decimals: DualProj [0.5563, 1.1109, 1.1109], ConFIG [0.1588, 2.0706, 2.0706].
        assert_close(&example_gradient("dualproj"), &[0.5563, 1.1109, 1.1109], 5e-5, "dualproj");
        assert_close(&example_gradient("config"), &[0.1588, 2.0706, 2.0706], 5e-5, "config");
    }

    #[test]
    fn non_conflicting_gradients_are_left_as_they_are() {
        // Orthogonal gradients: the mean (dualproj) and each gradient (upgrad) already lie in the
        // dual cone, so the weights are the mean's, up to the REG_EPS regularisation.
        let g: [&[f32]; 2] = [&[1.0, 0.0], &[0.0, 3.0]];
        let step = [(1.0, g[0]), (1.0, g[1])];
        check_shared(Method::default_for("upgrad").unwrap(), &[&step], &[0.5, 1.5], &[0.5, 0.5], 1e-12);
        check_shared(Method::default_for("dualproj").unwrap(), &[&step], &[0.5, 1.5], &[0.5, 0.5], 1e-12);
        // ConFIG on orthogonal gradients: d ∝ û₁ + û₂ (equal cosines), length Σ g_i·d̂ = (1 + 3)/√2,
        // so the update is (1 + 3)/2 · (1, 1) = (2, 2): weights (2, 2/3).
        check_shared(Method::default_for("config").unwrap(), &[&step], &[2.0, 2.0], &[2.0, 2.0 / 3.0], 1e-12);
    }

    #[test]
    fn the_updates_do_not_conflict_with_any_task() {
        // Two strongly conflicting gradients and a third: upgrad's and dualproj's updates have a
        // non-negative dot product with every gradient (to the REG_EPS regularisation).
        let grads = vec![vec![1.0f32, 0.1, 0.0], vec![-1.0, 0.2, 0.1], vec![0.3, -0.2, 1.0]];
        let k = gram(&grads);
        for weights in [upgrad_weights(&k), dualproj_weights(&k)] {
            let update: Vec<f64> = combine(&grads, &weights).iter().map(|&v| f64::from(v)).collect();
            for g in &grads {
                let g: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
                let bound = 1e-3 * dot(&g, &g).sqrt() * dot(&update, &update).sqrt();
                assert!(dot(&g, &update) > -bound, "{weights:?} conflicts with {g:?}");
            }
        }
        // The plain mean does conflict: the test is not vacuous.
        let mean: Vec<f64> = combine(&grads, &[1.0 / 3.0; 3]).iter().map(|&v| f64::from(v)).collect();
        assert!(grads.iter().any(|g| g.iter().zip(&mean).map(|(&a, b)| f64::from(a) * b).sum::<f64>() < -0.01));
    }

    #[test]
    fn the_methods_match_the_reference() {
        // benches/reference/weighting_reference.py: the three gradients of the solvers' tests.
        let grads = [[1.0, 0.2, -0.3], [-0.4, 1.0, 0.5], [0.9, 0.9, 0.1]].map(|g| g.to_vec());
        let k = gram(&grads);
        let upgrad = [0.436540085060056, 0.416051186753043, 0.3333333333333333];
        // The mean of these three already conflicts with none of them.
        let dualproj = [1.0 / 3.0; 3];
        let config = [5.036454407909872, 3.109595655477311, -4.322893851278399];
        assert_close(&upgrad_weights(&k), &upgrad, 1e-9, "upgrad");
        assert_close(&dualproj_weights(&k), &dualproj, 1e-9, "dualproj");
        assert_close(&config_weights(&k, 3), &config, 1e-9, "config");
    }
}
