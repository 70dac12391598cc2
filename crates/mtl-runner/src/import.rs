//! Runs from elsewhere into the store: MLflow's file store or SQLite database (`mtl import mlflow`).
//!
//! Each MLflow run becomes one run of the target experiment, its trial key the sha256 of
//! `mlflow:<run id>`, so that importing twice finds every run already there and changes
//! nothing. Params become settings (numbers where they parse as one), renamed as asked
//! (`seed` and `strategy` are the ones `compare` groups and picks baselines by). A metric
//! key is read as task, split and metric by a pattern such as `{split}_{task}_{metric}`;
//! keys that do not match are skipped and listed. A run's epochs are its steps, the
//! smallest step being epoch 1; of several values at one step the last logged counts, and
//! values that are not finite are skipped and counted. User tags become tags (MLflow's own
//! `mlflow.*` ones are left out; characters other than letters, digits, `_` and `-` in a
//! key become `_`), with `mlflow_run_id` and `mlflow_run_name` beside them.

use std::collections::{BTreeMap, BTreeSet};

use mtl_data::formats::mlflow::{Logged, MlflowRun, RunState};
use mtl_store::{MetricPoint, NewRun, ParamValue, Provenance, RunStatus, Store};
use serde_json::json;

/// How metric keys and params are read.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportOptions {
    /// The experiment the runs go into.
    pub experiment: String,
    /// How a metric key names its task, split and metric.
    pub pattern: KeyPattern,
    /// Names replaced after matching (`acc` → `accuracy`, `valid` → `val`), in any of the three parts.
    pub names: BTreeMap<String, String>,
    /// Params renamed: MLflow's name → the setting's.
    pub params: BTreeMap<String, String>,
    /// Where the runs came from (kept as each run's experiment file, for `mtl show`).
    pub source: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportSummary {
    /// Runs written.
    pub imported: usize,
    /// Runs already in the store as they are now.
    pub unchanged: usize,
    /// Metric keys that did not match the pattern (or named a split other than train, val, test).
    pub skipped_keys: BTreeSet<String>,
    /// Logged values left out for not being finite.
    pub non_finite: usize,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A pattern or option that cannot work.
    #[error("{0}")]
    Options(String),
    /// The store refused a write.
    #[error(transparent)]
    Store(#[from] mtl_store::StoreError),
}

/// A metric key's layout: literal text with `{task}`, `{split}` and `{metric}` once each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Task,
    Split,
    Metric,
}

impl KeyPattern {
    /// Reads `pattern`; each placeholder must appear once, and two may not touch (their
    /// boundary would be ambiguous).
    pub fn parse(pattern: &str) -> Result<KeyPattern, ImportError> {
        let mut parts = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            let next = ["{task}", "{split}", "{metric}"]
                .iter()
                .filter_map(|p| rest.find(p).map(|at| (at, *p)))
                .min_by_key(|(at, _)| *at);
            match next {
                Some((0, placeholder)) => {
                    parts.push(match placeholder {
                        "{task}" => Part::Task,
                        "{split}" => Part::Split,
                        _ => Part::Metric,
                    });
                    rest = &rest[placeholder.len()..];
                }
                Some((at, _)) => {
                    parts.push(Part::Literal(rest[..at].to_string()));
                    rest = &rest[at..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        let bad = |why: &str| {
            ImportError::Options(format!(
                "metric pattern {pattern:?}: {why}; write e.g. \"{{split}}_{{task}}_{{metric}}\" or \"{{task}}/{{split}}/{{metric}}\""
            ))
        };
        for (part, name) in [(Part::Task, "{task}"), (Part::Split, "{split}"), (Part::Metric, "{metric}")] {
            if parts.iter().filter(|p| **p == part).count() != 1 {
                return Err(bad(&format!("{name} must appear exactly once")));
            }
        }
        if parts.windows(2).any(|w| !matches!(w[0], Part::Literal(_)) && !matches!(w[1], Part::Literal(_))) {
            return Err(bad("two placeholders touch, so their boundary is ambiguous"));
        }
        Ok(KeyPattern { parts })
    }

    /// `(task, split, metric)` of `key`, each non-empty; the first match where several fit.
    pub fn match_key(&self, key: &str) -> Option<(String, String, String)> {
        let mut found = [String::new(), String::new(), String::new()];
        matches(&self.parts, key, &mut found).then(|| found.into())
    }
}

/// Whether `parts` match all of `text`, filling `found` (task, split, metric).
fn matches(parts: &[Part], text: &str, found: &mut [String; 3]) -> bool {
    let Some((first, rest)) = parts.split_first() else { return text.is_empty() };
    let slot = match first {
        Part::Literal(literal) => {
            return text.strip_prefix(literal.as_str()).is_some_and(|after| matches(rest, after, found))
        }
        Part::Task => 0,
        Part::Split => 1,
        Part::Metric => 2,
    };
    // A placeholder takes 1.. characters: the shortest that lets the rest match.
    let ends = text.char_indices().skip(1).map(|(end, _)| end).chain(std::iter::once(text.len()));
    for end in ends.filter(|&end| end > 0) {
        if matches(rest, &text[end..], found) {
            found[slot] = text[..end].to_string();
            return true;
        }
    }
    false
}

/// The runs of MLflow's SQLite database ([`mtl_store::mlflow`]) as the file store's reader gives them.
pub fn runs_from_sqlite(rows: Vec<mtl_store::mlflow::MlflowRunRows>) -> Vec<MlflowRun> {
    rows.into_iter()
        .map(|run| {
            let state = match run.status.as_str() {
                "FINISHED" => RunState::Finished,
                "FAILED" => RunState::Failed,
                "KILLED" => RunState::Killed,
                _ => RunState::Unfinished,
            };
            let mut metrics: BTreeMap<String, Vec<Logged>> = BTreeMap::new();
            for (key, timestamp, value, step) in run.metrics {
                metrics.entry(key).or_default().push(Logged { timestamp, value, step });
            }
            MlflowRun {
                run_id: run.run_id,
                run_name: Some(run.name).filter(|n| !n.is_empty()),
                state,
                params: run.params.into_iter().collect(),
                tags: run.tags.into_iter().collect(),
                metrics,
            }
        })
        .collect()
}

/// Imports `runs` into `store` as `options` say.
pub fn import_mlflow(
    store: &mut Store,
    runs: &[MlflowRun],
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let experiment = store.experiment(&options.experiment)?;
    let existing: BTreeMap<String, RunStatus> = store
        .runs_including_archived(Some(&options.experiment))?
        .into_iter()
        .map(|run| (run.trial_key, run.status))
        .collect();
    let mut summary = ImportSummary::default();
    let provenance = Provenance {
        experiment_file: Some(options.source.clone()),
        mtl_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        ..Provenance::default()
    };
    for run in runs {
        let trial_key = mtl_store::sha256_hex(format!("mlflow:{}", run.run_id).as_bytes());
        let status = match run.state {
            RunState::Finished => RunStatus::Done,
            RunState::Failed => RunStatus::Failed,
            RunState::Killed | RunState::Unfinished => RunStatus::Interrupted,
        };
        let epochs = epochs(run, options, &mut summary);
        if existing.get(&trial_key) == Some(&status) {
            summary.unchanged += 1;
            continue;
        }
        let params: Vec<(String, ParamValue)> = run
            .params
            .iter()
            .map(|(key, value)| {
                let name = options.params.get(key).cloned().unwrap_or_else(|| key.clone());
                let value = match value.trim().parse::<f64>() {
                    Ok(number) if number.is_finite() => ParamValue::Num(number),
                    _ => ParamValue::Text(value.clone()),
                };
                (name, value)
            })
            .collect();
        let settings = json!({ "mlflow_run_id": run.run_id, "params": run.params });
        let new = NewRun {
            experiment,
            trial_key: &trial_key,
            settings_json: &settings.to_string(),
            params: &params,
            provenance: &provenance,
        };
        let id = store.begin_run(&new)?;
        for (epoch, points) in &epochs {
            store.log_epoch(id, *epoch, points)?;
        }
        let mut tags: Vec<(String, String)> =
            run.tags.iter().filter(|(k, _)| !k.starts_with("mlflow.")).map(|(k, v)| (k.clone(), v.clone())).collect();
        tags.push(("mlflow_run_id".into(), run.run_id.clone()));
        if let Some(name) = &run.run_name {
            tags.push(("mlflow_run_name".into(), name.clone()));
        }
        for (key, value) in tags {
            // Tag keys are letters, digits, `_` and `-` (`--where "tag.KEY = …"` reads them).
            let key: String =
                key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
            store.tag_runs(&[id], &key, &value)?;
        }
        let error = match run.state {
            RunState::Failed => Some("failed in MLflow"),
            RunState::Killed => Some("killed in MLflow"),
            RunState::Unfinished => Some("not finished in MLflow when imported"),
            RunState::Finished => None,
        };
        store.finish_run(id, status, error)?;
        summary.imported += 1;
    }
    Ok(summary)
}

/// One epoch's values by (task, split, metric), each with its timestamp.
type LastValues = BTreeMap<(String, String, String), (i64, f64)>;

/// The run's metrics by epoch, as the module doc says.
fn epochs(run: &MlflowRun, options: &ImportOptions, summary: &mut ImportSummary) -> Vec<(u32, Vec<MetricPoint>)> {
    let rename = |name: String| options.names.get(&name).cloned().unwrap_or(name);
    let mut mapped = Vec::new();
    for (key, values) in &run.metrics {
        match options.pattern.match_key(key) {
            Some((task, split, metric)) => {
                let (task, split, metric) = (rename(task), rename(split), rename(metric));
                if ["train", "val", "test"].contains(&split.as_str()) {
                    mapped.push((task, split, metric, values));
                    continue;
                }
                summary.skipped_keys.insert(key.clone());
            }
            None => {
                summary.skipped_keys.insert(key.clone());
            }
        }
    }
    let first_step = mapped.iter().flat_map(|(.., values)| values.iter().map(|v| v.step)).min().unwrap_or(0);
    let mut by_epoch: BTreeMap<u32, LastValues> = BTreeMap::new();
    for (task, split, metric, values) in mapped {
        for logged in values.iter() {
            if !logged.value.is_finite() {
                summary.non_finite += 1;
                continue;
            }
            let epoch = u32::try_from(logged.step - first_step + 1).unwrap_or(u32::MAX);
            let slot = by_epoch.entry(epoch).or_default().entry((task.clone(), split.clone(), metric.clone()));
            // The last logged (latest timestamp; file order among equals) counts.
            let entry = slot.or_insert((logged.timestamp, logged.value));
            if logged.timestamp >= entry.0 {
                *entry = (logged.timestamp, logged.value);
            }
        }
    }
    by_epoch
        .into_iter()
        .map(|(epoch, values)| {
            let points = values.into_iter().map(|((t, s, m), (_, v))| MetricPoint::new(&t, &s, &m, v)).collect();
            (epoch, points)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_splits_keys_into_task_split_and_metric() {
        let pattern = KeyPattern::parse("{split}_{task}_{metric}").expect("valid");
        assert_eq!(pattern.match_key("val_left_acc"), Some(("left".into(), "val".into(), "acc".into())));
        // The shortest split and task that let the rest match: metric names may hold `_`.
        assert_eq!(pattern.match_key("test_right_top_5"), Some(("right".into(), "test".into(), "top_5".into())));
        assert_eq!(pattern.match_key("loss"), None);
        let slashes = KeyPattern::parse("{task}/{split}/{metric}").expect("valid");
        assert_eq!(slashes.match_key("left/train/loss"), Some(("left".into(), "train".into(), "loss".into())));
        assert_eq!(slashes.match_key("left/train/"), None, "parts are never empty");
        for (bad, why) in [
            ("{task}_{metric}", "{split} must appear exactly once"),
            ("{task}{split}_{metric}", "two placeholders touch"),
            ("{task}_{task}_{split}_{metric}", "{task} must appear exactly once"),
        ] {
            let error = KeyPattern::parse(bad).expect_err(bad).to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
