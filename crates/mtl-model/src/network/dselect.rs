//! The DSelect-k gate (Hazimeh et al. 2021, "DSelect-k: Differentiable Selection in the
//! Mixture of Experts with Applications to Multi-Task Learning", NeurIPS 2021, Sec. 3), the
//! per-example form that the paper's multi-task experiments use in place of MMoE's softmax
//! gates: each task's gate weighs the same shared experts.
//!
//! With E experts and m = ⌈log₂ E⌉ bits, a *single-expert selector* reads m logits z and
//! gives expert e (whose binary code, most significant bit first, is l(e)) the weight
//! `r(z)_e = Π_j [l(e)_j = 1]·s(z_j) + [l(e)_j = 0]·(1 − s(z_j))`, where `s` is the
//! smooth-step `s(t) = 0` for `t ≤ −γ/2`, `−2t³/γ³ + 3t/(2γ) + 1/2` between, `1` for `t ≥ γ/2`
//! (Eq. 2): `r` sums to 1 over the 2^m codes and picks exactly one once every `s(z_j)` is
//! 0 or 1. The gate mixes k selectors by a softmax over k logits α (Eq. 4):
//! `q = Σ_i softmax(α)_i · r(z⁽ⁱ⁾)`. Per example, `z = W_z·x + b_z` (k·m outputs) and
//! `α = W_α·x + b_α` (k outputs), x being what MMoE's gates read.
//!
//! Where this departs from the paper and its official code:
//! - E need not be a power of two. The codes are those of 0…E−1; the weights that the
//!   2^m − E unused codes would take are dropped and each selector's weights renormalised to
//!   sum to 1 (`r_e / Σ_{e'<E} r_e'`), instead of the paper's penalty that pushes a selector
//!   off the unused codes. A selector whose every bit has saturated onto an unused code
//!   (possible only when E is not a power of two) then weighs every expert 0.
//! - The paper's optional entropy regulariser (which pushes each selector to a single expert
//!   faster; off by default in the official code) is not implemented.
//!
//! Initialisation follows the official code under every `InitScheme`: `W_z`, `b_z` uniform
//! in ±γ/100 (every `s(z)` starts near 1/2, every expert weighed about equally), `W_α`,
//! `b_α` uniform in ±0.05 (Keras' `RandomUniform` default).

use candle_core::{Result, Tensor, D};
use candle_nn::{Init, Linear, Module, VarBuilder};

/// One task's DSelect-k gate: `codes` gives the k·m selector logits z, `selectors` the k
/// logits α; parameters `<gate>.codes.{weight,bias}` and `<gate>.selectors.{weight,bias}`.
pub(crate) struct DSelectGate {
    codes: Linear,
    selectors: Linear,
    n_experts: usize,
    n_selectors: usize,
    n_bits: usize,
    gamma: f64,
}

/// ⌈log₂ n⌉ for n ≥ 1.
fn bits_for(n: usize) -> usize {
    n.next_power_of_two().trailing_zeros() as usize
}

/// The smooth-step `s(t)` of width γ (Hazimeh et al. 2021, Eq. 2), elementwise. Clamping
/// first gives the flat parts; the cubic's slope is 0 at ±γ/2, so `s` is C¹ and the clamp's
/// corner costs finite differences nothing.
pub(crate) fn smooth_step(t: &Tensor, gamma: f64) -> Result<Tensor> {
    let c = t.clamp(-gamma / 2.0, gamma / 2.0)?;
    let cubic = (c.powf(3.0)? * (-2.0 / gamma.powi(3)))?;
    (cubic + (c * (3.0 / (2.0 * gamma)))?)? + 0.5
}

impl DSelectGate {
    /// A gate over `n_experts` experts with `n_selectors` selectors, reading `gate_size`
    /// features, its parameters under `vb`.
    pub(crate) fn new(
        gate_size: usize,
        n_experts: usize,
        n_selectors: usize,
        gamma: f64,
        vb: VarBuilder,
    ) -> Result<DSelectGate> {
        let n_bits = bits_for(n_experts);
        let uniform = |bound: f64| Init::Uniform { lo: -bound, up: bound };
        let layer = |outputs: usize, bound: f64, vb: VarBuilder| -> Result<Linear> {
            let weight = vb.get_with_hints((outputs, gate_size), "weight", uniform(bound))?;
            let bias = vb.get_with_hints(outputs, "bias", uniform(bound))?;
            Ok(Linear::new(weight, Some(bias)))
        };
        let codes = layer(n_selectors * n_bits, gamma / 100.0, vb.pp("codes"))?;
        let selectors = layer(n_selectors, 0.05, vb.pp("selectors"))?;
        Ok(DSelectGate { codes, selectors, n_experts, n_selectors, n_bits, gamma })
    }

    /// The expert weights `[B, n_experts]` for the gate input `[B, gate_size]`.
    pub(crate) fn weights(&self, gate_input: &Tensor) -> Result<Tensor> {
        let batch = gate_input.dim(0)?;
        let z = self.codes.forward(gate_input)?.reshape((batch, self.n_selectors, self.n_bits))?;
        let per_selector = selector_weights(&smooth_step(&z, self.gamma)?, self.n_experts)?;
        // `ops::softmax`, not the fused `softmax_last_dim`, which records no backward in candle 0.11.1.
        let mixing = candle_nn::ops::softmax(&self.selectors.forward(gate_input)?, D::Minus1)?;
        mixing.unsqueeze(1)?.matmul(&per_selector)?.squeeze(1)
    }
}

/// Each selector's expert weights `[B, k, n_experts]` from its smooth-stepped logits
/// `s [B, k, m]`: the product over the bits of `s_j` (bit j of the expert's code set, the
/// most significant first) or `1 − s_j`, renormalised over the experts when `n_experts` is
/// not `2^m` (see the module's notes).
pub(crate) fn selector_weights(s: &Tensor, n_experts: usize) -> Result<Tensor> {
    let (batch, n_selectors, n_bits) = s.dims3()?;
    let mut weights: Option<Tensor> = None;
    for bit in 0..n_bits {
        // bit j of code e, most significant first: as `f(s) = (1 − c) + (2c − 1)·s` with c ∈ {0, 1}.
        let code: Vec<f64> = (0..n_experts).map(|e| ((e >> (n_bits - 1 - bit)) & 1) as f64).collect();
        let code = Tensor::from_vec(code, (1, 1, n_experts), s.device())?.to_dtype(s.dtype())?;
        let s_bit = s.narrow(2, bit, 1)?;
        let factor = ((1.0 - &code)?.broadcast_add(&s_bit.broadcast_mul(&((&code * 2.0)? - 1.0)?)?))?;
        weights = Some(match weights {
            Some(product) => (product * factor)?,
            None => factor,
        });
    }
    let weights = match weights {
        Some(weights) => weights,
        // One expert: no bits, the empty product.
        None => Tensor::ones((batch, n_selectors, n_experts), s.dtype(), s.device())?,
    };
    if n_experts.is_power_of_two() {
        return Ok(weights);
    }
    // A tiny floor keeps a selector saturated on unused codes at 0 instead of 0/0.
    let total = weights.sum_keepdim(D::Minus1)?.maximum(1e-30)?;
    weights.broadcast_div(&total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, random_var, weighted_sum};
    use candle_core::{DType, Device};

    fn tensor(values: &[f64], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(values.to_vec(), shape, &Device::Cpu)
    }

    #[test]
    fn smooth_step_matches_its_closed_form_and_saturates() -> Result<()> {
        // γ = 1: s(t) = −2t³ + 3t/2 + 1/2 on [−1/2, 1/2]:
        //   s(−1) = 0, s(−1/2) = 0, s(−1/4) = 1/32 − 3/8 + 1/2 = 0.15625, s(0) = 1/2,
        //   s(1/4) = −1/32 + 3/8 + 1/2 = 0.84375, s(1/2) = 1, s(3) = 1.
        let t = tensor(&[-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 3.0], &[7])?;
        let expected = tensor(&[0.0, 0.0, 0.15625, 0.5, 0.84375, 1.0, 1.0], &[7])?;
        assert_close("s, γ = 1", &smooth_step(&t, 1.0)?, &expected, 1e-15)?;
        // γ = 2: s(t) = −t³/4 + 3t/4 + 1/2 on [−1, 1]: s(0.5) = −1/32 + 3/8 + 1/2 = 0.84375.
        assert_close(
            "s, γ = 2",
            &smooth_step(&tensor(&[0.5, 1.5], &[2])?, 2.0)?,
            &tensor(&[0.84375, 1.0], &[2])?,
            1e-15,
        )
    }

    #[test]
    fn selectors_weigh_experts_by_the_product_over_their_code_bits() -> Result<()> {
        // Four experts (codes 00, 01, 10, 11), s = (0.8, 0.3) for the first and second bit:
        //   r = [(1−0.8)(1−0.3), (1−0.8)·0.3, 0.8·(1−0.3), 0.8·0.3] = [0.14, 0.06, 0.56, 0.24].
        let s = tensor(&[0.8, 0.3], &[1, 1, 2])?;
        assert_close("E = 4", &selector_weights(&s, 4)?, &tensor(&[0.14, 0.06, 0.56, 0.24], &[1, 1, 4])?, 1e-15)?;
        // Three experts: code 11 unused, the other three renormalised by 0.76:
        //   [0.14, 0.06, 0.56] / 0.76.
        let three = [0.14 / 0.76, 0.06 / 0.76, 0.56 / 0.76];
        assert_close("E = 3", &selector_weights(&s, 3)?, &tensor(&three, &[1, 1, 3])?, 1e-15)?;
        // Saturated bits select one expert exactly: s = (1, 0) → code 10, expert 2.
        let s = tensor(&[1.0, 0.0], &[1, 1, 2])?;
        assert_close("one-hot", &selector_weights(&s, 4)?, &tensor(&[0.0, 0.0, 1.0, 0.0], &[1, 1, 4])?, 0.0)?;
        // Saturated onto the unused code 11 of E = 3: every weight 0, not NaN.
        let s = tensor(&[1.0, 1.0], &[1, 1, 2])?;
        assert_close("unused code", &selector_weights(&s, 3)?, &tensor(&[0.0, 0.0, 0.0], &[1, 1, 3])?, 0.0)
    }

    #[test]
    fn the_gate_mixes_its_selectors_by_a_softmax() -> Result<()> {
        // Zero code weights and biases (0.25, −0.25 | 0.5, 0.5) make z constant; γ = 1:
        //   selector 1: s = (0.84375, 0.15625) → r = [0.15625·0.84375, 0.15625², 0.84375², 0.84375·0.15625]
        //   selector 2: s = (1, 1) → r = [0, 0, 0, 1]
        // Selector logits (0, ln 3) → softmax (1/4, 3/4): q = r₁/4 + 3r₂/4.
        let backend = std::sync::Arc::new(crate::init::SeededBackend::new(0));
        let gate = DSelectGate::new(3, 4, 2, 1.0, backend.builder(DType::F64, &Device::Cpu))?;
        for (name, var) in backend.parameters().named() {
            let value = match name {
                "codes.bias" => tensor(&[0.25, -0.25, 0.5, 0.5], &[4])?,
                "selectors.bias" => tensor(&[0.0, 3f64.ln()], &[2])?,
                _ => Tensor::zeros(var.shape(), DType::F64, &Device::Cpu)?,
            };
            var.set(&value)?;
        }
        let (a, b) = (0.84375f64, 0.15625f64);
        let first = [b * a, b * b, a * a, a * b];
        let expected: Vec<f64> = (0..4).map(|e| first[e] / 4.0 + if e == 3 { 0.75 } else { 0.0 }).collect();
        let x = tensor(&[1.0, -2.0, 3.0, 0.5, 0.5, 0.5], &[2, 3])?;
        let got = gate.weights(&x)?;
        assert_close("q", &got, &tensor(&[expected.clone(), expected].concat(), &[2, 4])?, 1e-15)?;
        // A gate's weights sum to 1 per example.
        let sums = got.sum(1)?;
        assert_close("Σ q", &sums, &tensor(&[1.0, 1.0], &[2])?, 1e-15)
    }

    #[test]
    fn the_gate_starts_from_the_official_initialisation() -> Result<()> {
        // γ = 2: the code layer uniform in ±γ/100 = ±0.02, the selector layer in ±0.05; shapes
        // [k·m, in] = [3·3, 5] for 6 experts (m = 3) and k = 3.
        let backend = std::sync::Arc::new(crate::init::SeededBackend::new(1));
        DSelectGate::new(5, 6, 3, 2.0, backend.builder(DType::F64, &Device::Cpu))?;
        for (name, var) in backend.parameters().named() {
            let (bound, rows) = if name.starts_with("codes.") { (0.02, 9) } else { (0.05, 3) };
            assert_eq!(var.dim(0)?, rows, "{name}");
            let values = crate::testing::values(var)?;
            assert!(values.iter().all(|v| v.abs() <= bound && *v != 0.0), "{name}: {values:?}");
            assert!(values.iter().any(|v| v.abs() > bound / 2.0), "{name}: spread over the interval");
        }
        Ok(())
    }

    #[test]
    fn selector_weights_pass_a_finite_difference_gradient_check() -> Result<()> {
        // Logits inside and outside the smooth-step's band, through s and the selector product,
        // for a power of two and (renormalised) not.
        for n_experts in [4, 3, 5] {
            let n_bits = bits_for(n_experts);
            let z = random_var(&[2, 3, n_bits], 4, DType::F64)?;
            let loss = || weighted_sum(&selector_weights(&smooth_step(z.as_tensor(), 1.5)?, n_experts)?, 5);
            crate::testing::check_gradients(&[("z", &z)], 60, loss)?;
        }
        Ok(())
    }
}
