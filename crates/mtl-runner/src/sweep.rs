//! Runs a plan against the results database: skips finished trials, trains
//! the rest on `jobs` threads, and writes each epoch in one transaction.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::data::TaskSet;
use mtl_store::{MetricPoint, NewRun, RunId, RunStatus, Store, StoreError};

use crate::plan::{Plan, Trial};
use crate::train::{train, TrainObserver};

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The results database.
    pub db: PathBuf,
    /// Trials trained at once (threads).
    pub jobs: usize,
}

/// What happened to one trial.
#[derive(Clone, Debug)]
pub struct TrialOutcome {
    /// Index of the trial in the plan.
    pub trial_idx: usize,
    /// Its run in the database.
    pub run: RunId,
    /// `Done` or `Failed`.
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The metrics of its last epoch.
    pub final_points: Vec<MetricPoint>,
}

/// The result of [`run_sweep`].
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// Trials already done before this run started, skipped.
    pub skipped: Vec<usize>,
    /// Trials trained now, in the order they finished.
    pub outcomes: Vec<TrialOutcome>,
}

/// Receives the progress of a sweep; called from the worker threads.
pub trait SweepEvents: Sync {
    /// Before training starts: the trials to train (indices into the plan).
    fn planned(&self, _plan: &Plan, _pending: &[usize]) {}
    /// A worker started a trial; its network has `n_parameters` parameters.
    fn trial_started(&self, _job: usize, _trial: &Trial, _n_parameters: usize) {}
    /// A trial finished an epoch; `points` are its metrics.
    fn epoch(&self, _job: usize, _trial: &Trial, _epoch: u32, _points: &[MetricPoint]) {}
    /// A worker finished an optimiser step.
    fn step(&self, _job: usize, _trial: &Trial, _epoch: u32, _step: usize, _steps_per_epoch: usize) {}
    /// A trial ended.
    fn trial_finished(&self, _job: usize, _trial: &Trial, _outcome: &TrialOutcome) {}
}

/// Errors that stop the whole sweep (a failing trial does not).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Trains every trial of `plan` not yet done in the database.
pub fn run_sweep(
    plan: &Plan,
    tasks: &TaskSet,
    options: &SweepOptions,
    events: &dyn SweepEvents,
) -> Result<SweepReport, SweepError> {
    let mut store = Store::open(&options.db)?;
    let experiment = store.experiment(&plan.experiment)?;
    let mut pending = Vec::new();
    let mut skipped = Vec::new();
    for (i, trial) in plan.trials.iter().enumerate() {
        match store.run_status(experiment, &trial.key)? {
            Some((_, RunStatus::Done)) => skipped.push(i),
            _ => pending.push(i),
        }
    }
    drop(store);
    events.planned(plan, &pending);

    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    let first_error: Mutex<Option<SweepError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for job in 0..options.jobs.clamp(1, pending.len().max(1)) {
            let (next, outcomes, first_error, pending) = (&next, &outcomes, &first_error, &pending);
            scope.spawn(move || {
                let work = || -> Result<(), SweepError> {
                    let mut store = Store::open(&options.db)?;
                    loop {
                        if first_error.lock().expect("error lock").is_some() {
                            return Ok(());
                        }
                        let Some(&trial_idx) = pending.get(next.fetch_add(1, Ordering::SeqCst)) else {
                            return Ok(());
                        };
                        let outcome = run_trial(&mut store, experiment, plan, trial_idx, tasks, job, events)?;
                        events.trial_finished(job, &plan.trials[trial_idx], &outcome);
                        outcomes.lock().expect("outcome lock").push(outcome);
                    }
                };
                if let Err(e) = work() {
                    first_error.lock().expect("error lock").get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("error lock") {
        return Err(e);
    }
    Ok(SweepReport { skipped, outcomes: outcomes.into_inner().expect("outcome lock") })
}

struct StoreObserver<'a> {
    store: &'a mut Store,
    run: RunId,
    trial: &'a Trial,
    job: usize,
    events: &'a dyn SweepEvents,
    last_points: Vec<MetricPoint>,
    store_error: Option<StoreError>,
}

impl TrainObserver for StoreObserver<'_> {
    fn started(&mut self, n_parameters: usize) {
        self.events.trial_started(self.job, self.trial, n_parameters);
    }

    fn step(&mut self, epoch: u32, step: usize, steps_per_epoch: usize) {
        self.events.step(self.job, self.trial, epoch, step, steps_per_epoch);
    }

    fn epoch(&mut self, epoch: u32, points: &[MetricPoint]) -> Result<(), String> {
        match self.store.log_epoch(self.run, epoch, points) {
            Ok(()) => {
                self.events.epoch(self.job, self.trial, epoch, points);
                self.last_points = points.to_vec();
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                self.store_error = Some(e);
                Err(message)
            }
        }
    }
}

fn run_trial(
    store: &mut Store,
    experiment: mtl_store::ExperimentId,
    plan: &Plan,
    trial_idx: usize,
    tasks: &TaskSet,
    job: usize,
    events: &dyn SweepEvents,
) -> Result<TrialOutcome, SweepError> {
    let trial = &plan.trials[trial_idx];
    let params = trial.params();
    let run = store.begin_run(&NewRun {
        experiment,
        trial_key: &trial.key,
        settings_json: &trial.settings_json,
        params: &params,
    })?;
    // The vocabulary token ids refer to, so that evaluation and checkpoints can use the same one.
    for task in &tasks.tasks {
        if let Some(vocabulary) = &task.vocabulary {
            store.attach_blob(run, &format!("vocabulary/{}", task.name), vocabulary.to_text().as_bytes())?;
        }
    }
    let mut observer = StoreObserver { store, run, trial, job, events, last_points: Vec::new(), store_error: None };
    let result = train(trial, tasks, &mut observer);
    let StoreObserver { store, last_points, store_error, .. } = observer;
    if let Some(e) = store_error {
        return Err(e.into());
    }
    let (status, error) = match result {
        Ok(()) => (RunStatus::Done, None),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    store.finish_run(run, status, error.as_deref())?;
    Ok(TrialOutcome { trial_idx, run, status, error, final_points: last_points })
}
