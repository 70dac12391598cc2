//! `mtl run`: plan, train, summarise, report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mtl_runner::sweep::{self, SweepOptions};
use mtl_store::{ParamValue, RunRecord, RunStatus, Store};

use crate::output;
use crate::progress::Progress;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The experiment file (TOML), e.g. experiments/quickstart.toml.
    file: PathBuf,
    /// The results database; created if missing, resumed if it has this experiment.
    #[arg(long, default_value = "mtl.db")]
    db: PathBuf,
    /// Trials trained at once, each on its own thread [default: the number of cores].
    ///
    /// Each trial's own ops then use cores / jobs threads (set RAYON_NUM_THREADS to
    /// override). Small models train faster as parallel single-threaded trials than
    /// one at a time on every core. Results do not depend on this setting.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
    /// The report folder written when the sweep ends.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Do not write the report.
    #[arg(long)]
    no_report: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Everything the user typed is validated before the database is touched.
    let plan = mtl_runner::config::parse_file(&args.file)?;
    let tasks = mtl_runner::data::load_task_set(&plan.tasks)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.map_or(cores, |j| j as usize).min(plan.trials.len()).max(1);
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Read by rayon and candle when their thread pools start, which is after this point.
        std::env::set_var("RAYON_NUM_THREADS", (cores / jobs).max(1).to_string());
    }
    let progress = Progress::new(jobs);
    let options = SweepOptions { db: args.db.clone(), jobs };
    let report = sweep::run_sweep(&plan, &tasks, &options, &progress);
    progress.finish();
    let report = report.context("running the sweep")?;

    let store = Store::open_existing(&args.db)?;
    let keys: BTreeSet<&str> = plan.trials.iter().map(|t| t.key.as_str()).collect();
    let runs: Vec<RunRecord> =
        store.runs(Some(&plan.experiment))?.into_iter().filter(|r| keys.contains(r.trial_key.as_str())).collect();
    let task_names: Vec<&str> = plan.tasks.iter().map(|t| t.name.as_str()).collect();
    println!("\n{}", summary(&runs, &task_names));

    if !args.no_report {
        let options = mtl_report::ReportOptions { experiment: Some(plan.experiment.clone()), out_dir: args.out };
        let written = mtl_report::write_report(&store, &options)?;
        println!("report: {}", written.index.display());
    }
    println!("database: {}", args.db.display());

    let failed = report.outcomes.iter().filter(|o| o.status != RunStatus::Done).count();
    if failed > 0 {
        eprintln!("{failed} trial(s) failed; `mtl ls --db {}` shows why", args.db.display());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Test accuracy per task, mean ± std over seeds, one row per (strategy, λ, lr).
fn summary(runs: &[RunRecord], task_names: &[&str]) -> String {
    let mut groups: BTreeMap<(String, String, String), Vec<&RunRecord>> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.status == RunStatus::Done) {
        let param = |k: &str| run.params.get(k).map(ParamValue::to_string).unwrap_or_else(|| "-".into());
        // Sort numerically within a strategy by padding λ.
        let lambda = run.params.get("lambda").and_then(|v| match v {
            ParamValue::Num(x) => Some(format!("{x:020.6}")),
            ParamValue::Text(_) => None,
        });
        groups.entry((param("strategy"), lambda.unwrap_or_default(), param("lr"))).or_default().push(run);
    }
    let mut header: Vec<String> = ["strategy", "λ", "lr", "seeds"].map(String::from).to_vec();
    header.extend(task_names.iter().map(|t| format!("{t} test acc")));
    let rows: Vec<Vec<String>> = groups
        .values()
        .map(|group| {
            let first = group[0];
            let param = |k: &str| first.params.get(k).map(ParamValue::to_string).unwrap_or_else(|| "-".into());
            let mut row = vec![param("strategy"), param("lambda"), param("lr"), group.len().to_string()];
            for task in task_names {
                let values: Vec<f64> = group
                    .iter()
                    .filter_map(|r| {
                        r.final_metrics
                            .iter()
                            .find(|(k, _)| k.task == *task && k.split == "test" && k.metric == "accuracy")
                    })
                    .map(|(_, v)| *v)
                    .collect();
                row.push(mean_std(&values));
            }
            row
        })
        .collect();
    output::table(&header, &rows)
}

/// `mean ± sample std` with 4 decimals.
fn mean_std(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    format!("{mean:.4} ± {std:.4}")
}
