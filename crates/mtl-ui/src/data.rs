//! The database as the dashboard reads it: one read-only connection, and every run
//! loaded once per change of the database (`PRAGMA data_version`), so that listing
//! and filtering 10,000 runs is a pass over memory, not a query per request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

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
    /// The file the connection has open (device, inode): a file replaced under the same
    /// name (deleted and run again) is opened anew.
    file: Option<(u64, u64)>,
    cache: Cache,
}

struct Cache {
    /// How many times the connection was opened (a reopened connection restarts
    /// `data_version`, so the version string carries both).
    opened: u64,
    /// The `data_version` the runs were loaded at.
    loaded_at: Option<i64>,
    /// When the runs may be loaded again: a load is followed by a pause twice its length,
    /// so that a sweep writing all the time costs the server a third of a core at most.
    next_load: Instant,
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
        let cache = Cache {
            opened: 0,
            loaded_at: None,
            next_load: Instant::now(),
            runs: Arc::new(Vec::new()),
            answers: HashMap::new(),
        };
        let state = State { store: None, file: None, cache };
        Database { path: path.to_owned(), state: Mutex::new(state) }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The runs as they are now, loaded again if the database changed (and the pause after
    /// the last load is over: until then the runs and version of that load are served).
    pub fn snapshot(&self) -> Result<Snapshot, ApiError> {
        self.read(|state, store| {
            let version = store.data_version()?;
            if state.loaded_at != Some(version) && Instant::now() >= state.next_load {
                let started = Instant::now();
                state.runs = Arc::new(store.runs(None)?);
                state.loaded_at = Some(version);
                state.next_load = Instant::now() + 2 * started.elapsed();
                state.answers.clear();
            }
            let loaded = state.loaded_at.unwrap_or(version);
            Ok(Snapshot { version: format!("{}-{loaded}", state.opened), runs: state.runs.clone() })
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

    /// Opens the store (read-only) if it is not open or its file was replaced, and runs
    /// `read`. After a failure of the database (not of the request: an unknown run is
    /// not one) the connection is dropped, so the next request opens the file again (it
    /// may have been created or repaired meanwhile).
    fn read<T>(&self, read: impl FnOnce(&mut Cache, &Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut state = self.lock();
        let State { store, file, cache } = &mut *state;
        let now = file_identity(&self.path);
        if store.is_some() && (now.is_none() || now != *file) {
            *store = None;
        }
        if store.is_none() {
            let opened = Store::open_read_only(&self.path)?;
            let version = opened.schema_version()?;
            if version < SCHEMA_VERSION {
                return Err(ApiError::new(
                    ApiError::DATABASE,
                    format!(
                        "{} has schema version {version}, older than this mtl-lab's ({SCHEMA_VERSION}); the dashboard \
                         only reads, so run any other mtl command on it once (e.g. `mtl ls --db {0}`) to upgrade it",
                        self.path.display()
                    ),
                ));
            }
            *store = Some(opened);
            *file = now;
            cache.opened += 1;
            cache.loaded_at = None;
            cache.next_load = Instant::now();
        }
        let result = match store.as_ref() {
            Some(open) => read(cache, open),
            None => unreachable!("opened above"),
        };
        if matches!(&result, Err(e) if e.status == ApiError::DATABASE) {
            *store = None;
        }
        result
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-written: the state is a cache.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The file's device and inode, or none where it is missing.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
