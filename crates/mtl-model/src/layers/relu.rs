//! The ReLU as passes over plain slices, for the ops that fuse it (the batch norm's and
//! the convolution's): the clamp of an output slice, and the gradient through it in
//! parallel; [`relu_backward`] applies the latter to tensors.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

use super::fresh::{all_written, Fresh};
use super::parallel::parallel_for;

/// Elements per unit of parallel work.
const CHUNK: usize = 1 << 14;

/// `values[i] = max(values[i], 0)` on this thread; branch-free, so that it vectorises
/// (NaN stays NaN, for the optimisers' divergence check).
pub(super) fn clamp_slice<T: WithDType>(values: &mut [T]) {
    values.iter_mut().for_each(|v| *v = if *v < T::zero() { T::zero() } else { *v });
}

/// `out[i] = dy[i]` where `y[i] > 0`, else 0: the gradient through the ReLU whose output
/// is `y` (PyTorch's `threshold_backward`), in parallel. At an input of exactly 0 this
/// passes nothing, where candle's relu backward (the composed paths) passes the gradient:
/// both are subgradients; the fused CPU paths follow PyTorch.
pub(super) fn relu_gradient<T: WithDType>(dy: &[T], y: &[T]) -> Vec<T> {
    let mut out = Fresh::new(dy.len());
    let chunks = dy.len().div_ceil(CHUNK);
    let parts = out.parts((0..chunks).map(|unit| CHUNK.min(dy.len() - unit * CHUNK)));
    parallel_for(chunks, dy.len(), |unit| {
        let (dy, y) = (&dy[unit * CHUNK..], &y[unit * CHUNK..]);
        parts[unit].lock().expect("gradient chunk").write(masked(dy, y));
    });
    let written = all_written(parts);
    out.finish(written)
}

/// [`relu_gradient`] as values, element by element (as many as the shorter slice has).
pub(super) fn masked<'a, T: WithDType>(dy: &'a [T], y: &'a [T]) -> impl Iterator<Item = T> + 'a {
    dy.iter().zip(y).map(|(&g, &y)| if y > T::zero() { g } else { T::zero() })
}

/// `dy` masked by `y > 0` ([`relu_gradient`]) as one CPU op without a backward of its
/// own; `dy` and `y` have one shape, f32 or f64.
pub(super) fn relu_backward(dy: &Tensor, y: &Tensor) -> Result<Tensor> {
    dy.contiguous()?.apply_op2_no_bwd(&y.contiguous()?, &ReluBackward)
}

struct ReluBackward;

impl CustomOp2 for ReluBackward {
    fn name(&self) -> &'static str {
        "mtl-relu-backward"
    }

    fn cpu_fwd(
        &self,
        dy: &CpuStorage,
        dy_layout: &Layout,
        y: &CpuStorage,
        y_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if dy_layout.shape() != y_layout.shape() {
            candle_core::bail!("relu backward: gradient {:?} for output {:?}", dy_layout.dims(), y_layout.dims());
        }
        let (Some((dy_start, dy_end)), Some((y_start, y_end))) =
            (dy_layout.contiguous_offsets(), y_layout.contiguous_offsets())
        else {
            candle_core::bail!("relu backward: contiguous tensors expected")
        };
        fn masked<T: WithDType>(dy: &[T], y: &[T]) -> CpuStorage {
            T::to_cpu_storage_owned(relu_gradient(dy, y))
        }
        let storage = match (dy, y) {
            (CpuStorage::F32(dy), CpuStorage::F32(y)) => masked(&dy[dy_start..dy_end], &y[y_start..y_end]),
            (CpuStorage::F64(dy), CpuStorage::F64(y)) => masked(&dy[dy_start..dy_end], &y[y_start..y_end]),
            _ => candle_core::bail!("relu backward: f32 or f64 tensors of one dtype expected"),
        };
        Ok((storage, dy_layout.shape().clone()))
    }
}
