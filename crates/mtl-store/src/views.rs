//! The view `runs_wide` (one row per run, a column per setting and per metric at the
//! result epoch), regenerated from the table `wide_columns`.

use rusqlite::Connection;

use crate::{result, RunId};

/// (Re)creates the view `runs_wide` from the table `wide_columns`.
pub(crate) fn rebuild_runs_view(conn: &Connection) -> rusqlite::Result<()> {
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let mut columns: Vec<String> = [
        "r.id AS run_id",
        "e.name AS experiment",
        "r.trial_key",
        "r.status",
        "r.started_at",
        "r.ended_at",
        "r.error",
        "r.best_epoch",
        "e.result_epoch AS result_rule",
        "r.experiment_file",
        "r.experiment_sha256",
        "r.mtl_version",
        "r.git_commit",
        "r.host",
        "r.device",
        "r.attempts",
        "r.owner_host",
        "r.owner_pid",
        "r.heartbeat_at",
    ]
    .map(String::from)
    .to_vec();
    let mut stmt = conn.prepare("SELECT setting, task, split, metric FROM wide_columns ORDER BY 1, 2, 3, 4")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?)))?;
    for row in rows {
        let (setting, task, split, metric): (String, String, String, String) = row?;
        columns.push(if task.is_empty() {
            format!(
                "(SELECT COALESCE(num, text) FROM params p WHERE p.run_id = r.id AND p.key = {}) AS {}",
                literal(&setting),
                quote(&setting)
            )
        } else {
            format!(
                "(SELECT value FROM metrics m WHERE m.run_id = r.id AND m.epoch = {}
                  AND m.task = {} AND m.split = {} AND m.metric = {}) AS {}",
                result::RESULT_EPOCH_SQL,
                literal(&task),
                literal(&split),
                literal(&metric),
                quote(&format!("{task}.{split}.{metric}"))
            )
        });
    }
    conn.execute_batch(&format!(
        "DROP VIEW IF EXISTS runs_wide;
         CREATE VIEW runs_wide AS SELECT {} FROM runs r JOIN experiments e ON e.id = r.experiment_id;",
        columns.join(",\n  ")
    ))
}

/// Adds the settings and metrics of `run` to the columns of the view `runs_wide`
/// (one row per run: its fields, provenance, one column per setting and one per
/// final metric, `task.split.metric`), rebuilding the view when any is new.
pub(crate) fn widen_runs_view(tx: &Connection, run: RunId) -> rusqlite::Result<()> {
    let added = tx
        .execute("INSERT OR IGNORE INTO wide_columns (setting) SELECT key FROM params WHERE run_id = ?1", [run.0])?
        + tx.execute(
            "INSERT OR IGNORE INTO wide_columns (task, split, metric)
             SELECT DISTINCT task, split, metric FROM metrics WHERE run_id = ?1",
            [run.0],
        )?;
    if added > 0 {
        rebuild_runs_view(tx)?;
    }
    Ok(())
}
