//! `mtl sql`: one read-only SQL statement against the results database, its rows written
//! as SQLite produces them, so that a result of any size goes out in bounded memory.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mtl_store::{SqlValue, Store};
use serde_json::{Map, Value};

use crate::output::{self, Cell, Format};
use crate::terminal::OutputFailed;

/// Table output lays out its columns from this many first rows, then streams the rest.
const TABLE_PAGE_ROWS: usize = 1000;

/// Buffered rows go out at least this often, so that a slow query shows what it has.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

#[derive(clap::Args)]
#[command(after_help = "Views (start here):
  runs_wide       one row per run: id, experiment, status, provenance, a column per setting
                  and one per metric of its result epoch, named \"task.split.metric\"
  result_metrics  each run's metrics at its result epoch (its experiment's result_epoch rule)
  metric_points   every metric point, with its experiment, run and status
  final_metrics   each run's last epoch;  best_metrics: its best validation epoch
  settings        one row per run and setting (num or text)
Tables: experiments, runs, params, metrics (run, epoch, task, split, metric, value),
diagnostics, artifacts, blobs, tags, notes (runs.archived_at marks archived runs, which every
view includes).  PRAGMA table_info(runs_wide) lists a table's columns.

Read-only: a statement that would write is refused (exit 2) and nothing changes; PRAGMAs that only
read are allowed. Rows are written as they come (--limit N stops after N); table output lays out its
columns from the first 1,000 rows. Blobs show as <blob N bytes> (JSON: {\"blob_bytes\": N}).

Example: mtl sql --format csv 'SELECT strategy, lambda, AVG(\"shapes.test.accuracy\") FROM runs_wide GROUP BY 1, 2'")]
pub struct SqlArgs {
    /// One SQLite statement (SELECT, WITH or a PRAGMA that reads); quote column names
    /// that contain dots: "shapes.test.accuracy".
    query: String,
    /// The results database.
    #[arg(long, env = "MTL_DB", default_value = "mtl.db")]
    db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write at most N rows (stderr says when the query had more).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

pub fn sql(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open_read_only(&args.db)?;
    if store.schema_version()? < mtl_store::SCHEMA_VERSION {
        // An older database is brought to this build's schema (and views) first.
        drop(Store::open_existing(&args.db)?);
        store = Store::open_read_only(&args.db)?;
    }
    let width = if args.format == Format::Table { output::terminal_width() } else { None };
    let mut rows = RowWriter::new(std::io::stdout().lock(), args.format, width);
    let summary = store.query_each(&args.query, args.limit, |columns, values| {
        rows.row(columns, values).map_err(anyhow::Error::from)
    })?;
    rows.finish(&summary.columns)?;
    if summary.more {
        note!("showed the first {} rows (--limit); the query has more", summary.rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes rows in one format as they come: CSV and JSON at once, a table after its first
/// page (which sets the columns' widths).
struct RowWriter<W: Write> {
    out: std::io::BufWriter<W>,
    format: Format,
    /// The terminal's width, for tables.
    width: Option<usize>,
    rows_written: u64,
    last_flush: Instant,
    /// Table rows not yet written: the first page, until its layout is known.
    page: Vec<Vec<String>>,
    layout: Option<output::Columns>,
}

impl<W: Write> RowWriter<W> {
    fn new(out: W, format: Format, width: Option<usize>) -> RowWriter<W> {
        RowWriter {
            out: std::io::BufWriter::with_capacity(64 * 1024, out),
            format,
            width,
            rows_written: 0,
            last_flush: Instant::now(),
            page: Vec::new(),
            layout: None,
        }
    }

    fn row(&mut self, columns: &[String], values: &[SqlValue]) -> Result<(), OutputFailed> {
        let first = self.rows_written == 0;
        match self.format {
            Format::Csv => {
                if first {
                    self.out.write_all(output::csv_record(columns).as_bytes()).map_err(OutputFailed)?;
                }
                let record = output::csv_record(values.iter().map(|v| cell(v).csv()));
                self.out.write_all(record.as_bytes()).map_err(OutputFailed)?;
            }
            Format::Json => {
                let object: Map<String, Value> = columns
                    .iter()
                    .zip(values)
                    .map(|(c, v)| (c.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
                    .collect();
                let pretty = serde_json::to_string_pretty(&Value::Object(object)).unwrap_or_default();
                // As serde_json would indent the whole array: each object two spaces in.
                self.out.write_all(if first { b"[\n" } else { b",\n" }).map_err(OutputFailed)?;
                for (i, line) in pretty.lines().enumerate() {
                    let end = if i == 0 { "" } else { "\n" };
                    write!(self.out, "{end}  {line}").map_err(OutputFailed)?;
                }
            }
            Format::Table => match &self.layout {
                Some(layout) => writeln!(self.out, "{}", layout.line(&table_cells(values))).map_err(OutputFailed)?,
                None => {
                    self.page.push(table_cells(values));
                    if self.page.len() == TABLE_PAGE_ROWS {
                        self.write_page(columns)?;
                    }
                }
            },
        }
        self.rows_written += 1;
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.out.flush().map_err(OutputFailed)?;
            self.last_flush = Instant::now();
        }
        Ok(())
    }

    /// Lays out the table from the page so far, and writes its header and the page.
    fn write_page(&mut self, columns: &[String]) -> Result<(), OutputFailed> {
        let layout = output::Columns::fit(columns, &self.page, self.width);
        for line in
            [layout.line(columns), layout.rule()].into_iter().chain(self.page.drain(..).map(|r| layout.line(&r)))
        {
            writeln!(self.out, "{line}").map_err(OutputFailed)?;
        }
        self.layout = Some(layout);
        Ok(())
    }

    /// Ends the output (a header alone when there was no row).
    fn finish(mut self, columns: &[String]) -> Result<(), OutputFailed> {
        let none = self.rows_written == 0;
        match self.format {
            Format::Csv if none => self.out.write_all(output::csv_record(columns).as_bytes()).map_err(OutputFailed)?,
            Format::Csv => {}
            Format::Json => self.out.write_all(if none { b"[]\n" } else { b"\n]\n" }).map_err(OutputFailed)?,
            Format::Table => {
                if self.layout.is_none() {
                    self.write_page(columns)?;
                }
                if let Some(note) = self.layout.as_ref().and_then(|l| l.left_out(columns)) {
                    writeln!(self.out, "{note}").map_err(OutputFailed)?;
                }
            }
        }
        self.out.flush().map_err(OutputFailed)
    }
}

/// A value in the one output model (CSV; JSON keeps SQLite's own types through `SqlValue`'s
/// serialization, where a blob is `{"blob_bytes": N}`).
fn cell(value: &SqlValue) -> Cell {
    match value {
        SqlValue::Null => Cell::Missing,
        SqlValue::Integer(n) => Cell::Int(*n),
        SqlValue::Real(x) => Cell::Num(*x),
        SqlValue::Text(text) => Cell::Text(text.clone()),
        SqlValue::Blob(_) => Cell::Text(value.to_string()),
    }
}

#[cfg(test)]
fn cells(values: &[SqlValue]) -> Vec<String> {
    values.iter().map(SqlValue::to_string).collect()
}

/// A row for a terminal: values as SQLite gives them, control characters as their escapes.
fn table_cells(values: &[SqlValue]) -> Vec<String> {
    values.iter().map(|v| output::printable(&v.to_string()).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(format: Format, width: Option<usize>, header: &[&str], rows: &[Vec<SqlValue>]) -> String {
        let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        let mut out = Vec::new();
        let mut writer = RowWriter::new(&mut out, format, width);
        for row in rows {
            writer.row(&header, row).expect("row");
        }
        writer.finish(&header).expect("finish");
        String::from_utf8(out).expect("utf-8")
    }

    fn sample(n: usize) -> Vec<Vec<SqlValue>> {
        (0..n)
            .map(|i| vec![SqlValue::Text(format!("run-{i}")), SqlValue::Real(i as f64 / 4.0), SqlValue::Blob(i)])
            .collect()
    }

    #[test]
    fn a_streamed_table_is_the_table_of_its_rows_when_they_fit_one_page() {
        let header = ["name", "value", "artifact"];
        for (n, width) in [(0, None), (3, None), (3, Some(14)), (TABLE_PAGE_ROWS, Some(20))] {
            let rows = sample(n);
            let as_text: Vec<Vec<String>> = rows.iter().map(|r| cells(r)).collect();
            let expected = output::fit_table(&header.map(String::from), &as_text, width);
            assert_eq!(written(Format::Table, width, &header, &rows), expected, "{n} rows, width {width:?}");
        }
    }

    #[test]
    fn rows_after_the_first_page_keep_its_columns() {
        let rows = sample(TABLE_PAGE_ROWS + 2);
        let out = written(Format::Table, None, &["name", "value", "artifact"], &rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2 + TABLE_PAGE_ROWS + 2);
        // Widths from the page: name 7 (run-999), value 6 (249.75), artifact 16.
        assert_eq!(lines[2], "run-0         0  <blob 0 bytes>");
        // run-1000 is one character wider than the page's widest name: it pushes the rest.
        assert_eq!(lines[2 + TABLE_PAGE_ROWS], "run-1000     250  <blob 1000 bytes>");
    }

    #[test]
    fn streamed_json_is_what_serde_json_writes_for_the_whole_array() {
        let rows = sample(3);
        let header = ["name", "value", "artifact"];
        let whole: Vec<Value> = rows
            .iter()
            .map(|r| {
                let object: Map<String, Value> = header
                    .iter()
                    .zip(r)
                    .map(|(c, v)| (c.to_string(), serde_json::to_value(v).expect("value")))
                    .collect();
                Value::Object(object)
            })
            .collect();
        let expected = serde_json::to_string_pretty(&whole).expect("json") + "\n";
        assert_eq!(written(Format::Json, None, &header, &rows), expected);
        assert_eq!(written(Format::Json, None, &header, &[]), "[]\n");
        assert!(expected.contains("\"artifact\": {\n      \"blob_bytes\": 2\n    }"), "{expected}");
    }

    #[test]
    fn csv_has_its_header_even_without_rows() {
        assert_eq!(written(Format::Csv, None, &["a", "b"], &[]), "a,b\n");
        let rows = [vec![SqlValue::Text("x,y".into()), SqlValue::Blob(12)]];
        assert_eq!(written(Format::Csv, None, &["a", "b"], &rows), "a,b\n\"x,y\",<blob 12 bytes>\n");
    }
}
