//! The one output model of listings: typed [`Cell`]s rendered into a table, CSV or JSON.

use std::fmt::Write;

use mtl_store::ParamValue;

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

/// Left-aligns text columns and right-aligns numeric ones, leaving out the last
/// columns that do not fit the terminal (when stdout is one) and saying so.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    fit_table(header, rows, terminal_width())
}

/// The width of the terminal on stdout: `COLUMNS` if set, else asked of the
/// terminal; none when stdout is not a terminal (a pipe or file gets every column).
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    console::Term::stdout().size_checked().map(|(_rows, columns)| columns as usize)
}

/// `text` with each control character as its escape (`\u{1b}`, `\n`).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(char::is_control) {
        text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
    } else {
        text.into()
    }
}

/// [`table`] for a given width (`None`: no limit). At least the first column is kept.
pub fn fit_table(header: &[String], rows: &[Vec<String>], width: Option<usize>) -> String {
    // Text from a database (names an older mtl-lab accepted, data's class names) never
    // reaches the terminal raw: a control character is shown as its escape.
    let escaped = |cells: &[String]| -> Vec<String> { cells.iter().map(|c| printable(c).into_owned()).collect() };
    let (mut header, mut rows) = (escaped(header), rows.iter().map(|r| escaped(r)).collect::<Vec<_>>());
    // Too wide: columns with one value in every row go first (named below with their value),
    // so that the ones that tell rows apart, such as the metrics, stay.
    let mut constant = Vec::new();
    while !Columns::fit(&header, &rows, width).fits_all(&header) && rows.len() > 1 {
        let Some(i) = (1..header.len()).rev().find(|&i| rows.iter().all(|r| r[i] == rows[0][i])) else { break };
        constant.push(format!("{}={}", header.remove(i), rows[0][i]));
        rows.iter_mut().for_each(|r| drop(r.remove(i)));
    }
    let columns = Columns::fit(&header, &rows, width);
    let mut out = String::new();
    for line in [columns.line(&header), columns.rule()].into_iter().chain(rows.iter().map(|r| columns.line(r))) {
        let _ = writeln!(out, "{line}");
    }
    if !constant.is_empty() {
        constant.reverse();
        let _ = writeln!(out, "(the same in every row, not shown: {})", constant.join(", "));
    }
    if let Some(note) = columns.left_out(&header) {
        let _ = writeln!(out, "{note}");
    }
    out
}

/// A table's layout: the columns that fit the width (at least the first), each as wide
/// as its widest cell, numbers right-aligned. [`fit_table`] lays out all its rows with it;
/// `mtl sql` lays out its first page and streams the rest.
pub struct Columns {
    widths: Vec<usize>,
    numeric: Vec<bool>,
}

impl Columns {
    /// The layout of `header` and `rows` in `width` characters (`None`: no limit).
    pub fn fit(header: &[String], rows: &[Vec<String>], width: Option<usize>) -> Columns {
        let cell_width =
            |i: usize| rows.iter().map(|r| r[i].chars().count()).chain([header[i].chars().count()]).max().unwrap_or(0);
        let mut kept = header.len();
        if let Some(width) = width {
            let mut used = 0;
            for i in 0..header.len() {
                used += cell_width(i) + if i > 0 { 2 } else { 0 };
                if used > width && i > 0 {
                    kept = i;
                    break;
                }
            }
        }
        let is_number = |cell: &String| cell.parse::<f64>().is_ok() || cell == "-" || cell.contains('±');
        Columns {
            widths: (0..kept).map(cell_width).collect(),
            numeric: (0..kept).map(|i| rows.iter().all(|r| is_number(&r[i]))).collect(),
        }
    }

    /// One row, its cells padded to the columns kept (the others left out).
    pub fn line(&self, cells: &[String]) -> String {
        let parts: Vec<String> = cells
            .iter()
            .zip(self.widths.iter().zip(&self.numeric))
            .map(|(c, (&w, &numeric))| if numeric { format!("{c:>w$}") } else { format!("{c:<w$}") })
            .collect();
        parts.join("  ").trim_end().to_string()
    }

    /// The line of dashes under the header.
    pub fn rule(&self) -> String {
        self.line(&self.widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>())
    }

    /// Whether every column of `header` fits.
    pub fn fits_all(&self, header: &[String]) -> bool {
        self.widths.len() == header.len()
    }

    /// What says which columns did not fit, if any did not.
    pub fn left_out(&self, header: &[String]) -> Option<String> {
        let kept = self.widths.len();
        (kept < header.len()).then(|| {
            format!(
                "({} more column(s) do not fit the terminal: {}; use --format csv or json for every column)",
                header.len() - kept,
                header[kept..].join(", ")
            )
        })
    }
}

/// One value of a listing, rendered once per format: the table rounds measured numbers and
/// shows a missing value as `-`; CSV writes a missing value as an empty cell and JSON as
/// `null`; both carry every number at full precision (Rust's shortest round-trip `f64`
/// formatting) and integers without a fraction.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// No value (a setting a run does not have, a metric it did not record).
    Missing,
    /// An integer: ids, counts, epochs, integral settings.
    Int(i64),
    /// A number as it was given (a setting such as `lr`): in full in every format.
    Num(f64),
    /// A measured number (a metric): rounded to 4 decimals in tables, in full elsewhere.
    Metric(f64),
    /// Text.
    Text(String),
}

/// The largest integer every `f64` below it represents exactly (2^53).
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

impl Cell {
    /// A setting: integral numbers within ±2^53 become [`Cell::Int`] (`batch_size = 64`,
    /// not `64.0`), other numbers [`Cell::Num`].
    pub fn param(value: Option<&ParamValue>) -> Cell {
        match value {
            None => Cell::Missing,
            Some(ParamValue::Text(text)) => Cell::Text(text.clone()),
            Some(ParamValue::Num(x)) if x.fract() == 0.0 && x.abs() <= EXACT_INTEGER_LIMIT => Cell::Int(*x as i64),
            Some(ParamValue::Num(x)) => Cell::Num(*x),
        }
    }

    /// A metric value, if there is one.
    pub fn metric(value: Option<f64>) -> Cell {
        value.map_or(Cell::Missing, Cell::Metric)
    }

    /// Text, missing when `None`.
    pub fn text(value: Option<&str>) -> Cell {
        value.map_or(Cell::Missing, |t| Cell::Text(t.to_string()))
    }

    /// For a table: `-` when missing, metrics with 4 decimals.
    pub fn table(&self) -> String {
        match self {
            Cell::Missing => "-".into(),
            Cell::Metric(x) => format!("{x:.4}"),
            other => other.csv(),
        }
    }

    /// For CSV: empty when missing, numbers in full.
    pub fn csv(&self) -> String {
        match self {
            Cell::Missing => String::new(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(x) | Cell::Metric(x) => x.to_string(),
            Cell::Text(text) => text.clone(),
        }
    }

    /// For JSON: `null` when missing (and for a number JSON cannot hold: NaN, ±∞).
    pub fn json(&self) -> serde_json::Value {
        match self {
            Cell::Missing => serde_json::Value::Null,
            Cell::Int(n) => (*n).into(),
            Cell::Num(x) | Cell::Metric(x) => {
                serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into)
            }
            Cell::Text(text) => text.clone().into(),
        }
    }
}

/// A table of cells (see [`table`]).
pub fn cells_table(header: &[String], rows: &[Vec<Cell>]) -> String {
    table(header, &rows.iter().map(|r| r.iter().map(Cell::table).collect()).collect::<Vec<_>>())
}

/// CSV of cells (see [`csv`]).
pub fn cells_csv(header: &[String], rows: &[Vec<Cell>]) -> String {
    csv(header, &rows.iter().map(|r| r.iter().map(Cell::csv).collect()).collect::<Vec<_>>())
}

/// JSON objects of cells, one per row, keyed by the header (see [`Cell::json`]).
pub fn cells_json(header: &[String], rows: &[Vec<Cell>]) -> Vec<serde_json::Value> {
    let object = |row: &Vec<Cell>| header.iter().cloned().zip(row.iter().map(Cell::json)).collect();
    rows.iter().map(|row| serde_json::Value::Object(object(row))).collect()
}

/// RFC 4180 CSV with a header row, written by `csv::Writer` (fields with commas, quotes or
/// line ends are quoted).
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        // Writing to memory fails only on rows of unequal length, which listings never build.
        let _ = writer.write_record(row);
    }
    String::from_utf8_lossy(&writer.into_inner().unwrap_or_default()).into_owned()
}

/// One CSV record with its line end, for output that is streamed a row at a time.
pub fn csv_record<I, T>(cells: I) -> String
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    // A small buffer: the writer lives for one row.
    let mut writer = csv::WriterBuilder::new().buffer_capacity(256).from_writer(Vec::new());
    let _ = writer.write_record(cells);
    String::from_utf8_lossy(&writer.into_inner().unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_control_characters_as_escapes() {
        let out = fit_table(&["name".into()], &[vec!["a\u{1b}[31mb\n".into()]], None);
        assert!(!out.contains(['\u{1b}', '\u{7}']), "{out:?}");
        assert!(out.contains("a\\u{1b}[31mb\\n"), "{out}");
    }

    #[test]
    fn a_cell_is_rendered_once_per_format() {
        let num = |x: f64| Cell::param(Some(&ParamValue::Num(x)));
        // (cell, table, CSV, JSON)
        let cases = [
            (Cell::Missing, "-", "", "null"),
            (num(64.0), "64", "64", "64"),
            (num(0.01), "0.01", "0.01", "0.01"),
            (num(2f64.powi(53) * 2.0), "18014398509481984", "18014398509481984", "1.8014398509481984e+16"),
            (Cell::metric(Some(0.71875)), "0.7188", "0.71875", "0.71875"),
            (Cell::metric(Some(0.1 + 0.2)), "0.3000", "0.30000000000000004", "0.30000000000000004"),
            (Cell::metric(Some(f64::NAN)), "NaN", "NaN", "null"),
            (Cell::text(Some("hard")), "hard", "hard", "\"hard\""),
        ];
        for (cell, table, csv, json) in cases {
            assert_eq!((cell.table().as_str(), cell.csv().as_str()), (table, csv), "{cell:?}");
            assert_eq!(cell.json().to_string(), json, "{cell:?}");
        }
        assert_eq!(num(-3.0), Cell::Int(-3));
    }

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

    #[test]
    fn columns_that_do_not_fit_are_left_out_and_named() {
        let header: Vec<String> = ["name", "acc", "loss"].map(String::from).to_vec();
        let rows = vec![["single-task", "0.75", "0.5"].map(String::from).to_vec()];
        // name 11 + 2 + acc 4 = 17 fits in 20; + 2 + loss 4 = 23 does not.
        let out = fit_table(&header, &rows, Some(20));
        assert!(out.starts_with("name          acc\n"), "{out}");
        assert!(out.contains("(1 more column(s) do not fit the terminal: loss;"), "{out}");
        assert_eq!(fit_table(&header, &rows, Some(23)), fit_table(&header, &rows, None));
        // The first column always stays.
        assert!(fit_table(&header, &rows, Some(3)).starts_with("name"));
    }

    #[test]
    fn columns_with_one_value_go_before_the_ones_that_tell_rows_apart() {
        let header: Vec<String> = ["id", "experiment", "lr", "shapes.acc", "reviews.acc"].map(String::from).to_vec();
        let rows: Vec<Vec<String>> = vec![
            ["1", "quickstart", "0.01", "0.77", "0.91"].map(String::from).to_vec(),
            ["2", "quickstart", "0.01", "0.47", "0.92"].map(String::from).to_vec(),
        ];
        // Everything: 2+2+10+2+4+2+10+2+11 = 45; without the two constant columns: 29.
        let out = fit_table(&header, &rows, Some(30));
        assert!(out.starts_with("id  shapes.acc  reviews.acc\n"), "{out}");
        assert!(out.contains("(the same in every row, not shown: experiment=quickstart, lr=0.01)"), "{out}");
        assert_eq!(
            fit_table(&header, &rows, Some(45)),
            fit_table(&header, &rows, None),
            "nothing dropped when it fits"
        );
    }
}
