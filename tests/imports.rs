//! `mtl import mlflow` (issue 21) on an MLflow file store written as MLflow writes one:
//! the runs, their settings, metrics per epoch and tags in the database, `compare` on
//! them against the imported single-task baselines, a second import changing nothing, and
//! bad input refused before anything is written.

use std::path::Path;

mod support {
    pub mod common;
}
use support::common::{count, expect_code, metric_bits, text, Workspace};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// `mlruns/` with experiment 7, "digits": single-task and hard sharing, seeds 0 and 1, each
/// logging `{split}_{task}_acc` for two digits at steps 0–2 and a `train_loss` the pattern
/// skips; hard sharing is 0.02 better on the left digit. Plus a deleted run and `.trash`.
fn write_mlruns(root: &Path) {
    write(&root.join("7/meta.yaml"), "artifact_location: file:///work/mlruns/7\ncreation_time: 1700000000000\nexperiment_id: '7'\nlast_update_time: 1700000000000\nlifecycle_stage: active\nname: digits\n");
    std::fs::create_dir_all(root.join(".trash")).expect("trash");
    let mut n = 0;
    for strategy in ["single-task", "hard"] {
        for seed in [0, 1] {
            n += 1;
            let id = format!("{n:032x}");
            let run = root.join("7").join(&id);
            write(
                &run.join("meta.yaml"),
                &format!(
                    "artifact_uri: file:///work/mlruns/7/{id}/artifacts\nend_time: 1700000900000\nentry_point_name: ''\n\
                     experiment_id: '7'\nlifecycle_stage: active\nrun_id: {id}\nrun_name: {strategy}-{seed}\n\
                     run_uuid: {id}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1700000000000\n\
                     status: 3\ntags: []\nuser_id: alice\n"
                ),
            );
            write(&run.join("params/sharing"), strategy);
            write(&run.join("params/random_seed"), &seed.to_string());
            write(&run.join("params/lr"), "0.001");
            write(&run.join("tags/mlflow.user"), "alice");
            write(&run.join("tags/team.name"), "vision");
            let gain = if strategy == "hard" { 0.02 } else { 0.0 };
            for (task, base) in [("left", 0.90), ("right", 0.85)] {
                for split in ["val", "test"] {
                    let mut lines = String::new();
                    for step in 0..3 {
                        let value =
                            base + 0.01 * step as f64 + 0.005 * seed as f64 + if task == "left" { gain } else { 0.0 };
                        lines += &format!("{} {value} {step}\n", 1700000000000i64 + 1000 * step);
                    }
                    write(&run.join(format!("metrics/{split}_{task}_acc")), &lines);
                }
            }
            write(&run.join("metrics/train_loss"), "1700000000000 1.5 0\n1700000001000 nan 1\n");
        }
    }
    write(&root.join("7/ffff/meta.yaml"), "run_id: ffff\nlifecycle_stage: deleted\nstatus: 3\n");
}

const IMPORT: [&str; 12] = [
    "import",
    "mlflow",
    "mlruns",
    "--experiment",
    "digits",
    "--metric-pattern",
    "{split}_{task}_{metric}",
    "--name",
    "acc=accuracy",
    "--param",
    "seed=random_seed",
    "--param=strategy=sharing",
];

#[test]
fn an_mlflow_experiment_is_imported_compared_and_a_second_import_changes_nothing() {
    let ws = Workspace::new();
    write_mlruns(&ws.path("mlruns"));
    let out = ws.mtl(&IMPORT);
    expect_code(&out, 0);
    assert!(
        text(&out.stdout).contains("imported 4 run(s) into experiment digits (0 already there unchanged)"),
        "{}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("skipped metric keys") && stderr.contains("train_loss"), "{stderr}");
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 4);
    // 4 runs × 2 tasks × 2 splits × 3 epochs.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM metrics WHERE metric = 'accuracy'"), 48);
    assert_eq!(count(&db, "SELECT MAX(epoch) FROM metrics"), 3);

    let listed = ws.mtl(&["ls", "--experiment", "digits", "--where", "tag.team_name = 'vision' AND seed = 1"]);
    expect_code(&listed, 0);
    assert_eq!(text(&listed.stdout).matches("single-task").count(), 1, "{}", text(&listed.stdout));

    let compare = ws.mtl(&["compare", "--experiment", "digits", "--format", "json"]);
    expect_code(&compare, 0);
    let groups: serde_json::Value = serde_json::from_slice(&compare.stdout).expect("json");
    let groups = groups.as_array().expect("groups");
    let hard = groups.iter().find(|g| g["group"]["strategy"] == "hard").unwrap_or_else(|| panic!("{groups:?}"));
    assert_eq!(hard["runs"].as_array().map(Vec::len), Some(2), "the two seeds in one group");
    // (0.94 + 0.945)/2 in f64 is 0.9425000000000001, as the JSON writes it.
    let mean = hard["metrics"]["left.test.accuracy"]["mean"].as_f64().expect("a mean");
    assert!((mean - 0.9425).abs() < 1e-12, "{mean}");
    // Left +0.02 over 0.9225 (epoch 3, the seeds' mean), right unchanged: Δm% = (0.02/0.9225)/2·100.
    let delta = hard["delta_m"].as_f64().expect("Δm%");
    assert!((delta - 100.0 * (0.02 / 0.9225) / 2.0).abs() < 1e-9, "{delta}");

    let before = metric_bits(&db);
    let again = ws.mtl(&IMPORT);
    expect_code(&again, 0);
    assert!(text(&again.stdout).contains("imported 0 run(s) into experiment digits (4 already there unchanged)"));
    assert_eq!(metric_bits(&db), before);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs"), 4);
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let ws = Workspace::new();
    write_mlruns(&ws.path("mlruns"));
    for (args, expected) in [
        (vec!["import", "mlflow", "mlruns", "--experiment", "letters"], "no experiment named \"letters\""),
        (vec!["import", "mlflow", "nowhere", "--experiment", "digits"], "nowhere"),
        (
            vec!["import", "mlflow", "mlruns", "--experiment", "digits", "--metric-pattern", "{task}_{metric}"],
            "{split} must appear exactly once",
        ),
        (
            vec!["import", "mlflow", "mlruns", "--experiment", "digits", "--name", "acc"],
            "--name \"acc\": write FROM=TO",
        ),
        (
            vec!["import", "mlflow", "mlruns/7/meta.yaml", "--experiment", "digits"],
            "cannot be read as an MLflow database",
        ),
    ] {
        let out = ws.mtl(&args);
        expect_code(&out, 2);
        assert!(text(&out.stderr).contains(expected), "{args:?}: {}", text(&out.stderr));
        assert!(!ws.path("mtl.db").exists(), "{args:?} wrote a database");
    }
}

/// The fixtures MLflow 3.18 itself wrote (`tests/fixtures/mlflow/make_fixtures.py`): the
/// same four runs in its SQLite backend and in its file store.
#[test]
fn mlflows_own_sqlite_database_and_file_store_import_to_the_same_numbers() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mlflow");
    let ws = Workspace::new();
    let mut deltas = Vec::new();
    for (source, db) in [("mlflow.db", "from-sqlite.db"), ("mlruns", "from-files.db")] {
        // As a tracking URI for the database, as a folder for the file store.
        let path = fixtures.join(source);
        let path = match source {
            "mlflow.db" => format!("sqlite:///{}", path.display()),
            _ => path.display().to_string(),
        };
        let path = path.as_str();
        let mut args: Vec<&str> = IMPORT.to_vec();
        args[2] = path;
        args.extend(["--db", db]);
        let out = ws.mtl(&args);
        expect_code(&out, 0);
        assert!(text(&out.stdout).contains("imported 4 run(s)"), "{source}: {}", text(&out.stdout));
        let db = ws.path(db);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 4, "{source}");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM metrics WHERE metric = 'accuracy'"), 48, "{source}");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM tags WHERE key = 'team_name' AND value = 'vision'"), 4);
        let compare = ws.mtl(&["compare", "--experiment", "digits", "--format", "json", "--db", db.to_str().unwrap()]);
        expect_code(&compare, 0);
        let groups: serde_json::Value = serde_json::from_slice(&compare.stdout).expect("json");
        let hard = groups.as_array().and_then(|g| g.iter().find(|g| g["group"]["strategy"] == "hard")).cloned();
        deltas.push(hard.and_then(|h| h["delta_m"].as_f64()).expect("Δm% of hard"));
    }
    assert!((deltas[0] - 100.0 * (0.02 / 0.9225) / 2.0).abs() < 1e-9, "{deltas:?}");
    assert_eq!(deltas[0], deltas[1]);
}
