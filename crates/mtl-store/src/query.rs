//! Users' own SQL (`mtl sql`): one read-only statement, its rows handed over one at a
//! time so that a result of any size goes out in bounded memory.
//!
//! ```no_run
//! # let store = mtl_store::Store::open_read_only("mtl.db".as_ref())?;
//! let summary = store.query_each("SELECT run_id, status FROM runs", Some(10), |columns, row| {
//!     println!("{columns:?} {row:?}");
//!     Ok::<(), mtl_store::StoreError>(())
//! })?;
//! assert!(summary.rows <= 10);
//! # Ok::<(), mtl_store::StoreError>(())
//! ```

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::{sqlite_err, Result, Store, StoreError};

/// A value in the result of [`Store::query`].
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// A blob, shown by its length: `<blob 12 bytes>`, in JSON `{"blob_bytes": 12}` (a bare
    /// number could not be told from an integer).
    Blob(usize),
}

impl std::fmt::Display for SqlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlValue::Null => Ok(()),
            SqlValue::Integer(x) => write!(f, "{x}"),
            SqlValue::Real(x) => write!(f, "{x}"),
            SqlValue::Text(t) => f.write_str(t),
            SqlValue::Blob(n) => write!(f, "<blob {n} bytes>"),
        }
    }
}

impl Serialize for SqlValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SqlValue::Null => serializer.serialize_unit(),
            SqlValue::Integer(x) => serializer.serialize_i64(*x),
            SqlValue::Real(x) => serializer.serialize_f64(*x),
            SqlValue::Text(t) => serializer.serialize_str(t),
            SqlValue::Blob(n) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("blob_bytes", n)?;
                map.end()
            }
        }
    }
}

/// The columns and rows of a query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<SqlValue>>,
}

/// What [`Store::query_each`] went through.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySummary {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows handed over.
    pub rows: u64,
    /// Whether the limit stopped it before the last row.
    pub more: bool,
}

/// PRAGMAs that only read when given no value, though SQLite does not call them
/// read-only (`PRAGMA journal_mode` could switch the mode, so SQLite marks it writing).
const READING_PRAGMAS: &[&str] = &["journal_mode", "locking_mode", "journal_size_limit", "wal_autocheckpoint"];

impl Store {
    /// Runs one SQL statement and returns its column names and rows (all in memory:
    /// [`Store::query_each`] streams them). Refused like `query_each`.
    pub fn query(&self, sql: &str) -> Result<QueryResult> {
        let mut rows = Vec::new();
        let summary = self.query_each(sql, None, |_, row| {
            rows.push(row.to_vec());
            Ok::<(), StoreError>(())
        })?;
        Ok(QueryResult { columns: summary.columns, rows })
    }

    /// Runs one SQL statement and calls `each_row` with the column names and each row as
    /// SQLite produces it, at most `limit` rows; an error from `each_row` stops it. A
    /// statement that would write is refused before it runs ([`StoreError::WriteRefused`];
    /// a PRAGMA that only reads, such as `PRAGMA journal_mode`, is not); on a connection
    /// from [`Store::open_read_only`] SQLite would refuse it anyway.
    pub fn query_each<E: From<StoreError>>(
        &self,
        sql: &str,
        limit: Option<u64>,
        mut each_row: impl FnMut(&[String], &[SqlValue]) -> Result<(), E>,
    ) -> Result<QuerySummary, E> {
        let bad = |e| self.bad_query(e);
        let mut stmt = self.conn.prepare(sql).map_err(bad)?;
        if !stmt.readonly() && !is_reading_pragma(sql) {
            return Err(StoreError::WriteRefused { path: self.path.clone(), statement: sql.trim().to_string() }.into());
        }
        let columns: Vec<String> = stmt.column_names().map(String::from).collect();
        let mut cursor = stmt.query([]).map_err(bad)?;
        let mut values = Vec::with_capacity(columns.len());
        let mut rows = 0;
        while let Some(row) = cursor.next().map_err(bad)? {
            if limit.is_some_and(|limit| rows >= limit) {
                return Ok(QuerySummary { columns, rows, more: true });
            }
            values.clear();
            for i in 0..columns.len() {
                values.push(match row.get_ref(i).map_err(bad)? {
                    rusqlite::types::ValueRef::Null => SqlValue::Null,
                    rusqlite::types::ValueRef::Integer(x) => SqlValue::Integer(x),
                    rusqlite::types::ValueRef::Real(x) => SqlValue::Real(x),
                    rusqlite::types::ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    rusqlite::types::ValueRef::Blob(b) => SqlValue::Blob(b.len()),
                });
            }
            each_row(&columns, &values)?;
            rows += 1;
        }
        Ok(QuerySummary { columns, rows, more: false })
    }

    /// SQLite's complaint about a user's statement, as [`StoreError::BadQuery`].
    fn bad_query(&self, e: rusqlite::Error) -> StoreError {
        let path = self.path.clone();
        match e {
            rusqlite::Error::SqliteFailure(f, Some(message)) if f.code != rusqlite::ErrorCode::DatabaseBusy => {
                StoreError::BadQuery { path, message }
            }
            rusqlite::Error::SqlInputError { msg, offset, .. } => {
                StoreError::BadQuery { path, message: format!("{msg} (at character {offset})") }
            }
            rusqlite::Error::MultipleStatement => {
                StoreError::BadQuery { path, message: "one statement at a time".into() }
            }
            rusqlite::Error::Empty => StoreError::BadQuery { path, message: "no statement".into() },
            other => sqlite_err(&path, other),
        }
    }
}

/// Whether `sql` is `PRAGMA [schema.]name` for a name of [`READING_PRAGMAS`], with no value.
fn is_reading_pragma(sql: &str) -> bool {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let Some(keyword) = sql.get(..6) else { return false };
    if !keyword.eq_ignore_ascii_case("pragma") {
        return false;
    }
    let rest = &sql[6..];
    if !rest.starts_with(char::is_whitespace) {
        return false;
    }
    let rest = rest.trim();
    let name = rest.rsplit_once('.').map_or(rest, |(_, name)| name).trim();
    READING_PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pragmas_without_a_value_count_as_reading() {
        let cases = [
            ("PRAGMA journal_mode", true),
            ("pragma main.journal_mode;", true),
            ("  PRAGMA  Journal_Mode ; ", true),
            ("PRAGMA journal_mode = DELETE", false),
            ("PRAGMA journal_mode(DELETE)", false),
            ("PRAGMA main.journal_mode=OFF", false),
            ("PRAGMA wal_checkpoint", false),
            ("PRAGMAjournal_mode", false),
            ("SELECT 1", false),
        ];
        for (sql, reading) in cases {
            assert_eq!(is_reading_pragma(sql), reading, "{sql}");
        }
    }

    #[test]
    fn blobs_show_as_their_length_distinct_from_integers() {
        let values = [SqlValue::Blob(12), SqlValue::Integer(12), SqlValue::Null];
        assert_eq!(serde_json::to_string(&values).expect("json"), r#"[{"blob_bytes":12},12,null]"#);
        assert_eq!(SqlValue::Blob(12).to_string(), "<blob 12 bytes>");
    }
}
