//! The search's ask/tell through the store: the state read back from the runs, and the
//! next trial a sweep worker claims (an earlier proposal's seed left to train, or a new
//! proposal) under the store's numbering and budget ([`Store::claim_proposed_run`]).

use std::collections::BTreeMap;

use mtl_store::{
    Claim, ClaimPolicy, ExperimentId, MetricKey, NewRun, ParamValue, Proposal, RunId, RunRecord, RunStatus, Selection,
    Store,
};

use super::{point_from_json, point_json, propose, Observation, Point, SearchSpec};
use crate::plan::{Plan, Trial};
use crate::prune::{baseline_means, objective, PruneMetric};

/// The run param that holds a search trial's point ([`point_json`]).
pub const POINT_PARAM: &str = Proposal::POINT_PARAM;

/// What the search's trials share.
pub struct SearchContext<'a> {
    /// The plan (its trials are the baselines; `plan.search` is the search).
    pub plan: &'a Plan,
    /// The search.
    pub spec: &'a SearchSpec,
    /// The plan's experiment in the store.
    pub experiment: ExperimentId,
    /// The tasks' selecting metrics.
    pub selection: &'a Selection,
    /// The task names.
    pub tasks: Vec<String>,
    /// How this process claims.
    pub policy: &'a ClaimPolicy,
    /// Recorded with every run.
    pub provenance: &'a mtl_store::Provenance,
}

/// What [`next_trial`] found.
pub enum Next {
    /// A trial claimed for this process: train it.
    Train {
        /// The trial.
        trial: Box<Trial>,
        /// Its run.
        run: RunId,
        /// Its attempt.
        attempt: u32,
        /// Why an earlier attempt was taken for dead, if one was.
        recovered: Option<String>,
    },
    /// The budget is spent and no proposal has a trial left to train here.
    Finished,
}

/// Errors of the search: the store, or a proposal that is not a valid experiment.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The database.
    #[error(transparent)]
    Store(#[from] mtl_store::StoreError),
    /// A proposed point made a file that does not validate.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An objective names a metric the finished trials do not report.
    #[error("search.objective: {0}")]
    UnknownMetric(String),
}

/// Refuses an objective that a finished trial does not report (a misspelt metric would
/// leave every point unobserved).
fn check_reported(spec: &SearchSpec, run: &RunRecord) -> Result<(), SearchError> {
    for o in &spec.objectives {
        let PruneMetric::Task { task, metric } = o else { continue };
        let val = |k: &&MetricKey| k.task == *task && k.split == "val";
        // The values the objective reads: the run's result epoch's.
        let result = run.result_metrics();
        if !result.keys().filter(val).any(|k| k.metric == *metric) {
            let names: Vec<&str> = result.keys().filter(val).map(|k| k.metric.as_str()).collect();
            return Err(SearchError::UnknownMetric(format!(
                "the finished trial {} reports no validation metric \"{metric}\" for task {task} at its result epoch; \
                 it reports: {}",
                run.trial_key,
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// Each proposal's point and the runs of its trials.
struct State {
    proposals: BTreeMap<u64, (Point, Vec<RunRecord>)>,
    /// The next free index: one past the highest stored (archived runs and points that no
    /// longer fit the dimensions included, as the claim counts them).
    next: u64,
    trials: u64,
    observed: Vec<Observation>,
    /// Every trial key of the experiment.
    keys: std::collections::BTreeSet<String>,
}

/// The points observed so far in the search of `plan`, from the runs in `store`: what
/// the next proposal is made from (`tasks` and `selection` as in [`SearchContext`]).
pub fn observed(
    store: &Store,
    plan: &Plan,
    tasks: &[String],
    selection: &Selection,
) -> Result<Vec<Observation>, SearchError> {
    let spec = plan.search.as_ref().expect("a plan with [search]");
    Ok(read_state(store, plan, spec, tasks, selection)?.observed)
}

fn read_state(
    store: &Store,
    plan: &Plan,
    spec: &SearchSpec,
    tasks: &[String],
    selection: &Selection,
) -> Result<State, SearchError> {
    // Archived runs keep their index and their trial key (their trials count as done).
    let runs = store.runs_including_archived(Some(&plan.experiment))?;
    let baselines = match spec.objectives.contains(&PruneMetric::DeltaM) {
        true => baseline_means(plan, &runs, tasks, selection),
        false => Some(BTreeMap::new()),
    };
    let mut proposals: BTreeMap<u64, (Point, Vec<RunRecord>)> = BTreeMap::new();
    let (mut trials, mut next) = (0, 0);
    let keys = runs.iter().map(|r| r.trial_key.clone()).collect();
    for run in runs {
        let Some(ParamValue::Num(index)) = run.params.get(Proposal::PARAM) else { continue };
        trials += 1;
        next = next.max(*index as u64 + 1);
        let Some(ParamValue::Text(text)) = run.params.get(POINT_PARAM) else { continue };
        let Some(point) = point_from_json(spec, text) else { continue };
        proposals.entry(*index as u64).or_insert_with(|| (point, Vec::new())).1.push(run);
    }
    // Each objective of a run, on validation at its result epoch, higher is better.
    let values = |run: &RunRecord| -> Option<Vec<f64>> {
        let keys: Vec<MetricKey> = tasks
            .iter()
            .map(|t| MetricKey { task: t.clone(), split: "val".into(), metric: selection.metric_for(t).into() })
            .chain(spec.objectives.iter().filter_map(|o| match o {
                PruneMetric::Task { task, metric } => {
                    Some(MetricKey { task: task.clone(), split: "val".into(), metric: metric.clone() })
                }
                _ => None,
            }))
            .collect();
        let points: Vec<(MetricKey, f64)> =
            keys.into_iter().filter_map(|key| run.result(&key).map(|v| (key, v))).collect();
        spec.objectives
            .iter()
            .map(|o| {
                let value = objective(o, selection, tasks, baselines.as_ref()?, &points)?;
                Some(if o.higher_is_better() { value } else { -value })
            })
            .collect()
    };
    // A point is observed once none of its trials runs: the mean of its done trials, or the
    // worst value when all of them were pruned or failed.
    let mut observed = Vec::new();
    for (&index, (point, runs)) in &proposals {
        if runs.iter().any(|r| matches!(r.status, RunStatus::Running | RunStatus::Interrupted)) {
            continue;
        }
        let done: Vec<&RunRecord> = runs.iter().filter(|r| r.status == RunStatus::Done).collect();
        done.iter().try_for_each(|run| check_reported(spec, run))?;
        let done: Vec<Vec<f64>> = done.into_iter().filter_map(values).collect();
        let values = match done.is_empty() {
            true if runs.iter().all(|r| r.status != RunStatus::Done) => vec![f64::MIN; spec.objectives.len()],
            true => continue,
            false => {
                (0..spec.objectives.len()).map(|m| done.iter().map(|v| v[m]).sum::<f64>() / done.len() as f64).collect()
            }
        };
        observed.push(Observation { index, point: point.clone(), values });
    }
    Ok(State { proposals, next, trials, observed, keys })
}

/// The next search trial for this process to train, claimed: a seed of an earlier proposal
/// that no process has (yet, or any more: interrupted, failed before this wave), else a new
/// proposal's. `cache` keeps each point's trials (by its stored text).
pub fn next_trial(
    store: &mut Store,
    context: &SearchContext,
    cache: &mut BTreeMap<String, Vec<Trial>>,
) -> Result<Next, SearchError> {
    let spec = context.spec;
    // Each Stale answer means another process took an index: bounded by the budget.
    for _ in 0..=spec.budget.saturating_mul(2) + 8 {
        let state = read_state(store, context.plan, spec, &context.tasks, context.selection)?;
        let mut indices: Vec<(u64, Point)> = state.proposals.iter().map(|(i, (p, _))| (*i, p.clone())).collect();
        let fresh = state.next;
        if state.trials < spec.budget {
            // A point whose trials exist already (one proposed before, or one that differs
            // only where it changes nothing, as λ for a method that sets its own weights) is
            // drawn again from the next stream; a space of choices can run out.
            // A combination of values that does not validate is drawn again too.
            for attempt in 0..super::MODEL_ATTEMPTS + 1000 {
                let point = propose(spec, fresh, attempt, &state.observed);
                let Ok(trials) = trials_of(spec, &point, cache) else { continue };
                if trials.iter().all(|t| !state.keys.contains(&t.key)) {
                    indices.push((fresh, point));
                    break;
                }
            }
        }
        let mut stale = false;
        'proposals: for (index, point) in indices {
            let settled = |trial: &Trial| {
                state.proposals.get(&index).is_some_and(|(_, runs)| {
                    runs.iter()
                        .any(|r| r.trial_key == trial.key && matches!(r.status, RunStatus::Done | RunStatus::Pruned))
                })
            };
            let Ok(trials) = trials_of(spec, &point, cache) else { continue };
            for trial in trials.clone() {
                let trial = &trial;
                if settled(trial) {
                    continue;
                }
                let trial = &proposed(trial, index, &point_json(spec, &point));
                let params = trial.params();
                let new_run = NewRun {
                    experiment: context.experiment,
                    trial_key: &trial.key,
                    settings_json: &trial.settings_json,
                    params: &params,
                    provenance: context.provenance,
                };
                let text = point_json(spec, &point);
                let proposal = Proposal { index, point: &text, budget: spec.budget };
                match store.claim_proposed_run(&new_run, context.policy, proposal)? {
                    Claim::Claimed { run, attempt, recovered } => {
                        return Ok(Next::Train { trial: Box::new(trial.clone()), run, attempt, recovered })
                    }
                    Claim::Stale => {
                        stale = true;
                        break 'proposals;
                    }
                    Claim::Spent if index == fresh => break 'proposals,
                    // Another process claimed the same new point first: read its state again.
                    Claim::Done | Claim::Pruned | Claim::Running { .. } | Claim::Tried { .. } if index == fresh => {
                        stale = true;
                        break 'proposals;
                    }
                    _ => {}
                }
            }
        }
        if !stale {
            return Ok(Next::Finished);
        }
    }
    Ok(Next::Finished)
}

/// `trial` of proposal `index` (its point stored as `text`), recording both.
pub fn proposed(trial: &Trial, index: u64, text: &str) -> Trial {
    let mut trial = trial.clone();
    trial.extra_params = vec![
        (Proposal::PARAM.into(), ParamValue::Num(index as f64)),
        (POINT_PARAM.into(), ParamValue::Text(text.to_owned())),
    ];
    trial
}

/// The trials of `point`, made once per point.
fn trials_of<'c>(
    spec: &SearchSpec,
    point: &Point,
    cache: &'c mut BTreeMap<String, Vec<Trial>>,
) -> Result<&'c Vec<Trial>, SearchError> {
    let text = point_json(spec, point);
    if !cache.contains_key(&text) {
        let trials = crate::config::search_trials(spec, point)?;
        cache.insert(text.clone(), trials);
    }
    Ok(&cache[&text])
}
