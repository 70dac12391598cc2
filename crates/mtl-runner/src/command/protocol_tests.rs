//! The metrics protocol: each line form, each refusal naming its line, and epochs
//! grouped as the program completes them.

use super::*;

fn declared() -> Declared {
    let mut tasks = BTreeMap::new();
    tasks.insert("left".to_string(), ["accuracy".to_string()].into_iter().collect());
    tasks.insert("right".to_string(), ["accuracy".to_string(), "loss".to_string()].into_iter().collect());
    Declared { tasks }
}

fn points(event: &Event) -> Vec<(String, String, String, f64)> {
    let Event::Values { points, .. } = event else { panic!("not values: {event:?}") };
    points.iter().map(|p| (p.key.task.clone(), p.key.split.clone(), p.key.metric.clone(), p.value)).collect()
}

#[test]
fn one_value_several_values_end_epoch_and_artifact_lines_are_read() {
    let d = declared();
    let one = d.parse_line(r#"{"epoch": 3, "task": "left", "split": "val", "metric": "accuracy", "value": 0.91}"#, 1);
    let one = one.expect("valid");
    assert!(matches!(one, Event::Values { epoch: 3, .. }));
    assert_eq!(points(&one), [("left".into(), "val".into(), "accuracy".into(), 0.91)]);
    let several =
        d.parse_line(r#"{"epoch": 1, "task": "right", "split": "train", "metrics": {"loss": 2, "accuracy": 0.5}}"#, 2);
    assert_eq!(
        points(&several.expect("valid")),
        [
            ("right".into(), "train".into(), "accuracy".into(), 0.5),
            ("right".into(), "train".into(), "loss".into(), 2.0)
        ]
    );
    assert_eq!(d.parse_line(r#"{"end_epoch": 4}"#, 3), Ok(Event::EndEpoch(4)));
    assert_eq!(
        d.parse_line(r#"{"artifact": "ckpt/model.pt", "name": "model"}"#, 4),
        Ok(Event::Artifact { path: "ckpt/model.pt".into(), name: Some("model".into()) })
    );
}

#[test]
fn every_malformed_line_is_refused_naming_its_number_and_what_to_write() {
    let d = declared();
    let cases = [
        ("not json", "metrics line 7: not JSON"),
        ("[1, 2]", "expected one JSON object per line"),
        (r#"{"epoch": 0, "task": "left", "split": "val", "metric": "accuracy", "value": 1}"#, "whole number from 1"),
        (r#"{"epoch": 1.5, "task": "left", "split": "val", "metric": "accuracy", "value": 1}"#, "whole number from 1"),
        (
            r#"{"epoch": 1, "task": "middle", "split": "val", "metric": "accuracy", "value": 1}"#,
            "unknown task \"middle\"; the experiment declares left, right",
        ),
        (r#"{"epoch": 1, "task": "left", "split": "dev", "metric": "accuracy", "value": 1}"#, "unknown split \"dev\""),
        (
            r#"{"epoch": 1, "task": "left", "split": "val", "metric": "loss", "value": 1}"#,
            "unknown metric \"loss\" of task \"left\"; the experiment declares accuracy",
        ),
        (
            r#"{"epoch": 1, "task": "left", "split": "val", "metric": "accuracy", "value": "NaN"}"#,
            "is not a finite number",
        ),
        (r#"{"epoch": 1, "task": "left", "split": "val", "metric": "accuracy"}"#, "\"metric\" needs its \"value\""),
        (r#"{"epoch": 1, "task": "left", "split": "val"}"#, "no \"metric\" with \"value\" and no \"metrics\""),
        (r#"{"epoch": 1, "task": "left", "split": "val", "metrics": {}}"#, "non-empty object"),
        (
            r#"{"epoch": 1, "task": "left", "split": "val", "metric": "accuracy", "value": 1, "step": 3}"#,
            "unknown key \"step\"",
        ),
        (r#"{"artifact": ""}"#, "\"artifact\" must be a non-empty string"),
        (r#"{"end_epoch": 2, "epoch": 2}"#, "unknown key \"epoch\""),
    ];
    for (line, expected) in cases {
        let error = d.parse_line(line, 7).expect_err(line).to_string();
        assert!(error.starts_with("metrics line 7: ") && error.contains(expected), "{line}: {error}");
    }
    let long = format!(r#"{{"artifact": "{}"}}"#, "a".repeat(MAX_LINE));
    assert!(d.parse_line(&long, 1).expect_err("too long").to_string().contains("a line holds at most"));
}

#[test]
fn epochs_complete_on_end_epoch_on_a_later_value_or_at_exit_and_never_go_back() {
    let d = declared();
    let mut epochs = EpochCollector::default();
    let mut feed = |line: &str, n: usize| epochs.take(&d.parse_line(line, n).expect("valid"), n);
    let value = |epoch: u32, v: f64| {
        format!(r#"{{"epoch": {epoch}, "task": "left", "split": "val", "metric": "accuracy", "value": {v}}}"#)
    };
    assert_eq!(feed(&value(1, 0.5), 1), Ok(vec![]));
    // A later value of the same key replaces the earlier one.
    assert_eq!(feed(&value(1, 0.6), 2), Ok(vec![]));
    let done = feed(r#"{"end_epoch": 1}"#, 3).expect("complete");
    assert_eq!(done, vec![(1, vec![MetricPoint::new("left", "val", "accuracy", 0.6)])]);
    assert!(feed(&value(1, 0.7), 4).expect_err("complete").to_string().contains("epoch 1, which is complete"));
    assert_eq!(feed(&value(2, 0.7), 5), Ok(vec![]));
    // Epoch 3 begins: epoch 2 is complete.
    assert_eq!(feed(&value(3, 0.8), 6), Ok(vec![(2, vec![MetricPoint::new("left", "val", "accuracy", 0.7)])]));
    assert!(feed(&value(2, 0.1), 7).expect_err("back").to_string().contains("epochs never go back"));
    assert!(feed(r#"{"end_epoch": 5}"#, 8).expect_err("not open").to_string().contains("the open epoch is 3"));
    assert_eq!(epochs.finish(), Some((3, vec![MetricPoint::new("left", "val", "accuracy", 0.8)])));
    assert_eq!(epochs.finish(), None);
}

#[test]
fn the_python_client_writes_lines_the_protocol_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let metrics = dir.path().join("metrics.jsonl");
    let client = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/python");
    let program = "import mtl_client as m\n\
        for epoch in (1, 2):\n\
        \x20   m.log(epoch=epoch, task='left', split='val', accuracy=0.5 + epoch / 10)\n\
        \x20   m.log(epoch=epoch, task='right', split='train', accuracy=0.25, loss=3 / epoch)\n\
        \x20   m.end_epoch(epoch)\n\
        m.artifact('model.pt', name='model')\n\
        try:\n\
        \x20   m.log(epoch=3, task='left', split='val', accuracy=float('nan'))\n\
        except ValueError as e:\n\
        \x20   print(e)\n";
    let out = std::process::Command::new("python3")
        .args(["-c", program])
        .env("PYTHONPATH", &client)
        .env("MTL_METRICS", &metrics)
        .output()
        .expect("python3 runs (CI installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "left val accuracy: nan is not a finite number");

    let (d, mut epochs, mut done) = (declared(), EpochCollector::default(), Vec::new());
    let text = std::fs::read_to_string(&metrics).expect("metrics file");
    let mut artifacts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let event = d.parse_line(line, i + 1).expect("a valid line");
        if let Event::Artifact { path, name } = &event {
            artifacts.push((path.clone(), name.clone()));
        }
        done.extend(epochs.take(&event, i + 1).expect("in order"));
    }
    assert_eq!(artifacts, [("model.pt".to_string(), Some("model".to_string()))]);
    assert_eq!(epochs.finish(), None, "every epoch ended");
    let second: Vec<(String, f64)> = done[1].1.iter().map(|p| (p.key.to_string(), p.value)).collect();
    assert_eq!(done.len(), 2);
    assert_eq!(
        second,
        [("left.val.accuracy".into(), 0.7), ("right.train.accuracy".into(), 0.25), ("right.train.loss".into(), 1.5)]
    );
}
