//! `mtl run --executor slurm` of a file with `[search]`: this process coordinates the
//! search while Slurm trains its trials. In a loop it merges the finished shards into the
//! database, asks the sampler for a point from the results merged so far, appends the
//! point's trials to the plan (`plan.json`: earlier indices keep their meaning, so queued
//! tasks are unaffected) and submits them as array tasks, keeping at most `--max-parallel`
//! points (default 4) in flight, until the budget is spent and every trial has ended.
//! Only this process writes the database (one coordinator per experiment: a lock file in
//! the plan folder); workers write their shards, as for any sweep. Run it again to resume:
//! the plan keeps the points proposed so far, their indices and their trials.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mtl_runner::data::TaskSet;
use mtl_runner::plan::Plan;
use mtl_runner::search::{observed, point_json, propose, MODEL_ATTEMPTS};
use mtl_runner::shard::{SearchSlot, ShardPlan};
use mtl_store::Store;

use crate::cluster::{merge_dir, sbatch_array, states_with_queue, SlurmArgs};
use crate::BadInput;

/// Points trained at once when `--max-parallel` is not given.
const DEFAULT_POINTS_IN_FLIGHT: usize = 4;

/// How often the coordinator looks at the shards and the queue.
const POLL: Duration = Duration::from_secs(2);

/// Polls in a row without an answer from `squeue` before the coordinator gives up.
const QUEUE_PATIENCE: u32 = 30;

/// Runs the search of `plan` on Slurm until its budget is spent and every trial has ended.
pub fn coordinate(plan: &Plan, tasks: &TaskSet, file: &Path, db: &Path, args: &SlurmArgs) -> anyhow::Result<ExitCode> {
    let spec = plan.search.as_ref().expect("a plan with [search]");
    let fresh = ShardPlan::new(plan, file, db);
    let mut shard_plan = match fresh.previous()? {
        // The points proposed before keep their indices: queued tasks read them.
        Some(previous)
            if previous.experiment_text == fresh.experiment_text
                && previous.trial_keys.starts_with(&fresh.trial_keys) =>
        {
            previous
        }
        Some(previous) if !previous.trial_keys.is_empty() => {
            return Err(BadInput(format!(
                "{}: the experiment file changed since its search was submitted ({}); finish that one, or give \
                 the experiment a new name",
                file.display(),
                previous.dir().join("plan.json").display()
            ))
            .into())
        }
        _ => fresh,
    };
    let dir = shard_plan.dir();
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let lock_path = dir.join("coordinator.lock");
    let lock = std::fs::File::create(&lock_path).map_err(|e| anyhow::anyhow!("{}: {e}", lock_path.display()))?;
    // SAFETY: flock on a descriptor this function owns; held until the file closes.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        return Err(BadInput(format!(
            "another `mtl run --executor slurm` coordinates this search (it holds {})",
            lock_path.display()
        ))
        .into());
    }
    let mut store = Store::open(db)?;
    // The plan numbers the search: search runs it does not list (a local `mtl run` of the
    // file) would be numbered twice.
    let listed: BTreeSet<&String> = shard_plan.search.iter().map(|slot| &shard_plan.trial_keys[slot.trial]).collect();
    let foreign = store
        .runs_including_archived(Some(&plan.experiment))?
        .into_iter()
        .filter(|r| r.params.contains_key(mtl_store::Proposal::PARAM) && !listed.contains(&r.trial_key))
        .count();
    if foreign > 0 {
        return Err(BadInput(format!(
            "{}: the database has {foreign} search trial(s) of experiment {:?} that its Slurm plan does not list \
             (a search run with `mtl run`): go on with `mtl run`, or give the experiment a new name",
            db.display(),
            plan.experiment
        ))
        .into());
    }
    // Each submission is one point's trials: --max-parallel bounds the points, not each array.
    let array_args = SlurmArgs { max_parallel: None, ..args.clone() };
    let selection = mtl_runner::prune::selection_of(plan, tasks);
    let task_names = mtl_runner::prune::task_names(plan);
    let in_flight_limit = args.max_parallel.map_or(DEFAULT_POINTS_IN_FLIGHT, |k| k as usize).max(1);
    let stop = crate::interrupt::install();
    let mut first_pass = true;
    let mut exhausted = false;
    let mut written: Option<ShardPlan> = None;
    let mut queue_failures = 0;
    loop {
        if stop.load(Ordering::SeqCst) {
            note!("stopped: the submitted tasks go on; run the same command again to go on with the search");
            return Ok(ExitCode::from(130));
        }
        // Written when it changes (atomically: workers read it as they start).
        let plan_file = shard_plan.dir().join("plan.json");
        if written.as_ref() != Some(&shard_plan) {
            shard_plan.write()?;
            written = Some(shard_plan.clone());
        }
        merge_dir(&mut store, &dir, true)?;
        // squeue may fail now and then; a minute without it ends the coordinator.
        let states = match states_with_queue(&shard_plan, &dir, &store, true) {
            Ok(states) => {
                queue_failures = 0;
                states
            }
            Err(error) if queue_failures < QUEUE_PATIENCE => {
                queue_failures += 1;
                note!("{error:#}; trying again");
                std::thread::sleep(POLL);
                continue;
            }
            Err(error) => return Err(error),
        };
        let wanted: Vec<usize> = (0..states.len())
            .filter(|&i| match &states[i] {
                state if first_pass && args.retry_failed => state.is_failed(),
                state if first_pass => !state.is_done() && !state.is_queued(),
                state => *state == mtl_runner::cluster_state::TrialState::NotSubmitted,
            })
            .collect();
        first_pass = false;
        if !wanted.is_empty() {
            let (job, array) = sbatch_array(&plan.experiment, &dir, &plan_file, &wanted, &array_args)?;
            note!("submitted Slurm job {job}: trial(s) {array} of {}", shard_plan.trial_keys.len());
            std::thread::sleep(POLL);
            continue;
        }
        let ended = |i: usize| states[i].is_done() || states[i].is_failed();
        let in_flight: BTreeSet<u64> =
            shard_plan.search.iter().filter(|slot| !ended(slot.trial)).map(|slot| slot.index).collect();
        let spent = exhausted || shard_plan.search.len() as u64 >= spec.budget;
        if spent && (0..states.len()).all(ended) {
            break;
        }
        if !spent && in_flight.len() < in_flight_limit {
            exhausted = !propose_next(&mut shard_plan, plan, &store, &in_flight, &task_names, &selection)?;
            continue;
        }
        std::thread::sleep(POLL);
    }
    // A shard published since the last merge.
    merge_dir(&mut store, &dir, true)?;
    let points: BTreeSet<u64> = shard_plan.search.iter().map(|slot| slot.index).collect();
    outln!(
        "experiment {:?}: search finished on Slurm: {} point(s), {} trial(s), merged into {}",
        plan.experiment,
        points.len(),
        shard_plan.search.len(),
        db.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Appends the next proposal's trials (up to the budget) to `shard_plan`; `false` when
/// the sampler finds no point whose trials are new (a space of choices used up).
fn propose_next(
    shard_plan: &mut ShardPlan,
    plan: &Plan,
    store: &Store,
    in_flight: &BTreeSet<u64>,
    task_names: &[String],
    selection: &mtl_store::Selection,
) -> anyhow::Result<bool> {
    let spec = plan.search.as_ref().expect("a plan with [search]");
    // A point with trials not merged yet is not observed (as a running one is locally).
    let mut observed = observed(store, plan, task_names, selection)?;
    observed.retain(|o| !in_flight.contains(&o.index));
    let index = shard_plan.search.iter().map(|slot| slot.index + 1).max().unwrap_or(0);
    let mut known: BTreeSet<String> = shard_plan.trial_keys.iter().cloned().collect();
    known.extend(store.runs_including_archived(Some(&plan.experiment))?.into_iter().map(|r| r.trial_key));
    for attempt in 0..MODEL_ATTEMPTS + 1000 {
        let point = propose(spec, index, attempt, &observed);
        // A combination that does not validate, or one whose trials exist, is drawn again.
        let Ok(trials) = mtl_runner::config::search_trials(spec, &point) else { continue };
        if trials.iter().any(|t| known.contains(&t.key)) {
            continue;
        }
        let text = point_json(spec, &point);
        let room = spec.budget.saturating_sub(shard_plan.search.len() as u64) as usize;
        for trial in trials.iter().take(room) {
            shard_plan.search.push(SearchSlot { trial: shard_plan.trial_keys.len(), index, point: text.clone() });
            shard_plan.trial_keys.push(trial.key.clone());
        }
        return Ok(true);
    }
    Ok(false)
}
