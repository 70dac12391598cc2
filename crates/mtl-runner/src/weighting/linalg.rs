//! Small dense linear algebra for the n × n task matrices (n = number of tasks), in f64,
//! plus the two vector operations on flattened gradients that every method needs.

/// The Gram matrix `K[i][j] = g_i · g_j`, accumulated in f64.
pub(super) fn gram<T: Copy + Into<f64>>(grads: &[Vec<T>]) -> Vec<Vec<f64>> {
    let n_tasks = grads.len();
    let mut k = vec![vec![0.0; n_tasks]; n_tasks];
    for i in 0..n_tasks {
        for j in i..n_tasks {
            let dot: f64 = grads[i].iter().zip(&grads[j]).map(|(&a, &b)| a.into() * b.into()).sum();
            k[i][j] = dot;
            k[j][i] = dot;
        }
    }
    k
}

/// `Σ_i weights[i] · grads[i]`, accumulated in f64.
pub(super) fn combine<T: Copy + Into<f64>>(grads: &[Vec<T>], weights: &[f64]) -> Vec<f32> {
    let mut sum = vec![0.0f64; grads.first().map_or(0, Vec::len)];
    for (grad, &weight) in grads.iter().zip(weights) {
        if weight != 0.0 {
            for (s, &g) in sum.iter_mut().zip(grad) {
                *s += weight * g.into();
            }
        }
    }
    sum.into_iter().map(|s| s as f32).collect()
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `K · x`.
pub(super) fn mat_vec(k: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    k.iter().map(|row| dot(row, x)).collect()
}

/// `xᵀ K x`.
pub(super) fn quadratic(k: &[Vec<f64>], x: &[f64]) -> f64 {
    dot(x, &mat_vec(k, x))
}

/// `n · softmax(x)` with n = `scale`.
pub(super) fn softmax(x: &[f64], scale: f64) -> Vec<f64> {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| scale * e / total).collect()
}

/// Euclidean projection onto the probability simplex (sort-based; Duchi et al. 2008, Fig. 1).
pub(super) fn project_to_simplex(v: &[f64]) -> Vec<f64> {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut theta = 0.0;
    for (idx, &u) in sorted.iter().enumerate() {
        cumulative += u;
        let candidate = (cumulative - 1.0) / (idx + 1) as f64;
        if u - candidate > 0.0 {
            theta = candidate;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` when `a` is singular
/// to working precision.
pub(super) fn solve(a: Vec<Vec<f64>>, b: Vec<f64>) -> Option<Vec<f64>> {
    solve_with_tolerance(a, b, 1e-13)
}

/// [`solve`], refusing a pivot at most `relative` times the largest entry of `a`. Interior-point
/// systems, whose entries span many orders of magnitude by design, use 0: only a zero (or NaN)
/// pivot is refused, as LAPACK's `getrf` does.
pub(super) fn solve_with_tolerance(mut a: Vec<Vec<f64>>, mut b: Vec<f64>, relative: f64) -> Option<Vec<f64>> {
    let n = b.len();
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for col in 0..n {
        let pivot = (col..n).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        let pivot_size = a[pivot][col].abs();
        if pivot_size.is_nan() || pivot_size <= relative * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (pivot_row, pivot_rhs) = (a[col].clone(), b[col]);
        for (row, rhs) in a[col + 1..].iter_mut().zip(&mut b[col + 1..]) {
            let factor = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
            *rhs -= factor * pivot_rhs;
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

/// The `x ≥ 0` minimising `½ xᵀ A x − bᵀ x` for a symmetric positive definite `A` (n × n): the
/// active-set method of Lawson & Hanson's NNLS (1974) in the form of Bro & de Jong (1997), which
/// works on `A` and `b` directly. Each outer step frees the bound variable whose gradient
/// `b − A x` is largest; each inner step solves on the free set and, where that leaves the
/// orthant, moves back to its boundary. Exact (up to rounding) after finitely many steps; the
/// outer loop is capped at `10·n + 10` in case rounding makes a variable re-enter forever.
pub(super) fn nonnegative_quadratic(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let tolerance = 1e-13 * b.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let mut x = vec![0.0; n];
    let mut free = vec![false; n];
    // The minimiser over the free variables, the others 0 (None: singular to working precision).
    let solve_free = |free: &[bool]| -> Option<Vec<f64>> {
        let index: Vec<usize> = (0..n).filter(|&i| free[i]).collect();
        let sub = index.iter().map(|&i| index.iter().map(|&j| a[i][j]).collect()).collect();
        let solution = solve(sub, index.iter().map(|&i| b[i]).collect())?;
        let mut s = vec![0.0; n];
        index.iter().zip(solution).for_each(|(&i, v)| s[i] = v);
        Some(s)
    };
    for _ in 0..10 * n + 10 {
        let gradient: Vec<f64> = (0..n).map(|i| b[i] - dot(&a[i], &x)).collect();
        let entering = (0..n)
            .filter(|&i| !free[i] && gradient[i] > tolerance)
            .max_by(|&p, &q| gradient[p].total_cmp(&gradient[q]));
        let Some(entering) = entering else { break };
        free[entering] = true;
        while free.iter().any(|&f| f) {
            let Some(s) = solve_free(&free) else { return x };
            if (0..n).filter(|&i| free[i]).all(|i| s[i] > 0.0) {
                x = s;
                break;
            }
            // The furthest step towards s that stays in the orthant; the variables it zeroes leave.
            let (step, leaving) = (0..n)
                .filter(|&i| free[i] && s[i] <= 0.0)
                .map(|i| (x[i] / (x[i] - s[i]), i))
                .fold((f64::INFINITY, entering), |best, next| if next.0 < best.0 { next } else { best });
            for i in 0..n {
                x[i] += step * (s[i] - x[i]);
                if free[i] && (x[i] <= 0.0 || i == leaving) {
                    (free[i], x[i]) = (false, 0.0);
                }
            }
        }
    }
    x
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: eigenvalues in
/// descending order and the matching unit eigenvectors (`vectors[k]` belongs to `values[k]`).
pub(super) fn symmetric_eigen(k: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = k.len();
    let mut a = k.to_vec();
    let mut v: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    let norm: f64 = a.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off.sqrt() <= 1e-15 * norm {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q] == 0.0 {
                    continue;
                }
                // Rotation that zeroes a[p][q] (Golub & Van Loan, Alg. 8.5.1).
                let tau = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
                let t = if tau == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                // A ← Jᵀ A J and V ← V J, J the rotation in the (p, q) plane.
                for row in a.iter_mut().chain(v.iter_mut()) {
                    let (xp, xq) = (row[p], row[q]);
                    row[p] = c * xp - s * xq;
                    row[q] = s * xp + c * xq;
                }
                let (upper, lower) = a.split_at_mut(q);
                for (xp, xq) in upper[p].iter_mut().zip(lower[0].iter_mut()) {
                    let (old_p, old_q) = (*xp, *xq);
                    *xp = c * old_p - s * old_q;
                    *xq = s * old_p + c * old_q;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| a[y][y].total_cmp(&a[x][x]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let vectors = order.iter().map(|&i| v.iter().map(|row| row[i]).collect()).collect();
    (values, vectors)
}

/// Adam as `torch.optim.Adam` does it (β = (0.9, 0.999), ε = 1e-8, L2 `weight_decay` added to
/// the gradient), for the few scalars some methods learn.
#[derive(Clone, Debug)]
pub(super) struct Adam {
    lr: f64,
    weight_decay: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    pub(super) fn new(n: usize, lr: f64, weight_decay: f64) -> Adam {
        Adam { lr, weight_decay, m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }

    pub(super) fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        const BETA1: f64 = 0.9;
        const BETA2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        self.t += 1;
        let bias1 = 1.0 - BETA1.powi(self.t);
        let bias2 = 1.0 - BETA2.powi(self.t);
        for (idx, p) in params.iter_mut().enumerate() {
            let g = grads[idx] + self.weight_decay * *p;
            self.m[idx] = BETA1 * self.m[idx] + (1.0 - BETA1) * g;
            self.v[idx] = BETA2 * self.v[idx] + (1.0 - BETA2) * g * g;
            *p -= self.lr * (self.m[idx] / bias1) / ((self.v[idx] / bias2).sqrt() + EPS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonnegative_quadratic_matches_hand_cases() {
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-14);
        // A = I: x = max(b, 0).
        let identity = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        assert!(close(&nonnegative_quadratic(&identity, &[1.0, -1.0]), &[1.0, 0.0]));
        let a = vec![vec![2.0, 1.0], vec![1.0, 2.0]];
        // Inside the orthant: A⁻¹b = (1/3, 1/3).
        assert!(close(&nonnegative_quadratic(&a, &[1.0, 1.0]), &[1.0 / 3.0, 1.0 / 3.0]));
        // A⁻¹b = (4/3, −5/3) is outside: x₂ = 0, then x₁ = b₁/A₁₁ = 1/2 (and b₂ − A₂₁x₁ < 0).
        assert!(close(&nonnegative_quadratic(&a, &[1.0, -2.0]), &[0.5, 0.0]));
        // Every gradient negative: x = 0.
        assert!(close(&nonnegative_quadratic(&a, &[-1.0, -1.0]), &[0.0, 0.0]));
    }

    #[test]
    fn simplex_projection_matches_hand_cases() {
        // Inside the simplex: unchanged. (2, 0) → (1, 0). (0.5, 0.5, 0.5) → each minus 1/6.
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15);
        assert!(close(&project_to_simplex(&[0.2, 0.8]), &[0.2, 0.8]));
        assert!(close(&project_to_simplex(&[2.0, 0.0]), &[1.0, 0.0]));
        assert!(close(&project_to_simplex(&[0.5, 0.5, 0.5]), &[1.0 / 3.0; 3]));
    }

    #[test]
    fn eigen_decomposition_reconstructs_the_matrix() {
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1 with eigenvectors (1, 1)/√2 and (1, −1)/√2.
        let (values, vectors) = symmetric_eigen(&[vec![2.0, 1.0], vec![1.0, 2.0]]);
        assert!((values[0] - 3.0).abs() < 1e-14 && (values[1] - 1.0).abs() < 1e-14, "{values:?}");
        assert!((vectors[0][0].abs() - 0.5f64.sqrt()).abs() < 1e-14);
        assert!((vectors[0][0] - vectors[0][1]).abs() < 1e-14);
        // A 3 × 3 case: V diag(λ) Vᵀ gives the matrix back.
        let k = vec![vec![4.0, 1.0, -2.0], vec![1.0, 3.0, 0.5], vec![-2.0, 0.5, 5.0]];
        let (values, vectors) = symmetric_eigen(&k);
        for i in 0..3 {
            for j in 0..3 {
                let back: f64 = (0..3).map(|e| values[e] * vectors[e][i] * vectors[e][j]).sum();
                assert!((back - k[i][j]).abs() < 1e-12, "({i}, {j}): {back} vs {}", k[i][j]);
            }
        }
    }

    #[test]
    fn solve_and_singular() {
        // 2x + y = 3, x + 3y = 5 → x = 0.8, y = 1.4.
        let x = solve(vec![vec![2.0, 1.0], vec![1.0, 3.0]], vec![3.0, 5.0]).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-15 && (x[1] - 1.4).abs() < 1e-15);
        assert_eq!(solve(vec![vec![1.0, 2.0], vec![2.0, 4.0]], vec![1.0, 2.0]), None);
    }
}
