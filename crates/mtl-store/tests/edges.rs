//! The edges of opening and querying a database (issue 15): paths that are not database
//! files, PRAGMAs that only read, and rows streamed under a limit.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use mtl_store::{SqlValue, Store, StoreError};

/// Each way of opening `path` (`open`, `open_existing`, `open_read_only`): the error's
/// message, or "opened". In a thread with a generous deadline: a FIFO once blocked.
fn open_each_way(path: &Path) -> [String; 3] {
    let (sender, receiver) = mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let message = |opened: Result<Store, StoreError>| opened.map_or_else(|e| e.to_string(), |_| "opened".into());
        let _ = sender.send([
            message(Store::open(&path)),
            message(Store::open_existing(&path)),
            message(Store::open_read_only(&path)),
        ]);
    });
    receiver.recv_timeout(Duration::from_secs(120)).expect("opening did not return within 120 s")
}

#[test]
fn paths_that_are_not_database_files_are_refused_by_name_and_nothing_is_left() {
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("fifo");
    let c_fifo = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    // SAFETY: mkfifo reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    let in_missing_folder = dir.path().join("missing/mtl.db");
    let folder = dir.path().to_owned();
    let cases: [(PathBuf, [&str; 3]); 4] = [
        (folder.clone(), ["is a folder, not a database file"; 3]),
        (PathBuf::from("/dev/null"), ["/dev/null is a character device, not a database file"; 3]),
        (fifo.clone(), ["is a FIFO, not a database file"; 3]),
        (
            in_missing_folder.clone(),
            ["/missing is not an existing folder", "no results database at", "no results database at"],
        ),
    ];
    for (path, expected) in cases {
        let got = open_each_way(&path);
        for (got, expected) in got.iter().zip(expected) {
            assert!(got.contains(expected), "{}: expected {expected:?}, got {got:?}", path.display());
            assert!(got.contains(&path.display().to_string()), "{got:?} names the path");
        }
    }
    let left: Vec<PathBuf> = std::fs::read_dir(&folder).expect("list").map(|e| e.expect("entry").path()).collect();
    assert_eq!(left, [fifo], "nothing created beside the FIFO");
    assert!(!Path::new("/dev/null-journal").exists(), "a journal beside /dev/null");
}

/// A database of the current schema with one experiment.
fn database(dir: &Path) -> PathBuf {
    let path = dir.join("q.db");
    Store::open(&path).expect("open").experiment("e").expect("experiment");
    path
}

/// Runs `sql` through `query_each` with `limit`: the rows seen and the summary's (rows, more).
fn stream(store: &Store, sql: &str, limit: Option<u64>) -> (u64, (u64, bool)) {
    let mut seen = 0;
    let summary = store
        .query_each(sql, limit, |_, _| {
            seen += 1;
            Ok::<(), StoreError>(())
        })
        .expect(sql);
    (seen, (summary.rows, summary.more))
}

#[test]
fn rows_are_streamed_one_at_a_time_up_to_the_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open_read_only(&database(dir.path())).expect("open");
    let count =
        |n: u64| format!("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {n}) SELECT x FROM c");
    let cases = [
        (count(1_000_000), None, (1_000_000, (1_000_000, false))),
        (count(10), Some(3), (3, (3, true))),
        (count(10), Some(10), (10, (10, false))),
        (count(10), Some(0), (0, (0, true))),
        (count(0), Some(5), (0, (0, false))),
    ];
    for (sql, limit, expected) in cases {
        assert_eq!(stream(&store, &sql, limit), expected, "{sql} --limit {limit:?}");
    }
    // An error of the caller's (a closed output) stops the query there.
    let mut seen = 0;
    let stopped = store.query_each(&count(100), None, |columns, row| {
        assert_eq!((columns, row), (&["x".to_string()][..], &[SqlValue::Integer(seen + 1)][..]));
        seen += 1;
        if seen == 3 {
            return Err(StoreError::BadQuery { path: "out".into(), message: "closed".into() });
        }
        Ok(())
    });
    assert!(matches!(stopped, Err(StoreError::BadQuery { .. })) && seen == 3, "{stopped:?} after {seen}");
}

#[test]
fn pragmas_that_only_read_are_answered_and_those_that_write_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = database(dir.path());
    let store = Store::open_read_only(&path).expect("open");
    let first = |sql: &str| store.query(sql).map(|r| r.rows.first().map(|row| row[0].clone()));
    let text = |s: &str| Some(SqlValue::Text(s.into()));
    assert_eq!(first("PRAGMA journal_mode").expect("journal_mode"), text("wal"));
    assert_eq!(first("pragma main.journal_mode;").expect("journal_mode"), text("wal"));
    assert_eq!(first("PRAGMA user_version").expect("user_version"), Some(SqlValue::Integer(mtl_store::SCHEMA_VERSION)));
    assert_eq!(first("PRAGMA table_info(experiments)").expect("table_info"), Some(SqlValue::Integer(0)));
    for statement in ["PRAGMA journal_mode = DELETE", "PRAGMA journal_mode(DELETE)", "PRAGMA wal_checkpoint"] {
        assert!(matches!(first(statement), Err(StoreError::WriteRefused { .. })), "{statement}");
    }
    assert_eq!(first("PRAGMA journal_mode").expect("journal_mode"), text("wal"), "unchanged");
    let blob = store.query("SELECT x'00ff10', 3").expect("blob").rows;
    assert_eq!(blob, [vec![SqlValue::Blob(3), SqlValue::Integer(3)]]);
}
