//! Curation of runs: tags, a note, archiving (hidden from [`Store::runs`], restorable,
//! still a done trial for the sweep) and purging (the run's rows deleted for good).
//!
//! ```no_run
//! # fn main() -> mtl_store::Result<()> {
//! let mut store = mtl_store::Store::open(std::path::Path::new("mtl.db"))?;
//! let run = mtl_store::RunId(3);
//! store.tag_runs(&[run], "keep", "yes")?;
//! store.archive_runs(&[run])?;
//! # Ok(()) }
//! ```

use rusqlite::{params, TransactionBehavior};

use crate::{now, sqlite_err, Result, RunId, Store};

impl Store {
    /// Sets tag `key` to `value` on each run (replacing its value); how many runs it set.
    pub fn tag_runs(&mut self, runs: &[RunId], key: &str, value: &str) -> Result<usize> {
        self.each_run(runs, |tx, run| {
            tx.execute(
                "INSERT INTO tags (run_id, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                params![run.0, key, value],
            )
        })
    }

    /// Sets the note of `run`, replacing any; an empty text removes it.
    pub fn set_note(&mut self, run: RunId, text: &str) -> Result<usize> {
        let now = now();
        self.each_run(&[run], |tx, run| match text.is_empty() {
            true => tx.execute("DELETE FROM notes WHERE run_id = ?1", [run.0]),
            false => tx.execute(
                "INSERT INTO notes (run_id, text, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id) DO UPDATE SET text = excluded.text, created_at = excluded.created_at",
                params![run.0, text, now],
            ),
        })
    }

    /// Archives the runs not archived yet; how many it archived.
    pub fn archive_runs(&mut self, runs: &[RunId]) -> Result<usize> {
        let now = now();
        self.each_run(runs, |tx, run| {
            tx.execute("UPDATE runs SET archived_at = ?2 WHERE id = ?1 AND archived_at IS NULL", params![run.0, now])
        })
    }

    /// Brings archived runs back; how many it restored.
    pub fn restore_runs(&mut self, runs: &[RunId]) -> Result<usize> {
        self.each_run(runs, |tx, run| {
            tx.execute("UPDATE runs SET archived_at = NULL WHERE id = ?1 AND archived_at IS NOT NULL", [run.0])
        })
    }

    /// Deletes the runs with their settings, metrics, diagnostics, artifacts, tags and
    /// note, in one transaction; how many runs it deleted. Blobs are shared by content
    /// and stay.
    pub fn purge_runs(&mut self, runs: &[RunId]) -> Result<usize> {
        self.each_run(runs, |tx, run| {
            // Foreign keys cascade too; explicit deletes do not depend on them being on.
            for table in ["params", "metrics", "diagnostics", "artifacts", "tags", "notes"] {
                tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [run.0])?;
            }
            tx.execute("DELETE FROM runs WHERE id = ?1", [run.0])
        })
    }

    /// Runs `change` for each run in one transaction; the number of runs it changed.
    fn each_run(
        &mut self,
        runs: &[RunId],
        mut change: impl FnMut(&rusqlite::Transaction, RunId) -> rusqlite::Result<usize>,
    ) -> Result<usize> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
        let mut changed = 0;
        for run in runs {
            changed += usize::from(change(&tx, *run).map_err(&err)? > 0);
        }
        tx.commit().map_err(&err)?;
        Ok(changed)
    }
}
