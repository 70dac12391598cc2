//! The crate's plain types: its error, ids, run states, settings, metric and
//! diagnostic points, provenance, and the [`RunRecord`] readers get.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::process::process_alive;
use crate::{lock, LockHolder};

/// Errors of the results database; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file does not exist (for commands that only read).
    #[error("no results database at {path} (run `mtl run` first, or pass --db)")]
    Missing {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The path is a folder, a device, a FIFO or another thing that is not a regular file.
    #[error("{path} is {kind}, not a database file")]
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is, e.g. "a folder".
        kind: &'static str,
    },
    /// A database to create whose folder does not exist.
    #[error("cannot create the database {path}: {folder} is not an existing folder")]
    NoFolder {
        /// The path given.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
    },
    /// The file exists but is not an SQLite database.
    #[error("{path} is not an mtl-lab results database (not an SQLite file)")]
    NotADatabase {
        /// The offending file.
        path: PathBuf,
    },
    /// The database was written by a newer mtl-lab.
    #[error("{path} has schema version {found}, newer than this mtl-lab supports ({supported}); upgrade mtl-lab")]
    NewerSchema {
        /// The offending file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The database is older than this build and cannot be upgraded where it lies (a
    /// read-only folder), so its tables and views are not the ones this build reads.
    #[error("{path} has schema version {found}, older than this mtl-lab's ({supported}), and its folder is read-only so it cannot be upgraded here; run any mtl command on it once where it can be written")]
    OlderSchemaReadOnly {
        /// The offending file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The version this build knows.
        supported: i64,
    },
    /// Another process held the database's lock for longer than this one waits (30 s).
    #[error("{}", lock::describe_locked(.path, .holder.as_ref(), *.waited))]
    Locked {
        /// The database file.
        path: PathBuf,
        /// The process that holds the lock, if this machine's lock table shows it.
        holder: Option<LockHolder>,
        /// How long this process waits for a lock.
        waited: Duration,
    },
    /// A statement given to [`Store::query`](crate::Store::query) would write.
    #[error("{path} is opened read-only here; this statement would change it: {statement}")]
    WriteRefused {
        /// The database file.
        path: PathBuf,
        /// The statement.
        statement: String,
    },
    /// A statement given to [`Store::query`](crate::Store::query) is not valid SQL for this database.
    #[error("{path}: {message}")]
    BadQuery {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// Another program's database (MLflow's) that cannot be read as asked.
    #[error("{path}: {message}")]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// What is wrong, and what to give instead.
        message: String,
    },
    /// Another process took over a run this one was training: it found no heartbeat
    /// for too long and took it for dead.
    #[error("{path}: run {run} was taken over by another process ({owner}); this one stops")]
    ClaimLost {
        /// The database file.
        path: PathBuf,
        /// The run.
        run: i64,
        /// Its new owner (`host:pid`), if any.
        owner: String,
    },
    /// A shard that `mtl merge` does not take: not a regular file, unreadable, or not
    /// holding exactly the trial its name designates.
    #[error(transparent)]
    Shard(#[from] ShardRejected),
    /// Any other SQLite failure (the cause follows in the error chain).
    #[error("database {path}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        source: rusqlite::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Row id of an experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExperimentId(pub i64);

/// Row id of a run (one trial of a sweep).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

/// A typed setting: numbers compare as numbers, strings as strings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A numeric setting (λ, seed, learning rate, …).
    Num(f64),
    /// A textual setting (strategy, weighting, …).
    Text(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Num(x) => write!(f, "{x}"),
            ParamValue::Text(s) => f.write_str(s),
        }
    }
}

/// Life cycle of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Training, or killed before it could say otherwise.
    #[default]
    Running,
    /// Finished every epoch.
    Done,
    /// Stopped by an error; the run's `error` says which.
    Failed,
    /// Stopped by the user.
    Interrupted,
    /// Stopped early by the sweep's `[prune]` rule; the run's `error` says at which epoch and why.
    /// Like `Done`, it is never trained again.
    Pruned,
}

impl RunStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Pruned => "pruned",
        }
    }

    pub(crate) fn parse(s: &str) -> RunStatus {
        match s {
            "done" => RunStatus::Done,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            "pruned" => RunStatus::Pruned,
            _ => RunStatus::Running,
        }
    }
}

/// Which series a metric value belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MetricKey {
    /// Task name, e.g. `digits`.
    pub task: String,
    /// `train`, `val` or `test`.
    pub split: String,
    /// `loss`, `accuracy`, `macro_f1`, …
    pub metric: String,
}

impl std::fmt::Display for MetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.task, self.split, self.metric)
    }
}

/// One value of one metric, as logged at the end of an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// Which series.
    pub key: MetricKey,
    /// The value.
    pub value: f64,
}

impl MetricPoint {
    /// A point for `task`, `split`, `metric`.
    pub fn new(task: &str, split: &str, metric: &str, value: f64) -> MetricPoint {
        let key = MetricKey { task: task.into(), split: split.into(), metric: metric.into() };
        MetricPoint { key, value }
    }
}

/// A metric value at one epoch of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    /// The run.
    pub run: RunId,
    /// 1-based epoch.
    pub epoch: u32,
    /// Which series.
    pub key: MetricKey,
    /// The value.
    pub value: f64,
}

/// One training diagnostic, averaged over a logging window: e.g. a task's
/// weight (`weight`), its gradient norm on the shared parameters
/// (`grad_norm`), or the cosine between two tasks' gradients (`grad_cosine`, with `other`).
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnosticPoint {
    /// What is measured: `weight`, `grad_norm`, `grad_cosine`, …
    pub name: String,
    /// The task.
    pub task: String,
    /// The second task of a pairwise diagnostic; empty otherwise.
    pub other: String,
    /// The value.
    pub value: f64,
}

/// A diagnostic of one run at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnosticRow {
    /// The run.
    pub run: RunId,
    /// 1-based optimiser step (counted over the whole run) that ends the logging window.
    pub step: u64,
    /// 1-based epoch of that step.
    pub epoch: u32,
    /// The point.
    pub point: DiagnosticPoint,
}

/// What is known of a run when it starts.
#[derive(Clone, Copy, Debug)]
pub struct NewRun<'a> {
    /// The experiment it belongs to.
    pub experiment: ExperimentId,
    /// Hash of the trial's resolved settings; unique within the experiment.
    pub trial_key: &'a str,
    /// The resolved settings as JSON, kept verbatim.
    pub settings_json: &'a str,
    /// The settings users filter and group by.
    pub params: &'a [(String, ParamValue)],
    /// What made the run.
    pub provenance: &'a Provenance,
}

/// What made a run: the experiment file, the program and the machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Provenance {
    /// The experiment file as given on the command line.
    pub experiment_file: Option<String>,
    /// Its text, kept in the database once per distinct content (see
    /// [`Store::blob_by_hash`](crate::Store::blob_by_hash)).
    #[serde(skip)]
    pub experiment_text: Option<String>,
    /// The mtl-lab version that ran it.
    pub mtl_version: Option<String>,
    /// `git rev-parse HEAD` of the experiment file's folder, `-dirty` appended when
    /// tracked files had uncommitted changes; none outside a git checkout.
    pub git_commit: Option<String>,
    /// The machine's host name.
    pub host: Option<String>,
    /// The device it trained on: `cpu`, or `cuda:N (GPU name, driver …, CUDA …)`; none
    /// for runs of older versions, imported runs and trainer programs.
    pub device: Option<String>,
}

/// A run with its settings, provenance and the metrics of its last and its best epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunRecord {
    /// Row id.
    pub id: RunId,
    /// Experiment name.
    pub experiment: String,
    /// Hash of the resolved settings.
    pub trial_key: String,
    /// Life-cycle state.
    pub status: RunStatus,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// RFC 3339 end time.
    pub ended_at: Option<String>,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    /// Typed settings by name.
    pub params: BTreeMap<String, ParamValue>,
    /// The last epoch logged, if any.
    pub final_epoch: Option<u32>,
    /// Metric values of the last logged epoch.
    pub final_metrics: BTreeMap<MetricKey, f64>,
    /// The epoch with the highest score by the run's [`crate::Selection`] (mean validation
    /// accuracy over the tasks unless a task is of another kind; the first
    /// on ties), set when the run finishes; none for a run without validation accuracy.
    pub best_epoch: Option<u32>,
    /// Metric values of the best epoch.
    pub best_metrics: BTreeMap<MetricKey, f64>,
    /// What made the run (its experiment file's hash is `experiment_sha256`).
    pub provenance: Provenance,
    /// sha256 of the experiment file's text.
    pub experiment_sha256: Option<String>,
    /// How many times its training started (more than 1: it was re-run after a failure or a crash).
    pub attempts: u32,
    /// The process that trains or last trained it, `host:pid` (none for runs before schema 5).
    pub owner: Option<String>,
    /// RFC 3339 time of its last heartbeat (its claim, then each epoch).
    pub heartbeat_at: Option<String>,
    /// Which epoch is its result: its experiment's rule, or a command's `--epoch`
    /// ([`RunRecord::result_metrics`]).
    pub result_rule: ResultEpoch,
    /// The revision of its experiment file: 1 for the first content its experiment ran
    /// with, 2 for the next distinct content, … (by first run); 0 when not recorded.
    pub revision: u32,
    /// Its tags (`mtl tag`), by key.
    pub tags: BTreeMap<String, String>,
    /// Its note (`mtl note`), if any.
    pub note: Option<String>,
    /// Whether it is archived (`mtl rm`): [`Store::runs`](crate::Store::runs) leaves it out.
    pub archived: bool,
}

impl RunRecord {
    /// Why this run, still `running` in the file, has no process left: its owner on
    /// `this_host` has ended (a crash, a kill). The next sweep of its experiment marks
    /// it interrupted ([`Store::interrupt_stale_runs`](crate::Store::interrupt_stale_runs)); until then readers
    /// can say so.
    pub fn owner_ended(&self, this_host: &str) -> Option<String> {
        if self.status != RunStatus::Running {
            return None;
        }
        let (host, pid) = self.owner.as_deref()?.rsplit_once(':')?;
        let pid: u32 = pid.parse().ok()?;
        (host == this_host && !process_alive(pid)).then(|| format!("its process {host}:{pid} has ended"))
    }

    /// What a listing shows as the run's error: for a run whose process ended (see
    /// [`RunRecord::owner_ended`]) that fact and what happens next, else its error.
    pub fn shown_error(&self, this_host: &str) -> Option<String> {
        match self.owner_ended(this_host) {
            Some(reason) => {
                Some(format!("{reason}; the next `mtl run` of its experiment marks it interrupted and trains it again"))
            }
            None => self.error.clone(),
        }
    }
}

/// A process that trains runs: its host, its pid, and a token unique to the process,
/// so that a later process that got the same pid is not taken for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Random, one per process.
    pub token: String,
}

impl Owner {
    /// This process, on `host`. Every call in one process gives the same token: a run
    /// whose owner has this pid but another token was left by an earlier process.
    pub fn this_process(host: &str) -> Owner {
        use std::hash::{BuildHasher, Hasher};
        static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let token = TOKEN.get_or_init(|| {
            // RandomState's keys come from the OS's random source.
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(std::process::id());
            format!("{:016x}", hasher.finish())
        });
        Owner { host: host.to_string(), pid: std::process::id(), token: token.clone() }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.pid)
    }
}

/// Which epoch stands for a run's result: `result_epoch` in the experiment file,
/// stored per experiment and overridable per command (`--epoch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResultEpoch {
    /// The best epoch on validation (the mean over tasks of each task's selecting metric:
    /// accuracy, R², mAP); the last epoch without one.
    #[default]
    BestVal,
    /// The last epoch logged.
    Last,
}

impl ResultEpoch {
    /// Every rule, as named in files and on the command line.
    pub const NAMES: [&'static str; 2] = ["best-val", "last"];

    /// The rule called `name` (`best-val` or `last`).
    pub fn parse(name: &str) -> Option<ResultEpoch> {
        match name {
            "best-val" => Some(ResultEpoch::BestVal),
            "last" => Some(ResultEpoch::Last),
            _ => None,
        }
    }

    /// Its name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ResultEpoch::BestVal => "best-val",
            ResultEpoch::Last => "last",
        }
    }

    /// How it reads in a sentence, e.g. under a table.
    pub fn describe(self) -> &'static str {
        match self {
            ResultEpoch::BestVal => {
                "each run at its best epoch on validation (mean over tasks of each task's selecting metric: \
                 accuracy for classification, R² for regression, mAP for multi-label, mIoU for segmentation, δ₁ for depth, within 11.25° for normals)"
            }
            ResultEpoch::Last => "each run at its last epoch",
        }
    }
}

impl fmt::Display for ResultEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a shard is not read or merged; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ShardRejected {
    /// A folder, a FIFO, a socket, a device or a symbolic link: workers publish regular
    /// files.
    #[error("{path}: not a regular file ({kind})")]
    NotAFile {
        /// The shard.
        path: PathBuf,
        /// What it is instead, e.g. "a FIFO".
        kind: &'static str,
    },
    /// It cannot be read as an mtl-lab database (the cause follows).
    #[error("{path}: unreadable")]
    Unreadable {
        /// The shard.
        path: PathBuf,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// SQLite's quick check found it damaged (e.g. a truncated copy).
    #[error("{path}: damaged: {message}")]
    Damaged {
        /// The shard.
        path: PathBuf,
        /// The check's first finding.
        message: String,
    },
    /// Its runs are not exactly the trial its name designates.
    #[error("{path}: holds {found}; its name designates trial {trial_key} of experiment {experiment:?} alone")]
    WrongContents {
        /// The shard.
        path: PathBuf,
        /// What it holds: "2 runs", "no run", "trial … of experiment …".
        found: String,
        /// The plan's experiment.
        experiment: String,
        /// The trial key of its name.
        trial_key: String,
    },
}
