//! Layers that mtl-model implements itself rather than take from candle-nn.
//!
//! [`Conv1d`]: candle 0.11.1's conv1d backward returns a wrong kernel gradient
//! whenever batch > 1 and out_channels > 1 (see the test
//! `candle_conv1d_weight_gradient_is_wrong_for_batches_with_several_output_channels`).
//! This one is an explicit im2col — shifted views stacked, then one batched
//! matmul — so its backward is made of ops whose gradients are checked.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// 1-D convolution, stride 1, zero padding on both sides.
#[derive(Clone, Debug)]
pub struct Conv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    padding: usize,
}

impl Conv1d {
    /// A convolution with `weight` `[out, in, k]` and optional `bias` `[out]`.
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>, padding: usize) -> Conv1d {
        Conv1d { weight, bias, padding }
    }

    /// Creates the parameters `weight` and `bias` under `vb`, with candle-nn's
    /// initialisation (Kaiming normal weight, uniform ±1/√in bias).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Conv1d> {
        let weight =
            vb.get_with_hints((out_channels, in_channels, kernel), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        let bound = 1.0 / (in_channels as f64).sqrt();
        let bias = vb.get_with_hints(out_channels, "bias", Init::Uniform { lo: -bound, up: bound })?;
        Ok(Conv1d { weight, bias: Some(bias), padding })
    }

    /// `[B, in, T]` → `[B, out, T + 2·padding − k + 1]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (batch, in_channels, _) = xs.dims3()?;
        let (out_channels, _, kernel) = self.weight.dims3()?;
        let padded = xs.pad_with_zeros(2, self.padding, self.padding)?;
        let steps = padded.dim(2)? + 1 - kernel;
        let shifted = (0..kernel).map(|k| padded.narrow(2, k, steps)).collect::<Result<Vec<_>>>()?;
        let columns = Tensor::stack(&shifted, 2)?.reshape((batch, in_channels * kernel, steps))?;
        let ys = self.weight.reshape((out_channels, in_channels * kernel))?.broadcast_matmul(&columns)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(&bias.reshape((1, out_channels, 1))?),
            None => Ok(ys),
        }
    }
}

/// 2×2 max pooling with stride 2 (odd trailing rows/columns are dropped, as in PyTorch).
///
/// Not candle's `max_pool2d`, whose backward gives the arg-max only a quarter
/// of the gradient (candle 0.11.1): here the window is a reshaped axis and the
/// max is a reduction, whose backward routes the whole gradient to the arg-max.
pub fn max_pool2x2(xs: &Tensor) -> Result<Tensor> {
    let (batch, channels, height, width) = xs.dims4()?;
    let (h, w) = (height / 2, width / 2);
    let xs = if height % 2 == 1 || width % 2 == 1 { xs.narrow(2, 0, 2 * h)?.narrow(3, 0, 2 * w)? } else { xs.clone() };
    xs.reshape((batch, channels, h, 2, w, 2))?.max(5)?.max(3)
}
