//! [`pixel_nll`]: the negative log-likelihood of each pixel's label under the softmax of
//! its class scores over the channels (PyTorch's `F.cross_entropy(scores, labels,
//! reduction="none", ignore_index=-1)`), the loss of segmentation tasks.
//!
//! On the CPU it is one op forward and backward: per pixel, the scores' maximum `m` and
//! `ln s` with `s = Σ_k exp(x_k − m)` give `nll = ln s − (x_label − m)`, and the gradient
//! `g·(softmax_k − [k = label])` is written in one pass from the recorded `m` and `ln s`.
//! The composed candle ops (the reference in the tests, and the path off the CPU) permute
//! the scores to put the classes last, then log-softmax, gather, mask and negate; their
//! backward sums over the broadcast class axis, strided.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType, D};

use super::parallel::{lockable_chunks, parallel_for, zeroed};

/// Pixels per unit of parallel work in the forward pass.
const BLOCK: usize = 1024;

/// `[n, H, W]`: `−log softmax(scores[i, :, y, x])[labels[i, y, x]]`, and 0 where the
/// label is −1 (unlabelled; no gradient flows there). `scores` is `[n, C, H, W]`,
/// `labels` `[n, H, W]` in the scores' dtype (f32 or f64), each −1 or a class in `0..C`.
pub fn pixel_nll(scores: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (n, classes, height, width) = scores.dims4()?;
    if labels.dims() != [n, height, width] || labels.dtype() != scores.dtype() {
        candle_core::bail!(
            "pixel_nll: labels {:?} {:?} for scores {:?} {:?}",
            labels.dtype(),
            labels.dims(),
            scores.dtype(),
            scores.dims()
        );
    }
    if classes == 0 {
        candle_core::bail!("pixel_nll: scores {:?} have no classes", scores.dims());
    }
    if !super::composed::kernels_apply(scores) || !matches!(scores.dtype(), DType::F32 | DType::F64) {
        return composed(scores, labels, classes);
    }
    let op = PixelNll { record: Arc::new(Mutex::new(None)) };
    scores.contiguous()?.apply_op2(&labels.contiguous()?, op)
}

/// [`pixel_nll`] as candle ops (any device).
fn composed(scores: &Tensor, labels: &Tensor, classes: usize) -> Result<Tensor> {
    let (n, c, h, w) = scores.dims4()?;
    let flat = scores.permute((0, 2, 3, 1))?.reshape((n * h * w, c))?;
    let labels = labels.flatten_all()?;
    let valid = labels.ge(0.0)?.to_dtype(scores.dtype())?;
    let picks = labels.clamp(0.0, (classes.max(1) - 1) as f64)?.to_dtype(DType::U32)?;
    let log_p = candle_nn::ops::log_softmax(&flat, D::Minus1)?;
    let picked = log_p.gather(&picks.unsqueeze(1)?, 1)?.squeeze(1)?;
    (picked * valid)?.neg()?.reshape((n, h, w))
}

/// The element types of the op, with the functions it needs.
trait Real: WithDType {
    fn exp(self) -> Self;
    fn ln(self) -> Self;
}

impl Real for f32 {
    fn exp(self) -> f32 {
        f32::exp(self)
    }
    fn ln(self) -> f32 {
        f32::ln(self)
    }
}

impl Real for f64 {
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    fn ln(self) -> f64 {
        f64::ln(self)
    }
}

/// Per pixel `[n·P]`: the scores' maximum and `ln Σ exp(x − max)`, as the forward pass
/// computed them, for the backward pass.
#[derive(Debug)]
enum Shifts {
    F32(Vec<f32>, Vec<f32>),
    F64(Vec<f64>, Vec<f64>),
}

/// What the forward pass leaves the backward pass: the labels it read and its shifts.
#[derive(Debug)]
struct Record {
    labels: Vec<Option<usize>>,
    shifts: Shifts,
}

struct PixelNll {
    record: Arc<Mutex<Option<Arc<Record>>>>,
}

/// The contiguous data of an argument as a slice of `T`.
fn slice<'a, T: WithDType>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("pixel_nll: contiguous tensors expected"),
    }
}

/// `[n, C, H·W]` of the scores' layout.
fn sizes(layout: &Layout) -> Result<(usize, usize, usize)> {
    match layout.dims() {
        &[n, c, h, w] => Ok((n, c, h * w)),
        dims => candle_core::bail!("pixel_nll: scores [n, C, H, W] expected, got {dims:?}"),
    }
}

/// Class index of each pixel (None: unlabelled), or an error naming the first bad label.
fn classes_of<T: WithDType>(labels: &[T], classes: usize, pixels: usize) -> Result<Vec<Option<usize>>> {
    labels
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            let value = label.to_f64();
            if value == -1.0 {
                return Ok(None);
            }
            if value < 0.0 || value >= classes as f64 || value.fract() != 0.0 {
                let (sample, pixel) = (i / pixels.max(1), i % pixels.max(1));
                candle_core::bail!(
                    "pixel_nll: label {value} at pixel {pixel} of sample {sample}; expected −1 or a class in 0..{classes}"
                );
            }
            Ok(Some(value as usize))
        })
        .collect()
}

/// The losses `[n·P]` and the per-pixel (max, ln s).
fn forward<T: Real>(x: &[T], labels: &[Option<usize>], (n, c, p): (usize, usize, usize)) -> (Vec<T>, Vec<T>, Vec<T>) {
    let mut nll = vec![T::zero(); n * p];
    let (mut maxima, mut log_sums) = (nll.clone(), nll.clone());
    let blocks_per_sample = p.div_ceil(BLOCK);
    let units: Vec<_> = nll
        .chunks_mut(p.max(1))
        .zip(maxima.chunks_mut(p.max(1)))
        .zip(log_sums.chunks_mut(p.max(1)))
        .flat_map(|((nll, m), s)| nll.chunks_mut(BLOCK).zip(m.chunks_mut(BLOCK)).zip(s.chunks_mut(BLOCK)))
        .map(Mutex::new)
        .collect();
    parallel_for(units.len(), n * c * p, |unit| {
        let mut guard = units[unit].lock().expect("pixel block");
        let ((nll, maxima), log_sums) = &mut *guard;
        let (sample, start) = (unit / blocks_per_sample, (unit % blocks_per_sample) * BLOCK);
        let scores = &x[sample * c * p..][..c * p];
        let row = |k: usize| &scores[k * p + start..][..nll.len()];
        maxima.copy_from_slice(row(0));
        for k in 1..c {
            for (m, &v) in maxima.iter_mut().zip(row(k)) {
                *m = if v > *m { v } else { *m };
            }
        }
        log_sums.fill(T::zero());
        for k in 0..c {
            for ((s, &v), &m) in log_sums.iter_mut().zip(row(k)).zip(maxima.iter()) {
                *s += (v - m).exp();
            }
        }
        let labels = &labels[sample * p + start..][..nll.len()];
        for (j, ((out, s), &m)) in nll.iter_mut().zip(log_sums.iter_mut()).zip(maxima.iter()).enumerate() {
            *s = s.ln();
            if let Some(label) = labels[j] {
                *out = *s - (scores[label * p + start + j] - m);
            }
        }
    });
    drop(units);
    (nll, maxima, log_sums)
}

/// `dx[i, k, q] = g[i, q]·(exp(x − max − ln s) − [k = label])`, 0 at unlabelled pixels,
/// one `[P]` row of one class of one sample per unit.
fn backward<T: Real>(
    x: &[T],
    labels: &[Option<usize>],
    grad: &[T],
    (maxima, log_sums): (&[T], &[T]),
    (n, c, p): (usize, usize, usize),
) -> Vec<T> {
    let mut dx = zeroed(n * c * p);
    let rows = lockable_chunks(&mut dx, p);
    parallel_for(rows.len(), n * c * p, |unit| {
        let mut row = rows[unit].lock().expect("gradient row");
        let (sample, class) = (unit / c, unit % c);
        let at = sample * p;
        let scores = &x[(sample * c + class) * p..][..p];
        let pixels = (&labels[at..][..p], &grad[at..][..p], &maxima[at..][..p], &log_sums[at..][..p]);
        for (q, out) in row.iter_mut().enumerate() {
            let Some(label) = pixels.0[q] else { continue };
            let softmax = ((scores[q] - pixels.2[q]) - pixels.3[q]).exp();
            let target = if label == class { T::one() } else { T::zero() };
            *out = pixels.1[q] * (softmax - target);
        }
    });
    drop(rows);
    dx
}

impl CustomOp2 for PixelNll {
    fn name(&self) -> &'static str {
        "mtl-pixel-nll"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        y: &CpuStorage,
        y_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims @ (n, c, p) = sizes(x_layout)?;
        let labels = match x.dtype() {
            DType::F32 => classes_of(slice::<f32>(y, y_layout)?, c, p)?,
            DType::F64 => classes_of(slice::<f64>(y, y_layout)?, c, p)?,
            dtype => candle_core::bail!("pixel_nll: f32 or f64 scores expected, got {dtype:?}"),
        };
        let (storage, shifts) = match x.dtype() {
            DType::F32 => {
                let (nll, m, s) = forward(slice::<f32>(x, x_layout)?, &labels, dims);
                (CpuStorage::F32(nll), Shifts::F32(m, s))
            }
            _ => {
                let (nll, m, s) = forward(slice::<f64>(x, x_layout)?, &labels, dims);
                (CpuStorage::F64(nll), Shifts::F64(m, s))
            }
        };
        *self.record.lock().expect("pixel_nll record") = Some(Arc::new(Record { labels, shifts }));
        let (_, _, height, width) = x_layout.shape().dims4()?;
        Ok((storage, Shape::from((n, height, width))))
    }

    fn bwd(&self, scores: &Tensor, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let record = self.record.lock().expect("pixel_nll record").clone();
        let Some(record) = record else { candle_core::bail!("pixel_nll: backward before forward") };
        // No backward of the backward: gradients of gradients are not needed.
        let dx = scores.apply_op2_no_bwd(&grad.contiguous()?, &PixelNllBackward { record })?;
        Ok((Some(dx), None))
    }
}

/// `(scores, dloss)` → dscores, from the forward pass's record.
struct PixelNllBackward {
    record: Arc<Record>,
}

impl CustomOp2 for PixelNllBackward {
    fn name(&self) -> &'static str {
        "mtl-pixel-nll-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        g: &CpuStorage,
        g_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = sizes(x_layout)?;
        let Record { labels, shifts } = &*self.record;
        let storage = match shifts {
            Shifts::F32(m, s) => {
                let (x, grad) = (slice::<f32>(x, x_layout)?, slice::<f32>(g, g_layout)?);
                CpuStorage::F32(backward(x, labels, grad, (m, s), dims))
            }
            Shifts::F64(m, s) => {
                let (x, grad) = (slice::<f64>(x, x_layout)?, slice::<f64>(g, g_layout)?);
                CpuStorage::F64(backward(x, labels, grad, (m, s), dims))
            }
        };
        Ok((storage, x_layout.shape().clone()))
    }
}
