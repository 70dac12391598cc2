//! `mtl ls`: runs with their settings and per-task results (each run at its result epoch).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mtl_store::filter::Filter;
use mtl_store::listing::{describe_unknown_key, known_keys, sort_runs, unknown_key, SortKey, LEADING};
use mtl_store::{override_result_epoch, ResultEpoch, RunRecord, Store};
use serde_json::{json, Map, Value};

use crate::output::{self, Cell, Format};
use crate::BadInput;

/// Which runs a listing reads: the database, an experiment, a filter.
#[derive(clap::Args)]
pub struct Selection {
    /// The results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    pub db: PathBuf,
    /// Only runs of this experiment.
    #[arg(long)]
    pub experiment: Option<String>,
    /// Only runs matching this filter, e.g.
    /// "strategy = 'hard' and (lambda >= 0.5 or reviews.test.accuracy > 0.85)".
    /// Keys: settings, result metrics (task.split.metric), id, experiment, status,
    /// trial_key, host, git_commit, mtl_version, experiment_file, attempts, revision, note,
    /// archived ('yes' or 'no'), tag.KEY (`mtl tag`). Operators: = != < <= > >=
    /// in (…) not in (…), and, or, not, ( ).
    #[arg(long = "where", value_name = "EXPR")]
    pub filter: Option<String>,
    /// Which epoch is each run's result: best-val (its best epoch on validation, by mean
    /// accuracy over tasks) or last. Default: the experiment file's `result_epoch`
    /// (best-val unless set). Metrics in filters, sorts and every column follow it.
    #[arg(long, value_name = "RULE", value_parser = parse_result_epoch)]
    pub epoch: Option<ResultEpoch>,
}

pub fn parse_result_epoch(text: &str) -> Result<ResultEpoch, String> {
    ResultEpoch::parse(text).ok_or_else(|| format!("expected one of: {}", ResultEpoch::NAMES.join(", ")))
}

impl Selection {
    /// Opens the database and returns the selected runs (see [`select_runs`]).
    pub fn select(&self) -> anyhow::Result<(Store, Vec<RunRecord>, BTreeSet<String>)> {
        select_runs(&self.db, self.experiment.as_deref(), self.filter.as_deref(), self.epoch, false)
    }

    /// Every run of the selected experiment(s), ignoring `--where` (e.g. for baselines).
    pub fn all_runs(&self, store: &Store) -> anyhow::Result<Vec<RunRecord>> {
        let mut runs = store.runs(self.experiment.as_deref())?;
        override_result_epoch(&mut runs, self.epoch);
        Ok(runs)
    }
}

#[derive(clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    selection: Selection,
    /// Sort by these comma-separated keys; a leading '-' sorts descending
    /// (e.g. "strategy,-reviews.test.accuracy"). Default: run id.
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    sort: Option<String>,
    /// List at most N runs, the first after sorting (the table says how many were left out).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Output format; csv and json list every metric of each run's result, the table only test accuracy.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Include archived runs (`mtl rm`), marked so in the status column.
    #[arg(long)]
    archived: bool,
}

pub fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let s = &args.selection;
    let (_, mut runs, known) =
        select_runs(&s.db, s.experiment.as_deref(), s.filter.as_deref(), s.epoch, args.archived)?;
    // A run left `running` by a process that has ended says so (the file changes at the next `mtl run`).
    let host = mtl_runner::provenance::host_name().unwrap_or_else(|| "localhost".into());
    for run in &mut runs {
        run.error = run.shown_error(&host);
    }
    if let Some(text) = &args.sort {
        let keys = SortKey::parse_list(text);
        check_keys(text, keys.iter().map(|k| (k.key.as_str(), k.at)), &known, "--sort")?;
        sort_runs(&mut runs, &keys);
    }
    let left_out = match args.limit {
        Some(limit) if runs.len() > limit => {
            let left_out = runs.len() - limit;
            runs.truncate(limit);
            left_out
        }
        _ => 0,
    };
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&Value::Array(runs.iter().map(run_json).collect()))? + "\n",
        Format::Table | Format::Csv => {
            let mut params: Vec<String> = LEADING.map(String::from).to_vec();
            let others: BTreeSet<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
            params.extend(others.into_iter().filter(|k| !LEADING.contains(&k.as_str())).cloned());
            let metrics: BTreeSet<_> = runs
                .iter()
                .flat_map(|r| r.result_metrics().keys())
                // The table: each task's headline metric on test (its selecting metric, e.g. accuracy).
                .filter(|k| {
                    args.format == Format::Csv
                        || (k.split == "test"
                            && runs
                                .iter()
                                .any(|r| r.result(k).is_some() && r.selection().metric_for(&k.task) == k.metric))
                })
                .cloned()
                .collect();
            if args.format == Format::Table {
                params.retain(|p| LEADING.contains(&p.as_str()));
            }
            // Why runs failed: in the table beside the status when any has a reason (shortened),
            // in CSV always, last.
            let table = args.format == Format::Table;
            let error_column = !table || runs.iter().any(|r| r.error.is_some());
            // The experiment file's revision: in CSV always, in the table once a file changed.
            let revision_column = !table || runs.iter().any(|r| r.revision > 1);
            let mut header: Vec<String> = ["id", "experiment", "status"].map(String::from).to_vec();
            if revision_column {
                header.insert(2, "revision".into());
            }
            if error_column && table {
                header.push("error".into());
            }
            header.extend(params.iter().cloned());
            header.extend(metrics.iter().map(|k| k.to_string()));
            if error_column && !table {
                header.push("error".into());
            }
            let rows: Vec<Vec<Cell>> = runs
                .iter()
                .map(|run| {
                    let mut row = vec![
                        Cell::Int(run.id.0),
                        Cell::Text(run.experiment.clone()),
                        Cell::Text(match run.archived && table {
                            true => format!("{} (archived)", run.status.as_str()),
                            false => run.status.as_str().into(),
                        }),
                    ];
                    if revision_column {
                        row.insert(2, Cell::Int(run.revision.into()));
                    }
                    if error_column && table {
                        row.push(Cell::Text(shorten(run.error.as_deref().unwrap_or_default(), TABLE_ERROR_CHARS)));
                    }
                    row.extend(params.iter().map(|p| Cell::param(run.params.get(p))));
                    row.extend(metrics.iter().map(|k| Cell::metric(run.result(k))));
                    if error_column && !table {
                        row.push(Cell::text(run.error.as_deref()));
                    }
                    row
                })
                .collect();
            if args.format == Format::Csv {
                output::cells_csv(&header, &rows)
            } else {
                output::cells_table(&header, &rows)
            }
        }
    };
    out!("{out}")?;
    if left_out > 0 {
        // In the table, below it; csv and json stay what a script reads, so stderr says it.
        let message = format!("({left_out} more run(s) left out by --limit {})", runs.len());
        if args.format == Format::Table {
            outln!("{message}")?;
        } else {
            note!("{message}");
        }
    }
    if runs.is_empty() && left_out == 0 && args.format == Format::Table {
        note!("(no runs{})", if args.selection.filter.is_some() { " match" } else { "" });
    }
    Ok(ExitCode::SUCCESS)
}

/// The longest error the table shows in full; csv and json have every character.
const TABLE_ERROR_CHARS: usize = 90;

/// `text` on one line, cut to `max` characters with "…".
fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    one_line.chars().take(max - 1).chain(['…']).collect()
}

fn run_json(run: &RunRecord) -> Value {
    let settings: Map<String, Value> =
        run.params.iter().map(|(k, v)| (k.clone(), Cell::param(Some(v)).json())).collect();
    let metrics = |metrics: &std::collections::BTreeMap<mtl_store::MetricKey, f64>| -> Map<String, Value> {
        metrics.iter().map(|(k, v)| (k.to_string(), Cell::Metric(*v).json())).collect()
    };
    json!({
        "id": run.id,
        "experiment": run.experiment,
        "trial_key": run.trial_key,
        "status": run.status,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": run.error,
        "settings": settings,
        "result_rule": run.result_rule.name(),
        "result_epoch": run.result_epoch(),
        "result_metrics": metrics(run.result_metrics()),
        "final_epoch": run.final_epoch,
        "final_metrics": metrics(&run.final_metrics),
        "best_epoch": run.best_epoch,
        "revision": run.revision,
        "attempts": run.attempts,
        "owner": run.owner,
        "heartbeat_at": run.heartbeat_at,
        "provenance": run.provenance,
        "experiment_sha256": run.experiment_sha256,
        "tags": run.tags,
        "note": run.note,
        "archived": run.archived,
    })
}

/// Opens the database and returns the runs of `experiment` (all if none) that match
/// `filter`, with every key a filter, sort or grouping may name; archived runs only with
/// `archived`. An unknown experiment or key, or a filter that does not parse, is bad input.
pub fn select_runs(
    db: &Path,
    experiment: Option<&str>,
    filter: Option<&str>,
    epoch: Option<ResultEpoch>,
    archived: bool,
) -> anyhow::Result<(Store, Vec<RunRecord>, BTreeSet<String>)> {
    let store = Store::open_existing(db)?;
    if let Some(name) = experiment {
        let known = store.experiments()?;
        if !known.iter().any(|k| k == name) {
            return Err(BadInput(format!(
                "no experiment named {name:?} in {}; known experiments: {}",
                db.display(),
                if known.is_empty() { "(none)".to_string() } else { known.join(", ") }
            ))
            .into());
        }
    }
    let mut runs = match archived {
        true => store.runs_including_archived(experiment)?,
        false => store.runs(experiment)?,
    };
    override_result_epoch(&mut runs, epoch);
    let known = known_keys(&runs);
    if let Some(text) = filter {
        let filter = Filter::parse(text).map_err(|e| BadInput(format!("--where: {e}")))?;
        check_keys(text, filter.keys().iter().map(|(k, at)| (k.as_str(), *at)), &known, "--where")?;
        runs.retain(|run| filter.matches(run));
    }
    Ok((store, runs, known))
}

/// Rejects keys no run has (a typo would otherwise silently match nothing).
pub fn check_keys<'a>(
    text: &str,
    keys: impl Iterator<Item = (&'a str, usize)>,
    known: &BTreeSet<String>,
    flag: &str,
) -> Result<(), BadInput> {
    match unknown_key(keys, known) {
        Some((key, at)) => Err(BadInput(format!("{flag}: {}", describe_unknown_key(text, key, at, known)))),
        None => Ok(()),
    }
}
