//! MLflow's SQLite tracking database (`mlflow.db`, MLflow's default backend since 3.x), read
//! only, for `mtl import mlflow`: one experiment's runs with their params, tags and every
//! logged metric value. The tables read and their columns are MLflow's:
//! `experiments(experiment_id, name, lifecycle_stage)`, `runs(run_uuid, name, status,
//! lifecycle_stage, experiment_id)`, `params(key, value, run_uuid)`, `tags(key, value,
//! run_uuid)` and `metrics(key, value, timestamp, run_uuid, step, is_nan)`. Runs and
//! experiments whose `lifecycle_stage` is `deleted` are left out.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};

use crate::{Result, StoreError};

/// The most metric values read from one database: 50 million (about 2 GB of rows).
pub const MAX_METRIC_ROWS: i64 = 50_000_000;

/// One MLflow run as its rows give it.
#[derive(Clone, Debug, PartialEq)]
pub struct MlflowRunRows {
    /// `run_uuid`.
    pub run_id: String,
    /// `name` (empty: none).
    pub name: String,
    /// `status`: `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`.
    pub status: String,
    /// `(key, value)` of its params, by key.
    pub params: Vec<(String, String)>,
    /// `(key, value)` of its tags, by key.
    pub tags: Vec<(String, String)>,
    /// `(key, timestamp, value, step)` of every logged value, by key then timestamp (NaN where `is_nan`).
    pub metrics: Vec<(String, i64, f64, i64)>,
}

/// The runs of experiment `experiment` (its name or id) in the MLflow database at `path`.
pub fn read_mlflow_sqlite(path: &Path, experiment: &str) -> Result<Vec<MlflowRunRows>> {
    let foreign = |message: String| StoreError::Foreign { path: path.to_path_buf(), message };
    let sql = |e: rusqlite::Error| foreign(format!("cannot be read as an MLflow database: {e}"));
    if !path.is_file() {
        return Err(foreign("not a file (give MLflow's SQLite database, or its mlruns/ folder)".into()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    for table in ["experiments", "runs", "params", "tags", "metrics"] {
        let present: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
            .map_err(sql)?;
        if present == 0 {
            return Err(foreign(format!("not an MLflow tracking database: it has no table {table}")));
        }
    }
    let experiments: Vec<(String, String)> = conn
        .prepare("SELECT CAST(experiment_id AS TEXT), name FROM experiments WHERE lifecycle_stage != 'deleted' ORDER BY experiment_id")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql)?;
    let Some((id, _)) = experiments.iter().find(|(id, name)| name == experiment || id == experiment) else {
        let known: Vec<String> = experiments.iter().map(|(id, name)| format!("{name:?} (id {id})")).collect();
        return Err(foreign(format!(
            "no experiment named {experiment:?} (or with that id); it holds: {}",
            known.join(", ")
        )));
    };
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid WHERE CAST(r.experiment_id AS TEXT) = ?1",
            [id],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if rows > MAX_METRIC_ROWS {
        return Err(foreign(format!("{rows} metric values in this experiment; at most {MAX_METRIC_ROWS} are read")));
    }
    let runs: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT run_uuid, COALESCE(name, ''), status FROM runs \
             WHERE CAST(experiment_id AS TEXT) = ?1 AND lifecycle_stage != 'deleted' ORDER BY run_uuid",
        )
        .and_then(|mut s| s.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
        .map_err(sql)?;
    let pairs = |table: &str, run: &str| -> rusqlite::Result<Vec<(String, String)>> {
        conn.prepare(&format!("SELECT key, COALESCE(value, '') FROM {table} WHERE run_uuid = ?1 ORDER BY key"))?
            .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    };
    let mut out = Vec::with_capacity(runs.len());
    for (run_id, name, status) in runs {
        let metrics = conn
            .prepare(
                "SELECT key, timestamp, value, step, is_nan FROM metrics WHERE run_uuid = ?1 \
                 ORDER BY key, timestamp, step",
            )
            .and_then(|mut s| {
                s.query_map(params![run_id], |r| {
                    let is_nan: Option<bool> = r.get(4)?;
                    let value: f64 = if is_nan == Some(true) { f64::NAN } else { r.get(2)? };
                    Ok((r.get(0)?, r.get(1)?, value, r.get(3)?))
                })?
                .collect()
            })
            .map_err(sql)?;
        out.push(MlflowRunRows {
            params: pairs("params", &run_id).map_err(sql)?,
            tags: pairs("tags", &run_id).map_err(sql)?,
            run_id,
            name,
            status,
            metrics,
        });
    }
    Ok(out)
}
