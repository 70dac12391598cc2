//! End-to-end tests: they run the real `mtl` binary on experiment files
//! written into a temporary folder and read the SQLite file it writes.

use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

mod support {
    pub mod browser;
    pub mod common;
}
use support::browser;
use support::common::{count, expect_code, metric_bits, text, Workspace, SMALL};

#[test]
fn run_writes_the_database_and_the_report_and_ls_lists_every_run() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    let out = ws.mtl(&["run", "small.toml"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("shapes accuracy") && stdout.contains("single-task") && stdout.contains("Δm%"), "{stdout}");
    // The examples per split, before training.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("examples (train/val/test): shapes 96/32/32 · reviews 64/32/32"), "{stderr}");
    assert!(ws.path("mtl.db").exists());
    let index = std::fs::read_to_string(ws.path("report/index.html")).expect("report/index.html");
    assert!(index.contains("<img"), "the report shows charts");
    // 2 seeds × (1 single-task + 2 λ of hard), 2 epochs, per task: train 2 + val 3 + test 3 metrics.
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 6);
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM metrics"), 6 * 2 * 2 * 8);

    let out = ws.mtl(&["ls", "--format", "json"]);
    expect_code(&out, 0);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let runs = runs.as_array().expect("an array of runs");
    assert_eq!(runs.len(), 6);
    for run in runs {
        assert_eq!(run["status"], "done");
        assert_eq!(run["experiment"], "small");
        let settings = &run["settings"];
        assert!(settings["seed"].is_number() && settings["lr"] == 0.01, "{run}");
        let hard = settings["strategy"] == "hard";
        assert_eq!(settings["lambda"].is_number(), hard, "λ is a setting of hard runs only: {run}");
        for task in ["shapes", "reviews"] {
            let accuracy = &run["final_metrics"][format!("{task}.test.accuracy")];
            assert!(accuracy.as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{run}");
        }
        assert_eq!(run["final_epoch"], 2);
    }

    let out = ws.mtl(&["ls", "--format", "csv"]);
    expect_code(&out, 0);
    assert_eq!(text(&out.stdout).lines().count(), 7, "header + one line per run");

    // --where filters on typed settings and final metrics, --sort orders (descending with '-').
    let ids = |args: &[&str]| -> Vec<(i64, f64)> {
        let out = ws.mtl(&[&["ls", "--format", "json"], args].concat());
        expect_code(&out, 0);
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let runs = runs.as_array().expect("array").clone();
        runs.iter().map(|r| (r["id"].as_i64().expect("id"), r["settings"]["lambda"].as_f64().unwrap_or(-1.0))).collect()
    };
    let hard = ids(&["--where", "strategy = 'hard' and lambda >= 1", "--sort", "-lambda,id"]);
    assert_eq!(hard.len(), 2, "{hard:?}");
    assert!(hard.iter().all(|(_, l)| *l == 2.0));
    assert!(hard[0].0 < hard[1].0);
    assert_eq!(ids(&["--where", "strategy in ('single-task') or lambda < 1"]).len(), 4);
    assert_eq!(ids(&["--where", "not status = 'done'"]).len(), 0);
    // Each run records the device it trained on.
    assert_eq!(ids(&["--where", "device = 'cpu'"]).len(), 6);
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs_wide WHERE device = 'cpu'"), 6);
    let out = ws.mtl(&["ls", "--where", "lamda > 1"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("unknown key \"lamda\""), "{}", text(&out.stderr));
    let out = ws.mtl(&["ls", "--where", "lambda >"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("^"), "{}", text(&out.stderr));
}

#[test]
fn show_compare_sql_and_export_answer_from_a_real_sweep_database() {
    let ws = Workspace::new();
    let file = ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);

    // Provenance: the file, its text (by hash), the version and the host.
    let out = ws.mtl(&["ls", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let first = &runs[0];
    assert_eq!(first["provenance"]["experiment_file"], "small.toml");
    assert_eq!(first["provenance"]["mtl_version"], env!("CARGO_PKG_VERSION"));
    assert!(first["provenance"]["host"].is_string(), "{first}");
    let sha256 = first["experiment_sha256"].as_str().expect("hash").to_string();
    let query = format!("SELECT CAST(content AS TEXT) AS text FROM blobs WHERE sha256 = '{sha256}'");
    let stored = ws.mtl(&["sql", &query, "--format", "json"]);
    expect_code(&stored, 0);
    let stored: serde_json::Value = serde_json::from_slice(&stored.stdout).expect("json");
    assert_eq!(stored[0]["text"], std::fs::read_to_string(&file).expect("read"), "the file's text, by its hash");

    // compare: three groups of two seeds; the baselines against themselves give Δm 0.
    let out = ws.mtl(&["compare", "--group-by", "strategy,lambda", "--format", "json"]);
    expect_code(&out, 0);
    let groups: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let groups = groups.as_array().expect("array");
    let labels: Vec<String> =
        groups.iter().map(|g| format!("{} {}", g["group"]["strategy"], g["group"]["lambda"])).collect();
    assert_eq!(labels, ["\"hard\" 0.5", "\"hard\" 2", "\"single-task\" null"]);
    assert!(groups.iter().all(|g| g["runs"].as_array().map(Vec::len) == Some(2)));
    assert!(groups[2]["delta_m"].as_f64().expect("Δm").abs() < 1e-12);
    // The mean of a group is the mean of its runs' test accuracy at their best epochs, as SQL computes it.
    let out = ws.mtl(&[
        "sql",
        "SELECT AVG(b.value) FROM best_metrics b JOIN settings s ON s.run_id = b.run_id
         WHERE s.key = 'lambda' AND s.value = 0.5 AND b.task = 'shapes' AND b.split = 'test' AND b.metric = 'accuracy'",
        "--format",
        "csv",
    ]);
    expect_code(&out, 0);
    let from_sql: f64 = text(&out.stdout).lines().nth(1).expect("a row").parse().expect("a number");
    let from_compare = groups[0]["metrics"]["shapes.test.accuracy"]["mean"].as_f64().expect("mean");
    assert!((from_sql - from_compare).abs() < 1e-12, "{from_sql} vs {from_compare}");
    // Filtered to hard runs, Δm still compares with the experiment's single-task runs.
    let out = ws.mtl(&["compare", "--where", "strategy = 'hard'", "--format", "json"]);
    let filtered: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(filtered[0]["delta_m"].is_number(), "{filtered}");
    assert_eq!(filtered[0]["delta_m"], groups[0]["delta_m"]);
    let out = ws.mtl(&["compare", "--delta-metrics", "acuracy"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("no run has a metric \"acuracy\""), "{}", text(&out.stderr));
    let table = text(&ws.mtl(&["compare"]).stdout);
    assert!(table.contains("Δm%") && table.contains("positive = better than single-task"), "{table}");

    // show: settings, one epoch table per task (the best epoch marked), by id or key prefix.
    let out = ws.mtl(&["show", "1"]);
    expect_code(&out, 0);
    let shown = text(&out.stdout);
    for fragment in [
        "run 1 · experiment small · done",
        "file        small.toml",
        "split_sizes    shapes 96/32/32 · reviews 64/32/32",
        "task shapes",
        "task reviews",
        "val.accuracy",
    ] {
        assert!(shown.contains(fragment), "{fragment:?} in\n{shown}");
    }
    let key = first["trial_key"].as_str().expect("key");
    expect_code(&ws.mtl(&["show", &key[..8]]), 0);
    let out = ws.mtl(&["show", "99"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("no run \"99\""), "{}", text(&out.stderr));

    // sql is read-only: a write is refused with exit 2 and changes nothing.
    let out = ws.mtl(&["sql", "DELETE FROM runs"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("read-only"), "{}", text(&out.stderr));
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs"), 6);

    // export: every metric point with the settings joined, as CSV and JSON.
    let out = ws.mtl(&["export", "--format", "csv"]);
    expect_code(&out, 0);
    let csv = text(&out.stdout);
    let header = csv.lines().next().expect("header");
    assert!(
        header.starts_with("run_id,experiment,trial_key,status,")
            && header.ends_with(",task,split,metric,epoch,value,is_result")
    );
    assert!(header.contains(",lambda,") && header.contains(",seed,"), "{header}");
    assert_eq!(csv.lines().count(), 1 + 6 * 2 * 2 * 8);
    let out = ws.mtl(&["export", "--format", "json", "--where", "strategy = 'hard'"]);
    expect_code(&out, 0);
    let points: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let points = points.as_array().expect("array");
    assert_eq!(points.len(), 4 * 2 * 2 * 8);
    assert!(points.iter().all(|p| p["strategy"] == "hard" && p["lambda"].is_number() && p["value"].is_number()));
}

#[test]
fn same_file_and_seed_give_bit_identical_metrics_whatever_the_jobs_and_threads() {
    let ws = Workspace::new();
    // Wide enough that candle's matmuls split work over threads.
    ws.write("small.toml", &SMALL.replace("width = 8", "width = 48").replace("hidden = 8", "hidden = 96"));
    let run = |db: &str, jobs: &str, threads: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_mtl"))
            .args(["run", "small.toml", "--db", db, "--no-report", "--jobs", jobs])
            .env("RAYON_NUM_THREADS", threads)
            .current_dir(ws.dir.path())
            .output()
            .expect("run mtl");
        expect_code(&out, 0);
        metric_bits(&ws.path(db))
    };
    let a = run("a.db", "1", "1");
    assert_eq!(a.len(), 6 * 2 * 2 * 8);
    assert_eq!(a, run("b.db", "1", "2"), "one job, one thread vs two threads");
    assert_eq!(a, run("c.db", "2", "1"), "two jobs");
    // And a different seed really gives different numbers.
    ws.write("other.toml", &SMALL.replace("seeds = [0, 1]", "seeds = [5, 6]"));
    expect_code(&ws.mtl(&["run", "other.toml", "--db", "d.db", "--no-report"]), 0);
    let d: Vec<u64> = metric_bits(&ws.path("d.db")).into_iter().map(|row| row.5).collect();
    assert_ne!(a.into_iter().map(|row| row.5).collect::<Vec<_>>(), d);
}

#[test]
fn running_twice_does_not_redo_finished_trials_but_retrains_unfinished_ones() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    let db = ws.path("mtl.db");
    let started = |db: &Path| -> Vec<(i64, String)> {
        let conn = Connection::open(db).expect("open");
        let mut stmt = conn.prepare("SELECT id, started_at FROM runs ORDER BY id").expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows")
    };
    let before = started(&db);

    let out = ws.mtl(&["run", "small.toml", "--no-report"]);
    expect_code(&out, 0);
    assert!(text(&out.stderr).contains("6 already done, 0 to run"), "{}", text(&out.stderr));
    assert_eq!(started(&db), before, "no run was started again");

    // A trial left unfinished (as after a crash) is trained again, and only it.
    Connection::open(&db)
        .expect("open")
        .execute("UPDATE runs SET status = 'running' WHERE id = 3", [])
        .expect("update");
    let out = ws.mtl(&["run", "small.toml", "--no-report"]);
    expect_code(&out, 0);
    assert!(text(&out.stderr).contains("5 already done, 1 to run"), "{}", text(&out.stderr));
    let after = started(&db);
    assert_eq!(after.len(), 6);
    for ((id, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(old == new, *id != 3, "run {id}");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 6);
}

/// A malformed experiment file exits 2, names the key, and writes no database.
fn check_rejected(replace: &str, with: &str, expected_fragments: &[&str]) {
    let ws = Workspace::new();
    assert!(SMALL.contains(replace), "fixture lacks {replace:?}");
    ws.write("bad.toml", &SMALL.replacen(replace, with, 1));
    let out = ws.mtl(&["run", "bad.toml"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    for fragment in expected_fragments {
        assert!(stderr.contains(fragment), "expected {fragment:?} in:\n{stderr}");
    }
    assert!(!ws.path("mtl.db").exists(), "no database may be created");
    assert!(!ws.path("report").exists(), "no report may be written");
}

macro_rules! rejected {
    ($($name:ident: $replace:expr => $with:expr, $fragments:expr;)*) => {$(
        #[test]
        fn $name() {
            check_rejected($replace, $with, &$fragments);
        }
    )*};
}

// A malformed experiment file exits 2, names the key (and line), and writes nothing.
rejected! {
    rejects_an_unknown_key: "batch_size = 32" => "batch_size = 32\nbatchsize = 3", ["bad.toml:6", "unknown field `batchsize`"];
    rejects_a_wrong_type: "epochs = 2" => "epochs = \"two\"", ["bad.toml:3", "epochs", "invalid type"];
    rejects_an_empty_sweep_list: "lambda = [0.5, 2.0]" => "lambda = []", ["bad.toml:22", "sweep.lambda", "empty"];
    rejects_a_negative_lambda: "lambda = [0.5, 2.0]" => "lambda = [0.5, -1.0]", ["bad.toml:22", "sweep.lambda[1]", "λ must be a finite number ≥ 0"];
    rejects_a_nan_lambda: "lambda = [0.5, 2.0]" => "lambda = [nan]", ["bad.toml:22", "sweep.lambda[0]", "NaN"];
    rejects_an_unknown_strategy: "\"hard\"]" => "\"shared\"]", ["bad.toml:21", "sweep.strategy[1]", "unknown strategy \"shared\""];
    rejects_a_duplicate_task_name: "name = \"reviews\"" => "name = \"shapes\"", ["bad.toml:13", "tasks[1].name", "used twice"];
    rejects_empty_seeds: "seeds = [0, 1]" => "seeds = []", ["seeds", "empty"];
    rejects_a_zero_learning_rate: "lr = [0.01]" => "lr = [0]", ["sweep.lr[0]", "learning rate"];
    rejects_an_unknown_data_format: "format = \"synthetic-reviews\"" => "format = \"synthetic-poems\"", ["bad.toml:14", "tasks[1].data.format", "synthetic-poems"];
    rejects_a_kind_that_contradicts_the_format: "kind = \"image-classification\"" => "kind = \"text-classification\"", ["tasks[0].kind", "does not match"];
    rejects_an_empty_training_set: "n_train = 96" => "n_train = 0", ["tasks[0].data.n_train", "out of range"];
    rejects_an_unknown_strategy_hyperparameter: "lr = [0.01]" => "lr = [0.01]\n\n[strategy.soft]\nwieght = 0.1", ["bad.toml:26", "unknown field `wieght`", "expected `weight`"];
    rejects_an_unknown_strategy_section: "lr = [0.01]" => "lr = [0.01]\n\n[strategy.sof]\nweight = 0.1", ["bad.toml:25", "unknown field `sof`"];
    rejects_out_of_range_ple_levels: "lr = [0.01]" => "lr = [0.01]\n\n[strategy.ple]\nlevels = [2, 4]", ["bad.toml:26", "strategy.ple.levels[1]", "levels must be 1, 2 or 3"];
    rejects_a_repeated_soft_weight: "lr = [0.01]" => "lr = [0.01]\n\n[strategy.soft]\nweight = [0.1, 0.1]", ["bad.toml:26", "strategy.soft.weight[1]", "listed twice"];
    rejects_an_unknown_weighting: "lr = [0.01]" => "lr = [0.01]\nweighting = [\"static\", \"pcgard\"]", ["bad.toml:24", "sweep.weighting[1]", "unknown weighting \"pcgard\""];
    rejects_an_out_of_range_method_hyperparameter: "lr = [0.01]" => "lr = [0.01]\n\n[weighting.cagrad]\nc = 1.5", ["bad.toml:26", "weighting.cagrad.c", "in [0, 1)"];
    rejects_an_unknown_method_hyperparameter: "lr = [0.01]" => "lr = [0.01]\n\n[weighting.cagrad]\ncc = 0.5", ["bad.toml:26", "weighting.cagrad.cc", "no hyperparameter \"cc\"; it has: c"];
    rejects_lambda_for_an_unknown_task: "lambda = [0.5, 2.0]" => "lambda = { revues = [1.0] }", ["bad.toml:22", "sweep.lambda.revues", "\"revues\" is not a task"];
    rejects_an_empty_simplex: "lambda = [0.5, 2.0]" => "lambda = { simplex = 0 }", ["sweep.lambda.simplex", "whole number from 1"];
    rejects_cgc_without_experts: "lr = [0.01]" => "lr = [0.01]\n\n[strategy.cgc]\nexperts = 0\ntask_experts = 0", ["strategy.cgc", "cannot both be 0"];
}

#[test]
fn a_gradient_method_without_every_task_in_every_step_is_rejected() {
    let ws = Workspace::new();
    let experiment = SMALL
        .replace("batch_size = 32", "batch_size = 32\nsampling = \"proportional\"")
        .replace("lr = [0.01]", "lr = [0.01]\nweighting = [\"static\", \"pcgrad\"]");
    ws.write("bad.toml", &experiment);
    let out = ws.mtl(&["run", "bad.toml"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.toml:25: sweep.weighting[1]: pcgrad needs every task in every step"), "{stderr}");
    assert!(!ws.path("mtl.db").exists());
}

#[test]
fn mgda_on_the_representation_needs_one_shared_representation_and_trains_on_multimnist() {
    let ws = Workspace::new();
    // Images and text are different inputs: no representation is shared, so mgda-ub is refused.
    ws.write("bad.toml", &SMALL.replace("lr = [0.01]", "lr = [0.01]\nweighting = [\"mgda-ub\"]"));
    let out = ws.mtl(&["run", "bad.toml"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("mgda-ub needs every task to read the same inputs"), "{}", text(&out.stderr));
    assert!(!ws.path("mtl.db").exists());

    // MultiMNIST: both digits of one image through one trunk.
    write_digits(&ws.path("digits"), 90);
    let task = |name: &str| {
        format!("[[tasks]]\nname = \"{name}\"\ndata = {{ format = \"multimnist\", path = \"digits\", digit = \"{name}\", test_size = 20, val_size = 10 }}\n")
    };
    let experiment = format!(
        "name = \"mm\"\nepochs = 1\nbatch_size = 16\n{}{}[model]\ntrunk = \"lenet\"\n[sweep]\nstrategy = [\"hard\"]\nweighting = [\"mgda\", \"mgda-ub\"]\n",
        task("left"),
        task("right")
    );
    ws.write("mm.toml", &experiment);
    expect_code(&ws.mtl(&["run", "mm.toml", "--no-report"]), 0);
    // The min-norm weights lie on the simplex: they sum to 1 at every step, so their epoch means do too.
    let sums: Vec<f64> = Connection::open(ws.path("mtl.db"))
        .expect("db")
        .prepare("SELECT SUM(value) FROM diagnostics WHERE name = 'weight' GROUP BY run_id ORDER BY run_id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(sums.len(), 2);
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-9), "{sums:?}");
}

#[test]
fn a_plan_over_max_trials_stops_without_a_terminal() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    let out = ws.mtl(&["run", "small.toml", "--max-trials", "5"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(
            "sweep: the sweep has 6 trials (strategy 2 × weighting 1 × lambda 2 × lr 1 × seeds 2), more than the limit of 5 (raise it with mtl run --max-trials)"
        ), "{stderr}");
    assert!(!ws.path("mtl.db").exists());
}

#[test]
fn diagnostics_of_a_static_and_a_pcgrad_run_reach_the_store_and_the_report() {
    let ws = Workspace::new();
    let experiment = SMALL
        .replace("lambda = [0.5, 2.0]", "lambda = [0.5]\nweighting = [\"static\", \"pcgrad\"]")
        .replace("seeds = [0, 1]", "seeds = [0]")
        + "\n[diagnostics]\nmeasure_every = 1\n";
    ws.write("diag.toml", &experiment);
    expect_code(&ws.mtl(&["run", "diag.toml"]), 0);
    let conn = Connection::open(ws.path("mtl.db")).expect("db");
    let rows = |weighting: &str, name: &str| -> Vec<(i64, String, f64)> {
        conn.prepare(
            "SELECT d.epoch, d.task, d.value FROM diagnostics d JOIN params p ON p.run_id = d.run_id
             WHERE p.key = 'weighting' AND p.text = ?1 AND d.name = ?2
               AND d.run_id IN (SELECT run_id FROM params WHERE key = 'strategy' AND text = 'hard')
             ORDER BY d.epoch, d.task",
        )
        .expect("prepare")
        .query_map([weighting, name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    // Static weights are the experiment's: 1 for shapes, λ = 0.5 for reviews, in both epochs.
    let weights = rows("static", "weight");
    assert_eq!(
        weights,
        [(1, "reviews".into(), 0.5), (1, "shapes".into(), 1.0), (2, "reviews".into(), 0.5), (2, "shapes".into(), 1.0)]
    );
    for weighting in ["static", "pcgrad"] {
        let cosines = rows(weighting, "grad_cosine");
        assert_eq!(cosines.len(), 2, "{weighting}: one per epoch");
        assert!(cosines.iter().all(|(_, _, c)| (-1.0..=1.0).contains(c)), "{cosines:?}");
        assert_eq!(rows(weighting, "grad_norm").len(), 4, "{weighting}: per task and epoch");
    }
    let timing: f64 = conn
        .query_row("SELECT COUNT(*) FROM params WHERE key IN ('steps', 'train_seconds')", [], |r| r.get(0))
        .expect("timing");
    assert_eq!(timing, 6.0, "steps and train_seconds of the three runs");
    // Single-task networks share nothing: no gradient norms or cosines, only their weights.
    let single_task_gradients: f64 = conn
        .query_row(
            "SELECT COUNT(*) FROM diagnostics d JOIN params p ON p.run_id = d.run_id
             WHERE p.key = 'strategy' AND p.text = 'single-task' AND d.name <> 'weight'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(single_task_gradients, 0.0);
    for chart in ["small-task-weights.svg", "small-gradient-cosine.svg"] {
        assert!(ws.path("report").join(chart).exists(), "{chart}");
    }
}

#[test]
fn report_opens_in_a_real_browser_with_every_image_loaded_no_console_errors_and_sortable_tables() {
    assert!(
        browser::chromium().is_some(),
        "this test opens the report in headless Chromium, which is not on PATH: install it with \
         `apt-get install chromium` (Debian's package; .ci/run installs it)"
    );
    let ws = Workspace::new();
    // Single-task and hard under two weightings, with diagnostics: every kind of chart and
    // all three tables (strategy comparison, weighting methods, runs).
    let experiment = SMALL
        .replace("lambda = [0.5, 2.0]", "lambda = [0.5]\nweighting = [\"static\", \"pcgrad\"]")
        .replace("seeds = [0, 1]", "seeds = [0]")
        + "\n[diagnostics]\nmeasure_every = 1\n";
    ws.write("browser.toml", &experiment);
    expect_code(&ws.mtl(&["run", "browser.toml", "--no-report"]), 0);
    expect_code(&ws.mtl(&["report"]), 0);

    let name = "report_opens_in_a_real_browser";
    let check = browser::check_report(&ws.path("report"), &ws.path(&format!("{name}.png")));
    // Kept where a person can look at them after the run.
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("browser-screenshots");
    std::fs::create_dir_all(&kept).expect("target/browser-screenshots");
    for screenshot in &check.screenshots {
        std::fs::copy(screenshot, kept.join(screenshot.file_name().expect("file name"))).expect("copy screenshot");
    }
    assert!(
        check.problems().is_empty(),
        "the report failed in the browser (screenshots in {}):\n{}",
        kept.display(),
        check.problems().join("\n")
    );
    // 7 charts: strategies, Δm% heatmap, Pareto front, and per task accuracy vs λ and learning
    // curves. Task weights (static only: constant by construction) and gradient cosines (no run
    // logged one) are not drawn; the page says why.
    assert_eq!(check.images_total, 7, "{check:#?}");
    assert_eq!(check.sortable_tables, 3, "{check:#?}");
    assert!(!ws.path("report/.browser-check.html").exists(), "the instrumented copy is removed");

    // Any other reports named in MTL_BROWSER_CHECK (folders separated by ':') get the same
    // checks, e.g. the quickstart's: MTL_BROWSER_CHECK=$PWD/report cargo test -p mtl-cli --test cli report_opens
    for dir in std::env::var("MTL_BROWSER_CHECK").unwrap_or_default().split(':').filter(|d| !d.is_empty()) {
        let stem = Path::new(dir).file_name().map_or("report".into(), |n| n.to_string_lossy().into_owned());
        let check = browser::check_report(Path::new(dir), &kept.join(format!("{stem}.png")));
        // A table of one run has nothing to sort: that check does not apply there.
        let problems: Vec<String> =
            check.problems().into_iter().filter(|p| !p.contains("no numeric column with two values")).collect();
        assert!(problems.is_empty(), "{dir} failed in the browser:\n{}", problems.join("\n"));
        eprintln!(
            "{dir}: {} images loaded, {} sortable tables, no console errors",
            check.images_total, check.sortable_tables
        );
    }
}

#[test]
fn report_open_hands_the_page_to_the_desktop_opener() {
    let ws = Workspace::new();
    ws.write("small.toml", &SMALL.replace("seeds = [0, 1]", "seeds = [0]"));
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    // A stand-in for xdg-open (open on macOS) that records what it was asked to open.
    let bin = ws.path("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let opener = bin.join(if cfg!(target_os = "macos") { "open" } else { "xdg-open" });
    // Written aside and renamed, so the test never reads the record half written.
    let record = ws.path("opened");
    let script = format!("#!/bin/sh\necho \"$1\" > {0}.part && mv {0}.part {0}\n", record.display());
    std::fs::write(&opener, script).expect("opener");
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["report", "--open"])
        .env("PATH", &path)
        .current_dir(ws.path(""))
        .output()
        .expect("run mtl");
    expect_code(&out, 0);
    // The opener runs in the background: wait for its record (bounded).
    for _ in 0..100 {
        if ws.path("opened").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let opened = std::fs::read_to_string(ws.path("opened")).expect("the opener was called");
    assert_eq!(opened.trim(), "report/index.html");
    // Without any opener it says so and still succeeds.
    let out = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["report", "--open"])
        .env("PATH", ws.path("empty"))
        .current_dir(ws.path(""))
        .output()
        .expect("run mtl");
    expect_code(&out, 0);
    assert!(text(&out.stderr).contains("open report/index.html yourself"), "{}", text(&out.stderr));
}

#[test]
fn every_strategy_trains_and_the_store_records_its_hyperparameters_and_size() {
    let ws = Workspace::new();
    let all = r#"strategy = ["single-task", "hard", "soft", "cross-stitch", "mmoe", "dselect-k", "cgc", "ple", "mtan", "ltb"]"#;
    let experiment = SMALL
        .replace(r#"strategy = ["single-task", "hard"]"#, all)
        .replace("lambda = [0.5, 2.0]", "lambda = [1.0]")
        .replace("seeds = [0, 1]", "seeds = [0]")
        + "\n[strategy.soft]\nweight = [0.01, 0.1]\n\n[strategy.mmoe]\nexperts = 2\n\n[strategy.dselect-k]\nexperts = 3\nk = 1\n\n[strategy.ltb]\ntemperature = 0.5\n";
    ws.write("all.toml", &experiment);
    let out = ws.mtl(&["run", "all.toml"]);
    expect_code(&out, 0);
    // One trial per strategy and soft weight: 1 + 1 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1.
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 11);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM params WHERE key = 'n_parameters'"), 11);
    let conn = Connection::open(&db).expect("db");
    let soft_weights: Vec<f64> = conn
        .prepare("SELECT num FROM params WHERE key = 'soft_weight' ORDER BY num")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(soft_weights, [0.01, 0.1]);
    let mmoe_experts: f64 = conn
        .query_row(
            "SELECT p.num FROM params p JOIN params s ON s.run_id = p.run_id
             WHERE p.key = 'experts' AND s.key = 'strategy' AND s.text = 'mmoe'",
            [],
            |r| r.get(0),
        )
        .expect("mmoe records its experts");
    assert_eq!(mmoe_experts, 2.0);
    for (key, expected) in [("dselect_k", 1.0), ("dselect_gamma", 1.0), ("ltb_temperature", 0.5)] {
        let recorded: f64 = conn
            .query_row(&format!("SELECT num FROM params WHERE key = '{key}'"), [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(recorded, expected, "{key}");
    }
    // Each finished trial's line shows its parameter count.
    let stderr = text(&out.stderr);
    let finished: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(finished.len(), 11, "{stderr}");
    assert!(finished.iter().all(|l| l.contains(" params, ")), "{stderr}");
    assert!(finished.iter().any(|l| l.contains("mmoe(experts=2) λ=1")), "{stderr}");
    // The report compares the strategies.
    for file in ["report/small-strategies.png", "report/small-strategies.svg"] {
        assert!(ws.path(file).exists(), "{file}");
    }
}

#[test]
fn a_rejected_file_leaves_an_existing_database_unchanged() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    let before = std::fs::read(ws.path("mtl.db")).expect("db");
    ws.write("bad.toml", &SMALL.replace("lambda = [0.5, 2.0]", "lambda = [-0.5]"));
    expect_code(&ws.mtl(&["run", "bad.toml", "--no-report"]), 2);
    assert_eq!(std::fs::read(ws.path("mtl.db")).expect("db"), before);
}

#[test]
fn bad_inputs_outside_the_experiment_file_exit_2() {
    let ws = Workspace::new();
    let out = ws.mtl(&["run", "missing.toml"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("missing.toml"));

    ws.write("garbage.toml", "");
    std::fs::write(ws.path("garbage.toml"), [0xff, 0xfe, 0x00, 0x81]).expect("write");
    let out = ws.mtl(&["run", "garbage.toml"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("not UTF-8"), "{}", text(&out.stderr));

    let out = ws.mtl(&["ls", "--db", "nothing.db"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("no results database at nothing.db"), "{}", text(&out.stderr));
    assert!(!ws.path("nothing.db").exists());

    ws.write("notes.db", "these are my notes, not a database, and they are long enough to matter\n");
    let out = ws.mtl(&["ls", "--db", "notes.db"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("not an mtl-lab results database"), "{}", text(&out.stderr));

    ws.write("small.toml", SMALL);
    let out = ws.mtl(&["run", "small.toml", "--jobs", "0"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("--jobs"), "{}", text(&out.stderr));
    assert!(!ws.path("mtl.db").exists());
}

/// Writes an IDX file (gzip-compressed when `gz`) holding `dims` and `data` as unsigned bytes.
fn write_idx(path: &Path, dims: &[u32], data: &[u8], gz: bool) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    if gz {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&bytes).expect("gzip");
        bytes = encoder.finish().expect("gzip");
    }
    std::fs::write(path, bytes).expect("write idx");
}

/// A tiny MNIST-like folder: `n` 28×28 digits whose class is drawn as a bright row band.
fn write_digits(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut pixels = Vec::with_capacity(n * 784);
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    for &label in &labels {
        for row in 0..28 {
            for col in 0..28u32 {
                let on = row / 9 == label as usize && col % 2 == 0;
                pixels.push(if on { 255 } else { (col * 3) as u8 });
            }
        }
    }
    write_idx(&dir.join("t10k-images-idx3-ubyte.gz"), &[n as u32, 28, 28], &pixels, true);
    write_idx(&dir.join("t10k-labels-idx1-ubyte.gz"), &[n as u32], &labels, true);
}

/// A CSV of reviews with quoted commas and newlines; label names.
fn write_reviews_csv(path: &Path, n: usize) {
    let mut text = String::from("id,text,label\n");
    for i in 0..n {
        let (review, label) =
            if i % 2 == 0 { ("\"good, really\ngood\"", "pos") } else { ("\"bad, \"\"awful\"\" film\"", "neg") };
        text += &format!("{i},{review},{label}\n");
    }
    std::fs::write(path, text).expect("write csv");
}

const FILES: &str = r#"
name = "files"
epochs = 1
seeds = [0]
batch_size = 16

[[tasks]]
name = "digits"
data = { format = "mnist-idx", path = "digits", test_size = 20, val_size = 10, carve = "tail" }

[[tasks]]
name = "reviews"
data = { format = "csv", path = "reviews.csv", text_column = "text", label_column = "label", max_len = 8, min_freq = 1 }

[model]
width = 8
hidden = 8

[sweep]
strategy = ["hard"]
"#;

#[test]
fn an_experiment_on_files_in_real_formats_runs_and_stores_its_vocabulary() {
    let ws = Workspace::new();
    write_digits(&ws.path("digits"), 90);
    write_reviews_csv(&ws.path("reviews.csv"), 40);
    ws.write("files.toml", FILES);
    let out = ws.mtl(&["run", "files.toml", "--no-report"]);
    expect_code(&out, 0);
    let db = ws.path("mtl.db");
    // digits: 90 = 60 train + 10 val + 20 test (the tail); reviews: 40 = 32 + 8 (random 20% test, 10% val).
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 1);
    let vocabulary: String = Connection::open(&db)
        .expect("db")
        .query_row(
            "SELECT CAST(b.content AS TEXT) FROM artifacts a JOIN blobs b ON b.sha256 = a.sha256 WHERE a.name = 'vocabulary'",
            [],
            |r| r.get(0),
        )
        .expect("vocabulary stored with the run");
    let tokens: Vec<&str> = vocabulary.lines().collect();
    assert_eq!(&tokens[..2], ["<pad>", "<oov>"]);
    for word in ["good", "bad", "awful", ",", "\""] {
        assert!(tokens.contains(&word) || word == "\"", "{word:?} in {tokens:?}");
    }

    let out = ws.mtl(&["data", "inspect", "digits", "--format", "json"]);
    expect_code(&out, 0);
    let inspection: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(inspection["format"], "mnist-idx");
    assert_eq!(inspection["splits"][0]["count"], 90);
    assert_eq!(inspection["splits"][0]["per_class"]["0"], 30);
    let out = ws.mtl(&["data", "inspect", "reviews.csv"]);
    expect_code(&out, 0);
    let table = text(&out.stdout);
    assert!(table.contains("csv") && table.contains("40") && table.contains("neg"), "{table}");
}

/// Bad data: `mtl run` exits 2, names the file and the problem, and writes nothing.
fn check_bad_data(setup: impl Fn(&Workspace), fragments: &[&str]) {
    let ws = Workspace::new();
    write_digits(&ws.path("digits"), 90);
    write_reviews_csv(&ws.path("reviews.csv"), 40);
    setup(&ws);
    ws.write("files.toml", FILES);
    let out = ws.mtl(&["run", "files.toml"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    for fragment in fragments {
        assert!(stderr.contains(fragment), "expected {fragment:?} in:\n{stderr}");
    }
    assert!(!ws.path("mtl.db").exists(), "no database may be created");
}

#[test]
fn bad_data_exits_2_naming_the_file_and_the_problem() {
    let images = "t10k-images-idx3-ubyte.gz";
    check_bad_data(
        |ws| {
            let path = ws.path("digits").join(images);
            let bytes = std::fs::read(&path).expect("read");
            std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        },
        &[images, "truncated"],
    );
    check_bad_data(
        |ws| write_idx(&ws.path("digits").join(images), &[90, 28, 28], &vec![0; 90 * 784 - 5], false),
        &[images, "truncated"],
    );
    check_bad_data(
        |ws| std::fs::write(ws.path("digits").join(images), [1u8, 2, 3, 4, 5, 6, 7, 8]).expect("write"),
        &[images, "magic"],
    );
    check_bad_data(
        |ws| write_idx(&ws.path("digits").join("t10k-labels-idx1-ubyte.gz"), &[80], &[0; 80], true),
        &["t10k-labels-idx1-ubyte.gz", "90", "80"],
    );
    check_bad_data(|ws| std::fs::remove_dir_all(ws.path("digits")).expect("rm"), &["digits"]);
    check_bad_data(|ws| std::fs::write(ws.path("reviews.csv"), "").expect("empty"), &["reviews.csv", "empty"]);
    check_bad_data(
        |ws| std::fs::write(ws.path("reviews.csv"), "id,body,label\n1,nice,pos\n").expect("write"),
        &["reviews.csv", "text", "body"],
    );
}

#[test]
fn an_empty_class_folder_is_reported_by_name() {
    let ws = Workspace::new();
    let cats = ws.path("pets").join("cats");
    std::fs::create_dir_all(&cats).expect("mkdir");
    std::fs::create_dir_all(ws.path("pets").join("dogs")).expect("mkdir");
    image::GrayImage::from_pixel(8, 8, image::Luma([200])).save(cats.join("tabby 1.png")).expect("png");
    let out = ws.mtl(&["data", "inspect", "pets", "--as", "image-folder"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("dogs") && !stderr.contains("cats"), "{stderr}");
    // With a picture in each class the folder reads.
    image::GrayImage::from_pixel(8, 8, image::Luma([9])).save(ws.path("pets/dogs/rex.png")).expect("png");
    let out = ws.mtl(&["data", "inspect", "pets", "--as", "image-folder", "--format", "json"]);
    expect_code(&out, 0);
    let inspection: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(inspection["classes"], serde_json::json!(["cats", "dogs"]));
}

#[test]
fn checkpoints_are_written_recorded_with_their_sha256_and_parameter_counts_stored() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report", "--save-checkpoints", "--checkpoints", "ckpt"]), 0);
    let conn = Connection::open(ws.path("mtl.db")).expect("db");
    let mut stmt = conn
        .prepare("SELECT r.trial_key, a.path, a.sha256 FROM artifacts a JOIN runs r ON r.id = a.run_id WHERE a.name = 'checkpoint'")
        .expect("prepare");
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 6, "one checkpoint per trial");
    for (key, path, sha256) in rows {
        assert!(path.ends_with(&format!("small/{key}.safetensors")), "{path}");
        let bytes = std::fs::read(ws.dir.path().join(&path)).expect("checkpoint file");
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, sha256);
    }
    // Parameter counts, as the model tests count them: hard shares the trunk, single-task does not.
    let count_of = |strategy: &str| -> f64 {
        conn.query_row(
            "SELECT DISTINCT p.num FROM params p JOIN params s ON s.run_id = p.run_id
             WHERE p.key = 'n_parameters' AND s.key = 'strategy' AND s.text = ?1",
            [strategy],
            |r| r.get(0),
        )
        .expect("one count per strategy")
    };
    assert!(count_of("single-task") > count_of("hard"));
}

#[test]
fn ctrl_c_marks_the_running_trial_interrupted_and_exits_1() {
    use std::io::{BufRead, BufReader, Read};
    let ws = Workspace::new();
    ws.write("long.toml", &SMALL.replace("epochs = 2", "epochs = 500"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(["run", "long.toml", "--no-report", "--jobs", "1"])
        .current_dir(ws.dir.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn mtl");
    // Outside a terminal, mtl prints one line per epoch: wait for the first, then press Ctrl-C.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    while !seen.contains("epoch 1/500") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).expect("read") > 0, "mtl ended early:\n{seen}");
        seen += &line;
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    stderr.read_to_string(&mut seen).expect("read");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{seen}");
    assert!(seen.contains("1 trial(s) marked interrupted"), "{seen}");
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'interrupted'"), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'running'"), 0);
    let error: String = Connection::open(&db)
        .expect("db")
        .query_row("SELECT error FROM runs WHERE status = 'interrupted'", [], |r| r.get(0))
        .expect("error");
    assert!(error.starts_with("interrupted at epoch"), "{error}");
    let check: String =
        Connection::open(&db).expect("db").query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(check, "ok");
}

#[test]
fn the_report_orders_strategies_and_methods_as_the_model_and_runner_name_them() {
    // mtl-report reads names from the store and depends on neither crate: its orders are copies.
    let strategies: Vec<&str> =
        mtl_model::Strategy::ALL.iter().map(|s| s.name()).filter(|name| *name != "single-task").collect();
    assert_eq!(mtl_report::aggregate::MULTI_TASK_STRATEGY_ORDER.to_vec(), strategies);
    assert_eq!(mtl_report::aggregate::WEIGHTING_ORDER, mtl_runner::weighting::Method::NAMES);
}
