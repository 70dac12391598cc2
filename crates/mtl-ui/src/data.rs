//! The database as the dashboard reads it: one read-only connection, and every run
//! loaded once per change of the database (`PRAGMA data_version`), so that listing
//! and filtering 10,000 runs is a pass over memory, not a query per request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use mtl_store::{RunRecord, Store, SCHEMA_VERSION};

use serde_json::Value;

use crate::api::ApiError;

/// The runs of the database at one version.
pub struct Snapshot {
    /// Changes whenever the database does (`"{opened}-{data_version}"`).
    pub version: String,
    /// Every run that is not archived, in id order.
    pub runs: Arc<Vec<RunRecord>>,
}

struct State {
    store: Option<Store>,
    cache: Cache,
}

struct Cache {
    /// How many times the connection was opened (a reopened connection restarts
    /// `data_version`, so the version string carries both).
    opened: u64,
    /// The `data_version` the runs were loaded at.
    loaded_at: Option<i64>,
    runs: Arc<Vec<RunRecord>>,
    /// Answers computed from these runs (the comparisons), by request; emptied when they change.
    answers: HashMap<String, Value>,
}

/// The results database behind a lock: SQLite connections are not shared between threads.
pub struct Database {
    path: PathBuf,
    state: Mutex<State>,
}

impl Database {
    /// Nothing is opened yet: a missing or broken file is reported per request, and the
    /// page works as soon as the file appears.
    pub fn new(path: &Path) -> Database {
        let cache = Cache { opened: 0, loaded_at: None, runs: Arc::new(Vec::new()), answers: HashMap::new() };
        let state = State { store: None, cache };
        Database { path: path.to_owned(), state: Mutex::new(state) }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version of the database now, without loading anything.
    pub fn version(&self) -> Result<String, ApiError> {
        self.read(|state, store| Ok(format!("{}-{}", state.opened, store.data_version()?)))
    }

    /// The runs as they are now, loaded again only if the database changed.
    pub fn snapshot(&self) -> Result<Snapshot, ApiError> {
        self.read(|state, store| {
            let version = store.data_version()?;
            if state.loaded_at != Some(version) {
                state.runs = Arc::new(store.runs(None)?);
                state.loaded_at = Some(version);
                state.answers.clear();
            }
            Ok(Snapshot { version: format!("{}-{version}", state.opened), runs: state.runs.clone() })
        })
    }

    /// The answer `key` computed from the runs as they are now: computed once per change
    /// of the database (a comparison of 10,000 runs takes most of a second), then reused.
    pub fn answer(
        &self,
        key: &str,
        compute: impl FnOnce(&[RunRecord]) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let snapshot = self.snapshot()?;
        if let Some(answer) = self.lock().cache.answers.get(key) {
            return Ok(answer.clone());
        }
        let answer = compute(&snapshot.runs)?;
        let mut state = self.lock();
        // Kept only if the runs did not change meanwhile.
        if Arc::ptr_eq(&state.cache.runs, &snapshot.runs) {
            state.cache.answers.insert(key.to_string(), answer.clone());
        }
        Ok(answer)
    }

    /// Runs `read` with the open store (for the per-run reads: curves, diagnostics, artifacts).
    pub fn with_store<T>(&self, read: impl FnOnce(&Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        self.read(|_, store| read(store))
    }

    /// Opens the store (read-only) if it is not open, and runs `read`. After a failure the
    /// connection is dropped, so the next request opens the file again (it may have been
    /// created, repaired or replaced meanwhile).
    fn read<T>(&self, read: impl FnOnce(&mut Cache, &Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut state = self.lock();
        let State { store, cache } = &mut *state;
        if store.is_none() {
            let opened = Store::open_read_only(&self.path)?;
            let version = opened.schema_version()?;
            if version < SCHEMA_VERSION {
                return Err(ApiError::new(
                    503,
                    format!(
                        "{} has schema version {version}, older than this mtl-lab's ({SCHEMA_VERSION}); the dashboard \
                         only reads, so run any other mtl command on it once (e.g. `mtl ls --db {0}`) to upgrade it",
                        self.path.display()
                    ),
                ));
            }
            *store = Some(opened);
            cache.opened += 1;
            cache.loaded_at = None;
        }
        let result = match store.as_ref() {
            Some(open) => read(cache, open),
            None => unreachable!("opened above"),
        };
        if result.is_err() {
            *store = None;
        }
        result
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-written: the state is a cache.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
