//! MLflow's file store (the `mlruns/` folder MLflow writes without a tracking server), read
//! as MLflow documents and writes it:
//!
//! | path | holds |
//! |---|---|
//! | `<experiment id>/meta.yaml` | `experiment_id`, `name`, `lifecycle_stage`, … |
//! | `<experiment id>/<run id>/meta.yaml` | `run_id`, `run_name`, `status` (1 running, 2 scheduled, 3 finished, 4 failed, 5 killed), `lifecycle_stage`, … |
//! | `<run>/params/<key>` | the value, as text |
//! | `<run>/metrics/<key>` | one line per logged value: `timestamp value step` (`step` absent in old files: 0) |
//! | `<run>/tags/<key>` | the value, as text |
//!
//! A key with `/` in it is a nested path (`metrics/val/acc` is key `val/acc`). Runs and
//! experiments whose `lifecycle_stage` is `deleted`, and the `.trash` folder, are left out.
//! Only the flat `key: value` lines of `meta.yaml` are read (MLflow writes them so);
//! quoted values are unquoted. Reads only: nothing is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::files;
use crate::DataError;

/// The largest metrics file read (bytes): 256 MiB, about 8 million logged values.
pub const MAX_METRIC_FILE: u64 = 256 << 20;

/// The largest param or tag value read (bytes); MLflow itself caps params at 6,000 characters.
pub const MAX_VALUE: u64 = 1 << 20;

/// How an MLflow run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Running or scheduled (never ended).
    Unfinished,
    /// `FINISHED`.
    Finished,
    /// `FAILED`.
    Failed,
    /// `KILLED`.
    Killed,
}

/// One logged value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Logged {
    /// Milliseconds since the epoch, as MLflow stamps it.
    pub timestamp: i64,
    /// The value (may be NaN: MLflow accepts it).
    pub value: f64,
    /// The step it was logged at.
    pub step: i64,
}

/// One MLflow run.
#[derive(Clone, Debug, PartialEq)]
pub struct MlflowRun {
    /// Its id (the folder name).
    pub run_id: String,
    /// Its name, if it has one.
    pub run_name: Option<String>,
    /// How it ended.
    pub state: RunState,
    /// Params by key.
    pub params: BTreeMap<String, String>,
    /// Tags by key (MLflow's own `mlflow.*` tags included).
    pub tags: BTreeMap<String, String>,
    /// Every logged value of each metric, in file order.
    pub metrics: BTreeMap<String, Vec<Logged>>,
}

/// The runs of experiment `experiment` (its name, or its id) in the file store at `root`,
/// by run id.
pub fn read_experiment(root: &Path, experiment: &str) -> Result<Vec<MlflowRun>, DataError> {
    let mut names = Vec::new();
    let mut found = None;
    for folder in subfolders(root)? {
        let meta_path = folder.join("meta.yaml");
        if !meta_path.is_file() {
            continue;
        }
        let meta = meta_yaml(&meta_path)?;
        if meta.get("lifecycle_stage").map(String::as_str) == Some("deleted") {
            continue;
        }
        let name = meta.get("name").cloned().unwrap_or_default();
        let id = meta.get("experiment_id").cloned().unwrap_or_default();
        if name == experiment || id == experiment {
            found = Some(folder);
            break;
        }
        names.push(format!("{name:?} (id {id})"));
    }
    let Some(folder) = found else {
        let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        let message = format!(
            "no experiment named {experiment:?} (or with that id) in this MLflow file store; it holds: {known}"
        );
        return Err(DataError::invalid(root, message));
    };
    let mut runs = Vec::new();
    for run_folder in subfolders(&folder)? {
        let meta_path = run_folder.join("meta.yaml");
        if !meta_path.is_file() {
            continue;
        }
        if let Some(run) = read_run(&run_folder, &meta_yaml(&meta_path)?)? {
            runs.push(run);
        }
    }
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    Ok(runs)
}

/// The run in `folder`, or `None` when MLflow deleted it.
fn read_run(folder: &Path, meta: &BTreeMap<String, String>) -> Result<Option<MlflowRun>, DataError> {
    if meta.get("lifecycle_stage").map(String::as_str) == Some("deleted") {
        return Ok(None);
    }
    let meta_path = folder.join("meta.yaml");
    let run_id = match meta.get("run_id").or_else(|| meta.get("run_uuid")) {
        Some(id) if !id.is_empty() => id.clone(),
        _ => return Err(DataError::invalid(meta_path, "no run_id")),
    };
    let state = match meta.get("status").map(String::as_str) {
        Some("3") | Some("FINISHED") => RunState::Finished,
        Some("4") | Some("FAILED") => RunState::Failed,
        Some("5") | Some("KILLED") => RunState::Killed,
        Some("1") | Some("2") | Some("RUNNING") | Some("SCHEDULED") => RunState::Unfinished,
        other => {
            let message = format!("status {other:?}: expected 1 to 5 (running, scheduled, finished, failed, killed)");
            return Err(DataError::invalid(meta_path, message));
        }
    };
    let run_name = meta.get("run_name").filter(|n| !n.is_empty()).cloned();
    let mut metrics = BTreeMap::new();
    for (key, path) in keyed_files(&folder.join("metrics"))? {
        metrics.insert(key, metric_file(&path)?);
    }
    let text_values = |sub: &str| -> Result<BTreeMap<String, String>, DataError> {
        let mut values = BTreeMap::new();
        for (key, path) in keyed_files(&folder.join(sub))? {
            values.insert(key, value_file(&path)?);
        }
        Ok(values)
    };
    Ok(Some(MlflowRun { run_id, run_name, state, params: text_values("params")?, tags: text_values("tags")?, metrics }))
}

/// The folders in `dir`, sorted, `.trash` left out.
fn subfolders(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() && entry.file_name() != ".trash" {
            folders.push(path);
        }
    }
    folders.sort();
    Ok(folders)
}

/// Every file under `dir` (none when it is absent) with its key: its path below `dir`, `/`-joined.
fn keyed_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let mut found = Vec::new();
    if !dir.is_dir() {
        return Ok(found);
    }
    let mut pending = vec![(String::new(), dir.to_path_buf(), 0)];
    while let Some((prefix, folder, depth)) = pending.pop() {
        if depth > 16 {
            return Err(DataError::invalid(folder, "keys nested more than 16 levels deep"));
        }
        let entries = std::fs::read_dir(&folder).map_err(|e| DataError::io(&folder, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DataError::io(&folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let path = entry.path();
            if path.is_dir() {
                pending.push((key, path, depth + 1));
            } else {
                found.push((key, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A param or tag file's value.
fn value_file(path: &Path) -> Result<String, DataError> {
    let len = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.len();
    if len > MAX_VALUE {
        return Err(DataError::invalid(path, format!("{len} bytes; a value holds at most {MAX_VALUE}")));
    }
    Ok(String::from_utf8_lossy(&files::read_text(path)?).into_owned())
}

/// A metrics file's values.
fn metric_file(path: &Path) -> Result<Vec<Logged>, DataError> {
    let len = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.len();
    if len > MAX_METRIC_FILE {
        let message = format!("{len} bytes; a metrics file holds at most {MAX_METRIC_FILE}");
        return Err(DataError::invalid(path, message));
    }
    let text = String::from_utf8_lossy(&files::read_text(path)?).into_owned();
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |what: &str| {
            let shown = crate::files::escape_control(line);
            DataError::invalid(path, format!("line {}: {what} in {shown:?}; expected `timestamp value step`", i + 1))
        };
        if !(2..=3).contains(&fields.len()) {
            return Err(bad(&format!("{} fields", fields.len())));
        }
        let timestamp = fields[0].parse().map_err(|_| bad("a timestamp that is not a whole number"))?;
        let value = match fields[1].to_ascii_lowercase().as_str() {
            "nan" => f64::NAN,
            other => other.parse().map_err(|_| bad("a value that is not a number"))?,
        };
        let step = match fields.get(2) {
            Some(step) => step.parse().map_err(|_| bad("a step that is not a whole number"))?,
            None => 0,
        };
        values.push(Logged { timestamp, value, step });
    }
    Ok(values)
}

/// The flat `key: value` lines of a `meta.yaml` (nested entries, e.g. `tags: []`, kept as written).
fn meta_yaml(path: &Path) -> Result<BTreeMap<String, String>, DataError> {
    let text = String::from_utf8_lossy(&files::read_text(path)?).into_owned();
    let mut meta = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('-') || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(value);
            meta.insert(key.trim().to_string(), unquoted.to_string());
        }
    }
    Ok(meta)
}

#[cfg(test)]
#[path = "mlflow_tests.rs"]
mod tests;
