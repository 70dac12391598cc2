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
use std::path::Path;

use mtl_data::SamplingPolicy;
use mtl_model::Strategy;

use crate::diagnostics::DiagnosticsSettings;
use crate::plan::{Plan, SweepAxes, TaskSource, TrainingSettings};
use crate::weighting::Method;

mod augment;
mod changes;
mod entries;
mod error;
mod init;
mod kinds;
mod model;
mod multimnist;
mod prune;
mod search;
mod setting_sweep;
mod shared_text;
mod size;
mod sweep;
mod tasks;
mod trainer;
mod training;
pub use changes::changed_keys;
pub use error::ConfigError;
pub use search::materialize as search_trials;
pub use setting_sweep::SWEEPABLE;
pub use size::{SweepSize, MAX_PLAN_TRIALS};

use entries::{ExperimentFile, DATA_FORMATS};
use error::{key_at, line_of, Seg};
use Seg::{Index, Key};

/// The longest experiment name, in bytes: file names made from it (with a short hash
/// added) stay under the 255 bytes most file systems allow.
const MAX_NAME_BYTES: usize = 200;

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
    let file = deserialize(source, path)?;
    if let Some(search) = &file.search {
        return checker.search(search);
    }
    if file.sweep.settings.is_empty() {
        return checker.validate(file, source);
    }
    let axes = checker.setting_axes(&file)?;
    // The whole sweep's size, before any variant is built.
    checker.bounded_sweep(&file)?;
    checker.variants(&axes, |variant| checker.validate(variant, source))
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
            ("NormalizeEntry", "expected \"train\", \"none\" or { mean = [...], std = [...] }"),
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

impl Checker<'_> {
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

    fn validate(&self, mut file: ExperimentFile, source: &str) -> Result<Plan, ConfigError> {
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
        self.non_empty(&file.seeds, &[Key("seeds")])?;
        for (i, seed) in file.seeds.iter().enumerate() {
            if file.seeds[..i].contains(seed) {
                self.fail(&[Key("seeds"), Index(i)], format!("seed {seed} is listed twice"))?;
            }
        }

        let trainer = match file.trainer.take() {
            Some(_) if !file.tasks.is_empty() => {
                return self.fail(
                    &[Key("tasks")],
                    "with a [trainer], the tasks are the keys of trainer.metrics (the program reads its own data); \
                     remove [[tasks]]",
                );
            }
            Some(entry) => Some(self.trainer(entry)?),
            None => {
                self.non_empty(&file.tasks, &[Key("tasks")])?;
                None
            }
        };
        self.bounded_sweep(&file)?;
        let mut tasks = Vec::new();
        for (i, task) in file.tasks.into_iter().enumerate() {
            tasks.push(self.task(i, task, &tasks)?);
        }

        let model = self.model(&file.model)?;
        let inits = self.inits(file.model.init.as_ref())?;
        let pretrained = self.pretrained(file.model.init.as_ref())?;
        let freeze = self.freeze(file.model.freeze.as_deref())?;
        let optimization = self.optimization(&file.optimizer, file.weight_decay)?;
        let schedule = self.schedule(&file.schedule, file.epochs)?;
        let early_stopping = self.early_stopping(file.early_stopping.as_ref())?;
        let augment = self.augmentation(file.augment.as_ref(), &tasks)?;

        let sweep = file.sweep;
        let strategies = self.names(&sweep.strategy, "strategy", &Strategy::ALL, |s| s.name())?;
        // Sections of strategies left out of the sweep are checked too: a mistake there shows
        // now (their defaults are not: PLE's 2 levels do not fit a one-block trunk).
        for strategy in Strategy::ALL.into_iter().filter(|s| !strategies.contains(s) && file.strategy.gives(*s)) {
            self.sharings(strategy, &file.strategy, &model)?;
        }
        let mut sharings = Vec::new();
        for &strategy in &strategies {
            sharings.extend(self.sharings(strategy, &file.strategy, &model)?);
        }
        self.shared_text(&tasks, &strategies)?;
        let all_methods: Vec<Method> = Method::NAMES.iter().filter_map(|name| Method::default_for(name)).collect();
        let methods = self.names(&sweep.weighting, "weighting", &all_methods, |m| m.name())?;
        for name in file.weighting.methods.keys() {
            if Method::default_for(name).is_none() {
                self.fail(
                    &[Key("weighting"), Key(name)],
                    format!("unknown weighting method \"{name}\"; expected one of {}", Method::NAMES.join(", ")),
                )?;
            }
        }
        let mut weightings = Vec::new();
        for method in &all_methods {
            let expanded = self.methods(*method, &file.weighting.methods)?;
            if methods.iter().any(|m| m.name() == method.name()) {
                weightings.push((methods.iter().position(|m| m.name() == method.name()), expanded));
            }
        }
        // In the order of sweep.weighting.
        weightings.sort_by_key(|(position, _)| *position);
        let weightings: Vec<Method> = weightings.into_iter().flat_map(|(_, expanded)| expanded).collect();
        let task_names: Vec<String> = match &trainer {
            Some(trainer) => trainer.metrics.keys().cloned().collect(),
            None => tasks.iter().map(|t: &TaskSource| t.name.clone()).collect(),
        };
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
            optimizer: optimization.optimizer,
            clip_norm: optimization.clip_norm,
            schedule,
            early_stopping,
            sampling,
            model,
            dropout,
            augment,
            pretrained,
            freeze,
            rep_grad: file.weighting.rep_grad.unwrap_or(false),
            trainer,
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
        let device = match file.device.as_deref().map(crate::device::DeviceSpec::parse) {
            None => crate::device::DeviceSpec::Cpu,
            Some(Ok(device)) => device,
            Some(Err(e)) => return self.fail(&[Key("device")], e.to_string()),
        };
        let prune = self.prune(file.prune.as_ref(), file.epochs, &task_names)?;
        let mut plan = Plan::new(file.name, source.to_string(), tasks, settings, axes);
        plan.result_epoch = result_epoch;
        plan.device = device;
        plan.prune = prune;
        Ok(plan)
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
