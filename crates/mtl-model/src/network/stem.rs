//! Modality stems: each turns its inputs into what the trunk reads.

use candle_core::{Result, Tensor};
use candle_nn::{Embedding, Module, VarBuilder};

use super::blocks::{Dropout, NamedBatchNorm};
use super::resnet::ResNetImageStem;
use super::text_encoders::TransformerStem;
use super::{resnet_channels, ImageStem, InputSpec, TrunkSpec};
use crate::init::InitScheme;
use crate::layers::{Conv1d, Conv2d};

/// Feature maps of the image stem's 5×5 convolution.
const IMAGE_STEM_MAPS: usize = 16;

pub(crate) enum Stem {
    /// The input as it is (the LeNet trunk reads images directly).
    Identity,
    /// Optionally a 5×5 convolution (16 maps, same size) → relu → 2×2 max-pool,
    /// then the rows as a sequence: `[B, C, H, W]` → `[B, width, H or H/2]`.
    Image { local: Option<Conv2d>, rows: Conv1d },
    /// Tokens as a sequence: `[B, T]` → `[B, width, T]`.
    Text { embedding: Embedding },
    /// The Transformer trunk's: embeddings, CLS and positions.
    Transformer(TransformerStem),
    /// The ResNet trunk's for images: conv → bn → relu (→ max-pool).
    ResNetImage(ResNetImageStem),
    /// The ResNet trunk's for text: token embeddings as a one-row map `[B, C, 1, T]`,
    /// zeros at the padding.
    ResNetText { embedding: Embedding },
    /// Table rows whose last `columns` values are category ids: the `dense` values, then
    /// each id's embedding (one table, each column its own rows), `[B, dense + columns·dim]`.
    Table { embedding: Embedding, dense: usize, columns: usize },
}

/// A `vocab_size × width` embedding table under `vb.embedding`.
fn embedding(vocab_size: usize, width: usize, init: InitScheme, vb: &VarBuilder) -> Result<Embedding> {
    let table = vb.pp("embedding").get_with_hints((vocab_size, width), "weight", init.embedding())?;
    Ok(Embedding::new(table, width))
}

fn conv_k3(in_channels: usize, out_channels: usize, init: InitScheme, vb: VarBuilder) -> Result<Conv1d> {
    Conv1d::new(in_channels, out_channels, 3, 1, init, vb)
}

impl Stem {
    pub(crate) fn new(input: &InputSpec, trunk: TrunkSpec, init: InitScheme, vb: VarBuilder) -> Result<Stem> {
        let (width, image_stem) = match trunk {
            TrunkSpec::Sequence { width, image_stem, .. } => (width, image_stem),
            // TextCNN reads token embeddings; `boundaries` refuses images for it.
            TrunkSpec::TextCnn { width, .. } | TrunkSpec::Recurrent { width, .. } => (width, ImageStem::Rows),
            TrunkSpec::Transformer { .. } => {
                return Ok(match *input {
                    InputSpec::Text { vocab_size } => {
                        Stem::Transformer(TransformerStem::new(trunk, vocab_size, init, vb)?)
                    }
                    // The trunk refuses other inputs.
                    _ => Stem::Identity,
                });
            }
            TrunkSpec::ResNet { width, stem, .. } => {
                return Ok(match *input {
                    InputSpec::Image { .. } => Stem::ResNetImage(ResNetImageStem::new(width, stem, input, init, &vb)?),
                    InputSpec::Text { vocab_size } => {
                        Stem::ResNetText { embedding: embedding(vocab_size, resnet_channels(width, 0), init, &vb)? }
                    }
                    // The trunk refuses them.
                    InputSpec::Features { .. } | InputSpec::Graph { .. } => Stem::Identity,
                });
            }
            TrunkSpec::Mlp { .. } => {
                return Ok(match *input {
                    InputSpec::Features { size, embedded } if embedded.columns > 0 => Stem::Table {
                        embedding: embedding(embedded.rows, embedded.dim, init, &vb)?,
                        dense: size,
                        columns: embedded.columns,
                    },
                    _ => Stem::Identity,
                })
            }
            TrunkSpec::LeNet | TrunkSpec::EncoderDecoder { .. } | TrunkSpec::Mpnn { .. } => return Ok(Stem::Identity),
        };
        Ok(match *input {
            InputSpec::Image { channels, width: columns, .. } => match image_stem {
                ImageStem::Conv => Stem::Image {
                    local: Some(Conv2d::new(channels, IMAGE_STEM_MAPS, 5, 2, init, vb.pp("local"))?),
                    rows: conv_k3(IMAGE_STEM_MAPS * (columns / 2), width, init, vb.pp("rows"))?,
                },
                ImageStem::Rows => {
                    Stem::Image { local: None, rows: conv_k3(channels * columns, width, init, vb.pp("rows"))? }
                }
            },
            InputSpec::Text { vocab_size } => Stem::Text { embedding: embedding(vocab_size, width, init, &vb)? },
            // The trunk refuses them.
            InputSpec::Features { .. } | InputSpec::Graph { .. } => Stem::Identity,
        })
    }

    /// The padding mask `[B, T]` of a batch of texts (with the CLS position, if any), for
    /// trunks that read it (`reads_padding`); `None` otherwise.
    pub(crate) fn keep(&self, token_ids: &Tensor, reads_padding: bool) -> Result<Option<Tensor>> {
        Ok(match self {
            Stem::Transformer(stem) => Some(stem.keep(token_ids)?),
            Stem::Text { embedding } if reads_padding => {
                Some(crate::sequence::padding_mask(token_ids, embedding.embeddings().dtype())?)
            }
            _ => None,
        })
    }

    /// The stem's batch norm, if it has one (the ResNet image stem's).
    pub(crate) fn batch_norm(&self) -> Option<NamedBatchNorm> {
        match self {
            Stem::ResNetImage(stem) => Some(stem.batch_norm()),
            _ => None,
        }
    }

    /// The stem's output for `xs`; `pass` says whether batch norm trains.
    pub(crate) fn forward(&self, xs: &Tensor, pass: &Dropout) -> Result<Tensor> {
        match self {
            Stem::Identity => Ok(xs.clone()),
            Stem::Image { local, rows } => {
                let maps = match local {
                    // relu then pool = pool then relu, fused with the convolution into one op.
                    Some(conv) => conv.forward_pool_relu(xs)?,
                    None => xs.clone(),
                };
                let (batch, channels, height, columns) = maps.dims4()?;
                let sequence = maps.permute((0, 1, 3, 2))?.reshape((batch, channels * columns, height))?;
                rows.forward(&sequence)?.relu()
            }
            Stem::Text { embedding } => embedding.forward(xs)?.transpose(1, 2)?.contiguous(),
            Stem::Transformer(stem) => stem.forward(xs),
            Stem::ResNetImage(stem) => stem.forward(xs, pass),
            Stem::Table { embedding, dense, columns } => {
                let ids = xs.narrow(1, *dense, *columns)?.to_dtype(candle_core::DType::U32)?;
                let embedded = embedding.forward(&ids)?.flatten_from(1)?;
                if *dense == 0 {
                    return Ok(embedded);
                }
                Tensor::cat(&[&xs.narrow(1, 0, *dense)?, &embedded], 1)
            }
            Stem::ResNetText { embedding } => {
                // Padding is zeros, as beyond the map's edges: it adds nothing to the convolutions.
                let embedded = embedding.forward(xs)?;
                let keep = crate::sequence::padding_mask(xs, embedded.dtype())?.unsqueeze(2)?;
                embedded.broadcast_mul(&keep)?.transpose(1, 2)?.unsqueeze(2)?.contiguous()
            }
        }
    }
}
