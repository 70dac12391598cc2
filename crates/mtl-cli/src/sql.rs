//! `mtl sql`: one read-only SQL statement against the results database.

use std::path::PathBuf;
use std::process::ExitCode;

use mtl_store::{SqlValue, Store};
use serde_json::{Map, Value};

use crate::output::{self, Format};

#[derive(clap::Args)]
pub struct SqlArgs {
    /// One SQL statement, e.g. "SELECT strategy, AVG(\"digits.test.accuracy\") FROM runs_wide GROUP BY 1".
    /// Views: runs_wide (one row per run: fields, provenance, a column per setting and per
    /// final metric), metric_points, final_metrics, best_metrics, settings; tables: runs,
    /// params, metrics, diagnostics, artifacts, experiments. The database is opened
    /// read-only: statements that would write are refused.
    query: String,
    /// The results database.
    #[arg(long, default_value = "mtl.db")]
    db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn sql(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open_read_only(&args.db)?;
    if store.schema_version()? < mtl_store::SCHEMA_VERSION {
        // An older database is brought to this build's schema (and views) first.
        drop(Store::open_existing(&args.db)?);
        store = Store::open_read_only(&args.db)?;
    }
    let result = store.query(&args.query)?;
    let cells = |row: &[SqlValue]| row.iter().map(SqlValue::to_string).collect::<Vec<_>>();
    let out = match args.format {
        Format::Table => {
            let rows: Vec<Vec<String>> = result.rows.iter().map(|r| cells(r)).collect();
            output::table(&result.columns, &rows)
        }
        Format::Csv => output::csv(&result.columns, &result.rows.iter().map(|r| cells(r)).collect::<Vec<_>>()),
        Format::Json => {
            let rows: Vec<Value> = result
                .rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = result
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| (c.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
                        .collect();
                    Value::Object(object)
                })
                .collect();
            serde_json::to_string_pretty(&rows)? + "\n"
        }
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
