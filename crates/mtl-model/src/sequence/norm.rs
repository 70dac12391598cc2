//! Layer normalisation (Ba et al. 2016) from differentiable tensor ops: candle's fused
//! `candle_nn::ops::layer_norm` computes the same values but records no backward.

use candle_core::{Result, Tensor, D};
use candle_nn::init::Init;
use candle_nn::{Module, VarBuilder};

/// `y = (x − mean) / √(var + eps) · weight + bias` over the last dimension, with the
/// biased variance (PyTorch's `nn.LayerNorm`). Parameters: `weight` (starts at 1) and
/// `bias` (starts at 0), drawing nothing from the seeded generator.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// PyTorch's default `eps`.
    pub const DEFAULT_EPS: f64 = 1e-5;

    /// A layer norm over `size` features, its parameters under `vb`.
    pub fn new(size: usize, vb: VarBuilder) -> Result<LayerNorm> {
        let weight = vb.get_with_hints(size, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(size, "bias", Init::Const(0.0))?;
        Ok(LayerNorm { weight, bias, eps: Self::DEFAULT_EPS })
    }

    /// A layer norm with the given parameters (`[size]` each) and `eps`.
    pub fn from_parameters(weight: Tensor, bias: Tensor, eps: f64) -> LayerNorm {
        LayerNorm { weight, bias, eps }
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let centred = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normalised = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normalised.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}
