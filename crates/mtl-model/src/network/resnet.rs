//! The ResNet trunk (He et al. 2016, basic blocks): four blocks, one per stage, so that
//! the strategies act at the four stage boundaries, and its stems.
//!
//! - the image stem (`stems.image.{conv,bn}`): CIFAR: conv 3×3/1 (pad 1) → bn → relu;
//!   ImageNet: conv 7×7/2 (pad 3) → bn → relu → max-pool 3×3/2 (pad 1);
//! - the text stem (`stems.text.embedding`): each token's embedding of `64·width`
//!   channels, the text laid out as a one-row map `[B, 64·width, 1, T]`, so that the
//!   shared stages read images and texts alike (a 3×3 kernel meets a one-row map with
//!   its middle row; the other rows see the zero padding);
//! - `stage1`: stage 1's basic blocks;
//! - `stage2`, `stage3`: basic blocks, the first with stride 2 and a 1×1/2 conv → bn
//!   projection on its shortcut (PyTorch's `downsample`);
//! - `stage4`: the same, then global average pooling and dropout: `[B, 512·width]`.
//!
//! A basic block is `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))` with 3×3
//! convolutions without bias. Parameter names follow torchvision's within a stage:
//! `trunk.stage2.blocks.0.{conv1,bn1,conv2,bn2}`, `trunk.stage2.blocks.0.downsample.{conv,bn}`;
//! batch norms keep `weight`, `bias`, and in checkpoints `running_mean`, `running_var`.
//! Convolutions draw as the experiment's `init` says; batch norms start at weight 1,
//! bias 0 (drawing nothing).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::blocks::{Dropout, Features, NamedBatchNorm};
use super::trunk_spec::resnet_channels;
use super::{InputSpec, ResNetDepth, ResNetStem, TrunkSpec};
use crate::init::InitScheme;
use crate::layers::{global_avg_pool2d, max_pool2d, Conv2d};

/// The activation shapes at the ResNet trunk's boundaries (`None` for other trunks): the
/// stem's output and stages 1–3 as maps that gates read averaged over positions, then the
/// pooled representation. Images and texts meet the trunk in the same shape.
pub(crate) fn boundaries(trunk: TrunkSpec, input: &InputSpec) -> Result<Option<Vec<Features>>> {
    let TrunkSpec::ResNet { width, .. } = trunk else { return Ok(None) };
    trunk.check_input(input)?;
    let mut shapes = vec![Features::PooledMaps { channels: resnet_channels(width, 0) }];
    shapes.extend((0..3).map(|stage| Features::PooledMaps { channels: resnet_channels(width, stage) }));
    shapes.push(Features::Vector { size: resnet_channels(width, 3) });
    Ok(Some(shapes))
}

/// Convolution → batch norm.
pub(crate) struct ConvNorm {
    conv: Conv2d,
    pub(crate) norm: NamedBatchNorm,
}

impl ConvNorm {
    /// A bias-free `kernel`×`kernel` convolution (padding `kernel / 2`) with `stride`,
    /// under `vb.<conv>`, and its batch norm under `vb.<norm>`.
    pub(crate) fn new(
        (in_channels, out_channels): (usize, usize),
        (kernel, stride): (usize, usize),
        (conv, norm): (&str, &str),
        init: InitScheme,
        vb: &VarBuilder,
    ) -> Result<ConvNorm> {
        let conv = Conv2d::new_without_bias(in_channels, out_channels, kernel, kernel / 2, init, vb.pp(conv))?
            .with_stride(stride);
        Ok(ConvNorm { conv, norm: NamedBatchNorm::new(out_channels, vb.pp(norm))? })
    }

    pub(crate) fn forward(&self, xs: &Tensor, dropout: &Dropout) -> Result<Tensor> {
        self.norm.forward(&self.conv.forward(xs)?, dropout)
    }

    /// `relu(bn(conv(xs)) + skip)`, or `relu(bn(conv(xs)))` without `skip`.
    pub(crate) fn forward_relu(&self, xs: &Tensor, dropout: &Dropout, skip: Option<&Tensor>) -> Result<Tensor> {
        self.norm.forward_relu(&self.conv.forward(xs)?, dropout, skip)
    }

    /// `relu(bn(conv(upsample_bilinear(xs, scale))))`, the up-sampling inside the
    /// convolution's op ([`Conv2d::forward_upsampled`]).
    pub(crate) fn forward_relu_upsampled(&self, xs: &Tensor, scale: usize, dropout: &Dropout) -> Result<Tensor> {
        self.norm.forward_relu(&self.conv.forward_upsampled(xs, scale)?, dropout, None)
    }
}

/// A basic block: two 3×3 conv → bn, the shortcut projected when the shape changes.
pub(crate) struct BasicBlock {
    first: ConvNorm,
    second: ConvNorm,
    downsample: Option<ConvNorm>,
}

impl BasicBlock {
    pub(crate) fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Self> {
        let first = ConvNorm::new((in_channels, out_channels), (3, stride), ("conv1", "bn1"), init, &vb)?;
        let second = ConvNorm::new((out_channels, out_channels), (3, 1), ("conv2", "bn2"), init, &vb)?;
        let downsample = if stride != 1 || in_channels != out_channels {
            let vb = vb.pp("downsample");
            Some(ConvNorm::new((in_channels, out_channels), (1, stride), ("conv", "bn"), init, &vb)?)
        } else {
            None
        };
        Ok(BasicBlock { first, second, downsample })
    }

    pub(crate) fn forward(&self, xs: &Tensor, dropout: &Dropout) -> Result<Tensor> {
        let hidden = self.first.forward_relu(xs, dropout, None)?;
        let shortcut = match &self.downsample {
            Some(projection) => projection.forward(xs, dropout)?,
            None => xs.clone(),
        };
        self.second.forward_relu(&hidden, dropout, Some(&shortcut))
    }

    pub(crate) fn batch_norms(&self) -> impl Iterator<Item = NamedBatchNorm> + '_ {
        [&self.first, &self.second].into_iter().chain(&self.downsample).map(|layer| layer.norm.clone())
    }
}

/// The image stem: conv → bn → relu, then under the ImageNet stem a 3×3/2 max-pool.
pub(crate) struct ResNetImageStem {
    layer: ConvNorm,
    kind: ResNetStem,
}

impl ResNetImageStem {
    /// The stem for `input` images (`stem`, or the automatic one for their size), under `vb`.
    pub(crate) fn new(
        width: f64,
        stem: Option<ResNetStem>,
        input: &InputSpec,
        init: InitScheme,
        vb: &VarBuilder,
    ) -> Result<ResNetImageStem> {
        let InputSpec::Image { channels, height, width: columns } = *input else {
            candle_core::bail!("the resnet image stem reads images only, not {input:?}")
        };
        let kind = ResNetStem::resolve(stem, height, columns);
        let kernel_stride = match kind {
            ResNetStem::Cifar => (3, 1),
            ResNetStem::ImageNet => (7, 2),
        };
        let layer = ConvNorm::new((channels, resnet_channels(width, 0)), kernel_stride, ("conv", "bn"), init, vb)?;
        Ok(ResNetImageStem { layer, kind })
    }

    pub(crate) fn forward(&self, xs: &Tensor, pass: &Dropout) -> Result<Tensor> {
        let xs = self.layer.forward_relu(xs, pass, None)?;
        match self.kind {
            ResNetStem::ImageNet => max_pool2d(&xs, 3, 2, 1),
            ResNetStem::Cifar => Ok(xs),
        }
    }

    pub(crate) fn batch_norm(&self) -> NamedBatchNorm {
        self.layer.norm.clone()
    }
}

/// One block of the ResNet trunk: a stage, with the pooling after it (`stage4`).
pub(crate) struct ResNetStage {
    blocks: Vec<BasicBlock>,
    pool: bool,
}

impl ResNetStage {
    /// Stage `index` (0–3), its parameters under `vb` (`trunk.stage<k>`).
    pub(crate) fn new(
        depth: ResNetDepth,
        width: f64,
        index: usize,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<ResNetStage> {
        let out_channels = resnet_channels(width, index);
        let in_channels = if index == 0 { out_channels } else { resnet_channels(width, index - 1) };
        let n_blocks = depth.blocks_per_stage()[index];
        let blocks = (0..n_blocks)
            .map(|b| {
                let (from, stride) =
                    if b == 0 { (in_channels, if index == 0 { 1 } else { 2 }) } else { (out_channels, 1) };
                BasicBlock::new(from, out_channels, stride, init, vb.pp("blocks").pp(b))
            })
            .collect::<Result<_>>()?;
        Ok(ResNetStage { blocks, pool: index == 3 })
    }

    pub(crate) fn forward(&self, xs: &Tensor, dropout: &mut Dropout) -> Result<Tensor> {
        let mut xs = xs.clone();
        for block in &self.blocks {
            xs = block.forward(&xs, dropout)?;
        }
        if self.pool {
            xs = dropout.apply(&global_avg_pool2d(&xs)?)?;
        }
        Ok(xs)
    }

    pub(crate) fn batch_norms(&self) -> Vec<NamedBatchNorm> {
        self.blocks.iter().flat_map(BasicBlock::batch_norms).collect()
    }
}
