//! Multi-head self-attention (Vaswani et al. 2017) with a key-padding mask, and the
//! differentiable softmax it needs (candle's fused `softmax_last_dim` records no backward).

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use crate::init::{linear, InitScheme};

/// Added to the scores of masked keys: large enough that `exp` underflows to exactly 0
/// in f32 and f64, finite so that a row with every key masked stays finite.
const MASKED_SCORE: f64 = -1e9;

/// Softmax over the last dimension, `exp(x − max) / Σ exp(x − max)`. The max is a
/// constant of the backward pass (softmax does not depend on the shift), so the
/// gradient is exactly softmax's.
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    let shifted = xs.broadcast_sub(&xs.max_keepdim(D::Minus1)?.detach())?;
    let exps = shifted.exp()?;
    exps.broadcast_div(&exps.sum_keepdim(D::Minus1)?)
}

/// Softmax over the last dimension of `scores` where `keep` (1 or 0, broadcastable to
/// `scores`) is 1; positions with `keep` 0 get weight exactly 0. A row with every position
/// masked (a text without tokens) gets finite weights that mean nothing.
pub fn masked_softmax_last_dim(scores: &Tensor, keep: &Tensor) -> Result<Tensor> {
    let penalty = ((keep - 1.0)? * -MASKED_SCORE)?;
    softmax_last_dim(&scores.broadcast_add(&penalty)?)
}

/// Self-attention with `n_heads` heads over `d_model` features: projections `query`,
/// `key`, `value`, `output` (each `d_model → d_model` with bias, drawn in that order),
/// scaled dot-product attention per head of size `d_model / n_heads`.
#[derive(Clone, Debug)]
pub struct MultiHeadSelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    n_heads: usize,
}

impl MultiHeadSelfAttention {
    /// `d_model` must be a multiple of `n_heads`.
    pub fn new(d_model: usize, n_heads: usize, init: InitScheme, vb: VarBuilder) -> Result<MultiHeadSelfAttention> {
        if n_heads == 0 || d_model % n_heads != 0 {
            candle_core::bail!("attention: d_model {d_model} is not a multiple of n_heads {n_heads}");
        }
        Ok(MultiHeadSelfAttention {
            query: linear(d_model, d_model, init, vb.pp("query"))?,
            key: linear(d_model, d_model, init, vb.pp("key"))?,
            value: linear(d_model, d_model, init, vb.pp("value"))?,
            output: linear(d_model, d_model, init, vb.pp("output"))?,
            n_heads,
        })
    }

    /// `xs` `[B, T, d_model]`, `keep` `[B, T]` (1 real, 0 padding) → `[B, T, d_model]`.
    /// Padded keys get zero weight; padded queries get outputs that callers must ignore.
    pub fn forward(&self, xs: &Tensor, keep: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with_weights(xs, keep)?.0)
    }

    /// As [`MultiHeadSelfAttention::forward`], also returning the attention weights
    /// `[B, n_heads, T (queries), T (keys)]`.
    pub fn forward_with_weights(&self, xs: &Tensor, keep: &Tensor) -> Result<(Tensor, Tensor)> {
        let (batch, len, d_model) = xs.dims3()?;
        let head_size = d_model / self.n_heads;
        let split_heads = |projection: &Linear| -> Result<Tensor> {
            projection.forward(xs)?.reshape((batch, len, self.n_heads, head_size))?.transpose(1, 2)?.contiguous()
        };
        // Queries scaled by 1/√head_size before the product (as PyTorch does): fewer elements than the scores.
        let queries = (split_heads(&self.query)? / (head_size as f64).sqrt())?;
        let (keys, values) = (split_heads(&self.key)?, split_heads(&self.value)?);
        let scores = queries.matmul(&keys.t()?)?;
        let weights = masked_softmax_last_dim(&scores, &keep.reshape((batch, 1, 1, len))?)?;
        let mixed = weights.matmul(&values)?.transpose(1, 2)?.contiguous()?.reshape((batch, len, d_model))?;
        Ok((self.output.forward(&mixed)?, weights))
    }
}
