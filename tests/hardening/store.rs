//! The database's edges: `mtl sql` streaming a huge result in bounded memory, `--limit`,
//! blobs and PRAGMAs; a database on a read-only mount; a writer held up by a stopped
//! process; paths that are not database files.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::common::*;

/// A database of the current schema without runs: `mtl sql` upgrades an empty file.
fn empty_database() -> Workspace {
    let ws = Workspace::new();
    ws.write("mtl.db", "");
    expect_code(&ws.mtl(&["sql", "SELECT 1"]), 0);
    ws
}

/// `WITH RECURSIVE` counting 1 to `n`, one column `x`.
fn counting(n: u64) -> String {
    format!("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {n}) SELECT x FROM c")
}

#[test]
fn sql_streams_ten_million_rows_in_bounded_memory() {
    let ws = empty_database();
    let (small, small_kib) =
        run_measured(ws.command(&["sql", &counting(1), "--format", "csv"]), Duration::from_secs(120));
    expect_code(&small, 0);
    let n = 10_000_000;
    let (big, big_kib) = run_measured(ws.command(&["sql", &counting(n), "--format", "csv"]), Duration::from_secs(900));
    expect_code(&big, 0);
    let lines = big.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(lines as u64, n + 1, "the header and every row");
    assert!(big.stdout.ends_with(format!("\n{n}\n").as_bytes()));
    // Buffered, the rows took over a gigabyte (issue 15: 5.4 GB for 10^9 in 40 s).
    assert!(big_kib < small_kib + 64 * 1024, "peak {big_kib} KiB for {n} rows, {small_kib} KiB for one");
}

#[test]
fn sql_limit_gives_exactly_n_rows_in_every_format() {
    let ws = empty_database();
    let query = counting(5000);
    for (format, limit, expected_lines) in
        [("csv", "7", 1 + 7), ("table", "7", 2 + 7), ("table", "1500", 2 + 1500), ("csv", "0", 1)]
    {
        let out = ws.mtl(&["sql", &query, "--format", format, "--limit", limit]);
        expect_code(&out, 0);
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), expected_lines, "--format {format} --limit {limit}:\n{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("showed the first {limit} rows (--limit)")),
            "{}",
            text(&out.stderr)
        );
    }
    let out = ws.mtl(&["sql", &query, "--format", "json", "--limit", "3"]);
    expect_code(&out, 0);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(rows, serde_json::json!([{"x": 1}, {"x": 2}, {"x": 3}]));
    // Fewer rows than the limit: all of them, and no note.
    let out = ws.mtl(&["sql", &counting(4), "--format", "csv", "--limit", "10"]);
    assert_eq!((text(&out.stdout).as_str(), text(&out.stderr).as_str()), ("x\n1\n2\n3\n4\n", ""));
}

#[test]
fn sql_tables_past_the_first_page_and_json_of_many_rows_stay_whole() {
    let ws = empty_database();
    let out = ws.mtl(&["sql", &counting(2500), "--format", "table"]);
    expect_code(&out, 0);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2 + 2500);
    // Widths come from the first 1,000 rows: x is 4 wide there, so 2500 fits exactly.
    assert_eq!((lines[0], lines[1], lines[2], lines[2501]), ("   x", "----", "   1", "2500"));
    let out = ws.mtl(&["sql", &counting(2500), "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(2500));
    assert_eq!(rows[2499], serde_json::json!({"x": 2500}));
}

#[test]
fn sql_shows_blobs_apart_from_integers_and_answers_reading_pragmas() {
    let ws = empty_database();
    let query = "SELECT x'000102030405060708090a0b' AS blob, 12 AS number";
    let json = ws.mtl(&["sql", query, "--format", "json"]);
    expect_code(&json, 0);
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(rows, serde_json::json!([{"blob": {"blob_bytes": 12}, "number": 12}]));
    let csv = ws.mtl(&["sql", query, "--format", "csv"]);
    assert_eq!(text(&csv.stdout), "blob,number\n<blob 12 bytes>,12\n");
    let help = ws.mtl(&["sql", "--help"]);
    assert!(text(&help.stdout).contains("{\"blob_bytes\": N}"), "{}", text(&help.stdout));

    let version = format!("user_version\n{}\n", mtl_store::SCHEMA_VERSION);
    let cases: [(&str, i32, &str); 4] = [
        ("PRAGMA journal_mode", 0, "journal_mode\nwal\n"),
        ("PRAGMA user_version", 0, &version),
        ("PRAGMA journal_mode = DELETE", 2, ""),
        ("PRAGMA user_version = 3", 2, ""),
    ];
    for (pragma, code, stdout) in cases {
        let out = ws.mtl(&["sql", pragma, "--format", "csv"]);
        expect_code(&out, code);
        assert_eq!(text(&out.stdout), stdout, "{pragma}");
        if code == 2 {
            assert!(text(&out.stderr).contains("this statement would change it"), "{}", text(&out.stderr));
        }
    }
    assert_eq!(text(&ws.mtl(&["sql", "PRAGMA journal_mode", "--format", "csv"]).stdout), "journal_mode\nwal\n");
}

#[test]
fn database_paths_that_are_not_files_exit_2_naming_them_and_leave_nothing() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    std::fs::create_dir(ws.path("folder")).expect("folder");
    // Whether a journal is beside /dev/null already (another program's, or an older mtl's).
    let journal_before = std::fs::metadata("/dev/null-journal").and_then(|m| m.modified()).ok();
    let cases: [(&[&str], &str); 6] = [
        (&["ls", "--db", "folder"], "folder is a folder, not a database file"),
        (&["sql", "SELECT 1", "--db", "folder"], "folder is a folder, not a database file"),
        (&["show", "1", "--db", "folder"], "folder is a folder, not a database file"),
        (&["ls", "--db", "/dev/null"], "/dev/null is a character device, not a database file"),
        (&["sql", "SELECT 1", "--db", "/dev/null"], "/dev/null is a character device, not a database file"),
        (&["export", "--db", "/dev/null", "--format", "csv"], "/dev/null is a character device"),
    ];
    for (args, message) in cases {
        let out = ws.mtl(args);
        expect_code(&out, 2);
        assert!(text(&out.stderr).contains(message), "mtl {}: {}", args.join(" "), text(&out.stderr));
    }
    // A database to create in a folder that does not exist: refused before training.
    let out = ws.mtl(&["run", "small.toml", "--no-report", "--db", "missing/mtl.db"]);
    expect_code(&out, 2);
    assert!(text(&out.stderr).contains("missing"), "{}", text(&out.stderr));
    let mut left: Vec<String> = std::fs::read_dir(ws.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["folder", "small.toml"]);
    assert_eq!(std::fs::read_dir(ws.path("folder")).expect("list").count(), 0);
    let journal = || std::fs::metadata("/dev/null-journal").and_then(|m| m.modified()).ok();
    assert_eq!(journal(), journal_before, "a journal beside /dev/null");
}

/// `command`, run in a mount namespace of its own where `dir` is bind-mounted read-only
/// onto itself. None where this process may not make mount namespaces (not root).
fn read_only_mount(mut command: Command, dir: &Path) -> Option<Output> {
    let c_dir = std::ffi::CString::new(dir.to_str().expect("utf-8 path")).expect("path");
    let root = c"/";
    // SAFETY: between fork and exec the closure makes only system calls, on C strings made before the fork.
    unsafe {
        command.pre_exec(move || {
            let fail = |ok: bool| if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) };
            fail(libc::unshare(libc::CLONE_NEWNS) == 0)?;
            // Mounts made here must not reach the test's own namespace.
            let private = libc::MS_REC | libc::MS_PRIVATE;
            fail(libc::mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), private, std::ptr::null()) == 0)?;
            let (dir, null) = (c_dir.as_ptr(), std::ptr::null());
            fail(libc::mount(dir, dir, null, libc::MS_BIND, std::ptr::null()) == 0)?;
            let read_only = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
            fail(libc::mount(null, dir, null, read_only, std::ptr::null()) == 0)?;
            // The working folder was entered before the mount: enter the read-only one.
            fail(libc::chdir(dir) == 0)
        });
    }
    match command.output() {
        Ok(output) => Some(output),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => None,
        Err(e) => panic!("spawn in a read-only mount: {e}"),
    }
}

#[test]
fn a_database_on_a_read_only_mount_can_still_be_read() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    // A WAL database whose last writer ended cleanly: no -wal, no -shm beside it.
    assert!(!ws.path("mtl.db-shm").exists());
    let dir = ws.dir.path().canonicalize().expect("dir");
    let cases: [(&[&str], &str); 4] = [
        (&["ls", "--format", "csv"], "hard"),
        (&["sql", "SELECT COUNT(*) AS n FROM runs WHERE status = 'done'", "--format", "csv"], "n\n6\n"),
        (&["show", "1"], "shapes"),
        (&["compare", "--group-by", "strategy"], "single-task"),
    ];
    for (args, expected) in cases {
        let Some(out) = read_only_mount(ws.command(args), &dir) else {
            eprintln!("skipped: this process may not make a read-only mount (needs root or CAP_SYS_ADMIN)");
            return;
        };
        expect_code(&out, 0);
        assert!(text(&out.stdout).contains(expected), "mtl {}: {}", args.join(" "), text(&out.stdout));
    }
    // The mount really was read-only: a writer fails there, and the folder is as it was.
    let Some(out) = read_only_mount(ws.command(&["run", "small.toml", "--no-report"]), &dir) else { return };
    assert_ne!(out.status.code(), Some(0), "a sweep wrote on a read-only mount");
    assert!(!ws.path("mtl.db-shm").exists());
}

/// Reads `child`'s stderr until a line contains `needle`.
fn wait_for_line(stderr: &mut impl BufRead, needle: &str) {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).expect("read stderr") > 0, "mtl ended before {needle:?}:\n{seen}");
        if line.contains(needle) {
            return;
        }
        seen += &line;
    }
}

/// SIGKILL and reap (a stopped process dies of SIGKILL too).
fn kill_9(child: &mut Child) {
    // SAFETY: signalling our own child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
}

#[test]
fn a_writer_held_up_by_a_stopped_process_says_which_and_what_to_do() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    // The first writer stops inside an epoch's write transaction, holding the lock.
    let mut holder = ws
        .command(&["run", "small.toml", "--no-report"])
        .env("MTL_TEST_PAUSE_AT", "epoch-write")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(holder.stderr.take().expect("stderr"));
    wait_for_line(&mut stderr, "mtl test hook: paused at epoch-write");
    let pid = holder.id();
    // SAFETY: signalling our own child, not yet reaped.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };

    let mut second = ws.command(&["run", "small.toml", "--no-report"]);
    second.env("MTL_BUSY_TIMEOUT_MS", "5000");
    let (out, _) = run_measured(second, Duration::from_secs(300));
    kill_9(&mut holder);
    expect_code(&out, 1);
    let stderr = text(&out.stderr);
    let expected = [
        format!("waiting for the lock on mtl.db, held by process {pid} (mtl run small.toml --no-report)"),
        format!("mtl.db is locked by process {pid} (mtl run small.toml --no-report), which is stopped (SIGSTOP or Ctrl-Z); resume it with `kill -CONT {pid}`"),
    ];
    for fragment in expected {
        assert!(stderr.contains(&fragment), "no {fragment:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("database is locked"), "{stderr}");
}
