//! The loop every optimiser shares: read a variable's gradient, refuse a non-finite one,
//! update the variable and its state buffers element by element in chunks.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};

/// Elements per unit of parallel work.
const CHUNK: usize = 1 << 15;

/// One variable and its per-element state (moments, momentum), each as long as the variable.
pub(super) struct Slot {
    pub(super) var: Var,
    pub(super) buffers: Vec<Vec<f32>>,
}

/// `vars` with `n_buffers` zeroed state buffers each; only f32 variables are accepted.
pub(super) fn slots(vars: Vec<Var>, n_buffers: usize, optimizer: &str) -> Result<Vec<Slot>> {
    vars.into_iter()
        .map(|var| {
            if var.dtype() != DType::F32 {
                candle_core::bail!("{optimizer} updates f32 variables, got {:?}", var.dtype());
            }
            let n = var.elem_count();
            Ok(Slot { var, buffers: vec![vec![0.0; n]; n_buffers] })
        })
        .collect()
}

/// A variable's gradient as the optimisers see it.
pub(super) enum Gradient {
    /// The variable took no part in the loss.
    Missing,
    /// The first NaN or infinite element: training has diverged.
    NonFinite(f32),
    /// The gradient, flattened.
    Finite(Vec<f32>),
}

/// `var`'s gradient in `grads`.
pub(super) fn gradient(var: &Var, grads: &GradStore) -> Result<Gradient> {
    let Some(grad) = grads.get(var) else { return Ok(Gradient::Missing) };
    let grad = grad.flatten_all()?.to_vec1::<f32>()?;
    // Branch-free, so that it vectorises: a small share of the update's own pass.
    if !grad.iter().fold(true, |finite, g| finite & g.is_finite()) {
        let bad = grad.iter().copied().find(|g| !g.is_finite()).unwrap_or(f32::NAN);
        return Ok(Gradient::NonFinite(bad));
    }
    Ok(Gradient::Finite(grad))
}

/// Calls `update(index, slot, gradient)` for each variable with a gradient, in order; at
/// the first NaN or infinite gradient it stops and returns that variable's index and the
/// value (training has diverged), leaving it and the later ones untouched.
pub(super) fn each_gradient(
    slots: &mut [Slot],
    grads: &GradStore,
    mut update: impl FnMut(usize, &mut Slot, &[f32]) -> Result<()>,
) -> Result<Option<(usize, f32)>> {
    for (slot_idx, slot) in slots.iter_mut().enumerate() {
        match gradient(&slot.var, grads)? {
            Gradient::Missing => continue,
            Gradient::NonFinite(bad) => return Ok(Some((slot_idx, bad))),
            Gradient::Finite(grad) => update(slot_idx, slot, &grad)?,
        }
    }
    Ok(None)
}

/// Runs `kernel(θ, buffers, g)` over matching chunks of the variable, its buffers and
/// `grad`, then writes the variable back. The kernel must be element-wise, so that
/// splitting the work over threads changes no result.
pub(super) fn update(
    slot: &mut Slot,
    grad: &[f32],
    kernel: impl Fn(&mut [f32], &mut [&mut [f32]], &[f32]) + Sync,
) -> Result<()> {
    let mut theta = slot.var.flatten_all()?.to_vec1::<f32>()?;
    let mut buffer_chunks: Vec<_> = slot.buffers.iter_mut().map(|b| b.chunks_mut(CHUNK)).collect();
    let chunks: Vec<_> = theta
        .chunks_mut(CHUNK)
        .zip(grad.chunks(CHUNK))
        .map(|(theta, g)| {
            let buffers: Vec<&mut [f32]> = buffer_chunks.iter_mut().filter_map(|chunks| chunks.next()).collect();
            std::sync::Mutex::new((theta, buffers, g))
        })
        .collect();
    // On candle's pool, under the same rules as the layers' loops (by size, and never
    // for a trial kept to one thread).
    mtl_model::layers::parallel_for(chunks.len(), grad.len() * 4, |i| {
        let mut chunk = chunks[i].lock().expect("optimizer chunk");
        let (theta, buffers, g) = &mut *chunk;
        kernel(theta, buffers, g);
    });
    drop(chunks);
    slot.var.set(&Tensor::from_vec(theta, slot.var.shape(), slot.var.device())?)
}
