//! Locating errors: a [`ConfigError`] names the file, the line and the dotted key of the
//! offending value, found in the file's text from the key path the check was at.

use std::ops::Range;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

use super::Checker;

/// A problem with an experiment file.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {}{message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The experiment file.
    pub file: PathBuf,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// Dotted key of the offending value (`sweep.lambda[1]`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// One step of a key path: a table key or an array index.
pub(super) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}
use Seg::{Index, Key};

impl Checker<'_> {
    pub(super) fn fail<T>(&self, path: &[Seg], message: impl Into<String>) -> Result<T, ConfigError> {
        let line = locate(self.source, path).map(|span| line_of(self.source, span.start));
        let key = path
            .iter()
            .map(|s| match s {
                Key(k) => format!(".{k}"),
                Index(i) => format!("[{i}]"),
            })
            .collect::<String>()
            .trim_start_matches('.')
            .to_string();
        Err(ConfigError { file: self.file.to_owned(), line, key: Some(key), message: message.into() })
    }
}

/// 1-based line of byte `offset`.
pub(super) fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The span of the value at `path`, if the file has it.
pub(super) fn locate(source: &str, path: &[Seg]) -> Option<Range<usize>> {
    let root = DeTable::parse(source).ok()?;
    let mut span = root.span();
    let mut value: Option<&DeValue> = None;
    let mut table: &DeTable = root.get_ref();
    for seg in path {
        let next = match (seg, value) {
            (Key(k), None) => table.get(*k)?,
            (Key(k), Some(DeValue::Table(t))) => t.get(*k)?,
            (Index(i), Some(DeValue::Array(a))) => a.get(*i)?,
            _ => return Some(span),
        };
        span = next.span();
        value = Some(next.get_ref());
        if let DeValue::Table(t) = next.get_ref() {
            table = t;
        }
    }
    Some(span)
}

/// The dotted key at byte `offset` (for serde's errors): the innermost value
/// whose span contains it, else the nearest key before it. (Spans of `[table]`
/// headers cover the header only, so containment alone is not enough.)
pub(super) fn key_at(source: &str, offset: usize) -> Option<String> {
    fn collect(value: &DeValue, path: &str, out: &mut Vec<(String, Range<usize>)>) {
        match value {
            DeValue::Table(table) => {
                for (key, child) in table.iter() {
                    let child_path =
                        if path.is_empty() { key.get_ref().to_string() } else { format!("{path}.{}", key.get_ref()) };
                    out.push((child_path.clone(), key.span().start..child.span().end.max(key.span().end)));
                    collect(child.get_ref(), &child_path, out);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    out.push((item_path.clone(), item.span()));
                    collect(item.get_ref(), &item_path, out);
                }
            }
            _ => {}
        }
    }
    let root = DeTable::parse(source).ok()?;
    let mut entries = Vec::new();
    collect(&DeValue::Table(root.into_inner()), "", &mut entries);
    let innermost = entries.iter().filter(|(_, span)| span.contains(&offset)).min_by_key(|(_, span)| span.len());
    let nearest_before = || entries.iter().filter(|(_, span)| span.start <= offset).max_by_key(|(_, span)| span.start);
    innermost.or_else(nearest_before).map(|(path, _)| path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_at_finds_values_inside_arrays_of_tables_and_inline_tables() {
        let source = "name = \"x\"\n[[tasks]]\nname = \"a\"\n\n[[tasks]]\nname = \"b\"\ndata = { format = \"p\" }\n";
        let at = |needle: &str| key_at(source, source.find(needle).expect("needle"));
        assert_eq!(at("\"p\"").as_deref(), Some("tasks[1].data.format"));
        assert_eq!(at("\"b\"").as_deref(), Some("tasks[1].name"));
        assert_eq!(at("\"x\"").as_deref(), Some("name"));
    }
}
