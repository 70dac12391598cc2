//! [`BatchNorm2d`]: batch normalisation over `(N, H, W)` per channel (Ioffe & Szegedy
//! 2015), with PyTorch's `nn.BatchNorm2d` semantics (momentum 0.1, eps 1e-5).
//!
//! Training normalises by the batch statistics (the biased variance) and updates the
//! running mean and running variance (the unbiased variance); evaluation normalises
//! by the running statistics. The running statistics are plain tensors, not trained
//! variables: no optimiser sees them; checkpoints read and restore them through
//! [`BatchNorm2d::running_stats`] and [`BatchNorm2d::set_running_stats`].
//!
//! A batch norm that several input modalities share (a ResNet trunk reading photos and
//! texts) keeps one pair of running statistics per modality, its *streams*
//! ([`BatchNorm2d::set_streams`]), as domain-specific batch normalisation does (Chang et
//! al. 2019): one modality's statistics (a one-row map of token embeddings) would
//! otherwise evaluate the other's inputs. The weight and bias stay shared; each pass
//! updates and, in evaluation, uses the statistics of its own stream.
//!
//! On the CPU (f32, f64) the training pass is one fused custom op, forward and backward:
//! three passes over the input forward and two backward, where the composed candle ops
//! make a dozen (about 6× faster on [128, 64, 32, 32] f32: the `resnet_stage_time`
//! example). The unit of parallel work is a channel: its statistics and its output pass
//! run back to back on one core, so that only the first pass reads from memory; its
//! outputs are written once, without being zeroed first (`layers::fresh`). The ReLU
//! after a batch norm, and a residual block's `relu(norm(x) + skip)`,
//! join that op ([`BatchNorm2d::forward_relu`]): candle's relu and add, and their
//! backward passes (a comparison, a cast, a product and gradient sums each), become a
//! clamp in the output pass and one masking pass backward. On other devices it is the
//! composed candle ops, the fused op's reference in the
//! tests. Evaluation is two broadcast ops everywhere.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, ModuleT, Result, Shape, Tensor, WithDType};
use candle_nn::init::Init;
use candle_nn::VarBuilder;

use super::fresh::{all_written, Fresh, Part};
use super::parallel::{lockable_chunks, parallel_for};
use super::relu::masked;

/// Weight of the batch statistics in the running-statistics update (PyTorch's default).
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;
/// Added to the variance before the square root (PyTorch's default).
pub const BATCH_NORM_EPS: f64 = 1e-5;

/// Batch normalisation of `[B, C, H, W]` maps: `y = (x − mean) / √(var + eps) · weight + bias`
/// per channel. Clones share their running statistics (as they share the variables).
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    /// (running mean, running variance) of each stream, each `[C]`; at least one stream.
    running: Arc<Mutex<Vec<(Tensor, Tensor)>>>,
    /// The stream this handle reads and writes as [`RunningStatistics`](crate::init::RunningStatistics).
    stream: usize,
}

impl BatchNorm2d {
    /// Creates `weight` `[C]` (ones) and `bias` `[C]` (zeros) under `vb`, in that order
    /// (PyTorch's `reset_parameters`; no random draw); running mean 0 and variance 1.
    pub fn new(channels: usize, vb: VarBuilder) -> Result<BatchNorm2d> {
        let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        BatchNorm2d::from_parts(weight, bias)
    }

    /// A batch norm with the affine `weight` and `bias` (`[C]` each), running mean 0 and
    /// variance 1 (on their device, in their dtype).
    pub fn from_parts(weight: Tensor, bias: Tensor) -> Result<BatchNorm2d> {
        let channels = weight.dims1()?;
        if bias.dims1()? != channels {
            candle_core::bail!("batch norm: weight [{channels}] but bias {:?}", bias.dims());
        }
        let running = (weight.zeros_like()?.detach(), weight.ones_like()?.detach());
        Ok(BatchNorm2d { weight, bias, running: Arc::new(Mutex::new(vec![running])), stream: 0 })
    }

    /// Keeps `n` streams of running statistics (at least 1; new ones start at mean 0,
    /// variance 1), shared with every clone.
    pub fn set_streams(&self, n: usize) -> Result<()> {
        let fresh = (self.weight.zeros_like()?.detach(), self.weight.ones_like()?.detach());
        self.running.lock().expect("running statistics").resize(n.max(1), fresh);
        Ok(())
    }

    /// Number of streams of running statistics.
    pub fn streams(&self) -> usize {
        self.running.lock().expect("running statistics").len()
    }

    /// A handle on the same batch norm whose [`BatchNorm2d::running_stats`] and
    /// [`BatchNorm2d::set_running_stats`] are those of stream `stream`.
    pub fn for_stream(&self, stream: usize) -> BatchNorm2d {
        BatchNorm2d { stream, ..self.clone() }
    }

    /// The running (mean, variance) of this handle's stream, `[C]` each.
    pub fn running_stats(&self) -> (Tensor, Tensor) {
        self.running.lock().expect("running statistics")[self.stream].clone()
    }

    /// Replaces the running statistics (from a checkpoint): `[C]` each, converted to the
    /// weight's dtype and device.
    pub fn set_running_stats(&self, mean: &Tensor, var: &Tensor) -> Result<()> {
        let channels = self.weight.dims1()?;
        if mean.dims() != [channels] || var.dims() != [channels] {
            candle_core::bail!(
                "batch norm: running statistics {:?} and {:?} for {channels} channels",
                mean.dims(),
                var.dims()
            );
        }
        let convert = |t: &Tensor| t.to_dtype(self.weight.dtype())?.to_device(self.weight.device()).map(|t| t.detach());
        self.running.lock().expect("running statistics")[self.stream] = (convert(mean)?, convert(var)?);
        Ok(())
    }

    /// Training (`train`): normalises by the batch statistics and updates the running
    /// ones; evaluation: normalises by the running statistics.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_stream(xs, train, 0)
    }

    /// [`BatchNorm2d::forward_t`] for inputs of stream `stream`, whose running statistics
    /// it updates or uses; a batch norm with one stream uses it for every input.
    pub fn forward_stream(&self, xs: &Tensor, train: bool, stream: usize) -> Result<Tensor> {
        self.normalise(xs, train, stream, Epilogue::None)
    }

    /// `relu(norm(xs) + skip)` (without `skip`: `relu(norm(xs))`), normalised as
    /// [`BatchNorm2d::forward_stream`] does; in training on the CPU, one fused op.
    pub fn forward_relu(&self, xs: &Tensor, train: bool, stream: usize, skip: Option<&Tensor>) -> Result<Tensor> {
        self.normalise(xs, train, stream, Epilogue::Relu { skip })
    }

    fn normalise(&self, xs: &Tensor, train: bool, stream: usize, epilogue: Epilogue) -> Result<Tensor> {
        let (batch, channels, height, width) = xs.dims4()?;
        if channels != self.weight.dims1()? {
            candle_core::bail!("batch norm: {} channels, input {:?}", self.weight.dims1()?, xs.dims());
        }
        let streams = self.streams();
        let stream = if streams == 1 { 0 } else { stream };
        if stream >= streams {
            candle_core::bail!("batch norm: stream {stream} of {streams}");
        }
        if !train {
            let (mean, var) = self.for_stream(stream).running_stats();
            let scale = ((var + BATCH_NORM_EPS)?.sqrt()?.recip()? * &self.weight)?;
            let shift = (&self.bias - (&mean * &scale)?)?;
            let per_channel = |t: &Tensor| t.reshape((1, channels, 1, 1));
            return epilogue.compose(xs.broadcast_mul(&per_channel(&scale)?)?.broadcast_add(&per_channel(&shift)?)?);
        }
        let count = batch * height * width;
        if count < 2 {
            candle_core::bail!("batch norm: training needs more than one value per channel, input {:?}", xs.dims());
        }
        let fused = super::composed::kernels_apply(xs) && matches!(xs.dtype(), DType::F32 | DType::F64);
        let (ys, mean, var) = match fused {
            true => batch_norm_train_fused(xs, &self.weight, &self.bias, epilogue)?,
            false => batch_norm_train_composed(xs, &self.weight, &self.bias, epilogue)?,
        };
        // PyTorch's update: the unbiased batch variance, weighted by the momentum.
        let unbiased = (var.detach() * (count as f64 / (count - 1) as f64))?;
        let mut all = self.running.lock().expect("running statistics");
        let running = &mut all[stream];
        let blend = |old: &Tensor, new: &Tensor| -> Result<Tensor> {
            (old.affine(1.0 - BATCH_NORM_MOMENTUM, 0.0)? + new.affine(BATCH_NORM_MOMENTUM, 0.0)?).map(|t| t.detach())
        };
        *running = (blend(&running.0, &mean.detach())?, blend(&running.1, &unbiased)?);
        Ok(ys)
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        BatchNorm2d::forward_t(self, xs, train)
    }
}
/// What follows the normalisation: nothing, or a ReLU, with `skip` added before it (a
/// residual block's end). On the CPU the training pass fuses it into the batch norm's
/// op, forward and backward, instead of candle's add and relu and their backward passes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Epilogue<'a> {
    None,
    Relu { skip: Option<&'a Tensor> },
}

impl Epilogue<'_> {
    /// The epilogue as candle ops on the normalised `ys`.
    fn compose(self, ys: Tensor) -> Result<Tensor> {
        match self {
            Epilogue::None => Ok(ys),
            Epilogue::Relu { skip: None } => ys.relu(),
            Epilogue::Relu { skip: Some(skip) } => (ys + skip)?.relu(),
        }
    }
}

/// The training pass as candle tensor ops (any device): (output, batch mean `[C]`, biased
/// batch variance `[C]`); the gradients flow through the batch statistics.
pub(super) fn batch_norm_train_composed(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    epilogue: Epilogue,
) -> Result<(Tensor, Tensor, Tensor)> {
    let channels = xs.dim(1)?;
    let per_channel = |t: &Tensor| t.reshape((1, channels, 1, 1));
    let mean = xs.mean_keepdim((0, 2, 3))?;
    let centered = xs.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim((0, 2, 3))?;
    let inv_std = (&var + BATCH_NORM_EPS)?.sqrt()?.recip()?;
    let ys = centered.broadcast_mul(&(inv_std * per_channel(weight)?)?)?.broadcast_add(&per_channel(bias)?)?;
    Ok((epilogue.compose(ys)?, mean.flatten_all()?, var.flatten_all()?))
}

/// The training pass as one CPU custom op (f32, f64): the same as
/// [`batch_norm_train_composed`], statistics summed in f64.
pub(super) fn batch_norm_train_fused(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    epilogue: Epilogue,
) -> Result<(Tensor, Tensor, Tensor)> {
    let record = Arc::new(Mutex::new(None));
    // One `[2C]` input: the ops take at most three, and the skip needs one.
    let affine = Tensor::cat(&[weight, bias], 0)?;
    let xs = xs.contiguous()?;
    let op = |relu| BatchNormOp { record: record.clone(), relu };
    let ys = match epilogue {
        Epilogue::None => xs.apply_op2(&affine, op(false))?,
        Epilogue::Relu { skip: None } => xs.apply_op2(&affine, op(true))?,
        Epilogue::Relu { skip: Some(skip) } => xs.apply_op3(&affine, &skip.contiguous()?, op(true))?,
    };
    let stats = record.lock().expect("batch norm record").clone();
    let Some(stats) = stats else { candle_core::bail!("batch norm: the forward pass recorded nothing") };
    let to_tensor = |values: &[f64]| Tensor::new(values, xs.device())?.to_dtype(xs.dtype());
    Ok((ys, to_tensor(&stats.mean)?, to_tensor(&stats.var)?))
}

/// Per-channel batch statistics, recorded by the forward pass for the backward pass.
#[derive(Debug)]
struct ChannelStats {
    mean: Vec<f64>,
    /// The biased variance (for the running statistics).
    var: Vec<f64>,
    /// `1 / √(var + eps)`.
    inv_std: Vec<f64>,
    /// The affine weight the pass used.
    weight: Vec<f64>,
}

/// `[B, C, H, W]` → (B, C, H·W).
fn sizes(dims: &[usize]) -> Result<(usize, usize, usize)> {
    match dims {
        &[batch, channels, height, width] => Ok((batch, channels, height * width)),
        _ => candle_core::bail!("batch norm: [B, C, H, W] expected, got {dims:?}"),
    }
}

/// Accumulators summed side by side: the adds of one lane do not wait on the others,
/// and the lanes are added in a fixed order, so the sum does not depend on the threads.
const LANES: usize = 8;

/// `Σ term(a[i], b[i])` in f64 (two sums at once), in [`LANES`] interleaved partial sums.
fn lane_sums<T: WithDType>(a: &[T], b: &[T], term: impl Fn(f64, f64) -> (f64, f64)) -> (f64, f64) {
    let (mut first, mut second) = ([0.0; LANES], [0.0; LANES]);
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = a_chunks.remainder().iter().zip(b_chunks.remainder());
    for (a, b) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            let (x, y) = term(a[lane].to_f64(), b[lane].to_f64());
            first[lane] += x;
            second[lane] += y;
        }
    }
    let lanes = (first.iter().sum::<f64>(), second.iter().sum::<f64>());
    tail.fold(lanes, |(x, y), (&a, &b)| {
        let (dx, dy) = term(a.to_f64(), b.to_f64());
        (x + dx, y + dy)
    })
}

/// `Σ term(a[i], b[i])` (two sums at once) over pairs of planes, in their order.
fn planes_sum<'a, T: WithDType>(
    planes: impl Iterator<Item = (&'a [T], &'a [T])>,
    term: impl Fn(f64, f64) -> (f64, f64),
) -> (f64, f64) {
    planes.fold((0.0, 0.0), |(x, y), (a, b)| {
        let (dx, dy) = lane_sums(a, b, &term);
        (x + dx, y + dy)
    })
}

/// Runs `work(c, planes)` for every channel `c`, the channels in parallel: `planes[k][s]`
/// is channel `c`'s plane of sample `s` of output `k`, where `parts` holds the outputs'
/// planes one after the other (each output `[B, C, HW]`). A channel's statistics and its
/// pass over the outputs then run back to back on one core, its planes still in that
/// core's cache.
fn for_each_channel<T: WithDType>(
    parts: &[Mutex<Part<'_, T>>],
    (batch, channels, _): (usize, usize, usize),
    cost: usize,
    work: impl Fn(usize, &mut [Vec<MutexGuard<Part<'_, T>>>]) + Sync,
) {
    let per_output = batch * channels;
    let outputs = parts.len().checked_div(per_output).unwrap_or(0);
    parallel_for(channels, cost, |channel| {
        let mut planes: Vec<Vec<_>> = (0..outputs)
            .map(|k| {
                let plane =
                    |sample: usize| parts[k * per_output + sample * channels + channel].lock().expect("channel plane");
                (0..batch).map(plane).collect()
            })
            .collect();
        work(channel, &mut planes);
    });
}

/// Per channel `[k0, k1, k2, k3]` of [`affine`].
type Coefficients<T> = [T; 4];

/// `k0·a + k1·(b − k2) + k3`.
fn affine<T: WithDType>(a: T, b: T, [k0, k1, k2, k3]: Coefficients<T>) -> T {
    k0 * a + k1 * (b - k2) + k3
}

/// The output and the statistics of the training pass; `affine` is `[weight C, bias C]`.
/// Per channel: the mean, then `Σ(x − mean)²` in a second pass (not `Σx² − n·mean²`,
/// which cancels catastrophically), then the output pass, `+ skip` and the ReLU where
/// asked.
fn forward<T: WithDType>(
    x: &[T],
    affine_parameters: &[T],
    dims: (usize, usize, usize),
    (skip, relu): (Option<&[T]>, bool),
) -> (Vec<T>, ChannelStats) {
    let (batch, channels, plane) = dims;
    let count = (batch * plane) as f64;
    let (weight, bias) = affine_parameters.split_at(channels);
    let mut ys = Fresh::new(x.len());
    let parts = ys.parts(std::iter::repeat_n(plane, batch * channels));
    let mut moments = vec![(0.0, 0.0, 0.0); channels];
    let slots = lockable_chunks(&mut moments, 1);
    for_each_channel(&parts, dims, 4 * x.len(), |c, planes| {
        let at = |sample: usize| (sample * channels + c) * plane;
        let x_planes = || (0..batch).map(|sample| (&x[at(sample)..][..plane], &x[at(sample)..][..plane]));
        let mean = planes_sum(x_planes(), |v, _| (v, 0.0)).0 / count;
        let var = planes_sum(x_planes(), |v, _| ((v - mean) * (v - mean), 0.0)).0 / count;
        let inv_std = 1.0 / (var + BATCH_NORM_EPS).sqrt();
        // y = 0·x + (weight·inv_std)·(x − mean) + bias.
        let k = [T::zero(), T::from_f64(weight[c].to_f64() * inv_std), T::from_f64(mean), bias[c]];
        let clamp = |v: T| if relu && v < T::zero() { T::zero() } else { v };
        for (sample, out) in planes[0].iter_mut().enumerate() {
            let x = &x[at(sample)..][..plane];
            match skip {
                Some(skip) => {
                    let skip = &skip[at(sample)..][..plane];
                    out.write(x.iter().zip(skip).map(|(&v, &s)| clamp(affine(v, v, k) + s)))
                }
                None => out.write(x.iter().map(|&v| clamp(affine(v, v, k)))),
            };
        }
        slots[c].lock().expect("channel moments")[0] = (mean, var, inv_std);
    });
    drop(slots);
    let written = all_written(parts);
    let ys = ys.finish(written);
    let mean = moments.iter().map(|m| m.0).collect();
    let var = moments.iter().map(|m| m.1).collect();
    let inv_std = moments.iter().map(|m| m.2).collect();
    let weight = weight.iter().map(|w| w.to_f64()).collect();
    (ys, ChannelStats { mean, var, inv_std, weight })
}

/// Packed `[dweight C, dbias C, dx B·C·HW]`, then `dskip B·C·HW` when a skip was added.
/// Through a ReLU whose output is `relu_output`, `dy` becomes `g = dy·[y > 0]` (which is
/// also `dskip`). With `x̂ = (x − mean)·inv_std` and n = B·H·W: `dbias = Σ g`,
/// `dweight = Σ g·x̂`, and, through the batch statistics,
/// `dx = weight·inv_std·(g − Σg/n − x̂·Σ(g·x̂)/n)`. A channel's g, sums and dx are one
/// unit of work.
fn backward<'a, T: WithDType>(
    x: &'a [T],
    dy: &'a [T],
    (relu_output, skip): (Option<&'a [T]>, bool),
    dims: (usize, usize, usize),
    stats: &ChannelStats,
) -> Vec<T> {
    let (n, (batch, channels, plane)) = (x.len(), dims);
    let count = (batch * plane) as f64;
    let mut packed = Fresh::new(2 * channels + if skip { 2 * n } else { n });
    let outputs = if skip { 2 } else { 1 };
    let parts =
        packed.parts(std::iter::once(2 * channels).chain(std::iter::repeat_n(plane, outputs * batch * channels)));
    let mut gradients = vec![(0.0, 0.0); channels];
    let slots = lockable_chunks(&mut gradients, 1);
    let ChannelStats { mean, inv_std, weight, .. } = stats;
    for_each_channel(&parts[1..], dims, 5 * n, |c, planes| {
        let (dx, dskip) = planes.split_at_mut(1);
        let (dx, mut dskip) = (&mut dx[0], dskip.first_mut());
        let at = |sample: usize| (sample * channels + c) * plane;
        let (x, dy) = (|s: usize| &x[at(s)..][..plane], |s: usize| &dy[at(s)..][..plane]);
        let relu_gradient = |s: usize, y: &'a [T]| masked(dy(s), &y[at(s)..][..plane]);
        // g where it lies: dy, or (through a ReLU) the skip's gradient or dx's own planes,
        // then updated in place.
        match (relu_output, dskip.as_deref_mut()) {
            (None, None) => {}
            (None, Some(dskip)) => {
                dskip.iter_mut().enumerate().for_each(|(s, out)| _ = out.write(dy(s).iter().copied()))
            }
            (Some(y), Some(dskip)) => {
                dskip.iter_mut().enumerate().for_each(|(s, out)| _ = out.write(relu_gradient(s, y)))
            }
            (Some(y), None) => dx.iter_mut().enumerate().for_each(|(s, out)| _ = out.write(relu_gradient(s, y))),
        }
        // (Σ g, Σ g·(x − mean)) in one pass.
        let (bias_grad, centered_sum) = {
            let g = |s: usize| match (relu_output, dskip.as_deref()) {
                (None, _) => dy(s),
                (Some(_), Some(dskip)) => dskip[s].written(),
                (Some(_), None) => dx[s].written(),
            };
            planes_sum((0..batch).map(|s| (g(s), x(s))), |g, v| (g, g * (v - mean[c])))
        };
        let weight_grad = centered_sum * inv_std[c];
        // dx = A·g + (−A·inv_std·dweight/n)·(x − mean) − A·dbias/n, with A = weight·inv_std.
        let a = weight[c] * inv_std[c];
        let centered = -a * inv_std[c] * weight_grad / count;
        let k = [T::from_f64(a), T::from_f64(centered), T::from_f64(mean[c]), T::from_f64(-a * bias_grad / count)];
        for (s, out) in dx.iter_mut().enumerate() {
            let g = match (relu_output, dskip.as_deref()) {
                (None, _) => dy(s),
                (Some(_), Some(dskip)) => dskip[s].written(),
                (Some(_), None) => {
                    out.written_mut().iter_mut().zip(x(s)).for_each(|(g, &v)| *g = affine(*g, v, k));
                    continue;
                }
            };
            out.write(g.iter().zip(x(s)).map(|(&g, &v)| affine(g, v, k)));
        }
        slots[c].lock().expect("channel gradients")[0] = (weight_grad, bias_grad);
    });
    drop(slots);
    let (weight_grads, bias_grads): (Vec<f64>, Vec<f64>) = gradients.into_iter().unzip();
    let head = weight_grads.iter().chain(&bias_grads).map(|&v| T::from_f64(v));
    parts[0].lock().expect("gradient head").write(head);
    let written = all_written(parts);
    packed.finish(written)
}

/// The contiguous data of a tensor as a slice of `T`.
fn slice<'a, T: WithDType>((storage, layout): (&'a CpuStorage, &Layout)) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("batch norm: contiguous tensors expected"),
    }
}

/// A named input of an op, with the dims it must have (`None`: those of `x`).
type Expected<'a> = (&'a str, (&'a CpuStorage, &'a Layout), Option<&'a [usize]>);

/// Checks that `x` is `[B, C, H, W]` (f32 or f64) and that each of `others` has the dims
/// beside it and the dtype of `x`.
fn check(x: (&CpuStorage, &Layout), others: &[Expected]) -> Result<(usize, usize, usize)> {
    let dims = sizes(x.1.dims())?;
    if !matches!(x.0.dtype(), DType::F32 | DType::F64) {
        candle_core::bail!("batch norm: f32 or f64 expected, got {:?}", x.0.dtype());
    }
    for &(name, (storage, layout), expected) in others {
        if layout.dims() != expected.unwrap_or(x.1.dims()) || storage.dtype() != x.0.dtype() {
            candle_core::bail!(
                "batch norm: {name} {:?} {:?} for input {:?} {:?}",
                storage.dtype(),
                layout.dims(),
                x.0.dtype(),
                x.1.dims()
            );
        }
    }
    Ok(dims)
}

/// `(x, [weight, bias], skip?)` → the normalised output (then its epilogue), training
/// mode; records the statistics.
struct BatchNormOp {
    record: Arc<Mutex<Option<Arc<ChannelStats>>>>,
    relu: bool,
}

impl BatchNormOp {
    fn run(
        &self,
        x: (&CpuStorage, &Layout),
        affine: (&CpuStorage, &Layout),
        skip: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let affine_dims = [2 * sizes(x.1.dims())?.1];
        let mut others = vec![("weight and bias", affine, Some(affine_dims.as_slice()))];
        others.extend(skip.map(|skip| ("skip", skip, None)));
        let dims = check(x, &others)?;
        let (ys, stats) = match x.0.dtype() {
            DType::F32 => {
                let skip = skip.map(slice).transpose()?;
                let (ys, stats) = forward::<f32>(slice(x)?, slice(affine)?, dims, (skip, self.relu));
                (CpuStorage::F32(ys), stats)
            }
            _ => {
                let skip = skip.map(slice).transpose()?;
                let (ys, stats) = forward::<f64>(slice(x)?, slice(affine)?, dims, (skip, self.relu));
                (CpuStorage::F64(ys), stats)
            }
        };
        *self.record.lock().expect("batch norm record") = Some(Arc::new(stats));
        Ok((ys, x.1.shape().clone()))
    }

    /// The gradients of x, of `[weight, bias]` and, with `skip`, of the skip input.
    fn gradients(
        &self,
        x: &Tensor,
        output: &Tensor,
        output_grad: &Tensor,
        skip: bool,
    ) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        let stats = self.record.lock().expect("batch norm record").clone();
        let Some(stats) = stats else { candle_core::bail!("batch norm: backward before forward") };
        let op = BatchNormBackwardOp { stats, relu: self.relu, skip };
        // No backward of the backward: gradients of gradients are not needed.
        let packed = x.apply_op3_no_bwd(&output_grad.contiguous()?, &output.contiguous()?, &op)?;
        let (channels, n) = (x.dim(1)?, x.elem_count());
        let affine_grad = packed.narrow(0, 0, 2 * channels)?;
        let input_grad = packed.narrow(0, 2 * channels, n)?.reshape(x.shape())?;
        let skip_grad = skip.then(|| packed.narrow(0, 2 * channels + n, n)?.reshape(x.shape())).transpose()?;
        Ok((input_grad, affine_grad, skip_grad))
    }
}

impl CustomOp2 for BatchNormOp {
    fn name(&self) -> &'static str {
        "mtl-batch-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        affine: &CpuStorage,
        affine_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((x, x_layout), (affine, affine_layout), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        affine: &Tensor,
        output: &Tensor,
        output_grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (input_grad, affine_grad, _) = self.gradients(x, output, output_grad, false)?;
        Ok((x.track_op().then_some(input_grad), affine.track_op().then_some(affine_grad)))
    }
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "mtl-batch-norm-add-relu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        affine: &CpuStorage,
        affine_layout: &Layout,
        skip: &CpuStorage,
        skip_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((x, x_layout), (affine, affine_layout), Some((skip, skip_layout)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        affine: &Tensor,
        skip: &Tensor,
        output: &Tensor,
        output_grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (input_grad, affine_grad, skip_grad) = self.gradients(x, output, output_grad, true)?;
        Ok((
            x.track_op().then_some(input_grad),
            affine.track_op().then_some(affine_grad),
            skip_grad.filter(|_| skip.track_op()),
        ))
    }
}

/// `(x, output gradient, output)` → `[dweight, dbias, dx, dskip?]` flattened (see
/// [`backward`]); the output is read only behind a ReLU.
struct BatchNormBackwardOp {
    stats: Arc<ChannelStats>,
    relu: bool,
    skip: bool,
}

impl CustomOp3 for BatchNormBackwardOp {
    fn name(&self) -> &'static str {
        "mtl-batch-norm-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        output_grad: &CpuStorage,
        output_grad_layout: &Layout,
        output: &CpuStorage,
        output_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (grad, out) = ((output_grad, output_grad_layout), (output, output_layout));
        let dims = check((x, x_layout), &[("output gradient", grad, None), ("output", out, None)])?;
        let (x, stats) = ((x, x_layout), &self.stats);
        let packed = match x.0.dtype() {
            DType::F32 => {
                let relu_output = self.relu.then(|| slice(out)).transpose()?;
                CpuStorage::F32(backward::<f32>(slice(x)?, slice(grad)?, (relu_output, self.skip), dims, stats))
            }
            _ => {
                let relu_output = self.relu.then(|| slice(out)).transpose()?;
                CpuStorage::F64(backward::<f64>(slice(x)?, slice(grad)?, (relu_output, self.skip), dims, stats))
            }
        };
        let n = x_layout.shape().elem_count();
        Ok((packed, Shape::from(2 * dims.1 + if self.skip { 2 * n } else { n })))
    }
}

impl crate::init::RunningStatistics for BatchNorm2d {
    fn running_stats(&self) -> (Tensor, Tensor) {
        BatchNorm2d::running_stats(self)
    }

    fn set_running_stats(&self, mean: &Tensor, var: &Tensor) -> Result<()> {
        BatchNorm2d::set_running_stats(self, mean, var)
    }
}
