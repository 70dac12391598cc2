//! Text formats: aclImdb folders, line-per-class files, CSV/TSV and JSONL; decoding, tokenising and vocabularies.
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
mod decode;
mod delimited;
mod jsonl;
mod lines;
mod tokenize;
mod vocabulary;

pub use aclimdb::aclimdb;
pub use decode::{decode, Decoded};
pub use delimited::{delimited, Column, DelimitedOptions};
pub use jsonl::jsonl;
pub use lines::lines_per_class;
pub use tokenize::{tokenize, tokenize_all};
pub use vocabulary::Vocabulary;

use crate::{DataError, LabeledTexts, LoadReport, Sourced};
use std::path::Path;

/// The examples of a single decoded file (CSV, TSV, JSONL): all of them train.
fn one_file(
    path: &Path,
    texts: Vec<String>,
    raw_labels: &[(String, u64)],
    decoded: &Decoded,
) -> Result<Sourced<LabeledTexts>, DataError> {
    let (class_names, labels) = classes_from_labels(path, raw_labels)?;
    let report = LoadReport {
        files_read: 1,
        decoded_as_windows_1252: usize::from(decoded.windows_1252),
        replacements: decoded.replacements,
        ..LoadReport::default()
    };
    Ok(Sourced { class_names, train: LabeledTexts { texts, labels }, val: None, test: None, report })
}

/// Integer labels beyond this are taken for a wrong column (an id, a score), not class indices.
const MAX_INTEGER_LABEL: u32 = 100_000;

/// Turns raw labels `(text, line)` into class names and indices: all non-negative integers give
/// classes "0".."max", anything else gives the distinct names sorted alphabetically, with their
/// control characters escaped ([`crate::files::escape_control`]).
fn classes_from_labels(path: &Path, raw: &[(String, u64)]) -> Result<(Vec<String>, Vec<u32>), DataError> {
    let integers: Option<Vec<u32>> = raw.iter().map(|(label, _)| label.parse::<u32>().ok()).collect();
    if let Some(labels) = integers {
        let max = labels.iter().copied().max().unwrap_or(0);
        if max > MAX_INTEGER_LABEL {
            let line = raw[labels.iter().position(|&l| l == max).unwrap_or(0)].1;
            return Err(DataError::invalid(
                path,
                format!("line {line}: integer label {max} is not a class index (at most {MAX_INTEGER_LABEL})"),
            ));
        }
        return Ok(((0..=max).map(|c| c.to_string()).collect(), labels));
    }
    if let Some((_, line)) = raw.iter().find(|(label, _)| label.is_empty()) {
        return Err(DataError::invalid(path, format!("line {line}: empty label")));
    }
    let mut class_names: Vec<String> = raw.iter().map(|(label, _)| label.clone()).collect();
    class_names.sort();
    class_names.dedup();
    // Sorted and deduplicated, so each label is found.
    let labels = raw.iter().map(|(label, _)| class_names.binary_search(label).unwrap_or(0) as u32).collect();
    Ok((crate::files::escaped_class_names(path, class_names)?, labels))
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
            let (classes, got) = classes_from_labels(Path::new("f"), &raw).unwrap();
            assert_eq!(classes, expected_classes, "{labels:?}");
            assert_eq!(got, expected_labels, "{labels:?}");
        }
        check(&["1", "0", "2"], &["0", "1", "2"], &[1, 0, 2]);
        check(&["3", "1"], &["0", "1", "2", "3"], &[3, 1]);
        check(&["pos", "neg", "pos"], &["neg", "pos"], &[1, 0, 1]);
        check(&["-1", "1"], &["-1", "1"], &[0, 1]);
        check(&["1", "x"], &["1", "x"], &[0, 1]);
    }

    #[test]
    fn classes_from_labels_errors() {
        let raw = vec![("1".to_string(), 1), ("5814000".to_string(), 2)];
        let err = classes_from_labels(Path::new("f.csv"), &raw).unwrap_err().to_string();
        assert_eq!(err, "f.csv: line 2: integer label 5814000 is not a class index (at most 100000)");
        let raw = vec![("a".to_string(), 1), (String::new(), 3)];
        let err = classes_from_labels(Path::new("f.csv"), &raw).unwrap_err().to_string();
        assert_eq!(err, "f.csv: line 3: empty label");
    }
}
