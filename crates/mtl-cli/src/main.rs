//! `mtl`: the command-line front end of mtl-lab.
//!
//! Thin glue over the library crates: parses flags, prints, maps errors to
//! exit codes (0 success, 1 a trial failed or the run was interrupted, 2 bad input).

// First, so that its macros (outln!, note!) are in scope in every module below.
#[macro_use]
mod terminal;

mod bench;
mod best;
mod cluster;
mod cluster_search;
mod compare;
mod curate;
mod data;
mod export;
mod guard;
mod import;
mod importance;
mod interrupt;
mod ls;
mod output;
mod progress;
mod revision;
mod run;
mod show;
mod sql;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// candle allocates a fresh buffer for every op result; glibc malloc spends a
// large share of training time there (and in page faults), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc (v3)'s `mi_option_purge_delay`; libmimalloc-sys names no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory committed instead of returning it to the OS after 10 ms: every
/// training step allocates and frees the same large buffers (a 20,000-word embedding's
/// gradient and optimiser moments are 10 MB each), and giving them back made the kernel
/// zero fresh pages on every step (23,590 page faults in a short w3 bench; 448 without).
fn keep_freed_memory() {
    // SAFETY: sets one of mimalloc's global options; called first thing in main.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(
    name = "mtl",
    version,
    about = "Multi-task learning experiments: sweep λ, sharing strategies and seeds; log to SQLite; report",
    long_about = "mtl-lab trains one shared-parameter model on several tasks at once with the loss \
L = L(T1) + λ·L(T2) + …, sweeps λ, sharing strategies and seeds, logs every per-task metric per epoch \
to an SQLite database, and turns that database into charts and an HTML report.\n\n\
Start with:  mtl run experiments/quickstart.toml   (writes mtl.db and report/index.html)",
    after_help = "Environment: MTL_DB sets the database of every command that takes --db (default mtl.db); --db wins.\n\
Exit codes: 0 success, 1 a trial failed or the run was interrupted, 2 bad input (usage, experiment file, data, database)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run (or resume) the sweep of an experiment file, then write the report.
    ///
    /// Trials already finished in the database are skipped; failed or
    /// unfinished ones are trained again.
    Run(run::RunArgs),
    /// Write index.html and the charts (PNG and SVG) from the database.
    Report(ReportArgs),
    /// List runs with their settings and final per-task metrics.
    Ls(ls::LsArgs),
    /// One run: settings, provenance, a per-epoch table per task, its diagnostics.
    Show(show::ShowArgs),
    /// Groups of runs over seeds: mean ± std per task metric, Δm% against the
    /// single-task baselines, the Pareto front.
    ///
    /// Each run counts with its test metrics at its best validation epoch.
    /// Example: mtl compare --group-by strategy,lambda --where "lr = 0.001"
    Compare(compare::CompareArgs),
    /// The best seed group of each experiment (by Δm%, or --by a metric).
    ///
    /// Prints every setting of its runs, n, Δm% and each test metric with its 95% interval,
    /// and the run ids.
    Best(best::BestArgs),
    /// Which settings matter: each setting's share of the variance of Δm% (and of each task's metrics) across seed groups.
    ///
    /// The groups are those of `mtl compare`; a setting's share is its main effect (η²).
    Importance(importance::ImportanceArgs),
    /// Tag runs: `mtl tag RUN… KEY=VALUE` (or --where); filter with --where "tag.KEY = 'VALUE'".
    Tag(curate::TagArgs),
    /// Set a run's note (shown by `mtl show`, filtered with --where "note = '…'").
    Note(curate::NoteArgs),
    /// Archive runs (left out of ls, compare, best, report and export; `mtl restore` brings
    /// them back; their trials stay done), or delete them for good with --purge.
    Rm(curate::RmArgs),
    /// Bring archived runs back.
    Restore(curate::RestoreArgs),
    /// Run one read-only SQL statement on the database (its --help lists the tables and views).
    Sql(sql::SqlArgs),
    /// Every metric point with its run's settings, as CSV or JSON (for pandas & co).
    Export(export::ExportArgs),
    /// Where the trials stand: cluster plans' trials, else the local runs' states.
    ///
    /// For plans submitted with --executor slurm (or plan): pending, running, done, failed,
    /// from the database, the shards and squeue together. Without plans: per experiment, how
    /// many runs are done, failed, interrupted, pruned and running, then the runs not done.
    Status(cluster::StatusArgs),
    /// Bring finished shards (DB.cluster/*/shards/*.db) into the database; safe to repeat
    /// and to run while workers write.
    Merge(cluster::MergeArgs),
    /// Train one trial of a cluster plan into its shard database (what each array task runs).
    Worker(cluster::WorkerArgs),
    /// Look at data sets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Bring in runs logged elsewhere (MLflow).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Training throughput (samples/s) and peak memory of the reference workloads,
    /// on random inputs of their shapes.
    ///
    /// benches/torch_reference.py runs the same workloads in PyTorch; `just bench-vs-torch`
    /// runs both side by side.
    Bench(bench::BenchArgs),
    /// A live dashboard of the database in the browser: experiments, runs, curves, comparisons.
    ///
    /// Serves http://127.0.0.1:8765/ from this binary (no network needed) and follows the
    /// database while sweeps write to it.
    Ui(ui::UiArgs),
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
    /// Report only this experiment (default: every experiment).
    #[arg(long)]
    experiment: Option<String>,
    /// The report folder.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Open index.html in the default browser afterwards (xdg-open, or open on macOS).
    #[arg(long)]
    open: bool,
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    // Listings die quietly on a closed pipe (`mtl ls | head`), as other command-line tools
    // do. Commands that write results (run, worker, merge, report) must not die mid-write:
    // for them a closed pipe is a failed write, which ends the output, not the work.
    let writes_results = matches!(
        cli.command,
        Command::Run(_)
            | Command::Worker(_)
            | Command::Merge(_)
            | Command::Report(_)
            | Command::Bench(_)
            | Command::Tag(_)
            | Command::Note(_)
            | Command::Rm(_)
            | Command::Restore(_)
            | Command::Import(_)
    );
    #[cfg(unix)]
    if !writes_results {
        // SAFETY: restoring the default disposition of a signal before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Report(args) => report(args),
        Command::Ls(args) => ls::ls(args),
        Command::Show(args) => show::show(args),
        Command::Compare(args) => compare::compare(args),
        Command::Best(args) => best::best(args),
        Command::Importance(args) => importance::importance_command(args),
        Command::Tag(args) => curate::tag(args),
        Command::Note(args) => curate::note(args),
        Command::Rm(args) => curate::rm(args),
        Command::Restore(args) => curate::restore(args),
        Command::Sql(args) => sql::sql(args),
        Command::Export(args) => export::export(args),
        Command::Status(args) => cluster::status(args),
        Command::Merge(args) => cluster::merge(args),
        Command::Worker(args) => cluster::worker(args),
        Command::Data(command) => data::data(command),
        Command::Import(command) => import::import(command),
        Command::Bench(args) => bench::bench(args),
        Command::Ui(args) => ui::ui(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(error) => {
            note!("error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    };
    // Output that could not be written is a failure, even where the work itself was done.
    if terminal::stderr_failed() && code == ExitCode::SUCCESS {
        return ExitCode::from(1);
    }
    code
}

/// A usage error found after clap's parsing (e.g. an unknown key in --where).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// 2 for bad input (nothing was written), 1 for everything else.
fn exit_code(error: &anyhow::Error) -> u8 {
    use mtl_store::StoreError;
    let bad_input = error.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<mtl_runner::config::ConfigError>()
            || cause.is::<mtl_data::DataError>()
            || matches!(
                cause.downcast_ref::<mtl_runner::shard::ShardError>(),
                Some(mtl_runner::shard::ShardError::OtherExperiment { .. })
            )
            || matches!(
                cause.downcast_ref::<StoreError>(),
                Some(
                    StoreError::Missing { .. }
                        | StoreError::NotAFile { .. }
                        | StoreError::NoFolder { .. }
                        | StoreError::NotADatabase { .. }
                        | StoreError::OlderSchemaReadOnly { .. }
                        | StoreError::NewerSchema { .. }
                        | StoreError::WriteRefused { .. }
                        | StoreError::BadQuery { .. }
                        | StoreError::Foreign { .. }
                )
            )
            || matches!(
                cause.downcast_ref::<mtl_report::ReportError>(),
                Some(mtl_report::ReportError::UnknownExperiment { .. } | mtl_report::ReportError::NoRuns { .. })
            )
    });
    if bad_input {
        2
    } else {
        1
    }
}

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    guard::Inputs::default().database(&args.db).check_folder(&args.out, "--out", mtl_report::writes_file_named)?;
    let store = mtl_store::Store::open_existing(&args.db)?;
    let options = mtl_report::ReportOptions { experiment: args.experiment, out_dir: args.out };
    let summary = mtl_report::write_report(&store, &options)?;
    outln!("wrote {} ({} runs, {} chart files)", summary.index.display(), summary.n_runs, summary.charts.len())?;
    if args.open {
        open_in_browser(&summary.index);
    }
    Ok(ExitCode::SUCCESS)
}

/// Hands `page` to the desktop's browser; says so, rather than failing, where there is none.
fn open_in_browser(page: &std::path::Path) {
    open_in_browser_url(&page.display().to_string());
}

/// Hands a URL or file to the desktop's browser (see [`open_in_browser`]).
fn open_in_browser_url(page: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let started = std::process::Command::new(opener)
        .arg(page)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        note!("no browser to open it with ({opener} not found); open {page} yourself");
    }
}
