//! The store on real SQLite files: diagnostics round trip, re-runs clear them, an
//! older database is migrated in place, provenance, the best epoch, the views,
//! read-only queries and several writers at once.

use mtl_store::{
    DiagnosticPoint, MetricKey, MetricPoint, NewRun, ParamValue, Provenance, RunStatus, SqlValue, Store, StoreError,
    SCHEMA_VERSION,
};

fn point(name: &str, task: &str, other: &str, value: f64) -> DiagnosticPoint {
    DiagnosticPoint { name: name.into(), task: task.into(), other: other.into(), value }
}

fn begin(store: &mut Store, key: &str) -> mtl_store::RunId {
    let experiment = store.experiment("e").expect("experiment");
    let params = [("strategy".to_string(), ParamValue::Text("hard".into()))];
    store
        .begin_run(&NewRun {
            experiment,
            trial_key: key,
            settings_json: "{}",
            params: &params,
            provenance: &Default::default(),
        })
        .expect("run")
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
    conn.execute_batch(
        "DROP VIEW runs_wide; DROP VIEW settings; DROP VIEW metric_points; DROP VIEW final_metrics;
         DROP VIEW best_metrics; DROP TABLE wide_columns; DROP INDEX runs_by_experiment; DROP INDEX params_by_key;
         ALTER TABLE runs DROP COLUMN experiment_file; ALTER TABLE runs DROP COLUMN experiment_sha256;
         ALTER TABLE runs DROP COLUMN mtl_version; ALTER TABLE runs DROP COLUMN git_commit;
         ALTER TABLE runs DROP COLUMN host; ALTER TABLE runs DROP COLUMN best_epoch;
         DROP TABLE diagnostics; PRAGMA user_version = 2;",
    )
    .expect("downgrade");
    drop(conn);
    let store = Store::open_existing(&path).expect("migrates");
    assert_eq!(store.runs(None).expect("runs").len(), 1);
    let run = store.runs(None).expect("runs")[0].id;
    assert!(store.diagnostic_rows(&[run]).expect("the table exists").is_empty());
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 4);
}

fn accuracy_points(val: [f64; 2], test: [f64; 2]) -> Vec<MetricPoint> {
    vec![
        MetricPoint::new("a", "val", "accuracy", val[0]),
        MetricPoint::new("b", "val", "accuracy", val[1]),
        MetricPoint::new("a", "test", "accuracy", test[0]),
        MetricPoint::new("b", "test", "accuracy", test[1]),
    ]
}

#[test]
fn a_version_3_database_gets_metrics_keyed_by_epoch_best_epochs_and_views() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("v3.db");
    // A version 3 database as mtl-lab left it (schema of migrations 0–3), with one done run.
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    conn.execute_batch(
        "CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
         CREATE TABLE runs (id INTEGER PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id),
             trial_key TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT, ended_at TEXT, settings TEXT NOT NULL,
             error TEXT, UNIQUE (experiment_id, trial_key));
         CREATE TABLE params (run_id INTEGER NOT NULL, key TEXT NOT NULL, num REAL, text TEXT,
             PRIMARY KEY (run_id, key)) WITHOUT ROWID;
         CREATE TABLE metrics (run_id INTEGER NOT NULL, task TEXT NOT NULL, split TEXT NOT NULL,
             metric TEXT NOT NULL, epoch INTEGER NOT NULL, value REAL NOT NULL,
             PRIMARY KEY (run_id, task, split, metric, epoch)) WITHOUT ROWID;
         CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, content BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE artifacts (run_id INTEGER NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, path TEXT,
             PRIMARY KEY (run_id, name)) WITHOUT ROWID;
         CREATE TABLE diagnostics (run_id INTEGER NOT NULL, step INTEGER NOT NULL, epoch INTEGER NOT NULL,
             name TEXT NOT NULL, task TEXT NOT NULL, other TEXT NOT NULL, value REAL NOT NULL,
             PRIMARY KEY (run_id, name, task, other, step)) WITHOUT ROWID;
         INSERT INTO experiments VALUES (1, 'e', '2026-01-01');
         INSERT INTO runs VALUES (1, 1, 'k', 'done', NULL, NULL, '{}', NULL);
         INSERT INTO params VALUES (1, 'lambda', 0.5, NULL);
         INSERT INTO metrics VALUES (1, 'a', 'val', 'accuracy', 1, 0.5), (1, 'a', 'val', 'accuracy', 2, 0.9),
             (1, 'a', 'val', 'accuracy', 3, 0.7), (1, 'a', 'test', 'accuracy', 1, 0.4),
             (1, 'a', 'test', 'accuracy', 2, 0.8), (1, 'a', 'test', 'accuracy', 3, 0.85);
         PRAGMA user_version = 3;",
    )
    .expect("a version 3 database");
    drop(conn);
    let store = Store::open_existing(&path).expect("migrates");
    let run = &store.runs(None).expect("runs")[0];
    let key = MetricKey { task: "a".into(), split: "test".into(), metric: "accuracy".into() };
    assert_eq!((run.best_epoch, run.best_metrics.get(&key)), (Some(2), Some(&0.8)));
    assert_eq!((run.final_epoch, run.final_metrics.get(&key)), (Some(3), Some(&0.85)));
    let wide = store.query("SELECT run_id, lambda, \"a.test.accuracy\" FROM runs_wide").expect("runs_wide");
    assert_eq!(wide.rows, [vec![SqlValue::Integer(1), SqlValue::Real(0.5), SqlValue::Real(0.85)]]);
}

#[test]
fn runs_carry_their_provenance_and_best_epoch_and_the_views_follow_new_settings() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("p.db")).expect("open");
    let experiment = store.experiment("e").expect("experiment");
    let provenance = Provenance {
        experiment_file: Some("experiments/e.toml".into()),
        experiment_text: Some("name = \"e\"\n".into()),
        mtl_version: Some("9.9.9".into()),
        git_commit: Some("abc123-dirty".into()),
        host: Some("node7".into()),
    };
    let params = [("lambda".to_string(), ParamValue::Num(0.5))];
    let new_run = NewRun { experiment, trial_key: "k1", settings_json: "{}", params: &params, provenance: &provenance };
    let run = store.begin_run(&new_run).expect("begin");
    // Mean val accuracy per epoch: 0.5, 0.8, 0.8 (a tie: the first wins), 0.6.
    for (epoch, val, test) in [(1, [0.4, 0.6], [0.1, 0.1]), (2, [0.7, 0.9], [0.2, 0.2]), (3, [0.9, 0.7], [0.3, 0.3])]
        .into_iter()
        .chain([(4, [0.6, 0.6], [0.4, 0.4])])
    {
        store.log_epoch(run, epoch, &accuracy_points(val, test)).expect("log");
    }
    store.finish_run(run, RunStatus::Done, None).expect("finish");

    let record = &store.runs(None).expect("runs")[0];
    assert_eq!(record.provenance.experiment_file.as_deref(), Some("experiments/e.toml"));
    assert_eq!(record.provenance.mtl_version.as_deref(), Some("9.9.9"));
    assert_eq!(record.provenance.git_commit.as_deref(), Some("abc123-dirty"));
    assert_eq!(record.provenance.host.as_deref(), Some("node7"));
    let sha256 = record.experiment_sha256.clone().expect("the file's hash");
    assert_eq!(store.blob_by_hash(&sha256).expect("blob").as_deref(), Some("name = \"e\"\n".as_bytes()));
    assert_eq!(record.best_epoch, Some(2));
    let test_a = MetricKey { task: "a".into(), split: "test".into(), metric: "accuracy".into() };
    assert_eq!(record.best_metrics[&test_a], 0.2);
    assert_eq!(record.final_metrics[&test_a], 0.4);

    let count = |sql: &str| match &store.query(sql).expect(sql).rows[0][0] {
        SqlValue::Integer(n) => *n,
        other => panic!("{sql}: {other:?}"),
    };
    assert_eq!(count("SELECT COUNT(*) FROM metric_points"), 16);
    assert_eq!(count("SELECT COUNT(*) FROM final_metrics WHERE epoch = 4"), 4);
    assert_eq!(count("SELECT COUNT(*) FROM best_metrics WHERE epoch = 2"), 4);
    assert_eq!(count("SELECT COUNT(*) FROM settings WHERE key = 'lambda' AND value = 0.5"), 1);

    // A second run with a new setting and a new metric: runs_wide gains both columns.
    let params =
        [("lambda".to_string(), ParamValue::Num(2.0)), ("strategy".to_string(), ParamValue::Text("hard".into()))];
    let new_run = NewRun { experiment, trial_key: "k2", settings_json: "{}", params: &params, provenance: &provenance };
    let second = store.begin_run(&new_run).expect("begin");
    store.log_epoch(second, 1, &[MetricPoint::new("a", "test", "macro_f1", 0.25)]).expect("log");
    store.finish_run(second, RunStatus::Done, None).expect("finish");
    let wide = store
        .query("SELECT lambda, strategy, \"a.test.accuracy\", \"a.test.macro_f1\", host FROM runs_wide ORDER BY run_id")
        .expect("runs_wide");
    assert_eq!(
        wide.rows,
        [
            vec![
                SqlValue::Real(0.5),
                SqlValue::Null,
                SqlValue::Real(0.4),
                SqlValue::Null,
                SqlValue::Text("node7".into())
            ],
            vec![
                SqlValue::Real(2.0),
                SqlValue::Text("hard".into()),
                SqlValue::Null,
                SqlValue::Real(0.25),
                SqlValue::Text("node7".into())
            ],
        ]
    );
}

#[test]
fn queries_are_read_only() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("r.db");
    {
        let mut store = Store::open(&path).expect("open");
        begin(&mut store, "k");
    }
    let store = Store::open_read_only(&path).expect("read-only");
    for statement in [
        "DELETE FROM runs",
        "INSERT INTO experiments (name, created_at) VALUES ('x', 'now')",
        "UPDATE runs SET status = 'done'",
        "DROP TABLE metrics",
        "CREATE TABLE t (x)",
        "PRAGMA user_version = 99",
    ] {
        match store.query(statement) {
            Err(StoreError::WriteRefused { statement: refused, .. }) => assert_eq!(refused, statement),
            other => panic!("{statement}: {other:?}"),
        }
    }
    let bad = store.query("SELECT nope FROM runs").expect_err("no such column");
    assert!(matches!(&bad, StoreError::BadQuery { message, .. } if message.contains("no such column: nope")), "{bad}");
    let two = store.query("SELECT 1; DELETE FROM runs").expect_err("two statements");
    assert!(two.to_string().contains("one statement at a time"), "{two}");
    // Nothing changed.
    let reader = Store::open_existing(&path).expect("open");
    assert_eq!(reader.runs(None).expect("runs").len(), 1);
    let version = reader.query("PRAGMA user_version").expect("pragma read").rows;
    assert_eq!(version, [vec![SqlValue::Integer(SCHEMA_VERSION)]]);
}

#[test]
fn several_writers_share_one_database() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("w.db");
    drop(Store::open(&path).expect("create"));
    // Four threads, each with its own connection (as four processes would have), log
    // 25 runs × 10 epochs each at once; WAL and the busy timeout must absorb the contention.
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let path = &path;
            scope.spawn(move || {
                let mut store = Store::open(path).expect("open");
                for r in 0..25 {
                    let run = begin(&mut store, &format!("w{writer}-r{r}"));
                    for epoch in 1..=10 {
                        store.log_epoch(run, epoch, &accuracy_points([0.5, 0.5], [0.5, 0.5])).expect("log");
                    }
                    store.finish_run(run, RunStatus::Done, None).expect("finish");
                }
            });
        }
    });
    let store = Store::open_existing(&path).expect("open");
    let runs = store.runs(None).expect("runs");
    assert_eq!(runs.len(), 100);
    assert!(runs.iter().all(|r| r.status == RunStatus::Done && r.final_epoch == Some(10) && r.best_epoch == Some(1)));
    assert_eq!(store.query("PRAGMA integrity_check").expect("check").rows, [vec![SqlValue::Text("ok".into())]]);
}
