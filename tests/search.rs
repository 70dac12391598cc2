//! `[search]` end to end: two `mtl run` processes share one adaptive search on one
//! database (one numbering, no point proposed twice, the budget kept, no trial trained
//! twice), a process killed with SIGKILL inside a search trial leaves a search that the
//! next `mtl run` finishes, the same file and seed give the same proposals, and with
//! `[prune]` the search's trials are pruned against each other.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use rusqlite::Connection;

mod support {
    pub mod common;
}
use support::common::{count, expect_code, text, Workspace, SEARCH};

/// `(search_index, search_point, trial_key, status, attempts)` of each search run, by index then key.
fn search_runs(db: &Path) -> Vec<(i64, String, String, String, i64)> {
    let conn = Connection::open(db).expect("db");
    let mut stmt = conn
        .prepare(
            "SELECT CAST(i.num AS INTEGER), p.text, r.trial_key, r.status, r.attempts FROM runs r
             JOIN params i ON i.run_id = r.id AND i.key = 'search_index'
             JOIN params p ON p.run_id = r.id AND p.key = 'search_point' ORDER BY 1, 3",
        )
        .expect("prepare");
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// What every finished search must hold: `budget` trials, indices 0..n each with both
/// seeds and one point, no point twice.
fn check_search(db: &Path, budget: usize) -> Vec<String> {
    let runs = search_runs(db);
    assert_eq!(runs.len(), budget, "{runs:?}");
    let mut points: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for (index, point, _, status, _) in &runs {
        assert!(status == "done" || status == "pruned", "{runs:?}");
        points.entry(*index).or_default().insert(point.clone());
    }
    assert_eq!(points.keys().copied().collect::<Vec<_>>(), (0..budget as i64 / 2).collect::<Vec<_>>());
    assert!(points.values().all(|p| p.len() == 1), "one point per index: {points:?}");
    let distinct: BTreeSet<&String> = points.values().flatten().collect();
    assert_eq!(distinct.len(), budget / 2, "no point proposed twice");
    points.into_values().flatten().collect()
}

#[test]
fn two_processes_share_one_search_and_the_same_seed_gives_the_same_proposals() {
    let ws = Workspace::new();
    ws.write("search.toml", SEARCH);
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut command = ws.command(&["run", "search.toml", "--jobs", "1", "--no-report"]);
            command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let db = ws.path("mtl.db");
    check_search(&db, 10);
    assert_eq!(count(&db, "SELECT MAX(attempts) FROM runs"), 1, "no trial trained twice");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs"), 12, "2 baselines and the budget");
    // Once spent, another run proposes nothing.
    let again = ws.mtl(&["run", "search.toml", "--no-report"]);
    expect_code(&again, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs"), 12);

    // One process, twice: the same proposals in the same order.
    let order = |name: &str| {
        let out = ws.mtl(&["run", "search.toml", "--jobs", "1", "--no-report", "--db", name]);
        expect_code(&out, 0);
        search_runs(&ws.path(name)).into_iter().map(|(i, point, key, ..)| (i, point, key)).collect::<Vec<_>>()
    };
    let first = order("a.db");
    assert_eq!(first.len(), 10);
    assert_eq!(order("b.db"), first);
}

#[test]
fn a_search_killed_inside_a_trial_is_finished_by_the_next_run() {
    let ws = Workspace::new();
    // No baselines (the objective is the score): the first trial is the search's.
    let no_baselines = SEARCH
        .replace("strategy = [\"single-task\", \"hard\"]", "strategy = [\"hard\"]")
        .replace("seed = 3", "seed = 3\nobjective = \"score\"");
    ws.write("search.toml", &no_baselines);
    // Paused inside the first search trial's first epoch write, then killed.
    let mut child = ws
        .command(&["run", "search.toml", "--jobs", "1", "--no-report"])
        .env("MTL_TEST_PAUSE_AT", "epoch-write")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("paused at epoch-write") {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("read") > 0, "mtl ended before pausing");
    }
    // SAFETY: signalling our own child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    child.wait().expect("wait");
    let db = ws.path("mtl.db");
    let before = search_runs(&db);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!((before[0].0, before[0].3.as_str()), (0, "running"), "{before:?}");

    let out = ws.mtl(&["run", "search.toml", "--jobs", "1", "--no-report"]);
    expect_code(&out, 0);
    let points = check_search(&db, 10);
    let after = search_runs(&db);
    let killed = after.iter().find(|r| r.2 == before[0].2).expect("the killed trial");
    assert_eq!((killed.0, &killed.1, killed.4), (0, &before[0].1, 2), "trained again, same proposal, 2nd attempt");
    assert!(points.contains(&before[0].1));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 10);
}

#[test]
fn search_trials_are_pruned_against_each_other() {
    let ws = Workspace::new();
    let text = SEARCH.replace("epochs = 2", "epochs = 4").replace("budget = 10", "budget = 16")
        + "\n[prune]\nrule = \"median\"\nmetric = \"score\"\nmin_trials = 2\n";
    ws.write("search.toml", &text);
    let out = ws.mtl(&["run", "search.toml", "--jobs", "1", "--no-report"]);
    expect_code(&out, 0);
    let db = ws.path("mtl.db");
    check_search(&db, 16);
    let pruned = count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'pruned'");
    assert!(pruned > 0, "{}", support::common::text(&out.stderr));
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM runs r JOIN params p ON p.run_id = r.id WHERE r.status = 'pruned' AND p.key = 'strategy' AND p.text = 'single-task'"),
        0
    );
}

#[test]
fn bad_search_sections_name_the_key_and_write_nothing() {
    let ws = Workspace::new();
    for (edit, expected) in [
        (("sampler = \"tpe\"", "sampler = \"cmaes\""), "search.sampler: unknown sampler \"cmaes\""),
        (("budget = 10", "budget = 0"), "search.budget: 0 is out of range"),
        (
            ("lr = { low = 0.0001", "lr = { low = 0.0"),
            "search.space.lr: lr: low = 0, high = 0.1; expected 0 < low < high on a log scale",
        ),
        (("[search.space]", "[search.space]\n\"model.colour\" = [1, 2]"), "model.colour cannot be searched"),
        (("[search.space]", "[search.space]\nbatch_size = [0, 32]"), "search.space.batch_size"),
        (("seed = 3", "seed = 3\nobjective = \"tasks\""), "search.objective: tpe searches one objective"),
        (
            ("lr = { low = 0.0001, high = 0.1, log = true }", "lr = { simplex = true }"),
            "lr: only lambda takes { simplex = true }",
        ),
        (
            ("lambda = { low = 0.01, high = 100.0, log = true }", "lambda = { simplex = true, total = -1 }"),
            "total must be a number > 0",
        ),
        (("seed = 3", "seed = 3\npopulation = 4"), "search.population: population is a setting of sampler = \"nsga2\""),
        (
            ("seed = 3", "seed = 3\nobjective = [\"shapes.accuracy\", \"shapes.accuracy\"]"),
            "search.objective: \"shapes.accuracy\" is listed twice",
        ),
    ] {
        ws.write("bad.toml", &SEARCH.replace(edit.0, edit.1));
        let out = ws.mtl(&["run", "bad.toml"]);
        expect_code(&out, 2);
        assert!(text(&out.stderr).contains(expected), "{expected}\n{}", text(&out.stderr));
        assert!(!ws.path("mtl.db").exists());
    }
    // A metric the trials do not report stops the search after its first trial, naming it.
    ws.write("typo.toml", &SEARCH.replace("seed = 3", "seed = 3\nobjective = \"shapes.colour\""));
    let out = ws.mtl(&["run", "typo.toml", "--no-report", "--db", "typo.db", "--jobs", "1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "reports no validation metric \"colour\" for task shapes at its result epoch; it reports: accuracy"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(count(&ws.path("typo.db"), "SELECT COUNT(*) FROM params WHERE key = 'search_index'"), 1);
    ws.write("slurm.toml", SEARCH);
    let out = ws.mtl(&["run", "slurm.toml", "--executor", "plan"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("[search] proposes trials"), "{}", text(&out.stderr));
}

#[test]
fn nsga2_searches_every_task_metric_and_breeds_from_observed_points() {
    let ws = Workspace::new();
    let text = SEARCH
        .replace("sampler = \"tpe\"", "sampler = \"nsga2\"\npopulation = 2\nobjective = \"tasks\"")
        .replace("startup = 2\n", "")
        .replace("budget = 10", "budget = 12");
    ws.write("search.toml", &text);
    let order = |name: &str| {
        let out = ws.mtl(&["run", "search.toml", "--jobs", "1", "--no-report", "--db", name]);
        expect_code(&out, 0);
        check_search(&ws.path(name), 12);
        search_runs(&ws.path(name)).into_iter().map(|(i, point, key, ..)| (i, point, key)).collect::<Vec<_>>()
    };
    let first = order("a.db");
    assert_eq!(order("b.db"), first, "the same file and seed give the same proposals");
    // Generations 1 and 2 (points 2–5) breed from earlier points: each of their values comes
    // from a parent unless mutated (probability 1/3 per dimension), so most of them do.
    let by_index: BTreeMap<i64, serde_json::Map<String, serde_json::Value>> =
        first.iter().map(|(i, point, _)| (*i, serde_json::from_str(point).expect("a point"))).collect();
    assert_eq!(by_index.len(), 6, "{by_index:?}");
    let inherited = (2..6)
        .flat_map(|child| {
            let earlier: Vec<_> = (0..child / 2 * 2).map(|i| by_index[&i].clone()).collect();
            by_index[&child]
                .iter()
                .map(move |(k, v)| earlier.iter().any(|p| p.get(k) == Some(v)))
                .collect::<Vec<bool>>()
        })
        .filter(|&b| b)
        .count();
    assert!(inherited >= 6, "{inherited} of 12 values inherited: {by_index:?}");
}

#[test]
fn a_simplex_of_task_weights_is_searched_and_each_trial_trains_with_its_point() {
    let ws = Workspace::new();
    let text = SEARCH
        .replace("weighting = [\"static\", \"equal\", \"dwa\"]", "weighting = [\"static\"]")
        .replace("lambda = { low = 0.01, high = 100.0, log = true }", "lambda = { simplex = true, total = 2.0 }")
        .replace("budget = 10", "budget = 6");
    ws.write("search.toml", &text);
    expect_code(&ws.mtl(&["run", "search.toml", "--jobs", "1", "--no-report"]), 0);
    let db = ws.path("mtl.db");
    check_search(&db, 6);
    let conn = Connection::open(&db).expect("db");
    let mut stmt = conn
        .prepare(
            "SELECT p.text, s.num, r.num FROM params p
             JOIN params s ON s.run_id = p.run_id AND s.key = 'weight.shapes'
             JOIN params r ON r.run_id = p.run_id AND r.key = 'weight.reviews' WHERE p.key = 'search_point'",
        )
        .expect("prepare");
    let rows: Vec<(String, f64, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), 6, "each search trial records its static weights");
    for (point, shapes, reviews) in rows {
        let point: serde_json::Value = serde_json::from_str(&point).expect("json");
        assert_eq!(point["lambda"]["shapes"].as_f64(), Some(shapes), "{point}");
        assert_eq!(point["lambda"]["reviews"].as_f64(), Some(reviews), "{point}");
        assert!((shapes + reviews - 2.0).abs() < 1e-12, "{shapes} + {reviews}");
    }
}

#[test]
fn a_grid_search_trains_each_combination_once_in_order_and_stops_when_they_run_out() {
    let ws = Workspace::new();
    let file = SEARCH
        .replace("sampler = \"tpe\"", "sampler = \"grid\"")
        .replace("startup = 2\n", "")
        .replace("budget = 10", "budget = 20")
        .replace("lr = { low = 0.0001, high = 0.1, log = true }", "lr = [0.01, 0.001]")
        .replace("lambda = { low = 0.01, high = 100.0, log = true }\n", "");
    ws.write("search.toml", &file);
    expect_code(&ws.mtl(&["run", "search.toml", "--jobs", "1", "--no-report"]), 0);
    // 3 methods × 2 lr = 6 points of 2 seeds: 12 trials, under the budget of 20.
    let points = check_search(&ws.path("mtl.db"), 12);
    assert_eq!(points.len(), 6);
    let runs = search_runs(&ws.path("mtl.db"));
    let first: serde_json::Value = serde_json::from_str(&runs[0].1).expect("json");
    let last: serde_json::Value = serde_json::from_str(&runs[11].1).expect("json");
    assert_eq!((first["weighting"].as_str(), first["lr"].as_f64()), (Some("static"), Some(0.01)));
    assert_eq!((last["weighting"].as_str(), last["lr"].as_f64()), (Some("dwa"), Some(0.001)));
    let bad = file.replace("lr = [0.01, 0.001]", "lr = { low = 0.001, high = 0.01 }");
    ws.write("bad.toml", &bad);
    let out = ws.mtl(&["run", "bad.toml", "--db", "bad.db"]);
    expect_code(&out, 2);
    assert!(
        text(&out.stderr).contains("search.space.lr: sampler = \"grid\" takes lists of choices"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn importance_ranks_the_setting_that_decides_accuracy_first() {
    let ws = Workspace::new();
    // lr = 1e-5 barely moves the weights in 2 epochs, lr = 0.01 trains: lr decides accuracy;
    // λ (0.5 or 2) far less.
    let grid = SEARCH
        .split("[search]")
        .next()
        .expect("the part before [search]")
        .replace("weighting = [\"static\", \"equal\", \"dwa\"]", "weighting = [\"static\"]")
        .replace("lambda = [1.0]", "lambda = [0.5, 2.0]")
        .replace("lr = [0.01]", "lr = [0.00001, 0.01]");
    ws.write("grid.toml", &grid);
    expect_code(&ws.mtl(&["run", "grid.toml", "--no-report"]), 0);
    let out = ws.mtl(&["importance", "--format", "csv"]);
    expect_code(&out, 0);
    let csv = text(&out.stdout);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(&header[..3], ["setting", "values", "delta_m"], "{csv}");
    let column = header.iter().position(|h| *h == "shapes.test.accuracy").expect("a task column");
    let share = |setting: &str| -> f64 {
        let line = csv.lines().find(|l| l.starts_with(&format!("{setting},"))).unwrap_or_else(|| panic!("{csv}"));
        line.split(',').nth(column).expect("cell").parse().expect("a share")
    };
    assert!(share("lr") > 0.5 && share("lr") > share("lambda"), "{csv}");
    let table = ws.mtl(&["importance"]);
    expect_code(&table, 0);
    assert!(text(&table.stdout).contains("across 4 seed groups"), "{}", text(&table.stdout));
}
