//! Revisions of an experiment: each distinct content of its experiment file, numbered
//! in the order its first run started (1, 2, …), and the experiment's result rule.

use std::collections::BTreeMap;

use rusqlite::OptionalExtension;

use crate::{ExperimentId, Result, ResultEpoch, RunRecord, Store};

/// Numbers each experiment's file contents by first run: `revision` of every run.
pub(crate) fn number_revisions(runs: &mut [RunRecord]) {
    // Runs come in id order, so a content's first appearance is its first run.
    let mut numbers: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for run in runs.iter_mut() {
        let Some(sha) = &run.experiment_sha256 else { continue };
        let key = (run.experiment.clone(), sha.clone());
        let next = counts.entry(run.experiment.clone()).or_default();
        run.revision = *numbers.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        });
    }
}

/// The experiment file of an experiment's latest revision (by its most recent run).
#[derive(Clone, Debug, PartialEq)]
pub struct LatestRevision {
    /// Its number (see [`RunRecord::revision`]).
    pub revision: u32,
    /// sha256 of the file's text.
    pub sha256: String,
    /// The text, when the database kept it.
    pub text: Option<String>,
}

impl Store {
    /// Sets the rule that picks each run's result epoch for `experiment`.
    pub fn set_result_epoch(&mut self, experiment: ExperimentId, rule: ResultEpoch) -> Result<()> {
        self.conn
            .execute(
                "UPDATE experiments SET result_epoch = ?2 WHERE id = ?1",
                rusqlite::params![experiment.0, rule.name()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The latest revision of experiment `name`'s file; `None` when it has no run with one.
    pub fn latest_revision(&self, name: &str) -> Result<Option<LatestRevision>> {
        let err = self.err();
        let latest: Option<String> = self
            .conn
            .query_row(
                "SELECT r.experiment_sha256 FROM runs r JOIN experiments e ON e.id = r.experiment_id
                 WHERE e.name = ?1 AND r.experiment_sha256 IS NOT NULL ORDER BY r.id DESC LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        let Some(sha256) = latest else { return Ok(None) };
        let revision: u32 = self
            .conn
            .query_row(
                "SELECT COUNT(DISTINCT r.experiment_sha256) FROM runs r JOIN experiments e ON e.id = r.experiment_id
                 WHERE e.name = ?1 AND r.id <= (SELECT MIN(id) FROM runs x WHERE x.experiment_id = e.id
                                                AND x.experiment_sha256 = ?2)",
                [name, &sha256],
                |r| r.get(0),
            )
            .map_err(&err)?;
        let text = self.blob_by_hash(&sha256)?.and_then(|bytes| String::from_utf8(bytes).ok());
        Ok(Some(LatestRevision { revision, sha256, text }))
    }
}
