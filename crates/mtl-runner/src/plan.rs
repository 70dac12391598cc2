//! The plan: an experiment file resolved into trials.
//!
//! A trial is one training run: one strategy, weighting, λ, learning rate and
//! seed over the experiment's tasks. Its key is a hash of every resolved
//! setting, so the same file gives the same keys and a finished trial is
//! recognised when the file is run again.

use crate::data::DataSource;
use mtl_data::SamplingPolicy;
use mtl_model::{ImageStem, InitScheme, Sharing, Strategy, TrunkSpec};
use mtl_store::ParamValue;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A task of the experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSource {
    /// Unique name.
    pub name: String,
    /// Its data.
    pub data: DataSource,
}

/// The network's trunk (the strategy decides how it is shared).
pub type ModelConfig = TrunkSpec;

/// Default trunk: the sequence CNN, 32 channels in, 64 out, images through the conv stem.
pub const DEFAULT_MODEL: ModelConfig = TrunkSpec::Sequence { width: 32, hidden: 64, image_stem: ImageStem::Conv };

fn model_settings(model: &ModelConfig) -> Value {
    match model {
        TrunkSpec::Sequence { width, hidden, image_stem } => json!({
            "trunk": "sequence", "width": width, "hidden": hidden, "image_stem": image_stem_name(*image_stem),
        }),
        TrunkSpec::LeNet => json!({ "trunk": "lenet" }),
        TrunkSpec::TextCnn { width, filters } => json!({ "trunk": "textcnn", "width": width, "filters": filters }),
    }
}

use crate::weighting::Method;

/// Settings every trial of an experiment shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingSettings {
    /// Passes over the largest task.
    pub epochs: u32,
    /// Examples per task per step.
    pub batch_size: usize,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Which tasks contribute to each step.
    pub sampling: SamplingPolicy,
    /// The trunk.
    pub model: ModelConfig,
    /// Dropout before the trunk's last layer, in training.
    pub dropout: f64,
    /// When training diagnostics are measured and logged (they never change the results,
    /// so they are not part of the trial key).
    pub diagnostics: crate::diagnostics::DiagnosticsSettings,
}

/// The swept values, as validated.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepAxes {
    /// Sharing strategies, each with one combination of its hyperparameters.
    pub sharings: Vec<Sharing>,
    /// Loss-weighting methods, each with one combination of its hyperparameters.
    pub weightings: Vec<Method>,
    /// The static weights to try (one trial each under `static` weighting).
    pub static_weights: Vec<StaticWeights>,
    /// Learning rates.
    pub lrs: Vec<f64>,
    /// Initialisation schemes (`[model] init`).
    pub inits: Vec<InitScheme>,
    /// Trial seeds (initialisation and batch order).
    pub seeds: Vec<u64>,
}

/// The loss weights of one static-weighting trial.
#[derive(Clone, Debug, PartialEq)]
pub enum StaticWeights {
    /// `[1, λ, …, λ]`: the seed formula.
    Lambda(f64),
    /// One weight per task, by task name in task order (a per-task grid, a simplex grid or a random sample).
    PerTask(Vec<(String, f64)>),
}

/// One training run of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// Hash of the resolved settings (16 hex digits).
    pub key: String,
    /// Sharing strategy and its hyperparameters.
    pub sharing: Sharing,
    /// Loss weighting.
    pub weighting: Method,
    /// λ; `None` for single-task trials, for methods that set the weights themselves,
    /// and for per-task weights.
    pub lambda: Option<f64>,
    /// Per-task static weights (by task name), when the sweep gave them per task.
    pub task_weights: Option<Vec<(String, f64)>>,
    /// Learning rate.
    pub lr: f64,
    /// Seed of initialisation and batch order.
    pub seed: u64,
    /// How the network's layers draw their initial values.
    pub init: InitScheme,
    /// Shared settings.
    pub settings: TrainingSettings,
    /// Every resolved setting, as canonical JSON (what the key hashes).
    pub settings_json: String,
    /// Hash of the tasks' data settings (8 hex digits): runs on different data differ in it.
    pub data_key: String,
    /// The text tasks that share the experiment's vocabulary ([`crate::data::vocabulary_tasks`]).
    pub vocabulary_tasks: Vec<String>,
}

impl Trial {
    /// Static loss weight of each task: the per-task weights, or `[1, λ, …, λ]` (all 1 without λ).
    pub fn loss_weights(&self, n_tasks: usize) -> Vec<f64> {
        match &self.task_weights {
            Some(weights) => weights.iter().map(|(_, w)| *w).collect(),
            None => (0..n_tasks).map(|t| if t == 0 { 1.0 } else { self.lambda.unwrap_or(1.0) }).collect(),
        }
    }

    /// The settings users filter, group and plot by.
    pub fn params(&self) -> Vec<(String, ParamValue)> {
        let s = &self.settings;
        let mut params = vec![
            ("strategy".to_string(), ParamValue::Text(self.sharing.strategy().name().into())),
            ("weighting".to_string(), ParamValue::Text(self.weighting.name().into())),
            ("lr".to_string(), ParamValue::Num(self.lr)),
            ("seed".to_string(), ParamValue::Num(self.seed as f64)),
            ("epochs".to_string(), ParamValue::Num(s.epochs as f64)),
            ("batch_size".to_string(), ParamValue::Num(s.batch_size as f64)),
            ("weight_decay".to_string(), ParamValue::Num(s.weight_decay)),
            ("sampling".to_string(), ParamValue::Text(sampling_name(&s.sampling))),
            ("dropout".to_string(), ParamValue::Num(s.dropout)),
            ("init".to_string(), ParamValue::Text(self.init.name().into())),
            ("data".to_string(), ParamValue::Text(self.data_key.clone())),
        ];
        match s.model {
            TrunkSpec::Sequence { width, hidden, image_stem } => params.extend([
                ("trunk".to_string(), ParamValue::Text("sequence".into())),
                ("image_stem".to_string(), ParamValue::Text(image_stem_name(image_stem).into())),
                ("width".to_string(), ParamValue::Num(width as f64)),
                ("hidden".to_string(), ParamValue::Num(hidden as f64)),
            ]),
            TrunkSpec::LeNet => params.push(("trunk".to_string(), ParamValue::Text("lenet".into()))),
            TrunkSpec::TextCnn { width, filters } => params.extend([
                ("trunk".to_string(), ParamValue::Text("textcnn".into())),
                ("width".to_string(), ParamValue::Num(width as f64)),
                ("filters".to_string(), ParamValue::Num(filters as f64)),
            ]),
        }
        for (name, value) in self.sharing.hyperparameters().into_iter().chain(self.weighting.hyperparameters()) {
            params.push((name.to_string(), ParamValue::Num(value)));
        }
        if let Some(lambda) = self.lambda {
            params.insert(2, ("lambda".to_string(), ParamValue::Num(lambda)));
        }
        for (task, weight) in self.task_weights.iter().flatten() {
            params.push((format!("weight.{task}"), ParamValue::Num(*weight)));
        }
        if !self.vocabulary_tasks.is_empty() {
            params.push(("vocabulary_tasks".to_string(), ParamValue::Text(self.vocabulary_tasks.join(","))));
        }
        params
    }

    /// A short human label, e.g. `hard λ=0.5 lr=0.001 seed=1` or `mmoe(experts=3) pcgrad lr=0.001 seed=0`.
    pub fn label(&self) -> String {
        let mut lambda = self.lambda.map(|l| format!(" λ={l}")).unwrap_or_default();
        if let Some(weights) = &self.task_weights {
            let shown: Vec<String> = weights.iter().map(|(_, w)| format!("{w:.3}")).collect();
            lambda = format!(" w=[{}]", shown.join(","));
        }
        let weighting = match self.weighting {
            Method::Static => String::new(),
            other => format!(" {}", weighting_label(other)),
        };
        let init = match self.init {
            InitScheme::Framework => String::new(),
            other => format!(" init={}", other.name()),
        };
        format!("{}{weighting}{lambda} lr={}{init} seed={}", self.sharing.label(), self.lr, self.seed)
    }
}

/// A validated experiment: its tasks and every trial to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Experiment name.
    pub experiment: String,
    /// The experiment file's text, as read.
    pub source: String,
    /// Which epoch is each run's result (`result_epoch`; stored with the experiment).
    pub result_epoch: mtl_store::ResultEpoch,
    /// The tasks, in file order (task 1 first).
    pub tasks: Vec<TaskSource>,
    /// Trials in order: strategy, weighting, λ, lr, init, seed.
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
    let vocabulary_tasks: Vec<String> = crate::data::vocabulary_tasks(&tasks).into_iter().map(String::from).collect();
    // Text tasks that share a vocabulary are tokenised differently from each alone: their
    // trials get keys of their own. One text task's keys stay as they were.
    let shared_vocabulary = (vocabulary_tasks.len() > 1).then(|| json!({ "shared_by": vocabulary_tasks }));
    let data_settings = match &shared_vocabulary {
        None => Value::Array(task_settings.clone()),
        Some(vocabulary) => json!({ "tasks": task_settings, "vocabulary": vocabulary }),
    };
    let data_key = hex(&Sha256::digest(data_settings.to_string().as_bytes())[..4]);
    let mut trials = Vec::new();
    for &sharing in &axes.sharings {
        // Single-task trials train each task alone; only static weighting has λ.
        let weightings = match sharing.strategy() {
            Strategy::SingleTask => vec![Method::Static],
            _ => axes.weightings.clone(),
        };
        for &weighting in &weightings {
            let static_weights: Vec<Option<&StaticWeights>> = match (sharing.strategy(), weighting) {
                (Strategy::SingleTask, _) => vec![None],
                (_, Method::Static) => axes.static_weights.iter().map(Some).collect(),
                _ => vec![None],
            };
            for weights in static_weights {
                let (lambda, task_weights) = match weights {
                    Some(StaticWeights::Lambda(lambda)) => (Some(*lambda), None),
                    Some(StaticWeights::PerTask(weights)) => (None, Some(weights.clone())),
                    None => (None, None),
                };
                for &lr in &axes.lrs {
                    for (&init, &seed) in axes.inits.iter().flat_map(|i| axes.seeds.iter().map(move |s| (i, s))) {
                        let mut resolved = json!({
                            "experiment": experiment,
                            "tasks": task_settings,
                            "epochs": settings.epochs,
                            "batch_size": settings.batch_size,
                            "sampling": sampling_name(&settings.sampling),
                            "optimizer": { "name": "adamw", "weight_decay": settings.weight_decay },
                            "model": model_settings(&settings.model),
                            "dropout": settings.dropout,
                            "strategy": sharing.strategy().name(),
                            "weighting": weighting.name(),
                            "lambda": lambda,
                            "lr": lr,
                            "seed": seed,
                        });
                        // Only settings that have hyperparameters add a key, so that the keys of
                        // trials run before there were any stay the same.
                        if let Some(values) = hyperparameter_object(sharing.hyperparameters()) {
                            resolved["sharing"] = values;
                        }
                        if let Some(weights) = &task_weights {
                            resolved["task_weights"] = weights.iter().map(|(_, w)| json!(w)).collect();
                        }
                        if let Some(values) = hyperparameter_object(weighting.hyperparameters()) {
                            resolved["weighting_hyperparameters"] = values;
                        }
                        // Trials run before `init` existed drew as `candle` does: it adds nothing,
                        // so that their keys stay the same.
                        if init != InitScheme::Candle {
                            resolved["init"] = json!(init.name());
                        }
                        if let Some(vocabulary) = &shared_vocabulary {
                            resolved["vocabulary"] = vocabulary.clone();
                        }
                        // serde_json's map is ordered by key, so this text is canonical.
                        let settings_json = resolved.to_string();
                        let key = hex(&Sha256::digest(settings_json.as_bytes())[..8]);
                        let data_key = data_key.clone();
                        trials.push(Trial {
                            key,
                            sharing,
                            weighting,
                            lambda,
                            task_weights: task_weights.clone(),
                            lr,
                            seed,
                            init,
                            settings,
                            settings_json,
                            data_key,
                            vocabulary_tasks: vocabulary_tasks.clone(),
                        });
                    }
                }
            }
        }
    }
    Plan { experiment, source, tasks, trials, result_epoch: mtl_store::ResultEpoch::default() }
}

/// `{name: value, …}`, or nothing when there are no hyperparameters.
fn hyperparameter_object(hyperparameters: Vec<(&'static str, f64)>) -> Option<Value> {
    (!hyperparameters.is_empty()).then(|| {
        Value::Object(hyperparameters.into_iter().map(|(name, value)| (name.to_string(), json!(value))).collect())
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The method's name with its hyperparameters, e.g. `cagrad(c=0.4)`.
pub fn weighting_label(method: Method) -> String {
    let prefix = format!("{}_", method.name().replace('-', "_"));
    let shown: Vec<String> = method
        .hyperparameters()
        .into_iter()
        .map(|(name, value)| format!("{}={value}", name.strip_prefix(&prefix).unwrap_or(name)))
        .collect();
    if shown.is_empty() {
        method.name().to_string()
    } else {
        format!("{}({})", method.name(), shown.join(", "))
    }
}

/// `all`, `proportional` or `temperature=T`.
pub fn sampling_name(policy: &SamplingPolicy) -> String {
    match policy {
        SamplingPolicy::EveryTask => "all".into(),
        SamplingPolicy::Proportional => "proportional".into(),
        SamplingPolicy::Temperature(t) => format!("temperature={t}"),
    }
}

/// `conv` or `rows`.
pub fn image_stem_name(stem: ImageStem) -> &'static str {
    match stem {
        ImageStem::Conv => "conv",
        ImageStem::Rows => "rows",
    }
}
