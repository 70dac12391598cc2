//! Schema migrations, tracked by `PRAGMA user_version`.
//!
//! Entries are only ever appended: migration `i` takes the schema from
//! version `i` to `i + 1`. Never edit or remove one that has shipped.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

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
    // 3 -> 4: provenance of runs, the best epoch on validation, metrics keyed by epoch
    // first (an epoch's points are one range: final and best metrics are seeks), indexes
    // for listing and filtering, and the documented views (`runs_wide` is rebuilt by
    // `Store::refresh_views` as settings and metrics appear).
    "ALTER TABLE runs ADD COLUMN experiment_file TEXT;
    ALTER TABLE runs ADD COLUMN experiment_sha256 TEXT;
    ALTER TABLE runs ADD COLUMN mtl_version TEXT;
    ALTER TABLE runs ADD COLUMN git_commit TEXT;
    ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN best_epoch INTEGER;
    CREATE TABLE metrics_by_epoch (
        run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch   INTEGER NOT NULL,
        task    TEXT NOT NULL,
        split   TEXT NOT NULL,
        metric  TEXT NOT NULL,
        value   REAL NOT NULL,
        PRIMARY KEY (run_id, epoch, task, split, metric)
    ) WITHOUT ROWID;
    INSERT INTO metrics_by_epoch (run_id, epoch, task, split, metric, value)
        SELECT run_id, epoch, task, split, metric, value FROM metrics;
    DROP TABLE metrics;
    ALTER TABLE metrics_by_epoch RENAME TO metrics;
    UPDATE runs SET best_epoch = (SELECT epoch FROM metrics m
        WHERE m.run_id = runs.id AND m.split = 'val' AND m.metric = 'accuracy'
        GROUP BY epoch ORDER BY AVG(value) DESC, epoch LIMIT 1) WHERE status = 'done';
    CREATE INDEX runs_by_experiment ON runs (experiment_id, status);
    CREATE INDEX params_by_key ON params (key, num, text);
    CREATE VIEW settings AS
        SELECT run_id, key, COALESCE(num, text) AS value FROM params;
    CREATE VIEW metric_points AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM metrics m JOIN runs r ON r.id = m.run_id JOIN experiments e ON e.id = r.experiment_id;
    -- CROSS JOIN keeps runs the outer loop: one seek per run, not a scan of every point.
    CREATE VIEW final_metrics AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM runs r CROSS JOIN metrics m ON m.run_id = r.id
             AND m.epoch = (SELECT MAX(epoch) FROM metrics last WHERE last.run_id = r.id)
        JOIN experiments e ON e.id = r.experiment_id;
    CREATE VIEW best_metrics AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM runs r CROSS JOIN metrics m ON m.run_id = r.id AND m.epoch = r.best_epoch
        JOIN experiments e ON e.id = r.experiment_id;
    CREATE TABLE wide_columns (
        setting  TEXT NOT NULL DEFAULT '',
        task     TEXT NOT NULL DEFAULT '',
        split    TEXT NOT NULL DEFAULT '',
        metric   TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (setting, task, split, metric)
    ) WITHOUT ROWID;
    INSERT INTO wide_columns (setting) SELECT DISTINCT key FROM params;
    INSERT INTO wide_columns (task, split, metric) SELECT DISTINCT task, split, metric FROM metrics;",
    // 4 -> 5: claims of trials by several processes: the owner of a running run (host, pid and a
    // token unique to the process), its heartbeat (written with every epoch), and how many
    // times its training started.
    "ALTER TABLE runs ADD COLUMN owner_host TEXT;
    ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
    ALTER TABLE runs ADD COLUMN owner_token TEXT;
    ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
    ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET attempts = 1 WHERE started_at IS NOT NULL;",
    // 5 -> 6: the rule that picks each run's result epoch, per experiment, and the view of
    // every run's result (`runs_wide` shows the same epoch; see `result.rs`).
    "ALTER TABLE experiments ADD COLUMN result_epoch TEXT NOT NULL DEFAULT 'best-val'
        CHECK (result_epoch IN ('best-val', 'last'));
    CREATE VIEW result_metrics AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM runs r JOIN experiments e ON e.id = r.experiment_id
             CROSS JOIN metrics m ON m.run_id = r.id AND m.epoch = CASE WHEN e.result_epoch = 'last'
                 OR r.best_epoch IS NULL THEN (SELECT MAX(epoch) FROM metrics l WHERE l.run_id = r.id)
                 ELSE r.best_epoch END;",
    // 6 -> 7: curation: tags (one value per key), a note per run, and archiving (`mtl rm`):
    // an archived run stays in the file, and its trial counts as done, but readers skip it.
    "ALTER TABLE runs ADD COLUMN archived_at TEXT;
    CREATE TABLE tags (
        run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key     TEXT NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE notes (
        run_id      INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        text        TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );",
    // 7 -> 8: the status `pruned` (a trial stopped by the sweep's `[prune]` rule). SQLite
    // cannot change a CHECK in place: `runs` is copied into a table with the wider one, with
    // the views that name it dropped first and made again after (foreign keys are off while
    // migrating, so dropping the old table deletes nothing that refers to it).
    "DROP VIEW IF EXISTS runs_wide;
    DROP VIEW metric_points;
    DROP VIEW final_metrics;
    DROP VIEW best_metrics;
    DROP VIEW result_metrics;
    CREATE TABLE runs_new (
        id                 INTEGER PRIMARY KEY,
        experiment_id      INTEGER NOT NULL REFERENCES experiments(id),
        trial_key          TEXT NOT NULL,
        status             TEXT NOT NULL
                           CHECK (status IN ('running', 'done', 'failed', 'interrupted', 'pruned')),
        started_at         TEXT,
        ended_at           TEXT,
        settings           TEXT NOT NULL,
        error              TEXT,
        experiment_file    TEXT,
        experiment_sha256  TEXT,
        mtl_version        TEXT,
        git_commit         TEXT,
        host               TEXT,
        best_epoch         INTEGER,
        owner_host         TEXT,
        owner_pid          INTEGER,
        owner_token        TEXT,
        heartbeat_at       TEXT,
        attempts           INTEGER NOT NULL DEFAULT 0,
        archived_at        TEXT,
        UNIQUE (experiment_id, trial_key)
    );
    INSERT INTO runs_new (id, experiment_id, trial_key, status, started_at, ended_at, settings, error,
            experiment_file, experiment_sha256, mtl_version, git_commit, host, best_epoch, owner_host,
            owner_pid, owner_token, heartbeat_at, attempts, archived_at)
        SELECT id, experiment_id, trial_key, status, started_at, ended_at, settings, error,
            experiment_file, experiment_sha256, mtl_version, git_commit, host, best_epoch, owner_host,
            owner_pid, owner_token, heartbeat_at, attempts, archived_at FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_new RENAME TO runs;
    CREATE INDEX runs_by_experiment ON runs (experiment_id, status);
    CREATE VIEW metric_points AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM metrics m JOIN runs r ON r.id = m.run_id JOIN experiments e ON e.id = r.experiment_id;
    CREATE VIEW final_metrics AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM runs r CROSS JOIN metrics m ON m.run_id = r.id
             AND m.epoch = (SELECT MAX(epoch) FROM metrics last WHERE last.run_id = r.id)
        JOIN experiments e ON e.id = r.experiment_id;
    CREATE VIEW best_metrics AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM runs r CROSS JOIN metrics m ON m.run_id = r.id AND m.epoch = r.best_epoch
        JOIN experiments e ON e.id = r.experiment_id;
    CREATE VIEW result_metrics AS
        SELECT e.name AS experiment, r.id AS run_id, r.trial_key, r.status,
               m.task, m.split, m.metric, m.epoch, m.value
        FROM runs r JOIN experiments e ON e.id = r.experiment_id
             CROSS JOIN metrics m ON m.run_id = r.id AND m.epoch = CASE WHEN e.result_epoch = 'last'
                 OR r.best_epoch IS NULL THEN (SELECT MAX(epoch) FROM metrics l WHERE l.run_id = r.id)
                 ELSE r.best_epoch END;",
    // 8 -> 9: the device a run trained on ("cpu", or "cuda:N" with the GPU's name, driver and
    // CUDA version).
    "ALTER TABLE runs ADD COLUMN device TEXT;",
];

/// The version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migrations inside one exclusive transaction. The connection's
/// foreign keys must be off (migration 7 -> 8 drops and renames `runs`).
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    // Re-read under the lock: another process may have migrated meanwhile.
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    if version < SCHEMA_VERSION {
        let dangling: Option<String> =
            tx.query_row("SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1", [], |r| r.get(0)).optional()?;
        if let Some(table) = dangling {
            let message = format!("the migration left rows of {table} without their run");
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                Some(message),
            ));
        }
        // Views name the columns of `runs`: rebuilt after any migration.
        crate::views::rebuild_runs_view(&tx)?;
    }
    tx.commit()
}
