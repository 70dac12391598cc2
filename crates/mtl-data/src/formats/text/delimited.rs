//! CSV and TSV files (RFC 4180 quoting): one example per row, text and label in named or numbered columns.

use super::decode::decode_owned;
use super::{read_splits, LabelClasses, Rows, SplitFiles};
use crate::files;
use crate::{DataError, LabeledTexts, Sourced};
use std::fmt;
use std::path::Path;

/// How to read a delimited file.
#[derive(Clone, Debug, PartialEq)]
pub struct DelimitedOptions {
    /// The field separator: `b','` for CSV, `b'\t'` for TSV.
    pub delimiter: u8,
    /// The first row names the columns.
    pub has_header: bool,
    /// The columns holding the text: one, or several joined with a space (a title and a
    /// description).
    pub text_columns: Vec<Column>,
    /// The column holding the label.
    pub label_column: Column,
    /// How labels become classes.
    pub classes: LabelClasses,
    /// Double quotes enclose fields (which may then hold the separator and newlines). Off,
    /// a `"` is an ordinary character: for files that do not quote, where a line that
    /// starts with `"` would otherwise run on into the next lines.
    pub quoting: bool,
}

/// A field separator as the user wrote it: one ASCII character other than a quote or a
/// line break (`\t` written out also means a tab); otherwise what to write instead.
pub fn parse_delimiter(given: &str) -> Result<u8, String> {
    match given.as_bytes() {
        b"\\t" => Ok(b'\t'),
        [byte] if byte.is_ascii() && !matches!(byte, b'"' | b'\n' | b'\r') => Ok(*byte),
        _ => Err(format!(
            "delimiter {given:?} must be one ASCII character other than a quote or a line break, e.g. \";\" or \"|\" \
             (a tab: \"\\t\")"
        )),
    }
}

/// A column of a delimited file.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// By its name in the header row.
    Name(String),
    /// By position, 0-based.
    Index(usize),
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Name(name) => write!(f, "column '{name}'"),
            Column::Index(index) => write!(f, "column {index}"),
        }
    }
}

/// Reads a CSV or TSV file; every example is in `train`.
///
/// Labels become classes as `options.classes` says. Labels are trimmed; texts are kept as they are.
/// A line, and a record (whose quoted fields may span lines), may hold at most [`files::MAX_LINE_BYTES`].
pub fn delimited(path: &Path, options: &DelimitedOptions) -> Result<Sourced<LabeledTexts>, DataError> {
    delimited_splits(&SplitFiles::one(path), options)
}

/// [`delimited`] over one file per split, all read with `options`; the classes are those
/// of all the files together.
pub fn delimited_splits(files: &SplitFiles, options: &DelimitedOptions) -> Result<Sourced<LabeledTexts>, DataError> {
    read_splits(files, options.classes, |path| rows(path, options))
}

/// The text of a delimited file at `path`, decoded first so that Windows-1252 files read
/// too (the csv crate wants UTF-8); an empty file is an error.
pub(crate) fn decoded_text(path: &Path) -> Result<super::Decoded, DataError> {
    let decoded = decode_owned(files::read_text(path)?);
    if decoded.text.trim().is_empty() {
        return Err(DataError::invalid(path, "empty file"));
    }
    Ok(decoded)
}

/// A reader of `text` (from `path`) and its header row when it has one. Flexible: short
/// rows are for the caller to report with the column they lack.
pub(crate) fn reader<'a>(
    path: &Path,
    text: &'a str,
    (delimiter, quoting, has_header): (u8, bool, bool),
) -> Result<(csv::Reader<&'a [u8]>, Option<csv::StringRecord>), DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(quoting)
        .has_headers(has_header)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = if has_header { Some(reader.headers().map_err(|e| csv_error(path, e))?.clone()) } else { None };
    Ok((reader, header))
}

/// A csv error as a [`DataError`] for `path`.
pub(crate) fn csv_error(path: &Path, e: csv::Error) -> DataError {
    DataError::invalid(path, format!("malformed delimited file: {e}"))
}

fn rows(path: &Path, options: &DelimitedOptions) -> Result<Rows, DataError> {
    let decoded = decoded_text(path)?;
    let (mut reader, header) = reader(path, &decoded.text, (options.delimiter, options.quoting, options.has_header))?;
    let csv_error = |e: csv::Error| csv_error(path, e);
    if options.text_columns.is_empty() {
        return Err(DataError::invalid(path, "no text column given"));
    }
    let text_indices: Vec<usize> =
        options.text_columns.iter().map(|c| column_index(path, c, header.as_ref())).collect::<Result<_, _>>()?;
    let label_index = column_index(path, &options.label_column, header.as_ref())?;

    let mut texts = Vec::new();
    let mut raw_labels = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        files::check_line(path, line, record.as_slice().len(), "record")?;
        let field = |index: usize, column: &Column| {
            record.get(index).ok_or_else(|| {
                let message = format!("line {line}: row has {} fields, no {column}", record.len());
                DataError::invalid(path, message)
            })
        };
        let parts: Vec<&str> = text_indices
            .iter()
            .zip(&options.text_columns)
            .map(|(&index, column)| field(index, column))
            .collect::<Result<_, _>>()?;
        texts.push(parts.join(" "));
        raw_labels.push((field(label_index, &options.label_column)?.trim().to_owned(), line));
    }
    if texts.is_empty() {
        return Err(DataError::invalid(path, "no rows"));
    }
    Ok(Rows { texts, labels: raw_labels, windows_1252: decoded.windows_1252, replacements: decoded.replacements })
}

pub(crate) fn column_index(
    path: &Path,
    column: &Column,
    header: Option<&csv::StringRecord>,
) -> Result<usize, DataError> {
    let name = match column {
        Column::Index(index) => return Ok(*index),
        Column::Name(name) => name,
    };
    let Some(header) = header else {
        return Err(DataError::invalid(
            path,
            format!("{column}: columns can only be named when the file has a header"),
        ));
    };
    header.iter().position(|h| h == name).ok_or_else(|| {
        let names: Vec<String> = header.iter().map(|h| format!("'{h}'")).collect();
        DataError::invalid(path, format!("no {column} in the header; it has {}", names.join(", ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(delimiter: u8, has_header: bool, text: Column, label: Column) -> DelimitedOptions {
        DelimitedOptions {
            delimiter,
            has_header,
            text_columns: vec![text],
            label_column: label,
            quoting: true,
            classes: LabelClasses::Names,
        }
    }

    fn csv_by_name() -> DelimitedOptions {
        options(b',', true, Column::Name("review".to_owned()), Column::Name("label".to_owned()))
    }

    /// Writes `content` to a temporary `name` and reads it.
    fn read(name: &str, content: &[u8], options: &DelimitedOptions) -> Result<Sourced<LabeledTexts>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let dir = dir.path().to_string_lossy().into_owned();
        delimited(&path, options).map_err(|e| e.to_string().replace(&dir, "DIR"))
    }

    fn check(content: &[u8], options: &DelimitedOptions, classes: &[&str], texts: &[&str], labels: &[u32]) {
        let sourced = read("data.csv", content, options).unwrap();
        assert_eq!(sourced.class_names, classes);
        assert_eq!(sourced.train.texts, texts);
        assert_eq!(sourced.train.labels, labels);
        assert_eq!(sourced.report.files_read, 1);
    }

    fn check_err(content: &[u8], options: &DelimitedOptions, expected: &str) {
        assert_eq!(read("data.csv", content, options).unwrap_err(), expected);
    }

    #[test]
    fn delimited_reads_csv_and_tsv() {
        // Quoted commas, doubled quotes, a newline inside quotes; name labels sorted alphabetically.
        let csv = b"id,review,label\n1,\"Great, really.\",pos\n2,\"He said \"\"meh\"\".\",neg\n3,\"two\nlines\",pos\n";
        check(csv, &csv_by_name(), &["neg", "pos"], &["Great, really.", "He said \"meh\".", "two\nlines"], &[1, 0, 1]);
        // TSV without header, by index; integer labels are names (no class 1 that never occurs),
        // unless a range declares them.
        let tsv = options(b'\t', false, Column::Index(1), Column::Index(0));
        check(b"2\tgood, fine\n0\tbad\r\n", &tsv, &["0", "2"], &["good, fine", "bad"], &[1, 0]);
        let ranged = DelimitedOptions { classes: LabelClasses::Range(0, 2), ..tsv };
        check(b"2\tgood, fine\n0\tbad\r\n", &ranged, &["0", "1", "2"], &["good, fine", "bad"], &[2, 0]);
        // Windows-1252 and a label with spaces around it.
        let sourced = read("w.csv", b"review,label\nit\x92s ok\x85, 1 \n", &csv_by_name()).unwrap();
        assert_eq!((sourced.train.texts[0].as_str(), sourced.class_names[0].as_str()), ("it’s ok…", "1"));
        assert_eq!((sourced.report.decoded_as_windows_1252, sourced.report.replacements), (1, 0));
    }

    #[test]
    fn quoting_off_reads_a_leading_quote_as_text() {
        // An unquoted file (as the SMS spam collection is) whose second line starts with a
        // quote: with quoting the field runs on over the next lines; without, one row per line.
        let content = b"text,label\nhi there,ham\n\"Free entry now,spam\nok see you,ham\nsay \"hi\",ham\n";
        let quoted = read("data.csv", content, &options(b',', true, Column::Index(0), Column::Index(1))).unwrap();
        assert_eq!(quoted.train.texts.len(), 2, "the quote ran on over two lines: {:?}", quoted.train.texts);
        let plain = DelimitedOptions { quoting: false, ..options(b',', true, Column::Index(0), Column::Index(1)) };
        let texts = ["hi there", "\"Free entry now", "ok see you", "say \"hi\""];
        check(content, &plain, &["ham", "spam"], &texts, &[0, 1, 0, 0]);
        // Another separator.
        let semicolons = options(b';', true, Column::Name("review".to_owned()), Column::Name("label".to_owned()));
        check(b"review;label\nfine, really;pos\n", &semicolons, &["pos"], &["fine, really"], &[0]);
    }

    #[test]
    fn several_text_columns_are_joined_with_a_space() {
        let content =
            b"title,description,class\nWall St. Bears,\"Short-sellers, dwindling\",3\nNew Probe,Sees stars,4\n";
        let joined = DelimitedOptions {
            text_columns: vec![Column::Name("title".to_owned()), Column::Index(1)],
            ..options(b',', true, Column::Index(0), Column::Name("class".to_owned()))
        };
        let texts = ["Wall St. Bears Short-sellers, dwindling", "New Probe Sees stars"];
        check(content, &joined, &["3", "4"], &texts, &[0, 1]);
        let missing = DelimitedOptions { text_columns: vec![Column::Index(0), Column::Index(5)], ..joined };
        check_err(content, &missing, "DIR/data.csv: line 2: row has 3 fields, no column 5");
    }

    #[test]
    fn one_file_per_split_shares_the_classes_of_all() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, content: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            path
        };
        let train = write("train.csv", "review,label\ngood,pos\nbad,neg\n");
        let test = write("test.csv", "review,label\nso-so,meh\nfine,pos\n");
        let files = SplitFiles { train: train.clone(), val: None, test: Some(test) };
        let sourced = delimited_splits(&files, &csv_by_name()).unwrap();
        assert_eq!(sourced.class_names, ["meh", "neg", "pos"]);
        assert_eq!((sourced.train.labels, sourced.val), (vec![2, 1], None));
        let test = sourced.test.unwrap();
        assert_eq!((test.texts, test.labels), (vec!["so-so".to_owned(), "fine".to_owned()], vec![0, 2]));
        assert_eq!(sourced.report.files_read, 2);
        // An error names the file it is in.
        let val = write("val.csv", "review,label\nok,pos\nhm,\n");
        let files = SplitFiles { train, val: Some(val.clone()), test: None };
        let err = delimited_splits(&files, &csv_by_name()).unwrap_err().to_string();
        assert_eq!(err, format!("{}: line 3: empty label", val.display()));
    }

    #[test]
    fn delimited_errors() {
        let by_name = csv_by_name();
        check_err(
            b"id,text,label\n1,x,pos\n",
            &by_name,
            "DIR/data.csv: no column 'review' in the header; it has 'id', 'text', 'label'",
        );
        let no_header = options(b',', false, Column::Name("review".to_owned()), Column::Index(1));
        check_err(
            b"x,pos\n",
            &no_header,
            "DIR/data.csv: column 'review': columns can only be named when the file has a header",
        );
        check_err(b"", &by_name, "DIR/data.csv: empty file");
        check_err(b"review,label\n", &by_name, "DIR/data.csv: no rows");
        let by_index = options(b',', false, Column::Index(0), Column::Index(2));
        check_err(b" \n", &by_index, "DIR/data.csv: empty file");
        check_err(b"a,b,pos\n\"two\nlines\",b\n", &by_index, "DIR/data.csv: line 2: row has 2 fields, no column 2");
        check_err(b"review,label\nx,\n", &by_name, "DIR/data.csv: line 2: empty label");
    }
}
