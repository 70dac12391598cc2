//! Methods that edit the task gradients one pair at a time (pcgrad, gradvac) or keep a moving
//! average of them (db-mtl).
//!
//! PCGrad and GradVac only ever add multiples of the original gradients to one another, so they
//! run on coefficients over the Gram matrix `K = GᵀG` (n × n) instead of on the flattened
//! vectors: `g_i' = Σ_k c_ik g_k`, `g_i'·g_j = Σ_k c_ik K_kj`, `‖g_i'‖² = c_iᵀ K c_i`. The update
//! `Σ_i g_i' = Σ_k (Σ_i c_ik) g_k` then has exact effective task weights `Σ_i c_ik`, which are
//! what the decision reports. Same result as projecting the vectors, in O(n²P + n³) time and
//! no copies of the gradients.

use mtl_data::Rng;

use super::linalg::{combine, dot, gram, quadratic};
use super::{shared_gradients, Decision, StepInput, Weighter};

/// PCGrad (Yu et al. 2020, Alg. 1): for each task i, in a random order over the other tasks j,
/// `g_i ← g_i − (g_i·g_j / ‖g_j‖²) g_j` whenever `g_i·g_j < 0` (against the original `g_j`);
/// the update is the sum of the projected gradients (the paper; LibMTL at 4336804 and Nash-MTL's
/// code at cce18403 sum too). Unlike LibMTL at 4336804, whose shuffled order includes i itself,
/// a task is never projected against itself (the paper's j ≠ i).
pub(super) struct PcGrad {
    pub(super) rng: Rng,
}

impl Weighter for PcGrad {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let k = gram(grads);
        let weights = pairwise(&mut self.rng, &k, |_, j, coefficients| {
            let conflict = dot(coefficients, &k[j]);
            if conflict < 0.0 {
                coefficients[j] -= conflict / k[j][j];
            }
        });
        Decision::SharedGradient { gradient: combine(grads, &weights), weights }
    }
}

/// GradVac (Wang et al. 2021, Sec. 3.2 and Alg. 1): EMA targets `φ̂_ij` (initially 0, decay β).
/// For each task i, in a random order over the other tasks j, with `φ_ij = cos(g_i', g_j)`:
/// if `φ_ij < φ̂_ij`, `g_i' += ‖g_i'‖ (φ̂_ij √(1−φ_ij²) − φ_ij √(1−φ̂_ij²)) / (‖g_j‖ √(1−φ̂_ij²)) · g_j`
/// (eq. 2), which makes the cosine exactly `φ̂_ij`; then `φ̂_ij ← (1−β) φ̂_ij + β φ_ij` (eq. 3).
/// The update is `Σ_i g_i'`.
///
/// Two choices: (1) the whole flattened shared gradient is one group (LibMTL's
/// `GradVac_group_type = 0` at 4336804; the paper also discusses finer groups, per layer or per parameter
/// matrix, LibMTL's types 1 and 2); (2) the EMA is updated for every pair, as in the paper's
/// Alg. 1 and in LibMTL since d2d84fa (2024-02-15, "fix a bug in GradVac"; checked at 4336804).
/// Before that commit LibMTL updated it only inside the `if`, which kept `φ̂` from ever rising
/// above 0.
pub(super) struct GradVac {
    pub(super) beta: f64,
    /// `targets[i][j]` = φ̂_ij.
    pub(super) targets: Vec<Vec<f64>>,
    pub(super) rng: Rng,
}

impl Weighter for GradVac {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        let k = gram(grads);
        let (beta, targets) = (self.beta, &mut self.targets);
        let weights = pairwise(&mut self.rng, &k, |i, j, coefficients| {
            let norm_i = quadratic(&k, coefficients).max(0.0).sqrt();
            let norm_j = k[j][j].sqrt();
            if norm_i == 0.0 || norm_j == 0.0 {
                return; // no direction, no similarity
            }
            let phi = (dot(coefficients, &k[j]) / (norm_i * norm_j)).clamp(-1.0, 1.0);
            let target = targets[i][j];
            if phi < target && target < 1.0 {
                let sin_target = (1.0 - target * target).sqrt();
                let numerator = target * (1.0 - phi * phi).sqrt() - phi * sin_target;
                coefficients[j] += norm_i * numerator / (norm_j * sin_target);
            }
            targets[i][j] = (1.0 - beta) * target + beta * phi;
        });
        Decision::SharedGradient { gradient: combine(grads, &weights), weights }
    }
}

/// DB-MTL (Lin et al. 2023), following the authors' LibMTL `DB_MTL.py` (at 4336804):
/// - loss-scale balancing: the gradient of `log(L_i + 1e-8)`, i.e. `g_i / (L_i + 1e-8)`;
/// - an EMA of it, `ĝ_i ← β_t ĝ_i + (1 − β_t) g_i/(L_i + ε)` with `β_t = β / t^σ`, `ĝ_i` = 0 at
///   the start;
/// - gradient-magnitude balancing: update `Σ_i (max_j ‖ĝ_j‖ / ‖ĝ_i‖) ĝ_i`.
///
/// The reported weights are those magnitude factors `max_j ‖ĝ_j‖ / ‖ĝ_i‖` (they apply to the
/// moving averages, not to this step's gradients). Deviation: in LibMTL the task-specific
/// parameters receive the gradient of `log L_i` (`∇L_i / L_i`); with `SharedGradient` ours
/// receive the unweighted `∇L_i` — under Adam this changes little, since Adam is invariant to a
/// constant per-parameter scale, but `1/L_i` changes as training goes.
pub(super) struct DbMtl {
    pub(super) beta: f64,
    pub(super) beta_sigma: f64,
    pub(super) step: u64,
    /// Per task, the moving average of its log-loss gradient (empty before the first step).
    pub(super) averages: Vec<Vec<f64>>,
}

impl Weighter for DbMtl {
    fn step(&mut self, input: &StepInput) -> Decision {
        let grads = shared_gradients(input);
        self.step += 1;
        let beta_t = self.beta / (self.step as f64).powf(self.beta_sigma);
        if self.averages.is_empty() {
            self.averages = grads.iter().map(|g| vec![0.0; g.len()]).collect();
        }
        for ((average, grad), loss) in self.averages.iter_mut().zip(grads).zip(input.losses) {
            let scale = 1.0 / (loss + 1e-8);
            for (a, &g) in average.iter_mut().zip(grad) {
                let log_grad = f64::from(g) * scale;
                *a = log_grad + beta_t * (*a - log_grad);
            }
        }
        let norms: Vec<f64> = self.averages.iter().map(|a| dot(a, a).sqrt()).collect();
        let largest = norms.iter().copied().fold(0.0, f64::max);
        let weights: Vec<f64> = norms.iter().map(|&norm| if norm > 0.0 { largest / norm } else { 0.0 }).collect();
        Decision::SharedGradient { gradient: combine(&self.averages, &weights), weights }
    }
}

/// The loop PCGrad and GradVac share: for each task i, its gradient's coefficients start at
/// `e_i` and `adjust(i, j, coefficients)` edits them against each other task j, in a random
/// order; the update's effective task weights are the sum of all tasks' coefficients.
fn pairwise(rng: &mut Rng, k: &[Vec<f64>], mut adjust: impl FnMut(usize, usize, &mut [f64])) -> Vec<f64> {
    let n = k.len();
    let mut weights = vec![0.0; n];
    for i in 0..n {
        let mut coefficients = vec![0.0; n];
        coefficients[i] = 1.0;
        let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        rng.shuffle(&mut others);
        for j in others {
            adjust(i, j, &mut coefficients);
        }
        for (w, c) in weights.iter_mut().zip(&coefficients) {
            *w += c;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::super::tests::check_shared;
    use super::super::Method;

    #[test]
    fn pcgrad_on_two_conflicting_vectors() {
        // g1 = (1, 0), g2 = (−1, 1): g1·g2 = −1 < 0 (Yu et al. 2020, Alg. 1).
        // g1' = g1 − (−1/2) g2 = (½, ½); g2' = g2 − (−1/1) g1 = (0, 1); sum (½, 3/2)
        // = 2·g1 + 1.5·g2.
        check_shared(Method::PcGrad, &[&[(1.0, &[1.0, 0.0]), (1.0, &[-1.0, 1.0])]], &[0.5, 1.5], &[2.0, 1.5], 1e-12);
        // No conflict (g1·g2 = 1): the plain sum.
        check_shared(Method::PcGrad, &[&[(1.0, &[1.0, 0.0]), (1.0, &[1.0, 1.0])]], &[2.0, 1.0], &[1.0, 1.0], 0.0);
        // A third task orthogonal to both is left alone, whatever the order.
        check_shared(
            Method::PcGrad,
            &[&[(1.0, &[1.0, 0.0, 0.0]), (1.0, &[-1.0, 1.0, 0.0]), (1.0, &[0.0, 0.0, 1.0])]],
            &[0.5, 1.5, 1.0],
            &[2.0, 1.5, 1.0],
            1e-12,
        );
    }

    #[test]
    fn gradvac_reduces_to_pcgrad_with_zero_targets() {
        // With φ̂ = 0 the adjustment makes the cosine 0: the PCGrad projection (Wang et al. 2021,
        // Sec. 3: PCGrad is the special case φ̂ = 0).
        check_shared(
            Method::GradVac { beta: 0.5 },
            &[&[(1.0, &[1.0, 0.0]), (1.0, &[-1.0, 1.0])]],
            &[0.5, 1.5],
            &[2.0, 1.5],
            1e-12,
        );
    }

    #[test]
    fn gradvac_raises_similarity_to_the_moving_target() {
        // Step 1: g1 = (1, 0), g2 = (1, 1), φ = 1/√2 > φ̂ = 0: no change; φ̂ ← β/√2 = 0.3536 (β = ½).
        // Step 2: g1 = (1, 0), g2 = (0, 1), φ = 0 < φ̂: g1' = g1 + w g2, g2' = g2 + w g1 with
        // w = φ̂/√(1 − φ̂²), so cos(g1', g2) = φ̂; the sum is (1 + w)(1, 1).
        // (LibMTL before d2d84fa, 2024-02-15, updated φ̂ only on a conflict, so it would leave
        // φ̂ = 0 and not touch step 2.)
        let target = 0.5 / 2f64.sqrt();
        let w = target / (1.0 - target * target).sqrt();
        check_shared(
            Method::GradVac { beta: 0.5 },
            &[&[(1.0, &[1.0, 0.0]), (1.0, &[1.0, 1.0])], &[(1.0, &[1.0, 0.0]), (1.0, &[0.0, 1.0])]],
            &[1.0 + w, 1.0 + w],
            &[1.0 + w, 1.0 + w],
            1e-6,
        );
    }

    #[test]
    fn db_mtl_balances_log_gradient_averages() {
        // Step 1 (β = 0.9, σ = 0.5, β_1 = 0.9): ∇log L = g/L: (2, 0)/2 = (1, 0) and (0, 3)/0.5 = (0, 6);
        // averages 0.1·(1, 0) and 0.1·(0, 6); max norm 0.6 → update 0.6·((1, 0) + (0, 1)),
        // factors (6, 1).
        let first: &[(f64, &[f32])] = &[(2.0, &[2.0, 0.0]), (0.5, &[0.0, 3.0])];
        let method = Method::DbMtl { beta: 0.9, beta_sigma: 0.5 };
        check_shared(method, &[first], &[0.6, 0.6], &[6.0, 1.0], 1e-7);
        // Step 2: β_2 = 0.9/√2; task 1's log-gradient turns to (0, 1):
        // â_1 = (0, 1) + β_2((0.1, 0) − (0, 1)), â_2 = (0, 6)(1 − 0.9 β_2).
        let beta_2 = 0.9 / 2f64.sqrt();
        let a1 = [0.1 * beta_2, 1.0 - beta_2];
        let a2 = [0.0, 6.0 * (1.0 - 0.9 * beta_2)];
        let (n1, n2) = ((a1[0] * a1[0] + a1[1] * a1[1]).sqrt(), a2[1]);
        let largest = n1.max(n2);
        let update = [largest / n1 * a1[0], largest / n1 * a1[1] + largest / n2 * a2[1]];
        check_shared(
            method,
            &[first, &[(2.0, &[0.0, 2.0]), (0.5, &[0.0, 3.0])]],
            &update,
            &[largest / n1, largest / n2],
            1e-6,
        );
    }
}
