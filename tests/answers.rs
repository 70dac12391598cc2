//! One trustworthy answer, end to end: an experiment name run with `epochs = 2` and then
//! `epochs = 3` (a changed file is refused until `--new-revision`), and every command and
//! the report giving the same numbers without pooling the two settings.

mod support {
    pub mod common;
}
use support::common::{count, expect_code, text, Workspace, SMALL};

fn json(output: &std::process::Output) -> serde_json::Value {
    expect_code(output, 0);
    serde_json::from_slice(&output.stdout).expect("json")
}

#[test]
fn a_changed_file_is_a_new_revision_only_on_request_and_its_runs_are_never_pooled() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    let runs_before = count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs");

    // Same name, other settings: refused with the changed keys, nothing run.
    ws.write("small.toml", &SMALL.replace("epochs = 2", "epochs = 3"));
    let refused = ws.mtl(&["run", "small.toml", "--no-report"]);
    expect_code(&refused, 2);
    let message = text(&refused.stderr);
    for fragment in ["was last run from a different file (revision 1)", "epochs: 2 → 3", "--new-revision"] {
        assert!(message.contains(fragment), "{fragment:?} in\n{message}");
    }
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs"), runs_before);
    // A comment alone is not a change of settings.
    ws.write("commented.toml", &format!("# the same settings\n{SMALL}"));
    expect_code(&ws.mtl(&["run", "commented.toml", "--no-report"]), 0);
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs"), runs_before);

    let ran = ws.mtl(&["run", "small.toml", "--new-revision", "--out", "report"]);
    expect_code(&ran, 0);
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs"), 2 * runs_before);
    let summary = text(&ran.stdout);
    // The summary is this revision's trials, as `mtl compare` shows them.
    assert!(summary.contains("Δm% [95% CI]") && summary.contains("within noise"), "{summary}");

    // Back to the first text: it is revision 1 again, not a third one.
    ws.write("small.toml", SMALL);
    let back = ws.mtl(&["run", "small.toml", "--no-report"]);
    expect_code(&back, 2);
    assert!(text(&back.stderr).contains("epochs: 3 → 2") && text(&back.stderr).contains("as revision 1"));
    ws.write("small.toml", &SMALL.replace("epochs = 2", "epochs = 3"));

    // ls names the revisions; the runs of each keep their own results.
    let listed = json(&ws.mtl(&["ls", "--format", "json"]));
    let revisions: Vec<u64> =
        listed.as_array().expect("runs").iter().map(|r| r["revision"].as_u64().unwrap()).collect();
    assert_eq!(revisions.iter().filter(|r| **r == 1).count() as i64, runs_before, "{revisions:?}");
    assert!(text(&ws.mtl(&["ls"]).stdout).contains("revision"));

    // compare: never n = 4; the two settings are split, and says so.
    let groups = json(&ws.mtl(&["compare", "--format", "json"]));
    let groups = groups.as_array().expect("groups");
    assert_eq!(groups.len(), 6, "3 groups × 2 settings of epochs");
    for group in groups {
        assert_eq!(group["runs"].as_array().map(Vec::len), Some(2), "{group}");
        assert_eq!(group["split_by"], serde_json::json!(["epochs"]));
        assert!(group["group"]["epochs"].is_number());
    }
    let pooled = json(&ws.mtl(&["compare", "--pool", "--format", "json"]));
    assert!(pooled.as_array().expect("groups").iter().all(|g| g["runs"].as_array().map(Vec::len) == Some(4)));

    // Intervals: two fields named after the value, in JSON and CSV.
    let hard = &groups[0];
    let accuracy = &hard["metrics"]["shapes.test.accuracy"];
    let (mean, low, high) = (
        accuracy["mean"].as_f64().unwrap(),
        accuracy["ci95_low"].as_f64().unwrap(),
        accuracy["ci95_high"].as_f64().unwrap(),
    );
    // Two seeds: mean ± t_{0.975,1} · std/√2, t_{0.975,1} = 12.706204736174694 (scipy).
    let std = accuracy["std"].as_f64().unwrap();
    assert!((high - mean - 12.706204736174694 * std / 2f64.sqrt()).abs() < 1e-9 && low < mean);
    assert!(hard["delta_m.ci95_low"].is_number() || hard["delta_m.ci95_low"].is_null());
    let csv = text(&ws.mtl(&["compare", "--format", "csv"]).stdout);
    let header = csv.lines().next().expect("a header");
    for column in ["shapes.test.accuracy.ci95_low", "shapes.test.accuracy.ci95_high", "delta_m.ci95_low", "vs_best"] {
        assert!(header.split(',').any(|c| c == column), "{column} in {header}");
    }

    // The report's strategy table shows what `compare --group-by strategy --pick lambda` prints.
    let picked = json(&ws.mtl(&["compare", "--group-by", "strategy", "--pick", "lambda", "--format", "json"]));
    let page = std::fs::read_to_string(ws.path("report/index.html")).expect("the report");
    let table_start = page.find("mtl compare --group-by strategy --pick lambda").expect("the strategy table");
    let table = &page[table_start..table_start + page[table_start..].find("</table>").expect("its end")];
    for group in picked.as_array().expect("groups") {
        let mean = group["metrics"]["shapes.test.accuracy"]["mean"].as_f64().expect("a mean");
        assert!(table.contains(&format!("{mean:.4} [")), "{mean:.4} in\n{table}");
        if let Some(delta) = group["delta_m"].as_f64() {
            assert!(table.contains(&format!("{delta:+.2}")), "{delta:+.2} in\n{table}");
        }
    }
    // The report covers both revisions and opens with a table of contents.
    assert!(page.contains("<h2>Contents</h2>") && page.contains("revisions of it"), "contents and revisions");
}

#[test]
fn the_result_epoch_rule_comes_from_the_file_and_every_listing_follows_it() {
    let ws = Workspace::new();
    ws.write("small.toml", &SMALL.replace("epochs = 2", "epochs = 3\nresult_epoch = \"last\""));
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    let listed = json(&ws.mtl(&["ls", "--format", "json"]));
    for run in listed.as_array().expect("runs") {
        assert_eq!(run["result_rule"], "last");
        assert_eq!(run["result_epoch"], 3);
        assert_eq!(run["result_metrics"], run["final_metrics"]);
    }
    // --epoch looks the other way for one command.
    let best = json(&ws.mtl(&["ls", "--epoch", "best-val", "--format", "json"]));
    for run in best.as_array().expect("runs") {
        assert_eq!(run["result_epoch"], run["best_epoch"]);
    }
    // The database view follows the file's rule too.
    let view = count(
        &ws.path("mtl.db"),
        "SELECT COUNT(*) FROM result_metrics r JOIN runs ON runs.id = r.run_id WHERE r.epoch = 3",
    );
    assert!(view > 0);
    let other = count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM result_metrics WHERE epoch <> 3");
    assert_eq!(other, 0);
    // show says which epoch is the result, once.
    let shown = text(&ws.mtl(&["show", "1"]).stdout);
    assert!(shown.contains("result      epoch 3 (*): the last"), "{shown}");
    let bad = ws.mtl(&["ls", "--epoch", "best"]);
    expect_code(&bad, 2);
}
