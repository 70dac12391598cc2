//! A trial's row: inserted, or reset for another attempt, with its provenance and
//! settings; and content stored once by its sha256. Claims and writes both start runs
//! through here.

use rusqlite::{params, Connection};

use crate::{now, NewRun, Owner, ParamValue, RunId};

/// Inserts the row of a trial, or resets `existing` (its old metrics, diagnostics,
/// settings and artifacts go), as `running` for `owner` with a heartbeat now and
/// one more attempt, with the trial's provenance and settings. Returns the run and its attempt.
pub(crate) fn start_run(
    tx: &Connection,
    existing: Option<RunId>,
    new: &NewRun,
    owner: Option<&Owner>,
) -> rusqlite::Result<(RunId, u32)> {
    let now = now();
    let provenance = new.provenance;
    let experiment_sha256 = match &provenance.experiment_text {
        Some(text) => Some(insert_blob(tx, text.as_bytes())?),
        None => None,
    };
    let run = match existing {
        Some(RunId(id)) => {
            for table in ["metrics", "diagnostics", "params", "artifacts"] {
                tx.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id])?;
            }
            tx.execute(
                "UPDATE runs SET status = 'running', started_at = ?2, ended_at = NULL, error = NULL, settings = ?3,
                 best_epoch = NULL, attempts = attempts + 1 WHERE id = ?1",
                params![id, now, new.settings_json],
            )?;
            id
        }
        None => {
            tx.execute(
                "INSERT INTO runs (experiment_id, trial_key, status, started_at, settings, attempts)
                 VALUES (?1, ?2, 'running', ?3, ?4, 1)",
                params![new.experiment.0, new.trial_key, now, new.settings_json],
            )?;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "UPDATE runs SET experiment_file = ?2, experiment_sha256 = ?3, mtl_version = ?4, git_commit = ?5, host = ?6,
             owner_host = ?7, owner_pid = ?8, owner_token = ?9, heartbeat_at = ?10, device = ?11
         WHERE id = ?1",
        params![
            run,
            provenance.experiment_file,
            experiment_sha256,
            provenance.mtl_version,
            provenance.git_commit,
            provenance.host,
            owner.map(|o| &o.host),
            owner.map(|o| o.pid),
            owner.map(|o| &o.token),
            now,
            provenance.device,
        ],
    )?;
    let mut stmt = tx.prepare("INSERT INTO params (run_id, key, num, text) VALUES (?1, ?2, ?3, ?4)")?;
    for (key, value) in new.params {
        let (num, text) = match value {
            ParamValue::Num(x) => (Some(*x), None),
            ParamValue::Text(s) => (None, Some(s.as_str())),
        };
        stmt.execute(params![run, key, num, text])?;
    }
    let attempt = tx.query_row("SELECT attempts FROM runs WHERE id = ?1", [run], |r| r.get(0))?;
    Ok((RunId(run), attempt))
}

/// Stores `content` once, keyed by its sha256, which it returns.
pub(crate) fn insert_blob(conn: &Connection, content: &[u8]) -> rusqlite::Result<String> {
    let sha256 = crate::sha256_hex(content);
    conn.execute("INSERT OR IGNORE INTO blobs (sha256, content) VALUES (?1, ?2)", params![sha256, content])?;
    Ok(sha256)
}
