//! Learning To Branch (Guo, Lee & Ulbricht 2020, "Learning to Branch for Multi-Task
//! Learning", ICML 2020, Sec. 3): a tree-structured network whose branching is learned.
//!
//! Each trunk block has one copy (node) per task, as in LibMTL's version of the design
//! space. After block b, every node of the next layer — the copies of block b+1, or after
//! the last block the task heads — is a child that picks one parent among the copies of
//! block b. Child t of boundary b holds logits `θ_b[t]` over the parents (`trunk.branch.<block>`,
//! `[n_tasks, n_tasks]`, row = child, starting at 0: every parent equally likely), and its
//! input is `Σ_u d_b[t][u] · h_u`:
//! - in training, `d_b[t] = softmax((θ_b[t] + g)/τ)` with fresh Gumbel noise `g` each pass
//!   (Jang et al. 2017's relaxation, Sec. 3.2 of the paper), drawn from the pass's seeded
//!   generator (the dropout generator: same seed, same noise, whatever the thread count);
//! - in evaluation, the hard tree: `d_b[t]` is one-hot on `argmax_u θ_b[t][u]` (the first on
//!   ties), and only the nodes that some task's path reaches are computed.
//!
//! All parents at 0 logits at evaluation is hard sharing; θ_b[t] peaked on t everywhere is
//! one network per task.
//!
//! The temperature anneals with the epoch e (from 1): `τ_e = τ₀/√e`, the 1/√epoch decay
//! LibMTL's implementation uses (its τ₀ is epochs/20). Left out: LibMTL's warm-up epoch
//! with every parent summed, the straight-through hard sample (its forward would make the
//! loss piecewise constant in θ, so no finite-difference check could hold), and the paper's
//! second stage that retrains the found tree from scratch (here the trained weights of the
//! argmax tree are evaluated as they are).

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use super::blocks::{Column, Dropout};
use super::sharing::stitch;

/// The columns (one per task) and the branching logits after each of their blocks.
pub(crate) struct Branching {
    pub(crate) columns: Vec<Column>,
    /// `logits[b]`: `[n_tasks, n_tasks]`, child × parent, after block b.
    logits: Vec<Tensor>,
    /// τ₀.
    temperature: f64,
    /// The training epoch (from 1) the next passes belong to.
    epoch: u32,
}

impl Branching {
    /// Branching between `columns` (one per task), logits named after `block_names` under `vb`.
    pub(crate) fn new(
        columns: Vec<Column>,
        block_names: &[String],
        temperature: f64,
        vb: VarBuilder,
    ) -> Result<Branching> {
        let n = columns.len();
        let logits = block_names
            .iter()
            .map(|name| vb.get_with_hints((n, n), name, candle_nn::Init::Const(0.0)))
            .collect::<Result<_>>()?;
        Ok(Branching { columns, logits, temperature, epoch: 1 })
    }

    /// Sets the training epoch (from 1), which sets the temperature `τ₀/√epoch`.
    pub(crate) fn set_epoch(&mut self, epoch: u32) {
        self.epoch = epoch.max(1);
    }

    /// The Gumbel-softmax temperature of the current epoch.
    pub(crate) fn temperature(&self) -> f64 {
        self.temperature / (self.epoch as f64).sqrt()
    }

    /// Each child's parent at boundary `b` in the hard tree: the argmax of its logits.
    fn parents(&self, b: usize) -> Result<Vec<usize>> {
        let rows = self.logits[b].to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
        Ok(rows
            .iter()
            .map(|row| row.iter().enumerate().fold(0, |best, (u, &v)| if v > row[best] { u } else { best }))
            .collect())
    }

    pub(crate) fn forward(&self, xs: &Tensor, tasks: &[usize], dropout: &mut Dropout) -> Result<Vec<Tensor>> {
        let n = self.columns.len();
        let n_blocks = self.logits.len();
        if !dropout.training() {
            return self.forward_hard(xs, tasks, dropout);
        }
        let mut outputs: Vec<Tensor> =
            self.columns.iter().map(|column| column.blocks[0].forward(xs, dropout)).collect::<Result<_>>()?;
        for (b, logits) in self.logits.iter().enumerate() {
            let g = dropout.gumbel(n * n).expect("a training pass");
            let g = Tensor::from_vec(g, (n, n), logits.device())?.to_dtype(logits.dtype())?;
            let d = candle_nn::ops::softmax(&((logits + g)? / self.temperature())?, D::Minus1)?;
            let inputs = stitch(&d, &outputs)?;
            if b + 1 == n_blocks {
                return Ok(tasks.iter().map(|&task| inputs[task].clone()).collect());
            }
            outputs = self
                .columns
                .iter()
                .zip(&inputs)
                .map(|(column, h)| column.blocks[b + 1].forward(h, dropout))
                .collect::<Result<_>>()?;
        }
        unreachable!("a trunk has at least one block")
    }

    /// Evaluation: each task's path through the argmax tree, each node on some path once.
    fn forward_hard(&self, xs: &Tensor, tasks: &[usize], dropout: &mut Dropout) -> Result<Vec<Tensor>> {
        let n_blocks = self.logits.len();
        let parents: Vec<Vec<usize>> = (0..n_blocks).map(|b| self.parents(b)).collect::<Result<_>>()?;
        // needed[b][u]: whether node u of block b is on a requested task's path.
        let mut needed = vec![vec![false; self.columns.len()]; n_blocks];
        for &task in tasks {
            let mut node = parents[n_blocks - 1][task];
            needed[n_blocks - 1][node] = true;
            for b in (0..n_blocks - 1).rev() {
                node = parents[b][node];
                needed[b][node] = true;
            }
        }
        let mut outputs: Vec<Option<Tensor>> = vec![None; self.columns.len()];
        for b in 0..n_blocks {
            let mut next = vec![None; self.columns.len()];
            for (u, slot) in next.iter_mut().enumerate().filter(|(u, _)| needed[b][*u]) {
                let input = if b == 0 { xs } else { outputs[parents[b - 1][u]].as_ref().expect("parent computed") };
                *slot = Some(self.columns[u].blocks[b].forward(input, dropout)?);
            }
            outputs = next;
        }
        let last = &parents[n_blocks - 1];
        Ok(tasks.iter().map(|&task| outputs[last[task]].clone().expect("on the task's path")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temperature_decays_as_one_over_the_square_root_of_the_epoch() {
        let mut branching = Branching { columns: Vec::new(), logits: Vec::new(), temperature: 2.0, epoch: 1 };
        let mut at = |epoch| {
            branching.set_epoch(epoch);
            branching.temperature()
        };
        // τ₀/√e: 2, 2/√4 = 1, 2/√9 = 2/3; epoch 0 counts as the first.
        assert_eq!([at(1), at(4), at(9), at(0)], [2.0, 1.0, 2.0 / 3.0, 2.0]);
    }
}
