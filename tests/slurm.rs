//! The Slurm executor end to end on a real single-node Slurm cluster
//! (`scripts/slurm-local.sh up`: Debian's slurm-wlm and munge on localhost, as root).
//! Built as the `slurm` test of mtl-cli.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod support {
    pub mod common;
}
use support::common::{metric_bits, SMALL};

fn mtl(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mtl")).args(args).current_dir(dir).output().expect("run mtl");
    assert!(
        output.status.success(),
        "mtl {args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The state of each trial, by index, from `mtl status --all --format json`.
fn states(dir: &Path, db: &str) -> Vec<(String, String)> {
    let out = mtl(dir, &["status", "--db", db, "--all", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let trials = status["trials"].as_array().expect("trials");
    trials
        .iter()
        .map(|t| (t["state"].as_str().unwrap_or("").into(), t["detail"].as_str().unwrap_or("").into()))
        .collect()
}

/// The newest job id submitted for the experiment `small`.
fn last_job(dir: &Path, db: &str) -> String {
    last_job_of(dir, db, "small")
}

/// The newest job id submitted for `experiment`.
fn last_job_of(dir: &Path, db: &str, experiment: &str) -> String {
    let jobs = std::fs::read_to_string(dir.join(format!("{db}.cluster/{experiment}/jobs"))).expect("jobs file");
    // Lines are "JOB INDICES".
    jobs.lines().last().and_then(|line| line.split_whitespace().next()).expect("a job").to_string()
}

/// Polls squeue until job `job` has left the queue (bounded).
fn wait_for(job: &str) {
    let start = Instant::now();
    loop {
        let out = Command::new("squeue").args(["-h", "-j", job]).output().expect("squeue");
        assert!(out.status.success() || start.elapsed() > Duration::from_secs(1), "squeue failed");
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "job {job} still queued after 5 minutes");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One test at a time on the one-node cluster (this file's tests share it), and
/// `scripts/slurm-local.sh up` once: two at once race on its files.
static CLUSTER: std::sync::Mutex<bool> = std::sync::Mutex::new(false);

/// Brings the cluster up (once) and holds it for the calling test.
fn slurm_up() -> std::sync::MutexGuard<'static, bool> {
    let mut up = CLUSTER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !*up {
        start_slurm();
        *up = true;
    }
    up
}

fn start_slurm() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-local.sh");
    let out = Command::new(&script).arg("up").output().expect("run scripts/slurm-local.sh");
    assert!(
        out.status.success(),
        "this test needs a single-node Slurm cluster; `{} up` (as root, with apt) failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_sweep_submitted_to_slurm_merges_into_the_same_metrics_as_a_local_run_and_retries_lost_and_killed_tasks() {
    let _cluster = slurm_up();
    let dir = tempfile::tempdir().expect("dir");
    let dir = dir.path();
    std::fs::write(dir.join("small.toml"), SMALL).expect("experiment");

    // The sweep as a job array, two tasks at a time; then merged, twice.
    mtl(dir, &["run", "small.toml", "--db", "cluster.db", "--executor", "slurm", "--max-parallel", "2"]);
    wait_for(&last_job(dir, "cluster.db"));
    let after_jobs = states(dir, "cluster.db");
    assert!(after_jobs.iter().all(|(state, _)| state == "done, not merged"), "{after_jobs:?}");
    let merged = String::from_utf8_lossy(&mtl(dir, &["merge", "--db", "cluster.db"]).stdout).into_owned();
    assert!(merged.contains("6 done, 0 failed; 0 already there"), "{merged}");
    let again = String::from_utf8_lossy(&mtl(dir, &["merge", "--db", "cluster.db"]).stdout).into_owned();
    assert!(again.contains("0 done, 0 failed; 6 already there"), "merging twice changes nothing: {again}");
    assert!(states(dir, "cluster.db").iter().all(|(state, _)| state == "done"));

    // The same plan run here gives the same trials with bit-identical metrics.
    mtl(dir, &["run", "small.toml", "--db", "local.db", "--no-report"]);
    let local = metric_bits(&dir.join("local.db"));
    assert_eq!(local.len(), 6 * 2 * 2 * 8);
    assert_eq!(metric_bits(&dir.join("cluster.db")), local);

    // One task at a time; cancel the last while it waits: it is lost, and --retry-failed
    // submits it alone; killed while it trains, it fails again; a last retry completes the plan.
    mtl(dir, &["run", "small.toml", "--db", "retry.db", "--executor", "slurm", "--max-parallel", "1"]);
    let job = last_job(dir, "retry.db");
    let cancelled = Command::new("scancel").arg(format!("{job}_5")).status().expect("scancel");
    assert!(cancelled.success());
    wait_for(&job);
    let after_cancel = states(dir, "retry.db");
    assert_eq!(after_cancel.iter().filter(|(s, _)| s == "done, not merged").count(), 5, "{after_cancel:?}");
    assert_eq!(after_cancel[5].0, "failed", "{after_cancel:?}");
    assert!(after_cancel[5].1.contains("lost"), "{after_cancel:?}");
    // Retried, but killed while it trains (paused inside an epoch's write by the test hook):
    // no shard is left, the task failed, and the trial is failed again.
    let retried = String::from_utf8_lossy(
        &mtl(
            dir,
            &[
                "run",
                "small.toml",
                "--db",
                "retry.db",
                "--executor",
                "slurm",
                "--retry-failed",
                "--sbatch-arg=--export=ALL,MTL_TEST_PAUSE_AT=epoch-write",
            ],
        )
        .stdout,
    )
    .into_owned();
    assert!(retried.contains("1 array task(s) (5)"), "{retried}");
    let job = last_job(dir, "retry.db");
    let log = dir.join(format!("retry.db.cluster/small/logs/{job}_5.out"));
    let start = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("mtl test hook: paused at epoch-write") {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the worker never paused; its log:\n{:?}",
            std::fs::read_to_string(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(Command::new("scancel").args(["--signal=KILL", &format!("{job}_5")]).status().expect("scancel").success());
    wait_for(&job);
    let after_kill = states(dir, "retry.db");
    assert_eq!(after_kill[5].0, "failed", "{after_kill:?}");
    let shards = std::fs::read_dir(dir.join("retry.db.cluster/small/shards")).expect("shards").count();
    assert_eq!(shards, 5, "the killed worker published nothing");

    let retried = String::from_utf8_lossy(
        &mtl(dir, &["run", "small.toml", "--db", "retry.db", "--executor", "slurm", "--retry-failed"]).stdout,
    )
    .into_owned();
    assert!(retried.contains("1 array task(s) (5)"), "{retried}");
    wait_for(&last_job(dir, "retry.db"));
    mtl(dir, &["merge", "--db", "retry.db"]);
    assert!(states(dir, "retry.db").iter().all(|(state, _)| state == "done"));
    assert_eq!(metric_bits(&dir.join("retry.db")), local);
}

#[test]
fn a_sweep_of_the_users_own_program_runs_as_a_slurm_job_array_with_the_same_metrics_as_locally() {
    let _cluster = slurm_up();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository");
    let dir = tempfile::tempdir().expect("dir");
    let dir = dir.path();
    let script = repo.join("tests/fixtures/trainer/train.py");
    let experiment = format!(
        "name = \"own\"\nepochs = 3\nseeds = [0, 1]\n\n[trainer]\ncommand = [\"python3\", \"{}\", \"--lambda\", \
         \"{{lambda}}\", \"--seed\", \"{{seed}}\"]\nmetrics = {{ left = {{ accuracy = \"higher\" }}, right = {{ \
         accuracy = \"higher\", loss = \"lower\" }} }}\nselect = {{ right = \"accuracy\" }}\n\n[sweep]\nstrategy = [\"single-task\", \"hard\"]\nlambda = [0.5, 2.0]\n\
         lr = [0.001]\n",
        script.display()
    );
    std::fs::write(dir.join("own.toml"), experiment).expect("experiment");
    // sbatch passes the environment on: the workers find the Python client.
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mtl"))
            .args(args)
            .current_dir(dir)
            .env("MTL_CLIENT", repo.join("clients/python"))
            .output()
            .expect("run mtl");
        assert!(out.status.success(), "mtl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["run", "own.toml", "--db", "cluster.db", "--executor", "slurm", "--max-parallel", "2"]);
    wait_for(&last_job_of(dir, "cluster.db", "own"));
    let merged = String::from_utf8_lossy(&mtl(dir, &["merge", "--db", "cluster.db"]).stdout).into_owned();
    assert!(merged.contains("6 done, 0 failed; 0 already there"), "{merged}");
    run(&["run", "own.toml", "--db", "local.db", "--no-report"]);
    let local = metric_bits(&dir.join("local.db"));
    // 6 trials × 3 metrics × 2 splits × 3 epochs.
    assert_eq!(local.len(), 6 * 3 * 2 * 3);
    assert_eq!(metric_bits(&dir.join("cluster.db")), local);
}

/// A random search (its points depend on their index only): the search of the `search`
/// test, 2 seeds, a budget of 6 trials, after 2 single-task baselines.
fn search_file() -> String {
    support::common::SEARCH
        .replace("sampler = \"tpe\"", "sampler = \"random\"")
        .replace("startup = 2\n", "")
        .replace("budget = 10", "budget = 6")
        .replace("weighting = [\"static\", \"equal\", \"dwa\"]", "weighting = [\"static\", \"dwa\"]")
}

/// `(search_index, search_point, trial_key)` of each search run, in that order.
fn search_points(db: &Path) -> Vec<(i64, String, String)> {
    let conn = rusqlite::Connection::open(db).expect("db");
    let mut stmt = conn
        .prepare(
            "SELECT CAST(i.num AS INTEGER), p.text, r.trial_key FROM runs r
             JOIN params i ON i.run_id = r.id AND i.key = 'search_index'
             JOIN params p ON p.run_id = r.id AND p.key = 'search_point' WHERE r.status = 'done' ORDER BY 1, 3",
        )
        .expect("prepare");
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

#[test]
fn a_search_coordinated_on_slurm_proposes_and_trains_what_a_local_search_does() {
    let _cluster = slurm_up();
    let dir = tempfile::tempdir().expect("dir");
    let dir = dir.path();
    std::fs::write(dir.join("search.toml"), search_file()).expect("experiment");
    mtl(dir, &["run", "search.toml", "--db", "local.db", "--jobs", "1", "--no-report"]);

    // The coordinator returns once the budget is spent and every trial has ended, merged.
    let out = mtl(dir, &["run", "search.toml", "--db", "cluster.db", "--executor", "slurm", "--max-parallel", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("search finished on Slurm: 3 point(s), 6 trial(s)"), "{stdout}");
    let (local, cluster) = (dir.join("local.db"), dir.join("cluster.db"));
    assert_eq!(search_points(&cluster).len(), 6);
    assert_eq!(search_points(&cluster), search_points(&local), "the same points under the same indices");
    assert_eq!(metric_bits(&cluster), metric_bits(&local), "bit-identical metrics");
    let states = states(dir, "cluster.db");
    assert_eq!(states.len(), 8, "{states:?}");
    assert!(states.iter().all(|(state, _)| state == "done"), "{states:?}");

    // A coordinator killed (SIGKILL) after its second submission: the same command resumes
    // with the points proposed so far and ends with the local search's points and bits.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["run", "search.toml", "--db", "killed.db", "--executor", "slurm", "--max-parallel", "1"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let jobs_file = dir.join("killed.db.cluster/searched/jobs");
    let start = Instant::now();
    while std::fs::read_to_string(&jobs_file).map_or(0, |j| j.lines().count()) < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "no second submission");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let resumed = mtl(dir, &["run", "search.toml", "--db", "killed.db", "--executor", "slurm", "--max-parallel", "1"]);
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("3 point(s), 6 trial(s)"));
    assert_eq!(search_points(&dir.join("killed.db")), search_points(&local));
    assert_eq!(metric_bits(&dir.join("killed.db")), metric_bits(&local));

    // A database with a search run by `mtl run` is not numbered again by a coordinator.
    let out = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["run", "search.toml", "--db", "local.db", "--executor", "slurm"])
        .current_dir(dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("6 search trial(s) of experiment \"searched\" that its Slurm plan does not list"));

    // Spent: run again, nothing is proposed or submitted.
    let jobs = std::fs::read_to_string(dir.join("cluster.db.cluster/searched/jobs")).expect("jobs");
    let again = mtl(dir, &["run", "search.toml", "--db", "cluster.db", "--executor", "slurm"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("3 point(s), 6 trial(s)"));
    assert_eq!(std::fs::read_to_string(dir.join("cluster.db.cluster/searched/jobs")).expect("jobs"), jobs);
}
