//! The trunk as a list of blocks, and the pieces the strategies build from it.
//!
//! Every trunk is a list of blocks ([`TrunkSpec::block_names`]), so that the strategies
//! can act between them (cross-stitch mixes after each, PLE's levels cover ranges of
//! them, MTAN masks each one's output). The first three trunks are three blocks:
//!
//! | block | sequence trunk | LeNet trunk | TextCNN |
//! |---|---|---|---|
//! | `conv1` | conv k3 → relu: `[B, width, T]` → `[B, hidden, T]` | conv 5×5 → pool → relu | convs k3, k4, k5 → relu → max over time, concatenated |
//! | `conv2` | conv k3 → relu → max over time → `[B, hidden]` | conv 5×5 → pool → relu | (none) |
//! | `fc` | dropout → linear → relu | flatten → dropout → linear → relu (50) | dropout |
//!
//! The others: ResNet's `stage1`, `stage2`, `stage3`, `stage4` (then
//! global average pooling and dropout); the Transformer's `layer1`…`layerN` (the last one
//! then final norm and pooling); the recurrent trunk's `recurrent` and `pool` (then
//! dropout); the MLP's `fc1`…`fcN` (dropout → linear → relu). Sequences between blocks
//! are `[B, channels, T]`, whatever the trunk.

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use super::resnet::ResNetStage;
use super::text_encoders::{RecurrentBlock, TransformerBlock};
use super::{InputSpec, TrunkSpec, LENET_REPRESENTATION, TEXTCNN_WIDTHS};
use crate::init::{linear, InitScheme};
use crate::layers::{BatchNorm2d, Conv1d, Conv2d};
pub(crate) use crate::pass::Dropout;

/// Names of the blocks of the sequence, LeNet and TextCNN trunks, in order; they prefix
/// the blocks' parameters.
pub(crate) const BLOCK_NAMES: [&str; 3] = ["conv1", "conv2", "fc"];

/// The shape of the activations between blocks (batch dimension left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Features {
    /// `[channels, T]`, any length `T`.
    Sequence { channels: usize },
    /// `[channels, height, width]` feature maps.
    Maps { channels: usize, height: usize, width: usize },
    /// `[channels, height, width]` feature maps of any size, which gates read averaged
    /// over positions (ResNet).
    PooledMaps { channels: usize },
    /// `[size]`.
    Vector { size: usize },
}

impl Features {
    /// The channel dimension (dim 1 of the batch), which attention masks act on.
    pub(crate) fn channels(self) -> usize {
        match self {
            Features::Sequence { channels } | Features::Maps { channels, .. } | Features::PooledMaps { channels } => {
                channels
            }
            Features::Vector { size } => size,
        }
    }

    /// Size of [`gate_features`] of such an activation.
    pub(crate) fn gate_size(self) -> usize {
        match self {
            Features::Sequence { channels } | Features::PooledMaps { channels } => channels,
            Features::Maps { channels, height, width } => channels * height * width,
            Features::Vector { size } => size,
        }
    }

    /// What a gate (MMoE, CGC, PLE) reads of an activation of this shape: `[B, gate_size]`.
    /// Sequences are averaged over time (their length varies); maps are flattened, or
    /// averaged over positions.
    pub(crate) fn gate_input(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Features::PooledMaps { .. } => xs.mean((2, 3)),
            _ => gate_features(xs),
        }
    }
}

/// What a gate reads of a sequence, map or vector activation (see [`Features::gate_input`]).
pub(crate) fn gate_features(xs: &Tensor) -> Result<Tensor> {
    match xs.rank() {
        3 => xs.mean(D::Minus1),
        _ => xs.flatten_from(1),
    }
}

/// The activation shapes at the trunk's block boundaries: the input, then the output of
/// each block (`[input, after conv1, after conv2, after fc]` for the first three trunks).
pub(crate) fn boundaries(trunk: TrunkSpec, input: &InputSpec) -> Result<Vec<Features>> {
    if matches!(input, InputSpec::Features { .. } | InputSpec::Graph { .. }) || matches!(trunk, TrunkSpec::Mpnn { .. })
    {
        trunk.check_input(input)?;
    }
    if let Some(shapes) = super::text_encoders::boundaries(trunk, input)? {
        return Ok(shapes);
    }
    if let Some(shapes) = super::resnet::boundaries(trunk, input)? {
        return Ok(shapes);
    }
    Ok(match (trunk, *input) {
        (TrunkSpec::Sequence { width, hidden, .. }, _) => vec![
            Features::Sequence { channels: width },
            Features::Sequence { channels: hidden },
            Features::Vector { size: hidden },
            Features::Vector { size: hidden },
        ],
        (TrunkSpec::LeNet, InputSpec::Image { channels, height, width }) => {
            // Two valid 5×5 convolutions, each followed by a 2×2 pool.
            let after_conv1 = |n: usize| n.saturating_sub(4) / 2;
            let (h1, w1) = (after_conv1(height), after_conv1(width));
            let (h2, w2) = (after_conv1(h1), after_conv1(w1));
            if h2 == 0 || w2 == 0 {
                candle_core::bail!("the lenet trunk needs images of at least 16×16, got {height}×{width}");
            }
            vec![
                Features::Maps { channels, height, width },
                Features::Maps { channels: 10, height: h1, width: w1 },
                Features::Maps { channels: 20, height: h2, width: w2 },
                Features::Vector { size: LENET_REPRESENTATION },
            ]
        }
        (TrunkSpec::LeNet, _) => {
            candle_core::bail!("the lenet trunk reads images only; use the sequence trunk for text tasks")
        }
        (TrunkSpec::TextCnn { width, filters }, InputSpec::Text { .. }) => {
            let size = TEXTCNN_WIDTHS.len() * filters;
            vec![
                Features::Sequence { channels: width },
                Features::Vector { size },
                Features::Vector { size },
                Features::Vector { size },
            ]
        }
        (TrunkSpec::TextCnn { .. }, _) => {
            candle_core::bail!("the textcnn trunk reads text only; use the sequence trunk for image tasks")
        }
        (TrunkSpec::Mlp { depth: 0, .. }, _) => candle_core::bail!("the mlp trunk needs at least 1 layer"),
        (TrunkSpec::Mlp { width, depth }, InputSpec::Features { size, embedded }) => {
            let size = size + embedded.columns * embedded.dim;
            std::iter::once(Features::Vector { size })
                .chain((0..depth).map(|_| Features::Vector { size: width }))
                .collect()
        }
        // Gates read the mean of each atom's row.
        (TrunkSpec::Mpnn { width, .. }, InputSpec::Graph { max_nodes, .. }) => {
            vec![Features::Sequence { channels: max_nodes }, Features::Vector { size: width }]
        }
        (TrunkSpec::EncoderDecoder { .. }, InputSpec::Image { channels, .. }) => {
            vec![Features::PooledMaps { channels }, Features::PooledMaps { channels: trunk.representation() }]
        }
        (other, _) => {
            other.check_input(input)?;
            candle_core::bail!("the {} trunk has no blocks for {input:?}", other.name())
        }
    })
}

/// A batch norm with the name its parameters have (`trunk.stage1.blocks.0.bn1`), under which
/// checkpoints store its running statistics.
#[derive(Clone, Debug)]
pub(crate) struct NamedBatchNorm {
    pub(crate) name: String,
    pub(crate) norm: BatchNorm2d,
}

impl NamedBatchNorm {
    /// `weight` and `bias` `[channels]` under `vb`.
    pub(crate) fn new(channels: usize, vb: VarBuilder) -> Result<NamedBatchNorm> {
        Ok(NamedBatchNorm { name: vb.prefix(), norm: BatchNorm2d::new(channels, vb)? })
    }

    pub(crate) fn forward(&self, xs: &Tensor, dropout: &Dropout) -> Result<Tensor> {
        self.norm.forward_stream(xs, dropout.training(), dropout.stream())
    }

    /// `relu(norm(xs) + skip)`, or `relu(norm(xs))` without `skip` (one fused op).
    pub(crate) fn forward_relu(&self, xs: &Tensor, dropout: &Dropout, skip: Option<&Tensor>) -> Result<Tensor> {
        self.norm.forward_relu(xs, dropout.training(), dropout.stream(), skip)
    }
}

/// One block of a trunk.
pub(crate) enum Block {
    SequenceConv1(Conv1d),
    SequenceConv2(Conv1d),
    LeNetConv1(Conv2d),
    LeNetConv2(Conv2d),
    Fc(Linear),
    /// TextCNN's parallel convolutions, each → relu → max over time, concatenated.
    TextCnnConvs(Vec<Conv1d>),
    /// TextCNN's empty middle block.
    Identity,
    /// TextCNN's last block: dropout only.
    Dropout,
    /// A ResNet stage (the last with the pooling).
    ResNet(ResNetStage),
    /// A Transformer encoder layer (the last with the final norm and the pooling).
    Transformer(TransformerBlock),
    /// The recurrent trunk's layer or its pooling.
    Recurrent(RecurrentBlock),
    /// An MLP layer: dropout (the last one only) → linear → relu.
    Mlp {
        fc: Linear,
        last: bool,
    },
    /// The whole encoder–decoder (its skips stay inside one block).
    EncoderDecoder(Box<crate::dense::EncoderDecoder>),
    /// The whole message-passing network.
    Mpnn(Box<super::mpnn::Mpnn>),
}

impl Block {
    /// Block `index` (into [`BLOCK_NAMES`]) of `trunk` for inputs shaped like `input`.
    pub(crate) fn new(
        trunk: TrunkSpec,
        input: &InputSpec,
        index: usize,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Block> {
        let shapes = boundaries(trunk, input)?;
        if let TrunkSpec::EncoderDecoder { depth, width, stem } = trunk {
            // Its parameters keep the encoder–decoder's own names (`trunk.encoder.…`).
            let spec = crate::dense::EncoderDecoderSpec {
                in_channels: shapes[0].channels(),
                depth,
                width,
                stem,
                heads: Vec::new(),
                init,
            };
            return Ok(Block::EncoderDecoder(Box::new(crate::dense::EncoderDecoder::build(&spec, vb)?)));
        }
        let vb = vb.pp(&trunk.block_names()[index]);
        if let (TrunkSpec::Mpnn { width, steps, readout_steps }, InputSpec::Graph { node_features, .. }) =
            (trunk, input)
        {
            return Ok(Block::Mpnn(Box::new(super::mpnn::Mpnn::new(
                *node_features,
                width,
                steps,
                readout_steps,
                init,
                vb,
            )?)));
        }
        Ok(match (trunk, index) {
            (TrunkSpec::ResNet { depth, width, .. }, _) => {
                Block::ResNet(ResNetStage::new(depth, width, index, init, vb)?)
            }
            (TrunkSpec::Transformer { .. }, _) => Block::Transformer(TransformerBlock::new(trunk, index, init, vb)?),
            (TrunkSpec::Recurrent { .. }, _) => Block::Recurrent(RecurrentBlock::new(trunk, index, init, vb)?),
            (TrunkSpec::Mlp { depth, .. }, _) => Block::Mlp {
                fc: linear(shapes[index].gate_size(), shapes[index + 1].channels(), init, vb)?,
                last: index + 1 == depth,
            },
            (TrunkSpec::TextCnn { width, filters }, 0) => Block::TextCnnConvs(
                TEXTCNN_WIDTHS
                    .iter()
                    .map(|&k| Conv1d::new(width, filters, k, 0, init, vb.pp(format!("k{k}"))))
                    .collect::<Result<_>>()?,
            ),
            (TrunkSpec::TextCnn { .. }, 1) => Block::Identity,
            (TrunkSpec::TextCnn { .. }, _) => Block::Dropout,
            (_, 2) => Block::Fc(linear(shapes[2].gate_size(), shapes[3].channels(), init, vb)?),
            (TrunkSpec::Sequence { .. }, 0) => {
                Block::SequenceConv1(Conv1d::new(shapes[0].channels(), shapes[1].channels(), 3, 1, init, vb)?)
            }
            (TrunkSpec::Sequence { .. }, _) => {
                Block::SequenceConv2(Conv1d::new(shapes[1].channels(), shapes[2].channels(), 3, 1, init, vb)?)
            }
            (TrunkSpec::LeNet, 0) => Block::LeNetConv1(Conv2d::new(shapes[0].channels(), 10, 5, 0, init, vb)?),
            (TrunkSpec::LeNet, _) => Block::LeNetConv2(Conv2d::new(10, 20, 5, 0, init, vb)?),
            (TrunkSpec::EncoderDecoder { .. } | TrunkSpec::Mpnn { .. }, _) => unreachable!("built above"),
        })
    }

    /// The batch norms of this block, with their names.
    pub(crate) fn batch_norms(&self) -> Vec<NamedBatchNorm> {
        match self {
            Block::ResNet(stage) => stage.batch_norms(),
            Block::EncoderDecoder(net) => net.named_batch_norms(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn forward(&self, xs: &Tensor, dropout: &mut Dropout) -> Result<Tensor> {
        match self {
            Block::SequenceConv1(conv) => conv.forward(xs)?.relu(),
            Block::SequenceConv2(conv) => conv.forward_relu_max_over_time(xs),
            Block::LeNetConv1(conv) | Block::LeNetConv2(conv) => conv.forward_pool_relu(xs),
            Block::Fc(fc) => fc.forward(&dropout.apply(&xs.flatten_from(1)?)?)?.relu(),
            Block::TextCnnConvs(convs) => {
                let pooled =
                    convs.iter().map(|conv| conv.forward_relu_max_over_time(xs)).collect::<Result<Vec<_>>>()?;
                Tensor::cat(&pooled, 1)
            }
            Block::Identity => Ok(xs.clone()),
            Block::Dropout => dropout.apply(xs),
            Block::ResNet(stage) => stage.forward(xs, dropout),
            Block::Transformer(layer) => layer.forward(xs, dropout),
            Block::Recurrent(block) => block.forward(xs, dropout),
            Block::Mlp { fc, last } => {
                let xs = if *last { dropout.apply(xs)? } else { xs.clone() };
                fc.forward(&xs)?.relu()
            }
            Block::EncoderDecoder(net) => net.features_with(xs, dropout),
            Block::Mpnn(net) => net.forward(xs),
        }
    }
}

/// Consecutive blocks of one trunk (all of them, or a PLE level's range).
pub(crate) struct Column {
    pub(crate) blocks: Vec<Block>,
}

impl Column {
    /// Blocks `range` of the trunk, their parameters under `vb` (`vb.conv1.…`).
    pub(crate) fn new(
        trunk: TrunkSpec,
        input: &InputSpec,
        range: std::ops::Range<usize>,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Column> {
        let blocks = range.map(|index| Block::new(trunk, input, index, init, vb.clone())).collect::<Result<_>>()?;
        Ok(Column { blocks })
    }

    pub(crate) fn forward(&self, xs: &Tensor, dropout: &mut Dropout) -> Result<Tensor> {
        self.blocks.iter().try_fold(xs.clone(), |xs, block| block.forward(&xs, dropout))
    }

    pub(crate) fn batch_norms(&self) -> Vec<NamedBatchNorm> {
        self.blocks.iter().flat_map(Block::batch_norms).collect()
    }
}

/// A linear map over dim 1 (the channels) of a rank-2, -3 or -4 activation:
/// a 1×1 convolution for sequences and maps.
pub(crate) struct ChannelLinear(pub(crate) Linear);

impl ChannelLinear {
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let rank = xs.rank();
        if rank == 2 {
            return self.0.forward(xs);
        }
        // Channels last, flatten, map, and back.
        let last = xs.transpose(1, rank - 1)?.contiguous()?;
        let mut dims = last.dims().to_vec();
        let channels = dims[rank - 1];
        let mapped = self.0.forward(&last.reshape(((), channels))?)?;
        dims[rank - 1] = mapped.dim(1)?;
        mapped.reshape(dims)?.transpose(1, rank - 1)?.contiguous()
    }
}

/// A task's head: linear, or (LeNet) linear → relu → linear.
pub(crate) enum Head {
    Linear(Linear),
    Mlp(Linear, Linear),
    /// Per pixel, on the encoder–decoder's maps.
    Pixel(crate::dense::PixelHead),
}

impl Head {
    pub(crate) fn new(trunk: TrunkSpec, n_classes: usize, init: InitScheme, vb: VarBuilder) -> Result<Head> {
        let input = trunk.representation();
        Ok(match trunk {
            TrunkSpec::LeNet => Head::Mlp(
                linear(input, LENET_REPRESENTATION, init, vb.pp("fc1"))?,
                linear(LENET_REPRESENTATION, n_classes, init, vb.pp("fc2"))?,
            ),
            TrunkSpec::EncoderDecoder { .. } => Head::Pixel(crate::dense::PixelHead::new(input, n_classes, init, vb)?),
            _ => Head::Linear(linear(input, n_classes, init, vb)?),
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Head::Linear(fc) => fc.forward(xs),
            Head::Mlp(fc1, fc2) => fc2.forward(&fc1.forward(xs)?.relu()?),
            Head::Pixel(head) => head.forward(xs),
        }
    }
}
