//! `[prune]` end to end: the median rule on Δm% stops poor trials with their reasons,
//! each decision agrees with the rule recomputed from the database by hand, the same file
//! gives the same decisions, a second `mtl run` trains nothing again, `ls` and the report
//! show the pruned trials, and two processes sharing one database both prune.

#[path = "support/common.rs"]
mod common;

use std::path::Path;

use common::{expect_code, text, Workspace};
use rusqlite::Connection;

/// 10 multi-task trials (5 λ × 2 lr) and 2 single-task baselines, 4 epochs.
const PRUNED: &str = r#"
name = "pruned"
epochs = 4
seeds = [0]
batch_size = 32

[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 400, n_val = 100, n_test = 100 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 400, n_val = 100, n_test = 100 }

[model]
image_stem = "rows"
width = 16
hidden = 8

[sweep]
strategy = ["hard", "single-task"]
lambda = [0.001, 0.1, 1.0, 10.0, 1000.0]
lr = [0.0001, 0.01]

[prune]
rule = "median"
metric = "delta_m"
min_trials = 2
"#;

/// `(id, trial_key, status, error, last epoch)` of every run, by id.
fn runs(db: &Path) -> Vec<(i64, String, String, Option<String>, i64)> {
    let conn = Connection::open(db).expect("db");
    let mut stmt = conn
        .prepare(
            "SELECT r.id, r.trial_key, r.status, r.error, (SELECT MAX(epoch) FROM metrics m WHERE m.run_id = r.id)
             FROM runs r ORDER BY r.id",
        )
        .expect("prepare");
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// Δm% of run `id`'s validation accuracies at `epoch` against the mean result of the
/// single-task runs, computed here from the formula: 100 · mean over tasks of (v − b) / b.
fn delta_m_by_hand(conn: &Connection, id: i64, epoch: i64) -> f64 {
    let mut sum = 0.0;
    for task in ["shapes", "reviews"] {
        let value: f64 = conn
            .query_row(
                "SELECT value FROM metrics WHERE run_id = ?1 AND epoch = ?2 AND task = ?3 AND split = 'val'
                 AND metric = 'accuracy'",
                rusqlite::params![id, epoch, task],
                |r| r.get(0),
            )
            .expect("value");
        let baseline: f64 = conn
            .query_row(
                "SELECT AVG(value) FROM result_metrics WHERE task = ?1 AND split = 'val' AND metric = 'accuracy'
                 AND run_id IN (SELECT run_id FROM params WHERE key = 'strategy' AND text = 'single-task')",
                [task],
                |r| r.get(0),
            )
            .expect("baseline");
        sum += (value - baseline) / baseline;
    }
    100.0 * sum / 2.0
}

fn is_single_task(conn: &Connection, id: i64) -> bool {
    conn.query_row(
        "SELECT COUNT(*) FROM params WHERE run_id = ?1 AND key = 'strategy' AND text = 'single-task'",
        [id],
        |r| r.get::<_, i64>(0),
    )
    .expect("strategy")
        == 1
}

#[test]
fn the_median_rule_prunes_with_reasons_that_the_database_bears_out() {
    let ws = Workspace::new();
    ws.write("pruned.toml", PRUNED);
    let out = ws.mtl(&["run", "pruned.toml", "--jobs", "1", "--no-report"]);
    expect_code(&out, 0);
    assert!(text(&out.stderr).contains("trial(s) pruned by [prune]"), "{}", text(&out.stderr));
    let db = ws.path("mtl.db");
    let all = runs(&db);
    assert_eq!(all.len(), 12);
    let conn = Connection::open(&db).expect("db");
    let pruned: Vec<_> = all.iter().filter(|r| r.2 == "pruned").collect();
    assert!(pruned.len() >= 2, "this sweep's poor trials are pruned: {all:?}");
    assert!(all.iter().all(|r| r.2 == "done" || r.2 == "pruned"), "{all:?}");
    for (id, _, _, error, last) in &pruned {
        assert!(!is_single_task(&conn, *id), "baselines are never pruned");
        let error = error.as_deref().expect("a reason");
        // "pruned at epoch N: val Δm% X below the median M of K trials at epoch N"
        let epoch: i64 = error["pruned at epoch ".len()..].split(':').next().expect("epoch").parse().expect("number");
        assert_eq!(epoch, *last, "the last epoch stored is the one it was pruned at: {error}");
        assert!((1..4).contains(&epoch), "{error}");
        // --jobs 1 trains in order (baselines first, then by id): the trials compared are
        // the earlier multi-task runs that reached that epoch.
        let own = delta_m_by_hand(&conn, *id, epoch);
        let mut others: Vec<f64> = all
            .iter()
            .filter(|r| r.0 < *id && r.4 >= epoch && !is_single_task(&conn, r.0))
            .map(|r| delta_m_by_hand(&conn, r.0, epoch))
            .collect();
        others.sort_by(f64::total_cmp);
        let median = match others.len() % 2 {
            1 => others[others.len() / 2],
            _ => (others[others.len() / 2 - 1] + others[others.len() / 2]) / 2.0,
        };
        let shown = |v: f64| format!("{v:+.2}").replace('-', "−");
        let expected = format!(
            "pruned at epoch {epoch}: val Δm% {} below the median {} of {} trials at epoch {epoch}",
            shown(own),
            shown(median),
            others.len()
        );
        assert_eq!(error, expected);
        assert!(own < median);
    }
    // Every multi-task trial that went on past an epoch was not below that epoch's median then.
    for (id, _, status, _, last) in &all {
        if is_single_task(&conn, *id) || status != "done" {
            continue;
        }
        assert_eq!(*last, 4, "a done trial trained every epoch");
    }

    // `ls` lists exactly the pruned runs, with their reasons.
    let listed = ws.mtl(&["ls", "--where", "status = 'pruned'", "--format", "csv"]);
    expect_code(&listed, 0);
    let listed = text(&listed.stdout);
    assert_eq!(listed.lines().count(), pruned.len() + 1, "{listed}");
    for (id, _, _, error, _) in &pruned {
        assert!(listed.lines().any(|l| l.starts_with(&format!("{id},"))), "{listed}");
        assert!(listed.contains(error.as_deref().expect("reason")), "{listed}");
    }

    // Run again: nothing is trained, the pruned runs stay as they are.
    let before = runs(&db);
    let again = ws.mtl(&["run", "pruned.toml", "--jobs", "1", "--no-report"]);
    expect_code(&again, 0);
    assert_eq!(runs(&db), before);
    let attempts: i64 = conn.query_row("SELECT MAX(attempts) FROM runs", [], |r| r.get(0)).expect("attempts");
    assert_eq!(attempts, 1, "no trial trained twice");

    // The same file gives the same decisions.
    let second = ws.mtl(&["run", "pruned.toml", "--jobs", "1", "--no-report", "--db", "second.db"]);
    expect_code(&second, 0);
    let strip = |rows: Vec<(i64, String, String, Option<String>, i64)>| {
        rows.into_iter().map(|(_, key, status, error, last)| (key, status, error, last)).collect::<Vec<_>>()
    };
    assert_eq!(strip(runs(&ws.path("second.db"))), strip(before));

    // The report lists them with their reasons.
    let report = ws.mtl(&["report"]);
    expect_code(&report, 0);
    let page = std::fs::read_to_string(ws.path("report/index.html")).expect("report");
    assert!(page.contains("<h3>Pruned trials</h3>"), "the report has the section");
    for (id, _, _, error, _) in &pruned {
        assert!(page.contains(&format!("<li>run {id}: {}</li>", error.as_deref().expect("reason"))), "run {id}");
    }
}

#[test]
fn two_processes_sharing_a_database_both_prune_and_train_no_trial_twice() {
    let ws = Workspace::new();
    ws.write("pruned.toml", PRUNED);
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut command = ws.command(&["run", "pruned.toml", "--jobs", "1", "--no-report"]);
            command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("spawn")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let db = ws.path("mtl.db");
    let all = runs(&db);
    assert_eq!(all.len(), 12);
    assert!(all.iter().all(|r| r.2 == "done" || r.2 == "pruned"), "{all:?}");
    assert!(all.iter().any(|r| r.2 == "pruned"), "{all:?}");
    assert_eq!(common::count(&db, "SELECT MAX(attempts) FROM runs"), 1, "no trial trained twice");
    let conn = Connection::open(&db).expect("db");
    for (id, _, status, error, last) in &all {
        if status == "pruned" {
            assert!(!is_single_task(&conn, *id));
            let error = error.as_deref().expect("reason");
            assert!(error.starts_with(&format!("pruned at epoch {last}: val Δm% ")), "{error}");
        }
    }
}

#[test]
fn cluster_workers_prune_against_the_finished_shards_as_one_process_does() {
    let ws = Workspace::new();
    ws.write("pruned.toml", PRUNED);
    expect_code(&ws.mtl(&["run", "pruned.toml", "--jobs", "1", "--no-report", "--db", "local.db"]), 0);
    let local = runs(&ws.path("local.db"));
    assert!(local.iter().any(|r| r.2 == "pruned"), "{local:?}");

    // The same trials as cluster workers (what each Slurm array task runs), one after
    // another in the order the local run trained them: each compares with the shards
    // finished before it, as the local run compared with the runs before.
    expect_code(&ws.mtl(&["run", "pruned.toml", "--executor", "plan", "--db", "cluster.db"]), 0);
    let plan_file = ws.path("cluster.db.cluster/pruned/plan.json");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).expect("plan")).expect("json");
    let keys: Vec<&str> =
        plan["trial_keys"].as_array().expect("keys").iter().map(|k| k.as_str().expect("a key")).collect();
    for (_, key, status, ..) in &local {
        let index = keys.iter().position(|k| k == key).expect("planned").to_string();
        let out = ws.mtl(&["worker", "--plan", plan_file.to_str().expect("utf-8"), "--trial", &index]);
        expect_code(&out, 0);
        assert!(text(&out.stdout).contains(&format!("): {status}, in ")), "{status}: {}", text(&out.stdout));
    }
    expect_code(&ws.mtl(&["merge", "--db", "cluster.db"]), 0);
    let outcome = |all: Vec<(i64, String, String, Option<String>, i64)>| {
        let mut by_key: Vec<_> =
            all.into_iter().map(|(_, key, status, error, last)| (key, status, error, last)).collect();
        by_key.sort();
        by_key
    };
    assert_eq!(outcome(runs(&ws.path("cluster.db"))), outcome(local));
}
