//! The serde types of the experiment file (the only serde types of the edge): what
//! the file may say, before anything is validated.

use std::path::PathBuf;

use serde::Deserialize;

use super::{init, multimnist};

/// The `format` values of `[[tasks]] data`, as `DataEntry` spells them.
pub(super) const DATA_FORMATS: [&str; 12] = [
    "synthetic-shapes",
    "synthetic-reviews",
    "mnist-idx",
    "multimnist",
    "cifar",
    "image-folder",
    "aclimdb",
    "text-lines",
    "prefixed-lines",
    "csv",
    "tsv",
    "jsonl",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExperimentFile {
    pub(super) name: String,
    #[serde(default = "default_epochs")]
    pub(super) epochs: u32,
    #[serde(default = "default_seeds")]
    pub(super) seeds: Vec<u64>,
    #[serde(default = "default_batch_size")]
    pub(super) batch_size: usize,
    /// The older spelling of `optimizer.weight_decay`.
    pub(super) weight_decay: Option<f64>,
    pub(super) sampling: Option<String>,
    pub(super) temperature: Option<f64>,
    /// Which epoch is each run's result: "best-val" (default) or "last".
    pub(super) result_epoch: Option<String>,
    /// Where trials train: "cpu" (default), "cuda" or "cuda:N".
    pub(super) device: Option<String>,
    /// Absent with a `[trainer]`, whose metrics name the tasks.
    #[serde(default)]
    pub(super) tasks: Vec<TaskEntry>,
    /// `[trainer]`: a program of the user's own runs each trial.
    pub(super) trainer: Option<TrainerEntry>,
    #[serde(default)]
    pub(super) model: ModelEntry,
    #[serde(default)]
    pub(super) sweep: SweepEntry,
    #[serde(default)]
    pub(super) strategy: StrategyEntries,
    #[serde(default)]
    pub(super) diagnostics: DiagnosticsEntry,
    /// `[optimizer]`: the update rule and its settings (AdamW without weight decay by default).
    #[serde(default)]
    pub(super) optimizer: OptimizerEntry,
    /// `[schedule]`: the learning rate per epoch (constant by default).
    #[serde(default)]
    pub(super) schedule: ScheduleEntry,
    /// `[early_stopping]`: stop a trial whose validation score stops improving.
    pub(super) early_stopping: Option<EarlyStoppingEntry>,
    /// `[augment]`: crop, flip and normalisation of image tasks' batches (none by default).
    pub(super) augment: Option<AugmentEntry>,
    #[serde(default)]
    pub(super) weighting: WeightingEntries,
    /// `[prune]`: stop poor trials early (none by default).
    pub(super) prune: Option<super::prune::PruneEntry>,
    /// `[search]`: an adaptive search in place of the grid (none by default).
    pub(super) search: Option<super::search::SearchEntry>,
}

/// `[trainer]`: the program each trial runs and what it reports.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrainerEntry {
    /// The program and its arguments, with `{placeholders}`.
    pub(super) command: Vec<String>,
    /// Task → metric → "higher" or "lower".
    pub(super) metrics: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Task → the metric that picks the best epoch (default: the task's only metric, or accuracy).
    pub(super) select: Option<std::collections::BTreeMap<String, String>>,
    /// Seconds a trial may run.
    pub(super) timeout: Option<f64>,
}

/// `[weighting]`: the `rep_grad` switch, and `[weighting.<method>]` tables of hyperparameter
/// name → a value or a list.
#[derive(Deserialize, Default)]
pub(super) struct WeightingEntries {
    /// Gradient methods act on the shared representation's gradient (default false).
    pub(super) rep_grad: Option<bool>,
    #[serde(flatten)]
    pub(super) methods: std::collections::BTreeMap<String, std::collections::BTreeMap<String, OneOrMany<f64>>>,
}

fn default_epochs() -> u32 {
    5
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_batch_size() -> usize {
    64
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskEntry {
    pub(super) name: String,
    pub(super) kind: Option<String>,
    /// A regression task's loss: mse, l1 or huber.
    pub(super) loss: Option<String>,
    /// The validation metric that selects the best epoch, if not the kind's.
    pub(super) select: Option<String>,
    pub(super) label_smoothing: Option<f64>,
    pub(super) class_weights: Option<Vec<f64>>,
    pub(super) pos_weight: Option<Weights>,
    pub(super) data: DataEntry,
}

/// A task's loss options and selecting metric, as [`TaskEntry`] has them.
pub(super) struct ObjectiveEntry {
    /// A regression task's loss: mse, l1 or huber.
    pub(super) loss: Option<String>,
    /// The validation metric that selects the best epoch, if not the kind's.
    pub(super) select: Option<String>,
    pub(super) label_smoothing: Option<f64>,
    pub(super) class_weights: Option<Vec<f64>>,
    pub(super) pos_weight: Option<Weights>,
}

/// One weight for all, or one each.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a number, or a list of numbers")]
pub(super) enum Weights {
    One(f64),
    Several(Vec<f64>),
}

impl Weights {
    pub(super) fn into_vec(self) -> Vec<f64> {
        match self {
            Weights::One(one) => vec![one],
            Weights::Several(several) => several,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CelebaEntry {
    /// The folder holding `img_align_celeba/` and the two tables.
    pub(super) path: PathBuf,
    /// One attribute, a two-class task …
    pub(super) attribute: Option<String>,
    /// … or several (default: all), one multi-label task.
    pub(super) attributes: Option<Vec<String>>,
    pub(super) channels: Option<usize>,
    pub(super) height: Option<usize>,
    pub(super) width: Option<usize>,
    pub(super) fit: Option<String>,
    pub(super) on_unreadable: Option<String>,
    pub(super) n_train: Option<usize>,
    pub(super) n_val: Option<usize>,
    pub(super) n_test: Option<usize>,
    #[serde(default)]
    pub(super) seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Nyuv2Entry {
    /// The folder holding `train/` and `val/`.
    pub(super) path: PathBuf,
    /// "segmentation", "depth" or "normals".
    pub(super) task: String,
    /// Segmentation classes (default 13).
    pub(super) classes: Option<usize>,
    /// `[height, width]` to resize to.
    pub(super) size: Option<Vec<usize>>,
    pub(super) val_size: Option<SizeEntry>,
    pub(super) carve: Option<String>,
    pub(super) n_train: Option<usize>,
    pub(super) n_val: Option<usize>,
    pub(super) n_test: Option<usize>,
    #[serde(default)]
    pub(super) seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImageMasksEntry {
    /// The folder holding `images/` and `masks/`, `depth/` and/or `normals/` (or `train/`, `val/`, `test/` with them).
    pub(super) path: PathBuf,
    /// "segmentation", "depth" or "normals".
    pub(super) task: String,
    pub(super) classes: Option<usize>,
    pub(super) ignore: Option<u8>,
    pub(super) depth_scale: Option<f64>,
    pub(super) size: Option<Vec<usize>>,
    pub(super) val_size: Option<SizeEntry>,
    pub(super) test_size: Option<SizeEntry>,
    pub(super) carve: Option<String>,
    pub(super) n_train: Option<usize>,
    pub(super) n_val: Option<usize>,
    pub(super) n_test: Option<usize>,
    #[serde(default)]
    pub(super) seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Qm9Entry {
    /// The folder holding `gdb9.sdf`, `gdb9.sdf.csv` and optionally `uncharacterized.txt`.
    pub(super) path: PathBuf,
    /// One target name or several (one regression task of several outputs).
    pub(super) target: OneOrSeveral<String>,
    pub(super) val_size: Option<SizeEntry>,
    pub(super) test_size: Option<SizeEntry>,
    pub(super) carve: Option<String>,
    pub(super) n_train: Option<usize>,
    pub(super) n_val: Option<usize>,
    pub(super) n_test: Option<usize>,
    #[serde(default)]
    pub(super) seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TableEntry {
    /// One file, the splits carved from it; or `train` with `val` and `test` files.
    pub(super) path: Option<PathBuf>,
    pub(super) train: Option<PathBuf>,
    pub(super) val: Option<PathBuf>,
    pub(super) test: Option<PathBuf>,
    pub(super) header: Option<bool>,
    pub(super) delimiter: Option<String>,
    pub(super) quoting: Option<bool>,
    /// Numeric feature columns (standardised on train).
    #[serde(default)]
    pub(super) features: Vec<ColumnEntry>,
    /// Categorical feature columns (one-hot over the training file's categories).
    #[serde(default)]
    pub(super) categorical: Vec<ColumnEntry>,
    /// Categorical feature columns given as ids into a learned embedding.
    #[serde(default)]
    pub(super) embedded: Vec<ColumnEntry>,
    /// Width of each embedded column's embedding (default 8).
    pub(super) embedding_dim: Option<usize>,
    /// A class column (classification) …
    pub(super) label_column: Option<ColumnEntry>,
    pub(super) label_range: Option<Vec<i64>>,
    /// The label column's values that make the positive class of a two-class task.
    pub(super) positive: Option<OneOrSeveral<String>>,
    /// … or real-valued target columns (regression) …
    pub(super) targets: Option<OneOrSeveral<ColumnEntry>>,
    /// … or one 0/1 column per label (multi-label) …
    pub(super) labels: Option<Vec<ColumnEntry>>,
    /// … or one column of labels separated by `label_separator` (multi-label).
    pub(super) label_list: Option<ColumnEntry>,
    pub(super) label_separator: Option<String>,
    pub(super) val_size: Option<SizeEntry>,
    pub(super) test_size: Option<SizeEntry>,
    pub(super) carve: Option<String>,
    pub(super) n_train: Option<usize>,
    pub(super) n_val: Option<usize>,
    pub(super) n_test: Option<usize>,
    #[serde(default)]
    pub(super) seed: u64,
}

/// A split size: an integer count or a fraction.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
pub(super) enum SizeEntry {
    Count(u64),
    Fraction(f64),
}

/// A CSV/TSV column: a header name or a 0-based index.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum ColumnEntry {
    Index(usize),
    Name(String),
}

/// A column or field, or several joined with a space.
#[derive(Deserialize, Clone)]
#[serde(untagged, expecting = "a column (a name, or a 0-based index for csv and tsv) or a list of columns")]
pub(super) enum OneOrSeveral<T> {
    One(T),
    Several(Vec<T>),
}

impl<T> OneOrSeveral<T> {
    pub(super) fn into_vec(self) -> Vec<T> {
        match self {
            OneOrSeveral::One(one) => vec![one],
            OneOrSeveral::Several(several) => several,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DelimitedEntry {
    /// One file, the splits carved from it; or `train` with `val` and `test` files.
    pub(super) path: Option<PathBuf>,
    pub(super) train: Option<PathBuf>,
    pub(super) val: Option<PathBuf>,
    pub(super) test: Option<PathBuf>,
    pub(super) header: Option<bool>,
    /// One character replacing the format's separator (`,` for csv, a tab for tsv).
    pub(super) delimiter: Option<String>,
    pub(super) quoting: Option<bool>,
    pub(super) text_column: OneOrSeveral<ColumnEntry>,
    pub(super) label_column: ColumnEntry,
    /// `[lo, hi]`: integer labels, every one of them a class.
    pub(super) label_range: Option<Vec<i64>>,
    pub(super) max_len: Option<usize>,
    pub(super) vocab_size: Option<usize>,
    pub(super) min_freq: Option<usize>,
    pub(super) val_size: Option<SizeEntry>,
    pub(super) test_size: Option<SizeEntry>,
    pub(super) carve: Option<String>,
    /// How many examples each split keeps (a seeded subset).
    pub(super) n_train: Option<usize>,
    pub(super) n_val: Option<usize>,
    pub(super) n_test: Option<usize>,
    #[serde(default)]
    pub(super) seed: u64,
}

#[derive(Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub(super) enum DataEntry {
    SyntheticShapes {
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        noise: Option<f64>,
        #[serde(default)]
        seed: u64,
    },
    SyntheticReviews {
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        seq_len: Option<usize>,
        label_noise: Option<f64>,
        #[serde(default)]
        seed: u64,
    },
    MnistIdx {
        path: PathBuf,
        /// The part of the file names before `train-images-idx3-ubyte`: one data set of several.
        prefix: Option<String>,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
    },
    Multimnist {
        path: PathBuf,
        digit: String,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
        compose_seed: Option<multimnist::ComposeSeedEntry>,
        resize: Option<String>,
    },
    Cifar {
        path: PathBuf,
        labels: Option<String>,
        val_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
    },
    ImageFolder {
        path: PathBuf,
        channels: Option<usize>,
        height: Option<usize>,
        width: Option<usize>,
        on_unreadable: Option<String>,
        /// "stretch" (default), "center-crop" or "pad".
        fit: Option<String>,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
    },
    Aclimdb {
        path: PathBuf,
        max_len: Option<usize>,
        vocab_size: Option<usize>,
        min_freq: Option<usize>,
        val_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
    },
    TextLines {
        files: Vec<PathBuf>,
        max_len: Option<usize>,
        vocab_size: Option<usize>,
        min_freq: Option<usize>,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
    },
    PrefixedLines {
        path: Option<PathBuf>,
        train: Option<PathBuf>,
        val: Option<PathBuf>,
        test: Option<PathBuf>,
        /// "whole" (default) or "coarse": the label's part before its first `:`.
        labels: Option<String>,
        label_range: Option<Vec<i64>>,
        max_len: Option<usize>,
        vocab_size: Option<usize>,
        min_freq: Option<usize>,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
    },
    Csv(DelimitedEntry),
    Tsv(DelimitedEntry),
    Table(TableEntry),
    Celeba(CelebaEntry),
    Nyuv2(Nyuv2Entry),
    /// LibMTL's Cityscapes: the same layout without `normal/`, 7 classes by default.
    Cityscapes(Nyuv2Entry),
    ImageMasks(ImageMasksEntry),
    Qm9(Qm9Entry),
    Jsonl {
        path: Option<PathBuf>,
        train: Option<PathBuf>,
        val: Option<PathBuf>,
        test: Option<PathBuf>,
        text_field: OneOrSeveral<String>,
        label_field: String,
        label_range: Option<Vec<i64>>,
        max_len: Option<usize>,
        vocab_size: Option<usize>,
        min_freq: Option<usize>,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        n_train: Option<usize>,
        n_val: Option<usize>,
        n_test: Option<usize>,
        #[serde(default)]
        seed: u64,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelEntry {
    pub(super) trunk: Option<String>,
    pub(super) image_stem: Option<String>,
    pub(super) dropout: Option<f64>,
    /// A channel count, or ResNet's channel multiplier.
    pub(super) width: Option<f64>,
    pub(super) hidden: Option<usize>,
    pub(super) filters: Option<usize>,
    /// ResNet's stem: `cifar` or `imagenet`.
    pub(super) stem: Option<String>,
    pub(super) d_model: Option<usize>,
    pub(super) heads: Option<usize>,
    pub(super) layers: Option<usize>,
    pub(super) ff: Option<usize>,
    pub(super) positions: Option<String>,
    pub(super) pooling: Option<String>,
    pub(super) max_len: Option<usize>,
    pub(super) bidirectional: Option<bool>,
    pub(super) depth: Option<usize>,
    /// The mpnn trunk's message-passing and Set2Set steps.
    pub(super) steps: Option<usize>,
    pub(super) readout_steps: Option<usize>,
    pub(super) init: Option<init::InitEntry>,
    /// Parts of the network the optimiser leaves alone (`stem`, `stage1`, …).
    pub(super) freeze: Option<Vec<String>>,
}

/// `[optimizer]`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct OptimizerEntry {
    pub(super) name: Option<String>,
    pub(super) weight_decay: Option<f64>,
    pub(super) momentum: Option<f64>,
    pub(super) dampening: Option<f64>,
    pub(super) nesterov: Option<bool>,
    pub(super) beta1: Option<f64>,
    pub(super) beta2: Option<f64>,
    pub(super) eps: Option<f64>,
    /// Clip the gradient to this global L2 norm before each step.
    pub(super) clip_norm: Option<f64>,
}

/// `[schedule]`.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct ScheduleEntry {
    pub(super) name: Option<String>,
    pub(super) step_size: Option<u32>,
    pub(super) gamma: Option<f64>,
    pub(super) milestones: Option<Vec<u32>>,
    pub(super) t_max: Option<u32>,
    pub(super) eta_min: Option<f64>,
    pub(super) warmup_epochs: Option<u32>,
    pub(super) factor: Option<f64>,
    pub(super) patience: Option<u32>,
    pub(super) threshold: Option<f64>,
    pub(super) cooldown: Option<u32>,
    pub(super) min_lr: Option<f64>,
}

/// `[early_stopping]`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct EarlyStoppingEntry {
    pub(super) patience: u32,
    pub(super) min_delta: Option<f64>,
}

/// `[augment]`.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct AugmentEntry {
    pub(super) crop_padding: Option<usize>,
    pub(super) flip: Option<bool>,
    pub(super) normalize: Option<NormalizeEntry>,
}

/// `augment.normalize`: `"train"` (the training split's statistics) or given values.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum NormalizeEntry {
    Name(String),
    Given(GivenNormalizationEntry),
}

/// `normalize = { mean = [...], std = [...] }`, one value per channel.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct GivenNormalizationEntry {
    pub(super) mean: Vec<f64>,
    pub(super) std: Vec<f64>,
}

/// `[diagnostics]`: when training diagnostics are measured and logged.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DiagnosticsEntry {
    /// Log window in steps; 0 (default) = averages per epoch.
    pub(super) every: Option<u64>,
    /// Loss-level methods: measure per-task gradients every this many steps; 0 = never.
    pub(super) measure_every: Option<u64>,
}

/// One value, or a list of values to sweep.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub(super) fn values(&self) -> Vec<T> {
        match self {
            OneOrMany::One(value) => vec![value.clone()],
            OneOrMany::Many(values) => values.clone(),
        }
    }
}

/// `[strategy.<name>]`: hyperparameters of the strategies that have them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct StrategyEntries {
    pub(super) soft: Option<SoftEntry>,
    #[serde(rename = "cross-stitch")]
    pub(super) cross_stitch: Option<CrossStitchEntry>,
    pub(super) mmoe: Option<MmoeEntry>,
    #[serde(rename = "dselect-k")]
    pub(super) dselect_k: Option<DSelectKEntry>,
    pub(super) cgc: Option<CgcEntry>,
    pub(super) ple: Option<PleEntry>,
    pub(super) ltb: Option<LtbEntry>,
}

impl StrategyEntries {
    /// Whether the file has a `[strategy.<name>]` section for `strategy`.
    pub(super) fn gives(&self, strategy: mtl_model::Strategy) -> bool {
        use mtl_model::Strategy::*;
        match strategy {
            Soft => self.soft.is_some(),
            CrossStitch => self.cross_stitch.is_some(),
            Mmoe => self.mmoe.is_some(),
            DSelectK => self.dselect_k.is_some(),
            Cgc => self.cgc.is_some(),
            Ple => self.ple.is_some(),
            Ltb => self.ltb.is_some(),
            SingleTask | Hard | Mtan => false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SoftEntry {
    pub(super) weight: Option<OneOrMany<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CrossStitchEntry {
    pub(super) init: Option<OneOrMany<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MmoeEntry {
    pub(super) experts: Option<OneOrMany<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DSelectKEntry {
    pub(super) experts: Option<OneOrMany<usize>>,
    /// The number of selectors.
    pub(super) k: Option<OneOrMany<usize>>,
    pub(super) gamma: Option<OneOrMany<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LtbEntry {
    pub(super) temperature: Option<OneOrMany<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CgcEntry {
    pub(super) experts: Option<OneOrMany<usize>>,
    pub(super) task_experts: Option<OneOrMany<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PleEntry {
    pub(super) experts: Option<OneOrMany<usize>>,
    pub(super) task_experts: Option<OneOrMany<usize>>,
    pub(super) levels: Option<OneOrMany<usize>>,
}

#[derive(Deserialize)]
#[serde(default)]
pub(super) struct SweepEntry {
    pub(super) strategy: Vec<String>,
    pub(super) weighting: Vec<String>,
    pub(super) lambda: LambdaEntry,
    pub(super) lr: Vec<f64>,
    /// Every other key: a setting of the file and its values (`batch_size = [32, 64]`,
    /// `[sweep.optimizer] momentum = [0.9, 0.99]`), checked by `setting_sweep`.
    #[serde(flatten)]
    pub(super) settings: std::collections::BTreeMap<String, toml::Value>,
}

/// `sweep.lambda`: a list of λ (the seed formula), or a table: per-task lists,
/// `{ simplex = K, total = T }`, or `{ random = N, low = A, high = B, seed = S }`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum LambdaEntry {
    List(Vec<f64>),
    Space(std::collections::BTreeMap<String, toml::Value>),
}

impl Default for SweepEntry {
    fn default() -> Self {
        SweepEntry {
            strategy: vec!["hard".into()],
            weighting: vec!["static".into()],
            lambda: LambdaEntry::List(vec![1.0]),
            lr: vec![1e-3],
            settings: Default::default(),
        }
    }
}

#[cfg(test)]
mod format_list_tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;

    #[test]
    fn the_listed_data_formats_are_exactly_those_the_parser_accepts() {
        for format in DATA_FORMATS {
            let source = format!("name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"{format}\" }}\n");
            let error = parse_str(&source, Path::new("x.toml")).err().map(|e| e.message).unwrap_or_default();
            assert!(!error.contains("unknown variant"), "{format}: {error}");
        }
    }
}
