//! The trunk under each sharing strategy: what is shared between the tasks'
//! paths from the stem output to the representation their heads read.

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use super::blocks::{boundaries, ChannelLinear, Column, Dropout, Features, NamedBatchNorm};
use super::branching::Branching;
use super::dselect::DSelectGate;
use super::{InputSpec, Sharing, TaskSpec, TrunkSpec};
use crate::init::{linear, InitScheme};

/// The trunk of a [`super::MultiTaskNet`].
pub(crate) enum Trunk {
    /// One column that every task reads (`hard`).
    Shared(Column),
    /// One column per task (`single-task`, `soft`); with `stitches` (`cross-stitch`),
    /// the columns' activations are mixed after each block by an `[n_tasks, n_tasks]` matrix α:
    /// task t's next input is `Σ_u α[t][u]·h_u`.
    Columns { columns: Vec<Column>, stitches: Vec<Tensor> },
    /// Mixture-of-experts levels (`mmoe`, `dselect-k`, `cgc`, `ple`).
    Experts(Vec<ExpertLevel>),
    /// A shared column with per-task attention masks after each block (`mtan`):
    /// `masks[task][block]`.
    Attention { shared: Column, masks: Vec<Vec<ChannelLinear>> },
    /// A column per task whose blocks pick their parent block by Gumbel-softmax (`ltb`).
    Branching(Branching),
}

/// One level of experts (Tang et al. 2020): shared experts read the shared
/// input, task t's experts read task t's input; task t's gate mixes its own
/// and the shared experts; the shared gate (every level but the last) mixes
/// all experts into the next level's shared input. MMoE is one level without
/// task experts; CGC is one level; DSelect-k is MMoE with DSelect-k task gates.
pub(crate) struct ExpertLevel {
    pub(crate) shared: Vec<Column>,
    task_experts: Vec<Vec<Column>>,
    gates: Vec<Gate>,
    shared_gate: Option<Linear>,
    /// The shape of the level's input, which its gates read.
    gate_input: Features,
}

/// What one expert level has: its experts, and how its task gates weigh them.
struct LevelSpec {
    n_shared: usize,
    n_task_experts: usize,
    /// Whether the level mixes all its experts into the next level's shared input (PLE).
    has_shared_gate: bool,
    /// `Some((k, γ))`: DSelect-k task gates; `None`: softmax gates.
    dselect: Option<(usize, f64)>,
}

impl LevelSpec {
    fn softmax(n_shared: usize, n_task_experts: usize, has_shared_gate: bool) -> LevelSpec {
        LevelSpec { n_shared, n_task_experts, has_shared_gate, dselect: None }
    }
}

/// A task's gate over a level's experts.
enum Gate {
    /// `softmax(W·x + b)` (MMoE, CGC, PLE).
    Softmax(Linear),
    /// See [`DSelectGate`].
    DSelect(DSelectGate),
}

impl Gate {
    /// The expert weights `[B, n_experts]`, each row summing to 1, for the gate input `[B, size]`.
    fn weights(&self, gate_input: &Tensor) -> Result<Tensor> {
        match self {
            // `ops::softmax`, not the fused `softmax_last_dim`, which records no backward in candle 0.11.1.
            Gate::Softmax(linear) => candle_nn::ops::softmax(&linear.forward(gate_input)?, D::Minus1),
            Gate::DSelect(gate) => gate.weights(gate_input),
        }
    }
}

/// The blocks each PLE level covers: one block per level, the last level takes the rest.
fn level_ranges(levels: usize, n_blocks: usize) -> Vec<std::ops::Range<usize>> {
    (0..levels).map(|k| if k + 1 == levels { k..n_blocks } else { k..k + 1 }).collect()
}

impl Trunk {
    /// The trunk of `sharing` for `tasks` (every task's input reaches it through a
    /// stem of the same output shape), with parameters under `vb` (`trunk`) drawn as `init` says.
    pub(crate) fn new(
        sharing: Sharing,
        trunk: TrunkSpec,
        tasks: &[TaskSpec],
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Trunk> {
        let input: &InputSpec = &tasks[0].input;
        let block_names = trunk.block_names();
        let all_blocks = 0..block_names.len();
        let per_task_columns = || -> Result<Vec<Column>> {
            tasks
                .iter()
                .map(|task| Column::new(trunk, &task.input, all_blocks.clone(), init, vb.pp(&task.name)))
                .collect()
        };
        Ok(match sharing {
            Sharing::Hard => Trunk::Shared(Column::new(trunk, input, all_blocks, init, vb)?),
            Sharing::SingleTask | Sharing::Soft { .. } => {
                Trunk::Columns { columns: per_task_columns()?, stitches: Vec::new() }
            }
            Sharing::CrossStitch { .. } => {
                let n = tasks.len();
                // α starts at `init` on the diagonal and shares the rest equally, so rows sum to 1
                // (Misra et al. 2016 found (α_self, α_other) = (0.9, 0.1) best for two tasks).
                let mut stitches = Vec::new();
                for name in &block_names {
                    let alpha = vb.pp("stitch").get_with_hints((n, n), name, candle_nn::Init::Const(0.0))?;
                    stitches.push(alpha);
                }
                Trunk::Columns { columns: per_task_columns()?, stitches }
            }
            Sharing::Mmoe { experts } => {
                let spec = LevelSpec::softmax(experts, 0, false);
                Trunk::Experts(vec![ExpertLevel::new(trunk, tasks, all_blocks, spec, init, vb.pp("level1"))?])
            }
            Sharing::DSelectK { experts, selectors, gamma } => {
                let spec = LevelSpec { dselect: Some((selectors, gamma)), ..LevelSpec::softmax(experts, 0, false) };
                Trunk::Experts(vec![ExpertLevel::new(trunk, tasks, all_blocks, spec, init, vb.pp("level1"))?])
            }
            Sharing::Cgc { experts, task_experts } => {
                let spec = LevelSpec::softmax(experts, task_experts, false);
                Trunk::Experts(vec![ExpertLevel::new(trunk, tasks, all_blocks, spec, init, vb.pp("level1"))?])
            }
            Sharing::Ple { experts, task_experts, levels } => {
                let ranges = level_ranges(levels, block_names.len());
                let n_levels = ranges.len();
                let levels = ranges
                    .into_iter()
                    .enumerate()
                    .map(|(k, range)| {
                        let vb = vb.pp(format!("level{}", k + 1));
                        let spec = LevelSpec::softmax(experts, task_experts, k + 1 < n_levels);
                        ExpertLevel::new(trunk, tasks, range, spec, init, vb)
                    })
                    .collect::<Result<_>>()?;
                Trunk::Experts(levels)
            }
            Sharing::Mtan => {
                let shapes = boundaries(trunk, input)?;
                let mut masks = Vec::new();
                for task in tasks {
                    let vb = vb.pp("attention").pp(&task.name);
                    let mut task_masks = Vec::new();
                    for (block, name) in block_names.iter().enumerate() {
                        let channels = shapes[block + 1].channels();
                        // The first mask sees the shared features; later ones also the task's
                        // attended features of the block before, passed through this block.
                        let in_channels = if block == 0 { channels } else { 2 * channels };
                        task_masks.push(ChannelLinear(linear(in_channels, channels, init, vb.pp(name))?));
                    }
                    masks.push(task_masks);
                }
                Trunk::Attention { shared: Column::new(trunk, input, all_blocks, init, vb)?, masks }
            }
            Sharing::Ltb { temperature } => {
                let columns = per_task_columns()?;
                Trunk::Branching(Branching::new(columns, &block_names, temperature, vb.pp("branch"))?)
            }
        })
    }

    /// Every batch norm of the trunk, with its name.
    pub(crate) fn batch_norms(&self) -> Vec<NamedBatchNorm> {
        let columns: Vec<&Column> = match self {
            Trunk::Shared(column) | Trunk::Attention { shared: column, .. } => vec![column],
            Trunk::Columns { columns, .. } => columns.iter().collect(),
            Trunk::Branching(branching) => branching.columns.iter().collect(),
            Trunk::Experts(levels) => {
                levels.iter().flat_map(|level| level.shared.iter().chain(level.task_experts.iter().flatten())).collect()
            }
        };
        columns.into_iter().flat_map(Column::batch_norms).collect()
    }

    /// The representations of `tasks` (indices into the model's tasks), which all read `xs`: one per task.
    pub(crate) fn forward(&self, xs: &Tensor, tasks: &[usize], dropout: &mut Dropout) -> Result<Vec<Tensor>> {
        match self {
            Trunk::Shared(column) => {
                let representation = column.forward(xs, dropout)?;
                Ok(tasks.iter().map(|_| representation.clone()).collect())
            }
            Trunk::Columns { columns, stitches } if stitches.is_empty() => {
                tasks.iter().map(|&task| columns[task].forward(xs, dropout)).collect()
            }
            Trunk::Columns { columns, stitches } => {
                // Every column runs on the input: the mixing couples them all.
                let mut activations: Vec<Tensor> = columns.iter().map(|_| xs.clone()).collect();
                for (block, alpha) in stitches.iter().enumerate() {
                    let outputs = columns
                        .iter()
                        .zip(&activations)
                        .map(|(column, h)| column.blocks[block].forward(h, dropout))
                        .collect::<Result<Vec<_>>>()?;
                    activations = stitch(alpha, &outputs)?;
                }
                Ok(tasks.iter().map(|&task| activations[task].clone()).collect())
            }
            Trunk::Experts(levels) => {
                let n_tasks = levels[0].gates.len();
                let mut task_inputs: Vec<Tensor> = (0..n_tasks).map(|_| xs.clone()).collect();
                let mut shared_input = xs.clone();
                for level in levels {
                    let (outputs, shared) = level.forward(&task_inputs, &shared_input, dropout)?;
                    task_inputs = outputs;
                    if let Some(shared) = shared {
                        shared_input = shared;
                    }
                }
                Ok(tasks.iter().map(|&task| task_inputs[task].clone()).collect())
            }
            Trunk::Attention { shared, masks } => {
                let mut attended: Vec<Option<Tensor>> = vec![None; tasks.len()];
                let mut shared_features = xs.clone();
                for (index, block) in shared.blocks.iter().enumerate() {
                    shared_features = block.forward(&shared_features, dropout)?;
                    for (slot, &task) in attended.iter_mut().zip(tasks) {
                        let mask_input = match slot.take() {
                            None => shared_features.clone(),
                            Some(previous) => Tensor::cat(&[&shared_features, &block.forward(&previous, dropout)?], 1)?,
                        };
                        let mask = candle_nn::ops::sigmoid(&masks[task][index].forward(&mask_input)?)?;
                        *slot = Some((&shared_features * mask)?);
                    }
                }
                Ok(attended.into_iter().map(|a| a.expect("the trunk has blocks")).collect())
            }
            Trunk::Branching(branching) => branching.forward(xs, tasks, dropout),
        }
    }
}

/// The initial α between two different columns: the rest of a row after `init`, shared equally.
pub(crate) fn stitch_off_diagonal(init: f64, n_tasks: usize) -> f64 {
    if n_tasks > 1 {
        (1.0 - init) / (n_tasks - 1) as f64
    } else {
        0.0
    }
}

/// Cross-stitch mixing: `out[t] = Σ_u α[t][u]·h[u]`.
pub(crate) fn stitch(alpha: &Tensor, activations: &[Tensor]) -> Result<Vec<Tensor>> {
    let shape = activations[0].shape().clone();
    let n = activations.len();
    let flat = Tensor::stack(activations, 0)?.reshape((n, ()))?;
    let mixed = alpha.matmul(&flat)?;
    (0..n).map(|t| mixed.get(t)?.reshape(&shape)).collect()
}

/// `Σ_e weights[e]·outputs[e]`, per example (`weights` `[B, n_experts]`).
fn mix(outputs: &[Tensor], weights: &Tensor) -> Result<Tensor> {
    let stacked = Tensor::stack(outputs, 1)?;
    let mut weight_shape = vec![1; stacked.rank()];
    weight_shape[0] = stacked.dim(0)?;
    weight_shape[1] = outputs.len();
    stacked.broadcast_mul(&weights.reshape(weight_shape)?)?.sum(1)
}

impl ExpertLevel {
    /// A level of `blocks` with the experts and gates `spec` says.
    fn new(
        trunk: TrunkSpec,
        tasks: &[TaskSpec],
        blocks: std::ops::Range<usize>,
        spec: LevelSpec,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<ExpertLevel> {
        let LevelSpec { n_shared, n_task_experts, has_shared_gate, dselect } = spec;
        let input = &tasks[0].input;
        let gate_input = boundaries(trunk, input)?[blocks.start];
        let gate_size = gate_input.gate_size();
        let expert = |vb: VarBuilder| Column::new(trunk, input, blocks.clone(), init, vb);
        let shared = (0..n_shared).map(|e| expert(vb.pp("shared").pp(e))).collect::<Result<_>>()?;
        let mut task_experts = Vec::new();
        let mut gates = Vec::new();
        for task in tasks {
            let vb_task = vb.pp("tasks").pp(&task.name);
            task_experts.push((0..n_task_experts).map(|e| expert(vb_task.pp(e))).collect::<Result<Vec<_>>>()?);
            let (n_experts, vb_gate) = (n_task_experts + n_shared, vb.pp("gates").pp(&task.name));
            gates.push(match dselect {
                Some((k, gamma)) => Gate::DSelect(DSelectGate::new(gate_size, n_experts, k, gamma, vb_gate)?),
                None => Gate::Softmax(linear(gate_size, n_experts, init, vb_gate)?),
            });
        }
        let shared_gate = if has_shared_gate {
            Some(linear(gate_size, tasks.len() * n_task_experts + n_shared, init, vb.pp("shared_gate"))?)
        } else {
            None
        };
        Ok(ExpertLevel { shared, task_experts, gates, shared_gate, gate_input })
    }

    /// Every task's output, and the next level's shared input (when this level has a shared gate).
    fn forward(
        &self,
        task_inputs: &[Tensor],
        shared_input: &Tensor,
        dropout: &mut Dropout,
    ) -> Result<(Vec<Tensor>, Option<Tensor>)> {
        let shared_outputs =
            self.shared.iter().map(|e| e.forward(shared_input, dropout)).collect::<Result<Vec<_>>>()?;
        let mut all_outputs = Vec::new();
        let mut task_outputs = Vec::new();
        for ((experts, gate), input) in self.task_experts.iter().zip(&self.gates).zip(task_inputs) {
            let mut outputs = experts.iter().map(|e| e.forward(input, dropout)).collect::<Result<Vec<_>>>()?;
            all_outputs.extend(outputs.iter().cloned());
            outputs.extend(shared_outputs.iter().cloned());
            task_outputs.push(mix(&outputs, &gate.weights(&self.gate_input.gate_input(input)?)?)?);
        }
        let shared = match &self.shared_gate {
            Some(gate) => {
                all_outputs.extend(shared_outputs);
                let logits = gate.forward(&self.gate_input.gate_input(shared_input)?)?;
                Some(mix(&all_outputs, &candle_nn::ops::softmax(&logits, D::Minus1)?)?)
            }
            None => None,
        };
        Ok((task_outputs, shared))
    }
}
