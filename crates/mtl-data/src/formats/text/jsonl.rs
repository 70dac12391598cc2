//! JSON Lines: one object per line, text and label in named fields.

use super::decode::decode_owned;
use super::{read_splits, LabelClasses, Rows, SplitFiles};
use crate::files;
use crate::{DataError, LabeledTexts, Sourced};
use serde_json::Value;
use std::path::Path;

/// How to read a JSONL file.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonlOptions {
    /// The fields holding the text: one, or several joined with a space.
    pub text_fields: Vec<String>,
    /// The field holding the label: a string or an integer.
    pub label_field: String,
    /// How labels become classes.
    pub classes: LabelClasses,
}

/// Reads a JSONL file of objects; every example is in `train`. Blank lines are skipped.
///
/// The text fields must be strings; the label field a string or an integer, its classes as
/// `options.classes` says. A line may hold at most [`crate::files::MAX_LINE_BYTES`].
pub fn jsonl(path: &Path, options: &JsonlOptions) -> Result<Sourced<LabeledTexts>, DataError> {
    jsonl_splits(&SplitFiles::one(path), options)
}

/// [`jsonl`] over one file per split, all read with `options`; the classes are those of
/// all the files together.
pub fn jsonl_splits(files: &SplitFiles, options: &JsonlOptions) -> Result<Sourced<LabeledTexts>, DataError> {
    read_splits(files, options.classes, |path| rows(path, options))
}

fn rows(path: &Path, options: &JsonlOptions) -> Result<Rows, DataError> {
    let decoded = decode_owned(files::read_text(path)?);
    if options.text_fields.is_empty() {
        return Err(DataError::invalid(path, "no text field given"));
    }
    let label_field = options.label_field.as_str();
    let mut texts = Vec::new();
    let mut raw_labels = Vec::new();
    for (line_idx, line) in decoded.text.lines().enumerate() {
        let line_number = line_idx as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let invalid = |message: String| DataError::invalid(path, format!("line {line_number}: {message}"));
        let object = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(invalid("not a JSON object".to_owned())),
            Err(e) => {
                // serde_json counts lines within the one line it was given: keep only the column.
                let text = e.to_string();
                let what = text.rsplit_once(" at line ").map_or(text.as_str(), |(what, _)| what);
                return Err(invalid(format!("column {}: bad JSON: {what}", e.column())));
            }
        };
        let field = |name: &str| object.get(name).ok_or_else(|| invalid(format!("no field '{name}'")));
        let mut parts = Vec::with_capacity(options.text_fields.len());
        for text_field in &options.text_fields {
            match field(text_field)? {
                Value::String(text) => parts.push(text.as_str()),
                other => return Err(invalid(format!("field '{text_field}' is {}, not a string", kind(other)))),
            }
        }
        texts.push(parts.join(" "));
        let label = match field(label_field)? {
            Value::String(label) => label.trim().to_owned(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            other => {
                let message = format!("field '{label_field}' is {}, not a string or an integer", kind(other));
                return Err(invalid(message));
            }
        };
        raw_labels.push((label, line_number));
    }
    if texts.is_empty() {
        return Err(DataError::invalid(path, "no records"));
    }
    Ok(Rows { texts, labels: raw_labels, windows_1252: decoded.windows_1252, replacements: decoded.replacements })
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(text_fields: &[&str]) -> JsonlOptions {
        let text_fields = text_fields.iter().map(|f| f.to_string()).collect();
        JsonlOptions { text_fields, label_field: "label".to_owned(), classes: LabelClasses::Names }
    }

    /// Writes `content` to a temporary file and reads it with fields "text" and "label".
    fn read(content: &str) -> Result<Sourced<LabeledTexts>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.jsonl");
        std::fs::write(&path, content).unwrap();
        let dir = dir.path().to_string_lossy().into_owned();
        jsonl(&path, &options(&["text"])).map_err(|e| e.to_string().replace(&dir, "DIR"))
    }

    fn check(content: &str, classes: &[&str], texts: &[&str], labels: &[u32]) {
        let sourced = read(content).unwrap();
        assert_eq!(sourced.class_names, classes, "{content}");
        assert_eq!(sourced.train.texts, texts, "{content}");
        assert_eq!(sourced.train.labels, labels, "{content}");
    }

    fn check_err(content: &str, expected: &str) {
        assert_eq!(read(content).unwrap_err(), expected, "{content}");
    }

    #[test]
    fn jsonl_reads_records() {
        let names = "{\"text\": \"fine, \\\"really\\\"\", \"label\": \"pos\", \"id\": 1}\n\n{\"label\": \"neg\", \"text\": \"meh\"}\n";
        check(names, &["neg", "pos"], &["fine, \"really\"", "meh"], &[1, 0]);
        check(
            "{\"text\": \"a\", \"label\": 2}\r\n{\"text\": \"b\", \"label\": \"0\"}",
            &["0", "2"],
            &["a", "b"],
            &[1, 0],
        );
        check("{\"text\": \"a\", \"label\": -1}\n{\"text\": \"b\", \"label\": 1}", &["-1", "1"], &["a", "b"], &[0, 1]);
    }

    #[test]
    fn several_text_fields_are_joined_with_a_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("news.jsonl");
        std::fs::write(&path, "{\"title\": \"Bears\", \"body\": \"Short-sellers\", \"label\": \"biz\"}\n").unwrap();
        let sourced = jsonl(&path, &options(&["title", "body"])).unwrap();
        assert_eq!(sourced.train.texts, ["Bears Short-sellers"]);
        let err = jsonl(&path, &options(&["title", "summary"])).unwrap_err().to_string();
        assert!(err.ends_with("news.jsonl: line 1: no field 'summary'"), "{err}");
    }

    #[test]
    fn jsonl_errors() {
        check_err(
            "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1\n",
            "DIR/data.jsonl: line 2: column 24: bad JSON: EOF while parsing an object",
        );
        check_err("{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\"}\n", "DIR/data.jsonl: line 3: no field 'label'");
        check_err("{\"text\": 5, \"label\": 1}", "DIR/data.jsonl: line 1: field 'text' is the number 5, not a string");
        check_err(
            "{\"text\": \"a\", \"label\": 1.5}",
            "DIR/data.jsonl: line 1: field 'label' is the number 1.5, not a string or an integer",
        );
        check_err("[1, 2]", "DIR/data.jsonl: line 1: not a JSON object");
        check_err("\n \n", "DIR/data.jsonl: no records");
    }
}
