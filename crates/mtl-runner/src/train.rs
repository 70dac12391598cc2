//! The training loop of one trial: joint multi-task batches, the weighted
//! loss, AdamW, and per-epoch evaluation of every task on val and test.

use candle_core::{DType, Device, Tensor, Var};

use crate::optim::{EarlyStopper, Optimizer, OptimizerSpec, Schedule};
use mtl_data::augment::ImageAugmenter;
use mtl_data::{Inputs, JointSampler, Rng, Split, Targets, TaskData};

use crate::data::TaskSet;
use crate::diagnostics::Diagnostics;
use crate::step::{update, RepresentationStep, Update};
use mtl_model::{InputSpec, ModelSpec, MultiTaskNet, Parameters, Sharing, TaskSpec, TrunkSpec};
use mtl_store::{DiagnosticPoint, MetricPoint};

use crate::objective::Objective;
use crate::plan::{Plan, Trial};
use crate::threads::ThreadChoice;

/// The largest evaluation batch (no gradients, so larger than training's is fine).
const EVAL_BATCH: usize = 500;

/// Input values of one evaluation batch at most: candle keeps every activation of a
/// forward pass through trained variables until its output is dropped, so a batch of 500
/// photos at 224 px held gigabytes. 2^22 values make 27 photos of 3×224×224, and keep
/// 500 for MNIST, CIFAR and texts.
const EVAL_VALUES: usize = 1 << 22;

/// Pixels of one evaluation batch of a dense task at most: its network keeps maps at the
/// input's resolution (hundreds of values per pixel), so 2^22 input values (891 MultiMNIST-
/// sized 28×56 canvases) held 7.7 GB; 2^16 pixels are 41 such canvases, 5 images of 96×128.
const EVAL_DENSE_PIXELS: usize = 1 << 16;

/// Examples per evaluation batch of `split`: [`EVAL_BATCH`], fewer for large images, for
/// molecular graphs and for dense tasks.
fn eval_batch(split: &Split) -> usize {
    if let Targets::Segments { height, width, .. } | Targets::Maps { height, width, .. } = &split.targets {
        return (EVAL_DENSE_PIXELS / (height * width).max(1)).clamp(1, EVAL_BATCH);
    }
    let per_example = match &split.inputs {
        Inputs::Images { channels, height, width, .. } => channels * height * width,
        // The mpnn keeps an edge-network hidden vector (128) per pair of atoms, each step.
        Inputs::Graphs(graphs) => graphs.max_nodes * graphs.max_nodes * 128,
        _ => 1,
    };
    (EVAL_VALUES / per_example.max(1)).clamp(1, EVAL_BATCH)
}

/// Why a trial stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// candle failed (shapes, memory, …).
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    /// A loss or a gradient became NaN or infinite.
    #[error("diverged: {what} at epoch {epoch}, step {step} (step {global_step} of the run)")]
    Diverged {
        /// What became non-finite, e.g. "task shapes: training loss is NaN".
        what: String,
        /// 1-based epoch.
        epoch: u32,
        /// 1-based step within the epoch.
        step: usize,
        /// 1-based step counted over the whole run.
        global_step: u64,
    },
    /// The user interrupted training (Ctrl-C).
    #[error("interrupted at epoch {epoch}, step {step}")]
    Interrupted {
        /// 1-based epoch.
        epoch: u32,
        /// 1-based step within the epoch.
        step: usize,
    },
    /// The sweep's `[prune]` rule stopped the trial after an epoch ([`crate::prune`]).
    #[error("{reason}")]
    Pruned {
        /// The last epoch trained.
        epoch: u32,
        /// Why, e.g. "pruned at epoch 3: val Δm% −4.10 below the median −0.80 of 12 trials at epoch 3".
        reason: String,
    },
    /// The trial's settings cannot work on these tasks.
    #[error("{0}")]
    Unsupported(String),
    /// The observer asked to stop (e.g. the store could not be written).
    #[error("{0}")]
    Observer(String),
}

/// Receives the progress of a trial.
pub trait TrainObserver {
    /// The network is built and has `n_parameters` trainable parameters.
    fn started(&mut self, _n_parameters: usize) {}
    /// After each optimiser step.
    fn step(&mut self, _epoch: u32, _step: usize, _steps_per_epoch: usize) {}
    /// Asked after each step: true stops training with [`TrainError::Interrupted`].
    fn should_stop(&self) -> bool {
        false
    }
    /// After each epoch's evaluation; an error stops training.
    fn epoch(&mut self, epoch: u32, points: &[MetricPoint]) -> Result<(), String>;
    /// Asked after each epoch is recorded: a reason stops training with [`TrainError::Pruned`].
    fn pruned(&mut self, _epoch: u32) -> Option<String> {
        None
    }
    /// When training ends: `steps` optimiser steps took `seconds` (evaluation not counted).
    fn timing(&mut self, _steps: u64, _seconds: f64) {}
    /// At the end of each diagnostics window (by default each epoch, before its evaluation).
    fn diagnostics(&mut self, _epoch: u32, _step: u64, _points: &[DiagnosticPoint]) -> Result<(), String> {
        Ok(())
    }
}

/// The network architecture a trial trains.
pub fn model_spec(trial: &Trial, tasks: &[TaskData]) -> ModelSpec {
    let tasks = tasks
        .iter()
        .map(|task| {
            let input = match &task.train.inputs {
                Inputs::Images { channels, height, width, .. } => {
                    InputSpec::Image { channels: *channels, height: *height, width: *width }
                }
                Inputs::Tokens { vocab_size, .. } => InputSpec::Text { vocab_size: *vocab_size },
                Inputs::Features { width, embedded, .. } => {
                    InputSpec::Features { size: width - embedded.columns, embedded: *embedded }
                }
                Inputs::Graphs(graphs) => {
                    InputSpec::Graph { node_features: graphs.node_features, max_nodes: graphs.max_nodes }
                }
            };
            TaskSpec { name: task.name.clone(), input, n_classes: task.n_classes() }
        })
        .collect();
    let settings = &trial.settings;
    ModelSpec { tasks, sharing: trial.sharing, trunk: settings.model, dropout: settings.dropout, init: trial.init }
}

/// The tasks `trial` trains on (MultiMNIST images may follow the trial seed).
fn seeded<'a>(trial: &Trial, task_set: &'a TaskSet) -> Result<std::borrow::Cow<'a, TaskSet>, TrainError> {
    task_set
        .for_seed(trial.seed)
        .map_err(|e| TrainError::Unsupported(format!("composing the data for seed {}: {e}", trial.seed)))
}

/// What a batch's images go through before the network sees them (`[augment]`).
enum Transform<'a> {
    /// Nothing: no augmentation, or text.
    None,
    /// Training batches: crop, flip and normalisation, drawing from the trial's stream.
    Augment(&'a ImageAugmenter, &'a mut Rng),
    /// Evaluation batches: normalisation only.
    Normalize(&'a ImageAugmenter),
}

/// The examples at `indices` as one input tensor, images transformed by `transform`.
fn batch_inputs(
    split: &Split,
    indices: &[usize],
    device: &Device,
    transform: Transform,
) -> candle_core::Result<Tensor> {
    let n = indices.len();
    match &split.inputs {
        Inputs::Images { pixels, channels, height, width } => {
            let size = channels * height * width;
            let mut data = Vec::with_capacity(n * size);
            for &i in indices {
                data.extend_from_slice(&pixels[i * size..(i + 1) * size]);
            }
            match transform {
                Transform::None => {}
                Transform::Augment(augmenter, rng) => augmenter.augment_batch(&mut data, rng),
                Transform::Normalize(augmenter) => augmenter.normalize_batch(&mut data),
            }
            Tensor::from_vec(data, (n, *channels, *height, *width), device)
        }
        Inputs::Tokens { ids, seq_len, .. } => {
            let mut data = Vec::with_capacity(n * seq_len);
            for &i in indices {
                data.extend_from_slice(&ids[i * seq_len..(i + 1) * seq_len]);
            }
            Tensor::from_vec(data, (n, *seq_len), device)
        }
        Inputs::Features { values, width, .. } => {
            let data: Vec<f32> = indices.iter().flat_map(|&i| &values[i * width..(i + 1) * width]).copied().collect();
            Tensor::from_vec(data, (n, *width), device)
        }
        Inputs::Graphs(graphs) => {
            let mut data = Vec::with_capacity(n * graphs.example_size());
            for &i in indices {
                graphs.batch_row(i, &mut data);
            }
            Tensor::from_vec(data, (n, graphs.max_nodes, graphs.row_width()), device)
        }
    }
}

/// Each task's [`Objective`], its statistics from `task_set`'s training splits.
fn objectives(task_set: &TaskSet) -> Vec<Objective> {
    task_set.tasks.iter().zip(&task_set.objectives).map(|(task, spec)| Objective::new(task, spec)).collect()
}

/// Builds `trial`'s network and runs one example per input group through it, on this
/// thread: whether it fits the data (e.g. no text shorter than a kernel) is known before
/// any trial trains. Returns the trial's [`ThreadChoice`] for the work a training step
/// would hand to other threads (as [`crate::threads`] counts it: convolutions, pools and
/// the optimiser, not matmuls): that example's forward pass, times 3 for the backward
/// pass, times the batch size.
fn dry_run(trial: &Trial, task_set: &TaskSet) -> Result<ThreadChoice, TrainError> {
    /// Back to the default mode however this ends.
    struct OneThread;
    impl Drop for OneThread {
        fn drop(&mut self) {
            mtl_model::layers::run_on_one_thread(false);
        }
    }
    let task_set = &*seeded(trial, task_set)?;
    let tasks = &task_set.tasks;
    let device = Device::Cpu;
    let (net, params) = MultiTaskNet::new(&model_spec(trial, tasks), trial.seed, DType::F32, &device)?;
    // The weights file and the frozen parts must fit this network too.
    trainable_from_weights(trial, &params)?;
    let _one_thread = OneThread;
    mtl_model::layers::run_on_one_thread(true);
    mtl_model::layers::take_parallel_work();
    // In evaluation mode: batch norm's running statistics stay as they are, and a batch
    // norm after 1×1 maps can run on one example (training needs two values per channel).
    // The work counted leaves out batch norm's training pass (dropout hands none to other
    // threads), so the estimate is the same for trunks without batch norm.
    for group in task_set.input_groups.iter().filter(|g| !tasks[g[0]].train.is_empty()) {
        let xs = batch_inputs(&tasks[group[0]].train, &[0], &device, Transform::None)?;
        for (&task_idx, representation) in group.iter().zip(net.representations(group, &xs)?) {
            net.head(task_idx, &representation)?;
        }
    }
    let forward_per_example = mtl_model::layers::take_parallel_work();
    let work = forward_per_example.saturating_mul(3).saturating_mul(trial.settings.batch_size as u64);
    let steps_per_epoch = sampler(trial, task_set).steps_per_epoch();
    Ok(ThreadChoice::new(work, steps_per_epoch))
}

/// The batches of `trial`'s training split: tasks that share inputs share batches, so the
/// sampler walks input groups.
fn sampler(trial: &Trial, task_set: &TaskSet) -> JointSampler {
    let tasks = &task_set.tasks;
    let group_sizes: Vec<usize> = task_set.input_groups.iter().map(|g| tasks[g[0]].train.len()).collect();
    let rng = Rng::derive(trial.seed, "batches");
    JointSampler::with_policy(&group_sizes, trial.settings.batch_size, trial.settings.sampling, rng)
}

/// Whether each trial keeps to one thread when its first step has too little work to
/// share (the default), or uses the thread pools as they are (where the user chose the
/// thread count, e.g. with `RAYON_NUM_THREADS`).
pub fn choose_threads_by_work(on: bool) {
    mtl_model::layers::choose_threads_by_work(on);
}

/// Whether trials choose their threads by their work (see [`choose_threads_by_work`]).
pub fn threads_by_work_enabled() -> bool {
    mtl_model::layers::threads_by_work()
}

/// Why `trial` cannot train on `task_set`, if it cannot (checked by [`check_plan`] before a
/// sweep starts, and by [`train`] for a trial trained alone, e.g. by a worker).
fn unsupported(trial: &Trial, task_set: &TaskSet) -> Option<String> {
    let method = trial.weighting;
    let one_representation = trial.sharing == Sharing::Hard && task_set.input_groups.len() == 1;
    if method.on_representation() && !one_representation {
        return Some(format!(
            "{} needs every task to read the same inputs through one shared trunk (hard sharing), so that \
             they share one representation (Sener & Koltun 2018); use mgda for the shared parameters",
            method.name()
        ));
    }
    if trial.settings.on_representation(method) && !method.on_representation() {
        if !method.supports_representation() {
            return Some(format!(
                "{} keeps state per gradient coordinate across steps, and the representation's gradient has one \
                 coordinate per example (an epoch's last batch can be smaller): set [weighting] rep_grad = false",
                method.name()
            ));
        }
        if !one_representation {
            return Some(format!(
                "[weighting] rep_grad needs every task to read the same inputs through one shared trunk (hard \
                 sharing), so that they share one representation; {} on this strategy or these tasks cannot use it",
                method.name()
            ));
        }
    }
    let encoder_decoder = matches!(trial.settings.model, TrunkSpec::EncoderDecoder { .. });
    for (task, objective) in task_set.tasks.iter().zip(&task_set.objectives) {
        if let Some(problem) = objective.problem(task) {
            return Some(problem);
        }
        let dense = matches!(task.train.targets, Targets::Segments { .. } | Targets::Maps { .. });
        if dense != encoder_decoder {
            return Some(format!(
                "task {} is {}, and the {} trunk {}: dense tasks (segmentation, depth, normals) need [model] trunk = \"encoder-decoder\", which serves only them",
                task.name,
                task.kind(),
                trial.settings.model.name(),
                if encoder_decoder { "gives per-pixel outputs" } else { "gives one output per example" }
            ));
        }
        let augment = &trial.settings.augment;
        if dense && (augment.crop_padding > 0 || augment.flip) {
            return Some(format!(
                "augment.crop_padding and augment.flip move the pixels of task {}'s images but not its per-pixel targets; leave them off for dense tasks (normalisation is fine)",
                task.name
            ));
        }
        if let Inputs::Images { channels, .. } = task.train.inputs {
            if let Err(message) = trial.settings.augment.check_channels(channels) {
                return Some(format!("augment.normalize: {message} (task {})", task.name));
            }
        }
    }
    let reads_validation = match (&trial.settings.early_stopping, &trial.settings.schedule) {
        (Some(_), _) => Some("early_stopping"),
        (None, crate::optim::ScheduleSpec::ReduceOnPlateau(_)) => Some("the reduce-on-plateau schedule"),
        _ => None,
    };
    if let (Some(what), Some(task)) = (reads_validation, task_set.tasks.iter().find(|t| t.val.is_empty())) {
        return Some(format!(
            "{what} reads the validation score (the mean over tasks of each task's selecting metric on validation), but task {} has no \
             validation split; give it one (val_size > 0; n_val for the synthetic sets)",
            task.name
        ));
    }
    None
}

/// Loads the trial's pretrained weights into `params`, if it has any, and returns the
/// variables the optimiser updates, by name (all but the frozen parts).
fn trainable_from_weights(trial: &Trial, params: &Parameters) -> candle_core::Result<Vec<(String, Var)>> {
    if let Some(weights) = &trial.settings.pretrained {
        let in_file = |e: candle_core::Error| candle_core::Error::Msg(format!("{}: {e}", weights.path.display()));
        // Read on the CPU; each value moves to its variable's device as it is set.
        let file = candle_core::safetensors::load(&weights.path, &Device::Cpu).map_err(in_file)?;
        params.load_pretrained(&file, weights.names).map_err(in_file)?;
    }
    params.trainable(&trial.settings.freeze)
}

/// A trial of a plan that cannot train on the plan's data, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("trial {trial}: {reason}")]
pub struct TrialProblem {
    /// The trial's [`Trial::label`].
    pub trial: String,
    /// Why, e.g. "the model does not fit these tasks: …".
    pub reason: String,
}

/// What the dry runs of [`check_plan`] found about threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanThreads {
    /// Whether some trial's steps may have enough work to share between threads
    /// ([`ThreadChoice::may_share`]); if none may, every trial can keep to one thread.
    pub any_may_share: bool,
}

/// Whether every trial of `plan` fits `task_set` (the plan's tasks, loaded), checked in
/// trial order before any trial trains, so that what does not fit fails at once: image
/// stems shared by tasks of different sizes ([`crate::stems::shared_stem_problem`]), a
/// weighting the sharing cannot have, and each sharing setting's network built and run on
/// one example (a text shorter than a kernel, …). The one place a plan is checked
/// against its data.
pub fn check_plan(plan: &Plan, task_set: &TaskSet) -> Result<PlanThreads, TrialProblem> {
    let mut any_may_share = false;
    let mut seen = std::collections::HashSet::new();
    for trial in &plan.trials {
        let mut reason = crate::stems::shared_stem_problem(trial, &plan.tasks, &task_set.tasks)
            .or_else(|| unsupported(trial, task_set));
        if reason.is_none() && seen.insert(format!("{:?} {:?}", trial.sharing, trial.settings.model)) {
            match dry_run(trial, task_set) {
                Ok(choice) => any_may_share |= choice.may_share(),
                Err(error) => reason = Some(format!("the model does not fit these tasks: {}", plain_message(error))),
            }
        }
        if let Some(reason) = reason {
            return Err(TrialProblem { trial: trial.label(), reason });
        }
    }
    Ok(PlanThreads { any_may_share })
}

/// `error`'s message alone: candle appends a backtrace when RUST_BACKTRACE is set.
pub fn plain_message(error: TrainError) -> String {
    match error {
        TrainError::Model(candle_core::Error::WithBacktrace { inner, .. }) => inner.to_string(),
        TrainError::Model(other) => other.to_string(),
        other => other.to_string(),
    }
}

/// Trains `trial` on `task_set` on `device`, reports every epoch to `observer`, and
/// returns the trained parameters.
pub fn train(
    trial: &Trial,
    task_set: &TaskSet,
    device: &Device,
    observer: &mut dyn TrainObserver,
) -> Result<Parameters, TrainError> {
    let task_set = &*seeded(trial, task_set)?;
    let tasks = &task_set.tasks;
    let device = device.clone();
    let (mut net, params) = MultiTaskNet::new(&model_spec(trial, tasks), trial.seed, DType::F32, &device)?;
    let settings = &trial.settings;
    let trainable = trainable_from_weights(trial, &params)?;
    let trainable_vars = trainable.iter().map(|(_, var)| var.clone()).collect();
    let mut optimizer = Optimizer::new(trainable_vars, &OptimizerSpec { lr: trial.lr, ..settings.optimizer })?;
    let mut schedule = Schedule::new(settings.schedule.clone(), trial.lr);
    let mut stopper = settings.early_stopping.map(|s| s.start());
    observer.started(params.n_parameters());
    let static_weights = trial.loss_weights(tasks.len());
    let groups = &task_set.input_groups;
    let mut sampler = sampler(trial, task_set);
    let mut dropout_rng = Rng::derive(trial.seed, "dropout");
    // An epoch draws as many batches whatever the method; sdmgrad and modo take three a step.
    let draws = trial.weighting.samples_per_step();
    let steps_per_epoch = sampler.steps_per_epoch().div_ceil(draws);

    if let Some(reason) = unsupported(trial, task_set) {
        return Err(TrainError::Unsupported(reason));
    }
    // Each image task's augmentation, resolved on its training split (statistics included).
    let augmenters = tasks
        .iter()
        .map(|task| settings.augment.for_images(&task.train.inputs))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrainError::Unsupported(format!("augment: {e}")))?;
    let mut augment_rng = Rng::derive(trial.seed, "augment");
    let objectives = objectives(task_set);
    let selection = selection(tasks, &objectives);
    // Frozen parameters take no part in gradients, clipping or diagnostics.
    let vars: Vec<Var> = trainable.iter().map(|(_, var)| var.clone()).collect();
    let method = trial.weighting;
    let on_representation = settings.on_representation(method);
    let mut weighter = method.start(tasks.len(), trial.seed);
    let task_names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    let mut diagnostics = Diagnostics::new(settings.diagnostics, task_names);
    let mut global_step = 0u64;
    let mut step_seconds = 0f64;

    // The first step runs on this thread alone and measures the work it could have shared
    // (unless the user chose the thread count).
    let by_work = mtl_model::layers::threads_by_work();
    mtl_model::layers::run_on_one_thread(by_work);
    // Known after the first step, which measures the work it could have shared.
    let mut thread_choice: Option<ThreadChoice> = None;
    mtl_model::layers::take_parallel_work();
    for epoch in 1..=settings.epochs {
        optimizer.set_learning_rate(schedule.lr_at(epoch));
        net.set_epoch(epoch);
        let mut loss_sums = vec![0f64; tasks.len()];
        let mut correct = vec![0usize; tasks.len()];
        let mut seen = vec![0usize; tasks.len()];
        for step in 1..=steps_per_epoch {
            global_step += 1;
            if let Some(choice) = &thread_choice {
                mtl_model::layers::run_on_one_thread(choice.one_thread(step));
            }
            let step_started = std::time::Instant::now();
            // This step's (task, unweighted loss), in the order the sampler gave them, and each
            // task's loss value (read once, here).
            let mut losses: Vec<(usize, Tensor)> = Vec::new();
            let mut loss_values = vec![f64::NAN; tasks.len()];
            // On the representation (mgda-ub, rep_grad): each task's loss gradient with respect
            // to the shared representation, the representation, and each task's loss on a
            // detached copy of it (whose backward reaches the task's head alone).
            let mut representation_gradients: Vec<Vec<f32>> = vec![Vec::new(); tasks.len()];
            let mut on_copy = RepresentationStep::default();
            // sdmgrad and modo draw three batches a step (independent gradient samples): the
            // first's losses in `losses`, the others' in `more_losses`; loss values are their mean.
            let mut more_losses: Vec<Vec<(usize, Tensor)>> = vec![Vec::new(); draws - 1];
            for draw in 0..draws {
                for (group_idx, indices) in sampler.next_step() {
                    let group = &groups[group_idx];
                    let transform = match &augmenters[group[0]] {
                        Some(augmenter) => Transform::Augment(augmenter, &mut augment_rng),
                        None => Transform::None,
                    };
                    let xs = batch_inputs(&tasks[group[0]].train, &indices, &device, transform)?;
                    // One pass of the trunk gives every task of the group its representation.
                    let representations = net.representations_train(group, &xs, &mut dropout_rng)?;
                    if on_representation {
                        // The heads again, on a detached copy of the one shared representation.
                        let shared = Var::from_tensor(&representations[0].detach())?;
                        on_copy.representation = Some(representations[0].clone());
                        for &task_idx in group {
                            let objective = &objectives[task_idx];
                            let outputs = net.head(task_idx, shared.as_tensor())?;
                            let ys = objective.batch_targets(&tasks[task_idx].train, &indices, &device)?;
                            let loss = objective.loss(&outputs, &ys)?;
                            let grads = loss.backward()?;
                            let grad = grads.get(&shared).expect("the head reads the representation");
                            representation_gradients[task_idx] = grad.flatten_all()?.to_vec1::<f32>()?;
                            on_copy.losses.push((task_idx, loss));
                        }
                    }
                    for (&task_idx, representation) in group.iter().zip(&representations) {
                        let (task, objective) = (&tasks[task_idx], &objectives[task_idx]);
                        let outputs = net.head(task_idx, representation)?;
                        let ys = objective.batch_targets(&task.train, &indices, &device)?;
                        let loss = objective.loss(&outputs, &ys)?;
                        let value = loss.to_scalar::<f32>()?;
                        if !value.is_finite() {
                            let what = format!("task {}: training loss is {value}", task.name);
                            return Err(TrainError::Diverged { what, epoch, step, global_step });
                        }
                        loss_sums[task_idx] += value as f64 * indices.len() as f64;
                        seen[task_idx] += indices.len();
                        if objective.counts_correct() {
                            correct[task_idx] += objective.correct(&outputs, &task.train, &indices)?;
                        }
                        if draw == 0 {
                            loss_values[task_idx] = value as f64 / draws as f64;
                            losses.push((task_idx, loss));
                        } else {
                            loss_values[task_idx] += value as f64 / draws as f64;
                            more_losses[draw - 1].push((task_idx, loss));
                        }
                    }
                }
            }
            update(&mut Update {
                method,
                weighter: weighter.as_mut(),
                diagnostics: &mut diagnostics,
                losses: &losses,
                loss_values: &loss_values,
                representation_gradients: &representation_gradients,
                more_losses: &more_losses,
                on_representation,
                on_copy: &on_copy,
                static_weights: &static_weights,
                n_tasks: tasks.len(),
                global_step,
                net: &net,
                vars: &vars,
                optimizer: &mut optimizer,
                clip_norm: settings.clip_norm,
            })?;
            if let Some((var_idx, value)) = optimizer.non_finite_gradient() {
                let name = trainable.get(var_idx).map_or("a parameter", |(name, _)| name.as_str());
                let what = format!("the gradient of {name} has an element {value}");
                return Err(TrainError::Diverged { what, epoch, step, global_step });
            }
            let seconds = step_started.elapsed().as_secs_f64();
            step_seconds += seconds;
            match &mut thread_choice {
                Some(choice) => choice.record(step, seconds),
                None if by_work => {
                    let work = mtl_model::layers::take_parallel_work();
                    thread_choice = Some(ThreadChoice::new(work, steps_per_epoch));
                }
                None => {}
            }
            let last_step = step == steps_per_epoch && epoch == settings.epochs;
            if let Some(points) = diagnostics.window(global_step, step == steps_per_epoch, last_step) {
                observer.diagnostics(epoch, global_step, &points).map_err(TrainError::Observer)?;
            }
            observer.step(epoch, step, steps_per_epoch);
            if observer.should_stop() {
                return Err(TrainError::Interrupted { epoch, step });
            }
        }
        let mean_losses: Vec<f64> = loss_sums.iter().zip(&seen).map(|(sum, &n)| sum / n.max(1) as f64).collect();
        weighter.end_epoch(&mean_losses);

        let mut points = Vec::new();
        for (task_idx, task) in tasks.iter().enumerate() {
            let n = seen[task_idx].max(1) as f64;
            points.push(MetricPoint::new(&task.name, "train", "loss", loss_sums[task_idx] / n));
            if objectives[task_idx].counts_correct() {
                points.push(MetricPoint::new(&task.name, "train", "accuracy", correct[task_idx] as f64 / n));
            }
            for (split_name, split) in [("val", &task.val), ("test", &task.test)] {
                // A split can be empty on purpose (val_size = 0): then it has no metrics.
                if !split.is_empty() {
                    let augmenter = augmenters[task_idx].as_ref();
                    let objective = &objectives[task_idx];
                    points.extend(evaluate(&net, task_idx, task, objective, split_name, split, augmenter, &device)?);
                }
            }
        }
        if let Some(bad) = points.iter().find(|p| !p.value.is_finite()) {
            let what =
                format!("task {}: {} {} is {} after the epoch", bad.key.task, bad.key.split, bad.key.metric, bad.value);
            return Err(TrainError::Diverged { what, epoch, step: steps_per_epoch, global_step });
        }
        observer.epoch(epoch, &points).map_err(TrainError::Observer)?;
        if let Some(reason) = observer.pruned(epoch) {
            observer.timing(global_step, step_seconds);
            return Err(TrainError::Pruned { epoch, reason });
        }
        if let Some(score) = selection.score(points.iter().map(|p| (&p.key, p.value))) {
            // Reduce-on-plateau reads the score; the next epoch starts at the rate it gives.
            schedule.observe(epoch, score);
            if stopper.as_mut().is_some_and(|s: &mut EarlyStopper| s.observe(epoch, score).stop) {
                break;
            }
        }
    }
    observer.timing(global_step, step_seconds);
    Ok(params)
}

/// The loss and the kind's metrics of task `task_idx` on one split.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    net: &MultiTaskNet,
    task_idx: usize,
    task: &TaskData,
    objective: &Objective,
    split_name: &str,
    split: &Split,
    augmenter: Option<&ImageAugmenter>,
    device: &Device,
) -> candle_core::Result<Vec<MetricPoint>> {
    let mut loss_sum = 0f64;
    let mut scorer = objective.scorer();
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(eval_batch(split)) {
        let transform = augmenter.map_or(Transform::None, Transform::Normalize);
        let outputs = net.forward(task_idx, &batch_inputs(split, chunk, device, transform)?)?;
        let loss = objective.loss(&outputs, &objective.batch_targets(split, chunk, device)?)?;
        loss_sum += loss.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        scorer.add(&outputs, split, chunk)?;
    }
    let n = split.len().max(1) as f64;
    let mut points = vec![MetricPoint::new(&task.name, split_name, "loss", loss_sum / n)];
    points.extend(
        scorer.metrics(split).into_iter().map(|(metric, v)| MetricPoint::new(&task.name, split_name, metric, v)),
    );
    Ok(points)
}

/// The rule that picks a run's best epoch, and that early stopping and reduce-on-plateau
/// read: each task's selecting metric on validation ([`Objective::select`]), as the store
/// picks the best epoch ([`mtl_store::Selection`]).
pub fn selection(tasks: &[TaskData], objectives: &[Objective]) -> mtl_store::Selection {
    mtl_store::Selection::new(tasks.iter().zip(objectives).map(|(t, o)| (t.name.clone(), o.select.clone())).collect())
}

/// The selection of `task_set`'s tasks (what `mtl run` records with each run).
pub fn task_set_selection(task_set: &TaskSet) -> mtl_store::Selection {
    selection(&task_set.tasks, &objectives(task_set))
}
