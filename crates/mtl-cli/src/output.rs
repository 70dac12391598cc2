//! Plain-text tables and CSV for listings.

use std::fmt::Write;

/// Output format of listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row, for spreadsheets and scripts.
    Csv,
    /// JSON, for scripts.
    Json,
}

/// Left-aligns text columns and right-aligns numeric ones.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> =
        (0..n).map(|i| rows.iter().all(|r| r[i].parse::<f64>().is_ok() || r[i] == "-" || r[i].contains('±'))).collect();
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(
                |(i, c)| if numeric[i] { format!("{c:>w$}", w = widths[i]) } else { format!("{c:<w$}", w = widths[i]) },
            )
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(header);
    line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    out
}

/// RFC 4180 CSV: fields with commas, quotes or newlines are quoted.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let field = |s: &String| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.clone()
        }
    };
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let _ = writeln!(out, "{}", row.iter().map(field).collect::<Vec<_>>().join(","));
    }
    out
}

/// A metric value with 4 decimals, or `-`.
pub fn value(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let out = csv(&["a".into(), "b".into()], &[vec!["x,y".into(), "say \"hi\"".into()]]);
        assert_eq!(out, "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn table_aligns_numbers_right() {
        let out = table(
            &["name".into(), "acc".into()],
            &[vec!["hard".into(), "0.5".into()], vec!["single-task".into(), "0.75".into()]],
        );
        assert_eq!(out, "name          acc\n-----------  ----\nhard          0.5\nsingle-task  0.75\n");
    }
}
