//! What a run records about how it was made: the experiment file (path and text),
//! the mtl-lab version, the git commit of the file's folder and the host.

use std::path::Path;
use std::process::Command;

use mtl_store::Provenance;

/// The provenance of runs of the experiment file at `path`. Nothing here fails: what
/// cannot be found (no git, not a checkout, an unreadable file) is left out.
pub fn collect(path: &Path) -> Provenance {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Provenance {
        experiment_file: Some(path.display().to_string()),
        experiment_text: std::fs::read_to_string(path).ok(),
        mtl_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        git_commit: git_commit(folder),
        host: host_name(),
        // Set by the command that knows where its trials train (`mtl run`, `mtl worker`).
        device: None,
    }
}

/// `git rev-parse HEAD` in `folder`, with `-dirty` when tracked files have changes.
fn git_commit(folder: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        let output = Command::new("git").arg("-C").arg(folder).args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

/// This machine's host name, as runs record it.
pub fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok())?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_the_file_its_text_the_version_and_the_commit_of_a_checkout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("e.toml");
        std::fs::write(&file, "name = \"e\"\n").expect("write");
        let outside = collect(&file);
        assert_eq!(outside.experiment_text.as_deref(), Some("name = \"e\"\n"));
        assert_eq!(outside.mtl_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(outside.git_commit, None, "not a checkout");

        let git = |args: &[&str]| {
            let status = Command::new("git").arg("-C").arg(dir.path()).args(args).output().expect("git").status;
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "e.toml"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "e"]);
        let commit = collect(&file).git_commit.expect("a commit");
        assert_eq!(commit.len(), 40, "{commit}");
        std::fs::write(&file, "name = \"f\"\n").expect("write");
        assert_eq!(collect(&file).git_commit, Some(format!("{commit}-dirty")));
    }
}
