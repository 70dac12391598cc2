//! Schema migrations, tracked by `PRAGMA user_version`.
//!
//! Entries are only ever appended: migration `i` takes the schema from
//! version `i` to `i + 1`. Never edit or remove one that has shipped.

use rusqlite::{Connection, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    // 0 -> 1: experiments, runs, typed params, per-epoch metrics.
    "CREATE TABLE experiments (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE runs (
        id             INTEGER PRIMARY KEY,
        experiment_id  INTEGER NOT NULL REFERENCES experiments(id),
        trial_key      TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
        started_at     TEXT,
        ended_at       TEXT,
        settings       TEXT NOT NULL,
        error          TEXT,
        UNIQUE (experiment_id, trial_key)
    );
    CREATE TABLE params (
        run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key     TEXT NOT NULL,
        num     REAL,
        text    TEXT,
        PRIMARY KEY (run_id, key),
        CHECK ((num IS NULL) <> (text IS NULL))
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        task    TEXT NOT NULL,
        split   TEXT NOT NULL,
        metric  TEXT NOT NULL,
        epoch   INTEGER NOT NULL,
        value   REAL NOT NULL,
        PRIMARY KEY (run_id, task, split, metric, epoch)
    ) WITHOUT ROWID;",
    // 1 -> 2: artifacts of a run (vocabularies, later checkpoints), content stored once by hash.
    "CREATE TABLE blobs (
        sha256   TEXT PRIMARY KEY,
        content  BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE artifacts (
        run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name    TEXT NOT NULL,
        sha256  TEXT NOT NULL,
        path    TEXT,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;",
    // 2 -> 3: training diagnostics (task weights, gradient norms and cosines), per logging window.
    "CREATE TABLE diagnostics (
        run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step    INTEGER NOT NULL,
        epoch   INTEGER NOT NULL,
        name    TEXT NOT NULL,
        task    TEXT NOT NULL,
        other   TEXT NOT NULL,
        value   REAL NOT NULL,
        PRIMARY KEY (run_id, name, task, other, step)
    ) WITHOUT ROWID;",
];

/// The version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migrations inside one exclusive transaction.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    // Re-read under the lock: another process may have migrated meanwhile.
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()
}
