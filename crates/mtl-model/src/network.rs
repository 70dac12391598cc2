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
//! For image-only task sets there is also the LeNet trunk of the MultiMNIST
//! literature (Sener & Koltun 2018): conv(C→10, k5) → max-pool 2 → relu →
//! conv(10→20, k5) → max-pool 2 → relu → fc → relu (50); images enter it
//! directly (no stem), and its heads are fc 50→50 → relu → fc 50→classes.
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
use candle_nn::{Conv2d, Embedding, Linear, Module, VarBuilder};

use crate::init::{Parameters, SeededBackend};
use crate::layers::{max_pool2x2, Conv1d};
use mtl_data::Rng;

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

/// The shape of the shared trunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrunkSpec {
    /// Stems turn images and texts into sequences of `width` channels; the
    /// trunk is a 1-D CNN with `hidden` channels and a `hidden`-sized output.
    Sequence {
        /// Channels of the sequence the stems produce.
        width: usize,
        /// Channels of the trunk and size of the shared representation.
        hidden: usize,
        /// How images become sequences.
        image_stem: ImageStem,
    },
    /// The LeNet trunk for images (no stems), representation of size 50.
    LeNet,
}

/// How the sequence trunk's image stem reads an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageStem {
    /// A 5×5 convolution (16 maps) → relu → 2×2 max-pool, then the pooled rows
    /// as a sequence: stronger (MNIST), and slower.
    Conv,
    /// The rows themselves as the sequence: cheapest.
    Rows,
}

/// The whole architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The tasks, in experiment order.
    pub tasks: Vec<TaskSpec>,
    /// The sharing strategy.
    pub strategy: Strategy,
    /// The trunk.
    pub trunk: TrunkSpec,
    /// Probability of zeroing each feature entering the trunk's last layer, in training.
    pub dropout: f64,
}

/// Feature maps of the image stem's 5×5 convolution.
const IMAGE_STEM_MAPS: usize = 16;

/// Size of the LeNet trunk's output.
const LENET_REPRESENTATION: usize = 50;

enum Stem {
    /// The input as it is (the LeNet trunk reads images directly).
    Identity,
    /// Optionally a 5×5 convolution (16 maps, same size) → relu → 2×2 max-pool,
    /// then the rows as a sequence: `[B, C, H, W]` → `[B, width, H or H/2]`.
    Image { local: Option<Conv2d>, rows: Conv1d },
    /// Tokens as a sequence: `[B, T]` → `[B, width, T]`.
    Text { embedding: Embedding },
}

fn conv_k3(in_channels: usize, out_channels: usize, vb: VarBuilder) -> Result<Conv1d> {
    Conv1d::new(in_channels, out_channels, 3, 1, vb)
}

impl Stem {
    fn new(input: &InputSpec, trunk: TrunkSpec, vb: VarBuilder) -> Result<Stem> {
        let TrunkSpec::Sequence { width, image_stem, .. } = trunk else { return Ok(Stem::Identity) };
        Ok(match *input {
            InputSpec::Image { channels, width: columns, .. } => match image_stem {
                ImageStem::Conv => {
                    let config = candle_nn::Conv2dConfig { padding: 2, ..Default::default() };
                    Stem::Image {
                        local: Some(candle_nn::conv2d(channels, IMAGE_STEM_MAPS, 5, config, vb.pp("local"))?),
                        rows: conv_k3(IMAGE_STEM_MAPS * (columns / 2), width, vb.pp("rows"))?,
                    }
                }
                ImageStem::Rows => {
                    Stem::Image { local: None, rows: conv_k3(channels * columns, width, vb.pp("rows"))? }
                }
            },
            InputSpec::Text { vocab_size } => {
                // Small initial embeddings (std 0.1, not candle's 1): with unit-variance vectors the
                // random features of a long text swamp the max over time, and learning starts slowly.
                let init = candle_nn::Init::Randn { mean: 0.0, stdev: 0.1 };
                let table = vb.pp("embedding").get_with_hints((vocab_size, width), "weight", init)?;
                Stem::Text { embedding: Embedding::new(table, width) }
            }
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Stem::Identity => Ok(xs.clone()),
            Stem::Image { local, rows } => {
                let maps = match local {
                    Some(conv) => max_pool2x2(&conv.forward(xs)?.relu()?)?,
                    None => xs.clone(),
                };
                let (batch, channels, height, columns) = maps.dims4()?;
                let sequence = maps.permute((0, 1, 3, 2))?.reshape((batch, channels * columns, height))?;
                rows.forward(&sequence)?.relu()
            }
            Stem::Text { embedding } => embedding.forward(xs)?.transpose(1, 2)?.contiguous(),
        }
    }
}

enum Trunk {
    Sequence { conv1: Conv1d, conv2: Conv1d, fc: Linear },
    LeNet { conv1: Conv2d, conv2: Conv2d, fc: Linear },
}

impl Trunk {
    fn new(spec: TrunkSpec, input: &InputSpec, vb: VarBuilder) -> Result<Trunk> {
        Ok(match (spec, *input) {
            (TrunkSpec::Sequence { width, hidden, .. }, _) => Trunk::Sequence {
                conv1: conv_k3(width, hidden, vb.pp("conv1"))?,
                conv2: conv_k3(hidden, hidden, vb.pp("conv2"))?,
                fc: candle_nn::linear(hidden, hidden, vb.pp("fc"))?,
            },
            (TrunkSpec::LeNet, InputSpec::Image { channels, height, width }) => {
                // Two valid 5×5 convolutions, each followed by a 2×2 pool.
                let side = |n: usize| ((n.saturating_sub(4)) / 2).saturating_sub(4) / 2;
                if side(height) == 0 || side(width) == 0 {
                    candle_core::bail!("the lenet trunk needs images of at least 16×16, got {height}×{width}");
                }
                Trunk::LeNet {
                    conv1: candle_nn::conv2d(channels, 10, 5, Default::default(), vb.pp("conv1"))?,
                    conv2: candle_nn::conv2d(10, 20, 5, Default::default(), vb.pp("conv2"))?,
                    fc: candle_nn::linear(20 * side(height) * side(width), LENET_REPRESENTATION, vb.pp("fc"))?,
                }
            }
            (TrunkSpec::LeNet, InputSpec::Text { .. }) => {
                candle_core::bail!("the lenet trunk reads images only; use the sequence trunk for text tasks")
            }
        })
    }

    /// The stem's output → `[B, representation]`; `dropout` masks the features entering `fc`.
    fn forward(&self, xs: &Tensor, dropout: Option<(f64, &mut Rng)>) -> Result<Tensor> {
        let (features, fc) = match self {
            Trunk::Sequence { conv1, conv2, fc } => {
                let xs = conv1.forward(xs)?.relu()?;
                (conv2.forward(&xs)?.relu()?.max(D::Minus1)?, fc)
            }
            Trunk::LeNet { conv1, conv2, fc } => {
                let xs = max_pool2x2(&conv1.forward(xs)?)?.relu()?;
                (max_pool2x2(&conv2.forward(&xs)?)?.relu()?.flatten_from(1)?, fc)
            }
        };
        let features = match dropout {
            Some((p, rng)) if p > 0.0 => {
                // Inverted dropout with a mask from mtl-lab's seeded generator (candle's cannot be seeded).
                let keep: Vec<f32> = (0..features.elem_count())
                    .map(|_| if rng.chance(p) { 0.0 } else { (1.0 / (1.0 - p)) as f32 })
                    .collect();
                let mask = Tensor::from_vec(keep, features.shape(), features.device())?.to_dtype(features.dtype())?;
                (features * mask)?
            }
            _ => features,
        };
        fc.forward(&features)?.relu()
    }
}

impl TrunkSpec {
    /// Size of the shared representation the heads read.
    pub fn representation(&self) -> usize {
        match self {
            TrunkSpec::Sequence { hidden, .. } => *hidden,
            TrunkSpec::LeNet => LENET_REPRESENTATION,
        }
    }
}

/// A task's head: linear, or (LeNet) linear → relu → linear.
enum Head {
    Linear(Linear),
    Mlp(Linear, Linear),
}

impl Head {
    fn new(spec: TrunkSpec, n_classes: usize, vb: VarBuilder) -> Result<Head> {
        let input = spec.representation();
        Ok(match spec {
            TrunkSpec::Sequence { .. } => Head::Linear(candle_nn::linear(input, n_classes, vb)?),
            TrunkSpec::LeNet => Head::Mlp(
                candle_nn::linear(input, LENET_REPRESENTATION, vb.pp("fc1"))?,
                candle_nn::linear(LENET_REPRESENTATION, n_classes, vb.pp("fc2"))?,
            ),
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Head::Linear(fc) => fc.forward(xs),
            Head::Mlp(fc1, fc2) => fc2.forward(&fc1.forward(xs)?.relu()?),
        }
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
    heads: Vec<Head>,
    routes: Vec<Route>,
    dropout: f64,
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
                    stems.push(Stem::new(&task.input, spec.trunk, vb.pp("stems").pp(modality).pp(&task.name))?);
                    trunks.push(Trunk::new(spec.trunk, &task.input, vb.pp("trunk").pp(&task.name))?);
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
                            stems.push(Stem::new(&task.input, spec.trunk, vb.pp("stems").pp(modality))?);
                            shared_stems.push((modality, task.input));
                            stems.len() - 1
                        }
                    };
                    if trunks.is_empty() {
                        trunks.push(Trunk::new(spec.trunk, &task.input, vb.pp("trunk"))?);
                    }
                    Route { stem, trunk: 0 }
                }
            };
            heads.push(Head::new(spec.trunk, task.n_classes, vb.pp("heads").pp(&task.name))?);
            routes.push(route);
        }
        Ok((MultiTaskNet { stems, trunks, heads, routes, dropout: spec.dropout }, backend.parameters()))
    }

    /// The shared representation of a batch of task `task_idx`'s inputs: `[B, hidden]` (evaluation: no dropout).
    pub fn representation(&self, task_idx: usize, xs: &Tensor) -> Result<Tensor> {
        let route = self.routes[task_idx];
        self.trunks[route.trunk].forward(&self.stems[route.stem].forward(xs)?, None)
    }

    /// The representation in training: with the spec's dropout, masks drawn from `rng`.
    pub fn representation_train(&self, task_idx: usize, xs: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        let route = self.routes[task_idx];
        self.trunks[route.trunk].forward(&self.stems[route.stem].forward(xs)?, Some((self.dropout, rng)))
    }

    /// Tasks with equal keys compute the same representation of the same input
    /// (same stem and trunk), so it can be computed once for all of them.
    pub fn representation_key(&self, task_idx: usize) -> (usize, usize) {
        let route = self.routes[task_idx];
        (route.stem, route.trunk)
    }

    /// Logits of task `task_idx` from a representation computed by [`MultiTaskNet::representation`].
    pub fn head(&self, task_idx: usize, representation: &Tensor) -> Result<Tensor> {
        self.heads[task_idx].forward(representation)
    }

    /// Logits of task `task_idx` for a batch of its inputs: `[B, n_classes]`.
    /// Images are `[B, C, H, W]` floats, texts `[B, T]` u32 token ids.
    pub fn forward(&self, task_idx: usize, xs: &Tensor) -> Result<Tensor> {
        self.heads[task_idx].forward(&self.representation(task_idx, xs)?)
    }
}

#[cfg(test)]
mod tests;
