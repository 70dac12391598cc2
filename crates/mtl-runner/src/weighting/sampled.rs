//! Methods that need independent gradient samples within one step (Method::samples_per_step:
//! 3): the training loop draws three batches and gives the methods each batch's per-task
//! gradients of the shared parameters, as LibMTL's trainer does for them. sdmgrad and modo
//! both estimate a product of gradients (`G Gᵀ`) from two independent samples, which keeps
//! the estimate unbiased, and update with the third.

use super::linalg::{combine, project_to_simplex};
use super::{shared_gradients, Decision, StepInput, Weighter};

/// The three samples of one step: the input's gradients, then the two others. Given fewer
/// (a caller without independent batches), the input's gradients stand in for the missing.
fn three_samples<'a>(input: &StepInput<'a>, more: &[&'a [Vec<f32>]]) -> [&'a [Vec<f32>]; 3] {
    let first = shared_gradients(input);
    let other = |i: usize| more.get(i).copied().unwrap_or(first);
    [first, other(0), other(1)]
}

/// `A Bᵀ` of two samples' gradients (n × n), accumulated in f64.
fn cross_gram(a: &[Vec<f32>], b: &[Vec<f32>]) -> Vec<Vec<f64>> {
    a.iter()
        .map(|x| b.iter().map(|y| x.iter().zip(y).map(|(&p, &q)| f64::from(p) * f64::from(q)).sum()).collect())
        .collect()
}

/// SDMGrad (Xiao et al. 2023, Alg. 1), as LibMTL's `SDMGrad.py` (at 8bc7605) computes it: with
/// samples ζ, ξ₁, ξ₂, the matrix `M = ξ₁ξ₂ᵀ / (s² + 1e-8)` (s the mean of `√max(M_ii, 0)`) and
/// its row means `m`; the weights w (kept across steps, from 1/n) take `niter` steps of SGD with
/// rate 5 and momentum 0.5 (a fresh momentum each step) on the gradient `M w + λ m`, each
/// projected onto the simplex; the update is `(Σ_i w_i ζ_i + λ·mean_i ζ_i) / (1 + λ)`, whose
/// weights on ζ are reported.
pub(super) struct SdmGrad {
    pub(super) lambda: f64,
    pub(super) iterations: usize,
    pub(super) weights: Vec<f64>,
}

impl Weighter for SdmGrad {
    fn step(&mut self, input: &StepInput) -> Decision {
        self.step_sampled(input, &[])
    }

    fn step_sampled(&mut self, input: &StepInput, more: &[&[Vec<f32>]]) -> Decision {
        let [zeta, xi1, xi2] = three_samples(input, more);
        let n = zeta.len();
        if self.weights.len() != n {
            self.weights = vec![1.0 / n as f64; n];
        }
        let mut m = cross_gram(xi1, xi2);
        let scale = (0..n).map(|i| m[i][i].max(0.0).sqrt()).sum::<f64>() / n as f64;
        m.iter_mut().flatten().for_each(|v| *v /= scale * scale + 1e-8);
        let row_means: Vec<f64> = m.iter().map(|row| row.iter().sum::<f64>() / n as f64).collect();
        let mut velocity = vec![0.0; n];
        for iteration in 0..self.iterations {
            let gradient: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| m[i][j] * self.weights[j]).sum::<f64>() + self.lambda * row_means[i])
                .collect();
            // torch.optim.SGD: the first step's buffer is the gradient itself.
            for (v, g) in velocity.iter_mut().zip(&gradient) {
                *v = if iteration == 0 { *g } else { 0.5 * *v + g };
            }
            let moved: Vec<f64> = self.weights.iter().zip(&velocity).map(|(w, v)| w - 5.0 * v).collect();
            self.weights = project_to_simplex(&moved);
        }
        let weights: Vec<f64> =
            self.weights.iter().map(|w| (w + self.lambda / n as f64) / (1.0 + self.lambda)).collect();
        Decision::SharedGradient { gradient: combine(zeta, &weights), weights }
    }
}

/// MoDo (Chen et al. 2023, Alg. 1), as LibMTL's `MoDo.py` (at 7a2cbe2) computes it: the weights
/// λ (kept across steps, from 1/n) take one projected step
/// `λ ← Π_simplex(λ − γ (G₁ G₂ᵀ λ + ρ λ))` with two samples' gradients, and the update is
/// `Σ_i λ_i g_i` of the third.
pub(super) struct MoDo {
    pub(super) gamma: f64,
    pub(super) rho: f64,
    pub(super) weights: Vec<f64>,
}

impl Weighter for MoDo {
    fn step(&mut self, input: &StepInput) -> Decision {
        self.step_sampled(input, &[])
    }

    fn step_sampled(&mut self, input: &StepInput, more: &[&[Vec<f32>]]) -> Decision {
        let [first, second, third] = three_samples(input, more);
        let n = first.len();
        if self.weights.len() != n {
            self.weights = vec![1.0 / n as f64; n];
        }
        let m = cross_gram(first, second);
        let moved: Vec<f64> = (0..n)
            .map(|i| {
                let pull: f64 = (0..n).map(|j| m[i][j] * self.weights[j]).sum();
                self.weights[i] - self.gamma * (pull + self.rho * self.weights[i])
            })
            .collect();
        self.weights = project_to_simplex(&moved);
        Decision::SharedGradient { gradient: combine(third, &self.weights), weights: self.weights.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weighting::tests::assert_close;
    use crate::weighting::Method;

    /// One step of `method` on three samples (per sample, per task: a gradient).
    fn decide(method: Method, samples: [&[&[f32]]; 3]) -> (Vec<f64>, Vec<f64>) {
        let owned: Vec<Vec<Vec<f32>>> = samples.iter().map(|s| s.iter().map(|g| g.to_vec()).collect()).collect();
        let n = owned[0].len();
        let input = StepInput { losses: &vec![1.0; n], static_weights: &[], shared_gradients: Some(&owned[0]) };
        let more: Vec<&[Vec<f32>]> = owned[1..].iter().map(Vec::as_slice).collect();
        match method.start(n, 0).step_sampled(&input, &more) {
            Decision::SharedGradient { gradient, weights } => {
                (gradient.iter().map(|&g| f64::from(g)).collect(), weights)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn modo_one_step_by_hand() {
        // G₁ = G₂ = [(1, 0), (0, 2)]: G₁G₂ᵀ = diag(1, 4). With γ = 0.1, ρ = 0.1 from λ = ½:
        // λ − γ(diag(1, 4)λ + ρλ) = (0.445, 0.295), projected (+0.13 each): (0.575, 0.425);
        // the update weighs the third sample, (3, 0) and (0, 5).
        let modo = Method::default_for("modo").unwrap().with(&[("modo_gamma", 0.1)]).unwrap();
        let two: &[&[f32]] = &[&[1.0, 0.0], &[0.0, 2.0]];
        let (gradient, weights) = decide(modo, [two, two, &[&[3.0, 0.0], &[0.0, 5.0]]]);
        assert_close(&weights, &[0.575, 0.425], 1e-12, "modo weights");
        assert_close(&gradient, &[3.0 * 0.575, 5.0 * 0.425], 1e-6, "modo update");
    }

    #[test]
    fn sdmgrad_one_iteration_by_hand() {
        // ξ₁ = ξ₂ = [(1, 0), (0, 2)]: M = diag(1, 4)/1.5², row means m = (1, 4)/(2·2.25); from
        // w = ½ the gradient Mw + 0.3m = 1.3·(1, 4)/4.5, and w − 5·that = (−0.944, −5.278)
        // projects onto the vertex (1, 0). Weights on ζ: ((1 + 0.15)/1.3, 0.15/1.3).
        let sdmgrad = Method::default_for("sdmgrad").unwrap().with(&[("sdmgrad_niter", 1.0)]).unwrap();
        let two: &[&[f32]] = &[&[1.0, 0.0], &[0.0, 2.0]];
        let (gradient, weights) = decide(sdmgrad, [&[&[4.0, 1.0], &[1.0, 3.0]], two, two]);
        let want = [1.15 / 1.3, 0.15 / 1.3];
        assert_close(&weights, &want, 1e-9, "sdmgrad weights");
        assert_close(&gradient, &[4.0 * want[0] + want[1], want[0] + 3.0 * want[1]], 1e-6, "sdmgrad update");
    }

    #[test]
    fn sdmgrad_matches_the_reference() {
        // benches/reference/weighting_reference.py (sdmgrad): torch's SGD with momentum in numpy.
        let zeta: &[&[f32]] = &[&[1.0, 0.2, -0.3], &[-0.4, 1.0, 0.5], &[0.9, 0.9, 0.1]];
        let xi1: &[&[f32]] = &[&[1.0, 0.3, -0.2], &[-0.3, 0.9, 0.6], &[0.8, 1.0, 0.0]];
        let xi2: &[&[f32]] = &[&[0.9, 0.1, -0.4], &[-0.5, 1.1, 0.4], &[1.0, 0.8, 0.2]];
        let reference: [(f64, [f64; 3]); 3] = [
            (1.0, [0.17077939415839136, 0.7522975289185316, 0.07692307692307691]),
            (3.0, [0.07692307692307691, 0.8461538461538461, 0.07692307692307691]),
            (20.0, [0.8461538461538461, 0.07692307692307691, 0.07692307692307691]),
        ];
        for (niter, want) in reference {
            let method = Method::default_for("sdmgrad").unwrap().with(&[("sdmgrad_niter", niter)]).unwrap();
            let (_, weights) = decide(method, [zeta, xi1, xi2]);
            // The gradients are f32 here and f64 in the script: their products differ in the 8th digit.
            assert_close(&weights, &want, 1e-6, &format!("sdmgrad niter {niter}"));
        }
    }
}
