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
//! DB.cluster/<folder>/plan.json
//! DB.cluster/<folder>/shards/<trial key>.db
//! DB.cluster/<folder>/logs/<job>_<index>.out
//! DB.cluster/<folder>/jobs          one submitted job id per line
//! ```
//!
//! The folder is named after the experiment ([`folder_name`]), one folder per name:
//! `quickstart` stays `quickstart`; any other name keeps a readable part and gains a
//! hash of the whole name (`a.b` → `a_b.<16 hex>`). `plan.json` records the real name,
//! and a folder refuses the plan of another experiment ([`ShardError::OtherExperiment`]).

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
    /// A `[search]`'s trials so far (after the baselines), each a proposal's point: the
    /// coordinator (`mtl run --executor slurm`) appends them as it proposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<SearchSlot>,
}

/// A search trial of a [`ShardPlan`]: its index in `trial_keys`, and its proposal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSlot {
    /// Its index in [`ShardPlan::trial_keys`].
    pub trial: usize,
    /// The proposal's index (`search_index`).
    pub index: u64,
    /// The proposal's point as stored (`search_point`).
    pub point: String,
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
    /// The experiment's plan folder holds the plan of another experiment: older mtl-labs
    /// gave names such as `a.b` and `a_b` one folder.
    #[error(
        "{dir} holds the plan of experiment {found:?}, not of {wanted:?} (older mtl-labs gave both this folder); \
         once that plan's tasks have ended, run `mtl merge`, then move the folder out of the way and submit again"
    )]
    OtherExperiment {
        /// The plan folder.
        dir: PathBuf,
        /// The experiment its plan records.
        found: String,
        /// The experiment being planned.
        wanted: String,
    },
}

/// The longest experiment name that is its own folder name; longer ones are cut and hashed.
const PLAIN_NAME_MAX: usize = 64;

/// The folder name of an experiment's plan, one per name (injective) and short: a name of
/// at most 64 lower-case ASCII letters, digits, `-` and `_` is its own folder name; any
/// other keeps its first 64 characters with every other character as `_`, then `.` and
/// 16 hex digits of the name's sha256. Plain names have no `.`, so no plain name equals a
/// hashed one; upper case is hashed too, so that `Small` and `small` differ on
/// case-insensitive file systems.
pub fn folder_name(experiment: &str) -> String {
    let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if !experiment.is_empty() && experiment.len() <= PLAIN_NAME_MAX && experiment.chars().all(plain) {
        return experiment.to_owned();
    }
    let readable: String = experiment
        .chars()
        .take(PLAIN_NAME_MAX)
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let hash = &mtl_store::sha256_hex(experiment.as_bytes())[..16];
    format!("{readable}.{hash}")
}

/// The folder name older mtl-labs gave an experiment: every character but ASCII letters,
/// digits, `-` and `_` as `_` (not injective: `a.b` and `a_b` shared `a_b`).
fn old_folder_name(experiment: &str) -> String {
    experiment.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
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
            search: Vec::new(),
        }
    }

    /// `DB.cluster`: the plan folders of every experiment of the database `db`.
    pub fn cluster_root(db: &Path) -> PathBuf {
        let mut cluster = absolute(db).into_os_string();
        cluster.push(".cluster");
        PathBuf::from(cluster)
    }

    /// `DB.cluster/<folder>`: where the plan, shards, logs and job ids of an experiment go.
    pub fn dir_for(db: &Path, experiment: &str) -> PathBuf {
        ShardPlan::cluster_root(db).join(folder_name(experiment))
    }

    /// This plan's folder: [`ShardPlan::dir_for`], or, while that does not exist, the
    /// folder an older mtl-lab named differently if its plan records this experiment (so
    /// that its queued tasks, `mtl status` and later submissions go on there).
    pub fn dir(&self) -> PathBuf {
        let dir = ShardPlan::dir_for(&self.db, &self.experiment);
        let old = ShardPlan::cluster_root(&self.db).join(old_folder_name(&self.experiment));
        let old_is_ours = || ShardPlan::read(&old.join("plan.json")).is_ok_and(|p| p.experiment == self.experiment);
        if old != dir && !dir.exists() && old_is_ours() {
            return old;
        }
        dir
    }

    /// The shard database of a trial.
    pub fn shard_path(&self, key: &str) -> PathBuf {
        ShardPlan::shard_in(&self.dir(), key)
    }

    /// The shard database of a trial in the plan folder `dir`.
    pub fn shard_in(dir: &Path, key: &str) -> PathBuf {
        dir.join("shards").join(format!("{key}.db"))
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

    /// The plan in this plan's folder, if it has a readable one; an error if it is the
    /// plan of another experiment.
    pub fn previous(&self) -> Result<Option<ShardPlan>, ShardError> {
        let dir = self.dir();
        let Ok(previous) = ShardPlan::read(&dir.join("plan.json")) else { return Ok(None) };
        if previous.experiment != self.experiment {
            return Err(ShardError::OtherExperiment {
                dir,
                found: previous.experiment,
                wanted: self.experiment.clone(),
            });
        }
        Ok(Some(previous))
    }

    /// Writes `plan.json` (and creates `shards/` and `logs/`); returns the plan file.
    /// Refused where the folder holds another experiment's plan.
    pub fn write(&self) -> Result<PathBuf, ShardError> {
        self.previous()?;
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

    /// Reads a `plan.json`; it must be a regular file (reading a FIFO would wait for a writer).
    pub fn read(path: &Path) -> Result<ShardPlan, ShardError> {
        let file_error = |message: String| ShardError::File { path: path.to_owned(), message };
        let metadata = std::fs::metadata(path).map_err(|e| file_error(format!("cannot read the plan: {e}")))?;
        if !metadata.is_file() {
            return Err(file_error(format!("not a regular file ({})", file_kind(&metadata))));
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read the plan: {e}")))?;
        serde_json::from_str(&text).map_err(|e| file_error(format!("not an mtl-lab plan file: {e}")))
    }

    /// The experiment's whole plan, from the text the plan file keeps.
    pub fn plan(&self) -> Result<Plan, ShardError> {
        Ok(config::parse_str(&self.experiment_text, &self.experiment_file)?)
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
        let mut plan = self.plan()?;
        // A worker trains its one trial; a search is the coordinator's.
        let search = plan.search.take();
        if let (Some(slot), Some(spec)) = (self.search.iter().find(|s| s.trial == index), &search) {
            let point = crate::search::point_from_json(spec, &slot.point)
                .ok_or_else(|| trial_error(format!("trial {index}: its point {} does not fit [search]", slot.point)))?;
            let trials = config::search_trials(spec, &point)?;
            let trial = trials.iter().find(|t| &t.key == key).ok_or_else(|| {
                trial_error(format!("trial {index} ({key}) is not a trial of its point {} any more", slot.point))
            })?;
            plan.trials = vec![crate::search::proposed(trial, slot.index, &slot.point)];
            return Ok(plan);
        }
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

/// What a path that is not a regular file is, for messages.
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let file_type = metadata.file_type();
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    if metadata.is_dir() {
        "a folder"
    } else {
        "something else"
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

    #[test]
    fn each_experiment_name_has_a_folder_of_its_own_readable_and_short() {
        assert_eq!(folder_name("quickstart"), "quickstart");
        assert_eq!(folder_name("strategies-multimnist_2"), "strategies-multimnist_2");
        let long = "x".repeat(150) + &"é".repeat(150);
        let names = ["a.b", "a_b", "a/b", "日本", "中国", "Small", "small", "", "..", long.as_str(), &long[..298]];
        let folders: Vec<String> = names.iter().map(|name| folder_name(name)).collect();
        for (i, folder) in folders.iter().enumerate() {
            assert!(!folders[..i].contains(folder), "{:?} and another name share {folder}", names[i]);
            assert!(folder.len() <= 81 && !folder.is_empty() && !folder.contains('/'), "{folder}");
            assert!(folder != "." && folder != "..");
        }
        assert!(folders[0].starts_with("a_b.") && folders[5].starts_with("Small."), "{folders:?}");
        assert!(folders[9].starts_with(&"x".repeat(64)), "{}", folders[9]);
    }

    #[test]
    fn a_folder_refuses_another_experiment_and_an_old_named_folder_is_found_by_its_recorded_name() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("mtl.db");
        let file = dir.path().join("tiny.toml");
        let named = |name: &str| {
            std::fs::write(&file, EXPERIMENT.replace("\"tiny\"", &format!("{name:?}"))).expect("write");
            ShardPlan::new(&config::parse_file(&file).expect("plan"), &file, &db)
        };
        // Written by an older mtl-lab: "a.b" in `a_b`.
        let dotted = named("a.b");
        let old = dir.path().join("mtl.db.cluster/a_b");
        std::fs::create_dir_all(&old).expect("mkdir");
        std::fs::write(old.join("plan.json"), serde_json::to_string(&dotted).expect("json")).expect("write");
        assert_eq!(dotted.dir(), old);
        assert_eq!(dotted.write().expect("write"), old.join("plan.json"));
        let error = named("a_b").write().expect_err("another experiment's folder");
        assert!(matches!(&error, ShardError::OtherExperiment { found, .. } if found == "a.b"), "{error}");
        assert_eq!(ShardPlan::read(&old.join("plan.json")).expect("read").experiment, "a.b");
        // The new folder, once it exists, is the one.
        std::fs::create_dir_all(ShardPlan::dir_for(&db, "a.b")).expect("mkdir");
        assert_eq!(dotted.dir(), ShardPlan::dir_for(&db, "a.b"));
    }
}
