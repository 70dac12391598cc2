//! Consistent commands (issue 17): `MTL_DB` as every command's default database, `ls --limit`,
//! `compare --sort`, `mtl best` against `mtl compare`, `mtl status` without cluster plans,
//! and `mtl export` writing CSV by default.

mod support {
    pub mod common;
}
use support::common::{expect_code, text, Workspace, SMALL};

fn json(output: &std::process::Output) -> serde_json::Value {
    expect_code(output, 0);
    serde_json::from_slice(&output.stdout).expect("json")
}

/// The small experiment run into `results.db` (not the default name, so that MTL_DB matters).
fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report", "--db", "results.db"]), 0);
    ws
}

/// `mtl ARGS` with MTL_DB=results.db.
fn mtl_env(ws: &Workspace, args: &[&str]) -> std::process::Output {
    ws.command(args).env("MTL_DB", "results.db").output().expect("run mtl")
}

#[test]
fn every_command_and_flag_of_issue_17() {
    let ws = workspace();

    // MTL_DB is the default of every command that takes --db; --db wins; --help says so.
    for args in [&["ls"][..], &["compare"], &["best"], &["show", "1"], &["sql", "SELECT 1"], &["export"], &["status"]] {
        expect_code(&mtl_env(&ws, args), 0);
        let without = ws.mtl(args);
        expect_code(&without, 2);
        assert!(text(&without.stderr).contains("mtl.db"), "{args:?}: {}", text(&without.stderr));
        let mut overridden = args.to_vec();
        overridden.extend(["--db", "elsewhere.db"]);
        let refused = mtl_env(&ws, &overridden);
        expect_code(&refused, 2);
        assert!(text(&refused.stderr).contains("elsewhere.db"), "{args:?}: {}", text(&refused.stderr));
        let help = text(&ws.mtl(&[args[0], "--help"]).stdout);
        assert!(help.contains("MTL_DB"), "{args:?} --help:\n{help}");
    }
    assert!(!ws.path("mtl.db").exists(), "no command created the default database");

    // ls --limit: the first N after sorting, and the table says how many it left out.
    let all = json(&mtl_env(&ws, &["ls", "--format", "json", "--sort", "-shapes.test.accuracy,id"]));
    let limited =
        json(&mtl_env(&ws, &["ls", "--format", "json", "--sort", "-shapes.test.accuracy,id", "--limit", "2"]));
    assert_eq!(limited.as_array().unwrap()[..], all.as_array().unwrap()[..2]);
    let table = mtl_env(&ws, &["ls", "--limit", "2"]);
    expect_code(&table, 0);
    let out = text(&table.stdout);
    assert_eq!(out.lines().filter(|l| l.contains(" small ")).count(), 2, "{out}");
    assert!(out.contains("(4 more run(s) left out by --limit 2)"), "{out}");

    // compare --sort: by Δm% descending, by a grouping key, by a metric; an unknown column names the known ones.
    let groups = json(&mtl_env(&ws, &["compare", "--format", "json", "--sort", "-delta_m"]));
    let deltas: Vec<f64> = groups.as_array().unwrap().iter().map(|g| g["delta_m"].as_f64().unwrap()).collect();
    assert!(deltas.windows(2).all(|w| w[0] >= w[1]), "{deltas:?}");
    let by_lambda = json(&mtl_env(&ws, &["compare", "--format", "json", "--sort", "-lambda"]));
    let lambdas: Vec<Option<f64>> =
        by_lambda.as_array().unwrap().iter().map(|g| g["group"]["lambda"].as_f64()).collect();
    assert_eq!(lambdas, [Some(2.0), Some(0.5), None], "missing values go last");
    let by_metric = json(&mtl_env(&ws, &["compare", "--format", "json", "--sort", "shapes.test.loss"]));
    let losses: Vec<f64> = by_metric
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["metrics"]["shapes.test.loss"]["mean"].as_f64().unwrap())
        .collect();
    assert!(losses.windows(2).all(|w| w[0] <= w[1]), "{losses:?}");
    let unknown = mtl_env(&ws, &["compare", "--sort", "-nonsense"]);
    expect_code(&unknown, 2);
    let message = text(&unknown.stderr);
    for fragment in ["unknown column \"nonsense\"", "delta_m", "lambda", "shapes.test.accuracy"] {
        assert!(message.contains(fragment), "{fragment:?} in {message}");
    }
}

/// A group's score in `mtl compare --format json`, higher is better.
type Score = dyn Fn(&serde_json::Value) -> Option<f64>;

#[test]
fn best_is_the_best_row_of_compare_with_its_settings_and_interval() {
    let ws = workspace();
    let groups = json(&mtl_env(&ws, &["compare", "--format", "json"]));
    let groups = groups.as_array().unwrap();
    let runs = json(&mtl_env(&ws, &["ls", "--format", "json"]));

    // (flags, the group's score)
    let delta_m = |g: &serde_json::Value| g["delta_m"].as_f64();
    let accuracy = |g: &serde_json::Value| g["metrics"]["shapes.test.accuracy"]["mean"].as_f64();
    let loss = |g: &serde_json::Value| g["metrics"]["shapes.test.loss"]["mean"].as_f64().map(|x| -x);
    let cases: [(&[&str], &Score); 4] = [
        (&[], &delta_m),
        (&["--by", "delta-m"], &delta_m),
        (&["--by", "shapes.test.accuracy"], &accuracy),
        (&["--by", "shapes.test.loss"], &loss),
    ];
    for (flags, score) in cases {
        // The first of the groups with the highest score, in compare's order.
        let mut expected = &groups[0];
        for group in groups {
            if score(group) > score(expected) {
                expected = group;
            }
        }
        let mut args = vec!["best", "--format", "json"];
        args.extend(flags);
        let best = json(&mtl_env(&ws, &args));
        let best = &best.as_array().expect("one per experiment")[0];
        for field in ["group", "metrics", "runs", "delta_m", "delta_m.ci95_low", "delta_m.ci95_high", "baseline"] {
            assert_eq!(best[field], expected[field], "{flags:?}: {field}");
        }
        assert_eq!(best["n"], expected["runs"].as_array().unwrap().len());
        // Every setting of its runs (the seeds as a list), none of what a run measured.
        let settings = best["settings"].as_object().unwrap();
        let ids = expected["runs"].as_array().unwrap();
        let members: Vec<&serde_json::Value> =
            runs.as_array().unwrap().iter().filter(|r| ids.contains(&r["id"])).collect();
        for (key, value) in members[0]["settings"].as_object().unwrap() {
            match key.as_str() {
                "n_parameters" | "steps" | "train_seconds" | "split_sizes" => {
                    assert!(!settings.contains_key(key), "{key}")
                }
                "seed" => assert_eq!(settings[key], serde_json::json!([0, 1])),
                _ => assert_eq!(&settings[key], value, "{flags:?}: {key}"),
            }
        }
    }

    // The table: the group, n with the run ids, the interval, every setting.
    let table = mtl_env(&ws, &["best", "--by", "shapes.test.accuracy"]);
    expect_code(&table, 0);
    let out = text(&table.stdout);
    let best = &json(&mtl_env(&ws, &["best", "--by", "shapes.test.accuracy", "--format", "json"]))[0];
    let accuracy = &best["metrics"]["shapes.test.accuracy"];
    let ids: Vec<String> = best["runs"].as_array().unwrap().iter().map(|id| id.to_string()).collect();
    for fragment in [
        format!("n           2 runs: {}", ids.join(", ")),
        format!(
            "shapes.test.accuracy  {:.4} [{:.4}, {:.4}]",
            accuracy["mean"].as_f64().unwrap(),
            accuracy["ci95_low"].as_f64().unwrap(),
            accuracy["ci95_high"].as_f64().unwrap()
        ),
        "seed          0, 1".into(),
        "batch_size    32".into(),
        "epochs        2".into(),
    ] {
        assert!(out.contains(&fragment), "{fragment:?} in\n{out}");
    }
    assert!(!out.contains("train_seconds"), "{out}");

    // CSV: one row per experiment; an unknown --by names the known metrics.
    let csv = mtl_env(&ws, &["best", "--format", "csv"]);
    expect_code(&csv, 0);
    assert_eq!(text(&csv.stdout).lines().count(), 2);
    let unknown = mtl_env(&ws, &["best", "--by", "shapes.val.accuracy"]);
    expect_code(&unknown, 2);
    assert!(text(&unknown.stderr).contains("known: delta_m, reviews.test.accuracy"), "{}", text(&unknown.stderr));
}

#[test]
fn status_without_cluster_plans_export_show_and_sql_help() {
    let ws = workspace();

    // status: the local runs' states, exit 0, in every format.
    let status = mtl_env(&ws, &["status"]);
    expect_code(&status, 0);
    let out = text(&status.stdout);
    assert!(out.contains("small: 6 done, 0 failed, 0 interrupted, 0 pruned, 0 running"), "{out}");
    let all = json(&mtl_env(&ws, &["status", "--all", "--format", "json"]));
    assert_eq!(all["source"], "local");
    assert_eq!(all["experiments"][0]["counts"]["done"], 6);
    assert_eq!(all["trials"].as_array().map(Vec::len), Some(6));
    let csv = mtl_env(&ws, &["status", "--all", "--format", "csv"]);
    expect_code(&csv, 0);
    assert!(text(&csv.stdout).starts_with("experiment,run,trial_key,state,detail\n"));
    // Without a database it is still bad input.
    expect_code(&ws.mtl(&["status", "--db", "missing.db"]), 2);

    // export: CSV without --format, the same as --format csv.
    let default = mtl_env(&ws, &["export"]);
    expect_code(&default, 0);
    let explicit = mtl_env(&ws, &["export", "--format", "csv"]);
    assert_eq!(default.stdout, explicit.stdout);
    assert!(text(&default.stdout).starts_with("run_id,experiment,trial_key,status,"));
    expect_code(&mtl_env(&ws, &["export", "--out", "points.csv"]), 0);
    assert_eq!(std::fs::read(ws.path("points.csv")).unwrap(), default.stdout);

    // show: only the formats it accepts; seconds to 0.1 s in the table, in full in JSON.
    let help = text(&ws.mtl(&["show", "--help"]).stdout);
    assert!(help.contains("table") && help.contains("json") && !help.contains("- csv"), "{help}");
    expect_code(&mtl_env(&ws, &["show", "1", "--format", "csv"]), 2);
    let shown = json(&mtl_env(&ws, &["show", "1", "--format", "json"]));
    let seconds = shown["settings"]["train_seconds"].as_f64().unwrap();
    let table = text(&mtl_env(&ws, &["show", "1"]).stdout);
    let line = table.lines().find(|l| l.starts_with("train_seconds")).expect("train_seconds row");
    assert_eq!(line.split_whitespace().nth(1), Some(format!("{seconds:.1}").as_str()), "{line}");

    // sql --help says what there is to query, that it is read-only, and --limit.
    let help = text(&ws.mtl(&["sql", "--help"]).stdout);
    for fragment in ["runs_wide", "result_metrics", "metric_points", "Read-only", "--limit"] {
        assert!(help.contains(fragment), "{fragment:?} in\n{help}");
    }
}
