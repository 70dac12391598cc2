//! One file per class, one example per line (rt-polarity's `rt-polarity.pos` / `rt-polarity.neg`).

use super::decode::decode_owned;
use crate::files::{escape_control, read_text};
use crate::{DataError, LabeledTexts, LoadReport, Sourced};
use std::path::{Path, PathBuf};

/// Reads one file per class, in the order given; each non-blank line is one example.
///
/// A class is named by the file's extension when all files share one stem (`rt-polarity.pos` → "pos"),
/// else by the file name without its extension, control characters escaped ([`escape_control`]).
/// An empty file, or two files giving the same class name, is an error; so is a line over
/// [`crate::files::MAX_LINE_BYTES`].
pub fn lines_per_class(files: &[PathBuf]) -> Result<Sourced<LabeledTexts>, DataError> {
    let class_names = class_names(files)?;
    let mut report = LoadReport::default();
    let mut train = LabeledTexts { texts: Vec::new(), labels: Vec::new() };
    for (label, path) in files.iter().enumerate() {
        let decoded = decode_owned(read_text(path)?);
        report.files_read += 1;
        report.decoded_as_windows_1252 += usize::from(decoded.windows_1252);
        report.replacements += decoded.replacements;
        let before = train.texts.len();
        // `lines` drops the "\n" or "\r\n" ending.
        train.texts.extend(decoded.text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned));
        if train.texts.len() == before {
            return Err(DataError::invalid(path, "no non-blank line: a class file needs at least one example"));
        }
        train.labels.resize(train.texts.len(), label as u32);
    }
    Ok(Sourced { class_names, train, val: None, test: None, report })
}

fn class_names(files: &[PathBuf]) -> Result<Vec<String>, DataError> {
    let Some(first) = files.first() else {
        return Err(DataError::invalid(PathBuf::new(), "no class files given"));
    };
    let stem = |path: &Path| path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let extension = |path: &Path| path.extension().map(|s| s.to_string_lossy().into_owned());
    let by_extension = files.iter().all(|path| stem(path) == stem(first) && extension(path).is_some());
    let mut names: Vec<String> = Vec::with_capacity(files.len());
    for path in files {
        let name = if by_extension { extension(path) } else { stem(path) };
        let Some(name) = name.map(|name| escape_control(&name).into_owned()) else {
            return Err(DataError::invalid(path, "not a file name: cannot name a class after it"));
        };
        if let Some(other) = names.iter().position(|n| *n == name) {
            let message = format!("class name '{name}' repeats that of {}", files[other].display());
            return Err(DataError::invalid(path, message));
        }
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Writes `files` (name, bytes) into a temporary folder and reads them with [`lines_per_class`].
    fn read(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Result<Sourced<LabeledTexts>, DataError>) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, content)| {
                let path = dir.path().join(name);
                fs::write(&path, content).unwrap();
                path
            })
            .collect();
        let result = lines_per_class(&paths);
        (dir, result)
    }

    fn check(files: &[(&str, &[u8])], classes: &[&str], texts: &[&str], labels: &[u32], report: (usize, usize)) {
        let (_dir, result) = read(files);
        let sourced = result.unwrap();
        assert_eq!(sourced.class_names, classes);
        assert_eq!(sourced.train.texts, texts);
        assert_eq!(sourced.train.labels, labels);
        assert_eq!((sourced.val, sourced.test), (None, None));
        let LoadReport { files_read, decoded_as_windows_1252, replacements, .. } = sourced.report;
        assert_eq!((files_read, decoded_as_windows_1252, replacements), (files.len(), report.0, report.1));
    }

    fn check_err(files: &[(&str, &[u8])], expected: &str) {
        let (dir, result) = read(files);
        let dir = dir.path().to_string_lossy().into_owned();
        assert_eq!(result.unwrap_err().to_string(), expected.replace("DIR", &dir));
    }

    #[test]
    fn lines_per_class_rt_polarity_style() {
        // rt-polarity: Windows-1252, "\n" endings, a trailing space before each ending.
        check(
            &[
                ("rt-polarity.pos", b"a gorgeous film \x85 truly . \nit\x92s fun . \n"),
                ("rt-polarity.neg", b"dull . \n\n   \nbad \x81 . "),
            ],
            &["pos", "neg"],
            &["a gorgeous film … truly . ", "it’s fun . ", "dull . ", "bad \u{FFFD} . "],
            &[0, 0, 1, 1],
            (2, 1),
        );
        // Different stems: classes are the stems; "\r\n" endings.
        check(
            &[("happy.txt", b"yay\r\n"), ("sad.txt", "oh \u{2026}\r\n\r\nno".as_bytes())],
            &["happy", "sad"],
            &["yay", "oh …", "no"],
            &[0, 1, 1],
            (0, 0),
        );
    }

    #[test]
    fn lines_per_class_errors() {
        check_err(
            &[("rt.pos", b"good\n"), ("rt.neg", b" \n\r\n")],
            "DIR/rt.neg: no non-blank line: a class file needs at least one example",
        );
        check_err(
            &[("rt.pos", b"good\n"), ("rt.neg", b"")],
            "DIR/rt.neg: no non-blank line: a class file needs at least one example",
        );
        check_err(
            &[("a.txt", b"x\n"), ("a.csv", b"y\n"), ("a", b"z\n")],
            "DIR/a.csv: class name 'a' repeats that of DIR/a.txt",
        );
        check_err(&[], ": no class files given");
    }
}
