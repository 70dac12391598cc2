//! The JSON the page reads: experiments, runs, one run, curves. Each answer is built
//! from the runs of one [`crate::data::Snapshot`] with the functions the CLI uses
//! (`mtl ls`'s filter and sort, `mtl compare`'s groups), so the page and the
//! terminal show the same numbers. The shapes are documented in docs/dashboard.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mtl_report::compare::{compare, default_group_by, CompareSpec, Standing};
use mtl_report::groups::{describe, differing_settings};
use mtl_report::stats::seed_stats;
use mtl_store::filter::Filter;
use mtl_store::listing::{known_keys, sort_runs, unknown_key, SortKey, LEADING};
use mtl_store::{DiagnosticRow, MetricKey, MetricRow, ParamValue, RunRecord, RunStatus, Store, StoreError};
use serde_json::{json, Map, Value};

/// A request the API cannot answer: its HTTP status and what to show.
#[derive(Debug)]
pub struct ApiError {
    /// 400, 404, 503 …
    pub status: u16,
    /// The message, shown as text.
    pub message: String,
    /// For a filter or sort: the character offset of the offending part.
    pub at: Option<usize>,
}

impl ApiError {
    /// The status of a database that cannot be read (missing, broken, another version).
    pub const DATABASE: u16 = 503;

    pub(crate) fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), at: None }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        // The database is missing, broken or of another version: the page says so.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        ApiError::new(ApiError::DATABASE, message)
    }
}

/// The status names, in the order the page shows them.
const STATUSES: [RunStatus; 5] =
    [RunStatus::Done, RunStatus::Running, RunStatus::Failed, RunStatus::Interrupted, RunStatus::Pruned];

/// Every experiment: its runs by status, last activity, revision, tasks and verdict.
pub fn experiments(runs: &[RunRecord], db: &Path) -> Value {
    // The verdict is `mtl best`'s: `mtl compare`'s default groups, the highest Δm%.
    let comparison =
        compare(runs, &CompareSpec { group_by: default_group_by(&known_keys(runs)), ..Default::default() });
    let keys = comparison.keys();
    let mut by_experiment: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
    for run in runs {
        by_experiment.entry(&run.experiment).or_default().push(run);
    }
    let list: Vec<Value> = by_experiment
        .into_iter()
        .map(|(name, runs)| {
            let by_status: Map<String, Value> = STATUSES
                .iter()
                .map(|s| (s.as_str().to_string(), json!(runs.iter().filter(|r| r.status == *s).count())))
                .collect();
            let last_activity =
                runs.iter().flat_map(|r| [&r.started_at, &r.ended_at, &r.heartbeat_at]).flatten().max().cloned();
            let tasks: BTreeSet<&str> =
                runs.iter().flat_map(|r| r.result_metrics().keys().map(|k| k.task.as_str())).collect();
            let best =
                comparison.rows.iter().find(|row| row.experiment == name && row.standing == Some(Standing::Best));
            let verdict = best.and_then(|row| {
                let delta = row.delta_m.as_ref()?;
                Some(json!({
                    "group": row.describe(&keys),
                    "baseline": row.baseline,
                    "delta_m": finite(delta.value),
                    "low": delta.ci95.map(|c| c.0),
                    "high": delta.ci95.map(|c| c.1),
                }))
            });
            json!({
                "name": name,
                "total": runs.len(),
                "by_status": by_status,
                "last_activity": last_activity,
                "revision": runs.iter().map(|r| r.revision).max(),
                "tasks": tasks,
                "verdict": verdict,
            })
        })
        .collect();
    json!({ "db": db.display().to_string(), "experiments": list })
}

/// The most keys a sort takes (each costs a lookup per comparison).
pub const MAX_SORT_KEYS: usize = 8;

/// Which rows of a listing to send: the first `limit` after `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// Rows skipped.
    pub offset: usize,
    /// Rows sent at most.
    pub limit: usize,
}

impl Page {
    /// What the page asks for first.
    pub const FIRST: Page = Page { offset: 0, limit: 500 };
    /// The most rows one answer holds.
    pub const MAX_LIMIT: usize = 10_000;
}

/// The runs of `experiment` that match `filter`, sorted by `sort` (`mtl ls`'s rules),
/// `page` of them with their values; the columns with whether every run of the
/// experiment has the same value in them.
pub fn runs(
    all: &[RunRecord],
    experiment: &str,
    filter: Option<&str>,
    sort: Option<&str>,
    page: Page,
    host: &str,
) -> Result<Value, ApiError> {
    let of_experiment = runs_of(all, experiment)?;
    let known = known_keys(of_experiment.iter().copied());
    let mut runs = of_experiment.clone();
    if let Some(text) = filter.filter(|t| !t.trim().is_empty()) {
        let parsed = Filter::parse(text).map_err(|e| ApiError {
            status: 400,
            at: Some(text[..e.position].chars().count()),
            message: e.message,
        })?;
        check_keys(text, parsed.keys().iter().map(|(k, at)| (k.as_str(), *at)), &known)?;
        runs.retain(|run| parsed.matches(run));
    }
    if let Some(text) = sort.filter(|t| !t.trim().is_empty()) {
        let keys = SortKey::parse_list(text);
        if keys.len() > MAX_SORT_KEYS {
            return Err(ApiError::new(400, format!("sort by at most {MAX_SORT_KEYS} keys, not {}", keys.len())));
        }
        check_keys(text, keys.iter().map(|k| (k.key.as_str(), k.at)), &known)?;
        sort_runs(&mut runs, &keys);
    }
    let rows: Vec<Value> = runs
        .iter()
        .skip(page.offset)
        .take(page.limit.min(Page::MAX_LIMIT))
        .map(|run| {
            json!({
                "id": run.id,
                "status": run.status,
                "values": values_of(run),
                "tags": run.tags,
                "note": run.note,
                "error": run.shown_error(host),
                "progress": progress(run, host),
            })
        })
        .collect();
    let columns: Vec<Value> = columns(&of_experiment)
        .iter()
        .map(
            |column| json!({ "key": column.key(), "kind": column.kind(), "constant": column.constant(&of_experiment) }),
        )
        .collect();
    Ok(json!({
        "experiment": experiment,
        "columns": columns,
        "rows": rows,
        "offset": page.offset,
        "total": of_experiment.len(),
        "matched": runs.len(),
        "keys": known,
    }))
}

/// One run: its settings, provenance, every curve and diagnostic, its artifacts.
pub fn run(all: &[RunRecord], store: &Store, id: i64, host: &str) -> Result<Value, ApiError> {
    let run = all
        .iter()
        .find(|r| r.id.0 == id)
        .ok_or_else(|| ApiError::new(404, format!("no run {id} (archived runs are not shown)")))?;
    let settings: Map<String, Value> = run.params.iter().map(|(k, v)| (k.clone(), param_json(v))).collect();
    let artifacts: Vec<Value> = store
        .artifact_files(run.id)?
        .into_iter()
        .map(|(name, path, sha256)| json!({ "name": name, "path": path, "sha256": sha256 }))
        .collect();
    Ok(json!({
        "id": run.id,
        "experiment": run.experiment,
        "status": run.status,
        "error": run.shown_error(host),
        "trial_key": run.trial_key,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "attempts": run.attempts,
        "revision": run.revision,
        "settings": settings,
        "provenance": run.provenance,
        "tags": run.tags,
        "note": run.note,
        "progress": progress(run, host),
        "result_epoch": run.result_epoch(),
        "best_epoch": run.best_epoch,
        "final_epoch": run.final_epoch,
        "curves": curves_json(&store.metric_rows(&[run.id])?),
        "diagnostics": diagnostics_json(&store.diagnostic_rows(&[run.id])?),
        "artifacts": artifacts,
    }))
}

/// The most runs one overlay draws.
pub const MAX_OVERLAY_RUNS: usize = 200;

/// Learning curves of `ids`: one series per run, or with `mean` one series of their
/// mean and sample standard deviation per epoch (over the runs that logged it).
pub fn curves(all: &[RunRecord], store: &Store, ids: &[i64], mean: bool) -> Result<Value, ApiError> {
    let mut seen = BTreeSet::new();
    let ids: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    if ids.len() > MAX_OVERLAY_RUNS {
        return Err(ApiError::new(400, format!("at most {MAX_OVERLAY_RUNS} runs can be overlaid, not {}", ids.len())));
    }
    let runs: Vec<&RunRecord> = ids
        .iter()
        .map(|id| all.iter().find(|r| r.id.0 == *id).ok_or_else(|| ApiError::new(404, format!("no run {id}"))))
        .collect::<Result<_, _>>()?;
    let run_ids: Vec<_> = runs.iter().map(|r| r.id).collect();
    let rows = store.metric_rows(&run_ids)?;
    let names = differing_settings(runs.iter().copied(), &[]);
    let label = |run: &RunRecord| {
        if names.is_empty() {
            format!("run {}", run.id.0)
        } else {
            format!("run {} · {}", run.id.0, describe(run, &names))
        }
    };
    let series = match mean {
        true => {
            let label = match runs.first() {
                Some(first) => format!("mean of {} runs · {}", runs.len(), describe(first, &group_names(&runs))),
                None => "no runs".to_string(),
            };
            vec![json!({ "label": label, "runs": run_ids, "curves": curve_stats(&rows) })]
        }
        false => runs
            .iter()
            .map(|run| {
                let own: Vec<MetricRow> = rows.iter().filter(|r| r.run == run.id).cloned().collect();
                json!({ "label": label(run), "runs": [run.id], "curves": curve_stats(&own) })
            })
            .collect(),
    };
    Ok(json!({ "series": series }))
}

/// The settings that name a seed group in an overlay's legend: the leading ones it has, but the seed.
fn group_names(runs: &[&RunRecord]) -> Vec<String> {
    let mut names: Vec<String> = LEADING.iter().filter(|k| **k != "seed").map(|k| k.to_string()).collect();
    names.retain(|name| runs.iter().any(|r| r.params.contains_key(name)));
    names
}

/// The runs of one experiment, or 404 naming the experiments there are.
pub(crate) fn runs_of<'a>(all: &'a [RunRecord], experiment: &str) -> Result<Vec<&'a RunRecord>, ApiError> {
    let runs: Vec<&RunRecord> = all.iter().filter(|r| r.experiment == experiment).collect();
    if runs.is_empty() {
        let known: BTreeSet<&str> = all.iter().map(|r| r.experiment.as_str()).collect();
        let known: Vec<&str> = known.into_iter().collect();
        return Err(ApiError::new(
            404,
            format!("no experiment named {experiment:?}; known experiments: {}", known.join(", ")),
        ));
    }
    Ok(runs)
}

/// The first key no run has, as a 400 whose `at` counts characters (as the page does).
fn check_keys<'a>(
    text: &str,
    keys: impl IntoIterator<Item = (&'a str, usize)>,
    known: &BTreeSet<String>,
) -> Result<(), ApiError> {
    match unknown_key(keys, known) {
        // The page draws the caret under `at` itself.
        Some((key, at)) => {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            let message = format!("unknown key {key:?}; known keys: {}", list.join(", "));
            Err(ApiError { status: 400, message, at: Some(text[..at].chars().count()) })
        }
        None => Ok(()),
    }
}

/// A run's row: built-in keys, settings, result metrics and tags, by the keys a filter names them.
fn values_of(run: &RunRecord) -> Map<String, Value> {
    let mut values = Map::new();
    values.insert("id".into(), json!(run.id));
    values.insert("status".into(), json!(run.status));
    values.insert("revision".into(), json!(run.revision));
    values.extend(run.params.iter().map(|(k, v)| (k.clone(), param_json(v))));
    values.extend(run.result_metrics().iter().map(|(k, v)| (k.to_string(), finite(*v))));
    values.extend(run.tags.iter().map(|(k, v)| (format!("tag.{k}"), json!(v))));
    values
}

/// A column of the runs table.
enum Column {
    Id,
    Status,
    Revision,
    Setting(String),
    Metric(MetricKey),
    Tag(String),
}

impl Column {
    /// The key a filter, sort and the row's values name it by.
    fn key(&self) -> String {
        match self {
            Column::Id => "id".into(),
            Column::Status => "status".into(),
            Column::Revision => "revision".into(),
            Column::Setting(name) => name.clone(),
            Column::Metric(key) => key.to_string(),
            Column::Tag(name) => format!("tag.{name}"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Column::Id | Column::Status | Column::Revision => "builtin",
            Column::Setting(_) => "setting",
            Column::Metric(_) => "metric",
            Column::Tag(_) => "tag",
        }
    }

    /// Whether every run has the same value here (compared in place: no copies).
    fn constant(&self, runs: &[&RunRecord]) -> bool {
        fn same<'a, T: PartialEq>(runs: &[&'a RunRecord], value: impl Fn(&'a RunRecord) -> T) -> bool {
            let mut values = runs.iter().map(|r| value(r));
            let first = values.next();
            values.all(|v| Some(v) == first)
        }
        match self {
            Column::Id => runs.len() < 2,
            Column::Status => same(runs, |r| r.status),
            Column::Revision => same(runs, |r| r.revision),
            Column::Setting(name) => same(runs, |r| r.params.get(name)),
            Column::Metric(key) => same(runs, |r| r.result_metrics().get(key).copied()),
            Column::Tag(name) => same(runs, |r| r.tags.get(name)),
        }
    }
}

/// The columns of a runs table: id and status, the leading settings, the test metrics
/// (what a reader looks for first), the other settings and metrics, the tags.
fn columns(runs: &[&RunRecord]) -> Vec<Column> {
    let mut columns = vec![Column::Id, Column::Status];
    if runs.iter().any(|r| r.revision > 1) {
        columns.push(Column::Revision);
    }
    let settings: BTreeSet<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
    let leading = LEADING.iter().filter_map(|k| settings.iter().find(|s| **s == k).copied());
    columns.extend(leading.map(|k| Column::Setting(k.clone())));
    let metrics: BTreeSet<&MetricKey> = runs.iter().flat_map(|r| r.result_metrics().keys()).collect();
    columns.extend(metrics.iter().filter(|k| k.split == "test").map(|k| Column::Metric((*k).clone())));
    columns.extend(settings.iter().filter(|s| !LEADING.contains(&s.as_str())).map(|k| Column::Setting((*k).clone())));
    columns.extend(metrics.iter().filter(|k| k.split != "test").map(|k| Column::Metric((*k).clone())));
    let tags: BTreeSet<&String> = runs.iter().flat_map(|r| r.tags.keys()).collect();
    columns.extend(tags.into_iter().map(|k| Column::Tag(k.clone())));
    columns
}

/// A running trial's epoch, planned epochs and the time left, as of its last heartbeat
/// (written with each epoch), at the pace of its epochs so far; null for a run whose
/// process on this machine has ended (its `error` says so, as in `mtl ls`).
fn progress(run: &RunRecord, host: &str) -> Value {
    if run.status != RunStatus::Running || run.owner_ended(host).is_some() {
        return Value::Null;
    }
    let epochs = match run.params.get("epochs") {
        Some(ParamValue::Num(n)) => Some(*n),
        _ => None,
    };
    let epoch = run.final_epoch.unwrap_or(0);
    let seconds = |t: &Option<String>| {
        chrono::DateTime::parse_from_rfc3339(t.as_deref()?).ok().map(|t| t.timestamp_millis() as f64 / 1000.0)
    };
    let eta = match (epochs, seconds(&run.started_at), seconds(&run.heartbeat_at)) {
        (Some(n), Some(start), Some(beat)) if epoch > 0 && beat >= start => {
            Some((beat - start) / f64::from(epoch) * (n - f64::from(epoch)).max(0.0))
        }
        _ => None,
    };
    json!({ "epoch": epoch, "epochs": epochs, "eta_s": eta })
}

/// `[epoch, mean, std]` per epoch of every (task, split, metric) in `rows`.
fn curve_stats(rows: &[MetricRow]) -> Vec<Value> {
    let mut by_series: BTreeMap<(&str, &str, &str), BTreeMap<u32, Vec<f64>>> = BTreeMap::new();
    for row in rows {
        let key = (row.key.task.as_str(), row.key.split.as_str(), row.key.metric.as_str());
        by_series.entry(key).or_default().entry(row.epoch).or_default().push(row.value);
    }
    by_series
        .into_iter()
        .map(|((task, split, metric), by_epoch)| {
            let points: Vec<Value> = by_epoch
                .into_iter()
                .filter_map(|(epoch, values)| {
                    let stats = seed_stats(&values)?;
                    Some(json!([epoch, stats.mean, stats.std]))
                })
                .collect();
            json!({ "task": task, "split": split, "metric": metric, "points": points })
        })
        .collect()
}

fn curves_json(rows: &[MetricRow]) -> Vec<Value> {
    let mut by_series: BTreeMap<(&str, &str, &str), Vec<Value>> = BTreeMap::new();
    for row in rows {
        let key = (row.key.task.as_str(), row.key.split.as_str(), row.key.metric.as_str());
        by_series.entry(key).or_default().push(json!([row.epoch, finite(row.value)]));
    }
    by_series
        .into_iter()
        .map(|((task, split, metric), points)| json!({ "task": task, "split": split, "metric": metric, "points": points }))
        .collect()
}

fn diagnostics_json(rows: &[DiagnosticRow]) -> Vec<Value> {
    let mut by_series: BTreeMap<(&str, &str, &str), Vec<Value>> = BTreeMap::new();
    for row in rows {
        let p = &row.point;
        by_series.entry((&p.name, &p.task, &p.other)).or_default().push(json!([row.step, finite(p.value)]));
    }
    by_series
        .into_iter()
        .map(|((name, task, other), points)| json!({ "name": name, "task": task, "other": other, "points": points }))
        .collect()
}

/// A setting as JSON: numbers as numbers (non-finite ones as null), text as text.
pub(crate) fn param_json(value: &ParamValue) -> Value {
    match value {
        ParamValue::Num(x) => finite(*x),
        ParamValue::Text(s) => Value::String(s.clone()),
    }
}

/// JSON has no NaN or infinity: they are null.
pub(crate) fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}
