//! LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014) cells with PyTorch's
//! equations, gate order and parameter names, and a (bi)directional encoder over padded
//! sequences.
//!
//! With `σ` the logistic function and gates stacked in PyTorch's order:
//! - LSTM (i, f, g, o): `[i f g o] = W_ih x + b_ih + W_hh h + b_hh` (σ on i, f, o, tanh on
//!   g); `c' = f ⊙ c + i ⊙ g`, `h' = o ⊙ tanh(c')`.
//! - GRU (r, z, n): `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z = σ(W_iz x + b_iz + W_hz h + b_hz)`,
//!   `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`.
//!
//! Parameters are PyTorch's `weight_ih_l0` `[G·H, in]`, `weight_hh_l0` `[G·H, H]`,
//! `bias_ih_l0`, `bias_hh_l0` `[G·H]` (G = 4 or 3), and the same with `_reverse` for the
//! backward direction, so that a PyTorch `nn.LSTM`/`nn.GRU` state dict maps one to one.

use candle_core::{Result, Tensor, D};
use candle_nn::init::Init;
use candle_nn::VarBuilder;

use super::masked_mean;
use crate::init::{Fan, InitScheme};

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Long short-term memory: gates i, f, g, o.
    Lstm,
    /// Gated recurrent unit: gates r, z, n.
    Gru,
}

impl CellKind {
    fn n_gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// A cell's state: `h` `[B, H]`, and the LSTM's cell `c` `[B, H]`.
#[derive(Clone, Debug)]
pub struct RecurrentState {
    /// The hidden state (the output).
    pub h: Tensor,
    /// The LSTM's cell state; `None` for a GRU.
    pub c: Option<Tensor>,
}

/// `σ(x) = (1 + tanh(x/2)) / 2`: no overflow of `exp` for large |x|, in value or gradient.
fn sigmoid(xs: &Tensor) -> Result<Tensor> {
    xs.affine(0.5, 0.0)?.tanh()?.affine(0.5, 0.5)
}

/// One LSTM or GRU cell, one direction of one layer.
#[derive(Clone, Debug)]
pub struct RecurrentCell {
    kind: CellKind,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
    hidden_size: usize,
}

impl RecurrentCell {
    /// A cell with parameters `weight_ih_<suffix>`, `weight_hh_<suffix>`, `bias_ih_<suffix>`,
    /// `bias_hh_<suffix>` under `vb`, drawn in that order (PyTorch's suffixes: `l0`,
    /// `l0_reverse`). Under [`InitScheme::Framework`] all four are U(±1/√H), PyTorch's
    /// `nn.LSTM`/`nn.GRU` default; the other schemes treat each weight as a linear layer
    /// `in → G·H` (or `H → G·H`) and its bias as that layer's.
    pub fn new(
        kind: CellKind,
        input_size: usize,
        hidden_size: usize,
        suffix: &str,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<RecurrentCell> {
        let rows = kind.n_gates() * hidden_size;
        let pytorch_rnn =
            Init::Uniform { lo: -1.0 / (hidden_size as f64).sqrt(), up: 1.0 / (hidden_size as f64).sqrt() };
        let weight_init = |inputs: usize| match init {
            InitScheme::Framework => pytorch_rnn,
            _ => init.weight(Fan::linear(inputs, rows)),
        };
        let bias_init = |inputs: usize| match init {
            InitScheme::Framework => pytorch_rnn,
            _ => init.bias(Fan::linear(inputs, rows)),
        };
        let weight_ih =
            vb.get_with_hints((rows, input_size), &format!("weight_ih_{suffix}"), weight_init(input_size))?;
        let weight_hh =
            vb.get_with_hints((rows, hidden_size), &format!("weight_hh_{suffix}"), weight_init(hidden_size))?;
        let bias_ih = vb.get_with_hints(rows, &format!("bias_ih_{suffix}"), bias_init(input_size))?;
        let bias_hh = vb.get_with_hints(rows, &format!("bias_hh_{suffix}"), bias_init(hidden_size))?;
        Ok(RecurrentCell { kind, weight_ih, weight_hh, bias_ih, bias_hh, hidden_size })
    }

    /// The zero state for a batch of `batch` like `like` (dtype, device).
    pub fn zero_state(&self, batch: usize, like: &Tensor) -> Result<RecurrentState> {
        let zeros = Tensor::zeros((batch, self.hidden_size), like.dtype(), like.device())?;
        let c = (self.kind == CellKind::Lstm).then(|| zeros.clone());
        Ok(RecurrentState { h: zeros, c })
    }

    /// `W_ih x + b_ih` for every step at once: `xs` `[B, T, in]` → `[B, T, G·H]`.
    pub fn project_inputs(&self, xs: &Tensor) -> Result<Tensor> {
        xs.broadcast_matmul(&self.weight_ih.t()?)?.broadcast_add(&self.bias_ih)
    }

    /// One step from `state`, given this step's projected input `[B, G·H]`
    /// (a row of [`RecurrentCell::project_inputs`]).
    pub fn step(&self, projected_input: &Tensor, state: &RecurrentState) -> Result<RecurrentState> {
        let from_hidden = state.h.matmul(&self.weight_hh.t()?)?.broadcast_add(&self.bias_hh)?;
        let size = self.hidden_size;
        let gate = |xs: &Tensor, index: usize| xs.narrow(D::Minus1, index * size, size);
        match (self.kind, &state.c) {
            (CellKind::Lstm, Some(c)) => {
                let gates = (projected_input + from_hidden)?;
                let input_gate = sigmoid(&gate(&gates, 0)?)?;
                let forget_gate = sigmoid(&gate(&gates, 1)?)?;
                let candidate = gate(&gates, 2)?.tanh()?;
                let output_gate = sigmoid(&gate(&gates, 3)?)?;
                let c = ((forget_gate * c)? + (input_gate * candidate)?)?;
                let h = (output_gate * c.tanh()?)?;
                Ok(RecurrentState { h, c: Some(c) })
            }
            (CellKind::Gru, None) => {
                let reset = sigmoid(&(gate(projected_input, 0)? + gate(&from_hidden, 0)?)?)?;
                let update = sigmoid(&(gate(projected_input, 1)? + gate(&from_hidden, 1)?)?)?;
                let candidate = (gate(projected_input, 2)? + (reset * gate(&from_hidden, 2)?)?)?.tanh()?;
                let h = ((update.affine(-1.0, 1.0)? * candidate)? + (update * &state.h)?)?;
                Ok(RecurrentState { h, c: None })
            }
            _ => candle_core::bail!("recurrent cell: an LSTM needs a cell state, a GRU none"),
        }
    }
}

/// How a [`RecurrentEncoder`] pools its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentPooling {
    /// Each direction's final hidden state (the forward one's at the last real token, the
    /// backward one's at the first token), concatenated: PyTorch's `h_n` of a packed sequence.
    FinalStates,
    /// The mean of the per-step outputs over real tokens.
    MaskedMean,
}

/// The hyperparameters of a [`RecurrentEncoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentConfig {
    /// LSTM or GRU.
    pub cell: CellKind,
    /// Features of each input step.
    pub input_size: usize,
    /// `H`, per direction.
    pub hidden_size: usize,
    /// A second cell reading the sequence backwards.
    pub bidirectional: bool,
    /// Final states or masked mean.
    pub pooling: RecurrentPooling,
}

/// What a [`RecurrentEncoder`] computes before pooling.
#[derive(Clone, Debug)]
pub struct RecurrentOutput {
    /// Per-step hidden states `[B, T, dirs·H]` (forward then backward); at padding, the
    /// state held from the last real step.
    pub outputs: Tensor,
    /// Final hidden states `[B, dirs·H]` (forward then backward).
    pub final_states: Tensor,
}

/// A one-layer (bi)directional LSTM or GRU over padded sequences: a state stops updating
/// at padding (it is carried over unchanged), so the forward direction ends at each
/// sequence's last real token and the backward one starts there from the zero state.
#[derive(Clone, Debug)]
pub struct RecurrentEncoder {
    forward: RecurrentCell,
    backward: Option<RecurrentCell>,
    pooling: RecurrentPooling,
}

impl RecurrentEncoder {
    /// Parameters under `vb`: PyTorch's `*_l0`, then `*_l0_reverse` when bidirectional.
    pub fn new(config: &RecurrentConfig, init: InitScheme, vb: VarBuilder) -> Result<RecurrentEncoder> {
        let cell = |suffix: &str| {
            RecurrentCell::new(config.cell, config.input_size, config.hidden_size, suffix, init, vb.clone())
        };
        let forward = cell("l0")?;
        let backward = if config.bidirectional { Some(cell("l0_reverse")?) } else { None };
        Ok(RecurrentEncoder { forward, backward, pooling: config.pooling })
    }

    /// `xs` `[B, T, input_size]` with `keep` `[B, T]` (1 real, 0 padding) → `[B, dirs·H]`.
    pub fn forward(&self, xs: &Tensor, keep: &Tensor) -> Result<Tensor> {
        let output = self.forward_sequence(xs, keep)?;
        match self.pooling {
            RecurrentPooling::FinalStates => Ok(output.final_states),
            RecurrentPooling::MaskedMean => masked_mean(&output.outputs, keep),
        }
    }

    /// Per-step outputs and final states, before pooling.
    pub fn forward_sequence(&self, xs: &Tensor, keep: &Tensor) -> Result<RecurrentOutput> {
        let mut outputs = Vec::new();
        let mut finals = Vec::new();
        let directions = std::iter::once((&self.forward, false)).chain(self.backward.as_ref().map(|cell| (cell, true)));
        for (cell, reverse) in directions {
            let (steps, last) = run_direction(cell, xs, keep, reverse)?;
            outputs.push(Tensor::stack(&steps, 1)?);
            finals.push(last);
        }
        Ok(RecurrentOutput {
            outputs: Tensor::cat(&outputs, D::Minus1)?,
            final_states: Tensor::cat(&finals, D::Minus1)?,
        })
    }
}

/// Runs `cell` over the steps (backwards when `reverse`); returns the hidden state after
/// each step, in position order, and the final one.
fn run_direction(cell: &RecurrentCell, xs: &Tensor, keep: &Tensor, reverse: bool) -> Result<(Vec<Tensor>, Tensor)> {
    let (batch, len, _) = xs.dims3()?;
    // Time-major, so that each step reads contiguous rows.
    let projected = cell.project_inputs(xs)?.transpose(0, 1)?.contiguous()?;
    let real_by_step = keep.t()?.contiguous()?.unsqueeze(D::Minus1)?;
    let padding_by_step = real_by_step.affine(-1.0, 1.0)?;
    let mut state = cell.zero_state(batch, xs)?;
    let mut steps = Vec::with_capacity(len);
    let order: Vec<usize> = if reverse { (0..len).rev().collect() } else { (0..len).collect() };
    for t in order {
        let next = cell.step(&projected.get(t)?, &state)?;
        // Exactly the new state at a real token, exactly the old one at padding.
        let (real, padding) = (real_by_step.get(t)?, padding_by_step.get(t)?);
        let hold = |new: &Tensor, old: &Tensor| new.broadcast_mul(&real)? + old.broadcast_mul(&padding)?;
        state = RecurrentState {
            h: hold(&next.h, &state.h)?,
            c: match (&next.c, &state.c) {
                (Some(new), Some(old)) => Some(hold(new, old)?),
                _ => None,
            },
        };
        steps.push(state.h.clone());
    }
    if reverse {
        steps.reverse();
    }
    Ok((steps, state.h))
}
