//! The store on real SQLite files: diagnostics round trip, re-runs clear them,
//! and an older database is migrated in place.

use mtl_store::{DiagnosticPoint, NewRun, ParamValue, RunStatus, Store, SCHEMA_VERSION};

fn point(name: &str, task: &str, other: &str, value: f64) -> DiagnosticPoint {
    DiagnosticPoint { name: name.into(), task: task.into(), other: other.into(), value }
}

fn begin(store: &mut Store, key: &str) -> mtl_store::RunId {
    let experiment = store.experiment("e").expect("experiment");
    let params = [("strategy".to_string(), ParamValue::Text("hard".into()))];
    store.begin_run(&NewRun { experiment, trial_key: key, settings_json: "{}", params: &params }).expect("run")
}

#[test]
fn diagnostics_round_trip_and_a_rerun_clears_them() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("d.db")).expect("open");
    let run = begin(&mut store, "k");
    store
        .log_diagnostics(run, 1, 10, &[point("weight", "a", "", 1.0), point("grad_cosine", "a", "b", -0.25)])
        .expect("log");
    store.log_diagnostics(run, 2, 20, &[point("weight", "a", "", 0.5)]).expect("log");
    let rows = store.diagnostic_rows(&[run]).expect("rows");
    let seen: Vec<(u64, u32, &str, &str, f64)> =
        rows.iter().map(|r| (r.step, r.epoch, r.point.name.as_str(), r.point.other.as_str(), r.point.value)).collect();
    assert_eq!(seen, [(10, 1, "grad_cosine", "b", -0.25), (10, 1, "weight", "", 1.0), (20, 2, "weight", "", 0.5)]);
    store.finish_run(run, RunStatus::Interrupted, None).expect("finish");
    // The trial runs again: its old diagnostics go with its old metrics.
    let again = begin(&mut store, "k");
    assert_eq!(again, run);
    assert!(store.diagnostic_rows(&[run]).expect("rows").is_empty());
}

#[test]
fn a_version_2_database_is_migrated_and_keeps_its_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("old.db");
    {
        let mut store = Store::open(&path).expect("open");
        begin(&mut store, "old-run");
    }
    // Take the file back to version 2 as an older mtl-lab left it: no diagnostics table.
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    conn.execute_batch("DROP TABLE diagnostics; PRAGMA user_version = 2;").expect("downgrade");
    drop(conn);
    let store = Store::open_existing(&path).expect("migrates");
    assert_eq!(store.runs(None).expect("runs").len(), 1);
    let run = store.runs(None).expect("runs")[0].id;
    assert!(store.diagnostic_rows(&[run]).expect("the table exists").is_empty());
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 3);
}
