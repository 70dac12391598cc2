//! Reads: experiments, runs with their settings, provenance and final and best
//! metrics (one snapshot per listing), metric and diagnostic rows, artifacts and blobs.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use crate::{
    DiagnosticPoint, DiagnosticRow, ExperimentId, MetricKey, MetricRow, ParamValue, Provenance, Result, ResultEpoch,
    RunId, RunRecord, RunStatus, Store,
};

/// A trial key with its points at one epoch ([`Store::val_points_at`]).
pub type TrialPoints = (String, Vec<(MetricKey, f64)>);

impl Store {
    /// Names of all experiments, oldest first.
    pub fn experiments(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT name FROM experiments ORDER BY id").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The id of the experiment named `name`, if the database has it.
    pub fn experiment_named(&self, name: &str) -> Result<Option<ExperimentId>> {
        self.conn
            .query_row("SELECT id FROM experiments WHERE name = ?1", [name], |r| Ok(ExperimentId(r.get(0)?)))
            .optional()
            .map_err(self.err())
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

    /// The validation points of every run of `experiment` (archived ones left out) at
    /// `epoch`, by trial key in key order: what a sweep's pruning rule compares. One
    /// indexed seek per run; the size is bounded by the runs × their metrics.
    pub fn val_points_at(&self, experiment: ExperimentId, epoch: u32) -> Result<Vec<TrialPoints>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.trial_key, m.task, m.metric, m.value FROM runs r
                 CROSS JOIN metrics m ON m.run_id = r.id AND m.epoch = ?2 AND m.split = 'val'
                 WHERE r.experiment_id = ?1 AND r.archived_at IS NULL ORDER BY r.trial_key, m.task, m.metric",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![experiment.0, epoch], |r| {
                let key = MetricKey { task: r.get(1)?, split: "val".into(), metric: r.get(2)? };
                Ok((r.get::<_, String>(0)?, key, r.get::<_, f64>(3)?))
            })
            .map_err(self.err())?;
        let mut runs: Vec<TrialPoints> = Vec::new();
        for row in rows {
            let (trial_key, key, value) = row.map_err(self.err())?;
            match runs.last_mut() {
                Some((last, points)) if *last == trial_key => points.push((key, value)),
                _ => runs.push((trial_key, vec![(key, value)])),
            }
        }
        Ok(runs)
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

    /// Every run not archived, optionally of one experiment, in id order, with its settings,
    /// provenance, tags, note and the metrics of its last and its best epoch. Every reader
    /// of results goes through it, so an archived run (`mtl rm`) is left out everywhere.
    pub fn runs(&self, experiment: Option<&str>) -> Result<Vec<RunRecord>> {
        self.read_runs(experiment, false, None)
    }

    /// [`Store::runs`] with the archived runs too (`mtl ls --archived`, finding a run to restore).
    pub fn runs_including_archived(&self, experiment: Option<&str>) -> Result<Vec<RunRecord>> {
        self.read_runs(experiment, true, None)
    }

    /// One run, archived or not, read as [`Store::runs`] reads each (the line a sweep prints
    /// when a trial ends shows its result); `None` if there is no such run.
    pub fn run(&self, id: RunId) -> Result<Option<RunRecord>> {
        Ok(self.read_runs(None, true, Some(id))?.pop())
    }

    fn read_runs(&self, experiment: Option<&str>, archived: bool, only: Option<RunId>) -> Result<Vec<RunRecord>> {
        let only = only.map(|id| id.0);
        let err = self.err();
        // One snapshot for the several queries, while other processes write.
        let snapshot = self.conn.unchecked_transaction().map_err(&err)?;
        let mut stmt = snapshot
            .prepare(
                "SELECT r.id, e.name, r.trial_key, r.status, r.started_at, r.ended_at, r.error, r.best_epoch,
                        r.experiment_file, r.experiment_sha256, r.mtl_version, r.git_commit, r.host,
                        r.attempts, r.owner_host || ':' || r.owner_pid, r.heartbeat_at, e.result_epoch,
                        r.archived_at IS NOT NULL, n.text, r.device
                 FROM runs r JOIN experiments e ON e.id = r.experiment_id LEFT JOIN notes n ON n.run_id = r.id
                 WHERE (?1 IS NULL OR e.name = ?1) AND (?2 OR r.archived_at IS NULL) AND (?3 IS NULL OR r.id = ?3)
                 ORDER BY r.id",
            )
            .map_err(&err)?;
        let mut runs: Vec<RunRecord> = stmt
            .query_map(params![experiment, archived, only], |r| {
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
                        device: r.get(19)?,
                    },
                    experiment_sha256: r.get(9)?,
                    attempts: r.get(13)?,
                    owner: r.get(14)?,
                    heartbeat_at: r.get(15)?,
                    result_rule: ResultEpoch::parse(&r.get::<_, String>(16)?).unwrap_or_default(),
                    archived: r.get(17)?,
                    note: r.get(18)?,
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
                 JOIN experiments e ON e.id = r.experiment_id
                 WHERE (?1 IS NULL OR e.name = ?1) AND (?2 IS NULL OR r.id = ?2)",
            )
            .map_err(&err)?;
        let mut rows = stmt.query(params![experiment, only]).map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let Some(&i) = index.get(&RunId(r.get(0).map_err(&err)?)) else { continue };
            let num: Option<f64> = r.get(2).map_err(&err)?;
            let value = match num {
                Some(x) => ParamValue::Num(x),
                None => ParamValue::Text(r.get::<_, Option<String>>(3).map_err(&err)?.unwrap_or_default()),
            };
            runs[i].params.insert(r.get(1).map_err(&err)?, value);
        }

        let mut stmt = snapshot
            .prepare(
                "SELECT t.run_id, t.key, t.value FROM tags t JOIN runs r ON r.id = t.run_id
                 JOIN experiments e ON e.id = r.experiment_id
                 WHERE (?1 IS NULL OR e.name = ?1) AND (?2 IS NULL OR r.id = ?2)",
            )
            .map_err(&err)?;
        let mut rows = stmt.query(params![experiment, only]).map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let Some(&i) = index.get(&RunId(r.get(0).map_err(&err)?)) else { continue };
            runs[i].tags.insert(r.get(1).map_err(&err)?, r.get(2).map_err(&err)?);
        }

        // One seek per run into the metrics' (run, epoch, …) key for each of the two epochs.
        for (view, best) in [("final_metrics", false), ("best_metrics", true)] {
            let mut stmt = snapshot
                .prepare(&format!(
                    "SELECT run_id, epoch, task, split, metric, value FROM {view}
                     WHERE (?1 IS NULL OR experiment = ?1) AND (?2 IS NULL OR run_id = ?2)"
                ))
                .map_err(&err)?;
            let mut rows = stmt.query(params![experiment, only]).map_err(&err)?;
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
        self.assign_revisions(&mut runs)?;
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
