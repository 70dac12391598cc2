//! `mtl export`: every metric point with its run's fields and settings joined.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mtl_store::{ParamValue, RunId, RunRecord, Store};
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
    /// (alphabetical), then task, split, metric, epoch, value, is_result (true at the
    /// run's result epoch: see --epoch).
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    // Refused before the database is opened: the export must never land on what it reads.
    if let Some(path) = &args.out {
        crate::guard::Inputs::default().database(&args.selection.db).check_output(path, "--out")?;
    }
    let (store, runs, _) = args.selection.select()?;
    let written = match &args.out {
        Some(path) => crate::guard::write_atomically(path, |out| write_points(&args, &store, &runs, out)),
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = write_points(&args, &store, &runs, &mut out);
            match written.and_then(|()| Ok(out.flush()?)) {
                Ok(()) => Ok(()),
                Err(e) => match e.downcast::<std::io::Error>() {
                    // `mtl export | head`: the reader went away; that is not an error.
                    Ok(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    Ok(e) => Err(crate::terminal::OutputFailed(e).into()),
                    Err(other) => Err(other),
                },
            }
        }
    };
    written.map(|()| ExitCode::SUCCESS)
}

/// Writes every metric point of `runs` to `out` in the chosen format.
fn write_points(args: &ExportArgs, store: &Store, runs: &[RunRecord], out: &mut dyn Write) -> anyhow::Result<()> {
    let by_id: BTreeMap<RunId, &RunRecord> = runs.iter().map(|r| (r.id, r)).collect();
    let settings: Vec<&String> =
        runs.iter().flat_map(|r| r.params.keys()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut first = true;
    let mut header: Vec<String> = ["run_id", "experiment", "trial_key", "status"].map(String::from).to_vec();
    header.extend(settings.iter().map(|s| s.to_string()));
    header.extend(["task", "split", "metric", "epoch", "value", "is_result"].map(String::from));
    let mut result = match args.format {
        ExportFormat::Csv => writeln!(out, "{}", csv_line(&header)),
        ExportFormat::Json => write!(out, "["),
    };
    let walked = store.for_each_metric_point(args.selection.experiment.as_deref(), |point| {
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
                let is_result = run.result_epoch() == Some(point.epoch);
                cells.extend([point.epoch.to_string(), point.value.to_string(), is_result.to_string()]);
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
                object.insert("is_result".into(), json!(run.result_epoch() == Some(point.epoch)));
                let separator = if first { "\n" } else { ",\n" };
                first = false;
                write!(out, "{separator}{}", Value::Object(object))
            }
        };
    });
    walked?;
    if args.format == ExportFormat::Json {
        result = result.and_then(|()| writeln!(out, "{}]", if first { "" } else { "\n" }));
    }
    Ok(result?)
}
