//! Text formats: aclImdb folders, line-per-class files, label-prefixed lines, CSV/TSV and JSONL; decoding, tokenising and vocabularies.
//!
//! Readers give decoded texts ([`crate::LabeledTexts`]); [`tokenize`] and [`Vocabulary`] turn them into token ids.
//! Every file goes through [`decode`], so Windows-1252 files (rt-polarity, old CSVs) read as well as UTF-8 ones.
//!
//! ```
//! use mtl_data::formats::text::{tokenize, Vocabulary};
//! let docs = [tokenize("A great film!<br />Great cast."), tokenize("A dull film.")];
//! let vocabulary = Vocabulary::build(docs.iter().map(|d| d.as_slice()), 100, 2);
//! assert_eq!(vocabulary.encode(&tokenize("great fun"), 4)[1], Vocabulary::OOV);
//! ```

mod aclimdb;
pub(crate) mod decode;
pub(crate) mod delimited;
mod jsonl;
mod lines;
mod prefixed;
mod tokenize;
mod vocabulary;

pub use aclimdb::aclimdb;
pub use decode::{decode, Decoded};
pub use delimited::{delimited, delimited_splits, parse_delimiter, Column, DelimitedOptions};
pub use jsonl::{jsonl, jsonl_splits, JsonlOptions};
pub use lines::lines_per_class;
pub use prefixed::{prefixed_lines, PrefixedOptions};
pub use tokenize::{tokenize, tokenize_all};
pub use vocabulary::Vocabulary;

use crate::{DataError, LabeledTexts, LoadReport, Sourced};
use std::path::{Path, PathBuf};

/// How the labels of a CSV, TSV or JSONL file become classes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabelClasses {
    /// Each distinct label is a class: integers sorted by value ("2" before "10"), other
    /// names alphabetically. Labels 1–4 are four classes, with no empty class 0.
    #[default]
    Names,
    /// The integers `lo..=hi`, each a class whether it occurs or not (a subsample that
    /// lacks a class keeps it); a label outside the range, or not an integer, is an error.
    Range(i64, i64),
}

/// At most this many classes: more is a wrong column (an id, a free-text field).
pub const MAX_CLASSES: usize = 100_000;

/// A data set kept as one file per split: train, and val and test where given (the
/// splits not given are carved from train).
#[derive(Clone, Debug, PartialEq)]
pub struct SplitFiles {
    /// The training examples (all examples when no other file is given).
    pub train: PathBuf,
    /// The validation examples.
    pub val: Option<PathBuf>,
    /// The test examples.
    pub test: Option<PathBuf>,
}

impl SplitFiles {
    /// One file, every split carved from it.
    pub fn one(path: &Path) -> SplitFiles {
        SplitFiles { train: path.to_owned(), val: None, test: None }
    }
}

/// The rows of one CSV, TSV or JSONL file: texts and raw labels `(label, line)`.
struct Rows {
    texts: Vec<String>,
    labels: Vec<(String, u64)>,
    windows_1252: bool,
    replacements: usize,
}

/// Reads each file of `files` with `read`; the classes are those of all files together,
/// as `classes` says (a class only val or test has is still a class).
fn read_splits(
    files: &SplitFiles,
    classes: LabelClasses,
    read: impl Fn(&Path) -> Result<Rows, DataError>,
) -> Result<Sourced<LabeledTexts>, DataError> {
    let train = read(&files.train)?;
    let val = files.val.as_deref().map(&read).transpose()?;
    let test = files.test.as_deref().map(&read).transpose()?;
    let given = [
        (Some(files.train.as_path()), Some(&train)),
        (files.val.as_deref(), val.as_ref()),
        (files.test.as_deref(), test.as_ref()),
    ];
    let labelled: Vec<(&Path, &[(String, u64)])> =
        given.iter().filter_map(|&(path, rows)| Some((path?, rows?.labels.as_slice()))).collect();
    let (class_names, labels) = classes_of(&labelled, classes)?;
    let mut report = LoadReport::default();
    let mut labels = labels.into_iter();
    let mut split = |rows: Rows| {
        report.files_read += 1;
        report.decoded_as_windows_1252 += usize::from(rows.windows_1252);
        report.replacements += rows.replacements;
        LabeledTexts { texts: rows.texts, labels: labels.next().unwrap_or_default() }
    };
    let (train, val, test) = (split(train), val.map(&mut split), test.map(&mut split));
    Ok(Sourced { class_names, train, val, test, report })
}

/// Class names and each file's label indices, from the raw labels `(text, line)` of
/// `files` together, as `classes` says; names have their control characters escaped
/// ([`crate::files::escape_control`]). Errors name the file and line.
pub(crate) fn classes_of(
    files: &[(&Path, &[(String, u64)])],
    classes: LabelClasses,
) -> Result<(Vec<String>, Vec<Vec<u32>>), DataError> {
    let invalid = |path: &Path, line: u64, message: String| DataError::invalid(path, format!("line {line}: {message}"));
    if let LabelClasses::Range(lo, hi) = classes {
        if hi < lo || hi.abs_diff(lo) >= MAX_CLASSES as u64 {
            let first = files.first().map_or(Path::new(""), |(path, _)| *path);
            let message = format!("label_range [{lo}, {hi}] must run upwards over at most {MAX_CLASSES} classes");
            return Err(DataError::invalid(first, message));
        }
        let labels = files
            .iter()
            .map(|(path, raw)| {
                raw.iter()
                    .map(|(label, line)| match label.parse::<i64>() {
                        Ok(v) if (lo..=hi).contains(&v) => Ok(v.abs_diff(lo) as u32),
                        _ => Err(invalid(
                            path,
                            *line,
                            format!("label {label:?} is not an integer in the label_range [{lo}, {hi}]"),
                        )),
                    })
                    .collect::<Result<Vec<u32>, _>>()
            })
            .collect::<Result<_, _>>()?;
        return Ok(((lo..=hi).map(|c| c.to_string()).collect(), labels));
    }
    for (path, raw) in files {
        if let Some((_, line)) = raw.iter().find(|(label, _)| label.is_empty()) {
            return Err(invalid(path, *line, "empty label".to_owned()));
        }
    }
    let mut class_names: Vec<&str> = files.iter().flat_map(|(_, raw)| raw.iter().map(|(l, _)| l.as_str())).collect();
    class_names.sort_unstable();
    class_names.dedup();
    let first = files.first().map_or(Path::new(""), |(path, _)| *path);
    if class_names.len() > MAX_CLASSES {
        let rows: usize = files.iter().map(|(_, raw)| raw.len()).sum();
        let message = format!(
            "{} distinct labels in {rows} rows (at most {MAX_CLASSES} classes): is the label column an id or a text?",
            class_names.len()
        );
        return Err(DataError::invalid(first, message));
    }
    if class_names.iter().all(|name| name.parse::<i64>().is_ok()) {
        // By value, written as the file wrote them ("07" stays "07").
        class_names.sort_by_key(|name| name.parse::<i64>().unwrap_or(0));
    }
    let index: std::collections::HashMap<&str, u32> =
        class_names.iter().enumerate().map(|(i, name)| (*name, i as u32)).collect();
    let labels = files.iter().map(|(_, raw)| raw.iter().map(|(label, _)| index[label.as_str()]).collect()).collect();
    let class_names = class_names.into_iter().map(str::to_owned).collect();
    Ok((crate::files::escaped_class_names(first, class_names)?, labels))
}

/// [`classes_of`] for a single file.
#[cfg(test)]
fn classes_from_labels(
    path: &Path,
    raw: &[(String, u64)],
    classes: LabelClasses,
) -> Result<(Vec<String>, Vec<u32>), DataError> {
    let (names, mut labels) = classes_of(&[(path, raw)], classes)?;
    Ok((names, labels.remove(0)))
}

/// `f` over `items`, split into contiguous chunks over a few threads; the output order is the input order
/// whatever the thread count.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    // Below this, starting threads costs more than it saves.
    const MIN_CHUNK: usize = 256;
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8).min(items.len() / MIN_CHUNK);
    if n_threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk_len = items.len().div_ceil(n_threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(chunk_len).map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>())).collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<usize> = (0..10_000).collect();
        let squares = parallel_map(&items, |&i| i * i);
        assert_eq!(squares, items.iter().map(|&i| i * i).collect::<Vec<_>>());
    }

    #[test]
    fn classes_from_labels_integers_and_names() {
        fn check(labels: &[&str], expected_classes: &[&str], expected_labels: &[u32]) {
            let raw: Vec<(String, u64)> =
                labels.iter().enumerate().map(|(i, l)| (l.to_string(), i as u64 + 1)).collect();
            let (classes, got) = classes_from_labels(Path::new("f"), &raw, LabelClasses::Names).unwrap();
            assert_eq!(classes, expected_classes, "{labels:?}");
            assert_eq!(got, expected_labels, "{labels:?}");
        }
        check(&["1", "0", "2"], &["0", "1", "2"], &[1, 0, 2]);
        // Labels 1–4: four classes, no empty class 0; by value, not alphabetically.
        check(&["3", "1", "4", "2"], &["1", "2", "3", "4"], &[2, 0, 3, 1]);
        check(&["10", "2", "9"], &["2", "9", "10"], &[2, 0, 1]);
        check(&["3", "1"], &["1", "3"], &[1, 0]);
        check(&["pos", "neg", "pos"], &["neg", "pos"], &[1, 0, 1]);
        check(&["-1", "1"], &["-1", "1"], &[0, 1]);
        check(&["1", "x"], &["1", "x"], &[0, 1]);
        // A large integer is a name like any other.
        check(&["5814000", "1"], &["1", "5814000"], &[1, 0]);
    }

    #[test]
    fn a_label_range_keeps_absent_classes_and_refuses_others() {
        let raw = |labels: &[&str]| -> Vec<(String, u64)> {
            labels.iter().enumerate().map(|(i, l)| (l.to_string(), i as u64 + 1)).collect()
        };
        let (classes, labels) =
            classes_from_labels(Path::new("f"), &raw(&["4", "1", "4"]), LabelClasses::Range(1, 4)).unwrap();
        assert_eq!((classes, labels), (vec!["1".into(), "2".into(), "3".into(), "4".into()], vec![3, 0, 3]));
        for (bad, line) in [("5", 2), ("x", 2), ("0", 2), ("", 2)] {
            let err = classes_from_labels(Path::new("f.csv"), &raw(&["1", bad]), LabelClasses::Range(1, 4));
            assert_eq!(
                err.unwrap_err().to_string(),
                format!("f.csv: line {line}: label {bad:?} is not an integer in the label_range [1, 4]")
            );
        }
    }

    #[test]
    fn a_label_range_at_the_ends_of_i64_neither_overflows_nor_allocates() {
        let raw = vec![(i64::MIN.to_string(), 1), ((i64::MIN + 2).to_string(), 2)];
        let (names, labels) =
            classes_from_labels(Path::new("f"), &raw, LabelClasses::Range(i64::MIN, i64::MIN + 2)).unwrap();
        assert_eq!((names.len(), labels), (3, vec![0, 2]));
        let whole = classes_from_labels(Path::new("f.csv"), &raw, LabelClasses::Range(i64::MIN, i64::MAX));
        assert!(whole.unwrap_err().to_string().contains("must run upwards over at most 100000 classes"));
    }

    #[test]
    fn classes_from_labels_errors() {
        let raw = vec![("a".to_string(), 1), (String::new(), 3)];
        let err = classes_from_labels(Path::new("f.csv"), &raw, LabelClasses::Names).unwrap_err().to_string();
        assert_eq!(err, "f.csv: line 3: empty label");
        let ids: Vec<(String, u64)> = (0..=MAX_CLASSES as u64).map(|i| (i.to_string(), i + 2)).collect();
        let err = classes_from_labels(Path::new("f.csv"), &ids, LabelClasses::Names).unwrap_err().to_string();
        assert_eq!(
            err,
            "f.csv: 100001 distinct labels in 100001 rows (at most 100000 classes): is the label column an id or a text?"
        );
    }
}
