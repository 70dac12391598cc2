//! `mtl ls`: runs with their settings and final per-task metrics.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use mtl_store::{ParamValue, RunRecord, Store};
use serde_json::{json, Map, Value};

use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct LsArgs {
    /// The results database.
    #[arg(long, default_value = "mtl.db")]
    db: PathBuf,
    /// Only runs of this experiment.
    #[arg(long)]
    experiment: Option<String>,
    /// Output format; csv and json list every final metric, the table only test accuracy.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Settings shown first, in this order; any others follow alphabetically.
const LEADING: [&str; 5] = ["strategy", "weighting", "lambda", "lr", "seed"];

pub fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&args.db)?;
    let runs = store.runs(args.experiment.as_deref())?;
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&Value::Array(runs.iter().map(run_json).collect()))? + "\n",
        Format::Table | Format::Csv => {
            let mut params: Vec<String> = LEADING.map(String::from).to_vec();
            let others: BTreeSet<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
            params.extend(others.into_iter().filter(|k| !LEADING.contains(&k.as_str())).cloned());
            let metrics: BTreeSet<_> = runs
                .iter()
                .flat_map(|r| r.final_metrics.keys())
                .filter(|k| args.format == Format::Csv || (k.split == "test" && k.metric == "accuracy"))
                .cloned()
                .collect();
            if args.format == Format::Table {
                params.retain(|p| LEADING.contains(&p.as_str()));
            }
            let mut header: Vec<String> = ["id", "experiment", "status"].map(String::from).to_vec();
            header.extend(params.iter().cloned());
            header.extend(metrics.iter().map(|k| k.to_string()));
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|run| {
                    let mut row = vec![run.id.0.to_string(), run.experiment.clone(), run.status.as_str().to_string()];
                    row.extend(
                        params.iter().map(|p| run.params.get(p).map(ParamValue::to_string).unwrap_or("-".into())),
                    );
                    row.extend(metrics.iter().map(|k| output::value(run.final_metrics.get(k).copied())));
                    row
                })
                .collect();
            if args.format == Format::Csv {
                output::csv(&header, &rows)
            } else {
                output::table(&header, &rows)
            }
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn run_json(run: &RunRecord) -> Value {
    let settings: Map<String, Value> =
        run.params.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null))).collect();
    let metrics: Map<String, Value> = run.final_metrics.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({
        "id": run.id,
        "experiment": run.experiment,
        "trial_key": run.trial_key,
        "status": run.status,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": run.error,
        "settings": settings,
        "final_epoch": run.final_epoch,
        "final_metrics": metrics,
    })
}
