//! What a cluster worker's pruning compares against. A worker trains one trial into a
//! database of its own; the others are in the finished shards of the experiment's folder
//! (each renamed into place whole; merging leaves them there), read read-only. The main
//! database is not read: SQLite's WAL mode is not safe across hosts. A trial still training
//! on another node is not visible, so a worker compares against the trials finished when it
//! asks: Optuna's median pruner, too, compares with completed trials. A shard is read again
//! only when its size or time changes (a trial trained again replaces it); one that cannot
//! be read is left out.

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
    dir: PathBuf,
    own: PathBuf,
    /// Shards' validation points by epoch, and their runs, by the file's path, size and
    /// modification time.
    points: Mutex<BTreeMap<(Version, u32), Vec<TrialPoints>>>,
    runs: Mutex<BTreeMap<Version, Vec<RunRecord>>>,
}

/// A shard file as it is now: its path, size and modification time.
type Version = (PathBuf, u64, Option<std::time::SystemTime>);

impl Peers {
    /// The peers of the worker whose shard is `own` in the plan folder `dir`.
    pub fn new(plan: Plan, dir: PathBuf, own: PathBuf) -> Peers {
        Peers { plan, dir, own, points: Mutex::default(), runs: Mutex::default() }
    }

    /// Every finished shard but the worker's own, as it is now.
    fn sources(&self) -> Vec<Version> {
        let shards = crate::shard::ShardPlan::shards(&self.dir).into_iter().filter(|p| *p != self.own);
        shards
            .filter_map(|path| {
                let metadata = std::fs::metadata(&path).ok()?;
                Some((path, metadata.len(), metadata.modified().ok()))
            })
            .collect()
    }

    /// The other trials' validation points at `epoch` (each trial once).
    pub fn points_at(&self, epoch: u32) -> Vec<TrialPoints> {
        let mut all: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for version in self.sources() {
            let cached = self.points.lock().expect("peers lock").get(&(version.clone(), epoch)).cloned();
            let rows = match cached {
                Some(rows) => rows,
                None => {
                    let rows = read(&version.0, &self.plan.experiment, |s, e| s.val_points_at(e, epoch));
                    self.points.lock().expect("peers lock").insert((version, epoch), rows.clone());
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
        for version in self.sources() {
            let cached = self.runs.lock().expect("peers lock").get(&version).cloned();
            let runs = match cached {
                Some(runs) => runs,
                None => {
                    let experiment = self.plan.experiment.clone();
                    let runs = read(&version.0, &experiment, |s, _| s.runs(Some(&experiment)));
                    self.runs.lock().expect("peers lock").insert(version, runs.clone());
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
