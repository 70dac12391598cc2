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

/// TPE over lr and λ (and three weighting methods) for hard sharing, 2 seeds, a budget of
/// 10 trials (5 points), after the 2 single-task baselines.
pub const SEARCH: &str = r#"
name = "searched"
epochs = 2
seeds = [0, 1]
batch_size = 32

[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 600, n_val = 64, n_test = 64 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 600, n_val = 64, n_test = 64 }

[model]
image_stem = "rows"
width = 8
hidden = 8

[sweep]
strategy = ["single-task", "hard"]
weighting = ["static", "equal", "dwa"]
lambda = [1.0]
lr = [0.01]

[search]
sampler = "tpe"
budget = 10
startup = 2
seed = 3

[search.space]
lr = { low = 0.0001, high = 0.1, log = true }
lambda = { low = 0.01, high = 100.0, log = true }
"#;

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

/// Resident memory past which [`run_measured`] kills its child: reading `/dev/zero` or
/// expanding a huge sweep fills this within seconds, long before any deadline.
pub const MEMORY_CEILING_KIB: u64 = 1024 * 1024;

/// Runs `command` to its end, killing it (and failing) after `deadline` or past
/// [`MEMORY_CEILING_KIB`]: guards, not timing checks, so that a regression fails instead
/// of stalling the suite or exhausting the machine. Returns its output and its own peak
/// resident memory in KiB, from wait4 (other tests' children do not count).
pub fn run_measured(mut command: Command, deadline: std::time::Duration) -> (Output, u64) {
    use std::io::Read;
    use std::process::Stdio;
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which clippy does not see
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let reader = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let pid = child.id() as libc::pid_t;
    let started = std::time::Instant::now();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting on our own child, not yet reaped.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break;
        }
        let resident = resident_kib(pid);
        let why = if started.elapsed() > deadline {
            Some(format!("still running after {deadline:?}"))
        } else if resident > MEMORY_CEILING_KIB {
            Some(format!("resident memory {resident} KiB, past the {MEMORY_CEILING_KIB} KiB ceiling"))
        } else {
            None
        };
        if let Some(why) = why {
            // SAFETY: signalling, then reaping, our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            panic!("{command:?}: {why}; killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    use std::os::unix::process::ExitStatusExt;
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    };
    (output, usage.ru_maxrss as u64)
}

/// VmRSS of a running process in KiB (0 once it is gone).
fn resident_kib(pid: libc::pid_t) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:")).unwrap_or("0 kB");
    line.trim().trim_end_matches("kB").trim().parse().unwrap_or(0)
}
