//! Waiting for another process's write lock, and naming that process when the wait ends.
//!
//! SQLite says only "database is locked". Its unix VFS takes POSIX record locks, which the
//! kernel lists in `/proc/locks` with the holder's pid, so the store can say who holds
//! the lock: in WAL mode the writer's lock is byte 120 of the `-shm` file
//! (`UNIX_SHM_BASE` = (22 + 8) × 4, then `WAL_WRITE_LOCK` = 0), the checkpointer's 121 and
//! recovery's 122; in rollback-journal mode the PENDING and RESERVED bytes at 0x40000000
//! of the database file, and the SHARED range after them for an EXCLUSIVE lock.
//! `/proc/locks` is read rather than asking with `fcntl(F_GETLK)`: that needs a
//! descriptor of the file, and closing it would drop every POSIX lock this process's own
//! connections hold on the file.
//!
//! ```no_run
//! # use std::path::Path;
//! if let Some(holder) = mtl_store::LockHolder::of(Path::new("mtl.db")) {
//!     eprintln!("held by process {}", holder.pid);
//! }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a connection waits for a lock before it gives up; `MTL_BUSY_TIMEOUT_MS`
/// shortens it for tests.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a wait lasts before the store says whom it waits for.
const NOTE_AFTER: Duration = Duration::from_secs(2);

/// SQLite's own busy-timeout schedule (sqliteDefaultBusyCallback), in milliseconds.
const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// The `-shm` bytes of WAL mode's write, checkpoint and recovery locks.
const SHM_LOCK_BYTES: [u64; 3] = [120, 121, 122];

/// Rollback-journal mode: the PENDING byte, then RESERVED, then the 510 SHARED bytes.
const PENDING_BYTE: u64 = 0x4000_0000;
const SHARED_LAST: u64 = PENDING_BYTE + 2 + 510 - 1;

/// The process that holds a database's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// Its pid on this machine.
    pub pid: u32,
    /// Its command line (program name and arguments), if readable.
    pub command: Option<String>,
    /// Whether it is stopped (SIGSTOP, Ctrl-Z): then it holds the lock until resumed.
    pub stopped: bool,
}

impl LockHolder {
    /// The process of this machine that holds the write lock of the database `db`, if the
    /// kernel's lock table shows one (none: no lock held now, or a holder on another machine).
    pub fn of(db: &Path) -> Option<LockHolder> {
        let table = std::fs::read_to_string("/proc/locks").ok()?;
        let shm = PathBuf::from(format!("{}-shm", db.display()));
        let candidates = SHM_LOCK_BYTES
            .iter()
            .map(|&byte| (shm.as_path(), byte, byte))
            .chain([(db, PENDING_BYTE, PENDING_BYTE + 1), (db, PENDING_BYTE + 2, SHARED_LAST)]);
        for (file, first, last) in candidates {
            let Some(inode) = inode(file) else { continue };
            if let Some(pid) = write_lock_holder(&table, inode, first, last) {
                return Some(LockHolder::describe(pid));
            }
        }
        None
    }

    /// What /proc says of process `pid`.
    fn describe(pid: u32) -> LockHolder {
        let command = std::fs::read(format!("/proc/{pid}/cmdline")).ok().and_then(|raw| {
            let mut words = raw.split(|&b| b == 0).filter(|w| !w.is_empty()).map(String::from_utf8_lossy);
            // The program's file name, not its whole path: `mtl run x.toml`.
            let program = words.next()?;
            let program = program.rsplit('/').next().unwrap_or(&program).to_string();
            let line: Vec<String> = std::iter::once(program).chain(words.map(|w| w.into_owned())).collect();
            let line = line.join(" ");
            Some(if line.chars().count() > 120 { line.chars().take(117).collect::<String>() + "…" } else { line })
        });
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()));
        LockHolder { pid, command, stopped: matches!(state, Some('T' | 't')) }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pid == std::process::id() {
            return f.write_str("another connection of this process");
        }
        write!(f, "process {}", self.pid)?;
        if let Some(command) = &self.command {
            write!(f, " ({command})")?;
        }
        if self.stopped {
            f.write_str(", which is stopped (SIGSTOP or Ctrl-Z)")?;
        }
        Ok(())
    }
}

/// The message of [`crate::StoreError::Locked`]: who holds the lock and what to do.
pub(crate) fn describe_locked(path: &Path, holder: Option<&LockHolder>, waited: Duration) -> String {
    let path = path.display();
    let waited = waited.as_secs_f64();
    match holder {
        Some(h) if h.stopped => format!(
            "{path} is locked by {h}; resume it with `kill -CONT {pid}` or end it (`kill {pid}`), then run again",
            pid = h.pid
        ),
        Some(h) => format!(
            "{path} is locked by {h}, which held it longer than this process waits ({waited} s); \
             let it finish or end it (`kill {pid}`), then run again",
            pid = h.pid
        ),
        None => format!(
            "{path} stayed locked by another process longer than this process waits ({waited} s); \
             the lock table of this machine shows no holder now (one on another machine, or it has \
             just let go): run again"
        ),
    }
}

/// How long connections wait for a lock: 30 s, or `MTL_BUSY_TIMEOUT_MS` (for tests).
pub(crate) fn busy_timeout() -> Duration {
    std::env::var("MTL_BUSY_TIMEOUT_MS")
        .ok()
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(DEFAULT_BUSY_TIMEOUT, Duration::from_millis)
}

/// A busy handler for a connection to `db`: retries on SQLite's schedule for up to
/// `timeout`, and once a wait has lasted [`NOTE_AFTER`] says on stderr whom it waits for.
/// After `timeout` SQLite returns SQLITE_BUSY, which becomes [`crate::StoreError::Locked`].
pub(crate) fn busy_handler(db: PathBuf, timeout: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut started = Instant::now();
    let mut noted = false;
    move |count| {
        // SQLite counts the calls of one wait from 0.
        if count == 0 {
            started = Instant::now();
            noted = false;
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return false;
        }
        if waited >= NOTE_AFTER && !noted {
            noted = true;
            let holder = LockHolder::of(&db).map_or_else(|| "another process".to_string(), |h| h.to_string());
            // The store is where the wait happens; the line goes straight to stderr and a
            // failed write is ignored (it only delays an error that says the same).
            let _ = writeln!(
                std::io::stderr().lock(),
                "waiting for the lock on {}, held by {holder}; giving up after {} s",
                db.display(),
                timeout.as_secs_f64()
            );
        }
        let delay = Duration::from_millis(DELAYS_MS[usize::try_from(count).unwrap_or(0).min(DELAYS_MS.len() - 1)]);
        std::thread::sleep(delay.min(timeout - waited));
        true
    }
}

#[cfg(unix)]
fn inode(file: &Path) -> Option<u64> {
    Some(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(file).ok()?))
}

/// Elsewhere there is no lock table to read.
#[cfg(not(unix))]
fn inode(_file: &Path) -> Option<u64> {
    None
}

/// The pid of a POSIX write lock on `inode` that covers any byte of `first..=last`, as
/// listed in the kernel's lock table, e.g. `1: POSIX  ADVISORY  WRITE 1234 fe:00:5308760 120 120`.
/// The device is not compared: on overlay file systems `stat` and the table give different ones.
fn write_lock_holder(table: &str, inode: u64, first: u64, last: u64) -> Option<u32> {
    table.lines().find_map(|line| {
        // A lock that others wait on follows `->` with their request: skip those lines.
        let fields: Vec<&str> = line.split_whitespace().skip(1).collect();
        let [kind, _advisory, access, pid, file, start, end] = fields[..] else { return None };
        let locked_inode: u64 = file.rsplit(':').next()?.parse().ok()?;
        let start: u64 = start.parse().ok()?;
        let end = if end == "EOF" { u64::MAX } else { end.parse().ok()? };
        let covers = start <= last && first <= end;
        (kind == "POSIX" && access == "WRITE" && locked_inode == inode && covers).then(|| pid.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_locks_are_found_by_inode_and_byte() {
        let table = "1: POSIX  ADVISORY  WRITE 17013 fe:00:10010775 120 120\n\
                     2: POSIX  ADVISORY  READ 4242 fe:00:10010775 124 124\n\
                     3: -> POSIX  ADVISORY  WRITE 999 fe:00:10010775 120 120\n\
                     4: FLOCK  ADVISORY  WRITE 8978 fe:00:10010773 0 EOF\n\
                     5: POSIX  ADVISORY  WRITE 31 08:01:10010773 1073741825 1073741825\n";
        let check = |inode, first, last| write_lock_holder(table, inode, first, last);
        assert_eq!(check(10010775, 120, 120), Some(17013));
        assert_eq!(check(10010775, 124, 124), None, "a read lock");
        assert_eq!(check(10010775, 121, 121), None);
        assert_eq!(check(10010773, PENDING_BYTE, PENDING_BYTE + 1), Some(31), "RESERVED, not the flock");
        assert_eq!(check(1, 120, 120), None);
    }

    #[test]
    fn the_message_says_who_holds_the_lock_and_what_to_do() {
        let stopped = LockHolder { pid: 1234, command: Some("mtl run x.toml".into()), stopped: true };
        let message = describe_locked(Path::new("mtl.db"), Some(&stopped), Duration::from_secs(30));
        assert_eq!(
            message,
            "mtl.db is locked by process 1234 (mtl run x.toml), which is stopped (SIGSTOP or Ctrl-Z); \
             resume it with `kill -CONT 1234` or end it (`kill 1234`), then run again"
        );
        let busy = LockHolder { stopped: false, ..stopped };
        let message = describe_locked(Path::new("mtl.db"), Some(&busy), Duration::from_secs(30));
        assert!(message.contains("(mtl run x.toml), which held it longer than this process waits (30 s)"), "{message}");
        let message = describe_locked(Path::new("mtl.db"), None, Duration::from_millis(1500));
        assert!(message.starts_with("mtl.db stayed locked by another process longer than this process waits (1.5 s)"));
    }
}
