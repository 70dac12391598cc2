//! Sharing that means what it says: text tasks share one vocabulary (stored once per run
//! and shown by `mtl show`), and inputs a shared stem cannot take are refused before anything
//! trains or the database is written.

use std::path::Path;

use rusqlite::Connection;

use crate::support::common::*;

/// An experiment of `tasks` (TOML `[[tasks]]` entries) under `strategies`, small enough to train in a second.
fn experiment(tasks: &str, strategies: &str) -> String {
    format!(
        "name = \"sharing\"\nepochs = 1\nseeds = [0]\nbatch_size = 8\n\n{tasks}\n\
         [model]\nwidth = 4\nhidden = 4\n\n[sweep]\nstrategy = {strategies}\nlambda = [1.0]\nlr = [0.01]\n"
    )
}

fn task(name: &str, data: &str) -> String {
    format!("[[tasks]]\nname = \"{name}\"\ndata = {data}\n\n")
}

fn csv_task(name: &str, file: &str, extra: &str) -> String {
    task(
        name,
        &format!("{{ format = \"csv\", path = \"{file}\", text_column = \"text\", label_column = \"label\"{extra} }}"),
    )
}

/// `n` reviews of two classes, with `words` (positive) or `other_words` (negative), and "a the" in each.
fn write_csv(path: &Path, n: usize, words: [&str; 2], other_words: [&str; 2]) {
    let mut text = String::from("text,label\n");
    for i in 0..n {
        let (pair, label) = if i % 2 == 0 { (words, "pos") } else { (other_words, "neg") };
        text.push_str(&format!("{} {} a the,{label}\n", pair[0], pair[1]));
    }
    std::fs::write(path, text).expect("write csv");
}

/// The bytes of the database and of its WAL and shared-memory files, where they exist.
fn database_bytes(db: &Path) -> Vec<Option<Vec<u8>>> {
    ["", "-wal", "-shm"].iter().map(|suffix| std::fs::read(format!("{}{suffix}", db.display())).ok()).collect()
}

#[track_caller]
fn expect_refused(out: &std::process::Output, fragments: &[&str]) {
    expect_code(out, 2);
    let stderr = text(&out.stderr);
    for fragment in fragments {
        assert!(stderr.contains(fragment), "expected {fragment:?} in:\n{stderr}");
    }
}

#[test]
fn image_tasks_the_shared_stem_cannot_take_are_refused_before_the_database_is_written() {
    let ws = Workspace::new();
    for (class, shade) in [("dark", 20u8), ("light", 230)] {
        let folder = ws.path(&format!("pics/{class}"));
        std::fs::create_dir_all(&folder).expect("mkdir");
        for i in 0..6u8 {
            let image = image::RgbImage::from_pixel(28, 28, image::Rgb([shade, shade.wrapping_add(i), 9]));
            image.save(folder.join(format!("{i}.png"))).expect("png");
        }
    }
    let shapes = task("shapes", "{ format = \"synthetic-shapes\", n_train = 32, n_val = 8, n_test = 8 }");
    let pics =
        task("pics", "{ format = \"image-folder\", path = \"pics\", channels = 3, test_size = 2, val_size = 2 }");
    let tasks = format!("{shapes}{pics}");
    let refusal = [
        "trial hard",
        "tasks shapes (1×28×28 images) and pics (3×28×28) cannot share one image stem under strategy hard",
        "set tasks[1].data.channels = 1",
        "sweep.strategy = [\"single-task\"]",
    ];

    // The single-task trials come first in the plan; none of them may train before the refusal.
    ws.write("both.toml", &experiment(&tasks, "[\"single-task\", \"hard\"]"));
    expect_refused(&ws.mtl(&["run", "both.toml", "--no-report"]), &refusal);
    assert!(!ws.path("mtl.db").exists(), "no database may be created");

    // Baselines alone are fine; adding hard sharing afterwards leaves their database as it was.
    ws.write("single.toml", &experiment(&tasks, "[\"single-task\"]"));
    expect_code(&ws.mtl(&["run", "single.toml", "--no-report"]), 0);
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 1);
    let before = database_bytes(&db);
    expect_refused(&ws.mtl(&["run", "both.toml", "--no-report"]), &refusal);
    assert!(database_bytes(&db) == before, "the database must be unchanged");

    // What the message says to set makes the sweep valid.
    ws.write("fixed.toml", &experiment(&tasks.replace("channels = 3", "channels = 1"), "[\"single-task\", \"hard\"]"));
    expect_code(&ws.mtl(&["run", "fixed.toml", "--no-report", "--db", "fixed.db"]), 0);
}

#[test]
fn text_tasks_with_different_vocabulary_caps_are_refused_at_validation() {
    let ws = Workspace::new();
    write_csv(&ws.path("films.csv"), 20, ["great", "film"], ["dull", "plot"]);
    write_csv(&ws.path("phones.csv"), 20, ["battery", "lasts"], ["screen", "cracked"]);
    let tasks =
        format!("{}{}", csv_task("films", "films.csv", ""), csv_task("phones", "phones.csv", ", vocab_size = 50"));
    // Even single-task trials use the shared vocabulary, so the caps must agree for them too.
    ws.write("caps.toml", &experiment(&tasks, "[\"single-task\"]"));
    expect_refused(
        &ws.mtl(&["run", "caps.toml"]),
        &["caps.toml:", "tasks[1].data.vocab_size", "task films has 20000 and task phones has 50", "set the same"],
    );
    assert!(!ws.path("mtl.db").exists(), "no database may be created");
}

#[test]
fn text_tasks_share_one_vocabulary_stored_once_per_run_and_shown() {
    let ws = Workspace::new();
    write_csv(&ws.path("films.csv"), 40, ["great", "film"], ["dull", "plot"]);
    write_csv(&ws.path("phones.csv"), 40, ["battery", "lasts"], ["screen", "cracked"]);
    let tasks = format!("{}{}", csv_task("films", "films.csv", ""), csv_task("phones", "phones.csv", ", max_len = 3"));
    ws.write("text.toml", &experiment(&tasks, "[\"single-task\", \"hard\"]"));
    expect_code(&ws.mtl(&["run", "text.toml", "--no-report"]), 0);
    let db = ws.path("mtl.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 2);
    // One artifact per run, the same content for the baselines and the multi-task run.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM artifacts WHERE name = 'vocabulary'"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM artifacts WHERE name LIKE 'vocabulary/%'"), 0);
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT sha256) FROM artifacts WHERE name = 'vocabulary'"), 1);
    let vocabulary: String = Connection::open(&db)
        .expect("db")
        .query_row(
            "SELECT CAST(b.content AS TEXT) FROM artifacts a JOIN blobs b ON b.sha256 = a.sha256 WHERE a.name = 'vocabulary'",
            [],
            |r| r.get(0),
        )
        .expect("vocabulary");
    let tokens: Vec<&str> = vocabulary.lines().collect();
    // Training-split counts summed over both tasks: "a" and "the" (in every text of both) first, tied, by bytes.
    assert_eq!(&tokens[..4], ["<pad>", "<oov>", "a", "the"], "{tokens:?}");
    for word in ["great", "film", "dull", "plot", "battery", "lasts", "screen", "cracked"] {
        assert!(tokens.contains(&word), "{word:?} in {tokens:?}");
    }

    let hard: i64 = Connection::open(&db)
        .expect("db")
        .query_row("SELECT run_id FROM params WHERE key = 'strategy' AND text = 'hard'", [], |r| r.get(0))
        .expect("hard run");
    let out = ws.mtl(&["show", &hard.to_string()]);
    expect_code(&out, 0);
    let shown = text(&out.stdout);
    let line = format!("vocabulary  shared by films, phones: {} tokens (<pad> and <oov> included)", tokens.len());
    assert!(shown.contains(&line), "expected {line:?} in:\n{shown}");
    let out = ws.mtl(&["show", &hard.to_string(), "--format", "json"]);
    expect_code(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        json["vocabularies"],
        serde_json::json!([{ "artifact": "vocabulary", "tasks": ["films", "phones"], "tokens": tokens.len() }])
    );
}
