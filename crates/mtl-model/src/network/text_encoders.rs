//! The Transformer and recurrent trunks for text, cut into blocks for the strategies
//! (built from [`crate::sequence`]'s layers).
//!
//! - Transformer: the text stem embeds the tokens (`stems.text.embedding`), prepends the
//!   CLS vector (`stems.text.cls`) under CLS pooling and adds the positions (sinusoids, or
//!   `stems.text.positions`); block `layer<k>` is encoder layer k (dropout on its input
//!   first, in block 1, as [`crate::sequence::TransformerEncoder`] drops the embedded
//!   input); the last block ends with `final_norm` and the pooling.
//! - Recurrent: the text stem embeds the tokens; block `recurrent` is the (bi)directional
//!   LSTM or GRU (per-step outputs, PyTorch's parameter names); block `pool` reads each
//!   direction's final state (the forward one at each text's last real token, the
//!   backward one at its first) or the masked mean, then dropout.
//!
//! Between blocks a sequence is `[B, channels, T]` as in the other trunks, so that
//! cross-stitch, MTAN's channel masks and the gates treat it alike; the blocks read the
//! padding mask of the batch from the pass ([`Dropout::keep`]). The encoder layer's
//! dropout is the model's `dropout`.

use candle_core::{DType, Result, Tensor, D};
use candle_nn::{Embedding, Module, VarBuilder};

use super::blocks::{Dropout, Features};
use super::{InputSpec, TrunkSpec};
use crate::init::InitScheme;
use crate::sequence::{
    masked_mean, padding_mask, sinusoidal_positions, Activation, EncoderLayer, LayerNorm, Pooling, Positions,
    RecurrentConfig, RecurrentEncoder, RecurrentPooling, TransformerConfig,
};

/// The activation shapes at the text encoders' boundaries (`None` for other trunks).
pub(crate) fn boundaries(trunk: TrunkSpec, input: &InputSpec) -> Result<Option<Vec<Features>>> {
    let shapes = match trunk {
        TrunkSpec::Transformer { layers: 0, .. } => candle_core::bail!("the transformer trunk needs at least 1 layer"),
        TrunkSpec::Transformer { d_model, layers, .. } => {
            let mut shapes = vec![Features::Sequence { channels: d_model }; layers];
            shapes.push(Features::Vector { size: d_model });
            shapes
        }
        TrunkSpec::Recurrent { width, .. } => {
            let size = trunk.representation();
            vec![
                Features::Sequence { channels: width },
                Features::Sequence { channels: size },
                Features::Vector { size },
            ]
        }
        _ => return Ok(None),
    };
    trunk.check_input(input)?;
    Ok(Some(shapes))
}

fn channels_last(xs: &Tensor) -> Result<Tensor> {
    xs.transpose(1, 2)?.contiguous()
}

/// The Transformer trunk's text stem: `[B, T]` token ids → `[B, d_model, T (+1 with CLS)]`.
pub(crate) struct TransformerStem {
    embedding: Embedding,
    learned_positions: Option<Tensor>,
    cls: Option<Tensor>,
    max_len: usize,
}

impl TransformerStem {
    /// Draws the embedding table, the learned positions and the CLS vector, in that order
    /// ([`crate::sequence::TransformerEncoder`]'s).
    pub(crate) fn new(trunk: TrunkSpec, vocab_size: usize, init: InitScheme, vb: VarBuilder) -> Result<Self> {
        let TrunkSpec::Transformer { d_model, positions, pooling, max_len, .. } = trunk else {
            candle_core::bail!("a transformer stem for the {} trunk", trunk.name())
        };
        let table = vb.pp("embedding").get_with_hints((vocab_size, d_model), "weight", init.embedding())?;
        let with_cls = pooling == Pooling::Cls;
        let learned_positions = match positions {
            Positions::Sinusoidal => None,
            Positions::Learned => Some(vb.pp("positions").get_with_hints(
                (max_len + usize::from(with_cls), d_model),
                "weight",
                init.embedding(),
            )?),
        };
        let cls = if with_cls { Some(vb.get_with_hints(d_model, "cls", init.embedding())?) } else { None };
        Ok(TransformerStem { embedding: Embedding::new(table, d_model), learned_positions, cls, max_len })
    }

    pub(crate) fn forward(&self, token_ids: &Tensor) -> Result<Tensor> {
        let embedded = self.embedding.forward(token_ids)?;
        let (batch, len, d_model) = embedded.dims3()?;
        if len > self.max_len {
            candle_core::bail!("transformer: a text of {len} tokens, longer than max_len {}", self.max_len);
        }
        let xs = match &self.cls {
            Some(cls) => {
                Tensor::cat(&[&cls.reshape((1, 1, d_model))?.broadcast_as((batch, 1, d_model))?, &embedded], 1)?
            }
            None => embedded,
        };
        let n_positions = xs.dim(1)?;
        let positions = match &self.learned_positions {
            Some(table) => table.narrow(0, 0, n_positions)?,
            None => sinusoidal_positions(n_positions, d_model, xs.dtype(), xs.device())?,
        };
        channels_last(&xs.broadcast_add(&positions)?)
    }

    /// `[B, T (+1)]`: 1 at real tokens (and at CLS), 0 at padding.
    pub(crate) fn keep(&self, token_ids: &Tensor) -> Result<Tensor> {
        let keep = padding_mask(token_ids, self.embedding.embeddings().dtype())?;
        match self.cls {
            Some(_) => Tensor::cat(&[&keep.ones_like()?.narrow(1, 0, 1)?, &keep], 1),
            None => Ok(keep),
        }
    }
}

/// One encoder layer of the Transformer trunk.
pub(crate) struct TransformerBlock {
    layer: EncoderLayer,
    first: bool,
    /// The last block's final norm and pooling.
    end: Option<(LayerNorm, Pooling)>,
}

impl TransformerBlock {
    /// Layer `index`, its parameters under `vb` (`trunk.layer<index+1>`).
    pub(crate) fn new(trunk: TrunkSpec, index: usize, init: InitScheme, vb: VarBuilder) -> Result<Self> {
        let TrunkSpec::Transformer { d_model, heads, layers, ff, positions, pooling, max_len } = trunk else {
            candle_core::bail!("a transformer block for the {} trunk", trunk.name())
        };
        if heads == 0 || d_model % heads != 0 {
            candle_core::bail!("transformer: {heads} heads do not divide d_model {d_model}");
        }
        let config = TransformerConfig {
            vocab_size: 0,
            d_model,
            n_heads: heads,
            d_feed_forward: ff,
            n_layers: layers,
            max_len,
            positions,
            pooling,
            activation: Activation::Gelu,
            // The pass's dropout is used instead.
            dropout: 0.0,
        };
        let layer = EncoderLayer::new(&config, init, vb.clone())?;
        let end =
            if index + 1 == layers { Some((LayerNorm::new(d_model, vb.pp("final_norm"))?, pooling)) } else { None };
        Ok(TransformerBlock { layer, first: index == 0, end })
    }

    /// `[B, d_model, T]` → the same, or `[B, d_model]` after the last layer.
    pub(crate) fn forward(&self, xs: &Tensor, dropout: &mut Dropout) -> Result<Tensor> {
        let keep = dropout.keep()?;
        let mut xs = channels_last(xs)?;
        if self.first {
            xs = dropout.apply(&xs)?;
        }
        let xs = self.layer.forward_with(&xs, &keep, dropout)?;
        match &self.end {
            None => channels_last(&xs),
            Some((norm, pooling)) => {
                let xs = norm.forward(&xs)?;
                match pooling {
                    Pooling::Cls => xs.narrow(1, 0, 1)?.squeeze(1),
                    Pooling::MaskedMean => masked_mean(&xs, &keep),
                }
            }
        }
    }
}

/// A block of the recurrent trunk.
pub(crate) enum RecurrentBlock {
    /// `[B, width, T]` → `[B, dirs·H, T]`.
    Layer(RecurrentEncoder),
    /// `[B, dirs·H, T]` → `[B, dirs·H]`, then dropout.
    Pool { pooling: RecurrentPooling, hidden: usize, bidirectional: bool },
}

impl RecurrentBlock {
    /// Block `index` (0: the layer, its parameters under `vb`; 1: the pooling).
    pub(crate) fn new(trunk: TrunkSpec, index: usize, init: InitScheme, vb: VarBuilder) -> Result<Self> {
        let TrunkSpec::Recurrent { cell, width, hidden, bidirectional, pooling } = trunk else {
            candle_core::bail!("a recurrent block for the {} trunk", trunk.name())
        };
        Ok(match index {
            0 => {
                let config = RecurrentConfig { cell, input_size: width, hidden_size: hidden, bidirectional, pooling };
                RecurrentBlock::Layer(RecurrentEncoder::new(&config, init, vb)?)
            }
            _ => RecurrentBlock::Pool { pooling, hidden, bidirectional },
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor, dropout: &mut Dropout) -> Result<Tensor> {
        let keep = dropout.keep()?;
        let xs = channels_last(xs)?;
        match self {
            RecurrentBlock::Layer(encoder) => channels_last(&encoder.forward_sequence(&xs, &keep)?.outputs),
            RecurrentBlock::Pool { pooling: RecurrentPooling::MaskedMean, .. } => {
                dropout.apply(&masked_mean(&xs, &keep)?)
            }
            RecurrentBlock::Pool { pooling: RecurrentPooling::FinalStates, hidden, bidirectional } => {
                let forward = last_real_step(&xs.narrow(D::Minus1, 0, *hidden)?, &keep)?;
                let pooled = match bidirectional {
                    true => Tensor::cat(&[forward, xs.narrow(D::Minus1, *hidden, *hidden)?.get_on_dim(1, 0)?], 1)?,
                    false => forward,
                };
                dropout.apply(&pooled)
            }
        }
    }
}

/// `xs` `[B, T, C]` at each sequence's last real position (`keep` `[B, T]`; position 0 for
/// a sequence without one): `[B, C]`.
pub(super) fn last_real_step(xs: &Tensor, keep: &Tensor) -> Result<Tensor> {
    let (batch, _, channels) = xs.dims3()?;
    let lengths = keep.to_dtype(DType::F64)?.sum(1)?.to_vec1::<f64>()?;
    let last: Vec<u32> =
        lengths.iter().flat_map(|&n| std::iter::repeat_n((n as u32).saturating_sub(1), channels)).collect();
    let index = Tensor::from_vec(last, (batch, 1, channels), xs.device())?;
    xs.contiguous()?.gather(&index, 1)?.squeeze(1)
}
