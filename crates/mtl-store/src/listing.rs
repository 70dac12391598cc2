//! What every listing of runs shares (`mtl ls`, `mtl tag`, the dashboard): the keys a
//! filter or sort may name, and the sort order.
//!
//! ```
//! use mtl_store::listing::SortKey;
//! let keys = SortKey::parse_list("strategy, -reviews.test.accuracy");
//! assert_eq!((keys[1].key.as_str(), keys[1].descending, keys[1].at), ("reviews.test.accuracy", true, 11));
//! ```

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::filter::{lookup, BUILT_IN_KEYS};
use crate::{ParamValue, RunRecord};

/// Settings a listing shows first, in this order; any others follow alphabetically.
pub const LEADING: [&str; 5] = ["strategy", "weighting", "lambda", "lr", "seed"];

/// Every key a filter or sort may name, given the runs of the database.
pub fn known_keys<'a>(runs: impl IntoIterator<Item = &'a RunRecord>) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = BUILT_IN_KEYS.iter().map(|k| k.to_string()).collect();
    for run in runs {
        keys.extend(run.params.keys().cloned());
        keys.extend(run.tags.keys().map(|k| format!("tag.{k}")));
        keys.extend(run.result_metrics().keys().map(|k| k.to_string()));
    }
    keys
}

/// The first of `keys` (with its byte offset in the text the user typed) that no run has:
/// a typo would otherwise silently match nothing.
pub fn unknown_key<'a>(
    keys: impl IntoIterator<Item = (&'a str, usize)>,
    known: &BTreeSet<String>,
) -> Option<(&'a str, usize)> {
    keys.into_iter().find(|(key, _)| !known.contains(*key))
}

/// The message for a key no run has: the text with a caret under the key, then the known keys.
pub fn describe_unknown_key(text: &str, key: &str, at: usize, known: &BTreeSet<String>) -> String {
    let list: Vec<&str> = known.iter().map(String::as_str).collect();
    let caret = " ".repeat(text[..at].chars().count());
    format!("unknown key {key:?}\n  {text}\n  {caret}^\nknown keys: {}", list.join(", "))
}

/// One key of a sort: `-key` sorts descending.
#[derive(Clone, Debug, PartialEq)]
pub struct SortKey {
    /// The key, as [`lookup`] reads it.
    pub key: String,
    /// Highest first.
    pub descending: bool,
    /// Byte offset of the key in the text it was parsed from.
    pub at: usize,
}

impl SortKey {
    /// Comma-separated keys, each with an optional leading `-`.
    pub fn parse_list(text: &str) -> Vec<SortKey> {
        let mut keys = Vec::new();
        let mut offset = 0;
        for part in text.split(',') {
            let key = part.trim().trim_start_matches('-');
            let at = offset + part.find(key).unwrap_or(0);
            keys.push(SortKey { key: key.to_string(), descending: part.trim().starts_with('-'), at });
            offset += part.len() + 1;
        }
        keys
    }
}

/// Sorts `runs` by `keys`, the first deciding; stable, so ties keep their order.
pub fn sort_runs<R: Borrow<RunRecord>>(runs: &mut [R], keys: &[SortKey]) {
    runs.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        keys.iter()
            .map(|key| {
                let order = compare_values(lookup(a, &key.key), lookup(b, &key.key));
                if key.descending {
                    order.reverse()
                } else {
                    order
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

/// Numbers before text, missing values last.
pub fn compare_values(a: Option<ParamValue>, b: Option<ParamValue>) -> Ordering {
    match (a, b) {
        (Some(ParamValue::Num(x)), Some(ParamValue::Num(y))) => x.total_cmp(&y),
        (Some(ParamValue::Text(x)), Some(ParamValue::Text(y))) => x.cmp(&y),
        (Some(ParamValue::Num(_)), Some(ParamValue::Text(_))) => Ordering::Less,
        (Some(ParamValue::Text(_)), Some(ParamValue::Num(_))) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_numbers_before_text_and_missing_last_descending_when_asked() {
        let run = |id: i64, lambda: Option<ParamValue>| {
            let mut run = RunRecord { id: crate::RunId(id), ..RunRecord::default() };
            if let Some(value) = lambda {
                run.params.insert("lambda".into(), value);
            }
            run
        };
        let mut runs = vec![
            run(1, None),
            run(2, Some(ParamValue::Text("x".into()))),
            run(3, Some(ParamValue::Num(0.5))),
            run(4, Some(ParamValue::Num(2.0))),
        ];
        sort_runs(&mut runs, &SortKey::parse_list("lambda"));
        assert_eq!(runs.iter().map(|r| r.id.0).collect::<Vec<_>>(), [3, 4, 2, 1]);
        sort_runs(&mut runs, &SortKey::parse_list("-lambda"));
        assert_eq!(runs.iter().map(|r| r.id.0).collect::<Vec<_>>(), [1, 2, 4, 3]);
        let known = known_keys(&runs);
        assert_eq!(unknown_key([("lambda", 0), ("lamda", 10)], &known), Some(("lamda", 10)));
    }
}
