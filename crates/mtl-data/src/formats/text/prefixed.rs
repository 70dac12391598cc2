//! Lines that start with their label: `LABEL text`, as TREC's question files
//! (`NUM:dist How far is it from Denver to Aspen ?`) and fastText's `__label__pos …` are.

use super::decode::decode_owned;
use super::{read_splits, LabelClasses, Rows, SplitFiles};
use crate::files;
use crate::{DataError, LabeledTexts, Sourced};
use std::path::Path;

/// How to read label-prefixed lines.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefixedOptions {
    /// Keep only the label's part before its first `:` (TREC's 6 coarse classes instead of
    /// its 50 fine ones: `NUM:dist` → `NUM`).
    pub coarse: bool,
    /// How labels become classes.
    pub classes: LabelClasses,
}

/// Reads one file per split (or one file, the splits to be carved) of lines `LABEL text`:
/// the label is the line's first word (up to a space or tab), the text the rest. Blank
/// lines are skipped; a line with a label and no text is an error naming it.
pub fn prefixed_lines(files: &SplitFiles, options: &PrefixedOptions) -> Result<Sourced<LabeledTexts>, DataError> {
    read_splits(files, options.classes, |path| rows(path, options))
}

fn rows(path: &Path, options: &PrefixedOptions) -> Result<Rows, DataError> {
    let decoded = decode_owned(files::read_text(path)?);
    let (mut texts, mut labels) = (Vec::new(), Vec::new());
    for (index, line) in decoded.text.lines().enumerate() {
        let line_number = index as u64 + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((label, text)) = line.split_once([' ', '\t']).filter(|(_, text)| !text.trim().is_empty()) else {
            // At most 60 characters of the line: it may be megabytes long.
            let shown: String = line.chars().take(60).collect();
            let cut = if shown.len() < line.len() { "…" } else { "" };
            let message =
                format!("line {line_number}: {shown:?}{cut} has a label and no text (lines read `LABEL text`)");
            return Err(DataError::invalid(path, message));
        };
        let label = if options.coarse { label.split(':').next().unwrap_or(label) } else { label };
        texts.push(text.trim().to_owned());
        labels.push((label.to_owned(), line_number));
    }
    if texts.is_empty() {
        return Err(DataError::invalid(path, "no lines"));
    }
    Ok(Rows { texts, labels, windows_1252: decoded.windows_1252, replacements: decoded.replacements })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TREC's layout: fine labels `COARSE:fine`, a question after one space.
    const TREC: &str = "DESC:manner How did serfdom develop in and then leave Russia ?\n\
                        ENTY:cremat What films featured the character Popeye Doyle ?\n\
                        \n\
                        NUM:dist How far is it from Denver to Aspen ?\n\
                        DESC:def What is an atom ?\n";

    fn read(content: &str, coarse: bool) -> Result<Sourced<LabeledTexts>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train_5500.label");
        std::fs::write(&path, content).unwrap();
        let options = PrefixedOptions { coarse, classes: LabelClasses::Names };
        let dir = dir.path().to_string_lossy().into_owned();
        prefixed_lines(&SplitFiles::one(&path), &options).map_err(|e| e.to_string().replace(&dir, "DIR"))
    }

    #[test]
    fn trec_lines_read_with_fine_or_coarse_labels() {
        let fine = read(TREC, false).unwrap();
        assert_eq!(fine.class_names, ["DESC:def", "DESC:manner", "ENTY:cremat", "NUM:dist"]);
        assert_eq!(fine.train.labels, [1, 2, 3, 0]);
        assert_eq!(fine.train.texts[2], "How far is it from Denver to Aspen ?");
        let coarse = read(TREC, true).unwrap();
        assert_eq!(coarse.class_names, ["DESC", "ENTY", "NUM"]);
        assert_eq!(coarse.train.labels, [0, 1, 2, 0]);
        // fastText's layout, a tab after the label.
        let fasttext = read("__label__pos\tgreat fun\n__label__neg dull\n", false).unwrap();
        assert_eq!(fasttext.class_names, ["__label__neg", "__label__pos"]);
        assert_eq!(fasttext.train.texts, ["great fun", "dull"]);
    }

    #[test]
    fn a_label_without_text_or_an_empty_file_is_refused() {
        let err = read("NUM:dist How far ?\nLOC:city\n", false).unwrap_err();
        assert_eq!(err, "DIR/train_5500.label: line 2: \"LOC:city\" has a label and no text (lines read `LABEL text`)");
        assert_eq!(read("\n \n", false).unwrap_err(), "DIR/train_5500.label: no lines");
        let long = format!("NUM:dist x\n{}\n", "a".repeat(100));
        let err = read(&long, false).unwrap_err();
        assert_eq!(
            err,
            format!(
                "DIR/train_5500.label: line 2: {:?}… has a label and no text (lines read `LABEL text`)",
                "a".repeat(60)
            )
        );
        assert_eq!(read(":x what ?\n", true).unwrap_err(), "DIR/train_5500.label: line 1: empty label");
    }
}
