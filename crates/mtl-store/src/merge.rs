//! Ingesting shard databases: one per trial, written by `mtl worker` on a cluster
//! node, merged into the main database by `mtl merge`.
//!
//! A shard is an ordinary results database holding exactly one run: the trial that its
//! file name designates, of its plan's experiment ([`ShardTrial`]). Before anything is
//! read, a shard must be a regular file (SQLite's open blocks on a FIFO until a writer
//! comes, and fails late on a folder), open read-only as an mtl-lab database, pass
//! SQLite's quick check, and hold that one run; otherwise [`Store::merge_trial_shard`]
//! refuses it with a [`ShardRejected`] and nothing of it is copied. Merging copies its
//! run, if finished (done, failed or interrupted), with settings, metrics, diagnostics
//! and artifacts, in one transaction. The main database keeps what it has when it has the trial done, has
//! the same attempt already (same start time), has a newer attempt, or is training the
//! trial itself (`running`): so merging twice changes nothing. A shard run still
//! `running` is skipped.

use std::path::Path;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::{sqlite_err, Result, RunId, RunRecord, ShardRejected, Store};

/// The trial a shard must hold: the plan's entry that the shard's file name designates.
#[derive(Clone, Copy, Debug)]
pub struct ShardTrial<'a> {
    /// The experiment of the plan.
    pub experiment: &'a str,
    /// The trial key that the shard's name designates.
    pub trial_key: &'a str,
}

/// What [`Store::merge_trial_shard`] or [`Store::merge_shard`] did.
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

    /// Opens the shard at `shard` read-only and returns its one run, once checked as
    /// [`Store::merge_trial_shard`] checks it.
    pub fn read_shard(shard: &Path, trial: ShardTrial) -> Result<RunRecord> {
        let store = Store::open_shard(shard, trial)?;
        let run = store.runs_including_archived(None).map_err(|e| unreadable(shard, e))?.into_iter().next();
        // open_shard counted exactly one run, with its experiment.
        run.ok_or_else(|| wrong_contents(shard, trial, "no run".into()).into())
    }

    /// Copies the run of `trial`'s shard at `shard`, if finished, into this one (what
    /// `mtl merge` does). A shard that is not a regular file, not an intact mtl-lab
    /// database, or does not hold exactly `trial` is refused ([`StoreError::Shard`]) and
    /// nothing of it is copied; any other error is this database's.
    pub fn merge_trial_shard(&mut self, shard: &Path, trial: ShardTrial) -> Result<MergeSummary> {
        drop(Store::open_shard(shard, trial)?);
        // Checked just above: a regular file (were it swapped since, SQLite still opens by path).
        self.attach_shard(shard).map_err(|e| unreadable(shard, sqlite_err(shard, e)))?;
        self.merge_attached_and_detach()
    }

    /// Copies every finished run of the database at `shard` into this one, whatever
    /// trials it holds; [`Store::merge_trial_shard`] also checks that a shard holds
    /// exactly the trial its name designates.
    pub fn merge_shard(&mut self, shard: &Path) -> Result<MergeSummary> {
        // The shard must be an mtl-lab database no newer than this build (read-only: it is not ours).
        drop(Store::open_read_only(shard)?);
        self.attach_shard(shard).map_err(|e| sqlite_err(shard, e))?;
        self.merge_attached_and_detach()
    }

    fn attach_shard(&self, shard: &Path) -> rusqlite::Result<usize> {
        let uri = format!("file:{}?mode=ro", shard.display().to_string().replace('?', "%3f").replace('#', "%23"));
        self.conn.execute("ATTACH DATABASE ?1 AS shard", [&uri])
    }

    fn merge_attached_and_detach(&mut self) -> Result<MergeSummary> {
        let result = self.merge_attached();
        self.conn.execute_batch("DETACH DATABASE shard").map_err(|e| sqlite_err(&self.path, e))?;
        result
    }

    /// The shard at `path`, read-only, after checking that it is a regular file, an intact
    /// mtl-lab database no newer than this build, and holds exactly `trial`.
    fn open_shard(path: &Path, trial: ShardTrial) -> std::result::Result<Store, ShardRejected> {
        let file_type = std::fs::symlink_metadata(path).map_err(|e| unreadable(path, e))?.file_type();
        if !file_type.is_file() {
            return Err(ShardRejected::NotAFile { path: path.to_owned(), kind: crate::open::file_kind(file_type) });
        }
        let store = Store::open_read_only(path).map_err(|e| unreadable(path, e))?;
        let read_err = |e| unreadable(path, sqlite_err(path, e));
        let check: String = store.conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(read_err)?;
        if check != "ok" {
            return Err(ShardRejected::Damaged { path: path.to_owned(), message: check });
        }
        let runs: Vec<(String, Option<String>)> = {
            let mut stmt = store
                .conn
                .prepare(
                    "SELECT r.trial_key, e.name FROM runs r LEFT JOIN experiments e ON e.id = r.experiment_id
                     ORDER BY r.id LIMIT 3",
                )
                .map_err(read_err)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(read_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(read_err)?
        };
        match runs.as_slice() {
            [(key, Some(experiment))] if key == trial.trial_key && experiment == trial.experiment => Ok(store),
            [(key, experiment)] => {
                let experiment = experiment.as_deref().unwrap_or("(none)");
                Err(wrong_contents(path, trial, format!("trial {key} of experiment {experiment:?}")))
            }
            [] => Err(wrong_contents(path, trial, "no run".into())),
            _ => {
                let n: i64 = store.conn.query_row("SELECT count(*) FROM runs", [], |r| r.get(0)).map_err(read_err)?;
                Err(wrong_contents(path, trial, format!("{n} runs")))
            }
        }
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
                "INSERT INTO experiments (name, created_at, result_epoch)
                 SELECT name, created_at, result_epoch FROM shard.experiments WHERE name = ?1
                 ON CONFLICT (name) DO NOTHING",
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
                    if status == "done" || status == "pruned" || *started == shard_started || *ended >= shard_ended =>
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
            crate::views::widen_runs_view(&tx, RunId(run)).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(summary)
    }
}

fn unreadable(path: &Path, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ShardRejected {
    ShardRejected::Unreadable { path: path.to_owned(), source: source.into() }
}

fn wrong_contents(path: &Path, trial: ShardTrial, found: String) -> ShardRejected {
    ShardRejected::WrongContents {
        path: path.to_owned(),
        found,
        experiment: trial.experiment.to_owned(),
        trial_key: trial.trial_key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewRun, RunStatus, StoreError};

    /// A database with a done run of each `(experiment, trial key)`.
    fn database(path: &Path, runs: &[(&str, &str)]) {
        let mut store = Store::open(path).expect("open");
        for (experiment, key) in runs {
            let experiment = store.experiment(experiment).expect("experiment");
            let new = NewRun {
                experiment,
                trial_key: key,
                settings_json: "{}",
                params: &[],
                provenance: &Default::default(),
            };
            let run = store.begin_run(&new).expect("run");
            store.finish_run(run, RunStatus::Done, None).expect("finish");
        }
    }

    /// Merges `shard` as trial `k1` of experiment `e` into a fresh database: the summary,
    /// or why it was refused.
    fn check(dir: &Path, shard: &Path) -> std::result::Result<usize, String> {
        let main = dir.join(format!("main-{}.db", shard.file_name().expect("name").to_string_lossy()));
        let mut main = Store::open(&main).expect("main");
        match main.merge_trial_shard(shard, ShardTrial { experiment: "e", trial_key: "k1" }) {
            Ok(summary) => Ok(summary.done),
            Err(StoreError::Shard(rejected)) => {
                assert!(main.runs(None).expect("runs").is_empty(), "nothing of a refused shard is copied");
                Err(rejected.to_string())
            }
            Err(other) => panic!("{shard:?}: not a shard's error: {other}"),
        }
    }

    #[test]
    fn a_shard_must_be_a_regular_file_holding_exactly_the_trial_its_name_designates() {
        let dir = tempfile::tempdir().expect("dir");
        let path = |name: &str| dir.path().join(name);
        database(&path("good.db"), &[("e", "k1")]);
        database(&path("other-experiment.db"), &[("f", "k1")]);
        database(&path("other-trial.db"), &[("e", "k2")]);
        database(&path("two.db"), &[("e", "k1"), ("e", "k2")]);
        database(&path("none.db"), &[]);
        std::fs::create_dir(path("folder.db")).expect("mkdir");
        std::os::unix::fs::symlink(path("good.db"), path("link.db")).expect("symlink");
        std::fs::write(path("text.db"), "not a database, only some text").expect("write");
        let good = std::fs::read(path("good.db")).expect("read");
        std::fs::write(path("truncated.db"), &good[..good.len() / 2]).expect("write");

        assert_eq!(check(dir.path(), &path("good.db")), Ok(1));
        for (name, reason) in [
            (
                "other-experiment.db",
                "holds trial k1 of experiment \"f\"; its name designates trial k1 of experiment \"e\"",
            ),
            ("other-trial.db", "holds trial k2 of experiment \"e\""),
            ("two.db", "holds 2 runs"),
            ("none.db", "holds no run"),
            ("folder.db", "not a regular file (a folder)"),
            ("link.db", "not a regular file (a symbolic link)"),
            ("text.db", "unreadable"),
            ("missing.db", "unreadable"),
        ] {
            let error = check(dir.path(), &path(name)).expect_err(name);
            assert!(error.starts_with(&format!("{}: ", path(name).display())), "{error}");
            assert!(error.contains(reason), "{name}: {error}");
        }
        // Half a shard: refused, never merged in part.
        let error = check(dir.path(), &path("truncated.db")).expect_err("truncated");
        assert!(error.contains("unreadable") || error.contains("damaged"), "{error}");
    }
}
