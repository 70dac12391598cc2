//! Runs a plan against the results database: skips finished trials, claims
//! the rest one by one ([`Store::claim_run`]: several processes may run the same
//! sweep, and no trial is trained twice), trains them on `jobs` threads, and
//! writes each epoch in one transaction.
//!
//! A trial left `running` by a process that is gone (killed, crashed) is marked
//! interrupted when the next sweep starts, and trained again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::data::TaskSet;
use mtl_model::Parameters;
use mtl_store::{
    Claim, ClaimPolicy, DiagnosticPoint, MetricPoint, NewRun, Owner, ParamValue, RunId, RunStatus, StaleRun, Store,
    StoreError,
};

use crate::plan::{Plan, Trial};
use crate::prune::Pruner;
use crate::train::{train, TrainError, TrainObserver};

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The results database.
    pub db: PathBuf,
    /// Trials trained at once (threads).
    pub jobs: usize,
    /// Where to write one safetensors checkpoint per finished trial, if anywhere.
    pub checkpoint_dir: Option<PathBuf>,
    /// Set (e.g. by a Ctrl-C handler) to stop: the running trials end as
    /// `Interrupted` after their current step, and no new trial starts.
    pub stop: Option<&'static AtomicBool>,
    /// Recorded with every run (see [`crate::provenance::collect`]).
    pub provenance: mtl_store::Provenance,
    /// GPUs for `[trainer]` programs (`--gpus`): job j's program sees `CUDA_VISIBLE_DEVICES`
    /// = `gpus[j % len]`; empty: the variable is left as it is.
    pub gpus: Vec<String>,
    /// A cluster worker's other trials, which `[prune]` compares against too.
    pub peers: Option<std::sync::Arc<crate::prune::Peers>>,
    /// Where the trials train (each opens it anew: on a GPU, a stream per trial).
    pub device: crate::device::DeviceSpec,
}

/// A `running` trial of another host is taken for dead after this long without a
/// heartbeat (one per epoch). On the same host the owner's pid decides at once.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// What happened to one trial.
#[derive(Clone, Debug)]
pub struct TrialOutcome {
    /// Index of the trial in the plan (the plan's length for a trial of its `[search]`).
    pub trial_idx: usize,
    /// Its run in the database.
    pub run: RunId,
    /// 1 for its first training, 2 for the second, …
    pub attempt: u32,
    /// Why the run was taken from a process that is gone when this one claimed it, if it was.
    pub recovered: Option<String>,
    /// `Done`, `Failed`, `Interrupted` or `Pruned`.
    pub status: RunStatus,
    /// Why it failed, was interrupted or was pruned.
    pub error: Option<String>,
    /// The epoch that stands for the run under its experiment's rule (its best on
    /// validation by default), and that epoch's metrics: what `mtl ls` shows for it.
    pub result_epoch: Option<u32>,
    /// The metrics of `result_epoch`.
    pub result_points: Vec<MetricPoint>,
}

/// Records how a trial's run ended and reads back its result ([`mtl_store::RunRecord::result_metrics`]).
fn finish_trial(
    store: &mut Store,
    (trial_idx, run, attempt): (usize, RunId, u32),
    status: RunStatus,
    error: Option<String>,
) -> Result<TrialOutcome, SweepError> {
    store.finish_run(run, status, error.as_deref())?;
    let record = store.run(run)?;
    let result_epoch = record.as_ref().and_then(|r| r.result_epoch());
    let result_points = record
        .iter()
        .flat_map(|r| r.result_metrics().iter().map(|(key, &value)| MetricPoint { key: key.clone(), value }))
        .collect();
    Ok(TrialOutcome { trial_idx, run, attempt, recovered: None, status, error, result_epoch, result_points })
}

/// The result of [`run_sweep`].
#[derive(Clone, Debug)]
pub struct SweepReport {
    /// Trials already done (or pruned) before this run started, skipped.
    pub skipped: Vec<usize>,
    /// Runs left `running` by a process that is gone, marked interrupted when the sweep started.
    pub recovered: Vec<StaleRun>,
    /// Trials trained now, in the order they finished.
    pub outcomes: Vec<TrialOutcome>,
    /// Trials left to other processes (running there, or done or ended there since this sweep began), with why.
    pub left_to_others: Vec<(usize, String)>,
}

/// Receives the progress of a sweep; called from the worker threads.
pub trait SweepEvents: Sync {
    /// Before training starts: the trials to train (indices into the plan), and the runs
    /// that a process that is gone left `running`, now marked interrupted.
    fn planned(&self, _plan: &Plan, _pending: &[usize], _recovered: &[StaleRun]) {}
    /// A trial is left to another process; `why` says what it found.
    fn left_to_other(&self, _job: usize, _trial: &Trial, _why: &str) {}
    /// A worker started a trial; its network has `n_parameters` parameters.
    fn trial_started(&self, _job: usize, _trial: &Trial, _n_parameters: usize) {}
    /// A trial finished an epoch; `points` are its metrics.
    fn epoch(&self, _job: usize, _trial: &Trial, _epoch: u32, _points: &[MetricPoint]) {}
    /// A worker finished an optimiser step.
    fn step(&self, _job: usize, _trial: &Trial, _epoch: u32, _step: usize, _steps_per_epoch: usize) {}
    /// A trial ended.
    fn trial_finished(&self, _job: usize, _trial: &Trial, _outcome: &TrialOutcome) {}
    /// The plan has a `[search]` with `trials` trials of its budget left to run.
    fn searching(&self, _trials: u64) {}
}

/// Errors that stop the whole sweep (a failing trial does not).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A point the `[search]` proposed is not a valid experiment, or its objective is not
    /// reported.
    #[error(transparent)]
    Search(crate::search::SearchError),
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
    store.set_result_epoch(experiment, plan.result_epoch)?;
    let host = options.provenance.host.as_deref().unwrap_or("localhost");
    let mut policy =
        ClaimPolicy { owner: Owner::this_process(host), stale_after: STALE_AFTER, retry_ended_before: String::new() };
    let recovered = store.interrupt_stale_runs(experiment, &policy)?;
    // Failed or interrupted trials are trained again, except those that another process
    // of this same wave of sweeps (several `mtl run` started together) has just tried.
    policy.retry_ended_before = mtl_store::now_timestamp();
    let mut pending = Vec::new();
    let mut skipped = Vec::new();
    for (i, trial) in plan.trials.iter().enumerate() {
        match store.run_status(experiment, &trial.key)? {
            Some((_, RunStatus::Done | RunStatus::Pruned)) => skipped.push(i),
            _ => pending.push(i),
        }
    }
    let selection = crate::prune::selection_of(plan, tasks);
    let searched = match &plan.search {
        Some(_) => store
            .runs(Some(&plan.experiment))?
            .iter()
            .filter(|r| r.params.contains_key(mtl_store::Proposal::PARAM))
            .count() as u64,
        None => 0,
    };
    drop(store);
    let pruner = match &options.peers {
        Some(peers) => Pruner::with_peers(peers, experiment),
        None => Pruner::of(plan, experiment),
    };
    if plan.prune.as_ref().is_some_and(|spec| spec.metric == crate::prune::PruneMetric::DeltaM) {
        // Δm% needs the single-task baselines: they train first.
        pending.sort_by_key(|&i| Pruner::judges(&plan.trials[i]));
    }
    events.planned(plan, &pending, &recovered);
    if let Some(spec) = &plan.search {
        events.searching(spec.budget.saturating_sub(searched));
    }

    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    let left_to_others = Mutex::new(Vec::new());
    let first_error: Mutex<Option<SweepError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for job in 0..options.jobs.clamp(1, pending.len().max(1)) {
            let (next, outcomes, first_error, pending) = (&next, &outcomes, &first_error, &pending);
            let (left_to_others, policy, pruner, selection) = (&left_to_others, &policy, &pruner, &selection);
            scope.spawn(move || {
                let work = || -> Result<(), SweepError> {
                    let mut store = Store::open(&options.db)?;
                    loop {
                        let stopped = options.stop.is_some_and(|s| s.load(Ordering::SeqCst));
                        if stopped || first_error.lock().expect("error lock").is_some() {
                            return Ok(());
                        }
                        let Some(&trial_idx) = pending.get(next.fetch_add(1, Ordering::SeqCst)) else {
                            break;
                        };
                        let trial = &plan.trials[trial_idx];
                        let params = trial.params();
                        let new_run = NewRun {
                            experiment,
                            trial_key: &trial.key,
                            settings_json: &trial.settings_json,
                            params: &params,
                            provenance: &options.provenance,
                        };
                        let why = match store.claim_run(&new_run, policy)? {
                            Claim::Claimed { run, attempt, recovered } => {
                                let context = Context { plan, tasks, events, options, pruner: pruner.as_ref() };
                                let mut outcome =
                                    run_trial(&mut store, &context, trial, trial_idx, job, (run, attempt))?;
                                outcome.recovered = recovered;
                                events.trial_finished(job, trial, &outcome);
                                outcomes.lock().expect("outcome lock").push(outcome);
                                mtl_store::test_pause("between-trials", &format!("after {}", trial.label()));
                                continue;
                            }
                            Claim::Done => "done by another process".to_string(),
                            Claim::Pruned => "pruned by another process".to_string(),
                            Claim::Stale | Claim::Spent => unreachable!("only a search's claims answer so"),
                            Claim::Running { owner } => format!("running in process {owner}"),
                            Claim::Tried { status } => {
                                format!("{} in another process since this sweep began", status.as_str())
                            }
                        };
                        events.left_to_other(job, trial, &why);
                        left_to_others.lock().expect("left lock").push((trial_idx, why));
                    }
                    let Some(spec) = &plan.search else { return Ok(()) };
                    let search = crate::search::SearchContext {
                        plan,
                        spec,
                        experiment,
                        selection,
                        tasks: crate::prune::task_names(plan),
                        policy,
                        provenance: &options.provenance,
                    };
                    let mut cache = std::collections::BTreeMap::new();
                    loop {
                        let stopped = options.stop.is_some_and(|s| s.load(Ordering::SeqCst));
                        if stopped || first_error.lock().expect("error lock").is_some() {
                            return Ok(());
                        }
                        let next = crate::search::next_trial(&mut store, &search, &mut cache).map_err(|e| match e {
                            crate::search::SearchError::Store(e) => SweepError::Store(e),
                            e => SweepError::Search(e),
                        })?;
                        let crate::search::Next::Train { trial, run, attempt, recovered } = next else {
                            return Ok(());
                        };
                        let context = Context { plan, tasks, events, options, pruner: pruner.as_ref() };
                        let trial_idx = plan.trials.len();
                        let mut outcome = run_trial(&mut store, &context, &trial, trial_idx, job, (run, attempt))?;
                        outcome.recovered = recovered;
                        events.trial_finished(job, &trial, &outcome);
                        outcomes.lock().expect("outcome lock").push(outcome);
                        mtl_store::test_pause("between-trials", &format!("after {}", trial.label()));
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
    Ok(SweepReport {
        skipped,
        recovered,
        outcomes: outcomes.into_inner().expect("outcome lock"),
        left_to_others: left_to_others.into_inner().expect("left lock"),
    })
}

struct StoreObserver<'a> {
    store: &'a mut Store,
    run: RunId,
    trial: &'a Trial,
    job: usize,
    events: &'a dyn SweepEvents,
    store_error: Option<StoreError>,
    stop: Option<&'static AtomicBool>,
    /// The sweep's pruning rule, with the trial's selection (what its score reads).
    pruner: Option<(&'a Pruner<'a>, mtl_store::Selection)>,
    /// Why the rule stopped the trial, once it has.
    pruned: Option<String>,
}

impl<'a> StoreObserver<'a> {
    fn new(
        store: &'a mut Store,
        run: RunId,
        trial: &'a Trial,
        job: usize,
        events: &'a dyn SweepEvents,
        stop: Option<&'static AtomicBool>,
        pruner: Option<(&'a Pruner<'a>, mtl_store::Selection)>,
    ) -> StoreObserver<'a> {
        StoreObserver { store, run, trial, job, events, store_error: None, stop, pruner, pruned: None }
    }

    /// The store back, with why the trial was pruned; the first store error, if one happened.
    fn finish(self) -> Result<(&'a mut Store, Option<String>), SweepError> {
        match self.store_error {
            Some(e) => Err(e.into()),
            None => Ok((self.store, self.pruned)),
        }
    }

    /// Asks the pruning rule after `epoch` was recorded; remembers a reason to stop.
    fn judge(&mut self, epoch: u32) -> Option<String> {
        let (pruner, selection) = self.pruner.as_ref()?;
        match pruner.check(self.store, self.trial, selection, epoch) {
            Ok(reason) => self.pruned = reason,
            Err(e) => {
                self.store_error.get_or_insert(e);
            }
        }
        self.pruned.clone()
    }
}

/// Records the run's best-epoch rule, where some task selects by another metric than accuracy.
fn record_selection(store: &mut Store, run: RunId, selection: &mtl_store::Selection) -> Result<(), StoreError> {
    if !selection.is_default() {
        store.set_param(run, mtl_store::Selection::PARAM, &ParamValue::Text(selection.to_param()))?;
    }
    Ok(())
}

impl TrainObserver for StoreObserver<'_> {
    fn started(&mut self, n_parameters: usize) {
        self.events.trial_started(self.job, self.trial, n_parameters);
        if let Err(e) = self.store.set_param(self.run, "n_parameters", &ParamValue::Num(n_parameters as f64)) {
            self.store_error.get_or_insert(e);
        }
    }

    fn step(&mut self, epoch: u32, step: usize, steps_per_epoch: usize) {
        self.events.step(self.job, self.trial, epoch, step, steps_per_epoch);
    }

    fn should_stop(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn pruned(&mut self, epoch: u32) -> Option<String> {
        self.judge(epoch)
    }

    fn epoch(&mut self, epoch: u32, points: &[MetricPoint]) -> Result<(), String> {
        match self.store.log_epoch(self.run, epoch, points) {
            Ok(()) => {
                self.events.epoch(self.job, self.trial, epoch, points);
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                self.store_error = Some(e);
                Err(message)
            }
        }
    }

    fn timing(&mut self, steps: u64, seconds: f64) {
        for (key, value) in [("steps", steps as f64), ("train_seconds", seconds)] {
            if let Err(e) = self.store.set_param(self.run, key, &ParamValue::Num(value)) {
                self.store_error.get_or_insert(e);
            }
        }
    }

    fn diagnostics(&mut self, epoch: u32, step: u64, points: &[DiagnosticPoint]) -> Result<(), String> {
        self.store.log_diagnostics(self.run, epoch, step, points).map_err(|e| {
            let message = e.to_string();
            self.store_error = Some(e);
            message
        })
    }
}

impl crate::command::CommandObserver for StoreObserver<'_> {
    /// Epochs a pruned program reports before its stop reaches it are not stored.
    fn epoch(&mut self, epoch: u32, points: &[MetricPoint]) -> Result<(), String> {
        if self.pruned.is_none() {
            TrainObserver::epoch(self, epoch, points)?;
            self.judge(epoch);
        }
        Ok(())
    }

    /// Also once the rule has pruned the trial: its program is stopped as at Ctrl-C.
    fn should_stop(&self) -> bool {
        TrainObserver::should_stop(self) || self.pruned.is_some()
    }
}

/// `DB.runs/<experiment>/<trial key>`: the working folder of a trial that runs a program of
/// the user's own (cleared at each attempt).
pub fn command_folder(db: &Path, experiment: &str, trial_key: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".runs");
    checkpoint_folder(&PathBuf::from(name), experiment).join(trial_key)
}

/// Runs a claimed trial's program ([`crate::command`]) and records how it ended.
fn run_command_trial(
    store: &mut Store,
    context: &Context,
    (trial, trial_idx): (&Trial, usize),
    job: usize,
    (run, attempt): (RunId, u32),
    trainer: &crate::command::CommandTrainer,
) -> Result<TrialOutcome, SweepError> {
    let Context { plan, events, options, pruner, .. } = *context;
    let selection = mtl_store::Selection::new(trainer.select.clone().into_iter().collect());
    record_selection(store, run, &selection)?;
    let workdir = command_folder(&options.db, &plan.experiment, &trial.key);
    events.trial_started(job, trial, 0);
    let mut observer = StoreObserver::new(store, run, trial, job, events, options.stop, pruner.map(|p| (p, selection)));
    let gpu = (!options.gpus.is_empty()).then(|| options.gpus[job % options.gpus.len()].as_str());
    let result = crate::command::run(trainer, trial, &plan.experiment, &workdir, gpu, &mut observer);
    let (store, pruned) = observer.finish()?;
    // A pruned program is stopped, or may have ended on its own before the stop reached it.
    let (status, error) = match result {
        _ if pruned.is_some() => (RunStatus::Pruned, pruned),
        Ok(artifacts) => {
            let mut error = None;
            for (name, path) in artifacts {
                match std::fs::read(&path) {
                    Ok(bytes) => store.attach_file(run, &name, &path, &mtl_store::sha256_hex(&bytes))?,
                    Err(e) => error = Some(format!("artifact {}: {e}", path.display())),
                }
            }
            (if error.is_none() { RunStatus::Done } else { RunStatus::Failed }, error)
        }
        Err(e @ crate::command::CommandError::Interrupted) => (RunStatus::Interrupted, Some(e.to_string())),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    finish_trial(store, (trial_idx, run, attempt), status, error)
}

/// `DIR/<experiment>`, where `--save-checkpoints` writes an experiment's trials (the
/// name with every character but letters, digits, `-` and `_` as `_`).
pub fn checkpoint_folder(dir: &Path, experiment: &str) -> PathBuf {
    let folder: String =
        experiment.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    dir.join(folder)
}

/// Writes `DIR/<experiment>/<trial key>.safetensors`; returns its path and sha256.
fn save_checkpoint(dir: &Path, plan: &Plan, trial: &Trial, params: &Parameters) -> Result<(PathBuf, String), String> {
    let folder = checkpoint_folder(dir, &plan.experiment);
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let path = folder.join(format!("{}.safetensors", trial.key));
    candle_core::safetensors::save(&params.tensors(), &path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sha256 = mtl_store::sha256_hex(&bytes);
    Ok((path, sha256))
}

/// What every trial of a sweep shares.
struct Context<'a> {
    plan: &'a Plan,
    tasks: &'a TaskSet,
    events: &'a dyn SweepEvents,
    options: &'a SweepOptions,
    pruner: Option<&'a Pruner<'a>>,
}

/// Trains a claimed trial (its run and attempt) and records how it ended.
fn run_trial(
    store: &mut Store,
    context: &Context,
    trial: &Trial,
    trial_idx: usize,
    job: usize,
    (run, attempt): (RunId, u32),
) -> Result<TrialOutcome, SweepError> {
    let Context { plan, tasks, events, options, pruner } = *context;
    if let Some(trainer) = &trial.settings.trainer {
        return run_command_trial(store, context, (trial, trial_idx), job, (run, attempt), trainer);
    }
    // The vocabulary token ids refer to, so that evaluation and checkpoints can use the same
    // one: once per run, as every text task shares it.
    if let Some(vocabulary) = tasks.tasks.iter().find_map(|task| task.vocabulary.as_ref()) {
        store.attach_blob(run, crate::data::VOCABULARY_ARTIFACT, vocabulary.to_text().as_bytes())?;
    }
    let sizes = ParamValue::Text(crate::data::split_sizes(&tasks.tasks));
    store.set_param(run, crate::data::SPLIT_SIZES_PARAM, &sizes)?;
    let selection = crate::train::task_set_selection(tasks);
    record_selection(store, run, &selection)?;
    let mut observer = StoreObserver::new(store, run, trial, job, events, options.stop, pruner.map(|p| (p, selection)));
    let result = match options.device.open() {
        Ok(device) => train(trial, tasks, &device, &mut observer),
        Err(e) => Err(TrainError::Model(candle_core::Error::Msg(e.to_string()))),
    };
    let (store, _) = observer.finish()?;
    let (status, error) = match result {
        Ok(params) => match &options.checkpoint_dir {
            None => (RunStatus::Done, None),
            Some(dir) => match save_checkpoint(dir, plan, trial, &params) {
                Ok((path, sha256)) => {
                    store.attach_file(run, "checkpoint", &path, &sha256)?;
                    (RunStatus::Done, None)
                }
                Err(e) => (RunStatus::Failed, Some(format!("writing the checkpoint: {e}"))),
            },
        },
        Err(e @ TrainError::Interrupted { .. }) => (RunStatus::Interrupted, Some(e.to_string())),
        Err(TrainError::Pruned { reason, .. }) => (RunStatus::Pruned, Some(reason)),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    finish_trial(store, (trial_idx, run, attempt), status, error)
}
