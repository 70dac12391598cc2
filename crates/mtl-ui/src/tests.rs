//! The API's answers on hand-made runs.

use std::collections::BTreeMap;

use mtl_store::{MetricKey, ParamValue, RunId, RunRecord, RunStatus};
use serde_json::json;

use crate::api;

fn run(id: i64, strategy: &str, lambda: f64, seed: f64, accuracy: f64) -> RunRecord {
    let params: BTreeMap<String, ParamValue> = [
        ("strategy", ParamValue::Text(strategy.into())),
        ("lambda", ParamValue::Num(lambda)),
        ("seed", ParamValue::Num(seed)),
        ("epochs", ParamValue::Num(4.0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let key = |task: &str, split: &str| MetricKey { task: task.into(), split: split.into(), metric: "accuracy".into() };
    let metrics: BTreeMap<MetricKey, f64> = [
        (key("a", "test"), accuracy),
        (key("a", "val"), accuracy),
        (key("b", "test"), accuracy / 2.0),
        (key("b", "val"), accuracy / 2.0),
    ]
    .into_iter()
    .collect();
    RunRecord {
        id: RunId(id),
        experiment: "e".into(),
        status: RunStatus::Done,
        params,
        final_epoch: Some(4),
        final_metrics: metrics.clone(),
        best_epoch: Some(4),
        best_metrics: metrics,
        revision: 1,
        ..RunRecord::default()
    }
}

fn runs() -> Vec<RunRecord> {
    vec![run(1, "hard", 0.5, 0.0, 0.8), run(2, "hard", 0.5, 1.0, 0.9), run(3, "hard", 2.0, 0.0, 0.6)]
}

#[test]
fn runs_are_filtered_and_sorted_with_the_cli_language_and_constant_columns_marked() {
    let answer =
        api::runs(&runs(), "e", Some("lambda < 1"), Some("-a.test.accuracy"), api::Page::FIRST, "here").unwrap();
    let ids: Vec<i64> = answer["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [2, 1]);
    assert_eq!((answer["total"].clone(), answer["matched"].clone()), (json!(3), json!(2)));
    let constant = |key: &str| {
        answer["columns"].as_array().unwrap().iter().find(|c| c["key"] == key).map(|c| c["constant"].clone())
    };
    assert_eq!(constant("strategy"), Some(json!(true)));
    assert_eq!(constant("lambda"), Some(json!(false)));
    assert_eq!(answer["rows"][0]["values"]["a.test.accuracy"], json!(0.9));
}

#[test]
fn a_bad_filter_or_sort_names_the_offending_place() {
    let error = api::runs(&runs(), "e", Some("lambda < 1 and lamda > 0"), None, api::Page::FIRST, "here").unwrap_err();
    assert_eq!((error.status, error.at), (400, Some(15)));
    assert!(error.message.contains("unknown key \"lamda\""), "{}", error.message);
    let error = api::runs(&runs(), "e", Some("lambda <"), None, api::Page::FIRST, "here").unwrap_err();
    assert_eq!((error.status, error.at), (400, Some(8)));
    let error = api::runs(&runs(), "e", None, Some("seed,-sede"), api::Page::FIRST, "here").unwrap_err();
    assert_eq!((error.status, error.at), (400, Some(6)));
    let error = api::runs(&runs(), "nope", None, None, api::Page::FIRST, "here").unwrap_err();
    assert_eq!(error.status, 404);
    assert!(error.message.contains("known experiments: e"), "{}", error.message);
}

#[test]
fn a_running_trial_shows_its_epoch_and_the_time_left_at_its_pace() {
    let mut running = run(4, "hard", 0.5, 2.0, 0.7);
    running.status = RunStatus::Running;
    running.final_epoch = Some(1);
    running.started_at = Some("2026-12-06T10:00:00.000Z".into());
    running.heartbeat_at = Some("2026-12-06T10:00:30.000Z".into());
    let answer = api::runs(&[running], "e", None, None, api::Page::FIRST, "here").unwrap();
    // 30 s for one epoch, three to go.
    assert_eq!(answer["rows"][0]["progress"], json!({ "epoch": 1, "epochs": 4.0, "eta_s": 90.0 }));
}

#[test]
fn the_verdict_is_the_best_group_of_compare() {
    let mut all = runs();
    all.push(run(5, "single-task", 1.0, 0.0, 0.7));
    all.push(run(6, "single-task", 1.0, 1.0, 0.7));
    for r in &mut all[3..] {
        r.params.remove("lambda");
    }
    let answer = api::experiments(&all, "x.db".as_ref());
    let verdict = &answer["experiments"][0]["verdict"];
    assert_eq!(verdict["group"], json!("strategy=hard, lambda=0.5"));
    // Δm% of means: a 0.85 and b 0.425 against 0.7 and 0.35 → +21.43%.
    assert!((verdict["delta_m"].as_f64().unwrap() - 150.0 / 7.0).abs() < 1e-9, "{verdict}");
}

#[test]
fn a_page_of_the_matches_is_sent_and_the_count_of_all() {
    let answer = api::runs(&runs(), "e", None, Some("-id"), api::Page { offset: 1, limit: 1 }, "here").unwrap();
    assert_eq!(answer["rows"].as_array().unwrap().len(), 1);
    assert_eq!(answer["rows"][0]["id"], json!(2));
    assert_eq!((answer["matched"].clone(), answer["total"].clone()), (json!(3), json!(3)));
}
