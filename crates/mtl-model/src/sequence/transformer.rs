//! A small pre-norm Transformer encoder (Vaswani et al. 2017; pre-norm as in Xiong et al.
//! 2020 and PyTorch's `norm_first=True`): token embedding + positions (optionally after a
//! CLS token) → N × [x + MHA(LN(x)); x + FFN(LN(x))] → LN → pooling → `[B, d_model]`.
//!
//! Dropout (the crate's seeded one, `config.dropout`) acts on the embedded input, on each
//! sub-layer's output before its residual sum, and on the FFN's hidden activations;
//! attention weights are not dropped. Embeddings are not scaled by √d_model.
//!
//! Parameter names: `embedding.weight`, `positions.weight` (learned positions), `cls`,
//! `layers.<i>.{attention_norm, attention.{query,key,value,output}, feed_forward_norm,
//! feed_forward_in, feed_forward_out}.{weight,bias}`, `final_norm.{weight,bias}`.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use mtl_data::Rng;

use super::{masked_mean, padding_mask, LayerNorm, MultiHeadSelfAttention};
use crate::init::{linear, InitScheme};
use crate::pass::Dropout;

/// The non-linearity between the FFN's two linear layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x · Φ(x) = x/2 · (1 + erf(x/√2))`, the exact GELU (PyTorch's default `nn.GELU`).
    Gelu,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    /// The activation of every element.
    pub fn apply(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            // Composed from erf, whose backward is exact; candle's fused gelu_erf's
            // backward uses 1/√(2π) rounded to 6 digits.
            Activation::Gelu => ((xs / std::f64::consts::SQRT_2)?.erf()? + 1.0)?.mul(xs)? * 0.5,
            Activation::Relu => xs.relu(),
        }
    }
}

/// How each position's place in the sequence enters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positions {
    /// Fixed `PE(p, 2i) = sin(p / 10000^(2i/d))`, `PE(p, 2i+1) = cos(p / 10000^(2i/d))`.
    Sinusoidal,
    /// A learned table of `max_len` rows (one more with a CLS token), drawn as embeddings.
    Learned,
}

/// How the sequence of outputs becomes one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over real (non-padding) tokens.
    MaskedMean,
    /// The output at a learned token prepended to every sequence (BERT's `[CLS]`).
    Cls,
}

/// The hyperparameters of a [`TransformerEncoder`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerConfig {
    /// Token ids, padding (0) included.
    pub vocab_size: usize,
    /// Width of every position's vector.
    pub d_model: usize,
    /// Attention heads; must divide `d_model`.
    pub n_heads: usize,
    /// Width of the FFN's hidden layer.
    pub d_feed_forward: usize,
    /// Encoder layers.
    pub n_layers: usize,
    /// Longest token sequence accepted (CLS not counted); sizes learned positions.
    pub max_len: usize,
    /// Sinusoidal or learned positions.
    pub positions: Positions,
    /// Masked mean or CLS.
    pub pooling: Pooling,
    /// GELU or ReLU in the FFN.
    pub activation: Activation,
    /// Dropout probability (training only).
    pub dropout: f64,
}

/// `[len, d_model]` sinusoidal position encodings (Vaswani et al. 2017, §3.5).
pub fn sinusoidal_positions(len: usize, d_model: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let mut values = Vec::with_capacity(len * d_model);
    for position in 0..len {
        for feature in 0..d_model {
            let exponent = (feature - feature % 2) as f64 / d_model as f64;
            let angle = position as f64 / 10000f64.powf(exponent);
            values.push(if feature % 2 == 0 { angle.sin() } else { angle.cos() });
        }
    }
    Tensor::from_vec(values, (len, d_model), device)?.to_dtype(dtype)
}

/// One pre-norm encoder layer: `x + MHA(LN(x))`, then `x + FFN(LN(x))` with
/// `FFN = linear → activation → linear`.
#[derive(Clone, Debug)]
pub struct EncoderLayer {
    attention_norm: LayerNorm,
    attention: MultiHeadSelfAttention,
    feed_forward_norm: LayerNorm,
    feed_forward_in: Linear,
    feed_forward_out: Linear,
    activation: Activation,
    dropout: f64,
}

impl EncoderLayer {
    /// Parameters under `vb`, drawn in the order of the fields.
    pub fn new(config: &TransformerConfig, init: InitScheme, vb: VarBuilder) -> Result<EncoderLayer> {
        let (d_model, d_ff) = (config.d_model, config.d_feed_forward);
        Ok(EncoderLayer {
            attention_norm: LayerNorm::new(d_model, vb.pp("attention_norm"))?,
            attention: MultiHeadSelfAttention::new(d_model, config.n_heads, init, vb.pp("attention"))?,
            feed_forward_norm: LayerNorm::new(d_model, vb.pp("feed_forward_norm"))?,
            feed_forward_in: linear(d_model, d_ff, init, vb.pp("feed_forward_in"))?,
            feed_forward_out: linear(d_ff, d_model, init, vb.pp("feed_forward_out"))?,
            activation: config.activation,
            dropout: config.dropout,
        })
    }

    /// `xs` `[B, T, d_model]`, `keep` `[B, T]` → `[B, T, d_model]`; dropout draws from
    /// `rng` when given (training), none without.
    pub fn forward(&self, xs: &Tensor, keep: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor> {
        self.forward_with(xs, keep, &mut dropout(self.dropout, rng))
    }

    pub(crate) fn forward_with(&self, xs: &Tensor, keep: &Tensor, dropout: &mut Dropout) -> Result<Tensor> {
        let attended = self.attention.forward(&self.attention_norm.forward(xs)?, keep)?;
        let xs = (xs + dropout.apply(&attended)?)?;
        let hidden = self.activation.apply(&self.feed_forward_in.forward(&self.feed_forward_norm.forward(&xs)?)?)?;
        let transformed = self.feed_forward_out.forward(&dropout.apply(&hidden)?)?;
        xs + dropout.apply(&transformed)?
    }
}

fn dropout(p: f64, rng: Option<&mut Rng>) -> Dropout<'_> {
    match rng {
        Some(rng) => Dropout::new(p, rng),
        None => Dropout::off(),
    }
}

/// Token ids `[B, T]` → `[B, d_model]`: see the module documentation.
#[derive(Clone, Debug)]
pub struct TransformerEncoder {
    embedding: Embedding,
    /// The learned table (`Positions::Learned`); sinusoids are computed per call.
    learned_positions: Option<Tensor>,
    cls: Option<Tensor>,
    layers: Vec<EncoderLayer>,
    final_norm: LayerNorm,
    config: TransformerConfig,
}

impl TransformerEncoder {
    /// Parameters under `vb`, drawn in order: embedding, positions, CLS, layers, final norm.
    pub fn new(config: &TransformerConfig, init: InitScheme, vb: VarBuilder) -> Result<TransformerEncoder> {
        let d_model = config.d_model;
        let table = vb.pp("embedding").get_with_hints((config.vocab_size, d_model), "weight", init.embedding())?;
        let with_cls = config.pooling == Pooling::Cls;
        let learned_positions = match config.positions {
            Positions::Sinusoidal => None,
            Positions::Learned => Some(vb.pp("positions").get_with_hints(
                (config.max_len + usize::from(with_cls), d_model),
                "weight",
                init.embedding(),
            )?),
        };
        let cls = if with_cls { Some(vb.get_with_hints(d_model, "cls", init.embedding())?) } else { None };
        let layers = (0..config.n_layers)
            .map(|i| EncoderLayer::new(config, init, vb.pp("layers").pp(i.to_string())))
            .collect::<Result<_>>()?;
        Ok(TransformerEncoder {
            embedding: Embedding::new(table, d_model),
            learned_positions,
            cls,
            layers,
            final_norm: LayerNorm::new(d_model, vb.pp("final_norm"))?,
            config: *config,
        })
    }

    /// Token ids `[B, T]` (u32, right-padded with 0) → `[B, d_model]`; dropout draws from
    /// `rng` when given (training), none without.
    pub fn forward(&self, token_ids: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor> {
        let embedded = self.embedding.forward(token_ids)?;
        self.encode(&embedded, &padding_mask(token_ids, embedded.dtype())?, rng)
    }

    /// Already embedded tokens `[B, T, d_model]` with `keep` `[B, T]` (1 real, 0 padding)
    /// → `[B, d_model]`: positions, CLS, layers, final norm, pooling.
    pub fn encode(&self, embedded: &Tensor, keep: &Tensor, rng: Option<&mut Rng>) -> Result<Tensor> {
        let (batch, len, d_model) = embedded.dims3()?;
        if len > self.config.max_len {
            candle_core::bail!("transformer: a sequence of {len} tokens, longer than max_len {}", self.config.max_len);
        }
        let (xs, keep) = match &self.cls {
            Some(cls) => {
                let cls = cls.reshape((1, 1, d_model))?.broadcast_as((batch, 1, d_model))?;
                let cls_keep = Tensor::ones((batch, 1), keep.dtype(), keep.device())?;
                (Tensor::cat(&[&cls, embedded], 1)?, Tensor::cat(&[&cls_keep, keep], 1)?)
            }
            None => (embedded.clone(), keep.clone()),
        };
        let n_positions = xs.dim(1)?;
        let positions = match &self.learned_positions {
            Some(table) => table.narrow(0, 0, n_positions)?,
            None => sinusoidal_positions(n_positions, d_model, xs.dtype(), xs.device())?,
        };
        let mut dropout = dropout(self.config.dropout, rng);
        let mut xs = dropout.apply(&xs.broadcast_add(&positions)?)?;
        for layer in &self.layers {
            xs = layer.forward_with(&xs, &keep, &mut dropout)?;
        }
        let xs = self.final_norm.forward(&xs)?;
        match self.config.pooling {
            Pooling::Cls => xs.narrow(1, 0, 1)?.squeeze(1),
            Pooling::MaskedMean => masked_mean(&xs, &keep),
        }
    }
}
