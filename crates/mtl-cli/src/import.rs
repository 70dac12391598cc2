//! `mtl import mlflow`: runs logged with MLflow brought into the results database, so that
//! `ls`, `compare`, `best` and the report read them like runs mtl-lab trained.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use mtl_runner::import::{import_mlflow, ImportError, ImportOptions, KeyPattern};
use mtl_store::Store;

use crate::BadInput;

#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// Runs of an MLflow experiment from its SQLite database (`mlflow.db`) or file store (`mlruns/`).
    ///
    /// Each run becomes a run of the experiment --into (default: the MLflow experiment's
    /// name): params become settings, metrics per step become metrics per epoch (the first
    /// step is epoch 1), user tags become tags. A metric key is read by --metric-pattern;
    /// keys that do not match are listed and skipped. Importing again changes nothing but
    /// runs whose MLflow status changed.
    ///
    /// Example: mtl import mlflow mlruns --experiment multimnist --metric-pattern "{split}_{task}_{metric}"
    ///          --name acc=accuracy --param seed=random_seed --param strategy=sharing
    Mlflow(MlflowArgs),
}

#[derive(clap::Args)]
pub struct MlflowArgs {
    /// MLflow's SQLite tracking database (`mlflow.db`; a tracking URI `sqlite:///mlflow.db`
    /// is read as that file), or its file store (the `mlruns/` folder, or `file://…/mlruns`).
    path: PathBuf,
    /// The MLflow experiment: its name or its id.
    #[arg(long)]
    experiment: String,
    /// The experiment the runs go into (default: --experiment).
    #[arg(long)]
    into: Option<String>,
    /// How a metric key names its task, split (train, val or test) and metric: literal text
    /// around {task}, {split} and {metric}, each once.
    #[arg(long, value_name = "PATTERN", default_value = "{task}/{split}/{metric}")]
    metric_pattern: String,
    /// A name replaced in any part of a metric key after matching, FROM=TO (e.g. acc=accuracy,
    /// valid=val); repeat for several.
    #[arg(long = "name", value_name = "FROM=TO")]
    names: Vec<String>,
    /// A param renamed, SETTING=MLFLOW (e.g. seed=random_seed reads MLflow's random_seed as
    /// the seed `compare` groups over; strategy=… names the single-task baselines); repeat for several.
    #[arg(long = "param", value_name = "SETTING=MLFLOW")]
    params: Vec<String>,
    /// The results database (created if absent).
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
}

pub fn import(command: ImportCommand) -> anyhow::Result<ExitCode> {
    let ImportCommand::Mlflow(args) = command;
    let pairs = |given: &[String], option: &str| -> anyhow::Result<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        for pair in given {
            match pair.split_once('=') {
                Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                    map.insert(from.to_string(), to.to_string());
                }
                _ => return Err(BadInput(format!("--{option} {pair:?}: write FROM=TO")).into()),
            }
        }
        Ok(map)
    };
    let names = pairs(&args.names, "name")?;
    // Given as SETTING=MLFLOW; looked up by MLflow's name.
    let params = pairs(&args.params, "param")?.into_iter().map(|(setting, mlflow)| (mlflow, setting)).collect();
    let pattern = KeyPattern::parse(&args.metric_pattern).map_err(|e| BadInput(e.to_string()))?;
    // Everything is read and checked before the database is opened.
    let given = args.path.to_string_lossy();
    let path = match given.strip_prefix("sqlite:///").or_else(|| given.strip_prefix("file://")) {
        Some(rest) => PathBuf::from(rest),
        None => args.path.clone(),
    };
    let runs = if path.is_dir() {
        mtl_data::formats::mlflow::read_experiment(&path, &args.experiment)?
    } else {
        mtl_runner::import::runs_from_sqlite(mtl_store::mlflow::read_mlflow_sqlite(&path, &args.experiment)?)
    };
    let experiment = args.into.unwrap_or_else(|| args.experiment.clone());
    let source = format!("mlflow:{} (experiment {})", args.path.display(), args.experiment);
    let options = ImportOptions { experiment: experiment.clone(), pattern, names, params, source };
    let mut store = Store::open(&args.db)?;
    let summary = import_mlflow(&mut store, &runs, &options).map_err(|e| match e {
        ImportError::Options(message) => anyhow::Error::from(BadInput(message)),
        other => other.into(),
    })?;
    outln!(
        "imported {} run(s) into experiment {experiment} ({} already there unchanged) from {} MLflow run(s)",
        summary.imported,
        summary.unchanged,
        runs.len()
    )?;
    if !summary.skipped_keys.is_empty() {
        let keys: Vec<&str> = summary.skipped_keys.iter().map(String::as_str).collect();
        note!(
            "skipped metric keys that do not match {:?} or name no split train, val or test: {}",
            args.metric_pattern,
            keys.join(", ")
        );
    }
    if summary.non_finite > 0 {
        note!("left out {} logged value(s) that are not finite numbers", summary.non_finite);
    }
    Ok(ExitCode::SUCCESS)
}
