//! `mtl run`: plan, train, summarise, report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mtl_runner::sweep::{self, SweepOptions};
use mtl_store::{RunRecord, RunStatus, Store};

use crate::cluster::{Executor, SlurmArgs};
use crate::progress::Progress;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The experiment file (TOML), e.g. experiments/quickstart.toml.
    file: PathBuf,
    /// The results database; created if missing, resumed if it has this experiment.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
    /// Trials trained at once, each on its own thread [default: the number of cores].
    ///
    /// Each trial's own ops may then use cores / jobs threads: a step with little work
    /// keeps to one thread, a larger one tries both at the start of each epoch and keeps
    /// the faster (set RAYON_NUM_THREADS to fix the threads instead). Small models train
    /// faster as parallel single-threaded trials than one at a time on every core.
    /// Results do not depend on this setting.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
    /// Where trials train: cpu, cuda or cuda:N (an NVIDIA GPU; needs a build with the cuda
    /// feature, see docs/gpu.md). Overrides the experiment file's `device` [default: the
    /// file's, else cpu]. On a GPU, --jobs N trains N trials at once on it.
    #[arg(long, value_name = "DEVICE")]
    device: Option<mtl_runner::device::DeviceSpec>,
    /// GPUs for `[trainer]` programs, e.g. 0,1: the trials running at once each see one of
    /// them as CUDA_VISIBLE_DEVICES (with --jobs 4, two trials per GPU).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    gpus: Vec<String>,
    /// The report folder written when the sweep ends.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Do not write the report.
    #[arg(long)]
    no_report: bool,
    /// Write each finished trial's parameters as a safetensors file
    /// (DIR/<experiment>/<trial key>.safetensors; names stems.…, trunk.…, heads.<task>.…);
    /// the store records its path and sha256.
    #[arg(long)]
    save_checkpoints: bool,
    /// The largest plan run without asking: a bigger one asks for confirmation on a
    /// terminal and stops otherwise (exit 2). Raise it to run a big sweep unattended.
    /// The plan is counted from the file's lists before any trial is built; no plan
    /// may have more than 100,000 trials.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_trials: u64,
    /// Where --save-checkpoints writes.
    #[arg(long, value_name = "DIR", default_value = "checkpoints")]
    checkpoints: PathBuf,
    /// Where trials run: here, as a Slurm job array (one task per trial, each into its
    /// own shard database; see `mtl status`, `mtl merge` and
    /// docs/cluster.md), or nowhere yet: `plan` writes the plan for another scheduler.
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    executor: Executor,
    /// Run the file although the experiment was last run from a file with other
    /// settings (the changed keys are listed); it becomes the experiment's next revision.
    #[arg(long)]
    new_revision: bool,
    #[command(flatten)]
    slurm: SlurmArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Everything the user typed is validated before the database is touched.
    check_outputs(&args)?;
    let plan = parse_plan(&args.file, args.max_trials)?;
    if args.device.is_some() && args.executor != Executor::Local {
        return Err(crate::BadInput(
            "--device goes with the local executor; for a cluster, give `device` in the experiment file (each \
             worker reads it) or pass --device to mtl worker"
                .into(),
        )
        .into());
    }
    // The device must open before anything is written.
    let device = args.device.unwrap_or(plan.device);
    if args.executor == Executor::Local {
        device.open().map_err(|e| crate::BadInput(format!("{}: {e}", args.file.display())))?;
    }
    if args.save_checkpoints {
        let folder = sweep::checkpoint_folder(&args.checkpoints, &plan.experiment);
        crate::guard::check_writable_folder(&folder, "--checkpoints")?;
    }
    // A [trainer] program reads its own data: nothing to load or try here.
    let command = plan.trials.first().and_then(|t| t.settings.trainer.as_ref()).is_some();
    let tasks = match command {
        true => mtl_runner::data::TaskSet::new(Vec::new(), Vec::new()),
        false => mtl_runner::data::load_task_set(&plan.tasks)?,
    };
    if !command {
        note!("examples (train/val/test): {}", mtl_runner::data::split_sizes(&tasks.tasks));
    }
    // Each sharing setting's network is built and run on one example before any trial
    // trains: what does not fit the data fails now (exit 2), not after the data of every
    // trial has loaded.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.map_or(cores, |j| j as usize).min(plan.trials.len()).max(1);
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        // The user chose the threads: every trial uses them.
        mtl_runner::train::choose_threads_by_work(false);
    } else {
        // Read by rayon and candle when their thread pools start, which is after this point.
        // A trial whose steps have too little work keeps to one thread (see `train`).
        std::env::set_var("RAYON_NUM_THREADS", (cores / jobs).max(1).to_string());
    }
    let any_may_share = match command {
        true => false,
        false => {
            mtl_runner::train::check_plan(&plan, &tasks)
                .map_err(|problem| crate::BadInput(format!("{}: {problem}", args.file.display())))?
                .any_may_share
        }
    };
    if mtl_runner::train::threads_by_work_enabled() && !any_may_share {
        // No trial will try more than one thread. candle reads this at each matmul, and
        // its pool when it starts (on a first large tensor: one example rarely has one).
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let slurm_flags =
        args.slurm.retry_failed || args.slurm.max_parallel.is_some() || !args.slurm.sbatch_args.is_empty();
    if slurm_flags && args.executor != Executor::Slurm {
        return Err(
            crate::BadInput("--retry-failed, --max-parallel and --sbatch-arg go with --executor slurm".into()).into()
        );
    }
    if plan.search.is_some() && args.executor == Executor::Plan {
        return Err(crate::BadInput(format!(
            "{}: [search] proposes trials from the results as they arrive: run it with `mtl run` (several \
             processes may share the database) or --executor slurm (this process coordinates), not --executor plan",
            args.file.display(),
        ))
        .into());
    }
    crate::revision::check(&args.db, &plan, &args.file, args.new_revision)?;
    match args.executor {
        Executor::Slurm if plan.search.is_some() => {
            return crate::cluster_search::coordinate(&plan, &tasks, &args.file, &args.db, &args.slurm)
        }
        Executor::Slurm => return crate::cluster::submit(&plan, &args.file, &args.db, &args.slurm),
        Executor::Plan => return crate::cluster::write_plan(&plan, &args.file, &args.db),
        Executor::Local => {}
    }
    let progress = Progress::new(jobs, mtl_runner::train::task_set_selection(&tasks));
    let checkpoint_dir = args.save_checkpoints.then(|| args.checkpoints.clone());
    let options = SweepOptions {
        db: args.db.clone(),
        jobs,
        checkpoint_dir,
        stop: Some(crate::interrupt::install()),
        provenance: mtl_store::Provenance {
            // A [trainer] program picks its own device.
            device: (!command).then(|| device.describe()),
            ..mtl_runner::provenance::collect(&args.file)
        },
        gpus: args.gpus.clone(),
        peers: None,
        device,
    };
    let report = sweep::run_sweep(&plan, &tasks, &options, &progress);
    progress.finish();
    // The store's own error, so that a database that is not one, or is newer, exits 2.
    let report = match report {
        Ok(report) => report,
        Err(sweep::SweepError::Store(error)) => return Err(anyhow::Error::new(error).context("running the sweep")),
        Err(error @ sweep::SweepError::Search(_)) => return Err(anyhow::anyhow!("running the search: {error}")),
    };
    let interrupted = report.outcomes.iter().filter(|o| o.status == RunStatus::Interrupted).count();
    if crate::interrupt::requested() {
        note!(
            "interrupted: {interrupted} trial(s) marked interrupted; run the same command again to resume (finished trials are kept)"
        );
        return Ok(ExitCode::from(1));
    }

    let store = Store::open_existing(&args.db)?;
    let runs: Vec<RunRecord> = store.runs(Some(&plan.experiment))?;
    // The report is written before anything is printed: a closed or full stdout then
    // loses only the printing. It covers the whole database, as `mtl report` does.
    let written = match args.no_report {
        true => None,
        false => {
            let options = mtl_report::ReportOptions { experiment: None, out_dir: args.out };
            Some(mtl_report::write_report(&store, &options)?)
        }
    };
    outln!("\n{}", summary(&runs))?;
    if let Some(written) = written {
        outln!("report: {}", written.index.display())?;
    }
    outln!("database: {}", args.db.display())?;

    if !report.left_to_others.is_empty() {
        let running = report.left_to_others.iter().filter(|(_, why)| why.starts_with("running")).count();
        note!("{} trial(s) were left to other processes ({running} still running there)", report.left_to_others.len());
    }
    let pruned = report.outcomes.iter().filter(|o| o.status == RunStatus::Pruned).count();
    if pruned > 0 {
        let db = args.db.display();
        note!(
            "{pruned} trial(s) pruned by [prune]; `mtl ls --db {db} --where \"status = 'pruned'\"` lists them and why"
        );
    }
    let failed = report.outcomes.iter().filter(|o| !matches!(o.status, RunStatus::Done | RunStatus::Pruned)).count();
    if failed > 0 {
        note!("{failed} trial(s) failed; `mtl ls --db {}` shows why", args.db.display());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Outputs that would overwrite an input, or could not be written after hours of
/// training, are refused before anything is read or trained.
fn check_outputs(args: &RunArgs) -> Result<(), crate::BadInput> {
    use crate::guard::{check_writable_folder, Inputs};
    let inputs = Inputs::default().file(&args.file, "the experiment file");
    inputs.check_output(&args.db, "--db")?;
    if args.db.exists() && !args.db.is_file() {
        return Err(crate::BadInput(format!(
            "--db {} is not a database file (a folder or a device)",
            args.db.display()
        )));
    }
    let db_folder = args.db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !db_folder.is_dir() {
        let message = format!("--db {}: {} is not an existing folder", args.db.display(), db_folder.display());
        return Err(crate::BadInput(message));
    }
    check_writable_folder(db_folder, "--db")?;
    let inputs = inputs.database(&args.db);
    if !args.no_report && args.executor == Executor::Local {
        inputs.check_folder(&args.out, "--out", mtl_report::writes_file_named)?;
        check_writable_folder(&args.out, "--out")?;
    }
    if args.save_checkpoints {
        inputs.check_folder(&args.checkpoints, "--checkpoints", |_| false)?;
        check_writable_folder(&args.checkpoints, "--checkpoints")?;
    }
    Ok(())
}

/// Reads and validates the experiment file; a plan over `max_trials` (counted before it
/// is built) runs only when the user says so at a terminal.
fn parse_plan(file: &Path, max_trials: u64) -> anyhow::Result<mtl_runner::plan::Plan> {
    use mtl_runner::config;
    use std::io::{BufRead, IsTerminal};
    let error = match config::parse_file_with(file, max_trials) {
        Ok(plan) => return Ok(plan),
        Err(error) => error,
    };
    // Only a plan that is too big is worth asking about.
    let too_big = error.key.as_deref() == Some("sweep") && error.message.starts_with("the sweep has");
    if !too_big || !std::io::stdin().is_terminal() {
        return Err(error.into());
    }
    // The file was read; was the plan only too big?
    let Ok(text) = std::fs::read_to_string(file) else { return Err(error.into()) };
    let Ok(size) = config::sweep_size(&text, file) else { return Err(error.into()) };
    if size.trials <= max_trials || size.trials > config::MAX_PLAN_TRIALS {
        return Err(error.into());
    }
    note!("the plan has {} trials ({}), more than --max-trials {max_trials}.", size.trials, size.describe());
    crate::terminal::write_stderr(format_args!("Run all {}? [y/N] ", size.trials));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        return Err(crate::BadInput("not started".into()).into());
    }
    Ok(config::parse_str_with(&text, file, size.trials)?)
}

/// The experiment as `mtl compare --experiment NAME` shows it: one row per seed group
/// (runs of other revisions with other settings apart), with intervals, Δm% and tests.
fn summary(runs: &[RunRecord]) -> String {
    let known: BTreeSet<String> = runs.iter().flat_map(|r| r.params.keys().cloned()).collect();
    let spec = mtl_report::compare::CompareSpec::by(
        &crate::compare::default_group_by(&known).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    crate::compare::render_table(&mtl_report::compare::compare(runs, &spec), runs)
}
