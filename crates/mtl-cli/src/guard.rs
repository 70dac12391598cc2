//! No command writes over a file it reads: outputs are checked against the inputs
//! before anything is opened, and written whole through a temporary file.
//!
//! A path is compared by where it really lands: symlinks resolved, and by device and
//! inode where both files exist (a hard link is the same file under another name).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::BadInput;

/// The files a command reads, which its outputs must not be.
#[derive(Default)]
pub struct Inputs {
    /// (where the file lands, what it is, e.g. "the database mtl.db").
    files: Vec<(PathBuf, String)>,
}

impl Inputs {
    /// The results database and the files SQLite keeps beside it.
    pub fn database(mut self, db: &Path) -> Inputs {
        let what = format!("the database {}", db.display());
        // SQLite names its journal after the path it was given; where that is a symlink,
        // after the path it points to too (both are covered).
        for base in [db.to_path_buf(), landing(db)] {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut name = base.clone().into_os_string();
                name.push(suffix);
                self.files.push((landing(Path::new(&name)), what.clone()));
            }
        }
        self
    }

    /// Any other file the command reads (the experiment file, a shard).
    pub fn file(mut self, path: &Path, what: &str) -> Inputs {
        self.files.push((landing(path), format!("{what} {}", path.display())));
        self
    }

    /// Refuses `output` (given as `flag`) when it is one of the inputs.
    pub fn check_output(&self, output: &Path, flag: &str) -> Result<(), BadInput> {
        let target = landing(output);
        let identity = file_identity(output);
        for (input, what) in &self.files {
            if *input == target || (identity.is_some() && identity == file_identity(input)) {
                return Err(BadInput(format!(
                    "{flag} {} is {what}, which this command reads; write somewhere else",
                    output.display()
                )));
            }
        }
        Ok(())
    }

    /// Refuses a folder `dir` (given as `flag`) that is a file, or that holds an input
    /// under a name `writes` says the command would write there.
    pub fn check_folder(&self, dir: &Path, flag: &str, writes: impl Fn(&str) -> bool) -> Result<(), BadInput> {
        if dir.exists() && !dir.is_dir() {
            return Err(BadInput(format!("{flag} {} is a file, not a folder", dir.display())));
        }
        let dir = landing(dir);
        for (input, what) in &self.files {
            let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if input.parent() == Some(dir.as_path()) && writes(name) {
                return Err(BadInput(format!(
                    "{flag} {} would overwrite {what}, which this command reads; write somewhere else",
                    dir.display()
                )));
            }
        }
        Ok(())
    }
}

/// Where `path` really lands: symlinks resolved, for a file not yet there through its
/// nearest existing folder.
fn landing(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) if parent != absolute => landing(parent).join(name),
        _ => absolute,
    }
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Whether a folder is one this process could create files in (or create, with its
/// nearest existing parent): checked before training, so that a sweep does not train
/// for hours and then fail to write.
pub fn check_writable_folder(dir: &Path, flag: &str) -> Result<(), BadInput> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        let why = if existing == dir {
            "is a file, not a folder".to_string()
        } else {
            format!("is inside the file {}", existing.display())
        };
        return Err(BadInput(format!("{flag} {} {why}", dir.display())));
    }
    if !writable(existing) {
        return Err(BadInput(format!("{flag} {}: cannot write in {}", dir.display(), existing.display())));
    }
    Ok(())
}

#[cfg(unix)]
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: access() reads a NUL-terminated path and nothing else.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(not(unix))]
fn writable(_dir: &Path) -> bool {
    true
}

/// Writes `path` whole or not at all: into a temporary file beside the file it names
/// (through symbolic links), renamed into place once `write` has succeeded, with the
/// permissions a new file gets (an interrupted write leaves the old file or none). A path
/// that is something else than a file (a FIFO, a terminal, `/dev/stdout`, a process
/// substitution) is written directly: there is nothing to replace.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let context = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        let mut out = std::io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(path).map_err(context)?);
        write(&mut out)?;
        return out.flush().map_err(context);
    }
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new().prefix(".mtl-partial-").tempfile_in(folder).map_err(context)?;
    {
        let mut out = std::io::BufWriter::new(temporary.as_file_mut());
        write(&mut out)?;
        out.flush().map_err(context)?;
    }
    temporary.as_file().set_permissions(new_file_permissions()).map_err(context)?;
    temporary.persist(&target).map_err(|e| context(e.error))?;
    Ok(())
}

/// rw for everyone less the umask, as `File::create` would give (tempfile's are 0600).
#[cfg(unix)]
fn new_file_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: umask() only swaps the process's mask; it is put back at once.
    let mask = unsafe {
        let mask = libc::umask(0o022);
        libc::umask(mask);
        mask
    };
    std::fs::Permissions::from_mode(0o666 & !(mask as u32))
}

#[cfg(not(unix))]
fn new_file_permissions() -> std::fs::Permissions {
    std::fs::metadata(".").map(|m| m.permissions()).expect("the working folder")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_is_refused_when_it_lands_on_an_input() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("mtl.db");
        std::fs::write(&db, "x").expect("db");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).expect("symlink");
        let hard = dir.path().join("hard.db");
        std::fs::hard_link(&db, &hard).expect("hard link");
        let inputs = Inputs::default().database(&db).file(&dir.path().join("x.toml"), "the experiment file");
        let refused = |path: &Path| inputs.check_output(path, "--out").is_err();
        assert!(refused(&db));
        assert!(refused(&link), "through a symlink");
        assert!(refused(&hard), "a hard link");
        assert!(refused(&dir.path().join("mtl.db-wal")), "the WAL, not there yet");
        assert!(refused(&dir.path().join("mtl.db-shm")));
        assert!(refused(&dir.path().join("x.toml")), "the experiment file, not there yet");
        assert!(!refused(&dir.path().join("out.csv")));
        let message = inputs.check_output(&link, "--out").unwrap_err().0;
        assert!(message.contains("is the database"), "{message}");
    }

    #[test]
    fn a_folder_output_is_refused_when_it_would_write_an_input() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("index.html");
        std::fs::write(&db, "x").expect("db");
        let inputs = Inputs::default().database(&db);
        assert!(inputs.check_folder(dir.path(), "--out", |name| name == "index.html").is_err());
        assert!(inputs.check_folder(dir.path(), "--out", |name| name.ends_with(".png")).is_ok());
        assert!(inputs.check_folder(&db, "--out", |_| false).is_err(), "a file is no folder");
    }

    #[test]
    fn an_atomic_write_leaves_nothing_when_it_fails() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").expect("old");
        let failed = write_atomically(&path, |out: &mut dyn Write| {
            out.write_all(b"half")?;
            Err(anyhow::anyhow!("interrupted"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1, "no temporary file left");
        write_atomically(&path, |out| Ok(out.write_all(b"new")?)).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("mode").permissions().mode() & 0o777;
        assert_eq!(mode & 0o644, 0o644, "{mode:o}: as a new file, not tempfile's 0600");
        // Through a symbolic link, the file it names is replaced and the link stays.
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        write_atomically(&link, |out| Ok(out.write_all(b"linked")?)).expect("write");
        assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "linked");
    }
}
