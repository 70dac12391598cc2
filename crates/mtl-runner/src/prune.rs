//! Pruning: a sweep's `[prune]` rule stops a multi-task trial early when its validation
//! objective at an epoch is poor against the other trials' at that epoch.
//!
//! - **median** (as Optuna's `MedianPruner`): from epoch `grace` on, a trial whose value
//!   is worse than the median of the other trials' values at the same epoch is pruned.
//! - **asha** (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning",
//!   the stopping variant): rungs at epochs `grace·η^k`; a trial reaching a rung goes on
//!   only if it is among the top `max(1, ⌊n/η⌋)` of the `n` trials (itself included) that
//!   have a value at that epoch.
//! - **hyperband** (Li et al. 2018, asynchronously as ASHA's brackets): each trial is
//!   assigned one of `s_max + 1` brackets by its key (`s_max = ⌊log_η(epochs/grace)⌋`);
//!   bracket `s` is ASHA with rungs from `grace·η^s`, and trials compete only within
//!   their bracket.
//!
//! The values compared are those of every run of the plan at that epoch (pruned runs'
//! included: they are observations). No rule decides until `min_trials` other trials have
//! a value at that epoch, and no trial is pruned at its last epoch. Single-task baselines are never
//! pruned nor compared against; Δm% decisions wait until every single-task trial has
//! ended (their mean result is the one baseline every decision reads).
//!
//! Every decision is read from the database ([`Store::val_points_at`]): it is a pure
//! function ([`decide`]) of the trial's value and the set of values committed at that
//! epoch when it asks, so several `mtl run` processes sharing a database apply one rule.
//! What can differ between runs of a sweep is only which trials had reached that epoch
//! when a trial asked, which the rules imply (they are asynchronous). A trial trained by
//! `mtl worker` writes a shard of its own and sees no other trial: it is never pruned.

use std::collections::BTreeMap;

use mtl_model::Strategy;
use mtl_store::{lower_is_better, ExperimentId, MetricKey, RunRecord, RunStatus, Selection, Store, StoreError};

use crate::plan::{Plan, Trial};

/// A `[prune]` section, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneSpec {
    /// Which rule.
    pub rule: PruneRule,
    /// What is compared.
    pub metric: PruneMetric,
    /// Epochs every trial trains before it can be pruned (≥ 1).
    pub grace: u32,
    /// η: asha and hyperband keep the top 1/η at each rung (≥ 2).
    pub reduction: u32,
    /// Other trials needed at an epoch before a decision there.
    pub min_trials: usize,
}

/// The rule of [`PruneSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PruneRule {
    /// Worse than the other trials' median at the same epoch.
    Median,
    /// Asynchronous successive halving.
    Asha,
    /// ASHA in brackets of different first rungs.
    Hyperband,
}

impl PruneRule {
    /// Every rule, as the experiment file names them.
    pub const NAMES: [&'static str; 3] = ["median", "asha", "hyperband"];

    /// The rule named `name`.
    pub fn parse(name: &str) -> Option<PruneRule> {
        match name {
            "median" => Some(PruneRule::Median),
            "asha" => Some(PruneRule::Asha),
            "hyperband" => Some(PruneRule::Hyperband),
            _ => None,
        }
    }

    /// `min_trials` when the file leaves it out.
    pub fn default_min_trials(self, reduction: u32) -> usize {
        match self {
            PruneRule::Median => 4,
            PruneRule::Asha | PruneRule::Hyperband => reduction as usize - 1,
        }
    }
}

/// What [`PruneSpec`] compares, on the validation split.
#[derive(Clone, Debug, PartialEq)]
pub enum PruneMetric {
    /// The epoch's selection score (what early stopping reads; higher is better).
    Score,
    /// Δm% against the mean results of the experiment's finished single-task runs, over
    /// each task's selecting metric (higher is better).
    DeltaM,
    /// One task's metric.
    Task {
        /// Task name.
        task: String,
        /// Metric name (its direction from [`lower_is_better`]).
        metric: String,
    },
}

impl PruneMetric {
    /// How a value is named in a reason.
    fn label(&self) -> String {
        match self {
            PruneMetric::Score => "score".into(),
            PruneMetric::DeltaM => "Δm%".into(),
            PruneMetric::Task { task, metric } => format!("{task} {metric}"),
        }
    }

    /// Whether a higher value is better.
    pub fn higher_is_better(&self) -> bool {
        match self {
            PruneMetric::Task { metric, .. } => !lower_is_better(metric),
            PruneMetric::Score | PruneMetric::DeltaM => true,
        }
    }
}

/// The bracket (hyperband) of the trial with `key`: from the key's first 8 hex digits.
pub fn bracket(spec: &PruneSpec, key: &str, epochs: u32) -> u32 {
    let brackets = max_bracket(spec, epochs) + 1;
    let digits = key.get(..8).and_then(|d| u32::from_str_radix(d, 16).ok()).unwrap_or(0);
    digits % brackets
}

/// `s_max = ⌊log_η(epochs/grace)⌋`.
fn max_bracket(spec: &PruneSpec, epochs: u32) -> u32 {
    let (mut s, mut resource) = (0, spec.grace as u64 * spec.reduction as u64);
    while resource <= epochs as u64 {
        s += 1;
        resource *= spec.reduction as u64;
    }
    s
}

/// Whether a trial of `epochs` epochs (with `key`) is judged at `epoch`.
pub fn decides_at(spec: &PruneSpec, key: &str, epochs: u32, epoch: u32) -> bool {
    if epoch < spec.grace || epoch >= epochs {
        return false;
    }
    let first_rung = match spec.rule {
        PruneRule::Median => return true,
        PruneRule::Asha => spec.grace as u64,
        PruneRule::Hyperband => spec.grace as u64 * (spec.reduction as u64).pow(bracket(spec, key, epochs)),
    };
    let mut rung = first_rung;
    while rung < epoch as u64 {
        rung *= spec.reduction as u64;
    }
    rung == epoch as u64
}

/// The rule applied at `epoch` to the trial's `own` value and the other trials' `others`
/// (each a value of `spec.metric` in its own units): the reason to prune, or `None`.
/// The order of `others` does not matter.
pub fn decide(spec: &PruneSpec, epoch: u32, own: f64, others: &[f64]) -> Option<String> {
    let others: Vec<f64> = others.iter().copied().filter(|v| v.is_finite()).collect();
    if others.len() < spec.min_trials.max(1) || !own.is_finite() {
        return None;
    }
    let higher = spec.metric.higher_is_better();
    let better = |a: f64, b: f64| if higher { a > b } else { a < b };
    let label = spec.metric.label();
    let shown = |v: f64| show(&spec.metric, v);
    match spec.rule {
        PruneRule::Median => {
            let median = median(&others);
            better(median, own).then(|| {
                let side = if higher { "below" } else { "above" };
                format!(
                    "val {label} {} {side} the median {} of {} trials at epoch {epoch}",
                    shown(own),
                    shown(median),
                    others.len()
                )
            })
        }
        PruneRule::Asha | PruneRule::Hyperband => {
            let n = others.len() + 1;
            let keep = (n / spec.reduction as usize).max(1);
            let ahead = others.iter().filter(|&&v| better(v, own)).count();
            (ahead >= keep).then(|| {
                format!(
                    "val {label} {} not in the top {keep} of {n} trials at epoch {epoch} (reduction {})",
                    shown(own),
                    spec.reduction
                )
            })
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

fn show(metric: &PruneMetric, value: f64) -> String {
    match metric {
        PruneMetric::DeltaM => format!("{value:+.2}").replace('-', "−"),
        _ => format!("{value:.4}"),
    }
}

/// A sweep's pruning rule over its database.
pub struct Pruner<'a> {
    spec: &'a PruneSpec,
    plan: &'a Plan,
    experiment: ExperimentId,
    /// The tasks (of a `[trainer]`: the keys of its metrics).
    tasks: Vec<String>,
    /// A cluster worker's other trials, outside its own database.
    peers: Option<&'a Peers>,
}

impl<'a> Pruner<'a> {
    /// The rule of `plan` (if it has one), for its runs in `experiment`.
    pub fn of(plan: &'a Plan, experiment: ExperimentId) -> Option<Pruner<'a>> {
        plan.prune.as_ref().map(|spec| Pruner { spec, plan, experiment, tasks: task_names(plan), peers: None })
    }

    /// The rule of a cluster worker's whole plan, comparing its trial (in `experiment` of
    /// its own database) with `peers` too.
    pub fn with_peers(peers: &'a Peers, experiment: ExperimentId) -> Option<Pruner<'a>> {
        Pruner::of(&peers.plan, experiment).map(|pruner| Pruner { peers: Some(peers), ..pruner })
    }

    /// Whether `trial` may be pruned and is compared against (not a single-task baseline).
    pub fn judges(trial: &Trial) -> bool {
        trial.sharing.strategy() != Strategy::SingleTask
    }

    /// After `trial` logged `epoch`: the reason to prune it, or `None`. `selection` is its
    /// tasks' selecting metrics (the score, and Δm%'s terms).
    pub fn check(
        &self,
        store: &Store,
        trial: &Trial,
        selection: &Selection,
        epoch: u32,
    ) -> Result<Option<String>, StoreError> {
        let epochs = trial.settings.epochs;
        if !Pruner::judges(trial) || !decides_at(self.spec, &trial.key, epochs, epoch) {
            return Ok(None);
        }
        let mut rows = store.val_points_at(self.experiment, epoch)?;
        if let Some(peers) = self.peers {
            let own: Vec<String> = rows.iter().map(|(key, _)| key.clone()).collect();
            rows.extend(peers.points_at(epoch).into_iter().filter(|(key, _)| !own.contains(key)));
        }
        let baselines = match self.spec.metric {
            PruneMetric::DeltaM => match self.baselines(store, selection)? {
                Some(baselines) => baselines,
                None => return Ok(None),
            },
            _ => BTreeMap::new(),
        };
        let value =
            |points: &[(MetricKey, f64)]| objective(&self.spec.metric, selection, &self.tasks, &baselines, points);
        let Some(own) = rows.iter().find(|(key, _)| *key == trial.key).and_then(|(_, points)| value(points)) else {
            return Ok(None);
        };
        let same_bracket = |key: &str| {
            self.spec.rule != PruneRule::Hyperband
                || bracket(self.spec, key, epochs) == bracket(self.spec, &trial.key, epochs)
        };
        // The plan's multi-task trials; with a [search], every run but the baselines.
        let competes = |key: &str| match self.plan.trials.iter().find(|t| t.key == key) {
            Some(t) => Pruner::judges(t),
            None => self.plan.search.is_some(),
        };
        let others: Vec<f64> = rows
            .iter()
            .filter(|(key, _)| *key != trial.key && competes(key) && same_bracket(key))
            .filter_map(|(_, points)| value(points))
            .collect();
        Ok(decide(self.spec, epoch, own, &others).map(|reason| format!("pruned at epoch {epoch}: {reason}")))
    }

    /// Mean result of each selecting validation metric over the plan's done single-task
    /// runs; `None` until every single-task trial has ended ([`baseline_means`]).
    fn baselines(&self, store: &Store, selection: &Selection) -> Result<Option<BTreeMap<MetricKey, f64>>, StoreError> {
        let mut runs = store.runs(Some(&self.plan.experiment))?;
        if let Some(peers) = self.peers {
            let own: Vec<String> = runs.iter().map(|r| r.trial_key.clone()).collect();
            runs.extend(peers.runs().into_iter().filter(|r| !own.contains(&r.trial_key)));
        }
        Ok(baseline_means(self.plan, &runs, &self.tasks, selection))
    }
}

/// The plan's task names (of a `[trainer]`: the keys of its metrics).
pub fn task_names(plan: &Plan) -> Vec<String> {
    match trainer_of(plan) {
        Some(trainer) => trainer.metrics.keys().cloned().collect(),
        None => plan.tasks.iter().map(|t| t.name.clone()).collect(),
    }
}

/// The plan's `[trainer]`: of its first trial, or of its search's.
fn trainer_of(plan: &Plan) -> Option<&crate::command::CommandTrainer> {
    let example = plan.search.as_ref().and_then(|s| s.example.as_deref());
    plan.trials.first().or(example).and_then(|t| t.settings.trainer.as_ref())
}

/// The selecting metrics of the plan's tasks: a `[trainer]`'s `select`, else each task's kind's.
pub fn selection_of(plan: &Plan, tasks: &crate::data::TaskSet) -> Selection {
    match trainer_of(plan) {
        Some(trainer) => Selection::new(trainer.select.clone().into_iter().collect()),
        None => crate::train::task_set_selection(tasks),
    }
}

/// The mean result of each task's selecting validation metric over the plan's done
/// single-task runs among `runs`; `None` until every single-task trial of the plan has
/// ended (done or failed), so that every decision of a sweep reads the same baselines.
pub fn baseline_means(
    plan: &Plan,
    runs: &[RunRecord],
    tasks: &[String],
    selection: &Selection,
) -> Option<BTreeMap<MetricKey, f64>> {
    let single_task: Vec<&str> = plan.trials.iter().filter(|t| !Pruner::judges(t)).map(|t| t.key.as_str()).collect();
    let ended =
        |key: &str| runs.iter().any(|r| r.trial_key == key && matches!(r.status, RunStatus::Done | RunStatus::Failed));
    if !single_task.iter().all(|key| ended(key)) {
        return None;
    }
    let mut sums: BTreeMap<MetricKey, (f64, usize)> = BTreeMap::new();
    for run in runs {
        if run.status != RunStatus::Done || !single_task.contains(&run.trial_key.as_str()) {
            continue;
        }
        for task in tasks {
            let key = MetricKey { task: task.clone(), split: "val".into(), metric: selection.metric_for(task).into() };
            if let Some(value) = run.result(&key).filter(|v| v.is_finite()) {
                let sum = sums.entry(key).or_insert((0.0, 0));
                *sum = (sum.0 + value, sum.1 + 1);
            }
        }
    }
    Some(sums.into_iter().map(|(key, (sum, n))| (key, sum / n as f64)).collect())
}

/// One run's value of `metric` from its validation points at an epoch; `None` when a
/// point (or, for Δm%, a baseline of one of `tasks`) is missing.
pub fn objective(
    metric: &PruneMetric,
    selection: &Selection,
    tasks: &[String],
    baselines: &BTreeMap<MetricKey, f64>,
    points: &[(MetricKey, f64)],
) -> Option<f64> {
    match metric {
        PruneMetric::Score => selection.score(points.iter().map(|(k, v)| (k, *v))),
        PruneMetric::Task { task, metric } => {
            points.iter().find(|(k, _)| k.task == *task && k.metric == *metric).map(|(_, v)| *v)
        }
        PruneMetric::DeltaM => {
            let mut terms = Vec::new();
            for task in tasks {
                let metric = selection.metric_for(task);
                let key = MetricKey { task: task.into(), split: "val".into(), metric: metric.into() };
                let value = points.iter().find(|(k, _)| *k == key)?.1;
                terms.push((task.as_str(), metric, value, *baselines.get(&key)?));
            }
            mtl_store::delta_m(&terms)
        }
    }
}

mod peers;
pub use peers::Peers;

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
