//! 2×2 max pooling with stride 2, optionally fused with relu, as a candle
//! custom op that records each window's arg-max in the forward pass and routes
//! the whole gradient there in the backward pass.
//!
//! Not candle's `max_pool2d`, whose backward gives the arg-max only a quarter
//! of the gradient (candle 0.11.1; a test pins the case).

use std::sync::{Arc, Mutex};

use super::parallel::{lockable_chunks, parallel_for, zeroed};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};

/// 2×2 max pooling with stride 2: `[B, C, H, W]` → `[B, C, H/2, W/2]` (odd trailing
/// rows/columns are dropped, as in PyTorch). The gradient goes whole to each window's
/// maximum; among equal values, to the first in row-major order (as PyTorch's).
pub fn max_pool2x2(xs: &Tensor) -> Result<Tensor> {
    pool(xs, false)
}

/// `relu(max_pool2x2(xs))` (= `max_pool2x2(relu(xs))`) in one pass. Where the
/// window's maximum is negative the output is 0 and no gradient flows; at exactly 0
/// the gradient passes, as through candle's relu.
pub fn max_pool2x2_relu(xs: &Tensor) -> Result<Tensor> {
    pool(xs, true)
}

fn pool(xs: &Tensor, relu: bool) -> Result<Tensor> {
    if !super::composed::kernels_apply(xs) {
        return super::composed::max_pool2x2(xs, relu);
    }
    xs.contiguous()?.apply_op1(MaxPool { relu, winners: Mutex::new(None) })
}

/// Where a window's gradient goes: its position in the window (0–3 in row-major order
/// for 2×2, the time step for a max over time), [`NO_WINNER`] when relu clipped it.
pub(super) type Winner = u32;
const NO_WINNER: Winner = Winner::MAX;

struct MaxPool {
    relu: bool,
    /// Each output's [`Winner`], recorded by the forward pass for the backward pass
    /// (one op value per application, so it holds one forward's record).
    winners: Mutex<Option<Arc<Vec<Winner>>>>,
}

/// `[B, C, H, W]` → (planes B·C, H, W, pooled H, pooled W).
fn planes(dims: &[usize]) -> Result<(usize, usize, usize, usize, usize)> {
    let &[batch, channels, height, width] = dims else {
        candle_core::bail!("max_pool2x2: [B, C, H, W] expected, got {dims:?}")
    };
    Ok((batch * channels, height, width, height / 2, width / 2))
}

fn pool_forward<T: WithDType>(input: &[T], dims: &[usize], relu: bool) -> Result<(Vec<T>, Vec<Winner>)> {
    let (n_planes, height, width, out_height, out_width) = planes(dims)?;
    let mut output = zeroed(n_planes * out_height * out_width);
    let mut winners = vec![NO_WINNER; output.len()];
    if output.is_empty() {
        return Ok((output, winners));
    }
    let plane_len = out_height * out_width;
    // Planes in groups, so that one unit of parallel work is not a single small plane.
    let planes_per_unit = (4096 / plane_len).max(1);
    let output_chunks = lockable_chunks(&mut output, planes_per_unit * plane_len);
    let winner_chunks = lockable_chunks(&mut winners, planes_per_unit * plane_len);
    parallel_for(output_chunks.len(), input.len(), |unit| {
        let mut outputs = output_chunks[unit].lock().expect("output chunk");
        let mut unit_winners = winner_chunks[unit].lock().expect("winner chunk");
        let planes = outputs.chunks_exact_mut(plane_len).zip(unit_winners.chunks_exact_mut(plane_len));
        for (p, (output, winners)) in planes.enumerate() {
            let input = &input[(unit * planes_per_unit + p) * height * width..][..height * width];
            pool_plane(input, width, output, winners, out_width, relu);
        }
    });
    drop((output_chunks, winner_chunks));
    Ok((output, winners))
}

/// Pools one `[H, W]` plane (row length `width`) into `output` and `winners`, both
/// `[H/2, out_width]`; shared with the convolution that pools its own output.
pub(super) fn pool_plane<T: WithDType>(
    input: &[T],
    width: usize,
    output: &mut [T],
    winners: &mut [Winner],
    out_width: usize,
    relu: bool,
) {
    let zero = T::from_f64(0.0);
    let rows = output.chunks_exact_mut(out_width).zip(winners.chunks_exact_mut(out_width));
    for (oy, (output, winners)) in rows.enumerate() {
        let top = input[2 * oy * width..][..2 * out_width].chunks_exact(2);
        let bottom = input[(2 * oy + 1) * width..][..2 * out_width].chunks_exact(2);
        for (((output, winner), top), bottom) in output.iter_mut().zip(winners.iter_mut()).zip(top).zip(bottom) {
            // Strictly greater: ties go to the first. A NaN (the one value with `v != v`;
            // `WithDType` has no `is_nan`) wins, so it propagates.
            let (mut best, mut position) = (top[0], 0);
            for (index, value) in [(1, top[1]), (2, bottom[0]), (3, bottom[1])] {
                // `|`, not `||`: no branch to mispredict on random data.
                #[allow(clippy::eq_op, clippy::nonminimal_bool)]
                let take = (value > best) | (value != value);
                best = if take { value } else { best };
                position = if take { index } else { position };
            }
            (*output, *winner) = if relu && best < zero { (zero, NO_WINNER) } else { (best, position) };
        }
    }
}

/// `relu(max(row))` and where its gradient goes: the first maximum (as PyTorch's
/// `max(dim)` picks), or [`NO_WINNER`] when the maximum is negative. At exactly 0 the
/// gradient passes, as through candle's relu (PyTorch's relu passes none there). The
/// first NaN wins, so it propagates. candle's `max` backward instead gives the whole gradient to every tied
/// element, so over padded text (where the all-padding windows tie) it is multiplied
/// by the number of such windows.
pub(super) fn max_relu_row<T: WithDType>(row: &[T]) -> (T, Winner) {
    let zero = T::from_f64(0.0);
    let (mut best, mut position) = (row[0], 0);
    for (index, &value) in row.iter().enumerate().skip(1) {
        // Strictly greater, or a NaN while no NaN has won yet; branch-free (see `pool_plane`).
        #[allow(clippy::eq_op, clippy::nonminimal_bool)]
        let take = (value > best) | ((value != value) & (best == best));
        best = if take { value } else { best };
        position = if take { index } else { position };
    }
    if best < zero {
        (zero, NO_WINNER)
    } else {
        (best, position as Winner)
    }
}

/// The adjoint of [`max_relu_row`]: `grad` at the winner, zeros elsewhere in `row_grad`.
pub(super) fn unmax_row<T: WithDType>(grad: T, winner: Winner, row_grad: &mut [T]) {
    row_grad.fill(T::from_f64(0.0));
    if let Some(cell) = row_grad.get_mut(winner as usize) {
        *cell = grad;
    }
}

/// The adjoint of [`pool_plane`]: writes every cell of the `[H, W]` plane `input_grad`
/// (row length `width`): each window's gradient at its winner, zeros elsewhere,
/// including the odd last row and column that pooling drops.
pub(super) fn unpool_plane<T: WithDType>(
    output_grad: &[T],
    winners: &[Winner],
    out_width: usize,
    input_grad: &mut [T],
    width: usize,
) {
    let zero = T::from_f64(0.0);
    let out_height = output_grad.len().checked_div(out_width).unwrap_or(0);
    for oy in 0..out_height {
        let (top, bottom) = input_grad[2 * oy * width..][..2 * width].split_at_mut(width);
        top[2 * out_width..].fill(zero);
        bottom[2 * out_width..].fill(zero);
        // Sequential stores, no data-dependent index.
        let windows = top.chunks_exact_mut(2).zip(bottom.chunks_exact_mut(2));
        let row = output_grad[oy * out_width..][..out_width].iter().zip(&winners[oy * out_width..][..out_width]);
        for ((top, bottom), (&grad, &winner)) in windows.zip(row) {
            top[0] = if winner == 0 { grad } else { zero };
            top[1] = if winner == 1 { grad } else { zero };
            bottom[0] = if winner == 2 { grad } else { zero };
            bottom[1] = if winner == 3 { grad } else { zero };
        }
    }
    input_grad[2 * out_height * width..].fill(zero);
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "mtl-max-pool2x2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("max_pool2x2: the input must be contiguous")
        };
        let (output, winners) = match storage {
            CpuStorage::F32(data) => {
                let (output, winners) = pool_forward(&data[start..end], layout.dims(), self.relu)?;
                (CpuStorage::F32(output), winners)
            }
            CpuStorage::F64(data) => {
                let (output, winners) = pool_forward(&data[start..end], layout.dims(), self.relu)?;
                (CpuStorage::F64(output), winners)
            }
            other => candle_core::bail!("max_pool2x2: f32 or f64 expected, got {:?}", other.dtype()),
        };
        *self.winners.lock().expect("max-pool record") = Some(Arc::new(winners));
        let (_, _, _, out_height, out_width) = planes(layout.dims())?;
        let dims = layout.dims();
        Ok((output, Shape::from((dims[0], dims[1], out_height, out_width))))
    }

    fn bwd(&self, input: &Tensor, _output: &Tensor, output_grad: &Tensor) -> Result<Option<Tensor>> {
        let winners = self.winners.lock().expect("max-pool record").clone();
        let Some(winners) = winners else { candle_core::bail!("max_pool2x2: backward before forward") };
        let backward = MaxPoolBackward { winners, input_dims: input.dims().to_vec() };
        // No backward of the backward: gradients of gradients are not needed.
        Ok(Some(output_grad.contiguous()?.apply_op1_no_bwd(&backward)?))
    }
}

/// Output gradient → input gradient: each output's gradient at its recorded winner, zeros elsewhere.
struct MaxPoolBackward {
    winners: Arc<Vec<Winner>>,
    input_dims: Vec<usize>,
}

impl MaxPoolBackward {
    fn run<T: WithDType>(&self, output_grad: &[T]) -> Result<Vec<T>> {
        let (n_planes, height, width, out_height, out_width) = planes(&self.input_dims)?;
        if output_grad.len() != self.winners.len() {
            candle_core::bail!(
                "max_pool2x2 backward: {} gradients for {} outputs",
                output_grad.len(),
                self.winners.len()
            );
        }
        let mut input_grad = zeroed(n_planes * height * width);
        let plane_len = out_height * out_width;
        if plane_len == 0 {
            return Ok(input_grad);
        }
        let planes_per_unit = (4096 / plane_len).max(1);
        let grad_chunks = lockable_chunks(&mut input_grad, planes_per_unit * height * width);
        parallel_for(grad_chunks.len(), n_planes * height * width, |unit| {
            let mut grads = grad_chunks[unit].lock().expect("input gradient chunk");
            for (p, input_grad) in grads.chunks_exact_mut(height * width).enumerate() {
                let plane = unit * planes_per_unit + p;
                let output_grad = &output_grad[plane * plane_len..][..plane_len];
                let winners = &self.winners[plane * plane_len..][..plane_len];
                unpool_plane(output_grad, winners, out_width, input_grad, width);
            }
        });
        drop(grad_chunks);
        Ok(input_grad)
    }
}

impl CustomOp1 for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "mtl-max-pool2x2-backward"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("max_pool2x2 backward: the gradient must be contiguous")
        };
        let input_grad = match storage.dtype() {
            DType::F32 => CpuStorage::F32(self.run(&storage.as_slice::<f32>()?[start..end])?),
            DType::F64 => CpuStorage::F64(self.run(&storage.as_slice::<f64>()?[start..end])?),
            dtype => candle_core::bail!("max_pool2x2 backward: f32 or f64 expected, got {dtype:?}"),
        };
        Ok((input_grad, Shape::from(self.input_dims.clone())))
    }
}
