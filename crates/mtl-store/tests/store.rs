//! The store on real SQLite files: diagnostics round trip, re-runs clear them, an
//! older database is migrated in place, provenance, the best epoch, the views,
//! read-only queries, several writers at once, and claims of trials.

use std::time::Duration;

use mtl_store::{
    Claim, ClaimPolicy, DiagnosticPoint, MetricKey, MetricPoint, NewRun, Owner, ParamValue, Provenance, ResultEpoch,
    RunStatus, SqlValue, Store, StoreError, SCHEMA_VERSION,
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
        "DROP VIEW result_metrics; DROP VIEW runs_wide; ALTER TABLE experiments DROP COLUMN result_epoch;
         DROP VIEW settings; DROP VIEW metric_points; DROP VIEW final_metrics;
         DROP VIEW best_metrics; DROP TABLE wide_columns; DROP INDEX runs_by_experiment; DROP INDEX params_by_key;
         ALTER TABLE runs DROP COLUMN experiment_file; ALTER TABLE runs DROP COLUMN experiment_sha256;
         ALTER TABLE runs DROP COLUMN mtl_version; ALTER TABLE runs DROP COLUMN git_commit;
         ALTER TABLE runs DROP COLUMN host; ALTER TABLE runs DROP COLUMN best_epoch;
         ALTER TABLE runs DROP COLUMN owner_host; ALTER TABLE runs DROP COLUMN owner_pid;
         ALTER TABLE runs DROP COLUMN owner_token; ALTER TABLE runs DROP COLUMN heartbeat_at;
         ALTER TABLE runs DROP COLUMN attempts; ALTER TABLE runs DROP COLUMN archived_at;
         DROP TABLE tags; DROP TABLE notes;
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
    assert_eq!(SCHEMA_VERSION, 9);
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
    // runs_wide shows each run's result: the best validation epoch (2) by default.
    let wide = store.query("SELECT run_id, lambda, \"a.test.accuracy\" FROM runs_wide").expect("runs_wide");
    assert_eq!(wide.rows, [vec![SqlValue::Integer(1), SqlValue::Real(0.5), SqlValue::Real(0.8)]]);
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
        device: Some("cuda:0 (NVIDIA H200)".into()),
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
    assert_eq!(record.provenance.device.as_deref(), Some("cuda:0 (NVIDIA H200)"));
    let sha256 = record.experiment_sha256.clone().expect("the file's hash");
    assert_eq!(store.blob_by_hash(&sha256).expect("blob").as_deref(), Some("name = \"e\"\n".as_bytes()));
    assert_eq!(record.best_epoch, Some(2));
    let test_a = MetricKey { task: "a".into(), split: "test".into(), metric: "accuracy".into() };
    assert_eq!(record.best_metrics[&test_a], 0.2);
    assert_eq!(record.final_metrics[&test_a], 0.4);

    let count_in = |store: &Store, sql: &str| match &store.query(sql).expect(sql).rows[0][0] {
        SqlValue::Integer(n) => *n,
        other => panic!("{sql}: {other:?}"),
    };
    assert_eq!(count_in(&store, "SELECT COUNT(*) FROM metric_points"), 16);
    assert_eq!(count_in(&store, "SELECT COUNT(*) FROM final_metrics WHERE epoch = 4"), 4);
    assert_eq!(count_in(&store, "SELECT COUNT(*) FROM best_metrics WHERE epoch = 2"), 4);
    assert_eq!(count_in(&store, "SELECT COUNT(*) FROM settings WHERE key = 'lambda' AND value = 0.5"), 1);

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
                SqlValue::Real(0.2),
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

    // The experiment's rule `last`: the view, runs_wide and RunRecord::result all move to epoch 4.
    assert_eq!(count_in(&store, "SELECT COUNT(*) FROM result_metrics WHERE run_id = 1 AND epoch = 2"), 4);
    store.set_result_epoch(experiment, ResultEpoch::Last).expect("rule");
    assert_eq!(count_in(&store, "SELECT COUNT(*) FROM result_metrics WHERE run_id = 1 AND epoch = 4"), 4);
    let wide = store.query("SELECT \"a.test.accuracy\" FROM runs_wide WHERE run_id = 1").expect("runs_wide");
    assert_eq!(wide.rows, [vec![SqlValue::Real(0.4)]]);
    let record = &store.runs(Some("e")).expect("runs")[0];
    assert_eq!(
        (record.result_rule, record.result_epoch(), record.result(&test_a)),
        (ResultEpoch::Last, Some(4), Some(0.4))
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

/// Claims `key` in experiment "e" for `owner`, treating runs silent for `stale_after` as dead and
/// retrying failed or interrupted runs that ended before `retry_ended_before`.
fn claim(store: &mut Store, key: &str, owner: &Owner, stale_after: Duration, retry_ended_before: &str) -> Claim {
    let experiment = store.experiment("e").expect("experiment");
    let new_run =
        NewRun { experiment, trial_key: key, settings_json: "{}", params: &[], provenance: &Default::default() };
    let policy = ClaimPolicy { owner: owner.clone(), stale_after, retry_ended_before: retry_ended_before.to_string() };
    store.claim_run(&new_run, &policy).expect("claim")
}

fn owner(host: &str, pid: u32, token: &str) -> Owner {
    Owner { host: host.into(), pid, token: token.into() }
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_trial_is_claimed_only_when_no_live_process_has_it() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("c.db")).expect("open");
    let me = Owner::this_process("here");
    let later = "9999";
    let claimed = |claim: Claim| match claim {
        Claim::Claimed { run, attempt, recovered } => (run, attempt, recovered),
        other => panic!("expected a claim, got {other:?}"),
    };

    // A new trial; then it is ours, running: nobody else takes it.
    let (run, attempt, recovered) = claimed(claim(&mut store, "new", &me, HOUR, later));
    assert_eq!((attempt, recovered), (1, None));
    assert_eq!(claim(&mut store, "new", &me, HOUR, later), Claim::Running { owner: me.to_string() });
    store.finish_run(run, RunStatus::Done, None).expect("finish");
    assert_eq!(claim(&mut store, "new", &me, HOUR, later), Claim::Done);

    // A live process of this host (a child that sleeps) keeps its trial; once it is dead, it is taken.
    let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("spawn sleep");
    let other = owner("here", child.id(), "other-token");
    claimed(claim(&mut store, "theirs", &other, HOUR, later));
    assert_eq!(claim(&mut store, "theirs", &me, HOUR, later), Claim::Running { owner: format!("here:{}", child.id()) });
    child.kill().expect("kill");
    child.wait().expect("wait");
    let (_, attempt, recovered) = claimed(claim(&mut store, "theirs", &me, HOUR, later));
    assert_eq!(attempt, 2);
    assert_eq!(recovered, Some(format!("its process here:{} has ended", child.id())));

    // A process with this process's pid but another token is an earlier one, gone.
    claimed(claim(&mut store, "same-pid", &owner("here", me.pid, "earlier"), HOUR, later));
    let (_, _, recovered) = claimed(claim(&mut store, "same-pid", &me, HOUR, later));
    assert!(recovered.is_some_and(|r| r.contains("has ended")));

    // Another host: only the heartbeat tells; without one for longer than `stale_after`, it is taken.
    claimed(claim(&mut store, "remote", &owner("elsewhere", 1, "remote-token"), HOUR, later));
    assert_eq!(claim(&mut store, "remote", &me, HOUR, later), Claim::Running { owner: "elsewhere:1".into() });
    std::thread::sleep(Duration::from_millis(20));
    let (_, _, recovered) = claimed(claim(&mut store, "remote", &me, Duration::from_millis(10), later));
    assert!(recovered.is_some_and(|r| r.contains("no heartbeat from its process elsewhere:1")));

    // Failed runs are retried, unless they ended since the given time (another process of this wave tried them).
    let (failed, _, _) = claimed(claim(&mut store, "fails", &me, HOUR, later));
    store.finish_run(failed, RunStatus::Failed, Some("diverged")).expect("finish");
    assert_eq!(claim(&mut store, "fails", &me, HOUR, "0000"), Claim::Tried { status: RunStatus::Failed });
    let (again, attempt, _) = claimed(claim(&mut store, "fails", &me, HOUR, later));
    assert_eq!((again, attempt), (failed, 2));
    let record = store.runs(None).expect("runs").into_iter().find(|r| r.id == again).expect("the run");
    assert_eq!((record.status, record.error, record.attempts), (RunStatus::Running, None, 2));
    assert_eq!(record.owner, Some(me.to_string()));
}

#[test]
fn a_run_taken_over_by_another_process_refuses_the_old_owners_writes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("t.db");
    let mut first = Store::open(&path).expect("open");
    let mut second = Store::open(&path).expect("open");
    let (a, b) = (owner("x", 1, "a"), owner("y", 2, "b"));
    let Claim::Claimed { run, .. } = claim(&mut first, "k", &a, HOUR, "9999") else { panic!("claimed") };
    first.log_epoch(run, 1, &accuracy_points([0.5, 0.5], [0.5, 0.5])).expect("log");
    // The second process finds no heartbeat for longer than it allows and takes the run over.
    std::thread::sleep(Duration::from_millis(20));
    assert!(matches!(claim(&mut second, "k", &b, Duration::from_millis(10), "9999"), Claim::Claimed { .. }));
    let lost = first.log_epoch(run, 2, &accuracy_points([0.5, 0.5], [0.5, 0.5])).expect_err("taken over");
    assert!(matches!(&lost, StoreError::ClaimLost { owner, .. } if owner == "y:2"), "{lost}");
    assert!(first.finish_run(run, RunStatus::Done, None).is_err());
    assert!(second.metric_rows(&[run]).expect("rows").is_empty(), "the new attempt starts clean");
}

#[test]
fn runs_left_running_by_dead_processes_are_marked_interrupted() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("s.db")).expect("open");
    let me = Owner::this_process("here");
    let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("spawn sleep");
    let alive = owner("here", child.id(), "alive");
    let experiment = store.experiment("e").expect("experiment");
    claim(&mut store, "alive", &alive, HOUR, "9999");
    claim(&mut store, "dead", &owner("here", me.pid, "dead"), HOUR, "9999");
    let old = begin(&mut store, "no-owner");
    let policy = ClaimPolicy { owner: me.clone(), stale_after: HOUR, retry_ended_before: String::new() };
    let stale = store.interrupt_stale_runs(experiment, &policy).expect("recover");
    let mut found: Vec<(&str, &str)> = stale.iter().map(|s| (s.trial_key.as_str(), s.reason.as_str())).collect();
    found.sort();
    let dead_reason = format!("its process here:{} has ended", me.pid);
    assert_eq!(
        found,
        [("dead", dead_reason.as_str()), ("no-owner", "it records no owner (started by an older mtl-lab)")]
    );
    let runs = store.runs(None).expect("runs");
    let status_of = |key: &str| runs.iter().find(|r| r.trial_key == key).map(|r| (r.status, r.error.clone()));
    assert_eq!(status_of("alive"), Some((RunStatus::Running, None)));
    assert_eq!(status_of("dead"), Some((RunStatus::Interrupted, Some(format!("interrupted: {dead_reason}")))));
    assert_eq!(runs.iter().find(|r| r.id == old).map(|r| r.status), Some(RunStatus::Interrupted));
    child.kill().expect("kill");
    child.wait().expect("wait");
}

#[test]
fn a_running_run_says_when_its_process_on_this_host_has_ended() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("o.db")).expect("open");
    let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("spawn sleep");
    let pid = child.id();
    claim(&mut store, "live", &owner("here", pid, "a"), HOUR, "9999");
    claim(&mut store, "remote", &owner("elsewhere", pid, "b"), HOUR, "9999");
    let Claim::Claimed { run: done, .. } = claim(&mut store, "done", &owner("here", pid, "c"), HOUR, "9999") else {
        panic!("claimed")
    };
    store.finish_run(done, RunStatus::Done, None).expect("finish");
    begin(&mut store, "no-owner");
    let ended = |store: &Store| -> Vec<(String, Option<String>)> {
        let runs = store.runs(None).expect("runs");
        runs.into_iter().map(|r| (r.trial_key.clone(), r.owner_ended("here"))).collect()
    };
    // Alive, on another host (only its heartbeat can tell), done, or with no owner: nothing to say.
    assert!(ended(&store).iter().all(|(_, reason)| reason.is_none()), "{:?}", ended(&store));
    child.kill().expect("kill");
    child.wait().expect("wait");
    let reasons = ended(&store);
    let said: Vec<_> = reasons.iter().filter_map(|(key, reason)| Some((key.as_str(), reason.as_deref()?))).collect();
    assert_eq!(said, [("live", format!("its process here:{pid} has ended").as_str())]);
}

#[test]
fn threads_racing_for_the_same_trials_claim_each_exactly_once() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("race.db");
    drop(Store::open(&path).expect("create"));
    let keys: Vec<String> = (0..40).map(|i| format!("trial-{i}")).collect();
    // Eight connections, each its own owner (as eight processes on eight hosts), walk the same
    // list at once. (Threads of one process share its token: see `Owner::this_process`.)
    let claims: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (path, keys) = (&path, &keys);
                scope.spawn(move || {
                    let mut store = Store::open(path).expect("open");
                    let me = owner(&format!("host-{t}"), std::process::id(), &format!("token-{t}"));
                    let mut mine = Vec::new();
                    for key in keys {
                        if let Claim::Claimed { run, .. } = claim(&mut store, key, &me, HOUR, "0000") {
                            store.log_epoch(run, 1, &accuracy_points([0.5, 0.5], [0.5, 0.5])).expect("log");
                            store.finish_run(run, RunStatus::Done, None).expect("finish");
                            mine.push(key.clone());
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let mut all: Vec<String> = claims.concat();
    all.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(all, expected, "every trial claimed once");
    let runs = Store::open_existing(&path).expect("open").runs(None).expect("runs");
    assert!(runs.iter().all(|r| r.status == RunStatus::Done && r.attempts == 1));
    assert_eq!(Owner::this_process("a").token, Owner::this_process("b").token, "one token per process");
}

/// A shard: one finished run of trial `key` in its own database file.
fn shard(dir: &std::path::Path, name: &str, key: &str, status: RunStatus, accuracy: f64) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut store = Store::open(&path).expect("shard");
    let run = begin(&mut store, key);
    store.log_epoch(run, 1, &accuracy_points([accuracy, accuracy], [accuracy, accuracy])).expect("log");
    let error = (status != RunStatus::Done).then_some("diverged at step 3");
    store.finish_run(run, status, error).expect("finish");
    path
}

#[test]
fn merging_shards_twice_changes_nothing_and_never_overwrites_done_or_running_trials() {
    let dir = tempfile::tempdir().expect("dir");
    let mut main = Store::open(&dir.path().join("main.db")).expect("main");
    let failed = shard(dir.path(), "t1-failed.db", "t1", RunStatus::Failed, 0.1);
    let done = shard(dir.path(), "t2-done.db", "t2", RunStatus::Done, 0.9);

    let first = main.merge_shard(&failed).expect("merge");
    assert_eq!((first.failed, first.already_merged), (1, 0));
    let id = main.runs(None).expect("runs")[0].id;
    // The same failed attempt again: kept as it is, with the same run id.
    let again = main.merge_shard(&failed).expect("merge");
    assert_eq!((again.failed, again.already_merged), (0, 1));
    assert_eq!(main.runs(None).expect("runs")[0].id, id);

    assert_eq!(main.merge_shard(&done).expect("merge").done, 1);
    assert_eq!(main.merge_shard(&done).expect("merge").already_merged, 1);
    let runs = main.runs(None).expect("runs");
    assert_eq!(runs.len(), 2);
    let t2 = runs.iter().find(|r| r.trial_key == "t2").expect("t2");
    assert_eq!((t2.status, t2.final_epoch), (RunStatus::Done, Some(1)));

    // A later, successful attempt at t1 replaces the failed one.
    let retried = shard(dir.path(), "t1-done.db", "t1", RunStatus::Done, 0.8);
    assert_eq!(main.merge_shard(&retried).expect("merge").done, 1);
    let t1 = main.runs(None).expect("runs").into_iter().find(|r| r.trial_key == "t1").expect("t1");
    assert_eq!((t1.status, t1.error), (RunStatus::Done, None));
    // ... and an older failed attempt never replaces a done one.
    assert_eq!(main.merge_shard(&failed).expect("merge").already_merged, 1);

    // A trial the main database is training itself is left alone.
    begin(&mut main, "t3");
    let t3 = shard(dir.path(), "t3.db", "t3", RunStatus::Done, 0.7);
    assert_eq!(main.merge_shard(&t3).expect("merge").running, 1);
    let t3 = main.runs(None).expect("runs").into_iter().find(|r| r.trial_key == "t3").expect("t3");
    assert_eq!(t3.status, RunStatus::Running);
    assert_eq!(main.query("PRAGMA integrity_check").expect("check").rows, [vec![SqlValue::Text("ok".into())]]);

    // A file that is not a database is refused by name, and nothing changes.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all, just bytes to fill a page").expect("write");
    assert!(matches!(main.merge_shard(&garbage), Err(StoreError::NotADatabase { .. })));
}

#[test]
fn tags_notes_archiving_and_purging() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("c.db")).expect("open");
    let kept = begin(&mut store, "kept");
    let archived = begin(&mut store, "archived");
    for run in [kept, archived] {
        store.log_epoch(run, 1, &accuracy_points([0.5, 0.5], [0.5, 0.5])).expect("log");
        store.log_diagnostics(run, 1, 10, &[point("weight", "a", "", 1.0)]).expect("log");
        store.attach_blob(run, "vocabulary", b"a\nb\n").expect("blob");
        store.finish_run(run, RunStatus::Done, None).expect("finish");
    }
    assert_eq!(store.tag_runs(&[kept, archived], "keep", "yes").expect("tag"), 2);
    assert_eq!(store.tag_runs(&[kept], "keep", "maybe").expect("retag"), 1);
    assert_eq!(store.set_note(kept, "looks good").expect("note"), 1);
    let runs = store.runs(None).expect("runs");
    assert_eq!(runs[0].tags.get("keep").map(String::as_str), Some("maybe"));
    assert_eq!(runs[1].tags.get("keep").map(String::as_str), Some("yes"));
    assert_eq!((runs[0].note.as_deref(), runs[1].note.as_deref()), (Some("looks good"), None));
    let filter = |text: &str, runs: &[mtl_store::RunRecord]| -> Vec<i64> {
        let filter = mtl_store::filter::Filter::parse(text).expect("filter");
        runs.iter().filter(|r| filter.matches(r)).map(|r| r.id.0).collect()
    };
    assert_eq!(filter("tag.keep = 'yes'", &runs), [archived.0]);
    assert_eq!(filter("note = 'looks good'", &runs), [kept.0]);

    // Archived: hidden from runs(), listed with runs_including_archived, still a done trial.
    assert_eq!(store.archive_runs(&[archived]).expect("archive"), 1);
    assert_eq!(store.archive_runs(&[archived]).expect("again"), 0, "already archived");
    let ids = |runs: Vec<mtl_store::RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.runs(None).expect("runs")), [kept]);
    let all = store.runs_including_archived(None).expect("all");
    assert_eq!(filter("archived = 'yes'", &all), [archived.0]);
    // One run read alone (Store::run) is the record the listing holds, archived or not.
    for record in &all {
        assert_eq!(store.run(record.id).expect("run").as_ref(), Some(record));
    }
    assert_eq!(store.run(mtl_store::RunId(archived.0 + 100)).expect("no run"), None);
    let experiment = store.experiment("e").expect("experiment");
    assert_eq!(store.run_status(experiment, "archived").expect("status"), Some((archived, RunStatus::Done)));
    assert_eq!(store.restore_runs(&[archived, kept]).expect("restore"), 1);
    assert_eq!(store.runs(None).expect("runs").len(), 2);

    // Purged: every row of the run is gone; the other run keeps its own.
    assert_eq!(store.purge_runs(&[archived]).expect("purge"), 1);
    for table in ["runs", "params", "metrics", "diagnostics", "artifacts", "tags", "notes"] {
        let column = if table == "runs" { "id" } else { "run_id" };
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = {}", archived.0);
        let rows = store.query(&sql).expect("count").rows;
        assert_eq!(rows[0][0], SqlValue::Integer(0), "{table}");
    }
    assert_eq!(store.run_status(experiment, "archived").expect("status"), None, "a purged trial trains again");
    assert!(!store.metric_rows(&[kept]).expect("rows").is_empty());
    assert_eq!(store.purge_runs(&[archived]).expect("purge"), 0);
}
