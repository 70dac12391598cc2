//! The `pruned` status: a version 7 database (whose CHECK knows no `pruned`) is migrated
//! with every run's rows kept; a pruned trial is never claimed again; and
//! `val_points_at` gives what the pruning rule compares.

use mtl_store::{
    Claim, ClaimPolicy, MetricKey, MetricPoint, NewRun, Owner, ParamValue, RunStatus, Store, SCHEMA_VERSION,
};

static PROVENANCE: std::sync::LazyLock<mtl_store::Provenance> = std::sync::LazyLock::new(Default::default);

fn new_run<'a>(experiment: mtl_store::ExperimentId, key: &'a str, params: &'a [(String, ParamValue)]) -> NewRun<'a> {
    NewRun { experiment, trial_key: key, settings_json: "{}", params, provenance: &PROVENANCE }
}

#[test]
fn a_version_7_database_is_migrated_with_its_rows_and_takes_pruned_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("v7.db");
    let params = [("strategy".to_string(), ParamValue::Text("hard".into()))];
    {
        let mut store = Store::open(&path).expect("open");
        let experiment = store.experiment("e").expect("experiment");
        for key in ["a", "b"] {
            let run = store.begin_run(&new_run(experiment, key, &params)).expect("run");
            store.log_epoch(run, 1, &[MetricPoint::new("t", "val", "accuracy", 0.5)]).expect("epoch");
            store.tag_runs(&[run], "who", "me").expect("tag");
            store.finish_run(run, RunStatus::Done, None).expect("finish");
        }
    }
    // Back to version 7: the CHECK without `pruned`, edited in the schema text (views and all else kept).
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    conn.execute_batch(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = replace(sql, ', ''pruned'')', ')') WHERE name = 'runs';
         PRAGMA writable_schema = OFF; PRAGMA user_version = 7;",
    )
    .expect("downgrade");
    drop(conn);
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    let sql: String =
        conn.query_row("SELECT sql FROM sqlite_schema WHERE name = 'runs'", [], |r| r.get(0)).expect("schema");
    assert!(!sql.contains("pruned"), "{sql}");
    let refused = conn.execute("UPDATE runs SET status = 'pruned' WHERE trial_key = 'a'", []);
    assert!(refused.is_err(), "version 7 refuses the status");
    drop(conn);

    let mut store = Store::open_existing(&path).expect("migrates");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let runs = store.runs(Some("e")).expect("runs");
    assert_eq!(runs.len(), 2);
    for run in &runs {
        assert_eq!(run.params.get("strategy"), Some(&ParamValue::Text("hard".into())), "params kept");
        assert_eq!(run.tags.get("who").map(String::as_str), Some("me"), "tags kept");
        let key = MetricKey { task: "t".into(), split: "val".into(), metric: "accuracy".into() };
        assert_eq!(run.result(&key), Some(0.5), "metrics kept");
    }
    let experiment = store.experiment("e").expect("experiment");
    let run = store.begin_run(&new_run(experiment, "c", &params)).expect("run");
    store.finish_run(run, RunStatus::Pruned, Some("pruned at epoch 1: a reason")).expect("pruned is accepted");
    let pruned = store.runs(Some("e")).expect("runs").into_iter().find(|r| r.trial_key == "c").expect("c");
    assert_eq!((pruned.status, pruned.error.as_deref()), (RunStatus::Pruned, Some("pruned at epoch 1: a reason")));
    // Foreign keys are on again after the migration: deleting a run takes its rows.
    let checked = rusqlite::Connection::open(&path).expect("sqlite");
    let dangling: i64 =
        checked.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).expect("check");
    assert_eq!(dangling, 0);
}

#[test]
fn a_pruned_trial_is_never_claimed_again() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("p.db")).expect("open");
    let experiment = store.experiment("e").expect("experiment");
    let policy = ClaimPolicy {
        owner: Owner::this_process("localhost"),
        stale_after: std::time::Duration::from_secs(3600),
        retry_ended_before: "9999".into(),
    };
    let Claim::Claimed { run, .. } = store.claim_run(&new_run(experiment, "k", &[]), &policy).expect("claim") else {
        panic!("a new trial is claimed")
    };
    store.finish_run(run, RunStatus::Pruned, Some("pruned at epoch 2: poor")).expect("finish");
    assert_eq!(store.claim_run(&new_run(experiment, "k", &[]), &policy).expect("claim"), Claim::Pruned);
}

#[test]
fn val_points_at_an_epoch_by_trial_key() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("v.db")).expect("open");
    let experiment = store.experiment("e").expect("experiment");
    let other = store.experiment("other").expect("experiment");
    let b = store.begin_run(&new_run(experiment, "b", &[])).expect("run");
    let a = store.begin_run(&new_run(experiment, "a", &[])).expect("run");
    let elsewhere = store.begin_run(&new_run(other, "a", &[])).expect("run");
    let epoch = |value: f64| {
        vec![
            MetricPoint::new("t", "val", "accuracy", value),
            MetricPoint::new("t", "val", "loss", 1.0 - value),
            MetricPoint::new("t", "test", "accuracy", 0.0),
        ]
    };
    store.log_epoch(a, 1, &epoch(0.4)).expect("epoch");
    store.log_epoch(a, 2, &epoch(0.6)).expect("epoch");
    store.log_epoch(b, 1, &epoch(0.3)).expect("epoch");
    store.log_epoch(elsewhere, 2, &epoch(0.9)).expect("epoch");
    let at2 = store.val_points_at(experiment, 2).expect("points");
    let key = |metric: &str| MetricKey { task: "t".into(), split: "val".into(), metric: metric.into() };
    assert_eq!(at2, [("a".to_string(), vec![(key("accuracy"), 0.6), (key("loss"), 0.4)])]);
    let at1: Vec<String> = store.val_points_at(experiment, 1).expect("points").into_iter().map(|(k, _)| k).collect();
    assert_eq!(at1, ["a", "b"]);
    store.archive_runs(&[b]).expect("archive");
    assert_eq!(store.val_points_at(experiment, 1).expect("points").len(), 1, "archived runs are left out");
}

#[test]
fn a_search_claim_keeps_one_numbering_one_point_per_index_and_the_budget() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("s.db")).expect("open");
    let experiment = store.experiment("e").expect("experiment");
    let policy = ClaimPolicy {
        owner: Owner::this_process("localhost"),
        stale_after: std::time::Duration::from_secs(3600),
        retry_ended_before: String::new(),
    };
    let mut claim = |key: &str, index: u64, point: &str| {
        let params = [
            (mtl_store::Proposal::PARAM.to_string(), ParamValue::Num(index as f64)),
            (mtl_store::Proposal::POINT_PARAM.to_string(), ParamValue::Text(point.into())),
        ];
        let proposal = mtl_store::Proposal { index, point, budget: 3 };
        match store.claim_proposed_run(&new_run(experiment, key, &params), &policy, proposal).expect("claim") {
            Claim::Claimed { .. } => "claimed",
            Claim::Stale => "stale",
            Claim::Spent => "spent",
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(claim("a0", 1, "A"), "stale", "index 0 comes first");
    assert_eq!(claim("a0", 0, "A"), "claimed");
    assert_eq!(claim("b0", 0, "B"), "stale", "index 0 holds point A");
    assert_eq!(claim("a1", 0, "A"), "claimed", "another seed of point A");
    assert_eq!(claim("c0", 2, "C"), "stale", "the next index is 1");
    assert_eq!(claim("c0", 1, "C"), "claimed");
    assert_eq!(claim("c1", 1, "C"), "spent", "a budget of 3 trials");
}
