//! Text sequence encoders: a pre-norm Transformer encoder and (bi)directional LSTM and
//! GRU encoders, with the differentiable pieces they are made of ([`LayerNorm`],
//! [`softmax_last_dim`], [`MultiHeadSelfAttention`]).
//!
//! Every encoder reads right-padded token sequences (padding id 0, as `mtl_data`'s
//! vocabulary writes them) and pools them into one vector per sequence; padding never
//! reaches the output: attention gives padded keys zero weight, recurrent states stop
//! updating at padding, and pooling reads real tokens only. Everything is composed from
//! candle tensor ops (candle's fused `layer_norm` and `softmax_last_dim` record no
//! backward), on whatever device the parameters live; dropout masks come from
//! `mtl_data::Rng`.
//!
//! ```
//! use std::sync::Arc;
//! use candle_core::{DType, Device, Tensor};
//! use mtl_model::sequence::{Activation, Pooling, Positions, TransformerConfig, TransformerEncoder};
//! use mtl_model::InitScheme;
//! let config = TransformerConfig {
//!     vocab_size: 100, d_model: 16, n_heads: 4, d_feed_forward: 32, n_layers: 2, max_len: 64,
//!     positions: Positions::Sinusoidal, pooling: Pooling::MaskedMean, activation: Activation::Gelu, dropout: 0.1,
//! };
//! let vb = candle_nn::VarBuilder::zeros(DType::F32, &Device::Cpu);
//! let encoder = TransformerEncoder::new(&config, InitScheme::Framework, vb)?;
//! let ids = Tensor::new(&[[5u32, 7, 9, 0], [3, 0, 0, 0]], &Device::Cpu)?;
//! assert_eq!(encoder.forward(&ids, None)?.dims(), &[2, 16]);
//! # Ok::<(), candle_core::Error>(())
//! ```

mod attention;
mod norm;
mod recurrent;
mod transformer;

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;

pub use attention::{masked_softmax_last_dim, softmax_last_dim, MultiHeadSelfAttention};
pub use norm::LayerNorm;
pub use recurrent::{
    CellKind, RecurrentCell, RecurrentConfig, RecurrentEncoder, RecurrentOutput, RecurrentPooling, RecurrentState,
};
pub use transformer::{
    sinusoidal_positions, Activation, EncoderLayer, Pooling, Positions, TransformerConfig, TransformerEncoder,
};

use candle_core::{DType, Result, Tensor, D};

/// `[B, T]` of 1 at real tokens and 0 at padding (id 0), in `dtype`, on the ids' device.
pub fn padding_mask(token_ids: &Tensor, dtype: DType) -> Result<Tensor> {
    token_ids.ne(&token_ids.zeros_like()?)?.to_dtype(dtype)
}

/// The mean of `xs` `[B, T, D]` over the positions where `keep` `[B, T]` is 1: `[B, D]`.
/// A sequence without any kept position gives zeros.
pub fn masked_mean(xs: &Tensor, keep: &Tensor) -> Result<Tensor> {
    let keep = keep.unsqueeze(D::Minus1)?;
    let total = xs.broadcast_mul(&keep)?.sum(1)?;
    let count = keep.sum(1)?.clamp(1.0, f64::INFINITY)?;
    total.broadcast_div(&count)
}
