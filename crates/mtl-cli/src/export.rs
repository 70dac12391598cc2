//! `mtl export`: every metric point with its run's fields and settings joined.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mtl_store::{ParamValue, RunId, RunRecord};
use serde_json::{json, Map, Value};

use crate::ls::Selection;
use crate::output::csv_line;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One row per metric point with a header row (RFC 4180).
    Csv,
    /// One JSON array of objects, one per metric point.
    Json,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    selection: Selection,
    /// Output format. Columns: run_id, experiment, trial_key, status, every setting
    /// (alphabetical), then task, split, metric, epoch, value.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let (store, runs, _) = args.selection.select()?;
    let by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|r| (r.id, r)).collect();
    let settings: Vec<&String> =
        runs.iter().flat_map(|r| r.params.keys()).collect::<BTreeSet<_>>().into_iter().collect();
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(sink);
    let mut first = true;
    let mut header: Vec<String> = ["run_id", "experiment", "trial_key", "status"].map(String::from).to_vec();
    header.extend(settings.iter().map(|s| s.to_string()));
    header.extend(["task", "split", "metric", "epoch", "value"].map(String::from));
    let mut result = match args.format {
        ExportFormat::Csv => writeln!(out, "{}", csv_line(&header)),
        ExportFormat::Json => write!(out, "["),
    };
    store.for_each_metric_point(args.selection.experiment.as_deref(), |point| {
        let Some(run) = by_id.get(&point.run) else { return };
        if result.is_err() {
            return;
        }
        result = match args.format {
            ExportFormat::Csv => {
                let mut cells = vec![
                    run.id.0.to_string(),
                    run.experiment.clone(),
                    run.trial_key.clone(),
                    run.status.as_str().into(),
                ];
                cells.extend(settings.iter().map(|s| run.params.get(*s).map_or(String::new(), ParamValue::to_string)));
                let key = &point.key;
                cells.extend([key.task.clone(), key.split.clone(), key.metric.clone()]);
                cells.extend([point.epoch.to_string(), point.value.to_string()]);
                writeln!(out, "{}", csv_line(&cells))
            }
            ExportFormat::Json => {
                let mut object = Map::new();
                object.insert("run_id".into(), json!(run.id));
                object.insert("experiment".into(), json!(run.experiment));
                object.insert("trial_key".into(), json!(run.trial_key));
                object.insert("status".into(), json!(run.status));
                for setting in &settings {
                    let value = run.params.get(*setting).map_or(Value::Null, |v| json!(v));
                    object.insert(setting.to_string(), value);
                }
                object.insert("task".into(), json!(point.key.task));
                object.insert("split".into(), json!(point.key.split));
                object.insert("metric".into(), json!(point.key.metric));
                object.insert("epoch".into(), json!(point.epoch));
                object.insert("value".into(), json!(point.value));
                let separator = if first { "\n" } else { ",\n" };
                first = false;
                write!(out, "{separator}{}", Value::Object(object))
            }
        };
    })?;
    if args.format == ExportFormat::Json {
        result = result.and_then(|()| writeln!(out, "{}]", if first { "" } else { "\n" }));
    }
    match result.and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `mtl export | head`: the reader went away; that is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}
