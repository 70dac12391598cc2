//! One output model (issue 17): `ls`, `export` and `sql` write the same numbers at full
//! precision in CSV, integers as integers, and a missing value as an empty cell in CSV and
//! `null` in JSON.

mod support {
    pub mod common;
}
use std::collections::BTreeMap;

use support::common::{expect_code, text, Workspace, SMALL};

/// `mtl ARGS` as CSV: its records by column name, every record as long as the header.
fn csv_records(ws: &Workspace, args: &[&str]) -> Vec<BTreeMap<String, String>> {
    let out = ws.mtl(args);
    expect_code(&out, 0);
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().expect("a header").iter().map(String::from).collect();
    reader
        .records()
        .map(|record| header.iter().cloned().zip(record.expect("a record").iter().map(String::from)).collect())
        .collect()
}

fn json(ws: &Workspace, args: &[&str]) -> serde_json::Value {
    let out = ws.mtl(args);
    expect_code(&out, 0);
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Asserts that `a` and `b` are the same number written the same way, and that it is the
/// shortest text of its `f64` (full precision, not rounded).
fn same_number(what: &str, a: &str, b: &str) {
    assert_eq!(a, b, "{what}: the same text");
    let (x, y): (f64, f64) = (a.parse().expect(what), b.parse().expect(what));
    assert_eq!(x.to_bits(), y.to_bits(), "{what}: the same bits");
    assert_eq!(x.to_string(), a, "{what}: Rust's shortest round-trip text of the value");
}

#[test]
fn ls_export_and_sql_write_the_same_full_precision_numbers() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    let metric = "shapes.test.accuracy";

    let listed = csv_records(&ws, &["ls", "--format", "csv"]);
    let exported = csv_records(&ws, &["export", "--format", "csv"]);
    let query = format!("SELECT run_id, \"{metric}\", lambda, batch_size FROM runs_wide ORDER BY run_id");
    let queried = csv_records(&ws, &["sql", &query, "--format", "csv"]);
    assert_eq!(listed.len(), 6);
    assert_eq!(queried.len(), 6);

    let mut rounded_somewhere = false;
    for (run, row) in listed.iter().zip(&queried) {
        let id = &run["id"];
        assert_eq!(id, &row["run_id"]);
        let from_ls = &run[metric];
        rounded_somewhere |= from_ls.split('.').nth(1).is_some_and(|decimals| decimals.len() > 4);
        same_number(&format!("run {id}: ls vs sql"), from_ls, &row[metric]);
        let results: Vec<&BTreeMap<String, String>> = exported
            .iter()
            .filter(|p| {
                &p["run_id"] == id
                    && p["is_result"] == "true"
                    && (p["task"].as_str(), p["split"].as_str(), p["metric"].as_str()) == ("shapes", "test", "accuracy")
            })
            .collect();
        assert_eq!(results.len(), 1, "run {id}: one result point");
        same_number(&format!("run {id}: ls vs export"), from_ls, &results[0]["value"]);

        // Integers stay integers; a setting a run does not have is an empty cell.
        assert_eq!(run["batch_size"], "32");
        assert_eq!(row["batch_size"], "32");
        let hard = run["strategy"] == "hard";
        assert_eq!(run["lambda"].is_empty(), !hard, "run {id}: λ is a setting of hard runs only");
        assert_eq!(row["lambda"], run["lambda"]);
    }
    // With 32 test examples some accuracy has more than 4 decimals (e.g. 0.71875): not rounded.
    assert!(rounded_somewhere, "{listed:?}");
    assert!(exported.iter().all(|p| p["batch_size"] == "32" && !p["value"].is_empty()));
    assert!(exported.iter().any(|p| p["lambda"].is_empty()));
    assert!(!text(&ws.mtl(&["ls", "--format", "csv"]).stdout).contains(",-,"), "no '-' in CSV");
}

#[test]
fn json_writes_integers_as_integers_and_missing_values_as_null() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);

    let out = ws.mtl(&["ls", "--format", "json"]);
    expect_code(&out, 0);
    let listed = text(&out.stdout);
    assert!(listed.contains("\"batch_size\": 32,") && !listed.contains("\"batch_size\": 32.0"), "{listed}");
    let runs: serde_json::Value = serde_json::from_str(&listed).expect("json");
    for run in runs.as_array().expect("runs") {
        assert!(run["settings"]["batch_size"].is_u64(), "{run}");
        assert!(run["settings"]["seed"].is_u64(), "{run}");
        assert_eq!(run["settings"]["lr"], 0.01);
    }

    let points = json(&ws, &["export", "--format", "json"]);
    let points = points.as_array().expect("points");
    assert!(points.iter().all(|p| p["batch_size"] == 32 && p["batch_size"].is_u64() && p["epoch"].is_u64()));
    // Single-task runs have no λ: null, not left out, not "-".
    let single = points.iter().find(|p| p["strategy"] == "single-task").expect("a single-task point");
    assert!(single.as_object().expect("object").contains_key("lambda") && single["lambda"].is_null(), "{single}");

    // compare: the group's λ as the setting was written; none for the baselines.
    let groups = json(&ws, &["compare", "--group-by", "strategy,lambda", "--format", "json"]);
    let lambdas: Vec<String> =
        groups.as_array().expect("groups").iter().map(|g| g["group"]["lambda"].to_string()).collect();
    assert_eq!(lambdas, ["0.5", "2", "null"]);
    let compared = csv_records(&ws, &["compare", "--group-by", "strategy,lambda", "--format", "csv"]);
    let lambdas: Vec<&str> = compared.iter().map(|g| g["lambda"].as_str()).collect();
    assert_eq!(lambdas, ["0.5", "2", ""]);

    // sql: NULL is null in JSON and an empty cell in CSV.
    let query = "SELECT run_id, lambda FROM runs_wide WHERE strategy = 'single-task' ORDER BY run_id LIMIT 1";
    let rows = json(&ws, &["sql", query, "--format", "json"]);
    assert!(rows[0]["lambda"].is_null() && rows[0]["run_id"].is_u64(), "{rows}");
    assert_eq!(csv_records(&ws, &["sql", query, "--format", "csv"])[0]["lambda"], "");
}
