//! The trunk as a list of blocks, and the pieces the strategies build from it.
//!
//! Every trunk is three blocks, so that the strategies can act between them
//! (cross-stitch mixes after each, PLE's levels cover ranges of them, MTAN
//! masks each one's output):
//!
//! | block | sequence trunk | LeNet trunk | TextCNN |
//! |---|---|---|---|
//! | `conv1` | conv k3 → relu: `[B, width, T]` → `[B, hidden, T]` | conv 5×5 → pool → relu | convs k3, k4, k5 → relu → max over time, concatenated |
//! | `conv2` | conv k3 → relu → max over time → `[B, hidden]` | conv 5×5 → pool → relu | (none) |
//! | `fc` | dropout → linear → relu | flatten → dropout → linear → relu (50) | dropout |

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use super::{InputSpec, TrunkSpec, LENET_REPRESENTATION, TEXTCNN_WIDTHS};
use crate::init::{linear, InitScheme};
use crate::layers::{Conv1d, Conv2d};
use mtl_data::Rng;

/// Names of the trunk's blocks, in order; they prefix the blocks' parameters.
pub(crate) const BLOCK_NAMES: [&str; 3] = ["conv1", "conv2", "fc"];

/// The shape of the activations between blocks (batch dimension left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Features {
    /// `[channels, T]`, any length `T`.
    Sequence { channels: usize },
    /// `[channels, height, width]` feature maps.
    Maps { channels: usize, height: usize, width: usize },
    /// `[size]`.
    Vector { size: usize },
}

impl Features {
    /// The channel dimension (dim 1 of the batch), which attention masks act on.
    pub(crate) fn channels(self) -> usize {
        match self {
            Features::Sequence { channels } | Features::Maps { channels, .. } => channels,
            Features::Vector { size } => size,
        }
    }

    /// Size of [`gate_features`] of such an activation.
    pub(crate) fn gate_size(self) -> usize {
        match self {
            Features::Sequence { channels } => channels,
            Features::Maps { channels, height, width } => channels * height * width,
            Features::Vector { size } => size,
        }
    }
}

/// What a gate (MMoE, CGC, PLE) reads of an activation: `[B, gate_size]`.
/// Sequences are averaged over time (their length varies); maps are flattened.
pub(crate) fn gate_features(xs: &Tensor) -> Result<Tensor> {
    match xs.rank() {
        3 => xs.mean(D::Minus1),
        _ => xs.flatten_from(1),
    }
}

/// The activation shapes at the trunk's block boundaries: `[input, after conv1, after conv2, after fc]`.
pub(crate) fn boundaries(trunk: TrunkSpec, input: &InputSpec) -> Result<[Features; 4]> {
    Ok(match (trunk, *input) {
        (TrunkSpec::Sequence { width, hidden, .. }, _) => [
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
            [
                Features::Maps { channels, height, width },
                Features::Maps { channels: 10, height: h1, width: w1 },
                Features::Maps { channels: 20, height: h2, width: w2 },
                Features::Vector { size: LENET_REPRESENTATION },
            ]
        }
        (TrunkSpec::LeNet, InputSpec::Text { .. }) => {
            candle_core::bail!("the lenet trunk reads images only; use the sequence trunk for text tasks")
        }
        (TrunkSpec::TextCnn { width, filters }, InputSpec::Text { .. }) => {
            let size = TEXTCNN_WIDTHS.len() * filters;
            [
                Features::Sequence { channels: width },
                Features::Vector { size },
                Features::Vector { size },
                Features::Vector { size },
            ]
        }
        (TrunkSpec::TextCnn { .. }, InputSpec::Image { .. }) => {
            candle_core::bail!("the textcnn trunk reads text only; use the sequence trunk for image tasks")
        }
    })
}

/// Dropout masks for the features entering `fc`, drawn from mtl-lab's seeded
/// generator (candle's cannot be seeded); `Dropout::off()` in evaluation.
pub(crate) struct Dropout<'a>(Option<(f64, &'a mut Rng)>);

impl<'a> Dropout<'a> {
    pub(crate) fn new(p: f64, rng: &'a mut Rng) -> Dropout<'a> {
        Dropout(Some((p, rng)))
    }

    pub(crate) fn off() -> Dropout<'static> {
        Dropout(None)
    }

    fn apply(&mut self, xs: &Tensor) -> Result<Tensor> {
        let Some((p, rng)) = &mut self.0 else { return Ok(xs.clone()) };
        if *p <= 0.0 {
            return Ok(xs.clone());
        }
        // Inverted dropout: kept features are scaled by 1/(1-p).
        let keep: Vec<f32> =
            (0..xs.elem_count()).map(|_| if rng.chance(*p) { 0.0 } else { (1.0 / (1.0 - *p)) as f32 }).collect();
        let mask = Tensor::from_vec(keep, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        xs * mask
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
        let vb = vb.pp(BLOCK_NAMES[index]);
        Ok(match (trunk, index) {
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
        })
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
}

impl Head {
    pub(crate) fn new(trunk: TrunkSpec, n_classes: usize, init: InitScheme, vb: VarBuilder) -> Result<Head> {
        let input = trunk.representation();
        Ok(match trunk {
            TrunkSpec::Sequence { .. } | TrunkSpec::TextCnn { .. } => Head::Linear(linear(input, n_classes, init, vb)?),
            TrunkSpec::LeNet => Head::Mlp(
                linear(input, LENET_REPRESENTATION, init, vb.pp("fc1"))?,
                linear(LENET_REPRESENTATION, n_classes, init, vb.pp("fc2"))?,
            ),
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Head::Linear(fc) => fc.forward(xs),
            Head::Mlp(fc1, fc2) => fc2.forward(&fc1.forward(xs)?.relu()?),
        }
    }
}
