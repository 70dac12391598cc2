//! The message-passing trunk for molecular graphs (Gilmer et al. 2017, "Neural Message
//! Passing for Quantum Chemistry"), in the form PyTorch Geometric's QM9 example uses:
//!
//! 1. `h⁰ = relu(lin0(x))` per atom;
//! 2. `steps` times, with shared weights: an edge-network convolution (NNConv) with mean
//!    aggregation, `m_i = relu(root(h_i) + mean_{j≠i} h_j·W(e_ij))`, where
//!    `W(e) = reshape(edge2(relu(edge1(e))), [width, width])`, then a GRU cell, `h_i ← GRU(m_i, h_i)`;
//! 3. a Set2Set readout (Vinyals et al. 2016) of `readout_steps` LSTM steps: `q = LSTM(q*)`,
//!    `a = softmax_i(h_i·q)` over the graph's atoms, `r = Σ a_i h_i`, `q* = [q, r]`;
//! 4. `relu(lin1(q*))`: the `width`-sized representation the heads read.
//!
//! Edges are every ordered pair of distinct atoms (the complete graph), each with the bond
//! type one-hot (single, double, triple, aromatic; all 0 where there is no bond) and the
//! distance in Å: PyG's `Complete` and `Distance(norm=False)` transforms.
//!
//! Graphs arrive padded, `[B, N, F + 4 + N]` (see `mtl_data::graphs`). The convolution is
//! computed densely and without forming any `W(e_ij)`: since `edge2` is linear,
//! `Σ_j h_j·W(e_ij) = Σ_j Σ_k r_k(e_ij)·(h_j·A_k) + (Σ_j h_j)·C`, with `r = relu(edge1(e))`
//! masked to real pairs, `A_k` edge2's weight for hidden unit `k` and `C` its bias, both
//! reshaped to `[width, width]` — two batched matmuls instead of a `width²` matrix per edge.
//! Padded atoms send nothing, receive nothing and are not read out, so a graph's output
//! does not depend on how far it is padded.

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use crate::init::{linear, InitScheme};
use crate::sequence::{masked_softmax_last_dim, CellKind, RecurrentCell, RecurrentState};

/// Hidden units of the edge network (PyG's QM9 example: 128).
pub(crate) const EDGE_HIDDEN: usize = 128;

/// Edge features: the bond type one-hot and the distance.
const EDGE_FEATURES: usize = mtl_data::graphs::BOND_TYPES + 1;

/// A batch's edges, as the convolution reads them.
struct Edges {
    /// `[B, N, N, 5]`: bond type one-hot and distance, for every pair.
    #[cfg_attr(not(test), allow(dead_code))]
    features: Tensor,
    /// `[B, N, N·H]`: the edge network's hidden units, zero where `pairs` is 0.
    hidden: Tensor,
    /// `[B, N, N]`: 1 for two distinct real atoms.
    pairs: Tensor,
    /// `[B, N, 1]`: real neighbours of each atom, at least 1.
    degree: Tensor,
}

/// The whole trunk, one block.
pub(crate) struct Mpnn {
    lin0: Linear,
    edge1: Linear,
    edge2: Linear,
    root: Linear,
    gru: RecurrentCell,
    lstm: RecurrentCell,
    lin1: Linear,
    node_features: usize,
    width: usize,
    steps: usize,
    readout_steps: usize,
}

impl Mpnn {
    /// Parameters under `vb`, drawn in the order of the module doc.
    pub(crate) fn new(
        node_features: usize,
        width: usize,
        steps: usize,
        readout_steps: usize,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Mpnn> {
        Ok(Mpnn {
            lin0: linear(node_features, width, init, vb.pp("lin0"))?,
            edge1: linear(EDGE_FEATURES, EDGE_HIDDEN, init, vb.pp("edge1"))?,
            edge2: linear(EDGE_HIDDEN, width * width, init, vb.pp("edge2"))?,
            root: linear(width, width, init, vb.pp("root"))?,
            gru: RecurrentCell::new(CellKind::Gru, width, width, "l0", init, vb.pp("gru"))?,
            lstm: RecurrentCell::new(CellKind::Lstm, 2 * width, width, "l0", init, vb.pp("set2set"))?,
            lin1: linear(2 * width, width, init, vb.pp("lin1"))?,
            node_features,
            width,
            steps,
            readout_steps,
        })
    }

    /// `[B, N, F + 4 + N]` padded graphs → `[B, width]`.
    pub(crate) fn forward(&self, graphs: &Tensor) -> Result<Tensor> {
        self.lin1.forward(&self.read_out(graphs)?)?.relu()
    }

    /// The Set2Set output `q*` `[B, 2·width]` of `graphs`.
    fn read_out(&self, graphs: &Tensor) -> Result<Tensor> {
        let (batch, n, _) = graphs.dims3()?;
        let (x, present, edges) = self.read(graphs)?;
        let w = self.width;
        let mut h = self.lin0.forward(&x)?.relu()?.broadcast_mul(&present)?; // [B, N, width]
        for _ in 0..self.steps {
            let message = self.message(&h, &edges)?.reshape((batch * n, w))?;
            let input = self.gru.project_inputs(&message)?;
            let state = self.gru.step(&input, &RecurrentState { h: h.reshape((batch * n, w))?, c: None })?;
            h = state.h.reshape((batch, n, w))?.broadcast_mul(&present)?;
        }
        self.set2set(&h, &present.squeeze(D::Minus1)?)
    }

    /// The atoms' features `[B, N, F]`, which of them are real `[B, N, 1]`, and the edges.
    fn read(&self, graphs: &Tensor) -> Result<(Tensor, Tensor, Edges)> {
        let (batch, n, row) = graphs.dims3()?;
        let f = self.node_features;
        if row != f + 4 + n {
            candle_core::bail!("the mpnn trunk expects graph rows of {} values, got {row}", f + 4 + n);
        }
        let present = graphs.narrow(2, f, 1)?;
        let positions = graphs.narrow(2, f + 1, 3)?;
        let bonds = graphs.narrow(2, f + 4, n)?; // [B, N, N]

        // Real pairs i ≠ j, and each atom's count of them (at least 1).
        let others = Tensor::eye(n, graphs.dtype(), graphs.device())?.affine(-1.0, 1.0)?;
        let pairs = present.broadcast_mul(&present.transpose(1, 2)?)?.broadcast_mul(&others)?;
        let degree = pairs.sum_keepdim(D::Minus1)?.clamp(1.0, f64::INFINITY)?;

        // Edge features [B, N, N, 5] → the edge network's hidden units, masked, as [B, N, N·H].
        let mut features = Vec::with_capacity(EDGE_FEATURES);
        for code in 1..=mtl_data::graphs::BOND_TYPES {
            features.push(bonds.eq(&(bonds.ones_like()? * code as f64)?)?.to_dtype(graphs.dtype())?);
        }
        let offsets = positions.unsqueeze(2)?.broadcast_sub(&positions.unsqueeze(1)?)?;
        features.push(offsets.sqr()?.sum(D::Minus1)?.sqrt()?);
        let features = Tensor::stack(&features, D::Minus1)?;
        let hidden = self.edge1.forward(&features)?.relu()?.broadcast_mul(&pairs.unsqueeze(D::Minus1)?)?;
        let hidden = hidden.reshape((batch, n, n * EDGE_HIDDEN))?;
        Ok((graphs.narrow(2, 0, f)?, present, Edges { features, hidden, pairs, degree }))
    }

    /// The convolution's output `[B, N, width]` for atom states `h`: relu of the root term
    /// plus the mean over real neighbours of `h_j·W(e_ij)`.
    fn message(&self, h: &Tensor, edges: &Edges) -> Result<Tensor> {
        let (batch, n, w) = h.dims3()?;
        // edge2's weight [w·w, H] as [w_in, H·w_out], its bias as [w_in, w_out].
        let weights = self
            .edge2
            .weight()
            .reshape((w, w, EDGE_HIDDEN))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((w, EDGE_HIDDEN * w))?;
        let bias = self.edge2.bias().expect("edge2 has a bias").reshape((w, w))?;
        // U[b, j, k, :] = h_j·A_k, then Σ_j Σ_k r_k(e_ij) U[b, j, k, :].
        let per_unit = h.reshape((batch * n, w))?.matmul(&weights)?.reshape((batch, n * EDGE_HIDDEN, w))?;
        let from_edges = edges.hidden.matmul(&per_unit)?;
        let from_bias = edges.pairs.matmul(h)?.broadcast_matmul(&bias)?;
        let mean = (from_edges + from_bias)?.broadcast_div(&edges.degree)?;
        (mean + self.root.forward(h)?)?.relu()
    }

    /// Set2Set over `nodes` `[B, N, width]` where `present` `[B, N]` is 1: `[B, 2·width]`.
    fn set2set(&self, nodes: &Tensor, present: &Tensor) -> Result<Tensor> {
        let batch = nodes.dim(0)?;
        let mut state = self.lstm.zero_state(batch, nodes)?;
        let mut q_star = Tensor::zeros((batch, 2 * self.width), nodes.dtype(), nodes.device())?;
        for _ in 0..self.readout_steps {
            state = self.lstm.step(&self.lstm.project_inputs(&q_star)?, &state)?;
            let query = &state.h; // [B, width]
            let scores = nodes.matmul(&query.unsqueeze(D::Minus1)?)?.squeeze(D::Minus1)?; // [B, N]
            let attention = masked_softmax_last_dim(&scores, present)?;
            let read = attention.unsqueeze(1)?.matmul(nodes)?.squeeze(1)?; // [B, width]
            q_star = Tensor::cat(&[query, &read], 1)?;
        }
        Ok(q_star)
    }
}

#[cfg(test)]
#[path = "mpnn_tests.rs"]
mod tests;
