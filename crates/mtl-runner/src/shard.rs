//! The contract between a scheduler and mtl-lab's workers: a plan file that
//! names each trial by its index, one shard database per trial, and the main
//! database the shards are merged into.
//!
//! `mtl run --executor slurm` writes the plan and submits one array task per
//! index; each task runs `mtl worker --plan PLAN --trial INDEX` (Slurm's
//! `SLURM_ARRAY_TASK_ID`, Kubernetes' `JOB_COMPLETION_INDEX`), which trains that
//! one trial into `shards/<trial key>.db`; `mtl merge` copies the shards into the
//! main database. Many machines thus never write one SQLite file over a network
//! file system. Layout, beside the main database `DB`:
//!
//! ```text
//! DB.cluster/<experiment>/plan.json
//! DB.cluster/<experiment>/shards/<trial key>.db
//! DB.cluster/<experiment>/logs/<job>_<index>.out
//! DB.cluster/<experiment>/jobs          one submitted job id per line
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError};
use crate::plan::Plan;

/// What every worker of one experiment needs, written as `plan.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// Experiment name.
    pub experiment: String,
    /// The experiment file (absolute): data paths in it are relative to its folder.
    pub experiment_file: PathBuf,
    /// Its text when the plan was written; workers plan from this, not from the file.
    pub experiment_text: String,
    /// Trial keys by index: array task `i` trains `trial_keys[i]`.
    pub trial_keys: Vec<String>,
    /// The main database (absolute).
    pub db: PathBuf,
}

/// Why a plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// Reading or writing a plan file failed.
    #[error("{path}: {message}")]
    File {
        /// The plan file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The experiment text no longer parses.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The index names no trial, or a different trial than the plan was written for.
    #[error("{path}: {message}")]
    Trial {
        /// The plan file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
}

impl ShardPlan {
    /// The plan of `plan`, read from `experiment_file`, for the main database `db`.
    pub fn new(plan: &Plan, experiment_file: &Path, db: &Path) -> ShardPlan {
        ShardPlan {
            experiment: plan.experiment.clone(),
            experiment_file: absolute(experiment_file),
            experiment_text: plan.source.clone(),
            trial_keys: plan.trials.iter().map(|t| t.key.clone()).collect(),
            db: absolute(db),
        }
    }

    /// `DB.cluster/<experiment>`: the plan, shards, logs and job ids of an experiment.
    pub fn dir_for(db: &Path, experiment: &str) -> PathBuf {
        let folder: String = experiment
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        let mut cluster = absolute(db).into_os_string();
        cluster.push(".cluster");
        PathBuf::from(cluster).join(folder)
    }

    /// This plan's folder.
    pub fn dir(&self) -> PathBuf {
        ShardPlan::dir_for(&self.db, &self.experiment)
    }

    /// The shard database of a trial.
    pub fn shard_path(&self, key: &str) -> PathBuf {
        self.dir().join("shards").join(format!("{key}.db"))
    }

    /// Every shard database of the experiment's folder, in name order.
    pub fn shards(dir: &Path) -> Vec<PathBuf> {
        let mut shards: Vec<PathBuf> = std::fs::read_dir(dir.join("shards"))
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        shards.retain(|p| p.extension().is_some_and(|e| e == "db"));
        shards.sort();
        shards
    }

    /// Writes `plan.json` (and creates `shards/` and `logs/`); returns the plan file.
    pub fn write(&self) -> Result<PathBuf, ShardError> {
        let dir = self.dir();
        let path = dir.join("plan.json");
        let file_error = |e: std::io::Error| ShardError::File { path: path.clone(), message: e.to_string() };
        for sub in ["shards", "logs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(file_error)?;
        }
        let text = serde_json::to_string_pretty(self).expect("a plan serialises");
        // Written whole, then renamed: a worker never reads half a plan.
        let partial = dir.join("plan.json.partial");
        std::fs::write(&partial, text + "\n").map_err(file_error)?;
        std::fs::rename(&partial, &path).map_err(file_error)?;
        Ok(path)
    }

    /// Reads a `plan.json`.
    pub fn read(path: &Path) -> Result<ShardPlan, ShardError> {
        let file_error = |message: String| ShardError::File { path: path.to_owned(), message };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read the plan: {e}")))?;
        serde_json::from_str(&text).map_err(|e| file_error(format!("not an mtl-lab plan file: {e}")))
    }

    /// The experiment's plan, cut down to the trial at `index`, checked against the key
    /// the plan was written with. `plan_file` is used in messages.
    pub fn trial_plan(&self, index: usize, plan_file: &Path) -> Result<Plan, ShardError> {
        let trial_error = |message: String| ShardError::Trial { path: plan_file.to_owned(), message };
        let Some(key) = self.trial_keys.get(index) else {
            return Err(trial_error(format!(
                "no trial {index}: the plan has {} (0 to {})",
                self.trial_keys.len(),
                self.trial_keys.len().saturating_sub(1)
            )));
        };
        let mut plan = config::parse_str(&self.experiment_text, &self.experiment_file)?;
        let Some(trial) = plan.trials.iter().find(|t| &t.key == key).cloned() else {
            return Err(trial_error(format!(
                "trial {index} ({key}) is not in the experiment any more: this mtl-lab plans it differently; \
                 submit the experiment again"
            )));
        };
        plan.trials = vec![trial];
        Ok(plan)
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPERIMENT: &str = r#"
name = "tiny"
epochs = 1
seeds = [0, 1]
[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 16, n_val = 8, n_test = 8 }
[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 16, n_val = 8, n_test = 8 }
[sweep]
strategy = ["hard"]
lambda = [0.5, 2.0]
"#;

    #[test]
    fn a_plan_round_trips_and_names_each_trial_by_its_index() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("tiny.toml");
        std::fs::write(&file, EXPERIMENT).expect("write");
        let plan = config::parse_file(&file).expect("plan");
        let shard_plan = ShardPlan::new(&plan, &file, &dir.path().join("mtl.db"));
        let written = shard_plan.write().expect("write plan");
        assert_eq!(written, dir.path().join("mtl.db.cluster/tiny/plan.json"));
        assert!(dir.path().join("mtl.db.cluster/tiny/shards").is_dir());
        let read = ShardPlan::read(&written).expect("read");
        assert_eq!(read, shard_plan);
        assert_eq!(read.trial_keys.len(), 4);
        for (index, trial) in plan.trials.iter().enumerate() {
            let one = read.trial_plan(index, &written).expect("trial");
            assert_eq!(one.trials, vec![trial.clone()]);
        }
        assert_eq!(
            read.shard_path(&plan.trials[1].key),
            dir.path().join(format!("mtl.db.cluster/tiny/shards/{}.db", plan.trials[1].key))
        );
        // The workers plan from the stored text: the file may change or be gone meanwhile.
        std::fs::remove_file(&file).expect("remove");
        assert!(read.trial_plan(3, &written).is_ok());
        let error = read.trial_plan(4, &written).expect_err("no such trial").to_string();
        assert!(error.contains("no trial 4: the plan has 4 (0 to 3)"), "{error}");
        let mut stale = read.clone();
        stale.trial_keys[0] = "0123456789abcdef".into();
        let error = stale.trial_plan(0, &written).expect_err("changed").to_string();
        assert!(error.contains("is not in the experiment any more"), "{error}");
        std::fs::write(&written, "{").expect("corrupt");
        assert!(ShardPlan::read(&written).expect_err("corrupt").to_string().contains("not an mtl-lab plan file"));
    }
}
