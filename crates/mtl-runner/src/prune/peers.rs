//! What a cluster worker's pruning compares against. A worker trains one trial into a
//! database of its own; the others are in the finished shards of the experiment's folder
//! (each renamed into place whole, so never changing once there) and in the main database
//! (merged trials), which it reads read-only. A trial still training on another node is not
//! visible, so a worker compares against the trials finished when it asks: Optuna's median
//! pruner, too, compares with completed trials. A peer that cannot be read is left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mtl_store::{RunRecord, Store, TrialPoints};

use crate::plan::Plan;

/// The other trials of a worker's experiment.
#[derive(Debug)]
pub struct Peers {
    /// The whole plan (the worker trains one trial of it).
    pub plan: Plan,
    db: PathBuf,
    dir: PathBuf,
    own: PathBuf,
    /// Finished shards' validation points by epoch, and their runs: read once.
    points: Mutex<BTreeMap<(PathBuf, u32), Vec<TrialPoints>>>,
    runs: Mutex<BTreeMap<PathBuf, Vec<RunRecord>>>,
}

impl Peers {
    /// The peers of the worker whose shard is `own` in the plan folder `dir` of the main
    /// database `db`.
    pub fn new(plan: Plan, db: PathBuf, dir: PathBuf, own: PathBuf) -> Peers {
        Peers { plan, db, dir, own, points: Mutex::default(), runs: Mutex::default() }
    }

    /// The main database, then every finished shard but the worker's own, each with
    /// whether it can change (the main database can: `mtl merge` writes it).
    fn sources(&self) -> Vec<(PathBuf, bool)> {
        let shards = crate::shard::ShardPlan::shards(&self.dir).into_iter().filter(|p| *p != self.own);
        std::iter::once((self.db.clone(), true)).chain(shards.map(|p| (p, false))).collect()
    }

    /// The other trials' validation points at `epoch` (each trial once).
    pub fn points_at(&self, epoch: u32) -> Vec<TrialPoints> {
        let mut all: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (path, changes) in self.sources() {
            let cached =
                (!changes).then(|| self.points.lock().expect("peers lock").get(&(path.clone(), epoch)).cloned());
            let rows = match cached.flatten() {
                Some(rows) => rows,
                None => {
                    let rows = read(&path, &self.plan.experiment, |s, e| s.val_points_at(e, epoch));
                    if !changes {
                        self.points.lock().expect("peers lock").insert((path, epoch), rows.clone());
                    }
                    rows
                }
            };
            for (key, points) in rows {
                all.entry(key).or_insert(points);
            }
        }
        all.into_iter().collect()
    }

    /// The other trials' runs (each trial once, a done run first).
    pub fn runs(&self) -> Vec<RunRecord> {
        let mut all: BTreeMap<String, RunRecord> = BTreeMap::new();
        for (path, changes) in self.sources() {
            let cached = (!changes).then(|| self.runs.lock().expect("peers lock").get(&path).cloned());
            let runs = match cached.flatten() {
                Some(runs) => runs,
                None => {
                    let experiment = self.plan.experiment.clone();
                    let runs = read(&path, &experiment, |s, _| s.runs(Some(&experiment)));
                    if !changes {
                        self.runs.lock().expect("peers lock").insert(path, runs.clone());
                    }
                    runs
                }
            };
            for run in runs {
                let done = run.status == mtl_store::RunStatus::Done;
                match all.get(&run.trial_key) {
                    Some(kept) if kept.status == mtl_store::RunStatus::Done || !done => {}
                    _ => {
                        all.insert(run.trial_key.clone(), run);
                    }
                }
            }
        }
        all.into_values().collect()
    }
}

/// `query` on the database at `path` opened read-only, for `experiment`; nothing when it
/// is missing, unreadable or lacks the experiment.
fn read<T>(
    path: &Path,
    experiment: &str,
    query: impl FnOnce(&Store, mtl_store::ExperimentId) -> Result<Vec<T>, mtl_store::StoreError>,
) -> Vec<T> {
    if !path.is_file() {
        return Vec::new();
    }
    let Ok(store) = Store::open_read_only(path) else { return Vec::new() };
    match store.experiment_named(experiment) {
        Ok(Some(id)) => query(&store, id).unwrap_or_default(),
        _ => Vec::new(),
    }
}
