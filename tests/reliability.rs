//! Reliability, end to end with the real `mtl` binary and real SQLite files: SIGKILL
//! at chosen and at varied moments, four writers on one database, a diverging
//! trial, and the corpus of bad inputs in `tests/bad-inputs/`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;

mod support {
    pub mod common;
}
use support::common::{count, expect_code, metric_bits, text, Workspace};

impl Workspace {
    /// Starts `mtl ARGS` with its stderr piped (and `MTL_TEST_PAUSE_AT=pause_at` if given).
    fn spawn(&self, args: &[&str], pause_at: Option<&str>) -> (Child, BufReader<ChildStderr>) {
        let mut command = self.command(args);
        if let Some(point) = pause_at {
            command.env("MTL_TEST_PAUSE_AT", point);
        }
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn mtl");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        (child, stderr)
    }
}

/// Reads stderr until a line contains `needle`; returns that line.
fn wait_for_line(stderr: &mut BufReader<ChildStderr>, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).expect("read stderr") > 0, "mtl ended before {needle:?}:\n{seen}");
        if line.contains(needle) {
            return line;
        }
        seen += &line;
    }
}

/// SIGKILL, then reap (a zombie would still look alive to the next run). Returns whether
/// the kill landed; if the process had already ended, it must have ended with exit 0.
fn try_kill_9(child: &mut Child) -> bool {
    // SAFETY: signalling our own child, not yet reaped, so its pid is still its own.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let status = child.wait().expect("wait");
    let landed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL);
    assert!(landed || status.success(), "{status:?}");
    landed
}

/// SIGKILL a process that cannot have ended yet (it is paused or has work left).
fn kill_9(child: &mut Child) {
    assert!(try_kill_9(child), "the process ended before the kill");
}

fn integrity_check(db: &Path) -> String {
    Connection::open(db).expect("open db").query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check")
}

/// A run's row: trial key, status, attempts, owner pid.
type RunRow = (String, String, i64, Option<i64>);

fn run_rows(db: &Path) -> Vec<RunRow> {
    let conn = Connection::open(db).expect("open db");
    let mut stmt =
        conn.prepare("SELECT trial_key, status, attempts, owner_pid FROM runs ORDER BY id").expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Two tasks, single-task and hard at two λ, two seeds: 6 trials of 3 epochs, each long
/// enough (47 steps an epoch) that a kill can land inside an epoch.
const KILL: &str = r#"
name = "kill"
epochs = 3
seeds = [0, 1]
batch_size = 32

[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 1500, n_val = 64, n_test = 64 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 1500, n_val = 64, n_test = 64 }

[model]
width = 8
hidden = 8

[sweep]
strategy = ["single-task", "hard"]
lambda = [0.5, 2.0]
lr = [0.01]
"#;

/// Metric points per epoch of every trial: 2 tasks × (train 2 + val 3 + test 3).
const POINTS_PER_EPOCH: i64 = 16;

/// What must hold after any kill: the file is sound, each row is a trial of the plan
/// (once: the key is unique), every logged epoch is whole (an epoch is one transaction),
/// done runs have every epoch, and at most `jobs` runs were left running.
fn check_after_kill(db: &Path, plan: &BTreeSet<String>, jobs: i64, what: &str) {
    assert_eq!(integrity_check(db), "ok", "{what}");
    let rows = run_rows(db);
    let keys: BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    assert_eq!(keys.len(), rows.len(), "{what}: a trial has two rows");
    assert!(keys.iter().all(|k| plan.contains(*k)), "{what}: a row outside the plan");
    assert!(rows.iter().filter(|r| r.1 == "running").count() as i64 <= jobs, "{what}: {rows:?}");
    let conn = Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare("SELECT r.status, m.epoch, COUNT(*) FROM metrics m JOIN runs r ON r.id = m.run_id GROUP BY m.run_id, m.epoch")
        .expect("prepare");
    let epochs: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(epochs.iter().all(|(_, _, n)| *n == POINTS_PER_EPOCH), "{what}: a partial epoch: {epochs:?}");
    let done_points =
        count(db, "SELECT COUNT(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.status = 'done'");
    let done = count(db, "SELECT COUNT(*) FROM runs WHERE status = 'done'");
    assert_eq!(done_points, done * 3 * POINTS_PER_EPOCH, "{what}: a done run lacks epochs");
}

#[test]
fn sigkill_at_any_moment_leaves_a_sound_database_and_the_rerun_completes_the_exact_plan() {
    let ws = Workspace::new();
    ws.write("kill.toml", KILL);
    // The reference: the same plan, never killed.
    expect_code(&ws.mtl(&["run", "kill.toml", "--db", "reference.db", "--no-report"]), 0);
    let reference = metric_bits(&ws.path("reference.db"));
    let plan: BTreeSet<String> = run_rows(&ws.path("reference.db")).into_iter().map(|r| r.0).collect();
    assert_eq!(plan.len(), 6);

    let db = ws.path("mtl.db");
    let args = ["run", "kill.toml", "--no-report", "--jobs", "1"];
    let mut kills = 0;
    let mut recovered_lines = Vec::new();

    // 1. Mid-epoch: right after epoch 1 of the first trial is stored, inside epoch 2's steps.
    let (mut child, mut stderr) = ws.spawn(&args, None);
    wait_for_line(&mut stderr, "epoch 1/3");
    kill_9(&mut child);
    kills += 1;
    check_after_kill(&db, &plan, 1, "mid-epoch");
    let rows = run_rows(&db);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].1.as_str(), rows[0].3), ("running", Some(child.id() as i64)), "left running by the killed pid");
    let first_trial = rows[0].0.clone();
    assert_eq!(count(&db, "SELECT MAX(epoch) FROM metrics"), 1);
    // `mtl ls` says that its process has ended before any run marks it interrupted.
    let listed = ws.mtl(&["ls", "--format", "json"]);
    expect_code(&listed, 0);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let error = listed[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains(&format!(":{} has ended; the next `mtl run`", child.id())), "{listed}");
    assert_eq!(listed[0]["status"], "running");

    // 2. During an epoch's write: the hook holds the transaction open after the inserts.
    let (mut child, mut stderr) = ws.spawn(&args, Some("epoch-write"));
    recovered_lines.push(wait_for_line(&mut stderr, "marked interrupted"));
    let paused = wait_for_line(&mut stderr, "mtl test hook: paused at epoch-write");
    kill_9(&mut child);
    kills += 1;
    check_after_kill(&db, &plan, 1, "during an epoch's write");
    // "(run R, epoch E)": the epoch being written is not in the file, the one before it is.
    let detail = paused.split_once("(run ").expect("detail").1;
    let (run, epoch) = detail.trim_end().trim_end_matches(')').split_once(", epoch ").expect("run and epoch");
    let last_epoch = count(&db, &format!("SELECT COALESCE(MAX(epoch), 0) FROM metrics WHERE run_id = {run}"));
    assert_eq!(last_epoch, epoch.parse::<i64>().expect("epoch") - 1, "{paused}");

    // 3. Between trials: one trial finished, the next not yet claimed.
    let (mut child, mut stderr) = ws.spawn(&args, Some("between-trials"));
    recovered_lines.push(wait_for_line(&mut stderr, "marked interrupted"));
    wait_for_line(&mut stderr, "mtl test hook: paused at between-trials");
    kill_9(&mut child);
    kills += 1;
    check_after_kill(&db, &plan, 1, "between trials");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'running'"), 0, "nothing claimed yet");
    assert!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'") >= 1);

    // 4. At varied moments, two trials at a time: while starting, opening, recovering,
    //    claiming, training, evaluating or writing, wherever the kill lands.
    //    Each run resumes the last, so on a fast machine a late one may finish the plan
    //    before its kill lands: then the plan must be complete, and later delays have no
    //    work. Five trials are left, several seconds of work: the kills up to 650 ms land.
    let mut finished_first = None;
    for delay_ms in [30, 120, 250, 400, 650, 900, 1300, 1800] {
        let (mut child, _stderr) = ws.spawn(&["run", "kill.toml", "--no-report", "--jobs", "2"], None);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let landed = try_kill_9(&mut child);
        check_after_kill(&db, &plan, 2, &format!("killed after {delay_ms} ms"));
        if !landed {
            assert!(delay_ms > 650, "the run given {delay_ms} ms ended before its kill");
            assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), plan.len() as i64);
            finished_first = Some(delay_ms);
            break;
        }
        kills += 1;
    }

    // The rerun completes exactly the plan: every trial once, done, with the metrics of the
    // run that was never killed, bit for bit.
    let before = run_rows(&db);
    let out = ws.mtl(&["run", "kill.toml", "--no-report"]);
    expect_code(&out, 0);
    let rows = run_rows(&db);
    assert_eq!(rows.iter().map(|r| r.0.clone()).collect::<BTreeSet<_>>(), plan);
    assert_eq!(rows.len(), plan.len());
    assert!(rows.iter().all(|r| r.1 == "done"), "{rows:?}");
    assert_eq!(metric_bits(&db), reference, "the resumed sweep's metrics equal an uninterrupted run's");
    assert_eq!(integrity_check(&db), "ok");
    // The trial killed mid-epoch and then during a write was marked interrupted and
    // trained again each time: its third attempt finished.
    assert!(
        recovered_lines.iter().all(|l| l.contains("its process") && l.contains("has ended")),
        "{recovered_lines:?}"
    );
    assert_eq!(rows.iter().find(|r| r.0 == first_trial).map(|r| r.2), Some(3), "{rows:?}");
    let retried = rows.iter().filter(|r| r.2 > 1).count();
    let finished_before = before.iter().filter(|r| r.1 == "done").count();
    let finished =
        finished_first.map_or(String::new(), |ms| format!(" (the run given {ms} ms finished the plan first)"));
    eprintln!(
        "{kills} SIGKILLs{finished}; before the last run {finished_before} of {} trials were done; {retried} trials needed more than one attempt",
        plan.len()
    );
}

/// 12 trials (3 seeds × single-task and hard at 3 λ), for the four writers.
const FOUR: &str = r#"
name = "four"
epochs = 2
seeds = [0, 1, 2]
batch_size = 32

[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 600, n_val = 64, n_test = 64 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 600, n_val = 64, n_test = 64 }

[model]
width = 8
hidden = 8

[sweep]
strategy = ["single-task", "hard"]
lambda = [0.5, 1.0, 2.0]
lr = [0.01]
"#;

#[test]
fn four_processes_on_one_database_train_each_trial_once_while_ls_and_report_read() {
    let ws = Workspace::new();
    ws.write("four.toml", FOUR);
    let started = Instant::now();
    let mut writers: Vec<Child> = (0..4)
        .map(|_| {
            ws.command(&["run", "four.toml", "--no-report"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn mtl")
        })
        .collect();
    let pids: BTreeSet<i64> = writers.iter().map(|w| w.id() as i64).collect();
    // Drain each writer's stderr on a thread so that none blocks on a full pipe.
    let readers: Vec<_> = writers
        .iter_mut()
        .map(|w| {
            let mut stderr = w.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                let mut text = String::new();
                stderr.read_to_string(&mut text).expect("read stderr");
                text
            })
        })
        .collect();

    // Read while they write: ls and report, in turn, until every writer has ended.
    let (mut reads_during_writes, mut reads) = (BTreeMap::from([("ls", 0), ("report", 0)]), 0);
    let all_ended = |writers: &mut Vec<Child>| writers.iter_mut().all(|w| w.try_wait().expect("try_wait").is_some());
    while !all_ended(&mut writers) {
        let (name, out) = if reads % 2 == 0 {
            ("ls", ws.mtl(&["ls", "--format", "json"]))
        } else {
            let folder = format!("report-{reads}");
            ("report", ws.mtl(&["report", "--out", &folder]))
        };
        reads += 1;
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("locked"), "{name}: {stderr}");
        // A read before the first trial is stored finds no database or no runs yet: fine.
        let too_early = stderr.contains("no results database") || stderr.contains("no runs");
        if !too_early {
            expect_code(&out, 0);
            if !all_ended(&mut writers) {
                *reads_during_writes.get_mut(name).expect("name") += 1;
            }
        }
    }
    let statuses: Vec<_> = writers.iter_mut().map(|w| w.wait().expect("wait")).collect();
    let logs: Vec<String> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    let elapsed = started.elapsed();
    for (status, log) in statuses.iter().zip(&logs) {
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(!log.contains("locked"), "{log}");
    }
    // Each trial trained by exactly one process: one row each, one attempt, owned by one of the four.
    let db = ws.path("mtl.db");
    let rows = run_rows(&db);
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r.1 == "done" && r.2 == 1), "{rows:?}");
    assert!(rows.iter().all(|r| r.3.is_some_and(|pid| pids.contains(&pid))), "{rows:?}");
    let trained: Vec<usize> = logs.iter().map(|log| log.lines().filter(|l| l.contains("): done")).count()).collect();
    assert_eq!(trained.iter().sum::<usize>(), 12, "trainings over the four logs: {trained:?}");
    assert_eq!(integrity_check(&db), "ok");
    assert!(reads_during_writes.values().all(|&n| n > 0), "{reads_during_writes:?}");
    eprintln!(
        "4 writers, 12 trials, {:.1} s; trials trained per process: {trained:?}; reads while writing: {reads_during_writes:?}",
        elapsed.as_secs_f64()
    );
}

#[test]
fn a_diverging_trial_fails_with_its_reason_and_step_and_the_sweep_goes_on() {
    let ws = Workspace::new();
    // lr = 1e6 diverges within a few steps on the built-in tasks; lr = 0.01 trains.
    let experiment = KILL
        .replace("epochs = 3", "epochs = 1")
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("strategy = [\"single-task\", \"hard\"]", "strategy = [\"hard\"]")
        .replace("lambda = [0.5, 2.0]", "lambda = [1.0]")
        .replace("lr = [0.01]", "lr = [1e6, 0.01]");
    ws.write("diverge.toml", &experiment);
    let out = ws.mtl(&["run", "diverge.toml", "--no-report", "--jobs", "1"]);
    expect_code(&out, 1);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("1 trial(s) failed"), "{stderr}");

    let out = ws.mtl(&["ls", "--where", "status = 'failed'", "--format", "json"]);
    expect_code(&out, 0);
    let failed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let failed = failed.as_array().expect("array");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["settings"]["lr"], 1e6);
    let error = failed[0]["error"].as_str().expect("a reason");
    assert!(error.starts_with("diverged: task ") && error.contains("loss is"), "{error}");
    assert!(error.contains("at epoch 1, step "), "{error}");
    // The sweep went on: the trial after it trained.
    let out = ws.mtl(&["ls", "--where", "status = 'done'", "--format", "json"]);
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(done.as_array().map(|d| d.len()), Some(1));
    assert_eq!(done[0]["settings"]["lr"], 0.01);
    // The table shows the reason beside the status.
    let out = ws.mtl(&["ls", "--where", "status = 'failed'"]);
    let table = text(&out.stdout);
    assert!(table.lines().next().is_some_and(|h| h.contains("status  error")), "{table}");
    assert!(table.contains("diverged: task"), "{table}");
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files
                    .insert(path.strip_prefix(dir).expect("inside").to_path_buf(), std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn every_bad_input_in_the_corpus_exits_2_names_the_problem_and_writes_nothing() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad-inputs");
    let ws = Workspace::new();
    let folder = ws.path("bad-inputs");
    copy_dir(&corpus, &folder);
    let before = snapshot(&folder);
    let mut cases: Vec<PathBuf> =
        before.keys().filter(|p| p.extension().is_some_and(|e| e == "expect")).cloned().collect();
    cases.sort();
    assert!(cases.len() >= 30, "{} cases", cases.len());

    let mut failures = Vec::new();
    for expect_file in &cases {
        let stem = expect_file.file_stem().and_then(|s| s.to_str()).expect("stem");
        let case_file = before
            .keys()
            .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(stem) && *p != expect_file)
            .map(|p| p.to_string_lossy().into_owned());
        let expect = text(&before[expect_file]);
        let mut args: Vec<String> = vec!["run".into(), "{case}".into()];
        let mut fragments = Vec::new();
        for line in expect.lines().filter(|l| !l.trim().is_empty()) {
            match line.strip_prefix("args:") {
                Some(given) => args = given.split_whitespace().map(String::from).collect(),
                None => fragments.push(line),
            }
        }
        let args: Vec<String> = args.iter().map(|a| a.replace("{case}", case_file.as_deref().unwrap_or(""))).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_mtl")).args(&args).current_dir(&folder).output().expect("run mtl");
        let stderr = text(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit {:?}, expected 2", out.status.code()));
        }
        for fragment in &fragments {
            if !stderr.contains(fragment) {
                problems.push(format!("no {fragment:?} in the message"));
            }
        }
        if snapshot(&folder) != before {
            problems.push("it wrote or changed files".into());
            std::fs::remove_dir_all(&folder).expect("clean");
            copy_dir(&corpus, &folder);
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{stem} (mtl {}): {}\n    stderr: {}",
                args.join(" "),
                problems.join("; "),
                stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    eprintln!("{} bad inputs, each exit 2 with its message, nothing written", cases.len());
}
