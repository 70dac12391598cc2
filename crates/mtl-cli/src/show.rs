//! `mtl show RUN`: one run's fields, provenance, settings, a per-epoch table per
//! task and a summary of its training diagnostics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use mtl_store::{DiagnosticRow, ParamValue, RunRecord, Store};
use serde_json::{json, Map, Value};

use crate::output;
use crate::BadInput;

#[derive(clap::Args)]
pub struct ShowArgs {
    /// The run: its id (as `mtl ls` lists it) or its trial key (a unique prefix of 6 or more characters will do).
    run: String,
    /// The results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
    /// Which epoch is the run's result (marked * in the tables): best-val or last.
    /// Default: the experiment file's `result_epoch`.
    #[arg(long, value_name = "RULE", value_parser = crate::ls::parse_result_epoch)]
    epoch: Option<mtl_store::ResultEpoch>,
    /// Output format (no csv: a run is several tables; `mtl export --where "id = N"` gives its points as CSV).
    #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
    format: ShowFormat,
}

/// What `mtl show` prints: one run is several tables, so CSV is not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    /// The run's fields, settings and per-epoch tables, for people.
    Table,
    /// Everything in one JSON object, at full precision.
    Json,
}

pub fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&args.db)?;
    let mut run = find_run(&store, &args.run, &args.db)?;
    if let Some(rule) = args.epoch {
        run.result_rule = rule;
    }
    let metrics = store.metric_rows(&[run.id])?;
    let diagnostics = store.diagnostic_rows(&[run.id])?;
    // Per task: epoch → split.metric → value.
    let mut by_task: BTreeMap<&str, BTreeMap<u32, BTreeMap<String, f64>>> = BTreeMap::new();
    for row in &metrics {
        let series = format!("{}.{}", row.key.split, row.key.metric);
        by_task.entry(&row.key.task).or_default().entry(row.epoch).or_default().insert(series, row.value);
    }
    let summaries = summarise(&diagnostics);
    let vocabularies = vocabularies(&store, &run, by_task.keys().copied())?;
    if args.format == ShowFormat::Json {
        let epochs: Map<String, Value> = by_task
            .iter()
            .map(|(task, epochs)| {
                let rows: Vec<Value> = epochs
                    .iter()
                    .map(|(epoch, values)| {
                        let mut object: Map<String, Value> =
                            values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                        object.insert("epoch".into(), json!(epoch));
                        Value::Object(object)
                    })
                    .collect();
                (task.to_string(), Value::Array(rows))
            })
            .collect();
        let diagnostics: Vec<Value> = summaries
            .iter()
            .map(|(key, s)| json!({"name": key.0, "task": key.1, "other": key.2, "windows": s.n, "first": s.first, "last": s.last, "mean": s.mean, "min": s.min, "max": s.max}))
            .collect();
        let settings: Map<String, Value> =
            run.params.iter().map(|(k, v)| (k.clone(), output::Cell::param(Some(v)).json())).collect();
        let vocabularies_json: Vec<Value> = vocabularies
            .iter()
            .map(|v| json!({"artifact": v.artifact, "tasks": v.tasks, "tokens": v.tokens}))
            .collect();
        let out = json!({
            "id": run.id, "experiment": run.experiment, "trial_key": run.trial_key, "status": run.status,
            "started_at": run.started_at, "ended_at": run.ended_at, "error": run.error,
            "provenance": run.provenance, "experiment_sha256": run.experiment_sha256,
            "result_rule": run.result_rule.name(), "result_epoch": run.result_epoch(),
            "best_epoch": run.best_epoch, "final_epoch": run.final_epoch, "revision": run.revision,
            "settings": settings, "epochs": epochs, "diagnostics": diagnostics,
            "vocabularies": vocabularies_json,
            "tags": run.tags, "note": run.note, "archived": run.archived,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut out = format!("run {} · experiment {} · {}\n", run.id.0, run.experiment, run.status.as_str());
    out.push_str(&format!("trial key   {}\n", run.trial_key));
    let time = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
    out.push_str(&format!("started     {}\nended       {}\n", time(&run.started_at), time(&run.ended_at)));
    if let Some(error) = &run.error {
        out.push_str(&format!("error       {error}\n"));
    }
    let p = &run.provenance;
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    out.push_str(&format!(
        "file        {} (revision {}, sha256 {})\nmtl-lab     {} · git {} · host {}\n",
        or_dash(&p.experiment_file),
        run.revision,
        or_dash(&run.experiment_sha256),
        or_dash(&p.mtl_version),
        or_dash(&p.git_commit),
        or_dash(&p.host)
    ));
    for vocabulary in &vocabularies {
        let whose = match vocabulary.tasks.as_slice() {
            [] => String::new(),
            [task] => format!("of {task}: "),
            tasks => format!("shared by {}: ", tasks.join(", ")),
        };
        out.push_str(&format!("vocabulary  {whose}{} tokens (<pad> and <oov> included)\n", vocabulary.tokens));
    }
    out.push_str(&format!("result      {}\n", describe_result(&run)));
    if run.archived {
        out.push_str("archived    yes (`mtl restore` brings it back)\n");
    }
    if !run.tags.is_empty() {
        let tags: Vec<String> = run.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("tags        {}\n", tags.join(", ")));
    }
    if let Some(note) = &run.note {
        out.push_str(&format!("note        {note}\n"));
    }
    let settings: Vec<Vec<String>> = run.params.iter().map(|(k, v)| vec![k.clone(), setting_text(k, v)]).collect();
    out.push_str("\nsettings\n");
    out.push_str(&output::table(&["setting".into(), "value".into()], &settings));
    for (task, epochs) in &by_task {
        let series: Vec<String> = {
            let mut all: Vec<String> = epochs.values().flat_map(|v| v.keys().cloned()).collect();
            all.sort_by_key(|s| (split_rank(s), s.clone()));
            all.dedup();
            all
        };
        out.push_str(&format!("\ntask {task}\n"));
        let mut header = vec!["epoch".to_string()];
        header.extend(series.iter().cloned());
        let rows: Vec<Vec<String>> = epochs
            .iter()
            .map(|(epoch, values)| {
                let marker = if run.result_epoch() == Some(*epoch) { "*" } else { "" };
                std::iter::once(format!("{epoch}{marker}"))
                    .chain(series.iter().map(|s| output::Cell::metric(values.get(s).copied()).table()))
                    .collect()
            })
            .collect();
        out.push_str(&output::table(&header, &rows));
    }
    if !summaries.is_empty() {
        let windows = summaries.values().map(|s| s.n).max().unwrap_or(0);
        out.push_str(&format!("\ndiagnostics ({windows} logging windows)\n"));
        let header: Vec<String> =
            ["name", "task", "other", "first", "last", "mean", "min", "max"].map(String::from).to_vec();
        let rows: Vec<Vec<String>> = summaries
            .iter()
            .map(|((name, task, other), s)| {
                let mut row =
                    vec![name.clone(), task.clone(), if other.is_empty() { "-".into() } else { other.clone() }];
                row.extend([s.first, s.last, s.mean, s.min, s.max].map(|v| output::Cell::Metric(v).table()));
                row
            })
            .collect();
        out.push_str(&output::table(&header, &rows));
    }
    out!("{out}")?;
    Ok(ExitCode::SUCCESS)
}

/// train, then val, then test, then anything else.
/// A setting as the table shows it: durations (`train_seconds`, any `*_seconds`) to 0.1 s,
/// as more digits are timing noise; JSON keeps them in full.
fn setting_text(key: &str, value: &ParamValue) -> String {
    match value {
        ParamValue::Num(seconds) if key.ends_with("_seconds") && seconds.is_finite() => format!("{seconds:.1}"),
        other => other.to_string(),
    }
}

fn split_rank(series: &str) -> usize {
    ["train.", "val.", "test."].iter().position(|p| series.starts_with(p)).unwrap_or(3)
}

/// The run `wanted` names (archived ones too): its id or a unique trial-key prefix.
pub(crate) fn find_run(store: &Store, wanted: &str, db: &std::path::Path) -> anyhow::Result<RunRecord> {
    find_in(&store.runs_including_archived(None)?, wanted, db)
}

/// [`find_run`] among `runs`.
pub(crate) fn find_in(runs: &[RunRecord], wanted: &str, db: &std::path::Path) -> anyhow::Result<RunRecord> {
    // An id, else (6 characters or more) a trial-key prefix, which may be all digits.
    let by_id: Vec<&RunRecord> = match wanted.parse::<i64>() {
        Ok(id) => runs.iter().filter(|r| r.id.0 == id).collect(),
        Err(_) => Vec::new(),
    };
    let matches: Vec<&RunRecord> = match (by_id.is_empty(), wanted.len() >= 6) {
        (false, _) => by_id,
        (true, true) => runs.iter().filter(|r| r.trial_key.starts_with(wanted)).collect(),
        (true, false) if wanted.parse::<i64>().is_ok() => Vec::new(),
        (true, false) => {
            return Err(BadInput(format!("{wanted:?}: give a run id or at least 6 characters of a trial key")).into())
        }
    };
    match matches.as_slice() {
        [run] => Ok((*run).clone()),
        [] => Err(BadInput(format!("no run {wanted:?} in {} (`mtl ls` lists them)", db.display())).into()),
        several => Err(BadInput(format!(
            "{wanted:?} matches {} runs ({}); give more of the trial key or the id",
            several.len(),
            several.iter().map(|r| r.id.0.to_string()).collect::<Vec<_>>().join(", ")
        ))
        .into()),
    }
}

/// A vocabulary stored with a run.
struct StoredVocabulary {
    /// Its artifact's name.
    artifact: String,
    /// The tasks whose token ids it gives.
    tasks: Vec<String>,
    /// Its ids, PAD and OOV included.
    tokens: usize,
}

/// The vocabulary the run's text tasks share, or, for runs written before they shared one,
/// each of `tasks`' own (`vocabulary/<task>`).
fn vocabularies<'a>(
    store: &Store,
    run: &RunRecord,
    tasks: impl Iterator<Item = &'a str>,
) -> anyhow::Result<Vec<StoredVocabulary>> {
    // One token per line, in id order.
    let tokens = |content: Vec<u8>| String::from_utf8_lossy(&content).lines().count();
    let shared = mtl_runner::data::VOCABULARY_ARTIFACT;
    if let Some(content) = store.blob(run.id, shared)? {
        let tasks = match run.params.get("vocabulary_tasks") {
            Some(ParamValue::Text(names)) => names.split(',').map(String::from).collect(),
            _ => Vec::new(),
        };
        return Ok(vec![StoredVocabulary { artifact: shared.into(), tasks, tokens: tokens(content) }]);
    }
    let mut own = Vec::new();
    for task in tasks {
        let artifact = format!("vocabulary/{task}");
        if let Some(content) = store.blob(run.id, &artifact)? {
            own.push(StoredVocabulary { artifact, tasks: vec![task.to_string()], tokens: tokens(content) });
        }
    }
    Ok(own)
}

/// One diagnostic series over the logging windows.
struct Summary {
    n: usize,
    first: f64,
    last: f64,
    mean: f64,
    min: f64,
    max: f64,
}

/// (name, task, other) → its summary; rows come ordered by name, task, other, step.
fn summarise(rows: &[DiagnosticRow]) -> BTreeMap<(String, String, String), Summary> {
    let mut series: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for row in rows {
        let p = &row.point;
        series.entry((p.name.clone(), p.task.clone(), p.other.clone())).or_default().push(p.value);
    }
    series
        .into_iter()
        .map(|(key, values)| {
            let n = values.len();
            let summary = Summary {
                n,
                first: values[0],
                last: values[n - 1],
                mean: values.iter().sum::<f64>() / n as f64,
                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            };
            (key, summary)
        })
        .collect()
}

/// Each task's selecting metric: `accuracy` for every task, or `a accuracy, y r2`.
fn selecting(run: &RunRecord) -> String {
    let selection = run.selection();
    if selection.is_default() {
        return "accuracy".into();
    }
    let tasks: std::collections::BTreeSet<&String> = run.result_metrics().keys().map(|k| &k.task).collect();
    tasks.iter().map(|t| format!("{t} {}", selection.metric_for(t))).collect::<Vec<_>>().join(", ")
}

/// Which epoch stands for the run and why, in one line.
fn describe_result(run: &RunRecord) -> String {
    match (run.result_epoch(), run.result_rule, run.best_epoch) {
        (None, ..) => "no epoch logged".into(),
        (Some(epoch), mtl_store::ResultEpoch::BestVal, Some(_)) => format!(
            "epoch {epoch} (*): the best on validation, by the mean over the tasks of each task's selecting metric \
             ({}; one epoch for the whole run)",
            selecting(run)
        ),
        (Some(epoch), mtl_store::ResultEpoch::BestVal, None) => {
            format!("epoch {epoch} (*): the last, as the run has no validation metrics to choose by")
        }
        (Some(epoch), mtl_store::ResultEpoch::Last, _) => format!("epoch {epoch} (*): the last (rule: last)"),
    }
}
