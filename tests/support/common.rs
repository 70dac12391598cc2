//! What the end-to-end test files share: the small experiment, exit-code checks,
//! and reading a results database as a user would.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;

/// A temporary folder to run `mtl` in.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }

    /// `mtl ARGS`, to run in the folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mtl"));
        command.args(args).current_dir(self.dir.path());
        command
    }

    /// Runs `mtl ARGS` in the folder.
    pub fn mtl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mtl")
    }
}

/// Two small built-in tasks, hard sharing over two λ, and the baselines: 6 trials.
pub const SMALL: &str = r#"
name = "small"
epochs = 2
seeds = [0, 1]
batch_size = 32

[[tasks]]
name = "shapes"
kind = "image-classification"
data = { format = "synthetic-shapes", n_train = 96, n_val = 32, n_test = 32 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 64, n_val = 32, n_test = 32 }

[model]
width = 8
hidden = 8

[sweep]
strategy = ["single-task", "hard"]
lambda = [0.5, 2.0]
lr = [0.01]
"#;

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics with both streams unless the exit code is `expected`.
pub fn expect_code(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "expected exit {expected}\n--- stdout\n{}\n--- stderr\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Every metric point, in a fixed order, with values as exact bit patterns.
pub fn metric_bits(db: &Path) -> Vec<(String, String, String, String, i64, u64)> {
    let conn = Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare(
            "SELECT r.trial_key, m.task, m.split, m.metric, m.epoch, m.value FROM metrics m
             JOIN runs r ON r.id = m.run_id ORDER BY 1, 2, 3, 4, 5",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, f64>(5)?.to_bits())))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

pub fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db).expect("open db").query_row(sql, [], |r| r.get(0)).expect("count")
}
