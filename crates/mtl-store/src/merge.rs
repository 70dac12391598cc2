//! Ingesting shard databases: one per trial, written by `mtl worker` on a cluster
//! node, merged into the main database by `mtl merge`.
//!
//! A shard is an ordinary results database. Merging it copies each of its
//! finished runs (done, failed or interrupted) with settings, metrics, diagnostics
//! and artifacts, in one transaction per shard, opening the shard read-only. The
//! main database keeps what it has when it has the trial done, has the same
//! attempt already (same start time), has a newer attempt, or is training the
//! trial itself (`running`): so merging twice changes nothing. A shard run still
//! `running` is skipped.

use std::path::Path;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::{sqlite_err, Result, RunId, Store, StoreError};

/// What [`Store::merge_shard`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// Runs copied as `done`.
    pub done: usize,
    /// Runs copied as `failed` (or `interrupted`).
    pub failed: usize,
    /// Runs the main database already had (done, this same attempt, or a newer one).
    pub already_merged: usize,
    /// Runs still training, in the shard or in the main database, left alone.
    pub running: usize,
}

impl MergeSummary {
    /// Adds another shard's counts.
    pub fn add(&mut self, other: &MergeSummary) {
        self.done += other.done;
        self.failed += other.failed;
        self.already_merged += other.already_merged;
        self.running += other.running;
    }
}

impl Store {
    /// Writes a compact copy of this database to `path` (which must not exist): one
    /// self-contained file, as a worker publishes its shard.
    pub fn vacuum_into(&self, path: &Path) -> Result<()> {
        self.conn.execute("VACUUM INTO ?1", [path.to_string_lossy()]).map_err(|e| sqlite_err(path, e))?;
        Ok(())
    }

    /// Copies the finished runs of the shard database at `shard` into this one.
    pub fn merge_shard(&mut self, shard: &Path) -> Result<MergeSummary> {
        if !shard.exists() {
            return Err(StoreError::Missing { path: shard.to_owned() });
        }
        // The shard must be an mtl-lab database no newer than this build (read-only: it is not ours).
        drop(Store::open_read_only(shard)?);
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let uri = format!("file:{}?mode=ro", shard.display().to_string().replace('?', "%3f").replace('#', "%23"));
        self.conn.execute("ATTACH DATABASE ?1 AS shard", [&uri]).map_err(|e| sqlite_err(shard, e))?;
        let result = self.merge_attached();
        self.conn.execute_batch("DETACH DATABASE shard").map_err(err)?;
        result
    }

    fn merge_attached(&mut self) -> Result<MergeSummary> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        // Every column of `runs` but its id and experiment, as both schemas name them.
        let columns: Vec<String> = {
            let mut stmt = self.conn.prepare("SELECT name FROM pragma_table_info('runs')").map_err(err)?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
            names.collect::<rusqlite::Result<Vec<_>>>().map_err(err)?
        };
        let copied: Vec<&str> =
            columns.iter().map(String::as_str).filter(|c| !matches!(*c, "id" | "experiment_id")).collect();
        let column_list = copied.join(", ");
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let shard_runs: Vec<(i64, String, String, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT r.id, e.name, r.trial_key, r.status FROM shard.runs r
                     JOIN shard.experiments e ON e.id = r.experiment_id ORDER BY r.id",
                )
                .map_err(err)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).map_err(err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(err)?
        };
        let mut summary = MergeSummary::default();
        for (shard_run, experiment, trial_key, status) in shard_runs {
            if status == "running" {
                summary.running += 1;
                continue;
            }
            tx.execute(
                "INSERT INTO experiments (name, created_at) SELECT name, created_at FROM shard.experiments
                 WHERE name = ?1 ON CONFLICT (name) DO NOTHING",
                [&experiment],
            )
            .map_err(err)?;
            let experiment_id: i64 =
                tx.query_row("SELECT id FROM experiments WHERE name = ?1", [&experiment], |r| r.get(0)).map_err(err)?;
            let existing: Option<(i64, String, Option<String>, Option<String>)> = tx
                .query_row(
                    "SELECT id, status, started_at, ended_at FROM runs WHERE experiment_id = ?1 AND trial_key = ?2",
                    params![experiment_id, trial_key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(err)?;
            let (shard_started, shard_ended): (Option<String>, Option<String>) = tx
                .query_row("SELECT started_at, ended_at FROM shard.runs WHERE id = ?1", [shard_run], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(err)?;
            match &existing {
                Some((_, status, ..)) if status == "running" => {
                    summary.running += 1;
                    continue;
                }
                // Timestamps are RFC 3339 UTC with milliseconds: they order as text.
                Some((_, status, started, ended))
                    if status == "done" || *started == shard_started || *ended >= shard_ended =>
                {
                    summary.already_merged += 1;
                    continue;
                }
                // An older failed or interrupted attempt gives way to the shard's.
                Some((id, ..)) => {
                    tx.execute("DELETE FROM runs WHERE id = ?1", [id]).map_err(err)?;
                }
                None => {}
            }
            tx.execute(
                &format!(
                    "INSERT INTO runs (experiment_id, {column_list}) SELECT ?1, {column_list} FROM shard.runs WHERE id = ?2"
                ),
                params![experiment_id, shard_run],
            )
            .map_err(err)?;
            let run = tx.last_insert_rowid();
            for (table, columns) in [
                ("params", "key, num, text"),
                ("metrics", "epoch, task, split, metric, value"),
                ("diagnostics", "step, epoch, name, task, other, value"),
                ("artifacts", "name, sha256, path"),
            ] {
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (run_id, {columns}) SELECT ?1, {columns} FROM shard.{table} WHERE run_id = ?2"
                    ),
                    params![run, shard_run],
                )
                .map_err(err)?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO blobs (sha256, content) SELECT b.sha256, b.content FROM shard.blobs b
                 WHERE b.sha256 IN (SELECT sha256 FROM artifacts WHERE run_id = ?1)
                    OR b.sha256 = (SELECT experiment_sha256 FROM runs WHERE id = ?1)",
                [run],
            )
            .map_err(err)?;
            if status == "done" {
                summary.done += 1;
            } else {
                summary.failed += 1;
            }
            crate::widen_runs_view(&tx, RunId(run)).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(summary)
    }
}
