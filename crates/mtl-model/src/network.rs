//! The multi-task network: modality stems → trunk → one head per task.
//!
//! Both modalities become sequences of `width`-channel vectors, so that one
//! 1-D CNN trunk can serve images and text alike:
//! - an image is read as a sequence of its rows: each row (all channels and
//!   columns) is one step, projected by a width-3 convolution over rows;
//! - a text is its sequence of token embeddings.
//!
//! The trunk is conv(k3) → relu → conv(k3) → relu → max over time → linear →
//! relu: the TextCNN recipe (Kim 2014), shared. Heads are linear layers.
//!
//! | strategy | stems | trunk | heads |
//! |---|---|---|---|
//! | `single-task` | one per task | one per task | one per task |
//! | `hard` | one per modality | one, shared by all tasks | one per task |
//!
//! Parameter names are stable: `stems.<modality>.…`, `trunk.…`, `heads.<task>.…`;
//! under `single-task` the task is appended (`stems.image.digits.…`, `trunk.digits.…`).

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder};

use crate::init::{Parameters, SeededBackend};
use crate::layers::Conv1d;

/// What a task's inputs look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// `channels × height × width` images, read row by row.
    Image {
        /// Channels (1 = grayscale).
        channels: usize,
        /// Rows: the sequence length.
        height: usize,
        /// Columns.
        width: usize,
    },
    /// Padded token id sequences.
    Text {
        /// Number of token ids, padding included.
        vocab_size: usize,
    },
}

impl InputSpec {
    fn modality(&self) -> &'static str {
        match self {
            InputSpec::Image { .. } => "image",
            InputSpec::Text { .. } => "text",
        }
    }
}

/// One task of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    /// Task name; names its head.
    pub name: String,
    /// Its inputs.
    pub input: InputSpec,
    /// Number of classes the head predicts.
    pub n_classes: usize,
}

/// How much of the network the tasks share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strategy {
    /// Independent networks, one per task: the baseline.
    SingleTask,
    /// One shared trunk (and one stem per modality), task-specific heads (Caruana 1993).
    Hard,
}

impl Strategy {
    /// Every strategy, in documentation order.
    pub const ALL: [Strategy; 2] = [Strategy::SingleTask, Strategy::Hard];

    /// The name used in experiment files and the store.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SingleTask => "single-task",
            Strategy::Hard => "hard",
        }
    }

    /// Parses a name given by [`Strategy::name`].
    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The whole architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The tasks, in experiment order.
    pub tasks: Vec<TaskSpec>,
    /// The sharing strategy.
    pub strategy: Strategy,
    /// Channels of the sequence the stems produce.
    pub width: usize,
    /// Channels of the trunk and size of the shared representation.
    pub hidden: usize,
}

enum Stem {
    /// Rows as a sequence: `[B, C, H, W]` → `[B, width, H]`.
    Image { rows: Conv1d },
    /// Tokens as a sequence: `[B, T]` → `[B, width, T]`.
    Text { embedding: Embedding },
}

fn conv_k3(in_channels: usize, out_channels: usize, vb: VarBuilder) -> Result<Conv1d> {
    Conv1d::new(in_channels, out_channels, 3, 1, vb)
}

impl Stem {
    fn new(input: &InputSpec, width: usize, vb: VarBuilder) -> Result<Stem> {
        Ok(match *input {
            InputSpec::Image { channels, width: columns, .. } => {
                Stem::Image { rows: conv_k3(channels * columns, width, vb.pp("rows"))? }
            }
            InputSpec::Text { vocab_size } => {
                Stem::Text { embedding: candle_nn::embedding(vocab_size, width, vb.pp("embedding"))? }
            }
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Stem::Image { rows } => {
                let (batch, channels, height, columns) = xs.dims4()?;
                let sequence = xs.permute((0, 1, 3, 2))?.reshape((batch, channels * columns, height))?;
                rows.forward(&sequence)?.relu()
            }
            Stem::Text { embedding } => embedding.forward(xs)?.transpose(1, 2)?.contiguous(),
        }
    }
}

struct Trunk {
    conv1: Conv1d,
    conv2: Conv1d,
    fc: Linear,
}

impl Trunk {
    fn new(width: usize, hidden: usize, vb: VarBuilder) -> Result<Trunk> {
        Ok(Trunk {
            conv1: conv_k3(width, hidden, vb.pp("conv1"))?,
            conv2: conv_k3(hidden, hidden, vb.pp("conv2"))?,
            fc: candle_nn::linear(hidden, hidden, vb.pp("fc"))?,
        })
    }

    /// `[B, width, T]` → `[B, hidden]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = self.conv1.forward(xs)?.relu()?;
        let xs = self.conv2.forward(&xs)?.relu()?;
        self.fc.forward(&xs.max(D::Minus1)?)?.relu()
    }
}

/// Which stem and trunk a task goes through.
#[derive(Clone, Copy, Debug)]
struct Route {
    stem: usize,
    trunk: usize,
}

/// A multi-task network built from a [`ModelSpec`].
pub struct MultiTaskNet {
    stems: Vec<Stem>,
    trunks: Vec<Trunk>,
    heads: Vec<Linear>,
    routes: Vec<Route>,
}

impl MultiTaskNet {
    /// Builds the network with parameters drawn from `seed`, and returns it
    /// with its trainable variables.
    pub fn new(spec: &ModelSpec, seed: u64, dtype: DType, device: &Device) -> Result<(MultiTaskNet, Parameters)> {
        let backend = Arc::new(SeededBackend::new(seed));
        let vb = backend.builder(dtype, device);
        let (mut stems, mut trunks, mut heads, mut routes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Stems shared per modality under `hard`: remember which input each built stem takes.
        let mut shared_stems: Vec<(&'static str, InputSpec)> = Vec::new();
        for task in &spec.tasks {
            let modality = task.input.modality();
            let route = match spec.strategy {
                Strategy::SingleTask => {
                    stems.push(Stem::new(&task.input, spec.width, vb.pp("stems").pp(modality).pp(&task.name))?);
                    trunks.push(Trunk::new(spec.width, spec.hidden, vb.pp("trunk").pp(&task.name))?);
                    Route { stem: stems.len() - 1, trunk: trunks.len() - 1 }
                }
                Strategy::Hard => {
                    let stem = match shared_stems.iter().position(|(m, _)| *m == modality) {
                        Some(i) if shared_stems[i].1 == task.input => i,
                        Some(i) => candle_core::bail!(
                            "task {} has input {:?}, but the shared {modality} stem takes {:?}",
                            task.name,
                            task.input,
                            shared_stems[i].1
                        ),
                        None => {
                            stems.push(Stem::new(&task.input, spec.width, vb.pp("stems").pp(modality))?);
                            shared_stems.push((modality, task.input));
                            stems.len() - 1
                        }
                    };
                    if trunks.is_empty() {
                        trunks.push(Trunk::new(spec.width, spec.hidden, vb.pp("trunk"))?);
                    }
                    Route { stem, trunk: 0 }
                }
            };
            heads.push(candle_nn::linear(spec.hidden, task.n_classes, vb.pp("heads").pp(&task.name))?);
            routes.push(route);
        }
        Ok((MultiTaskNet { stems, trunks, heads, routes }, backend.parameters()))
    }

    /// The shared representation of a batch of task `task_idx`'s inputs: `[B, hidden]`.
    pub fn representation(&self, task_idx: usize, xs: &Tensor) -> Result<Tensor> {
        let route = self.routes[task_idx];
        self.trunks[route.trunk].forward(&self.stems[route.stem].forward(xs)?)
    }

    /// Logits of task `task_idx` for a batch of its inputs: `[B, n_classes]`.
    /// Images are `[B, C, H, W]` floats, texts `[B, T]` u32 token ids.
    pub fn forward(&self, task_idx: usize, xs: &Tensor) -> Result<Tensor> {
        self.heads[task_idx].forward(&self.representation(task_idx, xs)?)
    }
}

#[cfg(test)]
mod tests;
