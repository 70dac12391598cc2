//! The MLflow file store on a fixture written as MLflow writes one.

use std::path::Path;

use super::*;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Experiment `1` ("digits") with a finished, a failed and a deleted run, experiment `2`
/// deleted, and a `.trash` folder.
fn store(root: &Path) {
    write(
        &root.join("1/meta.yaml"),
        "artifact_location: file:///tmp/mlruns/1\nexperiment_id: '1'\nlifecycle_stage: active\nname: digits\n",
    );
    write(&root.join("2/meta.yaml"), "experiment_id: '2'\nlifecycle_stage: deleted\nname: old\n");
    std::fs::create_dir_all(root.join(".trash")).expect("trash");
    let run = |id: &str, status: u8, stage: &str| {
        let meta = format!(
            "artifact_uri: file:///tmp/mlruns/1/{id}/artifacts\nend_time: 1700000100000\nexperiment_id: '1'\n\
             lifecycle_stage: {stage}\nrun_id: {id}\nrun_name: run-{id}\nrun_uuid: {id}\nsource_type: 4\n\
             start_time: 1700000000000\nstatus: {status}\ntags: []\nuser_id: alice\n"
        );
        write(&root.join(format!("1/{id}/meta.yaml")), &meta);
    };
    run("aaa", 3, "active");
    run("bbb", 4, "active");
    run("ccc", 3, "deleted");
    write(&root.join("1/aaa/params/lr"), "0.001");
    write(&root.join("1/aaa/params/strategy"), "hard");
    write(&root.join("1/aaa/tags/mlflow.user"), "alice");
    write(&root.join("1/aaa/metrics/val/left_acc"), "1700000001000 0.5 0\n1700000002000 0.75 1\n");
    write(&root.join("1/aaa/metrics/loss"), "1700000001000 2.5\n1700000002000 NaN\n");
}

#[test]
fn runs_params_tags_and_metrics_are_read_deleted_ones_left_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    store(dir.path());
    let runs = read_experiment(dir.path(), "digits").expect("read");
    assert_eq!(runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["aaa", "bbb"]);
    let (a, b) = (&runs[0], &runs[1]);
    assert_eq!((a.state, b.state), (RunState::Finished, RunState::Failed));
    assert_eq!(a.run_name.as_deref(), Some("run-aaa"));
    assert_eq!(a.params.get("lr").map(String::as_str), Some("0.001"));
    assert_eq!(a.tags.get("mlflow.user").map(String::as_str), Some("alice"));
    assert_eq!(
        a.metrics["val/left_acc"],
        [
            Logged { timestamp: 1700000001000, value: 0.5, step: 0 },
            Logged { timestamp: 1700000002000, value: 0.75, step: 1 }
        ]
    );
    let loss = &a.metrics["loss"];
    assert_eq!((loss[0].value, loss[0].step), (2.5, 0), "an old file without steps: step 0");
    assert!(loss[1].value.is_nan());
    // By id too.
    assert_eq!(read_experiment(dir.path(), "1").expect("by id").len(), 2);
}

#[test]
fn a_missing_experiment_lists_those_there_and_a_bad_line_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    store(dir.path());
    let error = read_experiment(dir.path(), "letters").expect_err("absent").to_string();
    assert!(error.contains("no experiment named \"letters\"") && error.contains("\"digits\" (id 1)"), "{error}");
    assert!(!error.contains("\"old\""), "deleted experiments are not offered: {error}");
    write(&dir.path().join("1/aaa/metrics/loss"), "1700000001000 2.5 0\n17000 lots 1\n");
    let error = read_experiment(dir.path(), "digits").expect_err("bad").to_string();
    assert!(error.contains("metrics/loss") && error.contains("line 2: a value that is not a number"), "{error}");
    write(&dir.path().join("1/aaa/meta.yaml"), "run_id: aaa\nstatus: 9\n");
    let error = read_experiment(dir.path(), "digits").expect_err("bad status").to_string();
    assert!(error.contains("status Some(\"9\")"), "{error}");
}
