//! The results database: the only crate that knows SQL.
//!
//! A [`Store`] is one SQLite file in WAL mode. Its schema is an ordered list of
//! migrations tracked by `PRAGMA user_version`; a database written by a newer
//! mtl-lab is refused, never modified. All writes of one epoch go in one
//! transaction, so a crash leaves either the whole epoch or none of it.
//! Write transactions start `IMMEDIATE`: a deferred one that read first could
//! not upgrade to a write after another writer committed, and would fail with
//! "database is locked" instead of waiting for the busy timeout.
//!
//! Several processes may run one sweep: [`Store::claim_run`] takes a trial in one
//! transaction only if no live process has it, so no trial is trained twice; the
//! owner's heartbeat goes with each epoch's metrics.
//!
//! ```no_run
//! use mtl_store::{MetricPoint, NewRun, RunStatus, Store};
//! let mut store = Store::open("mtl.db".as_ref())?;
//! let experiment = store.experiment("quickstart")?;
//! let provenance = mtl_store::Provenance::default();
//! let new_run = NewRun { experiment, trial_key: "ab12", settings_json: "{}", params: &[], provenance: &provenance };
//! let run = store.begin_run(&new_run)?;
//! store.log_epoch(run, 1, &[MetricPoint::new("digits", "test", "accuracy", 0.97)])?;
//! store.finish_run(run, RunStatus::Done, None)?;
//! # Ok::<(), mtl_store::StoreError>(())
//! ```
#![warn(missing_docs)]

pub mod filter;
mod lock;
mod merge;
mod open;
mod query;
mod result;
mod revision;
mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;

pub use lock::LockHolder;
pub use merge::{MergeSummary, ShardRejected, ShardTrial};
pub use query::{QueryResult, QuerySummary, SqlValue};
pub use result::{override_result_epoch, ResultEpoch};
use revision::number_revisions;
pub use revision::LatestRevision;
pub use schema::SCHEMA_VERSION;

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
    /// A statement given to [`Store::query`] would write.
    #[error("{path} is opened read-only here; this statement would change it: {statement}")]
    WriteRefused {
        /// The database file.
        path: PathBuf,
        /// The statement.
        statement: String,
    },
    /// A statement given to [`Store::query`] is not valid SQL for this database.
    #[error("{path}: {message}")]
    BadQuery {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
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
}

impl RunStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "done" => RunStatus::Done,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
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
    /// Its text, kept in the database once per distinct content (see [`Store::blob_by_hash`]).
    #[serde(skip)]
    pub experiment_text: Option<String>,
    /// The mtl-lab version that ran it.
    pub mtl_version: Option<String>,
    /// `git rev-parse HEAD` of the experiment file's folder, `-dirty` appended when
    /// tracked files had uncommitted changes; none outside a git checkout.
    pub git_commit: Option<String>,
    /// The machine's host name.
    pub host: Option<String>,
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
    /// The epoch with the highest mean validation accuracy over the tasks (the first
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
}

impl RunRecord {
    /// Why this run, still `running` in the file, has no process left: its owner on
    /// `this_host` has ended (a crash, a kill). The next sweep of its experiment marks
    /// it interrupted ([`Store::interrupt_stale_runs`]); until then readers can say so.
    pub fn owner_ended(&self, this_host: &str) -> Option<String> {
        if self.status != RunStatus::Running {
            return None;
        }
        let (host, pid) = self.owner.as_deref()?.rsplit_once(':')?;
        let pid: u32 = pid.parse().ok()?;
        (host == this_host && !process_alive(pid)).then(|| format!("its process {host}:{pid} has ended"))
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

/// How [`Store::claim_run`] decides that a trial is free.
#[derive(Clone, Debug)]
pub struct ClaimPolicy {
    /// The claiming process.
    pub owner: Owner,
    /// A `running` run whose owner cannot be checked (another host) is taken for dead
    /// after this long without a heartbeat.
    pub stale_after: Duration,
    /// Failed or interrupted runs that ended at or after this time (RFC 3339, see
    /// [`now_timestamp`]) were tried by a process of the same wave of sweeps: left as they are.
    pub retry_ended_before: String,
}

/// The answer of [`Store::claim_run`].
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// The trial is this process's to train: a new row, or its old one reset.
    Claimed {
        /// Its run.
        run: RunId,
        /// 1 for the first training, 2 for the second, …
        attempt: u32,
        /// Why an earlier attempt left it `running` though its process is gone (it was
        /// marked interrupted first), if that happened.
        recovered: Option<String>,
    },
    /// Already done.
    Done,
    /// A live process trains it.
    Running {
        /// `host:pid`.
        owner: String,
    },
    /// It failed or was interrupted since [`ClaimPolicy::retry_ended_before`].
    Tried {
        /// `Failed` or `Interrupted`.
        status: RunStatus,
    },
}

/// A `running` run whose process is gone, as [`Store::interrupt_stale_runs`] found it.
#[derive(Clone, Debug, PartialEq)]
pub struct StaleRun {
    /// The run.
    pub run: RunId,
    /// Its trial.
    pub trial_key: String,
    /// Why it is taken for dead, e.g. "its process node7:4242 has ended".
    pub reason: String,
}

/// An open results database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The owner token of each run this connection claimed and has not finished.
    claimed: HashMap<RunId, String>,
}

impl Store {
    /// Opens `path` for reading and writing, creating and migrating it as needed. A path
    /// that is a folder or not a regular file, or in a folder that does not exist, is
    /// refused before anything is created.
    pub fn open(path: &Path) -> Result<Store> {
        Store::init(open::connect(path, open::Mode::Create)?, path)
    }

    /// Opens an existing database; fails if `path` does not exist. Where the file's
    /// folder cannot be written (a read-only mount) the database is opened read-only.
    pub fn open_existing(path: &Path) -> Result<Store> {
        Store::init(open::connect(path, open::Mode::Existing(OpenFlags::SQLITE_OPEN_READ_WRITE))?, path)
    }

    /// Opens an existing database read-only: SQLite refuses every write through it.
    /// The database must have this build's schema (open it once with
    /// [`Store::open_existing`] to migrate an older one).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let open::Opened { conn, version } =
            open::connect(path, open::Mode::Existing(OpenFlags::SQLITE_OPEN_READ_ONLY))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { path: path.to_owned(), found: version, supported: SCHEMA_VERSION });
        }
        conn.pragma_update(None, "query_only", true).map_err(|e| sqlite_err(path, e))?;
        Ok(Store { conn, path: path.to_owned(), claimed: HashMap::new() })
    }

    /// `PRAGMA user_version`: the schema version of the file.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| sqlite_err(&self.path, e))
    }

    fn init(opened: open::Opened, path: &Path) -> Result<Store> {
        let open::Opened { mut conn, version } = opened;
        let err = |e| sqlite_err(path, e);
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { path: path.to_owned(), found: version, supported: SCHEMA_VERSION });
        }
        // A file SQLite could open only for reading (read-only media) is read as it is.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
            if version < SCHEMA_VERSION {
                return Err(StoreError::OlderSchemaReadOnly {
                    path: path.to_owned(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            return Ok(Store { conn, path: path.to_owned(), claimed: HashMap::new() });
        }
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        // A new file has version 0; an up-to-date one skips the exclusive lock of `migrate`.
        if version < SCHEMA_VERSION {
            schema::migrate(&mut conn).map_err(err)?;
        }
        Ok(Store { conn, path: path.to_owned(), claimed: HashMap::new() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| sqlite_err(&self.path, e)
    }

    /// The id of experiment `name`, created if new.
    pub fn experiment(&mut self, name: &str) -> Result<ExperimentId> {
        let now = now();
        self.conn
            .execute(
                "INSERT INTO experiments (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, now],
            )
            .map_err(self.err())?;
        let id = self
            .conn
            .query_row("SELECT id FROM experiments WHERE name = ?1", [name], |r| r.get(0))
            .map_err(self.err())?;
        Ok(ExperimentId(id))
    }

    /// Names of all experiments, oldest first.
    pub fn experiments(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT name FROM experiments ORDER BY id").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The run of `trial_key` in `experiment`, if one was ever started.
    pub fn run_status(&self, experiment: ExperimentId, trial_key: &str) -> Result<Option<(RunId, RunStatus)>> {
        self.conn
            .query_row(
                "SELECT id, status FROM runs WHERE experiment_id = ?1 AND trial_key = ?2",
                params![experiment.0, trial_key],
                |r| Ok((RunId(r.get(0)?), RunStatus::parse(&r.get::<_, String>(1)?))),
            )
            .optional()
            .map_err(self.err())
    }

    /// Marks a trial as running, in one transaction, whoever else may have it. A trial
    /// that ran before keeps its row; its old metrics and settings are cleared. Sweeps
    /// use [`Store::claim_run`], which refuses a trial that a live process trains.
    pub fn begin_run(&mut self, new: &NewRun) -> Result<RunId> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM runs WHERE experiment_id = ?1 AND trial_key = ?2",
                params![new.experiment.0, new.trial_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let (run, _) = start_run(&tx, existing.map(RunId), new, None).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(run)
    }

    /// Claims a trial for `policy.owner`, in one transaction: it is taken if it has no
    /// run yet, or its run failed or was interrupted (before `policy.retry_ended_before`),
    /// or its run is `running` but its process is gone (an owner on this host whose pid
    /// is dead, or no heartbeat for `policy.stale_after`); such a run is marked
    /// interrupted and then reset. A taken trial's row is reset as by [`Store::begin_run`],
    /// with the owner, a heartbeat and one more attempt.
    pub fn claim_run(&mut self, new: &NewRun, policy: &ClaimPolicy) -> Result<Claim> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let existing = tx
            .query_row(
                &format!("SELECT {OWNED_RUN_COLUMNS} FROM runs WHERE experiment_id = ?1 AND trial_key = ?2"),
                params![new.experiment.0, new.trial_key],
                OwnedRun::from_row,
            )
            .optional()
            .map_err(err)?;
        let mut recovered = None;
        if let Some(row) = &existing {
            match row.status {
                RunStatus::Done => return Ok(Claim::Done),
                RunStatus::Running => match row.stale_because(policy) {
                    None => return Ok(Claim::Running { owner: row.owner_text() }),
                    Some(reason) => {
                        row.mark_interrupted(&tx, &reason).map_err(err)?;
                        recovered = Some(reason);
                    }
                },
                RunStatus::Failed | RunStatus::Interrupted => {
                    let ended_since = row.ended_at.as_deref().is_some_and(|t| *t >= *policy.retry_ended_before);
                    if ended_since {
                        return Ok(Claim::Tried { status: row.status });
                    }
                }
            }
        }
        let (run, attempt) = start_run(&tx, existing.map(|row| row.id), new, Some(&policy.owner)).map_err(err)?;
        tx.commit().map_err(err)?;
        self.claimed.insert(run, policy.owner.token.clone());
        Ok(Claim::Claimed { run, attempt, recovered })
    }

    /// Marks every `running` run of `experiment` whose process is gone (see
    /// [`Store::claim_run`]) as interrupted, in one transaction, ended at its last heartbeat.
    pub fn interrupt_stale_runs(&mut self, experiment: ExperimentId, policy: &ClaimPolicy) -> Result<Vec<StaleRun>> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let running: Vec<(OwnedRun, String)> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {OWNED_RUN_COLUMNS}, trial_key FROM runs WHERE experiment_id = ?1 AND status = 'running'"
                ))
                .map_err(err)?;
            let rows = stmt.query_map([experiment.0], |r| Ok((OwnedRun::from_row(r)?, r.get(9)?))).map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        let mut stale = Vec::new();
        for (row, trial_key) in running {
            if let Some(reason) = row.stale_because(policy) {
                row.mark_interrupted(&tx, &reason).map_err(err)?;
                stale.push(StaleRun { run: row.id, trial_key, reason });
            }
        }
        tx.commit().map_err(err)?;
        Ok(stale)
    }

    /// Stores `content` as artifact `name` of `run` (e.g. `vocabulary/sentiment`);
    /// identical content is kept once. Returns its sha256.
    pub fn attach_blob(&mut self, run: RunId, name: &str, content: &[u8]) -> Result<String> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let sha256 = insert_blob(&tx, content).map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO artifacts (run_id, name, sha256, path) VALUES (?1, ?2, ?3, NULL)",
            params![run.0, name, sha256],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(sha256)
    }

    /// Records a file written for `run` (e.g. its checkpoint) by path and sha256.
    pub fn attach_file(&mut self, run: RunId, name: &str, path: &Path, sha256: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO artifacts (run_id, name, sha256, path) VALUES (?1, ?2, ?3, ?4)",
                params![run.0, name, sha256, path.to_string_lossy()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Sets one setting of a run known only once it started (e.g. its parameter count).
    pub fn set_param(&mut self, run: RunId, key: &str, value: &ParamValue) -> Result<()> {
        let (num, text) = match value {
            ParamValue::Num(x) => (Some(*x), None),
            ParamValue::Text(s) => (None, Some(s.as_str())),
        };
        self.conn
            .execute(
                "INSERT OR REPLACE INTO params (run_id, key, num, text) VALUES (?1, ?2, ?3, ?4)",
                params![run.0, key, num, text],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The files recorded for `run`: (name, path, sha256).
    pub fn artifact_files(&self, run: RunId) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, path, sha256 FROM artifacts WHERE run_id = ?1 AND path IS NOT NULL ORDER BY name")
            .map_err(self.err())?;
        let rows = stmt.query_map([run.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The content of artifact `name` of `run`, if stored in the database.
    pub fn blob(&self, run: RunId, name: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT b.content FROM artifacts a JOIN blobs b ON b.sha256 = a.sha256 WHERE a.run_id = ?1 AND a.name = ?2",
                params![run.0, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// The stored content with this sha256 (e.g. a run's experiment file), if any.
    pub fn blob_by_hash(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row("SELECT content FROM blobs WHERE sha256 = ?1", [sha256], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Writes every metric of one epoch, and the run's heartbeat, in one transaction.
    /// Fails with [`StoreError::ClaimLost`] (and writes nothing) if another process
    /// has taken over a run this connection claimed.
    pub fn log_epoch(&mut self, run: RunId, epoch: u32, points: &[MetricPoint]) -> Result<()> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO metrics (run_id, task, split, metric, epoch, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for p in points {
                let k = &p.key;
                stmt.execute(params![run.0, k.task, k.split, k.metric, epoch, p.value]).map_err(err)?;
            }
        }
        heartbeat(&tx, &path, run, self.claimed.get(&run))?;
        test_pause("epoch-write", &format!("run {}, epoch {epoch}", run.0));
        tx.commit().map_err(err)
    }

    /// Writes the diagnostics of one logging window (ending at `step`, in `epoch`) in one transaction.
    pub fn log_diagnostics(&mut self, run: RunId, epoch: u32, step: u64, points: &[DiagnosticPoint]) -> Result<()> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO diagnostics (run_id, step, epoch, name, task, other, value)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            for p in points {
                stmt.execute(params![run.0, step as i64, epoch, p.name, p.task, p.other, p.value]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Every diagnostic of the given runs, ordered by run, name, task, other task and step.
    pub fn diagnostic_rows(&self, runs: &[RunId]) -> Result<Vec<DiagnosticRow>> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT run_id, step, epoch, name, task, other, value FROM diagnostics
                 WHERE run_id = ?1 ORDER BY name, task, other, step",
            )
            .map_err(&err)?;
        let mut out = Vec::new();
        for run in runs {
            let rows = stmt
                .query_map([run.0], |r| {
                    Ok(DiagnosticRow {
                        run: RunId(r.get(0)?),
                        step: r.get::<_, i64>(1)? as u64,
                        epoch: r.get(2)?,
                        point: DiagnosticPoint { name: r.get(3)?, task: r.get(4)?, other: r.get(5)?, value: r.get(6)? },
                    })
                })
                .map_err(&err)?;
            for row in rows {
                out.push(row.map_err(&err)?);
            }
        }
        Ok(out)
    }

    /// Records the end of a run and its best epoch (see [`RunRecord::best_epoch`]), in one
    /// transaction with the columns of `runs_wide` it brings. Fails with
    /// [`StoreError::ClaimLost`] if another process has taken over a run this connection claimed.
    pub fn finish_run(&mut self, run: RunId, status: RunStatus, error: Option<&str>) -> Result<()> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        heartbeat(&tx, &path, run, self.claimed.get(&run))?;
        tx.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, error = ?4, best_epoch = (SELECT epoch FROM metrics m
                 WHERE m.run_id = ?1 AND m.split = 'val' AND m.metric = 'accuracy'
                 GROUP BY epoch ORDER BY AVG(value) DESC, epoch LIMIT 1)
             WHERE id = ?1",
            params![run.0, status.as_str(), now(), error],
        )
        .map_err(err)?;
        widen_runs_view(&tx, run).map_err(err)?;
        tx.commit().map_err(err)?;
        self.claimed.remove(&run);
        Ok(())
    }

    /// Every run, optionally of one experiment, in id order, with its settings,
    /// provenance and the metrics of its last and its best epoch.
    pub fn runs(&self, experiment: Option<&str>) -> Result<Vec<RunRecord>> {
        let err = self.err();
        // One snapshot for the several queries, while other processes write.
        let snapshot = self.conn.unchecked_transaction().map_err(&err)?;
        let mut stmt = snapshot
            .prepare(
                "SELECT r.id, e.name, r.trial_key, r.status, r.started_at, r.ended_at, r.error, r.best_epoch,
                        r.experiment_file, r.experiment_sha256, r.mtl_version, r.git_commit, r.host,
                        r.attempts, r.owner_host || ':' || r.owner_pid, r.heartbeat_at, e.result_epoch
                 FROM runs r JOIN experiments e ON e.id = r.experiment_id
                 WHERE ?1 IS NULL OR e.name = ?1 ORDER BY r.id",
            )
            .map_err(&err)?;
        let mut runs: Vec<RunRecord> = stmt
            .query_map([experiment], |r| {
                Ok(RunRecord {
                    id: RunId(r.get(0)?),
                    experiment: r.get(1)?,
                    trial_key: r.get(2)?,
                    status: RunStatus::parse(&r.get::<_, String>(3)?),
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    error: r.get(6)?,
                    best_epoch: r.get(7)?,
                    provenance: Provenance {
                        experiment_file: r.get(8)?,
                        experiment_text: None,
                        mtl_version: r.get(10)?,
                        git_commit: r.get(11)?,
                        host: r.get(12)?,
                    },
                    experiment_sha256: r.get(9)?,
                    attempts: r.get(13)?,
                    owner: r.get(14)?,
                    heartbeat_at: r.get(15)?,
                    result_rule: ResultEpoch::parse(&r.get::<_, String>(16)?).unwrap_or_default(),
                    ..RunRecord::default()
                })
            })
            .map_err(&err)?
            .collect::<Result<_, _>>()
            .map_err(&err)?;
        let index: BTreeMap<RunId, usize> = runs.iter().enumerate().map(|(i, r)| (r.id, i)).collect();

        let mut stmt = snapshot
            .prepare(
                "SELECT p.run_id, p.key, p.num, p.text FROM params p JOIN runs r ON r.id = p.run_id
                 JOIN experiments e ON e.id = r.experiment_id WHERE ?1 IS NULL OR e.name = ?1",
            )
            .map_err(&err)?;
        let mut rows = stmt.query([experiment]).map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let Some(&i) = index.get(&RunId(r.get(0).map_err(&err)?)) else { continue };
            let num: Option<f64> = r.get(2).map_err(&err)?;
            let value = match num {
                Some(x) => ParamValue::Num(x),
                None => ParamValue::Text(r.get::<_, Option<String>>(3).map_err(&err)?.unwrap_or_default()),
            };
            runs[i].params.insert(r.get(1).map_err(&err)?, value);
        }

        // One seek per run into the metrics' (run, epoch, …) key for each of the two epochs.
        for (view, best) in [("final_metrics", false), ("best_metrics", true)] {
            let mut stmt = snapshot
                .prepare(&format!(
                    "SELECT run_id, epoch, task, split, metric, value FROM {view} WHERE ?1 IS NULL OR experiment = ?1"
                ))
                .map_err(&err)?;
            let mut rows = stmt.query([experiment]).map_err(&err)?;
            while let Some(r) = rows.next().map_err(&err)? {
                let Some(&i) = index.get(&RunId(r.get(0).map_err(&err)?)) else { continue };
                let key = MetricKey {
                    task: r.get(2).map_err(&err)?,
                    split: r.get(3).map_err(&err)?,
                    metric: r.get(4).map_err(&err)?,
                };
                let value = r.get(5).map_err(&err)?;
                if best {
                    runs[i].best_metrics.insert(key, value);
                } else {
                    runs[i].final_epoch = Some(r.get(1).map_err(&err)?);
                    runs[i].final_metrics.insert(key, value);
                }
            }
        }
        number_revisions(&mut runs);
        Ok(runs)
    }

    /// Calls `f` with every metric point, optionally of one experiment, in the
    /// order run, epoch, task, split, metric, without holding them all in memory.
    pub fn for_each_metric_point(&self, experiment: Option<&str>, mut f: impl FnMut(&MetricRow)) -> Result<()> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT m.run_id, m.epoch, m.task, m.split, m.metric, m.value FROM metrics m
                 JOIN runs r ON r.id = m.run_id JOIN experiments e ON e.id = r.experiment_id
                 WHERE ?1 IS NULL OR e.name = ?1 ORDER BY m.run_id, m.epoch, m.task, m.split, m.metric",
            )
            .map_err(&err)?;
        let mut rows = stmt.query([experiment]).map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let row = MetricRow {
                run: RunId(r.get(0).map_err(&err)?),
                epoch: r.get(1).map_err(&err)?,
                key: MetricKey {
                    task: r.get(2).map_err(&err)?,
                    split: r.get(3).map_err(&err)?,
                    metric: r.get(4).map_err(&err)?,
                },
                value: r.get(5).map_err(&err)?,
            };
            f(&row);
        }
        Ok(())
    }

    /// Every metric point of the given runs, ordered by run, series and epoch.
    pub fn metric_rows(&self, runs: &[RunId]) -> Result<Vec<MetricRow>> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT run_id, epoch, task, split, metric, value FROM metrics
                 WHERE run_id = ?1 ORDER BY task, split, metric, epoch",
            )
            .map_err(&err)?;
        let mut out = Vec::new();
        for run in runs {
            let rows = stmt
                .query_map([run.0], |r| {
                    Ok(MetricRow {
                        run: RunId(r.get(0)?),
                        epoch: r.get(1)?,
                        key: MetricKey { task: r.get(2)?, split: r.get(3)?, metric: r.get(4)? },
                        value: r.get(5)?,
                    })
                })
                .map_err(&err)?;
            for row in rows {
                out.push(row.map_err(&err)?);
            }
        }
        Ok(out)
    }
}

/// (Re)creates the view `runs_wide` from the table `wide_columns`.
pub(crate) fn rebuild_runs_view(conn: &Connection) -> rusqlite::Result<()> {
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let mut columns: Vec<String> = [
        "r.id AS run_id",
        "e.name AS experiment",
        "r.trial_key",
        "r.status",
        "r.started_at",
        "r.ended_at",
        "r.error",
        "r.best_epoch",
        "e.result_epoch AS result_rule",
        "r.experiment_file",
        "r.experiment_sha256",
        "r.mtl_version",
        "r.git_commit",
        "r.host",
        "r.attempts",
        "r.owner_host",
        "r.owner_pid",
        "r.heartbeat_at",
    ]
    .map(String::from)
    .to_vec();
    let mut stmt = conn.prepare("SELECT setting, task, split, metric FROM wide_columns ORDER BY 1, 2, 3, 4")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?)))?;
    for row in rows {
        let (setting, task, split, metric): (String, String, String, String) = row?;
        columns.push(if task.is_empty() {
            format!(
                "(SELECT COALESCE(num, text) FROM params p WHERE p.run_id = r.id AND p.key = {}) AS {}",
                literal(&setting),
                quote(&setting)
            )
        } else {
            format!(
                "(SELECT value FROM metrics m WHERE m.run_id = r.id AND m.epoch = {}
                  AND m.task = {} AND m.split = {} AND m.metric = {}) AS {}",
                result::RESULT_EPOCH_SQL,
                literal(&task),
                literal(&split),
                literal(&metric),
                quote(&format!("{task}.{split}.{metric}"))
            )
        });
    }
    conn.execute_batch(&format!(
        "DROP VIEW IF EXISTS runs_wide;
         CREATE VIEW runs_wide AS SELECT {} FROM runs r JOIN experiments e ON e.id = r.experiment_id;",
        columns.join(",\n  ")
    ))
}

/// Inserts the row of a trial, or resets `existing` (its old metrics, diagnostics,
/// settings and artifacts go), as `running` for `owner` with a heartbeat now and
/// one more attempt, with the trial's provenance and settings. Returns the run and its attempt.
fn start_run(
    tx: &Connection,
    existing: Option<RunId>,
    new: &NewRun,
    owner: Option<&Owner>,
) -> rusqlite::Result<(RunId, u32)> {
    let now = now();
    let provenance = new.provenance;
    let experiment_sha256 = match &provenance.experiment_text {
        Some(text) => Some(insert_blob(tx, text.as_bytes())?),
        None => None,
    };
    let run = match existing {
        Some(RunId(id)) => {
            for table in ["metrics", "diagnostics", "params", "artifacts"] {
                tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id])?;
            }
            tx.execute(
                "UPDATE runs SET status = 'running', started_at = ?2, ended_at = NULL, error = NULL, settings = ?3,
                 best_epoch = NULL, attempts = attempts + 1 WHERE id = ?1",
                params![id, now, new.settings_json],
            )?;
            id
        }
        None => {
            tx.execute(
                "INSERT INTO runs (experiment_id, trial_key, status, started_at, settings, attempts)
                 VALUES (?1, ?2, 'running', ?3, ?4, 1)",
                params![new.experiment.0, new.trial_key, now, new.settings_json],
            )?;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "UPDATE runs SET experiment_file = ?2, experiment_sha256 = ?3, mtl_version = ?4, git_commit = ?5, host = ?6,
             owner_host = ?7, owner_pid = ?8, owner_token = ?9, heartbeat_at = ?10
         WHERE id = ?1",
        params![
            run,
            provenance.experiment_file,
            experiment_sha256,
            provenance.mtl_version,
            provenance.git_commit,
            provenance.host,
            owner.map(|o| &o.host),
            owner.map(|o| o.pid),
            owner.map(|o| &o.token),
            now,
        ],
    )?;
    let mut stmt = tx.prepare("INSERT INTO params (run_id, key, num, text) VALUES (?1, ?2, ?3, ?4)")?;
    for (key, value) in new.params {
        let (num, text) = match value {
            ParamValue::Num(x) => (Some(*x), None),
            ParamValue::Text(s) => (None, Some(s.as_str())),
        };
        stmt.execute(params![run, key, num, text])?;
    }
    let attempt = tx.query_row("SELECT attempts FROM runs WHERE id = ?1", [run], |r| r.get(0))?;
    Ok((RunId(run), attempt))
}

/// Sets the heartbeat of `run`, checking that it still has the owner `token` (none for
/// runs started by [`Store::begin_run`]).
fn heartbeat(tx: &Connection, path: &Path, run: RunId, token: Option<&String>) -> Result<()> {
    let err = |e| sqlite_err(path, e);
    let updated = tx
        .execute("UPDATE runs SET heartbeat_at = ?2 WHERE id = ?1 AND owner_token IS ?3", params![run.0, now(), token])
        .map_err(err)?;
    if updated == 0 {
        let owner: Option<String> = tx
            .query_row("SELECT owner_host || ':' || owner_pid FROM runs WHERE id = ?1", [run.0], |r| r.get(0))
            .optional()
            .map_err(err)?
            .flatten();
        return Err(StoreError::ClaimLost {
            path: path.to_owned(),
            run: run.0,
            owner: owner.unwrap_or_else(|| "none".into()),
        });
    }
    Ok(())
}

/// The columns [`OwnedRun::from_row`] reads, in its order.
const OWNED_RUN_COLUMNS: &str =
    "id, status, owner_host, owner_pid, owner_token, heartbeat_at, started_at, ended_at, attempts";

/// A run's row as far as claiming it is concerned.
struct OwnedRun {
    id: RunId,
    status: RunStatus,
    owner_host: Option<String>,
    owner_pid: Option<u32>,
    owner_token: Option<String>,
    heartbeat_at: Option<String>,
    started_at: Option<String>,
    ended_at: Option<String>,
}

impl OwnedRun {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<OwnedRun> {
        Ok(OwnedRun {
            id: RunId(r.get(0)?),
            status: RunStatus::parse(&r.get::<_, String>(1)?),
            owner_host: r.get(2)?,
            owner_pid: r.get(3)?,
            owner_token: r.get(4)?,
            heartbeat_at: r.get(5)?,
            started_at: r.get(6)?,
            ended_at: r.get(7)?,
        })
    }

    fn owner_text(&self) -> String {
        match (&self.owner_host, self.owner_pid) {
            (Some(host), Some(pid)) => format!("{host}:{pid}"),
            _ => "an unknown process".into(),
        }
    }

    /// Why this `running` run is taken for dead under `policy`, if it is.
    fn stale_because(&self, policy: &ClaimPolicy) -> Option<String> {
        let (Some(host), Some(pid)) = (&self.owner_host, self.owner_pid) else {
            return Some("it records no owner (started by an older mtl-lab)".into());
        };
        let me = &policy.owner;
        if *host == me.host {
            if self.owner_token.as_deref() == Some(me.token.as_str()) {
                return None;
            }
            // The same pid with another token: an earlier process that had this process's pid.
            if pid == me.pid || !process_alive(pid) {
                return Some(format!("its process {host}:{pid} has ended"));
            }
        }
        let last = self.heartbeat_at.as_deref().or(self.started_at.as_deref());
        let last_time = last.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let silent = last_time.map(|t| chrono::Utc::now().signed_duration_since(t));
        match (last, silent) {
            (Some(last), Some(silent)) if silent.to_std().is_ok_and(|s| s > policy.stale_after) => Some(format!(
                "no heartbeat from its process {host}:{pid} since {last} (more than {} s)",
                policy.stale_after.as_secs()
            )),
            (Some(_), Some(_)) => None,
            _ => Some(format!("no heartbeat recorded by its process {host}:{pid}")),
        }
    }

    /// Marks the run interrupted, ended at its last sign of life.
    fn mark_interrupted(&self, tx: &Connection, reason: &str) -> rusqlite::Result<()> {
        let ended = self.heartbeat_at.clone().or(self.started_at.clone()).unwrap_or_else(now);
        tx.execute(
            "UPDATE runs SET status = 'interrupted', ended_at = ?2, error = ?3 WHERE id = ?1",
            params![self.id.0, ended, format!("interrupted: {reason}")],
        )?;
        Ok(())
    }
}

/// Whether process `pid` of this host exists and is not a zombie.
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let exists =
        unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A killed process whose parent has not reaped it yet is a zombie: dead all the same.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
        .is_some_and(|state| state == 'Z' || state == 'X');
    exists && !zombie
}

/// Elsewhere the heartbeat decides.
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// Adds the settings and metrics of `run` to the columns of the view `runs_wide`
/// (one row per run: its fields, provenance, one column per setting and one per
/// final metric, `task.split.metric`), rebuilding the view when any is new.
fn widen_runs_view(tx: &Connection, run: RunId) -> rusqlite::Result<()> {
    let added = tx
        .execute("INSERT OR IGNORE INTO wide_columns (setting) SELECT key FROM params WHERE run_id = ?1", [run.0])?
        + tx.execute(
            "INSERT OR IGNORE INTO wide_columns (task, split, metric)
             SELECT DISTINCT task, split, metric FROM metrics WHERE run_id = ?1",
            [run.0],
        )?;
    if added > 0 {
        rebuild_runs_view(tx)?;
    }
    Ok(())
}

/// A test hook for the crash tests: when the environment variable `MTL_TEST_PAUSE_AT`
/// names `point`, prints `mtl test hook: paused at POINT (DETAIL)` to stderr and sleeps
/// 60 s, so that a test can kill the process exactly there. Points: `epoch-write`
/// (inside an epoch's write transaction, before it commits) and `between-trials`
/// (mtl-runner). Not meant for anything else.
#[doc(hidden)]
pub fn test_pause(point: &str, detail: &str) {
    if std::env::var("MTL_TEST_PAUSE_AT").is_ok_and(|at| at == point) {
        eprintln!("mtl test hook: paused at {point} ({detail})");
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The current time as the store writes it (RFC 3339, UTC, milliseconds); such
/// timestamps order as text.
pub fn now_timestamp() -> String {
    now()
}

/// Stores `content` once, keyed by its sha256, which it returns.
fn insert_blob(conn: &Connection, content: &[u8]) -> rusqlite::Result<String> {
    use sha2::Digest;
    let sha256: String = sha2::Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect();
    conn.execute("INSERT OR IGNORE INTO blobs (sha256, content) VALUES (?1, ?2)", params![sha256, content])?;
    Ok(sha256)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn sqlite_err(path: &Path, source: rusqlite::Error) -> StoreError {
    let code = match &source {
        rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
        _ => None,
    };
    match code {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase { path: path.to_owned() },
        // The busy handler has waited its time: say who holds the lock.
        Some(rusqlite::ErrorCode::DatabaseBusy) => {
            StoreError::Locked { path: path.to_owned(), holder: LockHolder::of(path), waited: lock::busy_timeout() }
        }
        _ => StoreError::Sqlite { path: path.to_owned(), source },
    }
}
