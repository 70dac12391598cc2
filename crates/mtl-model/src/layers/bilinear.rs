//! Bilinear up-sampling by an integer factor as one CPU custom op, forward and backward,
//! for the decoder: the same function as [`crate::layers::upsample_bilinear`] (PyTorch's
//! `align_corners=False`), whose composed tensor ops made a fifth of a `w6` step (about
//! 0.5 s of 2.4 s, the `w6 parts` example) for a few element visits per output.
//!
//! Separable: along the width, then along the height, each output reading two source
//! cells with weights from PyTorch's formula (`s = max((d + 0.5) / scale − 0.5, 0)`,
//! `x[⌊s⌋]·(1 − λ) + x[min(⌊s⌋ + 1, n − 1)]·λ`). The backward pass is the adjoint, in
//! the reverse order. Each plane is computed by one thread in a fixed order, so the
//! results do not depend on the thread count. Off the CPU, or in other dtypes, the
//! composed ops run instead.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::op::BackpropOp;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Storage, Tensor, WithDType};

use super::fresh::{all_written, Fresh};
use super::parallel::{parallel_for, zeroed};
use super::upsample::upsample_bilinear;

/// `[B, C, H, W]` → `[B, C, scale·H, scale·W]`, as [`upsample_bilinear`] (to rounding),
/// in one op with its backward on the CPU (f32, f64).
pub fn upsample_bilinear_fused(xs: &Tensor, scale: usize) -> Result<Tensor> {
    let (_, _, height, width) = xs.dims4()?;
    let cpu_float = super::composed::kernels_apply(xs) && matches!(xs.dtype(), DType::F32 | DType::F64);
    if !cpu_float || scale <= 1 || height == 0 || width == 0 {
        return upsample_bilinear(xs, scale);
    }
    xs.contiguous()?.apply_op1(Bilinear { scale })
}

/// The up-sampling of a contiguous `[B, C, H, W]` f32 or f64 input by `scale` on the CPU,
/// as a tensor outside the graph: for ops that up-sample their input inside
/// ([`crate::layers::Conv2d::forward_upsampled`]).
pub(super) fn upsample_storage(storage: &CpuStorage, layout: &Layout, scale: usize) -> Result<Tensor> {
    if layout.dims().contains(&0) {
        candle_core::bail!("upsample_bilinear: empty input {:?}", layout.dims());
    }
    let (upsampled, shape) = Bilinear { scale }.cpu_fwd(storage, layout)?;
    Ok(Tensor::from_storage(Storage::Cpu(upsampled), shape, BackpropOp::none(), false))
}

/// The gradient of the `input_dims` input of an up-sampling by `scale` from that of its
/// output (no backward of its own).
pub(super) fn upsample_backward(output_grad: &Tensor, input_dims: &[usize], scale: usize) -> Result<Tensor> {
    let backward = BilinearBackward { planes: Planes::new(input_dims, scale)?, input_dims: input_dims.to_vec() };
    output_grad.contiguous()?.apply_op1_no_bwd(&backward)
}

/// For each output index along an axis of `size` cells: the two source cells and weights.
fn taps(size: usize, scale: usize) -> Vec<(usize, f64, usize, f64)> {
    (0..size * scale)
        .map(|d| {
            let source = ((d as f64 + 0.5) / scale as f64 - 0.5).max(0.0);
            let low = (source.floor() as usize).min(size - 1);
            let lambda = source - low as f64;
            (low, 1.0 - lambda, (low + 1).min(size - 1), lambda)
        })
        .collect()
}

/// Sizes of one application: planes (B·C), input height and width, scale.
#[derive(Clone, Copy, Debug)]
struct Planes {
    n_planes: usize,
    height: usize,
    width: usize,
    scale: usize,
}

impl Planes {
    fn new(dims: &[usize], scale: usize) -> Result<Planes> {
        let &[batch, channels, height, width] = dims else {
            candle_core::bail!("upsample_bilinear: [B, C, H, W] expected, got {dims:?}")
        };
        Ok(Planes { n_planes: batch * channels, height, width, scale })
    }

    fn input_len(&self) -> usize {
        self.height * self.width
    }

    fn output_len(&self) -> usize {
        self.input_len() * self.scale * self.scale
    }
}

/// Runs `plane(p, out_plane)` for every plane, on the thread pool in groups of planes.
fn for_each_plane<T: WithDType>(out: &mut [T], plane_len: usize, cost: usize, plane: impl Fn(usize, &mut [T]) + Sync) {
    if plane_len == 0 {
        return;
    }
    let planes_per_unit = (16_384 / plane_len).max(1);
    let chunks: Vec<Mutex<&mut [T]>> = out.chunks_mut(planes_per_unit * plane_len).map(Mutex::new).collect();
    parallel_for(chunks.len(), cost, |unit| {
        let mut chunk = chunks[unit].lock().expect("plane chunk");
        for (p, out_plane) in chunk.chunks_exact_mut(plane_len).enumerate() {
            plane(unit * planes_per_unit + p, out_plane);
        }
    });
}

fn forward<T: WithDType>(input: &[T], planes: Planes) -> Vec<T> {
    let Planes { height, width, scale, .. } = planes;
    let (rows, columns) = (taps(height, scale), taps(width, scale));
    let weight = |w: f64| T::from_f64(w);
    let (out_width, output_len) = (width * scale, planes.output_len());
    // Written a plane at a time, row after row, without zeroing it first.
    let mut output = Fresh::new(planes.n_planes * output_len);
    let parts = output.parts(std::iter::repeat_n(output_len, planes.n_planes));
    let planes_per_unit = (16_384 / output_len.max(1)).max(1);
    let units = planes.n_planes.div_ceil(planes_per_unit);
    parallel_for(units, 4 * planes.n_planes * output_len, |unit| {
        for p in unit * planes_per_unit..((unit + 1) * planes_per_unit).min(planes.n_planes) {
            let mut out = parts[p].lock().expect("output plane");
            let input = &input[p * planes.input_len()..][..planes.input_len()];
            // Along the width: [H, W] → [H, scale·W].
            let mut wide = vec![T::from_f64(0.0); height * out_width];
            for (row, wide_row) in input.chunks_exact(width).zip(wide.chunks_exact_mut(out_width)) {
                for (cell, &(a, wa, b, wb)) in wide_row.iter_mut().zip(&columns) {
                    *cell = row[a] * weight(wa) + row[b] * weight(wb);
                }
            }
            // Along the height: [H, scale·W] → [scale·H, scale·W].
            for &(a, wa, b, wb) in &rows {
                let (upper, lower) = (&wide[a * out_width..][..out_width], &wide[b * out_width..][..out_width]);
                let (wa, wb) = (weight(wa), weight(wb));
                out.extend(upper.iter().zip(lower).map(|(&u, &l)| u * wa + l * wb));
            }
        }
    });
    let written = all_written(parts);
    output.finish(written)
}

fn backward<T: WithDType>(output_grad: &[T], planes: Planes) -> Vec<T> {
    let Planes { height, width, scale, .. } = planes;
    let (rows, columns) = (taps(height, scale), taps(width, scale));
    let weight = |w: f64| T::from_f64(w);
    let out_width = width * scale;
    let mut input_grad = zeroed(planes.n_planes * planes.input_len());
    for_each_plane(&mut input_grad, planes.input_len(), 4 * planes.n_planes * planes.output_len(), |p, grad| {
        let output_grad = &output_grad[p * planes.output_len()..][..planes.output_len()];
        // Adjoint along the height: [scale·H, scale·W] → [H, scale·W], in output order.
        let mut wide = vec![T::from_f64(0.0); height * out_width];
        for (grad_row, &(a, wa, b, wb)) in output_grad.chunks_exact(out_width).zip(&rows) {
            let (wa, wb) = (weight(wa), weight(wb));
            for (cell, &g) in wide[a * out_width..][..out_width].iter_mut().zip(grad_row) {
                *cell += g * wa;
            }
            for (cell, &g) in wide[b * out_width..][..out_width].iter_mut().zip(grad_row) {
                *cell += g * wb;
            }
        }
        // Adjoint along the width: [H, scale·W] → [H, W].
        for (wide_row, grad_row) in wide.chunks_exact(out_width).zip(grad.chunks_exact_mut(width)) {
            for (&g, &(a, wa, b, wb)) in wide_row.iter().zip(&columns) {
                grad_row[a] += g * weight(wa);
                grad_row[b] += g * weight(wb);
            }
        }
    });
    input_grad
}

/// Applies `run` to the f32 or f64 contiguous data of `storage`.
fn on_floats(
    storage: &CpuStorage,
    layout: &Layout,
    what: &str,
    run_f32: impl Fn(&[f32]) -> Vec<f32>,
    run_f64: impl Fn(&[f64]) -> Vec<f64>,
) -> Result<CpuStorage> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{what}: the input must be contiguous")
    };
    Ok(match storage {
        CpuStorage::F32(data) => CpuStorage::F32(run_f32(&data[start..end])),
        CpuStorage::F64(data) => CpuStorage::F64(run_f64(&data[start..end])),
        other => candle_core::bail!("{what}: f32 or f64 expected, got {:?}", other.dtype()),
    })
}

struct Bilinear {
    scale: usize,
}

impl CustomOp1 for Bilinear {
    fn name(&self) -> &'static str {
        "mtl-upsample-bilinear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = layout.dims();
        let planes = Planes::new(dims, self.scale)?;
        let output = on_floats(storage, layout, "upsample_bilinear", |x| forward(x, planes), |x| forward(x, planes))?;
        Ok((output, Shape::from((dims[0], dims[1], dims[2] * self.scale, dims[3] * self.scale))))
    }

    fn bwd(&self, input: &Tensor, _output: &Tensor, output_grad: &Tensor) -> Result<Option<Tensor>> {
        // No backward of the backward: gradients of gradients are not needed.
        Ok(Some(upsample_backward(output_grad, input.dims(), self.scale)?))
    }
}

/// Output gradient → input gradient of [`Bilinear`].
struct BilinearBackward {
    planes: Planes,
    input_dims: Vec<usize>,
}

impl CustomOp1 for BilinearBackward {
    fn name(&self) -> &'static str {
        "mtl-upsample-bilinear-backward"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        if layout.shape().elem_count() != self.planes.n_planes * self.planes.output_len() {
            candle_core::bail!(
                "upsample_bilinear backward: gradient {:?} for input {:?}",
                layout.dims(),
                self.input_dims
            );
        }
        let planes = self.planes;
        let what = "upsample_bilinear backward";
        let input_grad = on_floats(storage, layout, what, |g| backward(g, planes), |g| backward(g, planes))?;
        Ok((input_grad, Shape::from(self.input_dims.clone())))
    }
}
