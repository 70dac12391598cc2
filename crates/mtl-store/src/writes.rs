//! Writes: experiments, runs started or reset, epochs of metrics, diagnostics,
//! artifacts and settings, and the end of a run; each in one transaction.

use std::path::Path;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::claims::heartbeat;
use crate::rows::{insert_blob, start_run};
use crate::views::widen_runs_view;
use crate::{
    now, sqlite_err, DiagnosticPoint, ExperimentId, MetricKey, MetricPoint, NewRun, ParamValue, Result, RunId,
    RunStatus, Selection, Store,
};

impl Store {
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

    /// Writes every metric of one epoch, and the run's heartbeat, in one transaction.
    /// Fails with [`StoreError::ClaimLost`](crate::StoreError::ClaimLost) (and writes nothing) if
    /// another process has taken over a run this connection claimed.
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

    /// Records the end of a run and its best epoch (see
    /// [`RunRecord::best_epoch`](crate::RunRecord::best_epoch)), in one transaction with the
    /// columns of `runs_wide` it brings. Fails with [`StoreError::ClaimLost`](crate::StoreError::ClaimLost)
    /// if another process has taken over a run this connection claimed.
    pub fn finish_run(&mut self, run: RunId, status: RunStatus, error: Option<&str>) -> Result<()> {
        let path = self.path.clone();
        let err = |e| sqlite_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        heartbeat(&tx, &path, run, self.claimed.get(&run))?;
        let best = best_epoch(&tx, run).map_err(err)?;
        tx.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, error = ?4, best_epoch = ?5 WHERE id = ?1",
            params![run.0, status.as_str(), now(), error, best],
        )
        .map_err(err)?;
        widen_runs_view(&tx, run).map_err(err)?;
        tx.commit().map_err(err)?;
        self.claimed.remove(&run);
        Ok(())
    }
}

/// The run's best epoch by its [`Selection`] (the param, or accuracy on every task), from
/// its validation points (epochs × tasks × metrics: bounded by the run's length).
fn best_epoch(tx: &rusqlite::Transaction, run: RunId) -> rusqlite::Result<Option<u32>> {
    let selection: Option<String> = tx
        .query_row("SELECT text FROM params WHERE run_id = ?1 AND key = ?2", params![run.0, Selection::PARAM], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    let selection = selection.map_or_else(Selection::default, |text| Selection::from_param(&text));
    let mut stmt = tx.prepare_cached(
        "SELECT epoch, task, metric, value FROM metrics WHERE run_id = ?1 AND split = 'val' ORDER BY epoch, task, metric",
    )?;
    let rows = stmt.query_map(params![run.0], |r| {
        let key = MetricKey { task: r.get(1)?, split: "val".into(), metric: r.get(2)? };
        Ok((r.get::<_, u32>(0)?, key, r.get::<_, f64>(3)?))
    })?;
    let mut epochs: Vec<(u32, Vec<(MetricKey, f64)>)> = Vec::new();
    for row in rows {
        let (epoch, key, value) = row?;
        match epochs.last_mut() {
            Some((last, points)) if *last == epoch => points.push((key, value)),
            _ => epochs.push((epoch, vec![(key, value)])),
        }
    }
    Ok(selection
        .best_epoch(epochs.iter().map(|(epoch, points)| (*epoch, points.iter().map(|(k, v)| (k, *v)).collect()))))
}

/// A test hook for the crash tests: when the environment variable `MTL_TEST_PAUSE_AT`
/// names `point`, prints `mtl test hook: paused at POINT (DETAIL)` to stderr and sleeps
/// 60 s, so that a test can kill the process exactly there. Points: `epoch-write`
/// (inside an epoch's write transaction, before it commits) and `between-trials`
/// (mtl-runner). Not meant for anything else: compiled only with the feature `test-hooks`,
/// which the end-to-end tests turn on (mtl-cli's dev-dependencies), so a binary built
/// for users never reads the variable; elsewhere it does nothing.
#[doc(hidden)]
pub fn test_pause(point: &str, detail: &str) {
    #[cfg(feature = "test-hooks")]
    if std::env::var("MTL_TEST_PAUSE_AT").is_ok_and(|at| at == point) {
        eprintln!("mtl test hook: paused at {point} ({detail})");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = (point, detail);
}
