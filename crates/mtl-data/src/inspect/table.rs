//! `mtl data inspect --data-format table`: each column of a CSV or TSV file profiled, so
//! that the user can choose the experiment file's `features`, `categorical`, `targets`,
//! `labels` and `label_column`.

use std::collections::HashMap;
use std::path::Path;

use crate::formats::text::delimited::{csv_error, decoded_text, reader};
use crate::{files, DataError};

/// What one column holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnKind {
    /// Numbers (some cells may not be: see [`ColumnProfile::bad_cells`]): a numeric
    /// feature or a regression target.
    Numeric {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// Mean value.
        mean: f64,
    },
    /// Only 0 and 1 (or −1 and 1): a multi-label column or a binary class.
    Binary {
        /// Rows whose value is 1.
        ones: usize,
    },
    /// Names: a categorical feature or a class column.
    Categorical,
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnProfile {
    /// Its header name.
    pub name: String,
    /// What it holds.
    pub kind: ColumnKind,
    /// Distinct values.
    pub distinct: usize,
    /// The most frequent values with their counts (at most 3), most frequent first.
    pub top: Vec<(String, usize)>,
    /// Numeric columns: cells that are not finite numbers, and the first of them `(line, cell)`.
    pub bad_cells: (usize, Option<(u64, String)>),
}

/// At most this share of a column's cells may fail to parse for it to count as numeric.
const BAD_SHARE: f64 = 0.1;

/// Profiles every column of a delimited file with a header; returns the rows read too.
pub fn profile(path: &Path, delimiter: u8, quoting: bool) -> Result<(usize, Vec<ColumnProfile>), DataError> {
    let decoded = decoded_text(path)?;
    let (mut reader, header) = reader(path, &decoded.text, (delimiter, quoting, true))?;
    let csv_error = |e: csv::Error| csv_error(path, e);
    let header: Vec<String> = header.map_or_else(Vec::new, |h| h.iter().map(str::to_owned).collect());
    let mut counts: Vec<HashMap<String, usize>> = vec![HashMap::new(); header.len()];
    let mut numbers: Vec<(usize, f64, f64, f64)> = vec![(0, f64::INFINITY, f64::NEG_INFINITY, 0.0); header.len()];
    let mut first_bad: Vec<Option<(u64, String)>> = vec![None; header.len()];
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        files::check_line(path, line, record.as_slice().len(), "record")?;
        rows += 1;
        for (c, cell) in record.iter().take(header.len()).enumerate() {
            let cell = cell.trim();
            *counts[c].entry(cell.to_owned()).or_default() += 1;
            // As the reader parses them: f32, so 1e39 is not a number here either.
            match cell.parse::<f32>().map(f64::from) {
                Ok(v) if v.is_finite() => {
                    let (n, min, max, sum) = &mut numbers[c];
                    (*n, *min, *max, *sum) = (*n + 1, min.min(v), max.max(v), *sum + v);
                }
                _ if first_bad[c].is_none() => first_bad[c] = Some((line, cell.to_owned())),
                _ => {}
            }
        }
    }
    let profiles = header
        .into_iter()
        .zip(counts)
        .zip(numbers.into_iter().zip(first_bad))
        .map(|((name, counts), ((n, min, max, sum), first_bad))| {
            let cells: usize = counts.values().sum();
            let binary = n == cells && counts.keys().all(|v| matches!(v.as_str(), "0" | "1" | "-1"));
            let kind = if binary && n > 0 {
                ColumnKind::Binary { ones: counts.get("1").copied().unwrap_or(0) }
            } else if n > 0 && (cells - n) as f64 <= BAD_SHARE * cells as f64 {
                ColumnKind::Numeric { min, max, mean: sum / n as f64 }
            } else {
                ColumnKind::Categorical
            };
            let bad = if matches!(kind, ColumnKind::Numeric { .. }) { (cells - n, first_bad) } else { (0, None) };
            let mut top: Vec<(String, usize)> = counts.iter().map(|(v, c)| (v.clone(), *c)).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(3);
            ColumnProfile { name, kind, distinct: counts.len(), top, bad_cells: bad }
        })
        .collect();
    Ok((rows, profiles))
}

/// The problems of a profiled table: numeric columns with cells that are not numbers.
pub fn problems(columns: &[ColumnProfile]) -> Vec<String> {
    columns
        .iter()
        .filter_map(|c| {
            let (count, Some((line, cell))) = &c.bad_cells else { return None };
            Some(format!(
                "column '{}': {count} cell(s) are not numbers (first: line {line}, {cell:?}): as a feature or target \
                 it is refused; clean it, or read it as categorical",
                c.name
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_numeric_binary_or_categorical_with_bad_cells_named() {
        let dir = tempfile::tempdir().expect("dir");
        let mut text = String::from("age,job,smiling,young\n");
        for i in 0..20 {
            let age = if i == 7 { "?".to_owned() } else { (20 + i).to_string() };
            let job = ["a", "b", "b"][i % 3];
            text.push_str(&format!("{age},{job},{},{}\n", i % 2, if i < 5 { "1" } else { "-1" }));
        }
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).expect("write");
        let (rows, columns) = profile(&path, b',', true).expect("profile");
        assert_eq!(rows, 20);
        // 19 ages from 20 to 39 without 27: mean (20 + … + 39 − 27) / 19.
        let mean = ((20..40).sum::<i32>() - 27) as f64 / 19.0;
        assert_eq!(columns[0].kind, ColumnKind::Numeric { min: 20.0, max: 39.0, mean });
        assert_eq!(columns[0].bad_cells, (1, Some((9, "?".to_owned()))));
        assert_eq!(columns[1].kind, ColumnKind::Categorical);
        assert_eq!((columns[1].distinct, columns[1].top.clone()), (2, vec![("b".to_owned(), 13), ("a".to_owned(), 7)]));
        assert_eq!(columns[2].kind, ColumnKind::Binary { ones: 10 });
        assert_eq!(columns[3].kind, ColumnKind::Binary { ones: 5 });
        let problems = problems(&columns);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("column 'age': 1 cell(s) are not numbers (first: line 9, \"?\")"),
            "{problems:?}"
        );
    }
}
