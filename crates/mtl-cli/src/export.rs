//! `mtl export`: every metric point with its run's fields and settings joined.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mtl_store::{RunId, RunRecord, Store};
use serde_json::{Map, Value};

use crate::ls::Selection;
use crate::output::{self, Cell};

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
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
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
        ExportFormat::Csv => out.write_all(output::csv_record(&header).as_bytes()),
        ExportFormat::Json => write!(out, "["),
    };
    let walked = store.for_each_metric_point(args.selection.experiment.as_deref(), |point| {
        let Some(run) = by_id.get(&point.run) else { return };
        if result.is_err() {
            return;
        }
        // One row of cells, in the header's order; `is_result` stays a boolean in JSON.
        let key = &point.key;
        let is_result = run.result_epoch() == Some(point.epoch);
        let mut cells = vec![
            Cell::Int(run.id.0),
            Cell::Text(run.experiment.clone()),
            Cell::Text(run.trial_key.clone()),
            Cell::Text(run.status.as_str().into()),
        ];
        cells.extend(settings.iter().map(|s| Cell::param(run.params.get(*s))));
        cells.extend([key.task.clone(), key.split.clone(), key.metric.clone()].map(Cell::Text));
        cells.extend([Cell::Int(point.epoch.into()), Cell::Metric(point.value)]);
        result = match args.format {
            ExportFormat::Csv => {
                let record = output::csv_record(cells.iter().map(Cell::csv).chain([is_result.to_string()]));
                out.write_all(record.as_bytes())
            }
            ExportFormat::Json => {
                let mut object: Map<String, Value> =
                    header.iter().zip(&cells).map(|(name, cell)| (name.clone(), cell.json())).collect();
                object.insert("is_result".into(), Value::Bool(is_result));
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
