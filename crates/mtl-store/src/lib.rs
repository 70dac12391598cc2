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

mod claims;
mod curation;
mod direction;
pub mod filter;
mod hash;
pub mod listing;
mod lock;
mod merge;
pub mod mlflow;
mod open;
mod process;
mod query;
mod reads;
mod result;
mod revision;
mod rows;
mod schema;
mod selection;
mod types;
mod views;
mod writes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use claims::{Claim, ClaimPolicy, Proposal, StaleRun};
pub use direction::{delta_m, lower_is_better};
pub use hash::sha256_hex;
pub use lock::LockHolder;
pub use merge::{MergeSummary, ShardTrial};
pub use query::{QueryResult, QuerySummary, SqlValue};
pub use reads::TrialPoints;
pub use result::override_result_epoch;
pub use revision::LatestRevision;
pub use schema::SCHEMA_VERSION;
pub use selection::Selection;
pub use types::{
    DiagnosticPoint, DiagnosticRow, ExperimentId, MetricKey, MetricPoint, MetricRow, NewRun, Owner, ParamValue,
    Provenance, Result, ResultEpoch, RunId, RunRecord, RunStatus, ShardRejected, StoreError,
};
pub use writes::test_pause;

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
        // A new file has version 0; an up-to-date one skips the exclusive lock of `migrate`.
        // Foreign keys (on by default in the bundled SQLite) are off while it runs: a migration
        // may rebuild a table, and dropping the old one must not cascade to its rows.
        if version < SCHEMA_VERSION {
            conn.pragma_update(None, "foreign_keys", "OFF").map_err(err)?;
            schema::migrate(&mut conn).map_err(err)?;
        }
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        Ok(Store { conn, path: path.to_owned(), claimed: HashMap::new() })
    }

    /// `PRAGMA data_version`: a number that changes, on this connection, whenever another
    /// connection (of any process) has committed a change since it was last read.
    pub fn data_version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| sqlite_err(&self.path, e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| sqlite_err(&self.path, e)
    }
}

/// The current time as the store writes it (RFC 3339, UTC, milliseconds); such
/// timestamps order as text.
pub fn now_timestamp() -> String {
    now()
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
