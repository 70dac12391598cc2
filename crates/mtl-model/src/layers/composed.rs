//! The layers whose CPU kernels are mtl-lab's own, composed of candle tensor ops for
//! every other device (CUDA): the same function and the same gradients, the backward
//! pass being candle's autograd over ops whose gradients are right. `composed_tests`
//! checks each against the CPU op, values and gradients, in f64.
//!
//! - Convolutions: candle's `conv2d` (a 1-D convolution as a 2-D one over one row:
//!   candle's `conv1d` returns a wrong kernel gradient for batches). The input is
//!   zero-padded first and cut to the rows and columns some window reaches, because
//!   candle's conv2d backward sizes the input gradient from the height's remainder alone.
//! - Max pooling: each window's cells side by side on a last axis, then `argmax` and
//!   `gather`, so that the whole gradient goes to the first maximum in row-major order
//!   (candle's `max` backward gives it to every tied cell; its `max_pool2d` backward
//!   gives a 2×2 window's arg-max a quarter). Padding is −∞.
//!
//! NaN inputs are the one difference: the CPU ops let a NaN win its window; here the
//! arg-max of a window with a NaN is whatever the device's comparison makes it.

use std::cell::Cell;

use candle_core::{Result, Tensor, D};

use super::kernels::Output;

thread_local! {
    static ON_THE_CPU_TOO: Cell<bool> = const { Cell::new(false) };
}

/// Whether `xs` goes through mtl-lab's own CPU kernels: on the CPU, unless this thread
/// asked for the composed layers with [`compose_on_the_cpu`].
pub(crate) fn kernels_apply(xs: &Tensor) -> bool {
    xs.device().is_cpu() && !ON_THE_CPU_TOO.with(Cell::get)
}

/// Tests: runs the layers called on this thread as they run off the CPU (composed of
/// candle ops), so that a whole training run on the CPU takes the GPU's code path.
#[doc(hidden)]
pub fn compose_on_the_cpu(on: bool) {
    ON_THE_CPU_TOO.with(|c| c.set(on));
}

/// Padding (rows, columns) and stride, as `conv::Spacing`.
type Spacing = ((usize, usize), usize);

/// `conv::convolve` of tensor ops: `xs` `[B, C, T]` with `weight` `[O, C, k]`, or
/// `[B, C, H, W]` with `[O, C, kh, kw]`.
pub(super) fn convolve(
    xs: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    ((pad_height, pad_width), stride): Spacing,
    output: Output,
) -> Result<Tensor> {
    let one_d = xs.rank() == 3;
    let (xs, weight) = if one_d { (xs.unsqueeze(2)?, weight.unsqueeze(2)?) } else { (xs.clone(), weight.clone()) };
    let (_, channels, _, _) = xs.dims4()?;
    let (_, weight_channels, kernel_height, kernel_width) = weight.dims4()?;
    if stride == 0 || channels != weight_channels {
        candle_core::bail!("conv: input {:?}, kernel {:?}, stride {stride}", xs.dims(), weight.dims());
    }
    let xs = xs.pad_with_zeros(2, pad_height, pad_height)?.pad_with_zeros(3, pad_width, pad_width)?;
    let (_, _, height, width) = xs.dims4()?;
    if height < kernel_height || width < kernel_width {
        candle_core::bail!("conv: kernel {:?} larger than the padded input {:?}", weight.dims(), xs.dims());
    }
    let reached = |size: usize, kernel: usize| size - (size - kernel) % stride;
    let xs = xs.narrow(2, 0, reached(height, kernel_height))?.narrow(3, 0, reached(width, kernel_width))?;
    let mut ys = xs.contiguous()?.conv2d(&weight.contiguous()?, 0, stride, 1, 1)?;
    if let Some(bias) = bias {
        ys = ys.broadcast_add(&bias.reshape((1, (), 1, 1))?)?;
    }
    match output {
        Output::Full if one_d => ys.squeeze(2),
        Output::Full => Ok(ys),
        Output::FullRelu if one_d => ys.squeeze(2)?.relu(),
        Output::FullRelu => ys.relu(),
        Output::PooledRelu => max_pool2x2(&ys, true),
        Output::MaxReluOverTime => first_max(&ys.flatten_from(2)?)?.relu(),
    }
}

/// `pool::max_pool2x2` (and with `relu`, `max_pool2x2_relu`): windows 2×2, stride 2;
/// an odd last row or column is dropped.
pub(super) fn max_pool2x2(xs: &Tensor, relu: bool) -> Result<Tensor> {
    let (batch, channels, height, width) = xs.dims4()?;
    let (out_height, out_width) = (height / 2, width / 2);
    if out_height == 0 || out_width == 0 {
        return Tensor::zeros((batch, channels, out_height, out_width), xs.dtype(), xs.device());
    }
    let windows = xs
        .narrow(2, 0, 2 * out_height)?
        .narrow(3, 0, 2 * out_width)?
        .reshape((batch, channels, out_height, 2, out_width, 2))?
        .permute((0, 1, 2, 4, 3, 5))?
        .reshape((batch, channels, out_height, out_width, 4))?;
    let pooled = first_max(&windows)?;
    if relu {
        pooled.relu()
    } else {
        Ok(pooled)
    }
}

/// `window_pool::max_pool2d` with the window already checked: `out` is (Ho, Wo).
pub(super) fn max_pool2d(
    xs: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
    (out_height, out_width): (usize, usize),
) -> Result<Tensor> {
    let (batch, channels, height, width) = xs.dims4()?;
    let (dtype, device) = (xs.dtype(), xs.device());
    let mut padded = xs.clone();
    if padding > 0 {
        let rows = Tensor::full(f32::NEG_INFINITY, (batch, channels, padding, width), device)?.to_dtype(dtype)?;
        padded = Tensor::cat(&[&rows, &padded, &rows], 2)?;
        let columns = Tensor::full(f32::NEG_INFINITY, (batch, channels, height + 2 * padding, padding), device)?
            .to_dtype(dtype)?;
        padded = Tensor::cat(&[&columns, &padded, &columns], 3)?;
    }
    let picks = |offset: usize, n: usize| {
        let at: Vec<u32> = (0..n).map(|o| (o * stride + offset) as u32).collect();
        Tensor::new(at, device)
    };
    let columns = (0..kernel).map(|dx| picks(dx, out_width)).collect::<Result<Vec<_>>>()?;
    let mut cells = Vec::with_capacity(kernel * kernel);
    for dy in 0..kernel {
        let rows = padded.index_select(&picks(dy, out_height)?, 2)?;
        for columns in &columns {
            cells.push(rows.index_select(columns, 3)?);
        }
    }
    first_max(&Tensor::stack(&cells, 4)?)
}

/// The maximum over the last axis, its whole gradient at the first maximum.
fn first_max(xs: &Tensor) -> Result<Tensor> {
    let xs = xs.contiguous()?;
    let at = xs.argmax_keepdim(D::Minus1)?;
    xs.gather(&at, D::Minus1)?.squeeze(D::Minus1)
}
