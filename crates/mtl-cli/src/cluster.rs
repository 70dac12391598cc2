//! Sweeps on a cluster: `mtl run --executor slurm` (one job array per submission),
//! `mtl worker` (one trial into its shard), `mtl merge` (shards into the main
//! database) and `mtl status` (the database, the shards and `squeue` together).
//! The contract is `mtl_runner::shard`; the jobs file, the Slurm states and each
//! trial's state are `mtl_runner::cluster_state`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use mtl_runner::cluster_state::{self, index_ranges, shard_status, submitted_jobs, TrialState};
use mtl_runner::plan::Plan;
use mtl_runner::prune::Peers;
use mtl_runner::shard::ShardPlan;
use mtl_runner::sweep::{self, SweepOptions};
use mtl_store::{MergeSummary, RunStatus, ShardTrial, Store, StoreError};
use serde_json::json;

use crate::output::{self, Cell, Format};
use crate::BadInput;

/// Where trials run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    /// Here, on `--jobs` threads.
    #[default]
    Local,
    /// As a Slurm job array: one task per trial, each writing its own shard database (with
    /// [search], this process coordinates until the budget is spent).
    Slurm,
    /// Write the plan only, for another scheduler (e.g. a Kubernetes Indexed Job): it runs
    /// `mtl worker --plan PLAN` once per index, 0 to N−1.
    Plan,
}

/// The flags of `mtl run` for `--executor slurm`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SlurmArgs {
    /// At most this many array tasks at once (sbatch's `--array=…%K`); with [search], at
    /// most this many points in flight (default 4), each point's seeds at once.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_parallel: Option<u32>,
    /// An extra argument for sbatch, e.g. --sbatch-arg=--partition=gpu (repeatable).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// Submit only the trials that failed or were lost (see `mtl status`), not every unfinished one.
    #[arg(long)]
    pub retry_failed: bool,
}

/// Writes the plan of an experiment for another scheduler and says how to run it.
pub fn write_plan(plan: &Plan, file: &Path, db: &Path) -> anyhow::Result<ExitCode> {
    let shard_plan = ShardPlan::new(plan, file, db);
    let plan_file = shard_plan.write()?;
    let n = shard_plan.trial_keys.len();
    outln!("experiment {:?}: {n} trials; plan {}", plan.experiment, plan_file.display())?;
    outln!(
        "run `mtl worker --plan {}` once per index 0 to {} (--trial I, or $JOB_COMPLETION_INDEX); then `mtl merge --db {}`",
        plan_file.display(),
        n.saturating_sub(1),
        db.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Submits the trials of `plan` that are not done as one Slurm job array.
pub fn submit(plan: &Plan, file: &Path, db: &Path, args: &SlurmArgs) -> anyhow::Result<ExitCode> {
    let shard_plan = ShardPlan::new(plan, file, db);
    // Before the database is opened: a folder of another experiment's plan is bad input.
    let previous = shard_plan.previous()?;
    let mut store = Store::open(db)?;
    let dir = shard_plan.dir();
    if let Some(previous) = previous {
        if previous.trial_keys != shard_plan.trial_keys {
            // Queued tasks read the plan when they start: its indices must keep their meaning.
            let queued = trial_states(&previous, &dir, &store)?.iter().filter(|s| s.is_queued()).count();
            if queued > 0 {
                return Err(BadInput(format!(
                    "{}: the experiment's trials changed while {queued} task(s) of the plan submitted before are \
                     still queued; wait for them (`mtl status`) or scancel them, then submit again",
                    file.display()
                ))
                .into());
            }
            // The old jobs' indices named the old plan's trials.
            let _ = std::fs::remove_file(cluster_state::jobs_file(&dir));
        }
    }
    let plan_file = shard_plan.write()?;
    // Shards finished since the last merge count as done.
    merge_dir(&mut store, &dir, false)?;
    let states = trial_states(&shard_plan, &dir, &store)?;
    let wanted: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, state)| if args.retry_failed { state.is_failed() } else { !state.is_done() && !state.is_queued() })
        .map(|(i, _)| i)
        .collect();
    if wanted.is_empty() {
        let what = if args.retry_failed { "no failed trials" } else { "every trial is done or queued" };
        outln!("experiment {:?}: {what}; nothing to submit (`mtl status --db {}`)", plan.experiment, db.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    let (job, array) = sbatch_array(&plan.experiment, &dir, &plan_file, &wanted, args)?;
    outln!(
        "experiment {:?}: submitted Slurm job {job}, {} array task(s) ({array}) of {} trials; plan {}",
        plan.experiment,
        wanted.len(),
        shard_plan.trial_keys.len(),
        plan_file.display()
    )?;
    outln!(
        "follow it with `mtl status --db {0}`; `mtl merge --db {0}` brings finished trials into the database",
        db.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Submits the plan's trials `wanted` (indices) as one Slurm job array and records the
/// job: its id, and the `--array` value.
pub(crate) fn sbatch_array(
    experiment: &str,
    dir: &Path,
    plan_file: &Path,
    wanted: &[usize],
    args: &SlurmArgs,
) -> anyhow::Result<(String, String)> {
    let mut array = index_ranges(wanted);
    if let Some(k) = args.max_parallel {
        array += &format!("%{k}");
    }
    let exe = std::env::current_exe()?;
    let wrap = format!("{} worker --plan {}", shell_quote(&exe), shell_quote(plan_file));
    let mut sbatch = Command::new("sbatch");
    sbatch
        .arg("--parsable")
        .arg(format!("--array={array}"))
        .arg(format!("--job-name=mtl-{experiment}"))
        .arg(format!("--output={}", dir.join("logs/%A_%a.out").display()))
        .args(&args.sbatch_args)
        .arg(format!("--wrap={wrap}"));
    let output = sbatch
        .output()
        .map_err(|e| BadInput(format!("cannot run sbatch ({e}): --executor slurm needs Slurm's sbatch on PATH")))?;
    if !output.status.success() {
        // Nothing was submitted; most often an --sbatch-arg Slurm does not accept.
        return Err(
            BadInput(format!("sbatch refused the job: {}", String::from_utf8_lossy(&output.stderr).trim())).into()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let job = stdout.trim().split(';').next().unwrap_or_default().to_string();
    if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            BadInput(format!("sbatch printed no job id (expected one with --parsable): {:?}", stdout.trim())).into()
        );
    }
    let jobs_file = cluster_state::jobs_file(dir);
    let mut jobs = std::fs::read_to_string(&jobs_file).unwrap_or_default();
    jobs += &cluster_state::jobs_line(&job, wanted);
    std::fs::write(&jobs_file, jobs).map_err(|e| anyhow::anyhow!("{}: {e}", jobs_file.display()))?;
    Ok((job, array))
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The plan file written by `mtl run --executor slurm` (DB.cluster/<experiment>/plan.json).
    #[arg(long)]
    plan: PathBuf,
    /// The trial's index in the plan. Default: $SLURM_ARRAY_TASK_ID, else
    /// $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
    #[arg(long)]
    trial: Option<usize>,
    /// Where the trial trains: cpu, cuda or cuda:N [default: the experiment file's
    /// `device`, else cpu].
    #[arg(long, value_name = "DEVICE")]
    device: Option<mtl_runner::device::DeviceSpec>,
}

/// Trains one trial of a plan into its shard database: exit 0 when it is done, 1 when it failed.
pub fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let index = match args.trial {
        Some(index) => index,
        None => ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
            .iter()
            .find_map(|name| std::env::var(name).ok())
            .ok_or_else(|| {
                BadInput("--trial not given and neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set".into())
            })?
            .parse()
            .map_err(|e| BadInput(format!("the trial index from the environment: {e}")))?,
    };
    let shard_plan = ShardPlan::read(&args.plan).map_err(|e| BadInput(e.to_string()))?;
    let plan = shard_plan.trial_plan(index, &args.plan).map_err(|e| BadInput(e.to_string()))?;
    let key = plan.trials[0].key.clone();
    let shard = shard_plan.shard_path(&key);
    let trial = ShardTrial { experiment: &shard_plan.experiment, trial_key: &key };
    let finished = |status: RunStatus| matches!(status, RunStatus::Done | RunStatus::Pruned);
    if shard_status(&shard, trial).is_ok_and(|s| s.is_some_and(|(status, _)| finished(status))) {
        outln!("trial {index} ({key}): already finished in {}", shard.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    let device = args.device.unwrap_or(plan.device);
    device.open().map_err(|e| BadInput(e.to_string()))?;
    let tasks = mtl_runner::data::load_task_set(&plan.tasks)?;
    let mut provenance = mtl_runner::provenance::collect(&shard_plan.experiment_file);
    // A [trainer] program picks its own device.
    provenance.device = plan.trials[0].settings.trainer.is_none().then(|| device.describe());
    // What the plan was made from, whatever the file holds now.
    provenance.experiment_text = Some(shard_plan.experiment_text.clone());
    // The trial trains into a database of its own on this node's disk; only the finished
    // file goes to the shared folder (renamed into place whole), so no two hosts ever
    // share an SQLite file that is being written.
    let scratch = std::env::temp_dir().join(format!("mtl-worker-{}-{key}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| anyhow::anyhow!("{}: {e}", scratch.display()))?;
    let options = SweepOptions {
        db: scratch.join(format!("{key}.db")),
        jobs: 1,
        checkpoint_dir: None,
        stop: Some(crate::interrupt::install()),
        provenance,
        gpus: Vec::new(),
        // [prune] compares with the other trials' finished shards.
        peers: match plan.prune {
            Some(_) => Some(std::sync::Arc::new(Peers::new(
                shard_plan.plan().map_err(|e| BadInput(e.to_string()))?,
                shard_plan.dir(),
                shard.clone(),
            ))),
            None => None,
        },
        device,
    };
    struct Quiet;
    impl sweep::SweepEvents for Quiet {}
    let result = sweep::run_sweep(&plan, &tasks, &options, &Quiet);
    let published = result.is_ok().then(|| publish(&options.db, &shard)).transpose();
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    published?;
    match shard_status(&shard, trial)? {
        Some((RunStatus::Done, _)) => {
            outln!("trial {index} ({key}): done, in {}", shard.display())?;
            Ok(ExitCode::SUCCESS)
        }
        // Stopped by the rule, as planned: not a failure for the scheduler.
        Some((RunStatus::Pruned, error)) => {
            outln!("trial {index} ({key}): pruned, in {}: {}", shard.display(), error.unwrap_or_default())?;
            Ok(ExitCode::SUCCESS)
        }
        Some((status, error)) => {
            note!("trial {index} ({key}): {}: {}", status.as_str(), error.unwrap_or_default());
            Ok(ExitCode::from(1))
        }
        None => anyhow::bail!("trial {index} ({key}): its shard {} holds no run", shard.display()),
    }
}

/// Copies the finished database `scratch` to `shard`: written beside it, then renamed.
fn publish(scratch: &Path, shard: &Path) -> anyhow::Result<()> {
    let partial = shard.with_extension("db.partial");
    let _ = std::fs::remove_file(&partial);
    Store::open_existing(scratch)?.vacuum_into(&partial)?;
    std::fs::rename(&partial, shard).map_err(|e| anyhow::anyhow!("{}: {e}", shard.display()))?;
    Ok(())
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The main results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
}

/// Merges every experiment's shards (DB.cluster/*/shards/*.db) into the database.
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let dirs = cluster_dirs(&args.db)?;
    let mut store = Store::open(&args.db)?;
    let mut total = MergeSummary::default();
    let mut skipped = 0;
    for dir in &dirs {
        let (merged, left_out) = merge_dir(&mut store, dir, false)?;
        total.add(&merged);
        skipped += left_out;
    }
    outln!(
        "merged into {}: {} done, {} failed; {} already there; {} still running; {skipped} skipped",
        args.db.display(),
        total.done,
        total.failed,
        total.already_merged,
        total.running
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Merges the shards of one experiment folder and counts those it skipped. A shard is
/// merged only if its name designates a trial of the folder's plan and it holds exactly
/// that trial of that experiment; any other, and one that is not a regular file or cannot
/// be read, is reported and skipped (its trial shows as failed in `mtl status`). An error
/// of the main database ends the merge. With `skip_finished`, shards of trials done or
/// pruned in the database are not opened (merging them would keep the database's).
pub(crate) fn merge_dir(store: &mut Store, dir: &Path, skip_finished: bool) -> anyhow::Result<(MergeSummary, usize)> {
    let mut summary = MergeSummary::default();
    let shards = ShardPlan::shards(dir);
    let plan = match ShardPlan::read(&dir.join("plan.json")) {
        Ok(plan) => plan,
        Err(error) => {
            // Without its plan, nothing says which trial each shard must hold.
            note!("skipped {} and its {} shard(s): {error}", dir.display(), shards.len());
            return Ok((summary, shards.len()));
        }
    };
    let finished: std::collections::BTreeSet<String> = match skip_finished {
        true => store
            .runs(Some(&plan.experiment))?
            .into_iter()
            .filter(|r| matches!(r.status, RunStatus::Done | RunStatus::Pruned))
            .map(|r| r.trial_key)
            .collect(),
        false => Default::default(),
    };
    let mut skipped = 0;
    for shard in shards {
        let name = shard.file_stem().and_then(|stem| stem.to_str());
        if name.is_some_and(|name| finished.contains(name)) {
            continue;
        }
        let Some(key) = name.filter(|name| plan.trial_keys.iter().any(|key| key == name)) else {
            let experiment = &plan.experiment;
            note!("skipped {}: its name designates no trial of the plan of experiment {experiment:?}", shard.display());
            skipped += 1;
            continue;
        };
        match store.merge_trial_shard(&shard, ShardTrial { experiment: &plan.experiment, trial_key: key }) {
            Ok(merged) => summary.add(&merged),
            Err(StoreError::Shard(rejected)) => {
                note!("skipped {:#}", anyhow::Error::from(rejected));
                skipped += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok((summary, skipped))
}

/// The experiment folders of DB.cluster/, in name order; none is bad input.
fn cluster_dirs(db: &Path) -> Result<Vec<PathBuf>, BadInput> {
    let dirs = plan_dirs(db);
    if dirs.is_empty() {
        let message = "(nothing was submitted with --executor slurm or plan)";
        return Err(BadInput(format!("no cluster plans beside {} {message}", db.display())));
    }
    Ok(dirs)
}

/// The experiment folders of DB.cluster/ that hold a plan, in name order.
fn plan_dirs(db: &Path) -> Vec<PathBuf> {
    let root = ShardPlan::cluster_root(db);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("plan.json").exists()).collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Each trial's state, from the main database, its shard in the plan folder `dir` and
/// (where Slurm is) `squeue`.
pub(crate) fn trial_states(plan: &ShardPlan, dir: &Path, main: &Store) -> anyhow::Result<Vec<TrialState>> {
    states_with_queue(plan, dir, main, false)
}

/// [`trial_states`], and with `need_queue` an error where jobs were submitted and `squeue`
/// does not answer (a coordinator could not tell a lost task from a queued one).
pub(crate) fn states_with_queue(
    plan: &ShardPlan,
    dir: &Path,
    main: &Store,
    need_queue: bool,
) -> anyhow::Result<Vec<TrialState>> {
    let jobs = submitted_jobs(dir);
    let queue = slurm_states(&jobs);
    if need_queue && !jobs.is_empty() && queue.is_none() {
        anyhow::bail!("squeue does not answer: following a search on Slurm needs it (the submitted tasks go on)");
    }
    Ok(cluster_state::trial_states(plan, dir, main, &jobs, queue.as_ref())?)
}

/// Array index → Slurm state of the newest submitted job that has it, from `squeue`;
/// `None` where Slurm is not there (no squeue, or it fails).
fn slurm_states(jobs: &[(String, Vec<usize>)]) -> Option<BTreeMap<usize, String>> {
    if jobs.is_empty() {
        return None;
    }
    let ids: Vec<&str> = jobs.iter().map(|(job, _)| job.as_str()).collect();
    let output =
        Command::new("squeue").args(["-h", "-r", "-t", "all", "-o", "%F %K %T", "-j", &ids.join(",")]).output().ok()?;
    if !output.status.success() {
        // squeue fails for a list of only forgotten jobs: then it knows none of them.
        let stderr = String::from_utf8_lossy(&output.stderr);
        return stderr.contains("Invalid job id").then(BTreeMap::new);
    }
    Some(cluster_state::parse_squeue(&String::from_utf8_lossy(&output.stdout), &ids))
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The main results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
    /// List every trial, not only the unfinished ones.
    #[arg(long)]
    all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Pending, running, done and failed trials of every submitted experiment; without
/// cluster plans, the states of the local runs.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let dirs = plan_dirs(&args.db);
    if dirs.is_empty() {
        return local_status(&args);
    }
    let store = Store::open(&args.db)?;
    let mut rows = Vec::new();
    let mut counts_out = Vec::new();
    for dir in dirs {
        let plan = ShardPlan::read(&dir.join("plan.json")).map_err(|e| BadInput(e.to_string()))?;
        let states = trial_states(&plan, &dir, &store)?;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for state in &states {
            *counts.entry(state.name()).or_default() += 1;
        }
        counts_out.push((plan.experiment.clone(), counts.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Vec<_>>()));
        for (index, (key, state)) in plan.trial_keys.iter().zip(&states).enumerate() {
            if args.all || !matches!(state, TrialState::Done) {
                let detail = match state {
                    TrialState::Failed(reason) => reason.clone(),
                    _ => String::new(),
                };
                rows.push(vec![
                    Cell::Text(plan.experiment.clone()),
                    Cell::Int(index as i64),
                    Cell::Text(key.clone()),
                    Cell::Text(state.name().to_string()),
                    Cell::text((!detail.is_empty()).then_some(detail.as_str())),
                ]);
            }
        }
    }
    let header: Vec<String> = ["experiment", "index", "trial_key", "state", "detail"].map(String::from).to_vec();
    let summary = counts_out
        .into_iter()
        .map(|(experiment, counts)| ExperimentCounts { experiment, counts: counts.into_iter().collect() });
    print_states("cluster", summary.collect(), &header, &rows, args.format)?;
    Ok(ExitCode::SUCCESS)
}

/// One experiment's line of `mtl status`: how many of its trials are in each state.
#[derive(serde::Serialize)]
struct ExperimentCounts {
    experiment: String,
    counts: BTreeMap<String, usize>,
}

/// `mtl status` in one of the formats: the counts per experiment, then the listed trials
/// (JSON: `{"source", "experiments", "trials"}`; CSV: the trials only).
fn print_states(
    source: &str,
    summary: Vec<ExperimentCounts>,
    header: &[String],
    rows: &[Vec<Cell>],
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let all = json!({"source": source, "experiments": summary, "trials": output::cells_json(header, rows)});
            outln!("{}", serde_json::to_string_pretty(&all)?)?;
        }
        Format::Csv => out!("{}", output::cells_csv(header, rows))?,
        Format::Table => {
            for ExperimentCounts { experiment, counts } in &summary {
                let listed: Vec<String> = counts.iter().map(|(state, n)| format!("{n} {state}")).collect();
                outln!("{experiment}: {}", listed.join(", "))?;
            }
            if summary.is_empty() {
                outln!("(no runs yet)")?;
            }
            if !rows.is_empty() {
                out!("\n{}", output::cells_table(header, rows))?;
            }
        }
    }
    Ok(())
}

/// The states a local run can be in, in the order `mtl status` counts them.
const LOCAL_STATES: [RunStatus; 5] =
    [RunStatus::Done, RunStatus::Pruned, RunStatus::Failed, RunStatus::Interrupted, RunStatus::Running];

/// `mtl status` of a database without cluster plans: per experiment, how many of its runs are
/// done, failed, interrupted, pruned and running, then the runs that are not done (every run with --all).
fn local_status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&args.db)?;
    let runs = store.runs(None)?;
    let host = mtl_runner::provenance::host_name().unwrap_or_else(|| "localhost".into());
    let mut counts: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    let mut rows = Vec::new();
    for run in &runs {
        let state = LOCAL_STATES.iter().position(|s| *s == run.status).unwrap_or(0);
        counts.entry(run.experiment.as_str()).or_default()[state] += 1;
        if args.all || run.status != RunStatus::Done {
            // A `running` run whose process is gone says so (the next `mtl run` trains it again).
            let detail = match run.owner_ended(&host) {
                Some(reason) => format!("{reason}; the next `mtl run` of its experiment trains it again"),
                None => run.error.clone().unwrap_or_default(),
            };
            rows.push(vec![
                Cell::Text(run.experiment.clone()),
                Cell::Int(run.id.0),
                Cell::Text(run.trial_key.clone()),
                Cell::Text(run.status.as_str().to_string()),
                Cell::text((!detail.is_empty()).then_some(detail.as_str())),
            ]);
        }
    }
    let header: Vec<String> = ["experiment", "run", "trial_key", "state", "detail"].map(String::from).to_vec();
    if args.format == Format::Table {
        outln!("{} (no cluster plans beside it): the states of its runs", args.db.display())?;
    }
    let summary = counts.into_iter().map(|(experiment, n)| ExperimentCounts {
        experiment: experiment.to_string(),
        counts: LOCAL_STATES.iter().map(|s| s.as_str().to_string()).zip(n).collect(),
    });
    print_states("local", summary.collect(), &header, &rows, args.format)?;
    Ok(ExitCode::SUCCESS)
}
