//! The state of one forward pass through a network ([`Dropout`]): training or
//! evaluation, the seeded dropout masks, the padding mask of the texts it reads and
//! their stream (input modality).
//! The trunks (`network`) and the text encoders (`sequence`) both take it.

use candle_core::{Result, Tensor};
use mtl_data::Rng;

/// The state of one forward pass: training (dropout masks drawn from mtl-lab's seeded
/// generator, since candle's cannot be seeded; batch norm on batch statistics, moving its
/// running statistics) or evaluation (`Dropout::off()`: no masks, batch norm on its
/// running statistics); and, for the Transformer and recurrent trunks, the padding mask
/// `[B, T]` of the texts in the batch.
pub(crate) struct Dropout<'a> {
    masks: Option<(f64, &'a mut Rng)>,
    keep: Option<Tensor>,
    /// The stream (input modality) of the batch, which selects the running statistics of
    /// batch norms that several modalities share.
    stream: usize,
}

impl<'a> Dropout<'a> {
    /// Training, with dropout probability `p`.
    pub(crate) fn new(p: f64, rng: &'a mut Rng) -> Dropout<'a> {
        Dropout { masks: Some((p, rng)), keep: None, stream: 0 }
    }

    /// Evaluation.
    pub(crate) fn off() -> Dropout<'static> {
        Dropout { masks: None, keep: None, stream: 0 }
    }

    /// Whether this is a training pass.
    pub(crate) fn training(&self) -> bool {
        self.masks.is_some()
    }

    /// Sets the stream (input modality) of the batch this pass reads.
    pub(crate) fn set_stream(&mut self, stream: usize) {
        self.stream = stream;
    }

    /// The stream of the batch (see [`crate::layers::BatchNorm2d::set_streams`]).
    pub(crate) fn stream(&self) -> usize {
        self.stream
    }

    /// Sets the padding mask of the texts this pass reads.
    pub(crate) fn set_keep(&mut self, keep: Option<Tensor>) {
        self.keep = keep;
    }

    /// The padding mask (1 real, 0 padding), which the text encoders' blocks need.
    pub(crate) fn keep(&self) -> Result<Tensor> {
        match &self.keep {
            Some(keep) => Ok(keep.clone()),
            None => candle_core::bail!("a text encoder block needs the padding mask of its batch"),
        }
    }

    /// `n` standard Gumbel draws `−ln(−ln u)` from the pass's generator (LTB's branching noise),
    /// or `None` in evaluation. `u` is uniform on the open interval (0, 1), so every draw is finite.
    pub(crate) fn gumbel(&mut self, n: usize) -> Option<Vec<f64>> {
        let (_, rng) = self.masks.as_mut()?;
        // 52 random bits, centred in their cell: u ∈ [2⁻⁵³, 1 − 2⁻⁵³], exact in f64.
        let open_uniform = |rng: &mut Rng| ((rng.next_u64() >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64);
        Some((0..n).map(|_| -(-open_uniform(rng).ln()).ln()).collect())
    }

    pub(crate) fn apply(&mut self, xs: &Tensor) -> Result<Tensor> {
        let Some((p, rng)) = &mut self.masks else { return Ok(xs.clone()) };
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
