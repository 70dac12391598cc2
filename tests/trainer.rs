//! `[trainer]` (issue 21): a program of the user's own run per trial — the stdlib-only
//! `tests/fixtures/trainer/train.py` speaking the metrics protocol through
//! `clients/python/mtl_client.py` — its metrics in the database and in `compare`, and every
//! way a program can end: failure with its output's tail, a timeout, a malformed line, an
//! artifact, and `mtl run` killed mid-trial (the program goes too; the trial runs again).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support {
    pub mod common;
}
use support::common::{count, expect_code, text, Workspace};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository")
}

/// An experiment running train.py with `mode`, over single-task and hard sharing, λ 0.5
/// and 2, seeds 0 and 1 (`extra` lines added to `[trainer]`).
fn experiment(mode: &str, extra: &str) -> String {
    let script = repo().join("tests/fixtures/trainer/train.py");
    format!(
        "name = \"own\"\nepochs = 3\nseeds = [0, 1]\n\n[trainer]\ncommand = [\"python3\", \"{}\", \"--lambda\", \
         \"{{lambda}}\", \"--seed\", \"{{seed}}\", \"--mode\", \"{mode}\"]\nmetrics = {{ left = {{ accuracy = \
         \"higher\" }}, right = {{ accuracy = \"higher\", loss = \"lower\" }} }}\nselect = {{ right = \"accuracy\" \
         }}\n{extra}\n[sweep]\nstrategy = [\"single-task\", \"hard\"]\nlambda = [0.5, 2.0]\nlr = [0.001]\n",
        script.display()
    )
}

fn mtl_run(ws: &Workspace) -> std::process::Output {
    mtl_run_with(ws, &[])
}

fn mtl_run_with(ws: &Workspace, extra: &[&str]) -> std::process::Output {
    ws.command(&[&["run", "own.toml", "--no-report"], extra].concat())
        .env("MTL_CLIENT", repo().join("clients/python"))
        .output()
        .expect("run mtl")
}

#[test]
fn a_sweep_of_the_users_program_is_stored_and_compared_like_built_in_trials() {
    let ws = Workspace::new();
    // The program beside the experiment file, named through {dir}.
    std::fs::copy(repo().join("tests/fixtures/trainer/train.py"), ws.path("train.py")).expect("copy");
    let script = repo().join("tests/fixtures/trainer/train.py").display().to_string();
    ws.write("own.toml", &experiment("ok", "").replace(&script, "{dir}/train.py"));
    // Two trials at a time, each seeing one of two GPUs.
    let out = mtl_run_with(&ws, &["--jobs", "2", "--gpus", "3,5"]);
    expect_code(&out, 0);
    let db = ws.path("mtl.db");
    // single-task once per seed, hard under λ 0.5 and 2: 6 trials, 3 epochs each.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 6);
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT epoch) FROM metrics"), 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM metrics WHERE task = 'right' AND metric = 'loss'"), 6 * 2 * 3);
    let compare = ws.mtl(&["compare", "--format", "json"]);
    expect_code(&compare, 0);
    let groups: serde_json::Value = serde_json::from_slice(&compare.stdout).expect("json");
    let groups = groups.as_array().expect("groups");
    let hard = |lambda: f64| {
        groups
            .iter()
            .find(|g| g["group"]["strategy"] == "hard" && g["group"]["lambda"].as_f64() == Some(lambda))
            .unwrap_or_else(|| panic!("no hard λ={lambda}: {groups:?}"))
    };
    // Epoch 3, seeds 0 and 1: single-task left 0.8005, right 0.8005 + 0.02λ... (train.py):
    // hard λ=0.5 left = 0.8005 + 0.05 − 0.01, right = 0.8005 + 0.01; single-task λ is 1.
    let (left_st, right_st) = (0.8005 - 0.02, 0.8005 + 0.02);
    let (left, right) = (0.8005 + 0.05 - 0.01, 0.8005 + 0.01);
    let expected = 100.0 * ((left - left_st) / left_st + (right - right_st) / right_st) / 2.0;
    let delta = hard(0.5)["delta_m"].as_f64().expect("Δm%");
    assert!((delta - expected).abs() < 1e-9, "{delta} vs {expected}");
    assert!(
        hard(2.0)["metrics"]["right.test.accuracy"]["mean"].as_f64()
            > hard(0.5)["metrics"]["right.test.accuracy"]["mean"].as_f64()
    );
    // The program's output and its trial file are in the trial's working folder.
    let runs = ws.path("mtl.db.runs/own");
    let folders: Vec<PathBuf> = std::fs::read_dir(&runs).expect("runs").map(|e| e.expect("entry").path()).collect();
    assert_eq!(folders.len(), 6);
    let log = std::fs::read_to_string(folders[0].join("output.log")).expect("log");
    assert!(log.starts_with("training "), "{log}");
    let gpus: std::collections::BTreeSet<String> = folders
        .iter()
        .map(|f| std::fs::read_to_string(f.join("output.log")).expect("log"))
        .filter_map(|log| log.lines().find_map(|l| l.strip_prefix("gpu ").map(String::from)))
        .collect();
    assert_eq!(gpus, ["3".to_string(), "5".to_string()].into(), "each job its GPU");
    // Everything is done: a second run trains nothing.
    let again = mtl_run(&ws);
    expect_code(&again, 0);
    assert_eq!(count(&db, "SELECT SUM(attempts) FROM runs"), 6);
    // The program picked its own device: none is recorded for it.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE device IS NULL"), 6);
}

#[test]
fn failures_timeouts_and_malformed_lines_fail_their_trial_not_the_sweep() {
    for (mode, extra, expected) in [
        ("fail", "", "the program exited with code 3; the last lines of its output.log:"),
        ("sleep", "timeout = 1", "timed out after 1 s"),
        ("malformed", "", "metrics line 6: unknown task \"middle\"; the experiment declares left, right"),
    ] {
        let ws = Workspace::new();
        ws.write("own.toml", &experiment(mode, extra));
        let out = mtl_run(&ws);
        expect_code(&out, 1);
        let db = ws.path("mtl.db");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'failed'"), 6, "{mode}");
        let conn = rusqlite::Connection::open(&db).expect("db");
        let error: String = conn.query_row("SELECT error FROM runs LIMIT 1", [], |r| r.get(0)).expect("error");
        assert!(error.contains(expected), "{mode}: {error}");
        if mode == "fail" {
            assert!(error.contains("something went wrong"), "the output's tail: {error}");
            // Epoch 1 was complete before the program failed.
            assert_eq!(count(&db, "SELECT COUNT(DISTINCT run_id) FROM metrics WHERE epoch = 1"), 6);
        }
        if mode == "sleep" {
            // The program is gone, not left sleeping.
            for folder in std::fs::read_dir(ws.path("mtl.db.runs/own")).expect("runs") {
                let pid = std::fs::read_to_string(folder.expect("entry").path().join("pid")).expect("pid");
                assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists(), "process {pid} still runs");
            }
        }
    }
}

#[test]
fn artifacts_are_kept_and_bad_trainer_sections_are_refused() {
    let ws = Workspace::new();
    ws.write("own.toml", &experiment("artifact", ""));
    expect_code(&mtl_run(&ws), 0);
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM artifacts WHERE name = 'model'"), 6);

    let bad = [
        (experiment("ok", "").replace("{seed}", "{sed}"), "unknown placeholder {sed}"),
        (experiment("ok", "").replace("loss = \"lower\"", "loss = \"higher\""), "loss is declared higher is better"),
        (
            experiment("ok", "")
                .replace("select = { right = \"accuracy\" }", "")
                .replace("right = { accuracy", "right = { f1"),
            "task right declares several metrics",
        ),
        (experiment("ok", "timeout = -1"), "give the seconds a trial may run"),
        (
            experiment("ok", "") + "\n[[tasks]]\nname = \"a\"\ndata = { format = \"synthetic-shapes\" }\n",
            "with a [trainer], the tasks are the keys of trainer.metrics",
        ),
    ];
    let fresh = Workspace::new();
    for (file, expected) in bad {
        fresh.write("own.toml", &file);
        let out = mtl_run(&fresh);
        expect_code(&out, 2);
        assert!(text(&out.stderr).contains(expected), "{expected}: {}", text(&out.stderr));
        assert!(!fresh.path("mtl.db").exists());
    }
}

/// `mtl run` of one seed on one job, its programs asleep (`TRAIN_MODE=sleep`; the file is
/// the one a later plain `mtl_run` reads, so the trials are the same), and the pid of the
/// first program once it has started.
// Every path reaps the child: the callers wait for it, the timeout kills and reaps it; the
// lint does not follow it out of the function.
#[allow(clippy::zombie_processes)]
fn sleeping_sweep(ws: &Workspace) -> (std::process::Child, String) {
    let file = experiment("ok", "").replace(", \"--mode\", \"ok\"", "").replace("seeds = [0, 1]", "seeds = [0]");
    ws.write("own.toml", &file);
    let mut child = ws
        .command(&["run", "own.toml", "--no-report", "--jobs", "1"])
        .env("MTL_CLIENT", repo().join("clients/python"))
        .env("TRAIN_MODE", "sleep")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mtl run");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = std::fs::read_dir(ws.path("mtl.db.runs/own"))
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| std::fs::read_to_string(e.path().join("pid")).ok());
        if let Some(pid) = found.filter(|p| !p.is_empty()) {
            return (child, pid);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program never started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_mtl_run_takes_its_program_along_and_the_trial_runs_again() {
    let ws = Workspace::new();
    let (mut child, pid) = sleeping_sweep(&ws);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let proc = format!("/proc/{}", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&proc).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!Path::new(&proc).exists(), "the program outlived mtl");
    // The trial was left running by a process that is gone: the next run trains it again.
    let out = mtl_run(&ws);
    expect_code(&out, 0);
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 3);
    assert_eq!(count(&db, "SELECT SUM(attempts) FROM runs"), 4, "the killed trial ran twice");
}

#[test]
fn sigterm_to_mtl_run_stops_its_program_and_leaves_the_trial_interrupted() {
    let ws = Workspace::new();
    let (mut child, pid) = sleeping_sweep(&ws);
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("mtl ends");
    assert_eq!(exit.code(), Some(1), "an interrupted sweep exits 1");
    assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists(), "the program was stopped with mtl");
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'interrupted'"), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'running'"), 0);
}

#[test]
fn a_pruned_program_is_stopped_and_its_trial_ends_pruned() {
    let ws = Workspace::new();
    // left accuracy = 0.5 + 0.1·epoch + 0.001·seed + 0.05 − 0.02λ: λ = 2 trails λ = 0.5 by 0.03,
    // so with --jobs 1 both λ = 2 trials (planned after λ = 0.5's) fall below the median at epoch 1.
    let prune = "\n[prune]\nrule = \"median\"\nmetric = \"left.accuracy\"\nmin_trials = 2\n";
    ws.write("own.toml", &experiment("ok", "").replace("\n[sweep]", &format!("{prune}\n[sweep]")));
    let out = mtl_run_with(&ws, &["--jobs", "1"]);
    expect_code(&out, 0);
    let db = ws.path("mtl.db");
    let conn = rusqlite::Connection::open(&db).expect("db");
    let mut stmt = conn
        .prepare(
            "SELECT r.error, (SELECT MAX(epoch) FROM metrics m WHERE m.run_id = r.id) FROM runs r
             JOIN params p ON p.run_id = r.id AND p.key = 'lambda' AND p.num = 2 WHERE r.status = 'pruned'
             ORDER BY r.id",
        )
        .expect("prepare");
    let pruned: Vec<(String, i64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows");
    assert_eq!(
        pruned,
        [
            ("pruned at epoch 1: val left accuracy 0.6100 below the median 0.6405 of 2 trials at epoch 1".into(), 1),
            // The first pruned trial's epoch counts too.
            ("pruned at epoch 1: val left accuracy 0.6110 below the median 0.6400 of 3 trials at epoch 1".into(), 1)
        ],
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 4, "the baselines and λ = 0.5");
}

#[test]
fn the_line_a_finished_trial_prints_is_its_result_as_ls_shows_it() {
    let ws = Workspace::new();
    // Validation peaks at epoch 2 of 3 (--mode peak): each run's result is epoch 2, whose
    // test accuracies for hard λ = 0.5, seed 0 are left 0.5 + 0.2 + 0.05 − 0.01 and right 0.7 + 0.01.
    ws.write("own.toml", &experiment("peak", ""));
    let out = mtl_run_with(&ws, &["--jobs", "1"]);
    expect_code(&out, 0);
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("] hard λ=0.5 ") && l.contains("seed=0"))
        .unwrap_or_else(|| panic!("no line for hard λ=0.5 seed 0:\n{stderr}"));
    assert!(line.ends_with("done, test accuracy left 0.740, right 0.710 (epoch 2/3)"), "{line}");
    let ls = ws.mtl(&["ls", "--format", "json"]);
    expect_code(&ls, 0);
    let runs: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("json");
    let run = runs
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["settings"]["strategy"] == "hard" && r["settings"]["lambda"] == 0.5 && r["settings"]["seed"] == 0)
        .unwrap_or_else(|| panic!("no hard λ=0.5 seed 0 in {runs}"));
    assert_eq!(run["result_epoch"], 2);
    let result = |key: &str| run["result_metrics"][key].as_f64().map(|v| format!("{v:.3}"));
    assert_eq!(result("left.test.accuracy").as_deref(), Some("0.740"));
    assert_eq!(result("right.test.accuracy").as_deref(), Some("0.710"));
}
