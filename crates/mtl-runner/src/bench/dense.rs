//! The `w6` reference workload: dense per-pixel training throughput of
//! [`mtl_model::dense::EncoderDecoder`] (ResNet-18 encoder, ImageNet stem, width 1) on
//! random 3×96×128 images (NYUv2 at a third of its resolution), batch 8, with a 13-class
//! segmentation head (per-pixel cross-entropy) and a 1-channel depth head (L1), the
//! losses summed, Adam lr 1e-4. Same protocol as [`crate::bench::run`]: untimed warm-up
//! steps, then timed repeats of steps; the median samples per second and peak RSS.
//! `benches/torch_reference.py --workload w6` is the same model and step in PyTorch.
//!
//! The training step is written out here (no task kinds for dense tasks yet): forward,
//! the two losses, one backward, one optimiser step.

use std::time::Instant;

use candle_core::{DType, Result, Tensor};
use mtl_data::Rng;
use mtl_model::dense::{DenseHead, EncoderDecoder, EncoderDecoderSpec};
use mtl_model::{InitScheme, ResNetDepth, ResNetStem};

use super::{BenchOptions, BenchResult};
use crate::optim::{Optimizer, OptimizerKind, OptimizerSpec};

/// Batch size of `w6`.
pub const W6_BATCH: usize = 8;
/// Segmentation classes of `w6` (NYUv2's 13).
pub const W6_CLASSES: usize = 13;
/// Input height and width of `w6`.
pub const W6_SIZE: (usize, usize) = (96, 128);

/// The `w6` network: ResNet-18 encoder with the ImageNet stem, width 1, two heads.
pub fn w6_spec() -> EncoderDecoderSpec {
    EncoderDecoderSpec {
        in_channels: 3,
        depth: ResNetDepth::R18,
        width: 1.0,
        stem: ResNetStem::ImageNet,
        heads: vec![
            ("segmentation".into(), DenseHead { out_channels: W6_CLASSES }),
            ("depth".into(), DenseHead { out_channels: 1 }),
        ],
        init: InitScheme::Framework,
    }
}

/// Mean over pixels of the cross-entropy of `logits` `[B, C, H, W]` against `classes`
/// `[B, H, W]` (class indices in the logits' dtype): `−log_softmax(logits)[b, classes[b, h,
/// w], h, w]` averaged (PyTorch's `F.cross_entropy` on maps), through the segmentation
/// tasks' own [`mtl_model::layers::pixel_nll`].
pub fn pixel_cross_entropy(logits: &Tensor, classes: &Tensor) -> Result<Tensor> {
    mtl_model::layers::pixel_nll(logits, classes)?.mean_all()
}

/// Mean absolute difference (L1) of `predicted` and `target`, same shape.
pub fn l1_loss(predicted: &Tensor, target: &Tensor) -> Result<Tensor> {
    (predicted - target)?.abs()?.mean_all()
}

/// Trains the `w6` network on one fixed random batch for `warmup + repeats × steps`
/// steps and measures throughput.
pub fn run_w6(options: BenchOptions) -> Result<BenchResult> {
    run_dense(&w6_spec(), W6_BATCH, W6_SIZE, options)
}

/// The `w6` protocol for any encoder–decoder whose first head is a segmentation into
/// `W6_CLASSES` classes and second a 1-channel depth (smaller ones in the tests).
pub(crate) fn run_dense(
    spec: &EncoderDecoderSpec,
    batch: usize,
    (height, width): (usize, usize),
    options: BenchOptions,
) -> Result<BenchResult> {
    let device = options.device.open().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let (net, params) = EncoderDecoder::new(spec, 0, DType::F32, &device)?;
    let optimizer_spec = OptimizerSpec { lr: 1e-4, ..OptimizerSpec::default_for(OptimizerKind::Adam) };
    let mut optimizer = Optimizer::new(params.vars(), &optimizer_spec)?;
    let mut rng = Rng::derive(0, "bench w6");
    let pixels = batch * height * width;
    let images: Vec<f32> = (0..pixels * spec.in_channels).map(|_| rng.range(0.0, 1.0) as f32).collect();
    let images = Tensor::from_vec(images, (batch, spec.in_channels, height, width), &device)?;
    let n_classes = spec.heads[0].1.out_channels;
    let classes: Vec<f32> = (0..pixels).map(|_| rng.below(n_classes) as f32).collect();
    let classes = Tensor::from_vec(classes, (batch, height, width), &device)?;
    let depth: Vec<f32> = (0..pixels).map(|_| rng.range(0.0, 1.0) as f32).collect();
    let depth = Tensor::from_vec(depth, (batch, 1, height, width), &device)?;
    let mut step = || -> Result<()> {
        let outputs = net.forward_t(&images, true)?;
        let loss = (pixel_cross_entropy(&outputs[0], &classes)? + l1_loss(&outputs[1], &depth)?)?;
        optimizer.backward_step(&loss)?;
        if let Some((index, value)) = optimizer.non_finite_gradient() {
            candle_core::bail!("w6: variable {index} got a non-finite gradient {value}");
        }
        Ok(())
    };
    for _ in 0..options.warmup_steps {
        step()?;
    }
    let mut repeats = Vec::new();
    for _ in 0..options.repeats {
        let started = Instant::now();
        for _ in 0..options.steps_per_repeat {
            step()?;
        }
        repeats.push((options.steps_per_repeat * batch) as f64 / started.elapsed().as_secs_f64());
    }
    if repeats.is_empty() {
        candle_core::bail!("w6: no timed repeats");
    }
    Ok(BenchResult::of(batch, repeats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn pixel_losses_match_hand_computed_values() -> Result<()> {
        // Two pixels of 2 classes: logits (0, ln 3) and (ln 3, 0), classes 1 and 1:
        // −log(3/4) and −log(1/4), mean ln(4) − ln(3)/2. L1 of (1, −2) against (0, 0): 1.5.
        let logits = Tensor::new(&[[[[0f32, 3f32.ln()]], [[3f32.ln(), 0.0]]]], &Device::Cpu)?;
        let classes = Tensor::new(&[[[1f32, 1.0]]], &Device::Cpu)?;
        let expected = 4f32.ln() - 3f32.ln() / 2.0;
        let got = pixel_cross_entropy(&logits, &classes)?.to_scalar::<f32>()?;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
        let predicted = Tensor::new(&[[[[1f32, -2.0]]]], &Device::Cpu)?;
        assert_eq!(l1_loss(&predicted, &predicted.zeros_like()?)?.to_scalar::<f32>()?, 1.5);
        Ok(())
    }

    #[test]
    fn a_small_dense_workload_trains_and_reports_throughput() -> Result<()> {
        let spec = EncoderDecoderSpec { width: 1.0 / 16.0, ..w6_spec() };
        let options = BenchOptions { warmup_steps: 1, repeats: 3, steps_per_repeat: 1, ..BenchOptions::default() };
        let result = run_dense(&spec, 2, (32, 64), options)?;
        assert_eq!(result.samples_per_step, 2);
        assert_eq!(result.repeats.len(), 3);
        assert!(result.repeats.iter().all(|r| r.is_finite() && *r > 0.0));
        assert!(result.repeats.contains(&result.median_samples_per_second));
        Ok(())
    }
}
