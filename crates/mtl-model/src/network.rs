//! The multi-task network: modality stems → trunk → one head per task.
//!
//! Both modalities become sequences of `width`-channel vectors, so that one
//! 1-D CNN trunk can serve images and text alike:
//! - an image is read as a sequence of its rows: each row (all channels and
//!   columns) is one step, projected by a width-3 convolution over rows;
//! - a text is its sequence of token embeddings.
//!
//! The trunk is conv(k3) → relu → conv(k3) → relu → max over time → linear →
//! relu: the TextCNN recipe (Kim 2014). Heads are linear layers.
//!
//! For text-only task sets there is TextCNN (Kim 2014): embeddings → convolutions of widths
//! 3, 4, 5 → relu → max over time, concatenated → dropout; its heads are linear.
//!
//! For image-only task sets there is also the LeNet trunk of the MultiMNIST
//! literature (Sener & Koltun 2018): conv(C→10, k5) → max-pool 2 → relu →
//! conv(10→20, k5) → max-pool 2 → relu → fc → relu (50); images enter it
//! directly (no stem), and its heads are fc 50→50 → relu → fc 50→classes.
//!
//! The backbones of issue 18, each with linear heads: ResNet-18 and -34 (`resnet`: the
//! image stem is its conv → bn → relu (→ max-pool), the text stem lays token embeddings
//! out as a one-row map, and both go through the same four stages; batch norm on batch
//! statistics in training, on its running statistics in evaluation), a pre-norm
//! Transformer encoder and an LSTM or GRU for text (`text_encoders`: the text stem embeds
//! the tokens; the blocks read the batch's padding mask), and an MLP for numeric feature
//! vectors ([`InputSpec::Features`]). Images and text together need the sequence trunk
//! or a ResNet; the others read one modality.
//!
//! ## Sharing strategies
//! The strategy decides what the tasks share between the stems and the heads.
//! Stems are per modality under every strategy but `single-task`, so with
//! images and text (multi-input) the image task and the text task meet only in
//! the trunk; tasks that read the same inputs (MultiMNIST) share one batch,
//! and the trunk computes every task's representation of it in one pass.
//! Each trunk is a list of blocks ([`TrunkSpec::block_names`]: `conv1`, `conv2`, `fc` for
//! the first three; ResNet's four stages; a Transformer layer each; see `blocks`), and the
//! strategies act between them.
//!
//! | strategy | stems | trunk | with images + text | parameters |
//! |---|---|---|---|---|
//! | `single-task` | per task | one per task | independent networks | `stems.<m>.<task>.…`, `trunk.<task>.…` |
//! | `hard` | per modality | one, shared | both inputs through one trunk | `trunk.conv1.…` |
//! | `soft` | per modality | one per task, L2 penalty on their differences | each input through its task's trunk; the penalty couples them | `trunk.<task>.…` |
//! | `cross-stitch` | per modality | one per task, mixed by α after each block | an input runs through every column (the mixing needs all), its task reads its own | `trunk.<task>.…`, `trunk.stitch.<block>` |
//! | `mmoe` | per modality | shared experts, a softmax gate per task | gates read the input, so they can route images and text to different experts | `trunk.level1.shared.<e>.…`, `trunk.level1.gates.<task>.…` |
//! | `dselect-k` | per modality | shared experts, a DSelect-k gate per task (`dselect`) | as `mmoe` | `trunk.level1.gates.<task>.codes.…`, `….selectors.…` |
//! | `cgc` | per modality | shared and per-task experts, a gate per task | as `mmoe`, plus experts only one task trains | `trunk.level1.tasks.<task>.<e>.…` |
//! | `ple` | per modality | CGC levels over block ranges, shared gates between them | as `cgc` | `trunk.level<k>.…`, `trunk.level<k>.shared_gate.…` |
//! | `mtan` | per modality | one shared, per-task attention masks after each block | masks chosen per task on either input | `trunk.…`, `trunk.attention.<task>.<block>.…` |
//! | `ltb` | per modality | one per task, each block's copies picking a parent copy by Gumbel-softmax after each block (`branching`) | as `cross-stitch` in training; in evaluation only the argmax tree's paths | `trunk.<task>.…`, `trunk.branch.<block>` |
//!
//! References: hard sharing (Caruana 1993), soft sharing (Duong et al. 2015),
//! cross-stitch units (Misra et al. 2016), MMoE (Ma et al. 2018), DSelect-k (Hazimeh et
//! al. 2021), CGC and PLE (Tang et al. 2020), MTAN (Liu et al. 2019), Learning To Branch
//! (Guo et al. 2020). Where a paper's architecture
//! had to be fitted to these trunks:
//! - gates read the stem output averaged over time (sequences) or flattened (images;
//!   ResNet's maps averaged over positions);
//! - experts are whole trunks (or, under `ple`, the blocks of their level);
//! - MTAN's mask for block j reads the shared features after block j and, from block 2 on,
//!   the task's attended features of block j−1 passed through the shared block j (the
//!   paper's shared alignment layer), through a 1×1 linear map and a sigmoid.
//!
//! Parameter names are stable: `stems.<modality>.…`, `trunk.…`, `heads.<task>.…`;
//! checkpoints add each batch norm's `running_mean` and `running_var` ([`Parameters`]).

mod blocks;
mod branching;
mod dselect;
mod mpnn;
pub(crate) mod resnet;
mod sharing;
mod spec;
mod stem;
mod text_encoders;
mod trunk_spec;

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use crate::init::{Parameters, SeededBackend};
use blocks::Head;
pub(crate) use blocks::{Dropout, NamedBatchNorm};
use mtl_data::Rng;
use sharing::Trunk;
pub use spec::{InputSpec, ModelSpec, Sharing, Strategy, TaskSpec};
use stem::Stem;
pub(crate) use trunk_spec::resnet_channels;
pub use trunk_spec::{ImageStem, ResNetDepth, ResNetStem, TrunkSpec};
use trunk_spec::{LENET_REPRESENTATION, TEXTCNN_WIDTHS};

/// A multi-task network built from a [`ModelSpec`].
pub struct MultiTaskNet {
    stems: Vec<Stem>,
    /// The stem each task's inputs go through.
    stem_of_task: Vec<usize>,
    /// Each stem's stream: the index of its modality among the network's (see [`streams`]).
    stream_of_stem: Vec<usize>,
    trunk: Trunk,
    heads: Vec<Head>,
    dropout: f64,
    /// `soft`: the penalty weight and, per task, its trunk column's variables in name order.
    soft: Option<(f64, Vec<Vec<Tensor>>)>,
    /// Whether the trunk's blocks read the padding mask of texts (Transformer, recurrent).
    reads_padding: bool,
}

impl MultiTaskNet {
    /// Builds the network with parameters drawn from `seed`, and returns it
    /// with its trainable variables.
    pub fn new(spec: &ModelSpec, seed: u64, dtype: DType, device: &Device) -> Result<(MultiTaskNet, Parameters)> {
        if let Err(message) = spec.sharing.validate_for(&spec.trunk) {
            candle_core::bail!("{message}");
        }
        if spec.tasks.is_empty() {
            candle_core::bail!("a model needs at least one task");
        }
        // Every task's input must suit the trunk (the trunk is built for the first task's).
        for task in &spec.tasks {
            blocks::boundaries(spec.trunk, &task.input)?;
        }
        let backend = Arc::new(SeededBackend::new(seed));
        let vb = backend.builder(dtype, device);
        let per_task_stems = spec.sharing == Sharing::SingleTask;
        let mut stems = Vec::new();
        let mut stem_of_task = Vec::new();
        // Stems shared per modality: the input each built stem takes.
        let mut stem_inputs: Vec<InputSpec> = Vec::new();
        for task in &spec.tasks {
            let modality = task.input.modality();
            let shared = stem_inputs.iter().position(|input| input.modality() == modality);
            let index = match shared {
                Some(i) if !per_task_stems && stem_inputs[i] == task.input => i,
                Some(i) if !per_task_stems => candle_core::bail!(
                    "task {} has input {:?}, but the shared {modality} stem takes {:?}",
                    task.name,
                    task.input,
                    stem_inputs[i]
                ),
                _ => {
                    let vb = vb.pp("stems").pp(modality);
                    let vb = if per_task_stems { vb.pp(&task.name) } else { vb };
                    stems.push(Stem::new(&task.input, spec.trunk, spec.init, vb)?);
                    stem_inputs.push(task.input);
                    stems.len() - 1
                }
            };
            stem_of_task.push(index);
        }
        if matches!(spec.trunk, TrunkSpec::LeNet) && !per_task_stems {
            if let Some(other) = spec.tasks.iter().find(|t| t.input != spec.tasks[0].input) {
                candle_core::bail!(
                    "a shared lenet trunk needs one image size, but {} has {:?} and {} has {:?}",
                    spec.tasks[0].name,
                    spec.tasks[0].input,
                    other.name,
                    other.input
                );
            }
        }
        let trunk = Trunk::new(spec.sharing, spec.trunk, &spec.tasks, spec.init, vb.pp("trunk"))?;
        let heads = spec
            .tasks
            .iter()
            .map(|task| Head::new(spec.trunk, task.n_classes, spec.init, vb.pp("heads").pp(&task.name)))
            .collect::<Result<_>>()?;
        // Trunk batch norms keep running statistics per modality (`layers::batchnorm`):
        // stream 0 under the batch norm's own name, stream k under `<name>.<modality>`.
        let modalities = streams(&spec.tasks);
        let mut running: Vec<_> = stems.iter().filter_map(Stem::batch_norm).map(|n| (n.name, n.norm)).collect();
        for norm in trunk.batch_norms() {
            norm.norm.set_streams(modalities.len())?;
            for (stream, modality) in modalities.iter().enumerate() {
                let name = if stream == 0 { norm.name.clone() } else { format!("{}.{modality}", norm.name) };
                running.push((name, norm.norm.for_stream(stream)));
            }
        }
        let stream_of_stem = stem_inputs
            .iter()
            .map(|input| modalities.iter().position(|m| *m == input.modality()).unwrap_or(0))
            .collect();
        let parameters = backend.parameters().with_running_stats(running);
        if let Sharing::CrossStitch { init } = spec.sharing {
            for (name, var) in parameters.named().filter(|(name, _)| name.starts_with("trunk.stitch.")) {
                // Built constant (drawing nothing from the generator); the values are set here.
                let n = var.dim(0)?;
                let other = sharing::stitch_off_diagonal(init, n);
                let values: Vec<f64> = (0..n * n).map(|i| if i / n == i % n { init } else { other }).collect();
                let alpha = Tensor::from_vec(values, (n, n), device)?.to_dtype(dtype)?;
                var.set(&alpha).map_err(|e| e.context(format!("initialising {name}")))?;
            }
        }
        let soft = match spec.sharing {
            Sharing::Soft { weight } => {
                let columns = spec
                    .tasks
                    .iter()
                    .map(|task| {
                        let prefix = format!("trunk.{}.", task.name);
                        parameters
                            .named()
                            .filter(|(name, _)| name.starts_with(&prefix))
                            .map(|(_, var)| var.as_tensor().clone())
                            .collect()
                    })
                    .collect();
                Some((weight, columns))
            }
            _ => None,
        };
        let reads_padding = matches!(spec.trunk, TrunkSpec::Transformer { .. } | TrunkSpec::Recurrent { .. });
        let net = MultiTaskNet {
            stems,
            stem_of_task,
            stream_of_stem,
            trunk,
            heads,
            dropout: spec.dropout,
            soft,
            reads_padding,
        };
        Ok((net, parameters))
    }

    fn representations_with(&self, tasks: &[usize], xs: &Tensor, dropout: &mut Dropout) -> Result<Vec<Tensor>> {
        let mut representations: Vec<Option<Tensor>> = vec![None; tasks.len()];
        // Each stem runs once; the trunk then serves every task of that stem in one pass.
        for (position, &task) in tasks.iter().enumerate() {
            if representations[position].is_some() {
                continue;
            }
            let stem = self.stem_of_task[task];
            let (positions, same_stem): (Vec<usize>, Vec<usize>) =
                tasks.iter().enumerate().filter(|(_, &t)| self.stem_of_task[t] == stem).map(|(p, &t)| (p, t)).unzip();
            dropout.set_keep(self.stems[stem].keep(xs, self.reads_padding)?);
            dropout.set_stream(self.stream_of_stem[stem]);
            let stemmed = self.stems[stem].forward(xs, dropout)?;
            let outputs = self.trunk.forward(&stemmed, &same_stem, dropout)?;
            for (p, output) in positions.into_iter().zip(outputs) {
                representations[p] = Some(output);
            }
        }
        Ok(representations.into_iter().map(|r| r.expect("every task computed")).collect())
    }

    /// The representations `[B, r]` of `tasks` (indices into the spec's tasks), which all
    /// read the batch `xs`, one per task in order (evaluation: no dropout, batch norm on
    /// its running statistics, which stay as they are).
    pub fn representations(&self, tasks: &[usize], xs: &Tensor) -> Result<Vec<Tensor>> {
        self.representations_with(tasks, xs, &mut Dropout::off())
    }

    /// The representations in training: with the spec's dropout, masks drawn from `rng`;
    /// batch norm on the batch statistics, moving its running statistics.
    pub fn representations_train(&self, tasks: &[usize], xs: &Tensor, rng: &mut Rng) -> Result<Vec<Tensor>> {
        self.representations_with(tasks, xs, &mut Dropout::new(self.dropout, rng))
    }

    /// The representation of one task (evaluation).
    pub fn representation(&self, task_idx: usize, xs: &Tensor) -> Result<Tensor> {
        Ok(self.representations(&[task_idx], xs)?.remove(0))
    }

    /// Logits of task `task_idx` from its representation.
    pub fn head(&self, task_idx: usize, representation: &Tensor) -> Result<Tensor> {
        self.heads[task_idx].forward(representation)
    }

    /// Logits of task `task_idx` for a batch of its inputs: `[B, n_classes]`.
    /// Images are `[B, C, H, W]` floats, texts `[B, T]` u32 token ids.
    pub fn forward(&self, task_idx: usize, xs: &Tensor) -> Result<Tensor> {
        self.heads[task_idx].forward(&self.representation(task_idx, xs)?)
    }

    /// Tells the network which training epoch (from 1) the next training passes belong to:
    /// `ltb` anneals its Gumbel-softmax temperature by it; other strategies ignore it.
    pub fn set_epoch(&mut self, epoch: u32) {
        if let Trunk::Branching(branching) = &mut self.trunk {
            branching.set_epoch(epoch);
        }
    }

    /// The strategy's own term of the loss, if it has one: under `soft`,
    /// `weight · Σ_{t<u} Σ_params ‖θ_t − θ_u‖²` over the tasks' trunk columns.
    pub fn penalty(&self) -> Result<Option<Tensor>> {
        let Some((weight, columns)) = &self.soft else { return Ok(None) };
        let mut total: Option<Tensor> = None;
        for t in 0..columns.len() {
            for u in t + 1..columns.len() {
                for (a, b) in columns[t].iter().zip(&columns[u]) {
                    let term = (a - b)?.sqr()?.sum_all()?;
                    total = Some(match total {
                        Some(sum) => (sum + term)?,
                        None => term,
                    });
                }
            }
        }
        total.map(|sum| sum * *weight).transpose()
    }
}

/// The modalities the tasks read, in a fixed order (images, text, features): the streams
/// of running statistics that the trunk's batch norms keep.
fn streams(tasks: &[TaskSpec]) -> Vec<&'static str> {
    let present: Vec<&str> = tasks.iter().map(|task| task.input.modality()).collect();
    ["image", "text", "features"].into_iter().filter(|m| present.contains(m)).collect()
}

#[cfg(test)]
mod backbone_tests;
#[cfg(test)]
mod dense_trunk_tests;
#[cfg(test)]
mod strategy_tests;
#[cfg(test)]
mod table_stem_tests;
#[cfg(test)]
mod tests;
