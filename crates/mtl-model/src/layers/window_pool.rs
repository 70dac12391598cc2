//! Max pooling with any square window, stride and padding (ResNet's stem pool is
//! 3×3, stride 2, padding 1), as a candle custom op that records each window's
//! arg-max and routes the whole gradient there; and global average pooling.
//!
//! Not candle's `max_pool2d_with_stride`: it has no padding, its backward refuses
//! overlapping windows, and gives a 2×2 window's arg-max a quarter of the gradient.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};

use super::parallel::{lockable_chunks, parallel_for, zeroed};
use super::pool::Winner;

/// The window of a [`max_pool2d`]: square `kernel`, `stride` and zero-cost `padding`
/// (padded cells count as −∞: they are never the maximum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    kernel: usize,
    stride: usize,
    padding: usize,
}

/// Max pooling as PyTorch's `F.max_pool2d(xs, kernel, stride, padding)` (floor mode):
/// `[B, C, H, W]` → `[B, C, Ho, Wo]`, `Ho = ⌊(H + 2·padding − kernel) / stride⌋ + 1`.
/// Padding counts as −∞ and may be at most `kernel / 2` (as PyTorch requires), so that
/// every window holds an input cell. The gradient goes whole to each window's first
/// maximum in row-major order; where windows overlap, a cell gathers the gradients of
/// every window it wins. A NaN wins its window, so it propagates.
pub fn max_pool2d(xs: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let window = Window { kernel, stride, padding };
    if !super::composed::kernels_apply(xs) {
        let planes = Planes::new(xs.dims(), window)?;
        return super::composed::max_pool2d(xs, kernel, stride, padding, (planes.out_height, planes.out_width));
    }
    xs.contiguous()?.apply_op1(WindowMaxPool { window, winners: Mutex::new(None) })
}

/// Global average pooling: `[B, C, H, W]` → `[B, C]`, the mean of each plane (tensor
/// ops, so any device).
pub fn global_avg_pool2d(xs: &Tensor) -> Result<Tensor> {
    let (batch, channels, _, _) = xs.dims4()?;
    xs.reshape((batch, channels, ()))?.mean(2)
}

/// Sizes of one pooling: planes (B·C), input and output height and width.
#[derive(Clone, Copy, Debug)]
struct Planes {
    n_planes: usize,
    height: usize,
    width: usize,
    out_height: usize,
    out_width: usize,
}

impl Planes {
    fn new(dims: &[usize], window: Window) -> Result<Planes> {
        let &[batch, channels, height, width] = dims else {
            candle_core::bail!("max_pool2d: [B, C, H, W] expected, got {dims:?}")
        };
        let Window { kernel, stride, padding } = window;
        if kernel == 0 || stride == 0 || 2 * padding > kernel {
            candle_core::bail!("max_pool2d: kernel {kernel}, stride {stride}, padding {padding} (at most kernel/2)");
        }
        if height == 0 || width == 0 || height + 2 * padding < kernel || width + 2 * padding < kernel {
            candle_core::bail!("max_pool2d: kernel {kernel} larger than the padded input {dims:?}");
        }
        let out = |size: usize| (size + 2 * padding - kernel) / stride + 1;
        Ok(Planes { n_planes: batch * channels, height, width, out_height: out(height), out_width: out(width) })
    }

    fn shape(&self, dims: &[usize]) -> Shape {
        Shape::from((dims[0], dims[1], self.out_height, self.out_width))
    }
}

impl Window {
    /// The input cells `lo..hi` along an axis of `size` cells that output `o` reads.
    fn span(&self, o: usize, size: usize) -> (usize, usize) {
        let start = o * self.stride;
        (start.saturating_sub(self.padding), (start + self.kernel).saturating_sub(self.padding).min(size))
    }
}

/// Pools one `[H, W]` plane: each output's maximum and its position `y·W + x` in the plane.
fn pool_plane<T: WithDType>(input: &[T], planes: Planes, window: Window, output: &mut [T], winners: &mut [Winner]) {
    let Planes { height, width, out_width, .. } = planes;
    let cells = output.iter_mut().zip(winners.iter_mut()).enumerate();
    for (o, (output, winner)) in cells {
        let (rows, columns) = (window.span(o / out_width, height), window.span(o % out_width, width));
        let mut best_at = rows.0 * width + columns.0;
        let mut best = input[best_at];
        for y in rows.0..rows.1 {
            for (x, &value) in input[y * width..][columns.0..columns.1].iter().enumerate() {
                // Strictly greater (ties go to the first), or a NaN (`v != v`), as `pool::pool_plane`.
                #[allow(clippy::eq_op)]
                if value > best || value != value {
                    (best, best_at) = (value, y * width + columns.0 + x);
                }
            }
        }
        (*output, *winner) = (best, best_at as Winner);
    }
}

fn pool_forward<T: WithDType>(input: &[T], planes: Planes, window: Window) -> (Vec<T>, Vec<Winner>) {
    let plane_len = planes.out_height * planes.out_width;
    let mut output = zeroed(planes.n_planes * plane_len);
    let mut winners = vec![0; output.len()];
    if output.is_empty() {
        return (output, winners);
    }
    // Planes in groups, so that one unit of parallel work is not a single small plane.
    let planes_per_unit = (4096 / plane_len).max(1);
    let output_chunks = lockable_chunks(&mut output, planes_per_unit * plane_len);
    let winner_chunks = lockable_chunks(&mut winners, planes_per_unit * plane_len);
    let in_len = planes.height * planes.width;
    let cost = planes.n_planes * plane_len * window.kernel * window.kernel;
    parallel_for(output_chunks.len(), cost, |unit| {
        let mut outputs = output_chunks[unit].lock().expect("output chunk");
        let mut unit_winners = winner_chunks[unit].lock().expect("winner chunk");
        let pairs = outputs.chunks_exact_mut(plane_len).zip(unit_winners.chunks_exact_mut(plane_len));
        for (p, (output, winners)) in pairs.enumerate() {
            let input = &input[(unit * planes_per_unit + p) * in_len..][..in_len];
            pool_plane(input, planes, window, output, winners);
        }
    });
    drop((output_chunks, winner_chunks));
    (output, winners)
}

struct WindowMaxPool {
    window: Window,
    /// Each output's winner, recorded by the forward pass for the backward pass (one op
    /// value per application, so it holds one forward's record).
    winners: Mutex<Option<Arc<Vec<Winner>>>>,
}

impl CustomOp1 for WindowMaxPool {
    fn name(&self) -> &'static str {
        "mtl-max-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let planes = Planes::new(layout.dims(), self.window)?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("max_pool2d: the input must be contiguous")
        };
        let (output, winners) = match storage {
            CpuStorage::F32(data) => {
                let (output, winners) = pool_forward(&data[start..end], planes, self.window);
                (CpuStorage::F32(output), winners)
            }
            CpuStorage::F64(data) => {
                let (output, winners) = pool_forward(&data[start..end], planes, self.window);
                (CpuStorage::F64(output), winners)
            }
            other => candle_core::bail!("max_pool2d: f32 or f64 expected, got {:?}", other.dtype()),
        };
        *self.winners.lock().expect("max-pool record") = Some(Arc::new(winners));
        Ok((output, planes.shape(layout.dims())))
    }

    fn bwd(&self, input: &Tensor, _output: &Tensor, output_grad: &Tensor) -> Result<Option<Tensor>> {
        let winners = self.winners.lock().expect("max-pool record").clone();
        let Some(winners) = winners else { candle_core::bail!("max_pool2d: backward before forward") };
        let planes = Planes::new(input.dims(), self.window)?;
        let backward = WindowMaxPoolBackward { winners, planes, input_dims: input.dims().to_vec() };
        // No backward of the backward: gradients of gradients are not needed.
        Ok(Some(output_grad.contiguous()?.apply_op1_no_bwd(&backward)?))
    }
}

/// Output gradient → input gradient: each output's gradient added at its winner.
struct WindowMaxPoolBackward {
    winners: Arc<Vec<Winner>>,
    planes: Planes,
    input_dims: Vec<usize>,
}

impl WindowMaxPoolBackward {
    fn run<T: WithDType>(&self, output_grad: &[T]) -> Result<Vec<T>> {
        let Planes { n_planes, height, width, out_height, out_width } = self.planes;
        if output_grad.len() != self.winners.len() {
            candle_core::bail!(
                "max_pool2d backward: {} gradients for {} outputs",
                output_grad.len(),
                self.winners.len()
            );
        }
        let (in_len, out_len) = (height * width, out_height * out_width);
        let mut input_grad = zeroed(n_planes * in_len);
        if out_len == 0 || in_len == 0 {
            return Ok(input_grad);
        }
        let planes_per_unit = (4096 / in_len).max(1);
        let grad_chunks = lockable_chunks(&mut input_grad, planes_per_unit * in_len);
        parallel_for(grad_chunks.len(), n_planes * (in_len + out_len), |unit| {
            let mut grads = grad_chunks[unit].lock().expect("input gradient chunk");
            for (p, input_grad) in grads.chunks_exact_mut(in_len).enumerate() {
                let plane = unit * planes_per_unit + p;
                let output_grad = &output_grad[plane * out_len..][..out_len];
                // Within a plane in output order: the sums do not depend on the threads.
                for (&grad, &winner) in output_grad.iter().zip(&self.winners[plane * out_len..][..out_len]) {
                    input_grad[winner as usize] += grad;
                }
            }
        });
        drop(grad_chunks);
        Ok(input_grad)
    }
}

impl CustomOp1 for WindowMaxPoolBackward {
    fn name(&self) -> &'static str {
        "mtl-max-pool2d-backward"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("max_pool2d backward: the gradient must be contiguous")
        };
        let input_grad = match storage.dtype() {
            DType::F32 => CpuStorage::F32(self.run(&storage.as_slice::<f32>()?[start..end])?),
            DType::F64 => CpuStorage::F64(self.run(&storage.as_slice::<f64>()?[start..end])?),
            dtype => candle_core::bail!("max_pool2d backward: f32 or f64 expected, got {dtype:?}"),
        };
        Ok((input_grad, Shape::from(self.input_dims.clone())))
    }
}
