//! The experiment file: serde types at the edge, validated once and turned
//! into a [`Plan`]. Every error names the file, the line and the key.
//!
//! ```
//! let plan = mtl_runner::config::parse_str(
//!     "name = \"demo\"\n[[tasks]]\nname = \"shapes\"\ndata = { format = \"synthetic-shapes\" }\n",
//!     "demo.toml".as_ref(),
//! ).unwrap();
//! assert_eq!(plan.trials.len(), 1);
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};

use mtl_data::formats::images::{CifarLabels, ImageFolderOptions, Unreadable};
use mtl_data::formats::text::{Column, DelimitedOptions};
use mtl_data::prepare::{Amount, Carve, SplitPolicy, TextOptions};
use mtl_data::synthetic::{ReviewsConfig, ShapesConfig};
use mtl_data::SamplingPolicy;
use mtl_model::{ImageStem, Sharing, Strategy, TrunkSpec};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::data::{defaults, DataSource, Digit, ImageFormat, TextFormat};
use crate::diagnostics::DiagnosticsSettings;
use crate::plan::{expand, ModelConfig, Plan, StaticWeights, SweepAxes, TaskSource, TrainingSettings, DEFAULT_MODEL};
use crate::weighting::Method;

mod changes;
mod init;
mod multimnist;
mod shared_text;
mod size;
pub use changes::changed_keys;
pub use size::{SweepSize, MAX_PLAN_TRIALS};

/// A problem with an experiment file.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {}{message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The experiment file.
    pub file: PathBuf,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// Dotted key of the offending value (`sweep.lambda[1]`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The longest experiment name, in bytes: file names made from it (with a short hash
/// added) stay under the 255 bytes most file systems allow.
const MAX_NAME_BYTES: usize = 200;

/// The most static weight vectors `sweep.lambda` may ask for (`random = N`, or a simplex grid).
const MAX_WEIGHT_VECTORS: usize = 100_000;

/// The `format` values of `[[tasks]] data`, as `DataEntry` spells them.
const DATA_FORMATS: [&str; 11] = [
    "synthetic-shapes",
    "synthetic-reviews",
    "mnist-idx",
    "multimnist",
    "cifar",
    "image-folder",
    "aclimdb",
    "text-lines",
    "csv",
    "tsv",
    "jsonl",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperimentFile {
    name: String,
    #[serde(default = "default_epochs")]
    epochs: u32,
    #[serde(default = "default_seeds")]
    seeds: Vec<u64>,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(default)]
    weight_decay: f64,
    sampling: Option<String>,
    temperature: Option<f64>,
    /// Which epoch is each run's result: "best-val" (default) or "last".
    result_epoch: Option<String>,
    tasks: Vec<TaskEntry>,
    #[serde(default)]
    model: ModelEntry,
    #[serde(default)]
    sweep: SweepEntry,
    #[serde(default)]
    strategy: StrategyEntries,
    /// `[weighting.<method>]`: hyperparameter name → a value or a list.
    #[serde(default)]
    diagnostics: DiagnosticsEntry,
    #[serde(default)]
    weighting: std::collections::BTreeMap<String, std::collections::BTreeMap<String, OneOrMany<f64>>>,
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
struct TaskEntry {
    name: String,
    kind: Option<String>,
    data: DataEntry,
}

/// A split size: an integer count or a fraction.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum SizeEntry {
    Count(u64),
    Fraction(f64),
}

/// A CSV/TSV column: a header name or a 0-based index.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum ColumnEntry {
    Index(usize),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelimitedEntry {
    path: PathBuf,
    header: Option<bool>,
    text_column: ColumnEntry,
    label_column: ColumnEntry,
    max_len: Option<usize>,
    vocab_size: Option<usize>,
    min_freq: Option<usize>,
    val_size: Option<SizeEntry>,
    test_size: Option<SizeEntry>,
    carve: Option<String>,
    #[serde(default)]
    seed: u64,
}

#[derive(Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
enum DataEntry {
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
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        #[serde(default)]
        seed: u64,
    },
    Multimnist {
        path: PathBuf,
        digit: String,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
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
        #[serde(default)]
        seed: u64,
    },
    ImageFolder {
        path: PathBuf,
        channels: Option<usize>,
        height: Option<usize>,
        width: Option<usize>,
        on_unreadable: Option<String>,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
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
        #[serde(default)]
        seed: u64,
    },
    Csv(DelimitedEntry),
    Tsv(DelimitedEntry),
    Jsonl {
        path: PathBuf,
        text_field: String,
        label_field: String,
        max_len: Option<usize>,
        vocab_size: Option<usize>,
        min_freq: Option<usize>,
        val_size: Option<SizeEntry>,
        test_size: Option<SizeEntry>,
        carve: Option<String>,
        #[serde(default)]
        seed: u64,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    trunk: Option<String>,
    image_stem: Option<String>,
    dropout: Option<f64>,
    width: Option<usize>,
    hidden: Option<usize>,
    filters: Option<usize>,
    init: Option<init::InitEntry>,
}

/// `[diagnostics]`: when training diagnostics are measured and logged.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DiagnosticsEntry {
    /// Log window in steps; 0 (default) = averages per epoch.
    every: Option<u64>,
    /// Loss-level methods: measure per-task gradients every this many steps; 0 = never.
    measure_every: Option<u64>,
}

/// One value, or a list of values to sweep.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn values(&self) -> Vec<T> {
        match self {
            OneOrMany::One(value) => vec![value.clone()],
            OneOrMany::Many(values) => values.clone(),
        }
    }
}

/// `[strategy.<name>]`: hyperparameters of the strategies that have them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StrategyEntries {
    soft: Option<SoftEntry>,
    #[serde(rename = "cross-stitch")]
    cross_stitch: Option<CrossStitchEntry>,
    mmoe: Option<MmoeEntry>,
    cgc: Option<CgcEntry>,
    ple: Option<PleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftEntry {
    weight: Option<OneOrMany<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossStitchEntry {
    init: Option<OneOrMany<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MmoeEntry {
    experts: Option<OneOrMany<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CgcEntry {
    experts: Option<OneOrMany<usize>>,
    task_experts: Option<OneOrMany<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PleEntry {
    experts: Option<OneOrMany<usize>>,
    task_experts: Option<OneOrMany<usize>>,
    levels: Option<OneOrMany<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SweepEntry {
    strategy: Vec<String>,
    weighting: Vec<String>,
    lambda: LambdaEntry,
    lr: Vec<f64>,
}

/// `sweep.lambda`: a list of λ (the seed formula), or a table: per-task lists,
/// `{ simplex = K, total = T }`, or `{ random = N, low = A, high = B, seed = S }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum LambdaEntry {
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
        }
    }
}

/// Reads and validates an experiment file whose plan may have up to [`MAX_PLAN_TRIALS`] trials.
pub fn parse_file(path: &Path) -> Result<Plan, ConfigError> {
    parse_file_with(path, MAX_PLAN_TRIALS)
}

/// [`parse_file`] for a plan of at most `max_trials` trials (counted before any is built).
pub fn parse_file_with(path: &Path, max_trials: u64) -> Result<Plan, ConfigError> {
    use std::io::Read;
    /// The largest experiment file read: 1 MiB, far above any real one (a few KiB).
    const MAX_FILE_BYTES: u64 = 1 << 20;
    let error = |message: String| ConfigError { file: path.to_owned(), line: None, key: None, message };
    let cannot_read = |e: std::io::Error| error(format!("cannot read the experiment file: {e}"));
    // Checked before opening: a FIFO would block, a device (`mtl run /dev/zero`) would never end.
    let metadata = std::fs::metadata(path).map_err(cannot_read)?;
    if !metadata.is_file() {
        let kind = mtl_data::files::describe(metadata.file_type());
        return Err(error(format!("{kind}, not a regular file: an experiment file is a TOML file")));
    }
    let too_large =
        |len: u64| error(format!("{len} bytes: an experiment file may have at most 1 MiB ({MAX_FILE_BYTES} bytes)"));
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // Bounded again while reading, in case the file grew since.
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    let source = String::from_utf8(bytes).map_err(|e| {
        error(format!("not UTF-8 text (byte {}); is this a TOML experiment file?", e.utf8_error().valid_up_to()))
    })?;
    parse_str_with(&source, path, max_trials)
}

/// Validates the text of an experiment file; `path` is used in messages.
pub fn parse_str(source: &str, path: &Path) -> Result<Plan, ConfigError> {
    parse_str_with(source, path, MAX_PLAN_TRIALS)
}

/// [`parse_str`] for a plan of at most `max_trials` trials (counted before any is built).
pub fn parse_str_with(source: &str, path: &Path, max_trials: u64) -> Result<Plan, ConfigError> {
    let checker = Checker { source, file: path, max_trials: max_trials.min(MAX_PLAN_TRIALS) };
    checker.validate(deserialize(source, path)?, source)
}

/// How many trials the text of an experiment file plans, counted from its lists
/// without building them (the file is not otherwise validated).
pub fn sweep_size(source: &str, path: &Path) -> Result<SweepSize, ConfigError> {
    Ok(size::sweep_size(&deserialize(source, path)?))
}

/// The file's serde types, with messages that name the line and key.
fn deserialize(source: &str, path: &Path) -> Result<ExperimentFile, ConfigError> {
    toml::from_str(source).map_err(|e| {
        let span = e.span();
        let mut message = e.message().trim_end_matches('.').to_string();
        // serde names the internal type of a value that has several accepted forms.
        let forms = [
            (
                "LambdaEntry",
                "expected a list of λ values, or a table: per-task lists, { simplex = K } or { random = N }",
            ),
            ("OneOrMany", "expected a number or a list of numbers"),
            ("SizeEntry", "expected a whole count or a fraction in [0, 1)"),
            ("ColumnEntry", "expected a column name or a 0-based column index"),
            ("InitEntry", "expected an init scheme name or a list of them"),
            ("ComposeSeedEntry", "expected a whole number ≥ 0 or \"trial\""),
        ];
        if let Some((_, expected)) = forms.iter().find(|(name, _)| message.ends_with(&format!("untagged enum {name}")))
        {
            message = expected.to_string();
        }
        if message.contains("expected variant identifier") {
            // serde names no variants when the tag has the wrong type.
            message += &format!("; data formats: {}", DATA_FORMATS.join(", "));
        }
        // A missing top-level key comes with an empty span at 0 or one over the whole
        // file: it points at no line or key.
        let span = span.filter(|s| !(s.start == 0 && (s.is_empty() || s.end >= source.trim_end().len())));
        ConfigError {
            file: path.to_owned(),
            line: span.as_ref().map(|s| line_of(source, s.start)),
            key: span.and_then(|s| key_at(source, s.start)),
            message,
        }
    })
}

struct Checker<'a> {
    source: &'a str,
    file: &'a Path,
    /// The most trials the plan may have.
    max_trials: u64,
}

/// One step of a key path: a table key or an array index.
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}
use Seg::{Index, Key};

impl Checker<'_> {
    fn fail<T>(&self, path: &[Seg], message: impl Into<String>) -> Result<T, ConfigError> {
        let line = locate(self.source, path).map(|span| line_of(self.source, span.start));
        let key = path
            .iter()
            .map(|s| match s {
                Key(k) => format!(".{k}"),
                Index(i) => format!("[{i}]"),
            })
            .collect::<String>()
            .trim_start_matches('.')
            .to_string();
        Err(ConfigError { file: self.file.to_owned(), line, key: Some(key), message: message.into() })
    }

    fn non_empty<T>(&self, values: &[T], path: &[Seg]) -> Result<(), ConfigError> {
        if values.is_empty() {
            return self.fail(path, "the list is empty; give at least one value");
        }
        Ok(())
    }

    fn count(
        &self,
        value: Option<usize>,
        default: usize,
        path: &[Seg],
        range: Range<usize>,
    ) -> Result<usize, ConfigError> {
        let value = value.unwrap_or(default);
        if !range.contains(&value) {
            return self.fail(path, format!("{value} is out of range; expected {} to {}", range.start, range.end - 1));
        }
        Ok(value)
    }

    fn fraction(&self, value: Option<f64>, default: f64, path: &[Seg], max: f64) -> Result<f64, ConfigError> {
        let value = value.unwrap_or(default);
        if !(value.is_finite() && (0.0..=max).contains(&value)) {
            return self.fail(path, format!("{value} is out of range; expected 0 to {max}"));
        }
        Ok(value)
    }

    fn validate(&self, file: ExperimentFile, source: &str) -> Result<Plan, ConfigError> {
        if file.name.trim().is_empty() {
            self.fail(&[Key("name")], "the experiment name is empty")?;
        }
        // The name reaches terminals, file names (report, checkpoints, the cluster folder) and XML.
        if let Some(c) = file.name.chars().find(|c| c.is_control()) {
            let message =
                format!("the experiment name has a control character ({}); use printable text", c.escape_default());
            self.fail(&[Key("name")], message)?;
        }
        if file.name.len() > MAX_NAME_BYTES {
            let message = format!("the experiment name is {} bytes long; at most {MAX_NAME_BYTES}", file.name.len());
            self.fail(&[Key("name")], message)?;
        }
        if !(1..=100_000).contains(&file.epochs) {
            self.fail(&[Key("epochs")], format!("{} is out of range; expected 1 to 100000", file.epochs))?;
        }
        if !(1..=1_000_000).contains(&file.batch_size) {
            self.fail(&[Key("batch_size")], format!("{} is out of range; expected 1 to 1000000", file.batch_size))?;
        }
        if !(file.weight_decay.is_finite() && file.weight_decay >= 0.0) {
            self.fail(&[Key("weight_decay")], format!("{} must be a finite number ≥ 0", file.weight_decay))?;
        }
        self.non_empty(&file.seeds, &[Key("seeds")])?;
        for (i, seed) in file.seeds.iter().enumerate() {
            if file.seeds[..i].contains(seed) {
                self.fail(&[Key("seeds"), Index(i)], format!("seed {seed} is listed twice"))?;
            }
        }

        self.non_empty(&file.tasks, &[Key("tasks")])?;
        self.bounded_sweep(&file)?;
        let mut tasks = Vec::new();
        for (i, task) in file.tasks.into_iter().enumerate() {
            tasks.push(self.task(i, task, &tasks)?);
        }

        let model = self.model(&file.model)?;
        let inits = self.inits(file.model.init.as_ref())?;

        let sweep = file.sweep;
        let strategies = self.names(&sweep.strategy, "strategy", &Strategy::ALL, |s| s.name())?;
        // Sections of strategies left out of the sweep are checked too: a mistake there shows now.
        for strategy in Strategy::ALL.into_iter().filter(|s| !strategies.contains(s)) {
            self.sharings(strategy, &file.strategy)?;
        }
        let mut sharings = Vec::new();
        for &strategy in &strategies {
            sharings.extend(self.sharings(strategy, &file.strategy)?);
        }
        self.shared_text(&tasks, &strategies)?;
        let all_methods: Vec<Method> = Method::NAMES.iter().filter_map(|name| Method::default_for(name)).collect();
        let methods = self.names(&sweep.weighting, "weighting", &all_methods, |m| m.name())?;
        for name in file.weighting.keys() {
            if Method::default_for(name).is_none() {
                self.fail(
                    &[Key("weighting"), Key(name)],
                    format!("unknown weighting method \"{name}\"; expected one of {}", Method::NAMES.join(", ")),
                )?;
            }
        }
        let mut weightings = Vec::new();
        for method in &all_methods {
            let expanded = self.methods(*method, &file.weighting)?;
            if methods.iter().any(|m| m.name() == method.name()) {
                weightings.push((methods.iter().position(|m| m.name() == method.name()), expanded));
            }
        }
        // In the order of sweep.weighting.
        weightings.sort_by_key(|(position, _)| *position);
        let weightings: Vec<Method> = weightings.into_iter().flat_map(|(_, expanded)| expanded).collect();
        let task_names: Vec<String> = tasks.iter().map(|t: &TaskSource| t.name.clone()).collect();
        let static_weights = self.static_weights(&sweep.lambda, &task_names)?;
        self.non_empty(&sweep.lr, &[Key("sweep"), Key("lr")])?;
        for (i, &lr) in sweep.lr.iter().enumerate() {
            let path = [Key("sweep"), Key("lr"), Index(i)];
            if !(lr.is_finite() && lr > 0.0) {
                self.fail(&path, format!("the learning rate must be a finite number > 0, got {lr}"))?;
            }
            if sweep.lr[..i].contains(&lr) {
                self.fail(&path, format!("lr = {lr} is listed twice"))?;
            }
        }

        let sampling = match (file.sampling.as_deref().unwrap_or("all"), file.temperature) {
            ("all", None) => SamplingPolicy::EveryTask,
            ("proportional", None) => SamplingPolicy::Proportional,
            ("temperature", Some(t)) if t.is_finite() && t > 0.0 => SamplingPolicy::Temperature(t),
            ("temperature", Some(t)) => return self.fail(&[Key("temperature")], format!("{t} must be a number > 0")),
            ("temperature", None) => {
                return self.fail(&[Key("sampling")], "sampling = \"temperature\" needs temperature = T")
            }
            ("all" | "proportional", Some(_)) => {
                return self.fail(&[Key("temperature")], "temperature applies only to sampling = \"temperature\"")
            }
            (other, _) => {
                return self.fail(
                    &[Key("sampling")],
                    format!("unknown sampling \"{other}\"; expected \"all\", \"proportional\" or \"temperature\""),
                )
            }
        };
        let dropout = file.model.dropout.unwrap_or(0.0);
        if !(0.0..1.0).contains(&dropout) {
            self.fail(&[Key("model"), Key("dropout")], format!("{dropout} must be in [0, 1)"))?;
        }
        let defaults = DiagnosticsSettings::default();
        let diagnostics = DiagnosticsSettings {
            log_every: file.diagnostics.every.unwrap_or(defaults.log_every),
            measure_every: file.diagnostics.measure_every.unwrap_or(defaults.measure_every),
        };
        if sampling != SamplingPolicy::EveryTask {
            // A method that weighs tasks against each other needs every task in every step.
            if let Some(i) = sweep.weighting.iter().position(|name| !["static", "equal"].contains(&name.as_str())) {
                self.fail(
                    &[Key("sweep"), Key("weighting"), Index(i)],
                    format!(
                        "{} needs every task in every step; use sampling = \"all\" (the default)",
                        sweep.weighting[i]
                    ),
                )?;
            }
        }
        let settings = TrainingSettings {
            diagnostics,
            epochs: file.epochs,
            batch_size: file.batch_size,
            weight_decay: file.weight_decay,
            sampling,
            model,
            dropout,
        };
        let axes = SweepAxes { sharings, weightings, static_weights, lrs: sweep.lr, inits, seeds: file.seeds };
        let result_epoch = match file.result_epoch.as_deref() {
            None => mtl_store::ResultEpoch::default(),
            Some(name) => match mtl_store::ResultEpoch::parse(name) {
                Some(rule) => rule,
                None => {
                    let expected = mtl_store::ResultEpoch::NAMES.map(|n| format!("\"{n}\"")).join(" or ");
                    return self.fail(&[Key("result_epoch")], format!("unknown rule \"{name}\"; expected {expected}"));
                }
            },
        };
        let mut plan = expand(file.name, source.to_string(), tasks, settings, axes);
        plan.result_epoch = result_epoch;
        Ok(plan)
    }

    /// Every combination of `strategy`'s hyperparameters given under `[strategy.<name>]`
    /// (a value or a list to sweep; defaults for those not given), each validated.
    fn sharings(&self, strategy: Strategy, entries: &StrategyEntries) -> Result<Vec<Sharing>, ConfigError> {
        let floats = |given: &Option<OneOrMany<f64>>| given.clone();
        let counts = |given: &Option<OneOrMany<usize>>| {
            given.as_ref().map(|g| match g {
                OneOrMany::One(v) => OneOrMany::One(*v as f64),
                OneOrMany::Many(vs) => OneOrMany::Many(vs.iter().map(|&v| v as f64).collect()),
            })
        };
        // The file's keys, in the order of `Sharing::hyperparameters`, and what the file gives for each.
        let (keys, given): (&[&str], Vec<Option<OneOrMany<f64>>>) = match strategy {
            Strategy::Soft => (&["weight"], vec![entries.soft.as_ref().and_then(|e| floats(&e.weight))]),
            Strategy::CrossStitch => (&["init"], vec![entries.cross_stitch.as_ref().and_then(|e| floats(&e.init))]),
            Strategy::Mmoe => (&["experts"], vec![entries.mmoe.as_ref().and_then(|e| counts(&e.experts))]),
            Strategy::Cgc => {
                let entry = entries.cgc.as_ref();
                (
                    &["experts", "task_experts"],
                    vec![entry.and_then(|e| counts(&e.experts)), entry.and_then(|e| counts(&e.task_experts))],
                )
            }
            Strategy::Ple => {
                let entry = entries.ple.as_ref();
                (
                    &["experts", "task_experts", "levels"],
                    vec![
                        entry.and_then(|e| counts(&e.experts)),
                        entry.and_then(|e| counts(&e.task_experts)),
                        entry.and_then(|e| counts(&e.levels)),
                    ],
                )
            }
            Strategy::SingleTask | Strategy::Hard | Strategy::Mtan => return Ok(vec![Sharing::default_for(strategy)]),
        };
        let build = |values: &[f64]| match strategy {
            Strategy::Soft => Sharing::Soft { weight: values[0] },
            Strategy::CrossStitch => Sharing::CrossStitch { init: values[0] },
            Strategy::Mmoe => Sharing::Mmoe { experts: values[0] as usize },
            Strategy::Cgc => Sharing::Cgc { experts: values[0] as usize, task_experts: values[1] as usize },
            _ => Sharing::Ple {
                experts: values[0] as usize,
                task_experts: values[1] as usize,
                levels: values[2] as usize,
            },
        };
        let name = strategy.name();
        let defaults: Vec<f64> = Sharing::default_for(strategy).hyperparameters().iter().map(|(_, v)| *v).collect();
        let mut axes: Vec<Vec<f64>> = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            let Some(given) = &given[k] else {
                axes.push(vec![defaults[k]]);
                continue;
            };
            let values = given.values();
            let at = |i: usize| match given {
                OneOrMany::One(_) => vec![Key("strategy"), Key(name), Key(key)],
                OneOrMany::Many(_) => vec![Key("strategy"), Key(name), Key(key), Index(i)],
            };
            self.non_empty(&values, &at(0)[..3])?;
            for (i, &value) in values.iter().enumerate() {
                if values[..i].contains(&value) {
                    self.fail(&at(i), format!("{value} is listed twice"))?;
                }
                // Each value on its own, with the defaults for the rest.
                let mut probe = defaults.clone();
                probe[k] = value;
                if let Err(message) = build(&probe).validate() {
                    self.fail(&at(i), message)?;
                }
            }
            axes.push(values);
        }
        let mut combinations: Vec<Vec<f64>> = vec![Vec::new()];
        for axis in axes {
            combinations = combinations
                .into_iter()
                .flat_map(|prefix| {
                    axis.iter().map(move |&value| prefix.iter().copied().chain([value]).collect::<Vec<f64>>())
                })
                .collect();
        }
        let mut sharings = Vec::new();
        for values in combinations {
            let sharing = build(&values);
            if let Err(message) = sharing.validate() {
                self.fail(&[Key("strategy"), Key(name)], message)?;
            }
            sharings.push(sharing);
        }
        Ok(sharings)
    }

    /// Every combination of `method`'s hyperparameters given under `[weighting.<name>]`
    /// (defaults for those not given). A file key is the store name without the method's prefix
    /// (`[weighting.cagrad] c` is `cagrad_c`).
    fn methods(
        &self,
        method: Method,
        entries: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, OneOrMany<f64>>>,
    ) -> Result<Vec<Method>, ConfigError> {
        let name = method.name();
        let defaults = method.hyperparameters();
        let prefix = format!("{}_", name.replace('-', "_"));
        let file_key = |store_name: &str| store_name.strip_prefix(&prefix).unwrap_or(store_name).to_string();
        let given = entries.get(name);
        if let Some(given) = given {
            for key in given.keys() {
                if !defaults.iter().any(|(store_name, _)| file_key(store_name) == *key) {
                    let known: Vec<String> = defaults.iter().map(|(n, _)| file_key(n)).collect();
                    let expected = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                    self.fail(
                        &[Key("weighting"), Key(name), Key(key)],
                        format!("{name} has no hyperparameter \"{key}\"; it has: {expected}"),
                    )?;
                }
            }
        }
        let mut combinations: Vec<Vec<(&'static str, f64)>> = vec![Vec::new()];
        for &(store_name, default) in &defaults {
            let key = file_key(store_name);
            let values = match given.and_then(|g| g.get(&key)) {
                None => vec![default],
                Some(one_or_many) => {
                    let values = one_or_many.values();
                    let at = |i: usize| match one_or_many {
                        OneOrMany::One(_) => vec![Key("weighting"), Key(name), Key(&key)],
                        OneOrMany::Many(_) => vec![Key("weighting"), Key(name), Key(&key), Index(i)],
                    };
                    self.non_empty(&values, &at(0)[..3])?;
                    for (i, &value) in values.iter().enumerate() {
                        if values[..i].contains(&value) {
                            self.fail(&at(i), format!("{value} is listed twice"))?;
                        }
                        if let Err(message) = method.with(&[(store_name, value)]) {
                            self.fail(&at(i), message)?;
                        }
                    }
                    values
                }
            };
            combinations = combinations
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |&v| prefix.iter().copied().chain([(store_name, v)]).collect())
                })
                .collect();
        }
        combinations
            .iter()
            .map(|values| method.with(values).or_else(|message| self.fail(&[Key("weighting"), Key(name)], message)))
            .collect()
    }

    /// The static weights `sweep.lambda` asks for.
    /// Refuses a sweep, or one section of it, that asks for too many settings, counted
    /// from its lists before anything is expanded.
    fn bounded_sweep(&self, file: &ExperimentFile) -> Result<(), ConfigError> {
        let too_many = |n: u64| n > MAX_WEIGHT_VECTORS as u64;
        for strategy in Strategy::ALL {
            let n = size::strategy_combinations(&file.strategy, strategy.name());
            if too_many(n) {
                let message = format!("its lists make {n} combinations, more than {MAX_WEIGHT_VECTORS}");
                self.fail(&[Key("strategy"), Key(strategy.name())], message)?;
            }
        }
        for name in file.weighting.keys() {
            let n = size::weighting_combinations(file, name);
            if too_many(n) {
                let message = format!("its lists make {n} combinations, more than {MAX_WEIGHT_VECTORS}");
                self.fail(&[Key("weighting"), Key(name)], message)?;
            }
        }
        let n_vectors = size::weight_vectors(&file.sweep.lambda, file.tasks.len());
        if let (LambdaEntry::Space(table), true) = (&file.sweep.lambda, too_many(n_vectors)) {
            let many = if n_vectors == u64::MAX { "too many".to_string() } else { n_vectors.to_string() };
            let n = file.tasks.len();
            match table.get("simplex") {
                Some(steps) => self.fail(
                    &[Key("sweep"), Key("lambda"), Key("simplex")],
                    format!("simplex = {steps} over {n} tasks gives {many} weight vectors, more than {MAX_WEIGHT_VECTORS}; use a smaller K"),
                )?,
                // `random = N` is checked with its other keys.
                None if table.contains_key("random") => {}
                None => self.fail(
                    &[Key("sweep"), Key("lambda")],
                    format!("the per-task lists make {many} weight vectors, more than {MAX_WEIGHT_VECTORS}"),
                )?,
            }
        }
        let size = size::sweep_size(file);
        if size.trials > self.max_trials {
            let limit = if self.max_trials >= MAX_PLAN_TRIALS {
                format!("more than one plan may have ({MAX_PLAN_TRIALS}); split the sweep into several experiments")
            } else {
                format!("more than the limit of {} (raise it with mtl run --max-trials)", self.max_trials)
            };
            self.fail(&[Key("sweep")], format!("the sweep has {} trials ({}), {limit}", size.trials, size.describe()))?;
        }
        Ok(())
    }

    fn static_weights(&self, entry: &LambdaEntry, task_names: &[String]) -> Result<Vec<StaticWeights>, ConfigError> {
        fn at(key: &str) -> Vec<Seg<'_>> {
            vec![Key("sweep"), Key("lambda"), Key(key)]
        }
        let weight_ok = |w: f64| w.is_finite() && w >= 0.0;
        let table = match entry {
            LambdaEntry::List(lambdas) => {
                self.non_empty(lambdas, &[Key("sweep"), Key("lambda")])?;
                for (i, &lambda) in lambdas.iter().enumerate() {
                    let path = [Key("sweep"), Key("lambda"), Index(i)];
                    if !weight_ok(lambda) {
                        self.fail(&path, format!("λ must be a finite number ≥ 0, got {lambda}"))?;
                    }
                    if lambdas[..i].contains(&lambda) {
                        self.fail(&path, format!("λ = {lambda} is listed twice"))?;
                    }
                }
                return Ok(lambdas.iter().map(|&l| StaticWeights::Lambda(l)).collect());
            }
            LambdaEntry::Space(table) => table,
        };
        let number = |key: &str| -> Result<Option<f64>, ConfigError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
                Some(toml::Value::Float(f)) => Ok(Some(*f)),
                Some(other) => self.fail(&at(key), format!("expected a number, got {}", other.type_str())),
            }
        };
        let count = |key: &str, max: f64| -> Result<usize, ConfigError> {
            match number(key)? {
                Some(n) if n.fract() == 0.0 && (1.0..=max).contains(&n) => Ok(n as usize),
                Some(n) => self.fail(&at(key), format!("{n} must be a whole number from 1 to {max}")),
                None => unreachable!("asked only for keys present"),
            }
        };
        let only = |allowed: &[&str]| -> Result<(), ConfigError> {
            match table.keys().find(|k| !allowed.contains(&k.as_str())) {
                Some(key) => {
                    self.fail(&at(key), format!("unexpected key here; this form takes {}", allowed.join(", ")))
                }
                None => Ok(()),
            }
        };
        let named = |weights: Vec<f64>| -> StaticWeights {
            StaticWeights::PerTask(task_names.iter().cloned().zip(weights).collect())
        };
        let n = task_names.len();
        if table.contains_key("simplex") {
            // Every weight vector whose entries are multiples of total/K and sum to total.
            only(&["simplex", "total"])?;
            let steps = count("simplex", 1000.0)?;
            // C(K + n − 1, n − 1) vectors: refused before they are built when there are too many.
            let n_vectors = (1..n).try_fold(1u128, |c, i| c.checked_mul((steps + i) as u128).map(|c| c / i as u128));
            if n_vectors.is_none_or(|v| v > MAX_WEIGHT_VECTORS as u128) {
                let many = n_vectors.map_or("too many".to_string(), |v| v.to_string());
                self.fail(
                    &at("simplex"),
                    format!(
                        "simplex = {steps} over {n} tasks gives {many} weight vectors, more than {MAX_WEIGHT_VECTORS}; use a smaller K"
                    ),
                )?;
            }
            let total = number("total")?.unwrap_or(1.0);
            if !(total.is_finite() && total > 0.0) {
                self.fail(&at("total"), format!("{total} must be a number > 0"))?;
            }
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
            return Ok(grid
                .into_iter()
                .map(|ks| named(ks.iter().map(|&k| total * k as f64 / steps as f64).collect()))
                .collect());
        }
        if table.contains_key("random") {
            // Task 1 keeps weight 1; tasks 2..n get λ drawn log-uniformly from [low, high].
            only(&["random", "low", "high", "seed"])?;
            let samples = count("random", MAX_WEIGHT_VECTORS as f64)?;
            let low = number("low")?.unwrap_or(0.01);
            let high = number("high")?.unwrap_or(100.0);
            if !(low.is_finite() && low > 0.0) {
                self.fail(&at("low"), format!("{low} must be a number > 0 (the range is log-uniform)"))?;
            }
            if !(high.is_finite() && high > low) {
                self.fail(&at("high"), format!("{high} must be a number > low = {low}"))?;
            }
            let seed = number("seed")?.unwrap_or(0.0);
            if !(seed.fract() == 0.0 && seed >= 0.0) {
                self.fail(&at("seed"), format!("{seed} must be a whole number ≥ 0"))?;
            }
            let mut rng = mtl_data::Rng::derive(seed as u64, "lambda-search");
            return Ok((0..samples)
                .map(|_| {
                    named((0..n).map(|t| if t == 0 { 1.0 } else { rng.range(low.ln(), high.ln()).exp() }).collect())
                })
                .collect());
        }
        // Per-task lists: their product; tasks not listed keep weight 1.
        if let Some(unknown) = table.keys().find(|k| !task_names.contains(k)) {
            self.fail(
                &at(unknown),
                format!(
                    "\"{unknown}\" is not a task; sweep.lambda takes a list, per-task lists (tasks: {}), simplex = K or random = N",
                    task_names.join(", ")
                ),
            )?;
        }
        let mut combinations: Vec<Vec<f64>> = vec![Vec::new()];
        for task in task_names {
            let values: Vec<f64> = match table.get(task) {
                None => vec![1.0],
                Some(toml::Value::Array(items)) => {
                    let mut values = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let path = [Key("sweep"), Key("lambda"), Key(task), Index(i)];
                        let value = match item {
                            toml::Value::Integer(v) => *v as f64,
                            toml::Value::Float(v) => *v,
                            other => return self.fail(&path, format!("expected a number, got {}", other.type_str())),
                        };
                        if !weight_ok(value) {
                            self.fail(&path, format!("a weight must be a finite number ≥ 0, got {value}"))?;
                        }
                        if values.contains(&value) {
                            self.fail(&path, format!("{value} is listed twice"))?;
                        }
                        values.push(value);
                    }
                    self.non_empty(&values, &at(task))?;
                    values
                }
                Some(other) => {
                    return self.fail(&at(task), format!("expected a list of weights, got {}", other.type_str()))
                }
            };
            combinations = combinations
                .into_iter()
                .flat_map(|prefix| values.iter().map(move |&v| prefix.iter().copied().chain([v]).collect()))
                .collect();
        }
        Ok(combinations.into_iter().map(named).collect())
    }

    /// A sweep list of names (`sweep.<key>`): not empty, each known, none twice.
    fn names<T: Copy + PartialEq>(
        &self,
        names: &[String],
        key: &str,
        all: &[T],
        name_of: fn(T) -> &'static str,
    ) -> Result<Vec<T>, ConfigError> {
        self.non_empty(names, &[Key("sweep"), Key(key)])?;
        let mut values = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let path = [Key("sweep"), Key(key), Index(i)];
            let Some(value) = all.iter().copied().find(|v| name_of(*v) == name) else {
                let known: Vec<&str> = all.iter().map(|v| name_of(*v)).collect();
                return self.fail(&path, format!("unknown {key} \"{name}\"; expected one of {}", known.join(", ")));
            };
            if values.contains(&value) {
                self.fail(&path, format!("{key} \"{name}\" is listed twice"))?;
            }
            values.push(value);
        }
        Ok(values)
    }

    fn split(
        &self,
        i: usize,
        val: Option<SizeEntry>,
        test: Option<SizeEntry>,
        carve: Option<String>,
        seed: u64,
    ) -> Result<SplitPolicy, ConfigError> {
        let amount = |entry: Option<SizeEntry>, default: Amount, key: &str| match entry {
            None => Ok(default),
            Some(SizeEntry::Count(c)) => Ok(Amount::Count(c as usize)),
            Some(SizeEntry::Fraction(f)) if (0.0..1.0).contains(&f) => Ok(Amount::Fraction(f)),
            Some(SizeEntry::Fraction(f)) => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key(key)],
                format!("{f} is not a fraction in [0, 1); give a fraction or a whole count"),
            ),
        };
        let carve = match carve.as_deref() {
            None | Some("random") => Carve::Random,
            Some("tail") => Carve::Tail,
            Some(other) => {
                return self.fail(
                    &[Key("tasks"), Index(i), Key("data"), Key("carve")],
                    format!("carve \"{other}\" must be \"random\" or \"tail\""),
                )
            }
        };
        Ok(SplitPolicy {
            val: amount(val, defaults::VAL, "val_size")?,
            test: amount(test, defaults::TEST, "test_size")?,
            carve,
            seed,
        })
    }

    fn text_options(
        &self,
        i: usize,
        max_len: Option<usize>,
        vocab_size: Option<usize>,
        min_freq: Option<usize>,
    ) -> Result<TextOptions, ConfigError> {
        let at = |key| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let d = defaults::TEXT;
        Ok(TextOptions {
            max_len: self.count(max_len, d.max_len, &at("max_len"), 1..100_001)?,
            vocab_size: self.count(vocab_size, d.vocab_size, &at("vocab_size"), 3..10_000_001)?,
            min_freq: self.count(min_freq, d.min_freq, &at("min_freq"), 1..1_000_001)?,
        })
    }

    fn delimited(
        &self,
        i: usize,
        entry: DelimitedEntry,
        delimiter: u8,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<DataSource, ConfigError> {
        let has_header = entry.header.unwrap_or(true);
        let column = |c: ColumnEntry, key: &str| match c {
            ColumnEntry::Index(i) => Ok(Column::Index(i)),
            ColumnEntry::Name(_) if !has_header => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key(key)],
                "a column name needs header = true; give a 0-based column index instead",
            ),
            ColumnEntry::Name(name) => Ok(Column::Name(name)),
        };
        let options = DelimitedOptions {
            delimiter,
            has_header,
            text_column: column(entry.text_column, "text_column")?,
            label_column: column(entry.label_column, "label_column")?,
        };
        Ok(DataSource::Texts {
            path: resolve(&entry.path),
            format: TextFormat::Delimited(options),
            split: self.split(i, entry.val_size, entry.test_size, entry.carve, entry.seed)?,
            options: self.text_options(i, entry.max_len, entry.vocab_size, entry.min_freq)?,
        })
    }

    fn model(&self, entry: &ModelEntry) -> Result<ModelConfig, ConfigError> {
        let TrunkSpec::Sequence { width: default_width, hidden: default_hidden, .. } = DEFAULT_MODEL else {
            unreachable!("the default trunk is the sequence CNN")
        };
        match entry.trunk.as_deref().unwrap_or("sequence") {
            "sequence" if entry.filters.is_some() => {
                self.fail(&[Key("model"), Key("filters")], "filters belongs to the textcnn trunk")
            }
            "sequence" => Ok(TrunkSpec::Sequence {
                width: self.count(entry.width, default_width, &[Key("model"), Key("width")], 1..4097)?,
                hidden: self.count(entry.hidden, default_hidden, &[Key("model"), Key("hidden")], 1..4097)?,
                image_stem: match entry.image_stem.as_deref().unwrap_or("conv") {
                    "conv" => ImageStem::Conv,
                    "rows" => ImageStem::Rows,
                    other => {
                        return self.fail(
                            &[Key("model"), Key("image_stem")],
                            format!("unknown image stem \"{other}\"; expected \"conv\" or \"rows\""),
                        )
                    }
                },
            }),
            "textcnn" => {
                for (key, is_given) in [("hidden", entry.hidden.is_some()), ("image_stem", entry.image_stem.is_some())]
                {
                    if is_given {
                        self.fail(
                            &[Key("model"), Key(key)],
                            "the textcnn trunk has no such setting; it takes width and filters",
                        )?;
                    }
                }
                Ok(TrunkSpec::TextCnn {
                    width: self.count(entry.width, 128, &[Key("model"), Key("width")], 1..4097)?,
                    filters: self.count(entry.filters, 100, &[Key("model"), Key("filters")], 1..4097)?,
                })
            }
            "lenet" => {
                let given = [
                    ("width", entry.width.is_some()),
                    ("hidden", entry.hidden.is_some()),
                    ("image_stem", entry.image_stem.is_some()),
                    ("filters", entry.filters.is_some()),
                ];
                for (key, is_given) in given {
                    if is_given {
                        self.fail(&[Key("model"), Key(key)], "the lenet trunk has fixed sizes; remove this key")?;
                    }
                }
                Ok(TrunkSpec::LeNet)
            }
            other => self.fail(
                &[Key("model"), Key("trunk")],
                format!("unknown trunk \"{other}\"; expected \"sequence\", \"lenet\" or \"textcnn\""),
            ),
        }
    }

    fn task(&self, i: usize, task: TaskEntry, earlier: &[TaskSource]) -> Result<TaskSource, ConfigError> {
        let name_path = [Key("tasks"), Index(i), Key("name")];
        // Task names become metric keys (`digits.test.accuracy`) in filters and file names.
        let valid_name = task.name.len() <= 64
            && task.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && task.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            self.fail(
                &name_path,
                format!("task name {:?} must be 1–64 letters, digits, '_' or '-', starting with a letter", task.name),
            )?;
        }
        if earlier.iter().any(|t| t.name == task.name) {
            self.fail(&name_path, format!("task name \"{}\" is used twice", task.name))?;
        }
        let at = |key| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let base = self.file.parent().unwrap_or(Path::new("."));
        let resolve = |path: &Path| if path.is_absolute() { path.to_owned() } else { base.join(path) };
        let data = match task.data {
            DataEntry::SyntheticShapes { n_train, n_val, n_test, noise, seed } => {
                let default = ShapesConfig::default();
                DataSource::SyntheticShapes {
                    config: ShapesConfig {
                        n_train: self.count(n_train, default.n_train, &at("n_train"), 1..10_000_001)?,
                        n_val: self.count(n_val, default.n_val, &at("n_val"), 1..10_000_001)?,
                        n_test: self.count(n_test, default.n_test, &at("n_test"), 1..10_000_001)?,
                        noise: self.fraction(noise, default.noise, &at("noise"), 2.0)?,
                    },
                    seed,
                }
            }
            DataEntry::SyntheticReviews { n_train, n_val, n_test, seq_len, label_noise, seed } => {
                let default = ReviewsConfig::default();
                DataSource::SyntheticReviews {
                    config: ReviewsConfig {
                        n_train: self.count(n_train, default.n_train, &at("n_train"), 1..10_000_001)?,
                        n_val: self.count(n_val, default.n_val, &at("n_val"), 1..10_000_001)?,
                        n_test: self.count(n_test, default.n_test, &at("n_test"), 1..10_000_001)?,
                        seq_len: self.count(seq_len, default.seq_len, &at("seq_len"), 16..4097)?,
                        label_noise: self.fraction(label_noise, default.label_noise, &at("label_noise"), 0.5)?,
                    },
                    seed,
                }
            }
            DataEntry::MnistIdx { path, val_size, test_size, carve, seed } => DataSource::Images {
                path: resolve(&path),
                format: ImageFormat::Idx,
                split: self.split(i, val_size, test_size, carve, seed)?,
            },
            DataEntry::Multimnist { path, digit, val_size, test_size, carve, seed, compose_seed, resize } => {
                let digit = match digit.as_str() {
                    "left" => Digit::Left,
                    "right" => Digit::Right,
                    other => {
                        return self.fail(&at("digit"), format!("digit \"{other}\" must be \"left\" or \"right\""))
                    }
                };
                DataSource::Images {
                    path: resolve(&path),
                    format: ImageFormat::MultiMnist {
                        digit,
                        composition: self.composition(i, compose_seed, resize, seed)?,
                    },
                    split: self.split(i, val_size, test_size, carve, seed)?,
                }
            }
            DataEntry::Cifar { path, labels, val_size, carve, seed } => {
                let labels = match labels.as_deref().unwrap_or("fine") {
                    "fine" => CifarLabels::Fine,
                    "coarse" => CifarLabels::Coarse,
                    other => {
                        return self.fail(&at("labels"), format!("labels \"{other}\" must be \"fine\" or \"coarse\""))
                    }
                };
                DataSource::Images {
                    path: resolve(&path),
                    format: ImageFormat::Cifar(labels),
                    split: self.split(i, val_size, None, carve, seed)?,
                }
            }
            DataEntry::ImageFolder {
                path,
                channels,
                height,
                width,
                on_unreadable,
                val_size,
                test_size,
                carve,
                seed,
            } => {
                let channels = self.count(channels, 1, &at("channels"), 1..4)?;
                if channels == 2 {
                    return self.fail(&at("channels"), "channels must be 1 (grayscale) or 3 (RGB)");
                }
                let on_unreadable = match on_unreadable.as_deref() {
                    None => defaults::UNREADABLE,
                    Some("skip") => Unreadable::Skip,
                    Some("fail") => Unreadable::Fail,
                    Some(other) => {
                        return self.fail(&at("on_unreadable"), format!("\"{other}\" must be \"skip\" or \"fail\""))
                    }
                };
                let options = ImageFolderOptions {
                    channels,
                    height: self.count(height, 28, &at("height"), 1..4097)?,
                    width: self.count(width, 28, &at("width"), 1..4097)?,
                    on_unreadable,
                };
                DataSource::Images {
                    path: resolve(&path),
                    format: ImageFormat::Folder(options),
                    split: self.split(i, val_size, test_size, carve, seed)?,
                }
            }
            DataEntry::Aclimdb { path, max_len, vocab_size, min_freq, val_size, carve, seed } => DataSource::Texts {
                path: resolve(&path),
                format: TextFormat::AclImdb,
                split: self.split(i, val_size, None, carve, seed)?,
                options: self.text_options(i, max_len, vocab_size, min_freq)?,
            },
            DataEntry::TextLines { files, max_len, vocab_size, min_freq, val_size, test_size, carve, seed } => {
                if files.len() < 2 {
                    return self.fail(&at("files"), "give one file per class, at least two");
                }
                let files: Vec<PathBuf> = files.iter().map(|f| resolve(f)).collect();
                DataSource::Texts {
                    path: files[0].clone(),
                    format: TextFormat::Lines(files),
                    split: self.split(i, val_size, test_size, carve, seed)?,
                    options: self.text_options(i, max_len, vocab_size, min_freq)?,
                }
            }
            DataEntry::Csv(entry) => self.delimited(i, entry, b',', &resolve)?,
            DataEntry::Tsv(entry) => self.delimited(i, entry, b'\t', &resolve)?,
            DataEntry::Jsonl {
                path,
                text_field,
                label_field,
                max_len,
                vocab_size,
                min_freq,
                val_size,
                test_size,
                carve,
                seed,
            } => DataSource::Texts {
                path: resolve(&path),
                format: TextFormat::Jsonl { text_field, label_field },
                split: self.split(i, val_size, test_size, carve, seed)?,
                options: self.text_options(i, max_len, vocab_size, min_freq)?,
            },
        };
        if let Some(kind) = &task.kind {
            if kind != data.kind() {
                self.fail(
                    &[Key("tasks"), Index(i), Key("kind")],
                    format!(
                        "kind \"{kind}\" does not match the data format, which gives \"{}\" \
                         (kinds: image-classification, text-classification)",
                        data.kind()
                    ),
                )?;
            }
        }
        Ok(TaskSource { name: task.name, data })
    }
}

/// 1-based line of byte `offset`.
fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The span of the value at `path`, if the file has it.
fn locate(source: &str, path: &[Seg]) -> Option<Range<usize>> {
    let root = DeTable::parse(source).ok()?;
    let mut span = root.span();
    let mut value: Option<&DeValue> = None;
    let mut table: &DeTable = root.get_ref();
    for seg in path {
        let next = match (seg, value) {
            (Key(k), None) => table.get(*k)?,
            (Key(k), Some(DeValue::Table(t))) => t.get(*k)?,
            (Index(i), Some(DeValue::Array(a))) => a.get(*i)?,
            _ => return Some(span),
        };
        span = next.span();
        value = Some(next.get_ref());
        if let DeValue::Table(t) = next.get_ref() {
            table = t;
        }
    }
    Some(span)
}

/// The dotted key at byte `offset` (for serde's errors): the innermost value
/// whose span contains it, else the nearest key before it. (Spans of `[table]`
/// headers cover the header only, so containment alone is not enough.)
fn key_at(source: &str, offset: usize) -> Option<String> {
    fn collect(value: &DeValue, path: &str, out: &mut Vec<(String, Range<usize>)>) {
        match value {
            DeValue::Table(table) => {
                for (key, child) in table.iter() {
                    let child_path =
                        if path.is_empty() { key.get_ref().to_string() } else { format!("{path}.{}", key.get_ref()) };
                    out.push((child_path.clone(), key.span().start..child.span().end.max(key.span().end)));
                    collect(child.get_ref(), &child_path, out);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    out.push((item_path.clone(), item.span()));
                    collect(item.get_ref(), &item_path, out);
                }
            }
            _ => {}
        }
    }
    let root = DeTable::parse(source).ok()?;
    let mut entries = Vec::new();
    collect(&DeValue::Table(root.into_inner()), "", &mut entries);
    let innermost = entries.iter().filter(|(_, span)| span.contains(&offset)).min_by_key(|(_, span)| span.len());
    let nearest_before = || entries.iter().filter(|(_, span)| span.start <= offset).max_by_key(|(_, span)| span.start);
    innermost.or_else(nearest_before).map(|(path, _)| path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_finds_values_inside_arrays_of_tables_and_inline_tables() {
        let source = "name = \"x\"\n[[tasks]]\nname = \"a\"\n\n[[tasks]]\nname = \"b\"\ndata = { format = \"p\" }\n";
        let at = |needle: &str| key_at(source, source.find(needle).expect("needle"));
        assert_eq!(at("\"p\"").as_deref(), Some("tasks[1].data.format"));
        assert_eq!(at("\"b\"").as_deref(), Some("tasks[1].name"));
        assert_eq!(at("\"x\"").as_deref(), Some("name"));
    }
}

#[cfg(test)]
mod format_list_tests {
    use super::*;

    #[test]
    fn the_listed_data_formats_are_exactly_those_the_parser_accepts() {
        for format in DATA_FORMATS {
            let source = format!("name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"{format}\" }}\n");
            let error = parse_str(&source, Path::new("x.toml")).err().map(|e| e.message).unwrap_or_default();
            assert!(!error.contains("unknown variant"), "{format}: {error}");
        }
    }
}

#[cfg(test)]
mod strategy_tests {
    use super::*;

    fn sharings(sweep: &str, sections: &str) -> Vec<Sharing> {
        let source = format!(
            "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n[sweep]\nstrategy = {sweep}\n{sections}"
        );
        let plan = parse_str(&source, Path::new("x.toml")).expect("valid");
        plan.trials.iter().map(|trial| trial.sharing).collect()
    }

    #[test]
    fn hyperparameter_lists_expand_into_their_product_in_sweep_order() {
        let ple = |experts, levels| Sharing::Ple { experts, task_experts: 1, levels };
        assert_eq!(
            sharings("[\"ple\", \"hard\"]", "[strategy.ple]\nexperts = [1, 2]\nlevels = [1, 3]\n"),
            [ple(1, 1), ple(1, 3), ple(2, 1), ple(2, 3), Sharing::Hard]
        );
        // A single value is one trial; defaults fill what the file leaves out.
        assert_eq!(
            sharings("[\"mmoe\", \"soft\"]", "[strategy.mmoe]\nexperts = 4\n"),
            [Sharing::Mmoe { experts: 4 }, Sharing::default_for(Strategy::Soft)]
        );
    }

    #[test]
    fn only_strategies_with_hyperparameters_change_their_trial_keys() {
        // Keys of hard and single-task trials must not change with the new sections (resume).
        let source = |sections: &str| {
            format!("name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n[sweep]\nstrategy = [\"hard\", \"soft\"]\n{sections}")
        };
        let keys = |sections: &str| -> Vec<String> {
            parse_str(&source(sections), Path::new("x.toml"))
                .expect("valid")
                .trials
                .into_iter()
                .map(|t| t.key)
                .collect()
        };
        let plain = keys("");
        let weighted = keys("[strategy.soft]\nweight = 0.5\n");
        assert_eq!(plain[0], weighted[0], "hard");
        assert_ne!(plain[1], weighted[1], "soft");
    }
}

#[cfg(test)]
mod lambda_space_tests {
    use super::*;

    /// The static loss weights of each trial for a `sweep.lambda` value over tasks a, b (and c).
    fn weights(lambda: &str, n_tasks: usize) -> Vec<Vec<f64>> {
        let tasks: String = ["a", "b", "c"][..n_tasks]
            .iter()
            .map(|name| format!("[[tasks]]\nname = \"{name}\"\ndata = {{ format = \"synthetic-shapes\" }}\n"))
            .collect();
        let source = format!("name = \"x\"\n{tasks}[sweep]\nlambda = {lambda}\n");
        let plan = parse_str(&source, Path::new("x.toml")).expect("valid");
        plan.trials.iter().map(|trial| trial.loss_weights(n_tasks)).collect()
    }

    #[test]
    fn per_task_lists_are_a_product_and_unlisted_tasks_keep_weight_1() {
        assert_eq!(weights("{ b = [0.5, 2] }", 2), [vec![1.0, 0.5], vec![1.0, 2.0]]);
        assert_eq!(weights("{ a = [1, 3], c = [0] }", 3), [vec![1.0, 1.0, 0.0], vec![3.0, 1.0, 0.0]]);
        // The plain list is the seed formula [1, λ, …, λ].
        assert_eq!(weights("[0.1, 10]", 3), [vec![1.0, 0.1, 0.1], vec![1.0, 10.0, 10.0]]);
    }

    #[test]
    fn a_simplex_grid_has_every_composition_of_the_total() {
        // 2 tasks, K = 4: (0, 4), (1, 3), …, (4, 0) quarters of 1.
        let two = weights("{ simplex = 4 }", 2);
        assert_eq!(two, [[0.0, 1.0], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25], [1.0, 0.0]]);
        // 3 tasks, K = 2, total 3: C(2 + 2, 2) = 6 vectors, each summing to 3.
        let three = weights("{ simplex = 2, total = 3 }", 3);
        assert_eq!(three.len(), 6);
        assert!(three.iter().all(|w| (w.iter().sum::<f64>() - 3.0).abs() < 1e-12), "{three:?}");
        assert!(three.contains(&vec![1.5, 0.0, 1.5]));
    }

    #[test]
    fn random_search_draws_log_uniform_weights_from_its_seed() {
        let drawn = weights("{ random = 200, low = 0.1, high = 10, seed = 3 }", 3);
        assert_eq!(drawn.len(), 200);
        assert!(drawn.iter().all(|w| w[0] == 1.0), "task 1 keeps weight 1");
        let others: Vec<f64> = drawn.iter().flat_map(|w| w[1..].to_vec()).collect();
        assert!(others.iter().all(|w| (0.1..=10.0).contains(w)), "{others:?}");
        // Log-uniform on [0.1, 10]: about half below 1 (400 draws; 5 standard deviations is ±50).
        let below_one = others.iter().filter(|&&w| w < 1.0).count();
        assert!((150..=250).contains(&below_one), "{below_one} of 400 below 1");
        assert_eq!(drawn, weights("{ random = 200, low = 0.1, high = 10, seed = 3 }", 3));
        assert_ne!(drawn, weights("{ random = 200, low = 0.1, high = 10, seed = 4 }", 3));
    }
}

#[cfg(test)]
mod properties {
    use super::parse_str;
    use proptest::prelude::*;
    use std::path::Path;

    /// A valid file that uses most of the format: every mutation of it must give a plan or a ConfigError.
    const BASE: &str = r#"name = "fuzz"
epochs = 2
seeds = [0, 1]
batch_size = 16
weight_decay = 0.01

[[tasks]]
name = "shapes"
kind = "image-classification"
data = { format = "synthetic-shapes", n_train = 64, n_val = 16, n_test = 16, noise = 0.5 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 64, seq_len = 16, label_noise = 0.1 }

[model]
trunk = "sequence"
image_stem = "rows"
width = 8
hidden = 8

[sweep]
strategy = ["single-task", "hard", "soft"]
weighting = ["static", "pcgrad"]
lambda = [0.5, 2.0]
lr = [0.01]

[strategy.soft]
weight = [0.01, 0.1]

[weighting.pcgrad]

[diagnostics]
every = 0
"#;

    /// Values and pieces of TOML that a typo or a wrong type could put anywhere.
    const TOKENS: &[&str] = &[
        "-1",
        "0",
        "1e999",
        "nan",
        "-inf",
        "99999999999999999999",
        "4.5",
        "\"x\"",
        "\"\"",
        "[]",
        "{}",
        "[1, \"a\"]",
        "{ simplex = 1000 }",
        "{ random = 3 }",
        "true",
        "=",
        "[",
        "]",
        "[[",
        "\"",
        "'",
        "\n",
        "#",
        "é",
        "\u{0}",
        "λ",
        "[[tasks]]",
        "[sweep]",
        "name",
        "data",
        "format",
        "lambda",
        ".",
        ",",
    ];

    #[derive(Clone, Debug)]
    enum Mutation {
        DeleteLine(usize),
        DuplicateLine(usize),
        /// Replace the bytes from a char boundary near `at` for `len` chars with a token.
        Replace {
            at: usize,
            len: usize,
            token: usize,
        },
        Truncate(usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            any::<usize>().prop_map(Mutation::DeleteLine),
            any::<usize>().prop_map(Mutation::DuplicateLine),
            (any::<usize>(), 0usize..8, 0..TOKENS.len()).prop_map(|(at, len, token)| Mutation::Replace {
                at,
                len,
                token
            }),
            any::<usize>().prop_map(Mutation::Truncate),
        ]
    }

    fn apply(text: &str, mutation: &Mutation) -> String {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let boundary = |at: usize| (0..=at % (text.len() + 1)).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        match *mutation {
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.iter().enumerate().filter(|(j, _)| *j != i % lines.len()).map(|(_, l)| *l).collect()
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let i = i % lines.len();
                lines.iter().take(i + 1).chain(lines.iter().skip(i)).copied().collect()
            }
            Mutation::Replace { at, len, token } => {
                let start = boundary(at);
                let end = text[start..].char_indices().nth(len).map_or(text.len(), |(i, _)| start + i);
                format!("{}{}{}", &text[..start], TOKENS[token], &text[end..])
            }
            Mutation::Truncate(at) => text[..boundary(at)].to_string(),
            _ => text.to_string(),
        }
    }

    /// Ok, or an error that names the file and, when it has a line, a line of the text.
    fn check(text: &str) -> Result<(), TestCaseError> {
        match parse_str(text, Path::new("fuzz.toml")) {
            Ok(plan) => prop_assert!(!plan.trials.is_empty()),
            Err(error) => {
                let shown = error.to_string();
                prop_assert!(shown.starts_with("fuzz.toml"), "{}", shown);
                if let Some(line) = error.line {
                    prop_assert!((1..=text.lines().count() + 1).contains(&line), "line {} of {:?}", line, text);
                    prop_assert!(shown.starts_with(&format!("fuzz.toml:{line}: ")), "{}", shown);
                }
                prop_assert!(!error.message.is_empty());
            }
        }
        Ok(())
    }

    proptest! {
        // Bounded: a few seconds in CI (each valid case builds a small plan).
        #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_gives_a_plan_or_an_error_naming_the_file(text in any::<String>()) {
            check(&text)?;
        }

        #[test]
        fn mutated_files_give_a_plan_or_an_error_naming_file_and_line(mutations in prop::collection::vec(mutation(), 1..4)) {
            let text = mutations.iter().fold(BASE.to_string(), |text, m| apply(&text, m));
            check(&text)?;
        }
    }

    #[test]
    fn the_base_file_is_valid() {
        let plan = parse_str(BASE, Path::new("fuzz.toml")).expect("valid");
        // single-task (1) + hard × 2 λ + soft × 2 weights × 2 λ, each under 2 methods, 2 seeds.
        assert!(plan.trials.len() > 8, "{}", plan.trials.len());
    }
}
