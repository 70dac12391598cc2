//! The loop every optimiser shares: read a variable's gradient, refuse a non-finite one,
//! update the variable and its state buffers element by element in chunks, in place on
//! the host (the gradient is read and the variable written where they lie).
//!
//! A variable off the CPU (on a GPU) keeps its state beside it as tensors and is updated
//! with the same formula written as tensor ops ([`apply`]'s `on_device`), so that nothing
//! crosses to the host but one sum per gradient, read together for the non-finite check.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Storage, Tensor, Var};

/// Elements per unit of parallel work.
const CHUNK: usize = 1 << 15;

/// One variable and its per-element state (moments, momentum), each as long as the variable.
pub(super) struct Slot {
    pub(super) var: Var,
    buffers: Buffers,
}

/// A variable's state buffers: on the host for a CPU variable, tensors on its device otherwise.
enum Buffers {
    Host(Vec<Vec<f32>>),
    Device(Vec<Tensor>),
}

#[cfg(test)]
thread_local! {
    /// Tests: CPU variables take the tensor-op path too, to compare it with the host one.
    pub(crate) static TENSOR_PATH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether `var` is updated by tensor ops (off the CPU) rather than on the host.
fn on_device(var: &Var) -> bool {
    #[cfg(test)]
    if TENSOR_PATH.with(|t| t.get()) {
        return true;
    }
    !var.device().is_cpu()
}

/// `vars` with `n_buffers` zeroed state buffers each; only f32 variables are accepted.
pub(super) fn slots(vars: Vec<Var>, n_buffers: usize, optimizer: &str) -> Result<Vec<Slot>> {
    vars.into_iter()
        .map(|var| {
            if var.dtype() != DType::F32 {
                candle_core::bail!("{optimizer} updates f32 variables, got {:?}", var.dtype());
            }
            let buffers = match on_device(&var) {
                true => Buffers::Device((0..n_buffers).map(|_| var.zeros_like()).collect::<Result<_>>()?),
                false => Buffers::Host(vec![vec![0.0; var.elem_count()]; n_buffers]),
            };
            Ok(Slot { var, buffers })
        })
        .collect()
}

/// A finite gradient, where its variable is.
pub(super) enum Grad<'a> {
    /// On the host: a contiguous f32 tensor of the variable's size.
    Host(&'a Tensor),
    /// On the variable's device.
    Device(&'a Tensor),
}

/// The first NaN or infinite element of `grad` (read to the host), if any.
fn first_non_finite_of(grad: &Tensor) -> Result<Option<f32>> {
    Ok(first_non_finite(&grad.flatten_all()?.to_vec1::<f32>()?))
}

/// Calls `update(index, slot, gradient)` for each variable with a gradient, in order; at
/// the first NaN or infinite gradient it stops and returns that variable's index and the
/// value (training has diverged), leaving it and the later ones untouched.
pub(super) fn each_gradient(
    slots: &mut [Slot],
    grads: &GradStore,
    mut update: impl FnMut(usize, &mut Slot, Grad<'_>) -> Result<()>,
) -> Result<Option<(usize, f32)>> {
    let first_bad_on_device = first_non_finite_on_device(slots, grads)?;
    for (slot_idx, slot) in slots.iter_mut().enumerate() {
        if matches!(slot.buffers, Buffers::Device(_)) {
            let Some(grad) = grads.get(&slot.var) else { continue };
            if first_bad_on_device == Some(slot_idx) {
                let Some(bad) = first_non_finite_of(grad)? else {
                    candle_core::bail!("variable {slot_idx}: its gradient's sum is not finite, but every element is");
                };
                return Ok(Some((slot_idx, bad)));
            }
            update(slot_idx, slot, Grad::Device(grad))?;
            continue;
        }
        // On the host the gradient is read where it lies, not copied.
        let Some(grad) = grads.get(&slot.var) else { continue };
        let grad = grad.contiguous()?;
        let bad = {
            let (storage, layout) = grad.storage_and_layout();
            first_non_finite(host_values(&storage, layout)?)
        };
        if let Some(bad) = bad {
            return Ok(Some((slot_idx, bad)));
        }
        update(slot_idx, slot, Grad::Host(&grad))?;
    }
    Ok(None)
}

/// The f32 values of a contiguous CPU tensor's `storage`, borrowed.
fn host_values<'a>(storage: &'a Storage, layout: &Layout) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(storage) => cpu_values(storage, layout),
        _ => candle_core::bail!("an optimizer reads contiguous f32 CPU gradients"),
    }
}

/// The f32 values of a contiguous CPU `storage`, borrowed.
fn cpu_values<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(values), Some((start, end))) => Ok(&values[start..end]),
        _ => candle_core::bail!("an optimizer reads contiguous f32 CPU gradients"),
    }
}

/// The first NaN or infinite value of `values`, if any.
fn first_non_finite(values: &[f32]) -> Option<f32> {
    // Branch-free, so that it vectorises: a small share of the update's own pass.
    if values.iter().fold(true, |finite, g| finite & g.is_finite()) {
        return None;
    }
    Some(values.iter().copied().find(|g| !g.is_finite()).unwrap_or(f32::NAN))
}

/// The first variable off the host whose gradient has a NaN or infinite element, from
/// one read of every such gradient's sum (NaN or infinite when an element is; a finite
/// gradient whose sum overflows f32 is taken for a diverged one, and reported as such
/// only if an element is not finite).
fn first_non_finite_on_device(slots: &[Slot], grads: &GradStore) -> Result<Option<usize>> {
    let mut sums = Vec::new();
    for (slot_idx, slot) in slots.iter().enumerate() {
        if let (Buffers::Device(_), Some(grad)) = (&slot.buffers, grads.get(&slot.var)) {
            sums.push((slot_idx, grad.sum_all()?));
        }
    }
    if sums.is_empty() {
        return Ok(None);
    }
    let tensors: Vec<&Tensor> = sums.iter().map(|(_, sum)| sum).collect();
    let values = Tensor::stack(&tensors, 0)?.to_vec1::<f32>()?;
    Ok(sums.iter().zip(values).find(|(_, v)| !v.is_finite()).map(|((slot_idx, _), _)| *slot_idx))
}

/// Updates `slot` from `grad`: on the host with `kernel(θ, buffers, g)` over matching
/// chunks (see [`update`]), or on the variable's device with `on_device(θ, buffers, g)`,
/// which replaces the buffers in place and returns the new θ (the same formula as
/// tensor ops).
pub(super) fn apply(
    slot: &mut Slot,
    grad: Grad<'_>,
    kernel: impl Fn(&mut [f32], &mut [&mut [f32]], &[f32]) + Sync,
    on_device: impl FnOnce(&Tensor, &mut [Tensor], &Tensor) -> Result<Tensor>,
) -> Result<()> {
    match (grad, &mut slot.buffers) {
        (Grad::Host(grad), Buffers::Host(_)) => update(slot, grad, kernel),
        (Grad::Device(grad), Buffers::Device(buffers)) => {
            let theta = on_device(slot.var.as_tensor(), buffers, &grad.reshape(slot.var.shape())?)?;
            slot.var.set(&theta)
        }
        _ => candle_core::bail!("an optimizer's variable changed device"),
    }
}

/// Adam's and AdamW's shared part as tensor ops: updates the moments `[m, v]` from `g`
/// and returns `m̂ / (√v̂ + ε)` (`scales` are `1/(1−β1^t)` and `1/(1−β2^t)`).
pub(super) fn adam_direction(
    buffers: &mut [Tensor],
    g: &Tensor,
    (beta1, beta2): (f32, f32),
    (scale_m, scale_v): (f32, f32),
    eps: f32,
) -> Result<Tensor> {
    let [m, v] = buffers else { candle_core::bail!("Adam keeps two moments") };
    *m = ((&*m * f64::from(beta1))? + (g * f64::from(1.0 - beta1))?)?;
    *v = ((&*v * f64::from(beta2))? + (g.sqr()? * f64::from(1.0 - beta2))?)?;
    let denominator = ((&*v * f64::from(scale_v))?.sqrt()? + f64::from(eps))?;
    (&*m * f64::from(scale_m))? / denominator
}

/// Runs `kernel(θ, buffers, g)` over matching chunks of the variable, its buffers and
/// `grad`, on the variable's own storage (nothing is copied; a gradient sharing the
/// variable's storage is refused by candle). The kernel must be element-wise, so that
/// splitting the work over threads changes no result.
fn update(slot: &mut Slot, grad: &Tensor, kernel: impl Fn(&mut [f32], &mut [&mut [f32]], &[f32]) + Sync) -> Result<()> {
    let Buffers::Host(buffers) = &mut slot.buffers else { candle_core::bail!("host update of a device variable") };
    if grad.elem_count() != slot.var.elem_count() {
        candle_core::bail!("a gradient of {} values for a variable of {}", grad.elem_count(), slot.var.elem_count());
    }
    let op = InPlaceUpdate { buffers: std::sync::Mutex::new(buffers), kernel };
    slot.var.as_tensor().inplace_op2(grad, &op)
}

/// [`update`]'s pass, as an in-place op on the variable's storage, reading the gradient's.
struct InPlaceUpdate<'a, K> {
    buffers: std::sync::Mutex<&'a mut Vec<Vec<f32>>>,
    kernel: K,
}

impl<K: Fn(&mut [f32], &mut [&mut [f32]], &[f32]) + Sync> InplaceOp2 for InPlaceUpdate<'_, K> {
    fn name(&self) -> &'static str {
        "optimizer-update"
    }

    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<()> {
        let grad = cpu_values(grad, grad_layout)?;
        let (CpuStorage::F32(values), Some((start, end))) = (storage, layout.contiguous_offsets()) else {
            candle_core::bail!("an optimizer updates contiguous f32 CPU variables")
        };
        let theta = &mut values[start..end];
        let mut buffers = self.buffers.lock().expect("optimizer buffers");
        let mut buffer_chunks: Vec<_> = buffers.iter_mut().map(|b| b.chunks_mut(CHUNK)).collect();
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
            (self.kernel)(theta, buffers, g);
        });
        Ok(())
    }
}
