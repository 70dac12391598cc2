//! The plan: an experiment file resolved into trials.
//!
//! A trial is one training run: one strategy, weighting, λ, learning rate and
//! seed over the experiment's tasks. Its key is a hash of every resolved
//! setting, so the same file gives the same keys and a finished trial is
//! recognised when the file is run again.

use mtl_data::synthetic::{ReviewsConfig, ShapesConfig};
use mtl_data::TaskData;
use mtl_model::Strategy;
use mtl_store::ParamValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Where a task's examples come from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The built-in shapes images.
    SyntheticShapes {
        /// Sizes and noise.
        config: ShapesConfig,
        /// Generation seed (fixed per experiment, unlike the trial seed).
        seed: u64,
    },
    /// The built-in review texts.
    SyntheticReviews {
        /// Sizes, length and label noise.
        config: ReviewsConfig,
        /// Generation seed.
        seed: u64,
    },
}

impl DataSource {
    /// `image-classification` or `text-classification`.
    pub fn kind(&self) -> &'static str {
        match self {
            DataSource::SyntheticShapes { .. } => "image-classification",
            DataSource::SyntheticReviews { .. } => "text-classification",
        }
    }

    /// Produces the task's examples.
    pub fn load(&self, task_name: &str) -> TaskData {
        match self {
            DataSource::SyntheticShapes { config, seed } => mtl_data::synthetic::shapes(task_name, config, *seed),
            DataSource::SyntheticReviews { config, seed } => mtl_data::synthetic::reviews(task_name, config, *seed),
        }
    }

    fn settings(&self) -> Value {
        match self {
            DataSource::SyntheticShapes { config, seed } => json!({
                "format": "synthetic-shapes", "n_train": config.n_train, "n_val": config.n_val,
                "n_test": config.n_test, "noise": config.noise, "seed": seed,
            }),
            DataSource::SyntheticReviews { config, seed } => json!({
                "format": "synthetic-reviews", "n_train": config.n_train, "n_val": config.n_val,
                "n_test": config.n_test, "seq_len": config.seq_len, "label_noise": config.label_noise, "seed": seed,
            }),
        }
    }
}

/// A task of the experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSource {
    /// Unique name.
    pub name: String,
    /// Its data.
    pub data: DataSource,
}

/// Sizes of the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    /// Channels of the stems' output sequence.
    pub width: usize,
    /// Trunk channels and shared representation size.
    pub hidden: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { width: 32, hidden: 64 }
    }
}

/// How the task losses are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// `L = L1 + λ·(L2 + … + Ln)`: the seed formula.
    Static,
}

impl Weighting {
    /// Every weighting method.
    pub const ALL: [Weighting; 1] = [Weighting::Static];

    /// The name used in experiment files and the store.
    pub fn name(self) -> &'static str {
        match self {
            Weighting::Static => "static",
        }
    }

    /// Parses a name given by [`Weighting::name`].
    pub fn from_name(name: &str) -> Option<Weighting> {
        Weighting::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// Settings every trial of an experiment shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingSettings {
    /// Passes over the largest task.
    pub epochs: u32,
    /// Examples per task per step.
    pub batch_size: usize,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Network sizes.
    pub model: ModelConfig,
}

/// The swept values, as validated.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepAxes {
    /// Sharing strategies.
    pub strategies: Vec<Strategy>,
    /// Loss-weighting methods.
    pub weightings: Vec<Weighting>,
    /// λ values (weight of tasks 2..n; task 1 has weight 1).
    pub lambdas: Vec<f64>,
    /// Learning rates.
    pub lrs: Vec<f64>,
    /// Trial seeds (initialisation and batch order).
    pub seeds: Vec<u64>,
}

/// One training run of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// Hash of the resolved settings (16 hex digits).
    pub key: String,
    /// Sharing strategy.
    pub strategy: Strategy,
    /// Loss weighting.
    pub weighting: Weighting,
    /// λ; `None` for single-task trials, where it has no meaning.
    pub lambda: Option<f64>,
    /// Learning rate.
    pub lr: f64,
    /// Seed of initialisation and batch order.
    pub seed: u64,
    /// Shared settings.
    pub settings: TrainingSettings,
    /// Every resolved setting, as canonical JSON (what the key hashes).
    pub settings_json: String,
}

impl Trial {
    /// Loss weight of each task: `[1, λ, …, λ]` (all 1 without λ).
    pub fn loss_weights(&self, n_tasks: usize) -> Vec<f64> {
        (0..n_tasks).map(|t| if t == 0 { 1.0 } else { self.lambda.unwrap_or(1.0) }).collect()
    }

    /// The settings users filter, group and plot by.
    pub fn params(&self) -> Vec<(String, ParamValue)> {
        let s = &self.settings;
        let mut params = vec![
            ("strategy".to_string(), ParamValue::Text(self.strategy.name().into())),
            ("weighting".to_string(), ParamValue::Text(self.weighting.name().into())),
            ("lr".to_string(), ParamValue::Num(self.lr)),
            ("seed".to_string(), ParamValue::Num(self.seed as f64)),
            ("epochs".to_string(), ParamValue::Num(s.epochs as f64)),
            ("batch_size".to_string(), ParamValue::Num(s.batch_size as f64)),
            ("width".to_string(), ParamValue::Num(s.model.width as f64)),
            ("hidden".to_string(), ParamValue::Num(s.model.hidden as f64)),
        ];
        if let Some(lambda) = self.lambda {
            params.insert(2, ("lambda".to_string(), ParamValue::Num(lambda)));
        }
        params
    }

    /// A short human label, e.g. `hard λ=0.5 lr=0.001 seed=1`.
    pub fn label(&self) -> String {
        let lambda = self.lambda.map(|l| format!(" λ={l}")).unwrap_or_default();
        format!("{}{lambda} lr={} seed={}", self.strategy.name(), self.lr, self.seed)
    }
}

/// A validated experiment: its tasks and every trial to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Experiment name.
    pub experiment: String,
    /// The experiment file's text, as read.
    pub source: String,
    /// The tasks, in file order (task 1 first).
    pub tasks: Vec<TaskSource>,
    /// Trials in order: strategy, weighting, λ, lr, seed.
    pub trials: Vec<Trial>,
}

/// Expands the sweep axes into trials. λ is only swept for multi-task
/// strategies: a single-task trial appears once per (lr, seed).
pub(crate) fn expand(
    experiment: String,
    source: String,
    tasks: Vec<TaskSource>,
    settings: TrainingSettings,
    axes: SweepAxes,
) -> Plan {
    let task_settings: Vec<Value> =
        tasks.iter().map(|t| json!({ "name": t.name, "kind": t.data.kind(), "data": t.data.settings() })).collect();
    let mut trials = Vec::new();
    for &strategy in &axes.strategies {
        let (weightings, lambdas): (Vec<Weighting>, Vec<Option<f64>>) = match strategy {
            Strategy::SingleTask => (vec![Weighting::Static], vec![None]),
            _ => (axes.weightings.clone(), axes.lambdas.iter().copied().map(Some).collect()),
        };
        for &weighting in &weightings {
            for &lambda in &lambdas {
                for &lr in &axes.lrs {
                    for &seed in &axes.seeds {
                        let resolved = json!({
                            "experiment": experiment,
                            "tasks": task_settings,
                            "epochs": settings.epochs,
                            "batch_size": settings.batch_size,
                            "optimizer": { "name": "adamw", "weight_decay": settings.weight_decay },
                            "model": { "trunk": "cnn1d", "width": settings.model.width, "hidden": settings.model.hidden },
                            "strategy": strategy.name(),
                            "weighting": weighting.name(),
                            "lambda": lambda,
                            "lr": lr,
                            "seed": seed,
                        });
                        // serde_json's map is ordered by key, so this text is canonical.
                        let settings_json = resolved.to_string();
                        let digest = Sha256::digest(settings_json.as_bytes());
                        let key = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                        trials.push(Trial { key, strategy, weighting, lambda, lr, seed, settings, settings_json });
                    }
                }
            }
        }
    }
    Plan { experiment, source, tasks, trials }
}
