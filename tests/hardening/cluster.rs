//! The cluster folder: one plan folder per experiment name, whatever characters or length
//! the name has, and `mtl merge` taking from `shards/` only regular files that hold exactly
//! the trial their name designates, of the experiment of the folder's plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::common::*;

/// SMALL under another experiment name.
fn named(name: &str) -> String {
    let line = format!("name = {}", toml_string(name));
    let renamed = SMALL.replacen("name = \"small\"", &line, 1);
    assert!(renamed.starts_with(&format!("\n{line}\n")));
    renamed
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `mtl run FILE --db mtl.db --executor plan` for an experiment of this name; returns the
/// plan file it printed.
fn plan(ws: &Workspace, file: &str, name: &str) -> PathBuf {
    ws.write(file, &named(name));
    let out = ws.mtl(&["run", file, "--db", "mtl.db", "--executor", "plan"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let path = stdout.split("; plan ").nth(1).and_then(|rest| rest.lines().next()).expect("the plan's path");
    PathBuf::from(path)
}

/// The experiment each plan folder beside `mtl.db` records, by folder name.
fn plan_folders(ws: &Workspace) -> BTreeMap<String, String> {
    let mut folders = BTreeMap::new();
    for entry in std::fs::read_dir(ws.path("mtl.db.cluster")).expect("the cluster folder") {
        let dir = entry.expect("entry").path();
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("plan.json")).expect("plan.json")).expect("json");
        let name = dir.file_name().expect("name").to_string_lossy().into_owned();
        folders.insert(name, plan["experiment"].as_str().expect("experiment").to_string());
    }
    folders
}

#[test]
fn names_that_sanitise_alike_get_plan_folders_of_their_own() {
    let ws = Workspace::new();
    let names = ["a.b", "a_b", "日本", "中国", "small", "Small"];
    for (i, name) in names.iter().enumerate() {
        let plan_file = plan(&ws, &format!("e{i}.toml"), name);
        let recorded: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&plan_file).expect("plan")).expect("json");
        assert_eq!(recorded["experiment"], *name, "{}", plan_file.display());
    }
    let folders = plan_folders(&ws);
    // Each name has its own folder, and every plan written is still there, unchanged.
    let mut recorded: Vec<&str> = folders.values().map(String::as_str).collect();
    recorded.sort();
    let mut expected = names.to_vec();
    expected.sort();
    assert_eq!(recorded, expected, "{folders:?}");
    // Lower-case names of letters, digits, - and _ keep their folder name (scripts and
    // manifests name it); the others keep a readable part.
    assert_eq!(folders.get("small").map(String::as_str), Some("small"), "{folders:?}");
    assert_eq!(folders.get("a_b").map(String::as_str), Some("a_b"), "{folders:?}");
    assert!(folders.iter().any(|(folder, name)| name == "a.b" && folder.starts_with("a_b.")), "{folders:?}");
    assert!(folders.iter().any(|(folder, name)| name == "Small" && folder.starts_with("Small.")), "{folders:?}");
}

#[test]
fn the_longest_experiment_names_get_short_folders_of_their_own() {
    let ws = Workspace::new();
    // 200 bytes, the longest name an experiment file may give; the pairs differ only at the end.
    let names = [
        "x".repeat(150) + &"é".repeat(25),
        "x".repeat(150) + &"è".repeat(25),
        "x".repeat(199) + "a",
        "x".repeat(199) + "b",
    ];
    for (i, name) in names.iter().enumerate() {
        assert_eq!(name.len(), 200);
        let plan_file = plan(&ws, &format!("long{i}.toml"), name);
        assert!(plan_file.is_file());
    }
    let folders = plan_folders(&ws);
    assert_eq!(folders.len(), 4, "{folders:?}");
    for folder in folders.keys() {
        assert!(folder.len() < 100 && folder.starts_with("xxxx"), "{folder}");
    }
    let mut recorded: Vec<&String> = folders.values().collect();
    recorded.sort();
    let mut expected: Vec<&String> = names.iter().collect();
    expected.sort();
    assert_eq!(recorded, expected);
}

#[test]
fn a_plan_folder_refuses_another_experiment_and_an_old_folder_is_found_by_its_recorded_name() {
    let ws = Workspace::new();
    // An older mtl-lab named the folder of "a.b" `a_b`: rename a new one so.
    let plan_file = plan(&ws, "dotted.toml", "a.b");
    let old = ws.path("mtl.db.cluster/a_b");
    std::fs::rename(plan_file.parent().expect("folder"), &old).expect("rename");

    // Planning "a.b" again finds its folder by the name recorded in it.
    let again = plan(&ws, "dotted.toml", "a.b");
    assert_eq!(again, old.join("plan.json"));
    assert_eq!(plan_folders(&ws).len(), 1);

    // "a_b" would now be planned into that folder: refused, and it stays "a.b"'s.
    ws.write("underscore.toml", &named("a_b"));
    let refused = ws.mtl(&["run", "underscore.toml", "--db", "mtl.db", "--executor", "plan"]);
    expect_code(&refused, 2);
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("holds the plan of experiment \"a.b\""), "{stderr}");
    assert!(stderr.contains("mtl merge"), "{stderr}");
    assert_eq!(plan_folders(&ws), BTreeMap::from([("a_b".to_string(), "a.b".to_string())]));

    // A worker of the old plan (a task queued before the upgrade) writes its shard there,
    // and `mtl merge` takes it.
    let worker = ws.mtl(&["worker", "--plan", old.join("plan.json").to_str().expect("utf-8"), "--trial", "0"]);
    expect_code(&worker, 0);
    assert_eq!(std::fs::read_dir(old.join("shards")).expect("shards").count(), 1);
    let merged = ws.mtl(&["merge", "--db", "mtl.db"]);
    expect_code(&merged, 0);
    assert!(text(&merged.stdout).contains("1 done"), "{}", text(&merged.stdout));
    assert_eq!(
        count(
            &ws.path("mtl.db"),
            "SELECT count(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE e.name = 'a.b'"
        ),
        1
    );
}

/// The plan of SMALL beside mtl.db with trial 0 trained into its shard: the folder and the
/// trial keys by index.
fn planned_with_one_shard(ws: &Workspace) -> (PathBuf, Vec<String>) {
    let plan_file = plan(ws, "small.toml", "small");
    let worker = ws.mtl(&["worker", "--plan", plan_file.to_str().expect("utf-8"), "--trial", "0"]);
    expect_code(&worker, 0);
    let dir = plan_file.parent().expect("folder").to_owned();
    (dir, trial_keys(&plan_file))
}

fn trial_keys(plan_file: &Path) -> Vec<String> {
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(plan_file).expect("plan")).expect("json");
    plan["trial_keys"].as_array().expect("keys").iter().map(|k| k.as_str().expect("key").to_string()).collect()
}

/// Runs `mtl ARGS`; a child still running after a generous deadline is killed and the test
/// fails (a FIFO opened for reading blocks until a writer comes: the suite must not hang).
fn mtl_guarded(ws: &Workspace, args: &[&str]) -> Output {
    let mut child = ws.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run mtl");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("mtl {args:?} hangs (killed after 120 s)\n--- stderr\n{}", text(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// The state and detail of each trial, by index, from `mtl status --all --format json`.
fn states(ws: &Workspace) -> Vec<(String, String)> {
    let out = mtl_guarded(ws, &["status", "--db", "mtl.db", "--all", "--format", "json"]);
    expect_code(&out, 0);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let trials = status["trials"].as_array().expect("trials");
    trials
        .iter()
        .map(|t| (t["state"].as_str().unwrap_or("").into(), t["detail"].as_str().unwrap_or("").into()))
        .collect()
}

#[test]
fn merge_and_status_skip_a_fifo_named_like_a_shard_instead_of_hanging() {
    let ws = Workspace::new();
    let (dir, keys) = planned_with_one_shard(&ws);
    let fifo = dir.join(format!("shards/{}.db", keys[1]));
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());

    let merged = mtl_guarded(&ws, &["merge", "--db", "mtl.db"]);
    expect_code(&merged, 0);
    let (stdout, stderr) = (text(&merged.stdout), text(&merged.stderr));
    assert!(stdout.contains("1 done, 0 failed; 0 already there; 0 still running; 1 skipped"), "{stdout}");
    assert!(stderr.contains(&format!("skipped {}: not a regular file (a FIFO)", fifo.display())), "{stderr}");

    let states = states(&ws);
    assert_eq!(states[0].0, "done", "{states:?}");
    assert_eq!(states[1].0, "failed", "{states:?}");
    assert!(states[1].1.contains("not a regular file (a FIFO)"), "{states:?}");
}

#[test]
fn merge_skips_a_folder_named_like_a_shard_and_merges_the_rest() {
    let ws = Workspace::new();
    let (dir, keys) = planned_with_one_shard(&ws);
    let folder = dir.join(format!("shards/{}.db", keys[1]));
    std::fs::create_dir(&folder).expect("mkdir");
    let garbage = dir.join(format!("shards/{}.db", keys[2]));
    std::fs::write(&garbage, "not a database").expect("write");

    let merged = mtl_guarded(&ws, &["merge", "--db", "mtl.db"]);
    expect_code(&merged, 0);
    let (stdout, stderr) = (text(&merged.stdout), text(&merged.stderr));
    assert!(stdout.contains("1 done, 0 failed; 0 already there; 0 still running; 2 skipped"), "{stdout}");
    assert!(stderr.contains(&format!("skipped {}: not a regular file (a folder)", folder.display())), "{stderr}");
    assert!(stderr.contains(&format!("skipped {}: unreadable", garbage.display())), "{stderr}");
    assert!(stderr.contains("not an mtl-lab results database"), "{stderr}");
    assert_eq!(count(&ws.path("mtl.db"), "SELECT count(*) FROM runs WHERE status = 'done'"), 1);
}

#[test]
fn merge_imports_only_the_trial_a_shard_name_designates_of_this_experiment() {
    let ws = Workspace::new();
    let (dir, keys) = planned_with_one_shard(&ws);
    let shards = dir.join("shards");
    let good = shards.join(format!("{}.db", keys[0]));

    // Another experiment's trials, trained beside other.db and merged there (two runs).
    ws.write("other.toml", &named("other"));
    let out = ws.mtl(&["run", "other.toml", "--db", "other.db", "--executor", "plan"]);
    expect_code(&out, 0);
    let other_plan = ws.path("other.db.cluster/other/plan.json");
    let other_keys = trial_keys(&other_plan);
    for index in ["0", "1"] {
        let worker = ws.mtl(&["worker", "--plan", other_plan.to_str().expect("utf-8"), "--trial", index]);
        expect_code(&worker, 0);
    }
    expect_code(&ws.mtl(&["merge", "--db", "other.db"]), 0);

    // A trial of the other experiment under this plan's name for trial 1, its key made that
    // name's: only the experiment differs.
    let wrong_experiment = shards.join(format!("{}.db", keys[1]));
    std::fs::copy(ws.path(&format!("other.db.cluster/other/shards/{}.db", other_keys[1])), &wrong_experiment)
        .expect("copy");
    let shard = rusqlite::Connection::open(&wrong_experiment).expect("open");
    shard.execute("UPDATE runs SET trial_key = ?1", [&keys[1]]).expect("update");
    drop(shard);
    // A whole results database of two runs.
    let whole = shards.join(format!("{}.db", keys[2]));
    std::fs::copy(ws.path("other.db"), &whole).expect("copy");
    // This experiment's trial 0 under trial 3's name.
    let wrong_trial = shards.join(format!("{}.db", keys[3]));
    std::fs::copy(&good, &wrong_trial).expect("copy");
    // A name that designates no trial of the plan.
    let stray = shards.join("0123456789abcdef.db");
    std::fs::copy(&good, &stray).expect("copy");

    let merged = mtl_guarded(&ws, &["merge", "--db", "mtl.db"]);
    expect_code(&merged, 0);
    let (stdout, stderr) = (text(&merged.stdout), text(&merged.stderr));
    assert!(stdout.contains("1 done, 0 failed; 0 already there; 0 still running; 4 skipped"), "{stdout}");
    for (path, reason) in [
        (&wrong_experiment, format!("holds trial {} of experiment \"other\"", keys[1])),
        (&whole, "holds 2 runs".to_string()),
        (&wrong_trial, format!("holds trial {} of experiment \"small\"", keys[0])),
        (&stray, "its name designates no trial of the plan of experiment \"small\"".to_string()),
    ] {
        let line = format!("skipped {}: {reason}", path.display());
        assert!(stderr.contains(&line), "{line}\n--- stderr\n{stderr}");
    }
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT count(*) FROM experiments"), 1);
    assert_eq!(count(&db, &format!("SELECT count(*) FROM runs WHERE trial_key = '{}'", keys[0])), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM runs"), 1);

    let states = states(&ws);
    assert_eq!(states[0].0, "done", "{states:?}");
    assert!(states[1..=3].iter().all(|(state, _)| state == "failed"), "{states:?}");
    assert!(states[1].1.contains("of experiment \"other\""), "{states:?}");
}

#[test]
fn a_fifo_named_plan_json_is_refused_instead_of_hanging() {
    let ws = Workspace::new();
    plan(&ws, "small.toml", "small");
    let folder = ws.path("mtl.db.cluster/stray");
    std::fs::create_dir(&folder).expect("mkdir");
    let fifo = folder.join("plan.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let reason = format!("{}: not a regular file (a FIFO)", fifo.display());

    let merged = mtl_guarded(&ws, &["merge", "--db", "mtl.db"]);
    expect_code(&merged, 0);
    let stderr = text(&merged.stderr);
    assert!(stderr.contains(&format!("skipped {} and its 0 shard(s): {reason}", folder.display())), "{stderr}");
    let status = mtl_guarded(&ws, &["status", "--db", "mtl.db"]);
    expect_code(&status, 2);
    assert!(text(&status.stderr).contains(&reason), "{}", text(&status.stderr));
    let worker = mtl_guarded(&ws, &["worker", "--plan", fifo.to_str().expect("utf-8"), "--trial", "0"]);
    expect_code(&worker, 2);
    assert!(text(&worker.stderr).contains(&reason), "{}", text(&worker.stderr));
}
