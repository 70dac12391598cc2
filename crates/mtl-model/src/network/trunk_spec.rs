//! The trunks a network can have ([`TrunkSpec`]), their sizes, and the blocks each one
//! is cut into (the boundaries the sharing strategies act at).

use super::InputSpec;
use crate::sequence::{CellKind, Pooling, Positions, RecurrentPooling};

/// The shape of the shared trunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TrunkSpec {
    /// Stems turn images and texts into sequences of `width` channels; the
    /// trunk is a 1-D CNN with `hidden` channels and a `hidden`-sized output.
    Sequence {
        /// Channels of the sequence the stems produce.
        width: usize,
        /// Channels of the trunk and size of the shared representation.
        hidden: usize,
        /// How images become sequences.
        image_stem: ImageStem,
    },
    /// The LeNet trunk for images (no stems), representation of size 50.
    LeNet,
    /// TextCNN (Kim 2014) for text: token embeddings of `width`, convolutions of widths 3, 4
    /// and 5 with `filters` maps each → relu → max over time, concatenated (3·`filters`).
    TextCnn {
        /// Embedding size.
        width: usize,
        /// Feature maps per convolution width.
        filters: usize,
    },
    /// A basic-block ResNet (He et al. 2016) for images and text (a text enters as a
    /// one-row map of token embeddings; see `resnet`): four stages of
    /// `round(64·width)`, `128·width`, `256·width`, `512·width` channels (each at least 1),
    /// batch norm after every convolution, global average pooling at the end.
    ResNet {
        /// 18 or 34 layers.
        depth: ResNetDepth,
        /// Channel multiplier (1 = the paper's widths).
        width: f64,
        /// The first layers; `None`: ImageNet's for images of at least 64 px on each side,
        /// CIFAR's for smaller ones.
        stem: Option<ResNetStem>,
    },
    /// A pre-norm Transformer encoder for text (see [`crate::sequence`]): token
    /// embeddings of `d_model` and positions in the stem, then one block per layer; the
    /// last block ends with a layer norm and the pooling.
    Transformer {
        /// Width of every position's vector.
        d_model: usize,
        /// Attention heads; must divide `d_model`.
        heads: usize,
        /// Encoder layers (one block each).
        layers: usize,
        /// Width of each layer's feed-forward hidden layer.
        ff: usize,
        /// Sinusoidal or learned positions.
        positions: Positions,
        /// Masked mean or CLS.
        pooling: Pooling,
        /// Longest text accepted (sizes learned positions).
        max_len: usize,
    },
    /// A one-layer (bi)directional LSTM or GRU over token embeddings of `width`: two
    /// blocks, the recurrent layer (per-step outputs) and the pooling.
    Recurrent {
        /// LSTM or GRU.
        cell: CellKind,
        /// Embedding size.
        width: usize,
        /// Hidden size per direction.
        hidden: usize,
        /// A second cell reading backwards; the outputs are concatenated.
        bidirectional: bool,
        /// Final states or masked mean.
        pooling: RecurrentPooling,
    },
    /// The encoder–decoder of [`crate::dense`] for images, as one block (`encoder_decoder`):
    /// its representation is the decoder's `[channels, H, W]` maps at the input's size,
    /// which per-pixel heads read (conv 3×3 → relu → conv 1×1).
    EncoderDecoder {
        /// ResNet-18 or -34 encoder.
        depth: ResNetDepth,
        /// Channel multiplier.
        width: f64,
        /// The encoder's first layers.
        stem: ResNetStem,
    },
    /// An MLP over numeric feature vectors: `depth` blocks of linear (`width`) → relu.
    Mlp {
        /// Width of every hidden layer and of the representation.
        width: usize,
        /// Hidden layers (one block each).
        depth: usize,
    },
    /// The message-passing network for molecular graphs (`mpnn`: edge-network convolution
    /// and GRU, Set2Set readout), as one block.
    Mpnn {
        /// Width of every atom's state and of the representation (LibMTL's QM9: 64).
        width: usize,
        /// Message-passing steps (3).
        steps: usize,
        /// Set2Set steps (3).
        readout_steps: usize,
    },
}

/// How the sequence trunk's image stem reads an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageStem {
    /// A 5×5 convolution (16 maps) → relu → 2×2 max-pool, then the pooled rows
    /// as a sequence: stronger (MNIST), and slower.
    Conv,
    /// The rows themselves as the sequence: cheapest.
    Rows,
}

/// ResNet's depth: basic blocks per stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetDepth {
    /// ResNet-18: 2, 2, 2, 2 blocks.
    R18,
    /// ResNet-34: 3, 4, 6, 3 blocks.
    R34,
}

impl ResNetDepth {
    /// Basic blocks in each of the four stages.
    pub fn blocks_per_stage(self) -> [usize; 4] {
        match self {
            ResNetDepth::R18 => [2, 2, 2, 2],
            ResNetDepth::R34 => [3, 4, 6, 3],
        }
    }
}

/// ResNet's first layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetStem {
    /// 3×3 convolution, stride 1 → batch norm → relu, no pooling (small images).
    Cifar,
    /// 7×7 convolution, stride 2 → batch norm → relu → 3×3 max-pool, stride 2.
    ImageNet,
}

impl ResNetStem {
    /// The stem `stem` says, or the automatic one for `height × width` images.
    pub fn resolve(stem: Option<ResNetStem>, height: usize, width: usize) -> ResNetStem {
        stem.unwrap_or(if height.min(width) >= 64 { ResNetStem::ImageNet } else { ResNetStem::Cifar })
    }
}

/// Size of the LeNet trunk's output.
pub(super) const LENET_REPRESENTATION: usize = 50;

/// TextCNN's convolution widths (Kim 2014).
pub(super) const TEXTCNN_WIDTHS: [usize; 3] = [3, 4, 5];

/// Channels of ResNet stage `stage` (0-based) at `width`: `round(64·2^stage·width)`, at least 1.
pub(crate) fn resnet_channels(width: f64, stage: usize) -> usize {
    ((64 << stage) as f64 * width).round().max(1.0) as usize
}

impl TrunkSpec {
    /// Size of the representation the heads read.
    pub fn representation(&self) -> usize {
        match *self {
            TrunkSpec::Sequence { hidden, .. } => hidden,
            TrunkSpec::LeNet => LENET_REPRESENTATION,
            TrunkSpec::TextCnn { filters, .. } => TEXTCNN_WIDTHS.len() * filters,
            TrunkSpec::ResNet { width, .. } => resnet_channels(width, 3),
            TrunkSpec::Transformer { d_model, .. } => d_model,
            TrunkSpec::Recurrent { hidden, bidirectional, .. } => hidden * (1 + usize::from(bidirectional)),
            TrunkSpec::Mlp { width, .. } | TrunkSpec::Mpnn { width, .. } => width,
            TrunkSpec::EncoderDecoder { width, stem, .. } => crate::dense::decoder_channels(width, stem),
        }
    }

    /// The names of the trunk's blocks, in order: they prefix the blocks' parameters and
    /// name the points between them where the strategies act.
    pub fn block_names(&self) -> Vec<String> {
        let numbered = |prefix: &str, n: usize| (1..=n).map(|i| format!("{prefix}{i}")).collect();
        match *self {
            TrunkSpec::Sequence { .. } | TrunkSpec::LeNet | TrunkSpec::TextCnn { .. } => {
                super::blocks::BLOCK_NAMES.iter().map(|name| name.to_string()).collect()
            }
            TrunkSpec::ResNet { .. } => numbered("stage", 4),
            TrunkSpec::Transformer { layers, .. } => numbered("layer", layers),
            TrunkSpec::Recurrent { .. } => vec!["recurrent".into(), "pool".into()],
            TrunkSpec::Mlp { depth, .. } => numbered("fc", depth),
            TrunkSpec::EncoderDecoder { .. } => vec!["encoder_decoder".into()],
            TrunkSpec::Mpnn { .. } => vec!["mpnn".into()],
        }
    }

    /// Number of blocks (PLE has at most one level per block).
    pub fn n_blocks(&self) -> usize {
        self.block_names().len()
    }

    /// The name used in experiment files (`resnet18`, `transformer`, `lstm`, …).
    pub fn name(&self) -> &'static str {
        match *self {
            TrunkSpec::Sequence { .. } => "sequence",
            TrunkSpec::LeNet => "lenet",
            TrunkSpec::TextCnn { .. } => "textcnn",
            TrunkSpec::ResNet { depth: ResNetDepth::R18, .. } => "resnet18",
            TrunkSpec::ResNet { depth: ResNetDepth::R34, .. } => "resnet34",
            TrunkSpec::Transformer { .. } => "transformer",
            TrunkSpec::Recurrent { cell: CellKind::Lstm, .. } => "lstm",
            TrunkSpec::Recurrent { cell: CellKind::Gru, .. } => "gru",
            TrunkSpec::Mlp { .. } => "mlp",
            TrunkSpec::EncoderDecoder { .. } => "encoder-decoder",
            TrunkSpec::Mpnn { .. } => "mpnn",
        }
    }

    /// Whether the trunk can read `input` (images, text or feature vectors); the message
    /// says what it reads.
    pub(crate) fn check_input(&self, input: &InputSpec) -> candle_core::Result<()> {
        let reads = match (self, input) {
            (TrunkSpec::Sequence { .. }, InputSpec::Image { .. } | InputSpec::Text { .. }) => return Ok(()),
            (TrunkSpec::ResNet { .. }, InputSpec::Image { .. } | InputSpec::Text { .. }) => return Ok(()),
            (TrunkSpec::LeNet | TrunkSpec::EncoderDecoder { .. }, InputSpec::Image { .. }) => return Ok(()),
            (
                TrunkSpec::TextCnn { .. } | TrunkSpec::Transformer { .. } | TrunkSpec::Recurrent { .. },
                InputSpec::Text { .. },
            ) => return Ok(()),
            (TrunkSpec::Mlp { .. }, InputSpec::Features { .. }) => return Ok(()),
            (TrunkSpec::Mpnn { .. }, InputSpec::Graph { .. }) => return Ok(()),
            (TrunkSpec::Sequence { .. } | TrunkSpec::ResNet { .. }, _) => "images and text",
            (TrunkSpec::LeNet | TrunkSpec::EncoderDecoder { .. }, _) => "images",
            (TrunkSpec::TextCnn { .. } | TrunkSpec::Transformer { .. } | TrunkSpec::Recurrent { .. }, _) => "text",
            (TrunkSpec::Mlp { .. }, _) => "numeric feature vectors",
            (TrunkSpec::Mpnn { .. }, _) => "molecular graphs",
        };
        candle_core::bail!(
            "the {} trunk reads {reads} only, not {} inputs; use the sequence or a resnet trunk for image and text tasks together",
            self.name(),
            input.modality()
        )
    }
}
