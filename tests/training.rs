//! Training controls end to end (issue 18): optimisers, clipping, schedules, early
//! stopping and sweeping any setting, through the real binary and its SQLite file.

use std::path::Path;

mod support {
    pub mod common;
}
use support::common::{count, expect_code, text, Workspace};

const TASKS: &str = r#"
[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 96, n_val = 32, n_test = 32 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 64, n_val = 32, n_test = 32 }

[model]
width = 8
hidden = 8
"#;

fn experiment(name: &str, head: &str, tail: &str) -> String {
    format!("name = \"{name}\"\nbatch_size = 32\n{head}\n{TASKS}\n{tail}")
}

/// Every (run, epoch, task, split, metric) value of a database, in order.
fn metrics(db: &Path) -> Vec<(i64, i64, String, f64)> {
    let connection = rusqlite::Connection::open(db).expect("open");
    let mut statement = connection
        .prepare("SELECT run_id, epoch, task || '.' || split || '.' || metric, value FROM metrics ORDER BY 1, 2, 3")
        .expect("prepare");
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// The stored settings of run `id` as `key=value` lines.
fn settings(ws: &Workspace, id: i64) -> String {
    let out = ws.mtl(&["sql", &format!("SELECT key, value FROM settings WHERE run_id = {id} ORDER BY key")]);
    expect_code(&out, 0);
    text(&out.stdout)
}

#[test]
fn early_stopping_ends_a_trial_whose_validation_score_stops_rising() {
    let ws = Workspace::new();
    // A learning rate this small leaves the validation accuracy where it starts.
    let file = experiment("stop", "epochs = 12", "[early_stopping]\npatience = 2\n[sweep]\nlr = [1e-9]\n");
    ws.write("stop.toml", &file);
    expect_code(&ws.mtl(&["run", "stop.toml"]), 0);
    let db = ws.path("mtl.db");
    let epochs = count(&db, "SELECT MAX(epoch) FROM metrics");
    assert!(epochs < 12, "early stopping ended the trial before its 12 epochs, got {epochs}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 1);
    // Patience 2: the epoch after the best, plus two without improvement.
    let best = count(&db, "SELECT best_epoch FROM runs");
    assert!(epochs >= best + 2, "stopped at {epochs}, best {best}");
    let stored = settings(&ws, 1);
    assert!(stored.contains("early_stopping_patience") && stored.contains('2'), "{stored}");

    // Without a validation split there is nothing to stop on: refused before training.
    let rows: String =
        (0..40).map(|i| format!("{} film {i},{}\n", ["good", "bad"][i % 2], ["pos", "neg"][i % 2])).collect();
    ws.write("reviews.csv", &format!("text,label\n{rows}"));
    let csv = "{ format = \"csv\", path = \"reviews.csv\", text_column = \"text\", label_column = \"label\", val_size = 0, test_size = 10 }";
    let blind = file
        .replace("name = \"stop\"", "name = \"blind\"")
        .replace("{ format = \"synthetic-reviews\", n_train = 64, n_val = 32, n_test = 32 }", csv);
    assert!(blind.contains("reviews.csv"));
    ws.write("blind.toml", &blind);
    let out = ws.mtl(&["run", "blind.toml", "--db", "blind.db"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("early_stopping") && stderr.contains("task reviews has no validation split"), "{stderr}");
}

#[test]
fn optimizers_schedules_and_clipping_change_training_and_default_adamw_keeps_its_numbers() {
    let ws = Workspace::new();
    let sweep = "[sweep]\nstrategy = [\"hard\"]\nlr = [0.01]\n";
    ws.write("base.toml", &experiment("base", "epochs = 2", sweep));
    // The default written out: the same trial, the same numbers.
    ws.write(
        "explicit.toml",
        &experiment("explicit", "epochs = 2", &format!("[optimizer]\nname = \"adamw\"\nweight_decay = 0\n{sweep}")),
    );
    ws.write(
        "sgd.toml",
        &experiment(
            "sgd",
            "epochs = 2",
            &format!("[optimizer]\nname = \"sgd\"\nmomentum = 0.9\nnesterov = true\n{sweep}"),
        ),
    );
    ws.write("clip.toml", &experiment("clip", "epochs = 2", &format!("[optimizer]\nclip_norm = 0.01\n{sweep}")));
    ws.write(
        "cosine.toml",
        &experiment("cosine", "epochs = 2", &format!("[schedule]\nname = \"cosine\"\nwarmup_epochs = 1\n{sweep}")),
    );
    let mut by_file = Vec::new();
    for name in ["base", "explicit", "sgd", "clip", "cosine"] {
        let db = format!("{name}.db");
        expect_code(&ws.mtl(&["run", &format!("{name}.toml"), "--db", &db, "--no-report"]), 0);
        let values: Vec<u64> = metrics(&ws.path(&db)).iter().map(|m| m.3.to_bits()).collect();
        by_file.push((name, values));
    }
    assert_eq!(by_file[0].1, by_file[1].1, "adamw written out trains exactly as the default");
    for (name, values) in &by_file[2..] {
        assert_ne!(&by_file[0].1, values, "{name} changes training");
    }
    let out = ws.mtl(&["ls", "--db", "sgd.db", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let run = &runs[0]["settings"];
    assert_eq!(
        (run["optimizer"].as_str(), run["sgd_momentum"].as_f64(), run["sgd_nesterov"].as_f64()),
        (Some("sgd"), Some(0.9), Some(1.0)),
        "{run}"
    );
    let out = ws.mtl(&["ls", "--db", "base.db", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(runs[0]["settings"].get("optimizer").is_none(), "the default optimiser adds no setting: {}", runs[0]);
}

#[test]
fn any_listed_setting_is_swept_and_an_unsweepable_one_is_named() {
    let ws = Workspace::new();
    let sweep = "[sweep]\nstrategy = [\"hard\"]\nlr = [0.01]\nbatch_size = [16, 32]\n[sweep.optimizer]\nname = [\"adamw\", \"sgd\"]\n";
    let file = experiment("grid", "epochs = 1", sweep).replace("batch_size = 32\n", "");
    ws.write("grid.toml", &file);
    let out = ws.mtl(&["run", "grid.toml", "--no-report"]);
    expect_code(&out, 0);
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 4);
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT trial_key) FROM runs"), 4);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM settings WHERE key = 'batch_size' AND value = 16"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM settings WHERE key = 'optimizer' AND value = 'sgd'"), 2);

    ws.write("bad.toml", &experiment("bad", "epochs = 1", "[sweep]\nseeds = [1, 2]\n"));
    let before = std::fs::read(&db).expect("db");
    let out = ws.mtl(&["run", "bad.toml"]);
    expect_code(&out, 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.toml") && stderr.contains("seeds cannot be swept"), "{stderr}");
    assert!(stderr.contains("optimizer.momentum") && stderr.contains("batch_size"), "{stderr}");
    assert_eq!(before, std::fs::read(&db).expect("db"), "a rejected file changes nothing");
}

#[test]
fn augmentation_trains_is_stored_and_repeats_bit_for_bit_whatever_the_threads() {
    let ws = Workspace::new();
    let sweep = "[sweep]\nstrategy = [\"hard\"]\nlr = [0.01]\n";
    let augment = "[augment]\ncrop_padding = 2\nflip = true\nnormalize = \"train\"\n";
    ws.write("augment.toml", &experiment("augment", "epochs = 2", &format!("{augment}{sweep}")));
    ws.write("plain.toml", &experiment("augment", "epochs = 2", sweep));
    let mut by_run = Vec::new();
    for (file, db, threads) in [("augment", "a.db", "1"), ("augment", "b.db", "3"), ("plain", "plain.db", "1")] {
        let mut command = ws.command(&["run", &format!("{file}.toml"), "--db", db, "--no-report"]);
        expect_code(&command.env("RAYON_NUM_THREADS", threads).output().expect("run mtl"), 0);
        assert_eq!(count(&ws.path(db), "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 1, "{db}");
        by_run.push(metrics(&ws.path(db)));
    }
    let values = |run: &[(i64, i64, String, f64)]| run.iter().map(|m| m.3.to_bits()).collect::<Vec<u64>>();
    assert!(by_run[0].iter().all(|m| m.3.is_finite()) && by_run[0].len() == by_run[2].len());
    assert_eq!(values(&by_run[0]), values(&by_run[1]), "the same file on 1 and 3 threads: the same bits");
    assert_ne!(values(&by_run[0]), values(&by_run[2]), "augmentation changes training");
    // The text task reads no images; the image task trains: its training loss falls.
    let loss = |epoch: i64| by_run[0].iter().find(|m| m.1 == epoch && m.2 == "shapes.train.loss").map(|m| m.3);
    assert!(loss(2) < loss(1), "shapes training loss {:?} → {:?}", loss(1), loss(2));
    let stored = |db: &str, condition: &str| {
        count(&ws.path(db), &format!("SELECT COUNT(*) FROM settings WHERE key LIKE 'augment%' AND ({condition})"))
    };
    let expected = "key = 'augment_crop_padding' AND value = 2 OR key = 'augment_flip' AND value = 1 \
                    OR key = 'augment_normalize' AND value = 'train'";
    assert_eq!((stored("a.db", expected), stored("a.db", "1")), (3, 3), "the stored augmentation settings");
    assert_eq!(stored("plain.db", "1"), 0, "no augmentation adds no setting");

    // Refused before anything is written: no task with images; means for 3 channels on grayscale.
    let text_only = experiment("text", "epochs = 1", "[augment]\nflip = true\n").replace(
        "name = \"shapes\"\ndata = { format = \"synthetic-shapes\", n_train = 96, n_val = 32, n_test = 32 }\n\n[[tasks]]\n",
        "",
    );
    let rgb = "[augment]\nnormalize = { mean = [0.5, 0.5, 0.5], std = [0.2, 0.2, 0.2] }\n";
    for (name, source, expected) in [
        ("text", text_only, "augment.flip applies to image tasks"),
        ("rgb", experiment("rgb", "epochs = 1", rgb), "3 means and standard deviations, but the images have 1 channel"),
    ] {
        ws.write(&format!("{name}.toml"), &source);
        let out = ws.mtl(&["run", &format!("{name}.toml"), "--db", &format!("{name}.db")]);
        expect_code(&out, 2);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

#[test]
fn trec_lines_and_joined_csv_columns_train_from_split_files_and_subsets() {
    let ws = Workspace::new();
    // TREC's layout: `COARSE:fine question`, one file per split.
    let question = |i: usize| match i % 3 {
        0 => format!("NUM:dist How far is town {i} from the sea ?"),
        1 => format!("LOC:city Where is the harbour of place {i} ?"),
        _ => format!("NUM:count How many boats sail from port {i} ?"),
    };
    let lines = |range: std::ops::Range<usize>| range.map(question).collect::<Vec<_>>().join("\n") + "\n";
    ws.write("train_5500.label", &lines(0..60));
    ws.write("TREC_10.label", &lines(60..80));
    // News with a title and a description, classes 1, 2 and 4 of a declared 1–4.
    let rows: String = (0..30)
        .map(|i| {
            let (topic, class) = [("markets fall", 1), ("team wins", 2), ("new chip", 4)][i % 3];
            format!("{topic} {i},\"{topic}, said a report {i}\",{class}\n")
        })
        .collect();
    ws.write("news.csv", &format!("title,description,class\n{rows}"));
    let file = r#"
name = "layouts"
epochs = 2
batch_size = 8

[[tasks]]
name = "questions"
data = { format = "prefixed-lines", train = "train_5500.label", test = "TREC_10.label", labels = "coarse", n_train = 40 }

[[tasks]]
name = "news"
data = { format = "csv", path = "news.csv", text_column = ["title", "description"], label_column = "class", label_range = [1, 4] }

[model]
width = 8
hidden = 8

[sweep]
strategy = ["hard"]
"#;
    ws.write("layouts.toml", file);
    let out = ws.mtl(&["run", "layouts.toml", "--no-report"]);
    expect_code(&out, 0);
    // questions: 6 of the 60 training lines carved for val, 40 of the other 54 kept, the
    // test file whole; news: 6 test, 2 val (10% of 24), 22 train.
    let sizes = "questions 40/6/20 · news 22/2/6";
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("examples (train/val/test): {sizes}")), "{stderr}");
    let stored = settings(&ws, 1);
    let line = stored.lines().find(|l| l.starts_with("split_sizes")).unwrap_or_default().to_owned();
    assert!(line.ends_with(sizes), "{stored}");
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 1);
    // The coarse labels are two classes, as `data inspect` counts the fine ones.
    let inspected = text(&ws.mtl(&["data", "inspect", "TREC_10.label"]).stdout);
    assert!(inspected.contains("LOC:city") && inspected.contains("NUM:count") && inspected.contains("NUM:dist"));
}
