//! An encoder–decoder for dense per-pixel tasks (segmentation, depth): a ResNet encoder,
//! a decoder shared by every task that up-samples back to the input resolution, and one
//! small convolutional head per task, each giving `[B, C, H, W]` at the input's `H × W`.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use mtl_model::dense::{DenseHead, EncoderDecoder, EncoderDecoderSpec};
//! use mtl_model::{InitScheme, ResNetDepth, ResNetStem};
//! let spec = EncoderDecoderSpec {
//!     in_channels: 3,
//!     depth: ResNetDepth::R18,
//!     width: 1.0 / 16.0,
//!     stem: ResNetStem::ImageNet,
//!     heads: vec![("segmentation".into(), DenseHead { out_channels: 13 }), ("depth".into(), DenseHead { out_channels: 1 })],
//!     init: InitScheme::Framework,
//! };
//! let (net, params) = EncoderDecoder::new(&spec, 0, DType::F32, &Device::Cpu)?;
//! let outputs = net.forward_t(&Tensor::zeros((2, 3, 64, 96), DType::F32, &Device::Cpu)?, true)?;
//! assert_eq!(outputs[0].dims(), &[2, 13, 64, 96]);
//! assert_eq!(outputs[1].dims(), &[2, 1, 64, 96]);
//! assert!(params.batch_norms().count() > 0);
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! **Encoder**: ResNet-18/-34 (He et al. 2016), the same stem, basic blocks and
//! `width` multiplier as the classification trunk (`network::resnet`), without the
//! pooling. It keeps its feature maps at every stride as skips: with the ImageNet stem
//! the stem's output (stride 2, `64·width` channels) and stages 1–4 (strides 4–32); with
//! the CIFAR stem stages 1–4 (strides 1–8).
//!
//! **Decoder** (LinkNet's additive skips, Chaurasia & Culurciello 2017, with bilinear
//! up-sampling in place of its transposed convolutions): from the deepest map, each step
//! is bilinear ×2 ([`crate::layers::upsample_bilinear_fused`]) → conv 3×3 (no bias) → batch norm → relu
//! to the channels of the next shallower skip, plus that skip. With the ImageNet stem one last such step (no skip,
//! `32·width` channels) reaches stride 1. The decoder's output has
//! [`EncoderDecoder::decoder_channels`] channels.
//!
//! **Heads** ([`DenseHead`]): conv 3×3 (with bias) → relu → conv 1×1 to the task's channels.
//!
//! **Sizes**: any `H × W`. Inputs whose height or width is not a multiple of the
//! encoder's total stride ([`EncoderDecoder::total_stride`]: 32 with the ImageNet stem, 8
//! with the CIFAR stem) are padded with zeros at the bottom and right up to the next
//! multiple, and the decoder's output is cropped back to `H × W` before the heads (which
//! thus see zero padding at the image's true border, as everywhere else).
//!
//! **Names**: `encoder.stem.{conv,bn}`, `encoder.stage<k>.blocks.<b>.{conv1,bn1,conv2,bn2}`,
//! `encoder.stage<k>.blocks.0.downsample.{conv,bn}` (as the ResNet trunk's), `decoder.up<k>.{conv,bn}`
//! (k = 1 is the deepest step), `heads.<task>.{conv1,conv2}`; checkpoints carry every
//! batch norm's running statistics ([`Parameters`]).

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use mtl_data::Rng;

use crate::init::{InitScheme, Parameters, SeededBackend};
use crate::layers::{max_pool2d, BatchNorm2d, Conv2d};
use crate::network::resnet::{BasicBlock, ConvNorm};
use crate::network::{resnet_channels, Dropout, NamedBatchNorm};
use crate::{ResNetDepth, ResNetStem};

/// A per-task head on the decoder's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseHead {
    /// Channels of the task's output: classes of a segmentation, 1 for depth.
    pub out_channels: usize,
}

/// What an [`EncoderDecoder`] is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderDecoderSpec {
    /// Channels of the input images.
    pub in_channels: usize,
    /// ResNet-18 or -34 encoder.
    pub depth: ResNetDepth,
    /// Channel multiplier: stage `k` has `round(64·2^k·width)` channels.
    pub width: f64,
    /// The encoder's first layers (and so its total stride: 32 or 8).
    pub stem: ResNetStem,
    /// One head per task, by task name (which prefixes its parameters).
    pub heads: Vec<(String, DenseHead)>,
    /// How convolutions draw their initial values.
    pub init: InitScheme,
}

/// One decoder step: bilinear ×2 → conv 3×3 → batch norm → relu (then the skip is added).
struct UpStep {
    layer: ConvNorm,
}

/// A per-pixel head: conv 3×3 (with bias) → relu → conv 1×1, under `conv1` and `conv2`.
pub(crate) struct PixelHead {
    hidden: Conv2d,
    output: Conv2d,
}

impl PixelHead {
    /// A head from `channels` input maps to `out_channels` outputs, under `vb`.
    pub(crate) fn new(channels: usize, out_channels: usize, init: InitScheme, vb: VarBuilder) -> Result<PixelHead> {
        Ok(PixelHead {
            hidden: Conv2d::new(channels, channels, 3, 1, init, vb.pp("conv1"))?,
            output: Conv2d::new(channels, out_channels, 1, 0, init, vb.pp("conv2"))?,
        })
    }

    /// `[B, out_channels, H, W]` from the decoder's `[B, channels, H, W]`.
    pub(crate) fn forward(&self, features: &Tensor) -> Result<Tensor> {
        self.output.forward(&self.hidden.forward_relu(features)?)
    }
}

/// Channels of the decoder's output at `width` with `stem` ([`EncoderDecoder::decoder_channels`]).
pub(crate) fn decoder_channels(width: f64, stem: ResNetStem) -> usize {
    let first = resnet_channels(width, 0);
    match stem {
        ResNetStem::Cifar => first,
        ResNetStem::ImageNet => (first / 2).max(1),
    }
}

/// The encoder–decoder with its dense heads (see the module documentation).
pub struct EncoderDecoder {
    /// The stem (`ImageNet`: conv 7×7/2 → bn → relu, then max-pool 3×3/2 before stage 1).
    stem: ConvNorm,
    stem_kind: ResNetStem,
    stages: Vec<Vec<BasicBlock>>,
    /// Deepest first.
    up_steps: Vec<UpStep>,
    heads: Vec<PixelHead>,
    decoder_channels: usize,
}

impl EncoderDecoder {
    /// Builds the network with parameters drawn from `seed` (in construction order: encoder,
    /// decoder, heads) and returns it with its variables and batch norms.
    pub fn new(
        spec: &EncoderDecoderSpec,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<(EncoderDecoder, Parameters)> {
        let backend = Arc::new(SeededBackend::new(seed));
        let net = EncoderDecoder::build(spec, backend.builder(dtype, device))?;
        let parameters = backend.parameters().with_running_stats(net.batch_norms());
        Ok((net, parameters))
    }

    /// Builds the network under `vb` (see the module documentation for the names).
    pub fn build(spec: &EncoderDecoderSpec, vb: VarBuilder) -> Result<EncoderDecoder> {
        let positive_width = spec.width.is_finite() && spec.width > 0.0;
        if spec.in_channels == 0 || !positive_width {
            candle_core::bail!("an encoder-decoder needs input channels and a positive width, got {spec:?}");
        }
        if let Some((name, _)) = spec.heads.iter().find(|(_, head)| head.out_channels == 0) {
            candle_core::bail!("dense head {name} has 0 output channels");
        }
        let init = spec.init;
        let channels: Vec<usize> = (0..4).map(|stage| resnet_channels(spec.width, stage)).collect();
        let encoder = vb.pp("encoder");
        let (kernel, stride) = match spec.stem {
            ResNetStem::Cifar => (3, 1),
            ResNetStem::ImageNet => (7, 2),
        };
        let stem_vb = encoder.pp("stem");
        let stem = ConvNorm::new((spec.in_channels, channels[0]), (kernel, stride), ("conv", "bn"), init, &stem_vb)?;
        let blocks_per_stage = spec.depth.blocks_per_stage();
        let mut stages = Vec::new();
        for (index, &n_blocks) in blocks_per_stage.iter().enumerate() {
            let vb = encoder.pp(format!("stage{}", index + 1)).pp("blocks");
            let out = channels[index];
            let blocks = (0..n_blocks)
                .map(|b| {
                    let (from, stride) = match (b, index) {
                        (0, 0) => (out, 1),
                        (0, _) => (channels[index - 1], 2),
                        _ => (out, 1),
                    };
                    BasicBlock::new(from, out, stride, init, vb.pp(b))
                })
                .collect::<Result<Vec<_>>>()?;
            stages.push(blocks);
        }
        // Channels of the skips, shallowest first, then the decoder's last step (if any).
        let mut skip_channels = Vec::new();
        if spec.stem == ResNetStem::ImageNet {
            skip_channels.push(channels[0]);
        }
        skip_channels.extend(&channels);
        let mut targets: Vec<usize> = skip_channels[..skip_channels.len() - 1].iter().rev().copied().collect();
        if spec.stem == ResNetStem::ImageNet {
            targets.push((channels[0] / 2).max(1));
        }
        let decoder = vb.pp("decoder");
        let mut from = channels[3];
        let mut up_steps = Vec::new();
        for (k, &to) in targets.iter().enumerate() {
            let vb = decoder.pp(format!("up{}", k + 1));
            up_steps.push(UpStep { layer: ConvNorm::new((from, to), (3, 1), ("conv", "bn"), init, &vb)? });
            from = to;
        }
        let heads = spec
            .heads
            .iter()
            .map(|(name, head)| PixelHead::new(from, head.out_channels, init, vb.pp("heads").pp(name)))
            .collect::<Result<_>>()?;
        debug_assert_eq!(from, decoder_channels(spec.width, spec.stem));
        Ok(EncoderDecoder { stem, stem_kind: spec.stem, stages, up_steps, heads, decoder_channels: from })
    }

    /// The encoder's total stride: input sizes are padded up to a multiple of it.
    pub fn total_stride(&self) -> usize {
        match self.stem_kind {
            ResNetStem::Cifar => 8,
            ResNetStem::ImageNet => 32,
        }
    }

    /// Channels of the shared decoder's output, which every head reads.
    pub fn decoder_channels(&self) -> usize {
        self.decoder_channels
    }

    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.heads.len()
    }

    /// The batch norms by the prefix of their parameters (for [`Parameters`]).
    pub fn batch_norms(&self) -> Vec<(String, BatchNorm2d)> {
        self.named_batch_norms().into_iter().map(|named| (named.name, named.norm)).collect()
    }

    pub(crate) fn named_batch_norms(&self) -> Vec<NamedBatchNorm> {
        let stem = std::iter::once(self.stem.norm.clone());
        let blocks = self.stages.iter().flatten().flat_map(BasicBlock::batch_norms);
        let decoder = self.up_steps.iter().map(|step| step.layer.norm.clone());
        stem.chain(blocks).chain(decoder).collect()
    }

    /// The shared decoder's output `[B, decoder_channels, H, W]` for images `[B, C, H, W]`:
    /// batch norms on batch statistics (moving their running statistics) when `train`, on
    /// their running statistics otherwise.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let mut no_rng = Rng::new(0);
        // Dropout 0: the mode only says which statistics the batch norms use.
        let mode = if train { Dropout::new(0.0, &mut no_rng) } else { Dropout::off() };
        self.features_with(xs, &mode)
    }

    /// [`EncoderDecoder::features_t`] in `mode`'s training state and batch-norm stream.
    pub(crate) fn features_with(&self, xs: &Tensor, mode: &Dropout) -> Result<Tensor> {
        let (_, _, height, width) = xs.dims4()?;
        let multiple = self.total_stride();
        let padded = xs.pad_with_zeros(2, 0, height.next_multiple_of(multiple) - height)?.pad_with_zeros(
            3,
            0,
            width.next_multiple_of(multiple) - width,
        )?;
        let mut skips = Vec::new();
        let mut maps = self.stem.forward_relu(&padded, mode, None)?;
        if self.stem_kind == ResNetStem::ImageNet {
            skips.push(maps.clone());
            maps = max_pool2d(&maps, 3, 2, 1)?;
        }
        for stage in &self.stages {
            for block in stage {
                maps = block.forward(&maps, mode)?;
            }
            skips.push(maps.clone());
        }
        skips.pop();
        for step in &self.up_steps {
            maps = step.layer.forward_relu_upsampled(&maps, 2, mode)?;
            if let Some(skip) = skips.pop() {
                maps = (maps + skip)?;
            }
        }
        maps.narrow(2, 0, height)?.narrow(3, 0, width)
    }

    /// Head `index`'s output `[B, out_channels, H, W]` from [`EncoderDecoder::features_t`].
    pub fn head(&self, index: usize, features: &Tensor) -> Result<Tensor> {
        let Some(head) = self.heads.get(index) else { candle_core::bail!("head {index} of {}", self.heads.len()) };
        head.forward(features)
    }

    /// Every head's output, in the order of the spec's heads.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        let features = self.features_t(xs, train)?;
        (0..self.heads.len()).map(|index| self.head(index, &features)).collect()
    }
}

#[cfg(test)]
mod tests;
