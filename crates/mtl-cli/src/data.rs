//! `mtl data inspect`: what a data set holds, before an experiment uses it.

use std::path::PathBuf;
use std::process::ExitCode;

use mtl_data::inspect::table::{ColumnKind, ColumnProfile};
use mtl_data::inspect::{inspect_with, Format as DataFormat, InspectOptions, Inspection};
use serde_json::json;

use crate::output::{self, Format};
use crate::BadInput;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Recognise a data set's format and print counts per split and class,
    /// image size or text length, and the problems found.
    ///
    /// Formats: mnist-idx (a folder of IDX files), cifar, image-folder,
    /// aclimdb (folder or .tar.gz), text-lines (name.pos, name.neg, … in one folder),
    /// prefixed-lines (`LABEL text` per line: TREC's .label files, fastText), csv, tsv (a
    /// header row), jsonl, celeba (img_align_celeba/ with its two tables), nyuv2 (LibMTL's
    /// NYUv2 or Cityscapes .npy folders: files per folder, pixels per class, depth range,
    /// invalid pixels), image-masks ([train/ val/ test/] images/ with masks/, depth/ and/or
    /// normals/: image sizes, missing target files, pixels per mask value, palette or
    /// grayscale masks, raw depth range, unknown normals), qm9 (gdb9.sdf with gdb9.sdf.csv: molecules, atoms per
    /// element and per molecule, bonds per type, each target's range); and table (`--data-format table`: every column of a CSV or TSV
    /// file profiled as numeric, binary or categorical, to choose a table task's columns).
    /// Their text and label columns (fields) are `text` and `label`, else guessed from
    /// their names and values (saying so), else as given by --text-column and --label-column.
    Inspect(InspectArgs),
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The file or folder.
    path: PathBuf,
    /// Read it as this data format (the experiment file's `data.format`) instead of
    /// guessing from names and layout. `--format` is the output's format, as in listings.
    #[arg(long = "data-format", alias = "as", value_name = "FORMAT")]
    data_format: Option<String>,
    /// CSV, TSV, JSONL: the column (field) holding the text (the file's `text_column`/`text_field`).
    #[arg(long, value_name = "NAME")]
    text_column: Option<String>,
    /// CSV, TSV, JSONL: the column (field) holding the label (`label_column`/`label_field`).
    #[arg(long, value_name = "NAME")]
    label_column: Option<String>,
    /// CSV, TSV: the separator, one character instead of `,` or a tab (the file's `delimiter`).
    #[arg(long, value_name = "CHAR")]
    delimiter: Option<String>,
    /// CSV, TSV: `false` reads `"` as an ordinary character, for files that do not quote
    /// (the file's `quoting`).
    #[arg(long, value_name = "BOOL")]
    quoting: Option<bool>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn data(command: DataCommand) -> anyhow::Result<ExitCode> {
    let DataCommand::Inspect(args) = command;
    let format = match &args.data_format {
        None => None,
        Some(name) => Some(DataFormat::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = DataFormat::ALL.iter().map(|(_, n)| *n).collect();
            BadInput(format!("--data-format: unknown format {name:?}; expected one of {}", known.join(", ")))
        })?),
    };
    let columns_given = args.text_column.is_some() || args.label_column.is_some();
    let refuse_columns = |f: DataFormat| {
        BadInput(format!("--text-column and --label-column apply to csv, tsv and jsonl, not {}", f.name()))
    };
    if let Some(f) =
        format.filter(|&f| columns_given && !matches!(f, DataFormat::Csv | DataFormat::Tsv | DataFormat::Jsonl))
    {
        return Err(refuse_columns(f).into());
    }
    let delimiter = args
        .delimiter
        .as_deref()
        .map(|given| mtl_data::formats::text::parse_delimiter(given).map_err(|m| BadInput(format!("--{m}"))))
        .transpose()?;
    let reading_given = delimiter.is_some() || args.quoting.is_some();
    if let Some(f) =
        format.filter(|&f| reading_given && !matches!(f, DataFormat::Csv | DataFormat::Tsv | DataFormat::Table))
    {
        return Err(BadInput(format!("--delimiter and --quoting apply to csv, tsv and table, not {}", f.name())).into());
    }
    let options = InspectOptions {
        format,
        text_column: args.text_column,
        label_column: args.label_column,
        delimiter,
        quoting: args.quoting,
    };
    let inspection = inspect_with(&args.path, &options)?;
    if columns_given && inspection.columns.is_none() {
        return Err(refuse_columns(inspection.format).into());
    }
    if reading_given && !matches!(inspection.format, DataFormat::Csv | DataFormat::Tsv | DataFormat::Table) {
        let message =
            format!("--delimiter and --quoting apply to csv, tsv and table, not {}", inspection.format.name());
        return Err(BadInput(message).into());
    }
    // Guesses and notes go to stderr, so that CSV and JSON on stdout stay clean.
    for line in notes(&inspection) {
        note!("{line}");
    }
    match args.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&as_json(&inspection))?),
        Format::Table | Format::Csv => out!("{}", as_text(&inspection, args.format)),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn as_json(i: &Inspection) -> serde_json::Value {
    let splits: Vec<_> = i
        .splits
        .iter()
        .map(|s| {
            let per_class: serde_json::Map<String, serde_json::Value> =
                i.class_names.iter().zip(&s.per_class).map(|(c, n)| (c.clone(), json!(n))).collect();
            json!({
                "name": s.name,
                "count": s.count,
                "per_class": per_class,
                "image_shape": s.image_shape.map(|(c, h, w)| json!({ "channels": c, "height": h, "width": w })),
                "text_tokens": s.text_lengths.map(|l| json!({ "min": l.min, "median": l.median, "mean": l.mean, "max": l.max })),
            })
        })
        .collect();
    json!({
        "path": i.path,
        "format": i.format.name(),
        "classes": i.class_names,
        "files_read": i.files_read,
        "splits": splits,
        "problems": i.problems,
        "columns": i.columns.as_ref().map(|c| json!({
            "all": c.all, "text": c.text, "label": c.label,
            "text_guessed": c.text_guessed, "label_guessed": c.label_guessed,
        })),
        "notes": i.notes,
        "table_columns": i.table_columns.as_ref().map(|columns| columns.iter().map(column_json).collect::<Vec<_>>()),
    })
}

fn column_json(c: &ColumnProfile) -> serde_json::Value {
    let kind = match c.kind {
        ColumnKind::Numeric { min, max, mean } => json!({ "kind": "numeric", "min": min, "max": max, "mean": mean }),
        ColumnKind::Binary { ones } => json!({ "kind": "binary", "ones": ones }),
        ColumnKind::Categorical => json!({ "kind": "categorical" }),
    };
    let top: Vec<_> = c.top.iter().map(|(value, count)| json!({ "value": value, "count": count })).collect();
    json!({ "name": c.name, "holds": kind, "distinct": c.distinct, "top": top, "bad_cells": c.bad_cells.0 })
}

/// A table's columns as rows: name, what it holds, and its values.
fn column_rows(columns: &[ColumnProfile]) -> Vec<Vec<String>> {
    let top = |c: &ColumnProfile| {
        let shown: Vec<String> = c.top.iter().map(|(v, n)| format!("{:?} {n}", output::printable(v))).collect();
        shown.join(", ")
    };
    columns
        .iter()
        .map(|c| {
            let (holds, values) = match c.kind {
                ColumnKind::Numeric { min, max, mean } => {
                    let bad =
                        if c.bad_cells.0 > 0 { format!(", {} not numbers", c.bad_cells.0) } else { String::new() };
                    ("numeric", format!("{min:.4} to {max:.4}, mean {mean:.4}{bad}"))
                }
                ColumnKind::Binary { ones } => ("binary", format!("{ones} ones")),
                ColumnKind::Categorical => ("categorical", format!("{} distinct: {}", c.distinct, top(c))),
            };
            vec![output::printable(&c.name).into_owned(), holds.into(), values]
        })
        .collect()
}

/// What the inspection chose or noticed that the user should know: guessed columns and notes.
fn notes(i: &Inspection) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(c) = &i.columns {
        if c.text_guessed || c.label_guessed {
            let all: Vec<String> = c.all.iter().map(|n| format!("{:?}", output::printable(n))).collect();
            let guessed = match (c.text_guessed, c.label_guessed) {
                (true, true) => "guessed both",
                (true, false) => "guessed the text column",
                _ => "guessed the label column",
            };
            lines.push(format!(
                "columns {}: text {:?}, label {:?} ({guessed}; choose with --text-column and --label-column)",
                all.join(", "),
                output::printable(&c.text),
                output::printable(&c.label),
            ));
        }
    }
    lines.extend(i.notes.iter().cloned());
    lines
}

fn as_text(i: &Inspection, format: Format) -> String {
    let mut header: Vec<String> = vec!["split".into(), "examples".into()];
    header.extend(i.class_names.iter().cloned());
    let rows: Vec<Vec<String>> = i
        .splits
        .iter()
        .map(|s| {
            let mut row = vec![s.name.clone(), s.count.to_string()];
            row.extend(s.per_class.iter().map(usize::to_string));
            row
        })
        .collect();
    if format == Format::Csv {
        return output::csv(&header, &rows);
    }
    let mut out = format!("{}: {} ({} files read)\n\n", i.path.display(), i.format.name(), i.files_read);
    out += &output::table(&header, &rows);
    if let Some(columns) = &i.table_columns {
        out += "\n";
        out += &output::table(&["column".into(), "holds".into(), "values".into()], &column_rows(columns));
        out += "numeric: features or regression targets; binary: multi-label columns or a two-class label_column; \
                categorical: one-hot features or a label_column\n";
    }
    for s in &i.splits {
        if let Some((c, h, w)) = s.image_shape {
            out += &format!("{}: images {c}×{h}×{w}\n", s.name);
        }
        if let Some(l) = s.text_lengths {
            out += &format!(
                "{}: tokens per text min {}, median {}, mean {:.1}, max {}\n",
                s.name, l.min, l.median, l.mean, l.max
            );
        }
    }
    if i.problems.is_empty() {
        out += "problems: none\n";
    } else {
        out += "problems:\n";
        for p in &i.problems {
            out += &format!("  - {p}\n");
        }
    }
    out
}
