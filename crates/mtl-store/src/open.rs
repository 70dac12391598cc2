//! How a database file is opened: what the path must be before SQLite sees it, the wait
//! for other processes' locks, and reading a database on read-only media.
//!
//! SQLite opens a folder, `/dev/null` or a FIFO as happily as a file (and then fails,
//! blocks, or leaves a `-journal` beside it); such paths are refused first, from their
//! metadata alone. A WAL database needs its `-shm` file even to be read, and creates it
//! if missing: where its folder cannot be written (a read-only mount, an archive) the
//! file is opened again as immutable, which needs no `-shm`.
//!
//! For example `Store::open("/dev/null")` answers [`StoreError::NotAFile`] ("/dev/null is a
//! character device, not a database file") and creates nothing.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::{lock, sqlite_err, Result, StoreError};

/// Whether the file may be created.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Created if missing, opened for reading and writing.
    Create,
    /// Must exist; opened with these flags.
    Existing(OpenFlags),
}

/// A connection with its busy handler, and the file's `PRAGMA user_version`.
pub(crate) struct Opened {
    pub conn: Connection,
    pub version: i64,
}

/// Opens `path`, refusing paths that are not database files, and reads its version
/// (the first statement that touches the file: a file that is not a database fails here).
pub(crate) fn connect(path: &Path, mode: Mode) -> Result<Opened> {
    let existed = check_path(path, matches!(mode, Mode::Create))?;
    let flags = match mode {
        Mode::Create => OpenFlags::default(),
        Mode::Existing(flags) => flags | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    };
    let conn = with_busy_handler(Connection::open_with_flags(path, flags).map_err(|e| sqlite_err(path, e))?, path)?;
    match user_version(&conn) {
        Ok(version) => Ok(Opened { conn, version }),
        Err(e) if existed && cannot_open(&e) && read_only_media(path) => {
            let Some(uri) = immutable_uri(path) else { return Err(sqlite_err(path, e)) };
            drop(conn);
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(uri, flags).map_err(|e| sqlite_err(path, e))?;
            let version = user_version(&conn).map_err(|e| sqlite_err(path, e))?;
            Ok(Opened { conn, version })
        }
        Err(e) => Err(sqlite_err(path, e)),
    }
}

/// Refuses a path that is a folder or not a regular file, and, when the file is to be
/// created, one whose folder does not exist; answers whether the file exists.
fn check_path(path: &Path, create: bool) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(meta) => Err(StoreError::NotAFile { path: path.to_owned(), kind: file_kind(meta.file_type()) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Err(StoreError::Missing { path: path.to_owned() });
            }
            let folder = folder_of(path);
            if !folder.is_dir() {
                return Err(StoreError::NoFolder { path: path.to_owned(), folder: folder.to_owned() });
            }
            Ok(false)
        }
        // Permission denied and the like: SQLite's own message says it.
        Err(_) => Ok(true),
    }
}

fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// What a path that is not a regular file is, for messages: "a folder", "a FIFO", …
pub(crate) fn file_kind(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn with_busy_handler(mut conn: Connection, path: &Path) -> Result<Connection> {
    conn.busy_handler(Some(lock::busy_handler(path.to_owned(), lock::busy_timeout())))
        .map_err(|e| sqlite_err(path, e))?;
    Ok(conn)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// "unable to open database file" and its read-only kin: what reading a WAL database
/// whose `-shm` cannot be created gives.
fn cannot_open(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, ErrorCode::CannotOpen | ErrorCode::ReadOnly))
}

/// Whether the folder of `path`, or its `-shm` file where there is one, cannot be written.
fn read_only_media(path: &Path) -> bool {
    let shm = PathBuf::from(format!("{}-shm", path.display()));
    !writable(folder_of(path)) || (shm.exists() && !writable(&shm))
}

#[cfg(unix)]
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: access only reads the NUL-terminated path. Unlike the mode bits it also says
    // no for root on a read-only mount (EROFS).
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(not(unix))]
fn writable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.permissions().readonly())
}

/// The URI that opens `path` read-only as immutable: SQLite takes no locks and needs no
/// `-shm`. It also reads no `-wal`: one that still holds commits is left only by a writer
/// that was killed, and the file then shows the database as of its last checkpoint.
/// None for a path that is not UTF-8, which a URI cannot carry.
fn immutable_uri(path: &Path) -> Option<String> {
    let absolute = std::fs::canonicalize(path).ok()?;
    let escaped = absolute.to_str()?.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
    Some(format!("file:{escaped}?immutable=1"))
}
