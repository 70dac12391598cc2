//! `[trainer]`: a program of the user's own, run per trial ([`crate::command`]).

use std::collections::BTreeMap;
use std::time::Duration;

use super::entries::TrainerEntry;
use super::{Checker, ConfigError, Key};
use crate::command::{CommandTrainer, Direction, PLACEHOLDERS};

impl Checker<'_> {
    /// The validated `[trainer]`: a command whose placeholders are known, at least one task
    /// with at least one metric, each direction the one mtl-lab reads from the metric's name
    /// (Δm%, `compare` and the best epoch read directions by name), `select` naming declared
    /// metrics, a positive `timeout`.
    pub(super) fn trainer(&self, entry: TrainerEntry) -> Result<CommandTrainer, ConfigError> {
        let at = |key: &'static str| [Key("trainer"), Key(key)];
        if entry.command.first().is_none_or(|program| program.trim().is_empty()) {
            return self.fail(&at("command"), "give the program and its arguments, e.g. [\"python3\", \"train.py\"]");
        }
        for arg in &entry.command {
            let mut rest = arg.as_str();
            while let Some(open) = rest.find('{') {
                let Some(close) = rest[open..].find('}') else { break };
                let name = &rest[open + 1..open + close];
                if !PLACEHOLDERS.contains(&name) {
                    let known: Vec<String> = PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
                    let message =
                        format!("unknown placeholder {{{name}}} in {arg:?}; the known ones: {}", known.join(", "));
                    return self.fail(&at("command"), message);
                }
                rest = &rest[open + close + 1..];
            }
        }
        if entry.metrics.is_empty() {
            return self.fail(&at("metrics"), "declare each task's metrics, e.g. { left = { accuracy = \"higher\" } }");
        }
        let mut metrics = BTreeMap::new();
        for (task, declared) in &entry.metrics {
            let path = [Key("trainer"), Key("metrics"), Key(task)];
            if !valid_name(task) {
                self.fail(&path, format!("task name {task:?}: use letters, digits, '_' and '-'"))?;
            }
            if declared.is_empty() {
                self.fail(&path, "declare at least one metric, e.g. { accuracy = \"higher\" }")?;
            }
            let mut directions = BTreeMap::new();
            for (metric, direction) in declared {
                if !valid_name(metric) {
                    self.fail(&path, format!("metric name {metric:?}: use letters, digits, '_' and '-'"))?;
                }
                let direction = match direction.as_str() {
                    "higher" => Direction::Higher,
                    "lower" => Direction::Lower,
                    other => {
                        return self.fail(&path, format!("{metric} = {other:?}: write \"higher\" or \"lower\""));
                    }
                };
                let by_name = if mtl_store::lower_is_better(metric) { Direction::Lower } else { Direction::Higher };
                if direction != by_name {
                    let message = format!(
                        "{metric} is declared {} is better, but mtl-lab reads a metric named {metric:?} as {} is better \
                         (every comparison reads directions by name: loss, error, mae, mse, rmse, … lower; the rest \
                         higher); report it under such a name, e.g. {}",
                        if direction == Direction::Lower { "lower" } else { "higher" },
                        if by_name == Direction::Lower { "lower" } else { "higher" },
                        if direction == Direction::Lower { "\"error\" or \"loss\"" } else { "\"accuracy\" or \"score\"" },
                    );
                    self.fail(&path, message)?;
                }
                directions.insert(metric.clone(), direction);
            }
            metrics.insert(task.clone(), directions);
        }
        let given = entry.select.unwrap_or_default();
        let mut select = BTreeMap::new();
        for (task, declared) in &metrics {
            let metric = match given.get(task) {
                Some(metric) if declared.contains_key(metric) => metric.clone(),
                Some(metric) => {
                    let path = [Key("trainer"), Key("select"), Key(task)];
                    return self.fail(&path, format!("{metric:?} is not a declared metric of task {task}"));
                }
                None if declared.len() == 1 => declared.keys().next().expect("one").clone(),
                None if declared.contains_key("accuracy") => "accuracy".to_string(),
                None => {
                    let path = [Key("trainer"), Key("select")];
                    let message = format!("task {task} declares several metrics: say which picks the best epoch, e.g. select = {{ {task} = \"{}\" }}", declared.keys().next().expect("some"));
                    return self.fail(&path, message);
                }
            };
            select.insert(task.clone(), metric);
        }
        if let Some(task) = given.keys().find(|t| !metrics.contains_key(*t)) {
            return self
                .fail(&[Key("trainer"), Key("select"), Key(task)], format!("{task} is not a task of trainer.metrics"));
        }
        let timeout = match entry.timeout {
            None => None,
            Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 1e9 => {
                Some(Duration::from_secs_f64(seconds))
            }
            Some(other) => return self.fail(&at("timeout"), format!("{other}: give the seconds a trial may run, > 0")),
        };
        let base = self.file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let dir = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
        Ok(CommandTrainer { command: entry.command, metrics, select, timeout, dir })
    }
}

/// Names that reach tags, SQL views and file names: letters, digits, `_` and `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
