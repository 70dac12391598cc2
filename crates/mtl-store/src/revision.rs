//! Revisions of an experiment: each distinct content of its experiment file, numbered
//! in the order its first run started (1, 2, …; ties by run id), and the experiment's
//! result rule.

use std::collections::BTreeMap;

use crate::{ExperimentId, Result, ResultEpoch, RunRecord, Store};

/// When a run started (RFC 3339, empty if never) and its id: the order of revisions.
type Moment = (String, i64);

/// One revision of an experiment: its number, the file's sha256, its last run's moment.
struct Revision {
    number: u32,
    sha256: String,
    last: Moment,
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

    /// The latest revision of experiment `name`'s file (the one its most recently started
    /// run was made from); `None` when it has no run with one.
    pub fn latest_revision(&self, name: &str) -> Result<Option<LatestRevision>> {
        let revisions = self.revisions(name)?;
        let Some(latest) = revisions.into_iter().max_by(|a, b| a.last.cmp(&b.last)) else { return Ok(None) };
        let (revision, sha256) = (latest.number, latest.sha256);
        let text = self.blob_by_hash(&sha256)?.and_then(|bytes| String::from_utf8(bytes).ok());
        Ok(Some(LatestRevision { revision, sha256, text }))
    }

    /// The revision number of the file text with hash `sha256` in experiment `name`, if
    /// some run was made from it.
    pub fn revision_of(&self, name: &str, sha256: &str) -> Result<Option<u32>> {
        Ok(self.revisions(name)?.into_iter().find(|r| r.sha256 == sha256).map(|r| r.number))
    }

    /// Sets `revision` on each of `runs` from every run of its experiment, archived ones
    /// included, so that hiding runs never renumbers the others.
    pub(crate) fn assign_revisions(&self, runs: &mut [RunRecord]) -> Result<()> {
        let experiments: std::collections::BTreeSet<String> = runs.iter().map(|r| r.experiment.clone()).collect();
        let mut numbers: BTreeMap<(String, String), u32> = BTreeMap::new();
        for experiment in experiments {
            for revision in self.revisions(&experiment)? {
                numbers.insert((experiment.clone(), revision.sha256), revision.number);
            }
        }
        for run in runs.iter_mut() {
            if let Some(sha) = &run.experiment_sha256 {
                run.revision = numbers.get(&(run.experiment.clone(), sha.clone())).copied().unwrap_or(0);
            }
        }
        Ok(())
    }

    /// How many revisions experiment `name` has.
    pub fn revision_count(&self, name: &str) -> Result<u32> {
        Ok(self.revisions(name)?.len() as u32)
    }

    /// Each revision of `name`, numbered as [`RunRecord::revision`] numbers them.
    fn revisions(&self, name: &str) -> Result<Vec<Revision>> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.experiment_sha256, MIN(COALESCE(r.started_at, '')), MIN(r.id),
                        MAX(COALESCE(r.started_at, '')), MAX(r.id)
                 FROM runs r JOIN experiments e ON e.id = r.experiment_id
                 WHERE e.name = ?1 AND r.experiment_sha256 IS NOT NULL GROUP BY r.experiment_sha256",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([name], |r| {
                Ok(((r.get::<_, String>(1)?, r.get::<_, i64>(2)?), r.get::<_, String>(0)?, (r.get(3)?, r.get(4)?)))
            })
            .map_err(&err)?;
        let mut revisions: Vec<(Moment, String, Moment)> = rows.collect::<rusqlite::Result<_>>().map_err(&err)?;
        revisions.sort();
        let numbered = revisions.into_iter().enumerate();
        Ok(numbered.map(|(i, (_, sha256, last))| Revision { number: i as u32 + 1, sha256, last }).collect())
    }
}
