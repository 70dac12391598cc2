//! The plan: an experiment file resolved into trials.
//!
//! A trial is one training run: one strategy, weighting, λ, learning rate and
//! seed over the experiment's tasks. Its key is a hash of every resolved
//! setting, so the same file gives the same keys and a finished trial is
//! recognised when the file is run again.

use mtl_data::augment::Augmentation;
use mtl_data::SamplingPolicy;
use mtl_model::{ImageStem, InitScheme, Sharing, Strategy, TrunkSpec};
use mtl_store::ParamValue;
use serde_json::{json, Value};

pub use crate::data::TaskSource;

mod record;
use record::{
    augment_params, augment_settings, backbone_params, hyperparameter_object, model_settings,
    optimizer_hyperparameters, optimizer_settings, task_settings,
};
pub use record::{image_stem_name, sampling_name, weighting_label};

/// The network's trunk (the strategy decides how it is shared).
pub type ModelConfig = TrunkSpec;

/// Default trunk: the sequence CNN, 32 channels in, 64 out, images through the conv stem.
pub const DEFAULT_MODEL: ModelConfig = TrunkSpec::Sequence { width: 32, hidden: 64, image_stem: ImageStem::Conv };

use crate::optim::{EarlyStopping, OptimizerKind, OptimizerSpec, ScheduleSpec};
use crate::weighting::Method;

/// The training settings of a trial (the same for every trial of an experiment unless
/// the file sweeps them).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingSettings {
    /// Passes over the largest task (the most: early stopping may end a trial sooner).
    pub epochs: u32,
    /// Examples per task per step.
    pub batch_size: usize,
    /// The update rule and its settings; its `lr` is ignored (each trial has its own).
    pub optimizer: OptimizerSpec,
    /// The largest global L2 norm of the gradient before each step (`None`: no clipping).
    pub clip_norm: Option<f64>,
    /// The learning rate per epoch.
    pub schedule: ScheduleSpec,
    /// Stop when the validation score stops improving.
    pub early_stopping: Option<EarlyStopping>,
    /// Weights the ResNet trunk starts from.
    pub pretrained: Option<PretrainedWeights>,
    /// Parts of the network the optimiser leaves alone (segments of parameter names).
    pub freeze: Vec<String>,
    /// Which tasks contribute to each step.
    pub sampling: SamplingPolicy,
    /// The trunk.
    pub model: ModelConfig,
    /// Dropout before the trunk's last layer, in training.
    pub dropout: f64,
    /// Crop, flip and normalisation of image tasks' batches (off by default).
    pub augment: Augmentation,
    /// When training diagnostics are measured and logged (they never change the results,
    /// so they are not part of the trial key).
    pub diagnostics: crate::diagnostics::DiagnosticsSettings,
    /// Gradient methods act on the gradient of the shared representation instead of the
    /// shared parameters' (`[weighting] rep_grad`; see [`TrainingSettings::on_representation`]).
    pub rep_grad: bool,
    /// A program of the user's own that each trial runs instead of mtl-lab's training.
    pub trainer: Option<crate::command::CommandTrainer>,
}

/// The swept values, as validated.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepAxes {
    /// Sharing strategies, each with one combination of its hyperparameters.
    pub sharings: Vec<Sharing>,
    /// Loss-weighting methods, each with one combination of its hyperparameters.
    pub weightings: Vec<Method>,
    /// The static weights to try (one trial each under `static` weighting).
    pub static_weights: WeightSpace,
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

/// The static weights a sweep asks for (`sweep.lambda`), as validated: [`WeightSpace::expand`]
/// generates the weight vectors, one trial each.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightSpace {
    /// A list of λ (the seed formula).
    Lambdas(Vec<f64>),
    /// Per-task lists of weights, one list per task in task order (`[1.0]` for a task not
    /// listed): their product.
    PerTask(Vec<Vec<f64>>),
    /// Every weight vector whose entries are multiples of `total / steps` and sum to `total`.
    Simplex {
        /// K: the grid's steps.
        steps: usize,
        /// What each vector sums to.
        total: f64,
    },
    /// `samples` vectors: task 1 keeps weight 1, tasks 2..n get λ drawn log-uniformly from
    /// `[low, high]` with the stream `lambda-search` of `seed`.
    Random {
        /// How many vectors.
        samples: usize,
        /// Lower bound (> 0).
        low: f64,
        /// Upper bound (> low).
        high: f64,
        /// Seed of the draws.
        seed: u64,
    },
}

impl WeightSpace {
    /// The weight vectors over tasks `task_names`, in sweep order.
    pub fn expand(&self, task_names: &[String]) -> Vec<StaticWeights> {
        let named = |weights: Vec<f64>| StaticWeights::PerTask(task_names.iter().cloned().zip(weights).collect());
        let n = task_names.len();
        match self {
            WeightSpace::Lambdas(lambdas) => lambdas.iter().map(|&l| StaticWeights::Lambda(l)).collect(),
            WeightSpace::Simplex { steps, total } => {
                let steps = *steps;
                let mut grid: Vec<Vec<usize>> = vec![Vec::new()];
                for t in 0..n {
                    grid = grid
                        .into_iter()
                        .flat_map(|prefix| {
                            let used: usize = prefix.iter().sum();
                            let choices: Vec<usize> =
                                if t + 1 == n { vec![steps - used] } else { (0..=steps - used).collect() };
                            choices.into_iter().map(move |k| prefix.iter().copied().chain([k]).collect::<Vec<_>>())
                        })
                        .collect();
                }
                grid.into_iter()
                    .map(|ks| named(ks.iter().map(|&k| total * k as f64 / steps as f64).collect()))
                    .collect()
            }
            WeightSpace::Random { samples, low, high, seed } => {
                let mut rng = mtl_data::Rng::derive(*seed, "lambda-search");
                (0..*samples)
                    .map(|_| {
                        named((0..n).map(|t| if t == 0 { 1.0 } else { rng.range(low.ln(), high.ln()).exp() }).collect())
                    })
                    .collect()
            }
            WeightSpace::PerTask(lists) => {
                let mut combinations: Vec<Vec<f64>> = vec![Vec::new()];
                for values in lists {
                    combinations = combinations
                        .into_iter()
                        .flat_map(|prefix| values.iter().map(move |&v| prefix.iter().copied().chain([v]).collect()))
                        .collect();
                }
                combinations.into_iter().map(named).collect()
            }
        }
    }
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
    /// Static loss weights (λ or per task); `None` for single-task trials and for methods
    /// that set the weights themselves.
    pub static_weights: Option<StaticWeights>,
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
    /// The settings `[sweep]` varies beside the axes, with this trial's values (dotted
    /// path, value as shown), for its label.
    pub swept: Vec<(String, String)>,
    /// Recorded after the settings' own params: a search trial's `search_index` and
    /// `search_point`.
    pub extra_params: Vec<(String, ParamValue)>,
}

impl Trial {
    /// Static loss weight of each task: the per-task weights, or `[1, λ, …, λ]` (all 1 without λ).
    pub fn loss_weights(&self, n_tasks: usize) -> Vec<f64> {
        match &self.static_weights {
            Some(StaticWeights::PerTask(weights)) => weights.iter().map(|(_, w)| *w).collect(),
            _ => (0..n_tasks).map(|t| if t == 0 { 1.0 } else { self.lambda().unwrap_or(1.0) }).collect(),
        }
    }

    /// λ, when the trial's static weights are the seed formula.
    pub fn lambda(&self) -> Option<f64> {
        match self.static_weights {
            Some(StaticWeights::Lambda(lambda)) => Some(lambda),
            _ => None,
        }
    }

    /// The per-task static weights (by task name), when the sweep gave them per task.
    pub fn task_weights(&self) -> Option<&[(String, f64)]> {
        match &self.static_weights {
            Some(StaticWeights::PerTask(weights)) => Some(weights),
            _ => None,
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
            ("weight_decay".to_string(), ParamValue::Num(s.optimizer.weight_decay)),
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
            _ => params.extend(backbone_params(&s.model)),
        }
        for (name, value) in self.sharing.hyperparameters().into_iter().chain(self.weighting.hyperparameters()) {
            params.push((name.to_string(), ParamValue::Num(value)));
        }
        if s.rep_grad && self.weighting.needs_gradients() && !self.weighting.on_representation() {
            params.push(("rep_grad".to_string(), ParamValue::Num(1.0)));
        }
        // Settings at their defaults add nothing, so that runs from before they existed
        // group with new seeds of the same settings.
        if !s.optimizer_is_default() {
            params.push(("optimizer".to_string(), ParamValue::Text(s.optimizer.name().into())));
            params.extend(optimizer_hyperparameters(&s.optimizer).map(|(k, v)| (k.to_string(), ParamValue::Num(v))));
        }
        if let Some(norm) = s.clip_norm {
            params.push(("clip_norm".to_string(), ParamValue::Num(norm)));
        }
        if s.schedule != ScheduleSpec::Constant {
            params.push(("schedule".to_string(), ParamValue::Text(s.schedule.name().into())));
            params.extend(s.schedule.hyperparameters().into_iter().map(|(k, v)| (k.to_string(), ParamValue::Num(v))));
        }
        if let Some(weights) = &s.pretrained {
            let file = weights.path.file_name().map_or(String::new(), |f| f.to_string_lossy().into_owned());
            params.push(("pretrained".to_string(), ParamValue::Text(format!("{file} ({})", &weights.sha256[..12]))));
        }
        if !s.freeze.is_empty() {
            params.push(("freeze".to_string(), ParamValue::Text(s.freeze.join(","))));
        }
        for (name, value) in s.early_stopping.iter().flat_map(EarlyStopping::hyperparameters) {
            params.push((name.to_string(), ParamValue::Num(value)));
        }
        params.extend(augment_params(&s.augment));
        if let Some(lambda) = self.lambda() {
            params.insert(2, ("lambda".to_string(), ParamValue::Num(lambda)));
        }
        for (task, weight) in self.task_weights().into_iter().flatten() {
            params.push((format!("weight.{task}"), ParamValue::Num(*weight)));
        }
        if !self.vocabulary_tasks.is_empty() {
            params.push(("vocabulary_tasks".to_string(), ParamValue::Text(self.vocabulary_tasks.join(","))));
        }
        params.extend(self.extra_params.iter().cloned());
        params
    }

    /// A short human label, e.g. `hard λ=0.5 lr=0.001 seed=1` or `mmoe(experts=3) pcgrad lr=0.001 seed=0`.
    pub fn label(&self) -> String {
        let mut lambda = self.lambda().map(|l| format!(" λ={l}")).unwrap_or_default();
        if let Some(weights) = self.task_weights() {
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
        let swept: String = self.swept.iter().map(|(path, value)| format!(" {path}={value}")).collect();
        format!("{}{weighting}{lambda} lr={}{init}{swept} seed={}", self.sharing.label(), self.lr, self.seed)
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
    /// Where its trials train (`device`; `--device` overrides it). Not part of a trial's
    /// key: a trial is the same trial on any device, and its run records the device.
    pub device: crate::device::DeviceSpec,
    /// The tasks, in file order (task 1 first).
    pub tasks: Vec<TaskSource>,
    /// Trials in order: strategy, weighting, λ, lr, init, seed.
    pub trials: Vec<Trial>,
    /// `[prune]`: the rule that stops poor trials early, if any.
    pub prune: Option<crate::prune::PruneSpec>,
    /// `[search]`: the adaptive search whose proposals follow `trials` (then only the
    /// single-task baselines), if any.
    pub search: Option<crate::search::SearchSpec>,
}

impl Plan {
    /// The plan of validated settings: every combination of the sweep axes. λ is only
    /// swept for multi-task strategies: a single-task trial appears once per (lr, seed).
    /// `source` is the experiment file's text it records (empty for a plan built in code,
    /// e.g. the benchmarks'); the result epoch is the default.
    pub fn new(
        experiment: String,
        source: String,
        tasks: Vec<TaskSource>,
        settings: TrainingSettings,
        axes: SweepAxes,
    ) -> Plan {
        let task_names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
        let all_static_weights = axes.static_weights.expand(&task_names);
        let task_settings: Vec<Value> = tasks.iter().map(task_settings).collect();
        let vocabulary_tasks: Vec<String> =
            crate::data::vocabulary_tasks(&tasks).into_iter().map(String::from).collect();
        // Text tasks that share a vocabulary are tokenised differently from each alone: their
        // trials get keys of their own. One text task's keys stay as they were.
        let shared_vocabulary = (vocabulary_tasks.len() > 1).then(|| json!({ "shared_by": vocabulary_tasks }));
        let data_settings = match &shared_vocabulary {
            None => Value::Array(task_settings.clone()),
            Some(vocabulary) => json!({ "tasks": task_settings, "vocabulary": vocabulary }),
        };
        let data_key = mtl_store::sha256_hex(data_settings.to_string().as_bytes())[..8].to_string();
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
                    (_, Method::Static) => all_static_weights.iter().map(Some).collect(),
                    _ => vec![None],
                };
                for static_weights in static_weights {
                    let lambda = match static_weights {
                        Some(StaticWeights::Lambda(lambda)) => Some(*lambda),
                        _ => None,
                    };
                    for &lr in &axes.lrs {
                        for (&init, &seed) in axes.inits.iter().flat_map(|i| axes.seeds.iter().map(move |s| (i, s))) {
                            let mut resolved = json!({
                                "experiment": experiment,
                                "tasks": task_settings,
                                "epochs": settings.epochs,
                                "batch_size": settings.batch_size,
                                "sampling": sampling_name(&settings.sampling),
                                "optimizer": optimizer_settings(&settings),
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
                            if let Some(StaticWeights::PerTask(weights)) = static_weights {
                                resolved["task_weights"] = weights.iter().map(|(_, w)| json!(w)).collect();
                            }
                            if let Some(values) = hyperparameter_object(weighting.hyperparameters()) {
                                resolved["weighting_hyperparameters"] = values;
                            }
                            // Only where it changes something (and mgda-ub is always on the representation).
                            if settings.rep_grad && weighting.needs_gradients() && !weighting.on_representation() {
                                resolved["rep_grad"] = json!(true);
                            }
                            // Trials run before `init` existed drew as `candle` does: it adds nothing,
                            // so that their keys stay the same.
                            if init != InitScheme::Candle {
                                resolved["init"] = json!(init.name());
                            }
                            if let Some(vocabulary) = &shared_vocabulary {
                                resolved["vocabulary"] = vocabulary.clone();
                            }
                            if settings.schedule != ScheduleSpec::Constant {
                                resolved["schedule"] = json!({
                                    "name": settings.schedule.name(),
                                    "settings": hyperparameter_object(settings.schedule.hyperparameters()),
                                });
                            }
                            if let Some(weights) = &settings.pretrained {
                                resolved["pretrained"] =
                                    json!({ "sha256": weights.sha256, "map": weights.names.name() });
                            }
                            if !settings.freeze.is_empty() {
                                resolved["freeze"] = json!(settings.freeze);
                            }
                            if let Some(stopping) = settings.early_stopping {
                                resolved["early_stopping"] = hyperparameter_object(stopping.hyperparameters()).into();
                            }
                            if !settings.augment.is_off() {
                                resolved["augment"] = augment_settings(&settings.augment);
                            }
                            if let Some(trainer) = &settings.trainer {
                                resolved["trainer"] = trainer.settings();
                            }
                            // serde_json's map is ordered by key, so this text is canonical.
                            let settings_json = resolved.to_string();
                            let key = mtl_store::sha256_hex(settings_json.as_bytes())[..16].to_string();
                            let data_key = data_key.clone();
                            trials.push(Trial {
                                key,
                                sharing,
                                weighting,
                                static_weights: static_weights.cloned(),
                                lr,
                                seed,
                                init,
                                settings: settings.clone(),
                                settings_json,
                                data_key,
                                vocabulary_tasks: vocabulary_tasks.clone(),
                                swept: Vec::new(),
                                extra_params: Vec::new(),
                            });
                        }
                    }
                }
            }
        }
        Plan {
            experiment,
            source,
            tasks,
            trials,
            result_epoch: mtl_store::ResultEpoch::default(),
            device: crate::device::DeviceSpec::Cpu,
            prune: None,
            search: None,
        }
    }
}

/// A weights file the trunk starts from (`[model] init = { weights, map }`).
#[derive(Clone, Debug, PartialEq)]
pub struct PretrainedWeights {
    /// The file, as resolved from the experiment file's folder.
    pub path: std::path::PathBuf,
    /// How it names its tensors.
    pub names: mtl_model::WeightNames,
    /// sha256 of its bytes (in the trial key: other weights, other trials).
    pub sha256: String,
}

impl TrainingSettings {
    /// Whether `method` computes its decision from the tasks' gradients with respect to the
    /// shared representation: mgda-ub always, other gradient methods under `rep_grad`.
    pub fn on_representation(&self, method: Method) -> bool {
        method.on_representation() || (self.rep_grad && method.needs_gradients())
    }

    /// Whether the optimiser is the one every trial used before it could be chosen:
    /// AdamW with β = (0.9, 0.999), ε = 1e-8 and no clipping.
    fn optimizer_is_default(&self) -> bool {
        let o = &self.optimizer;
        o.kind == OptimizerKind::AdamW && o.betas == (0.9, 0.999) && o.eps == 1e-8 && self.clip_norm.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The trials' keys of an experiment file.
    fn keys(source: &str) -> Vec<String> {
        let plan = crate::config::parse_str(source, Path::new("x.toml")).expect("valid");
        plan.trials.iter().map(|trial| trial.key.clone()).collect()
    }

    /// A digest of every trial's key, label, params and loss weights (what a change to
    /// `Trial` must keep byte for byte).
    fn digest(source: &str) -> String {
        let plan = crate::config::parse_str(source, Path::new("x.toml")).expect("valid");
        let mut text = String::new();
        for trial in &plan.trials {
            let weights = trial.loss_weights(plan.tasks.len());
            text.push_str(&format!(
                "{}|{}|{:?}|{weights:?}|{}\n",
                trial.key,
                trial.label(),
                trial.params(),
                trial.settings_json
            ));
        }
        // The first 8 bytes of the sha256, in hex, as the digests were recorded.
        mtl_store::sha256_hex(text.as_bytes())[..16].to_string()
    }

    fn two_tasks(sweep: &str) -> String {
        let tasks: String = ["a", "b"]
            .iter()
            .map(|name| format!("[[tasks]]\nname = \"{name}\"\ndata = {{ format = \"synthetic-shapes\" }}\n"))
            .collect();
        format!("name = \"x\"\n{tasks}[sweep]\nstrategy = [\"single-task\", \"hard\"]\n{sweep}\n")
    }

    /// Recorded before `Trial` carried one `Option<StaticWeights>` (issue 17): the keys name
    /// finished runs in users' databases, so they never change.
    #[test]
    fn trial_keys_labels_and_params_are_unchanged() {
        let quickstart = include_str!("../../../experiments/quickstart.toml");
        let expected = [
            "cf1c12db305ff315",
            "a81efbdf8ae8c929",
            "a81d440c7583143b",
            "b71b44c5a80e66e5",
            "cc6d74133d5e1474",
            "2aab2e58eab6181e",
            "3ef774c7127fbe0f",
            "c20a2da2ff6043e9",
            "12cbd05265dcf90c",
            "00e7b7dc651bb013",
            "3b69621b9f07a2cd",
            "c33bc317c2e1c9a1",
            "6444ddf21019f3db",
            "cf6a109d8f966d3a",
            "ffedc1dcfc0d888d",
            "2b111673dd3041f2",
            "e127919e7964f49a",
            "fcf537cd5d2624f5",
            "830ba0b9d3bd30d3",
            "66d9cc7342dd824c",
            "cba2f430ea242396",
        ];
        assert_eq!(keys(quickstart), expected);
        assert_eq!(digest(quickstart), "aac7bab2b14949ac");
        for (sweep, expected) in [
            ("lambda = [0.5, 2]\nweighting = [\"static\", \"pcgrad\"]", "5250339446bf296b"),
            ("lambda = { b = [0.5, 2], a = [1, 3] }", "5a2fe584eabfa38a"),
            ("lambda = { simplex = 4, total = 2 }", "1a575173da1ae0e7"),
            ("lambda = { random = 5, low = 0.1, high = 10, seed = 3 }", "8195deb8381200b6"),
        ] {
            assert_eq!(digest(&two_tasks(sweep)), expected, "{sweep}");
        }
    }
}
