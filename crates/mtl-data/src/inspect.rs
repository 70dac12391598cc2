//! `mtl data inspect`: recognise a data set's format and summarise it —
//! counts per split and class, image size or text length, and problems met.

use std::path::{Path, PathBuf};

use crate::files::{self, Expected};
use crate::formats::{images, text};
use crate::{DataError, LabeledImages, LabeledTexts, LoadReport, Sourced};

pub mod dense;
pub mod masks;
pub mod molecules;
pub mod table;

/// The formats `inspect` recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A folder of IDX files.
    MnistIdx,
    /// CIFAR-10/100 binary batches (a file or a folder).
    Cifar,
    /// `root/[split/]<class>/*.png|jpg|…`.
    ImageFolder,
    /// aclImdb folders or archive.
    AclImdb,
    /// One file per class, one example per line.
    TextLines,
    /// Lines `LABEL text` (TREC, fastText), the label whole.
    PrefixedLines,
    /// CSV with a header, columns `text` and `label`.
    Csv,
    /// TSV with a header, columns `text` and `label`.
    Tsv,
    /// JSON lines with fields `text` and `label`.
    Jsonl,
    /// CSV or TSV columns profiled (numeric, binary, categorical) for a table task.
    Table,
    /// CelebA's `img_align_celeba/`, `list_attr_celeba.txt` and `list_eval_partition.txt`.
    Celeba,
    /// LibMTL's NYUv2: `train/` and `val/`, each `image/`, `label/`, `depth/`, `normal/` of `<i>.npy`.
    Nyuv2,
    /// `[split/]images/<name>.png|jpg|…` with `masks/<name>.png`, `depth/<name>.png|npy` and/or
    /// `normals/<name>.png|npy`.
    ImageMasks,
    /// QM9's raw files: `gdb9.sdf`, `gdb9.sdf.csv` and optionally `uncharacterized.txt`.
    Qm9,
}

impl Format {
    /// Every format, with the name the experiment file uses.
    pub const ALL: [(Format, &'static str); 14] = [
        (Format::MnistIdx, "mnist-idx"),
        (Format::Cifar, "cifar"),
        (Format::ImageFolder, "image-folder"),
        (Format::AclImdb, "aclimdb"),
        (Format::TextLines, "text-lines"),
        (Format::PrefixedLines, "prefixed-lines"),
        (Format::Csv, "csv"),
        (Format::Tsv, "tsv"),
        (Format::Jsonl, "jsonl"),
        (Format::Table, "table"),
        (Format::Celeba, "celeba"),
        (Format::Nyuv2, "nyuv2"),
        (Format::ImageMasks, "image-masks"),
        (Format::Qm9, "qm9"),
    ];

    /// The experiment file's name of the format.
    pub fn name(self) -> &'static str {
        Format::ALL.iter().find(|(f, _)| *f == self).map_or("?", |(_, n)| n)
    }

    /// Parses a name given by [`Format::name`].
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

/// Token-length statistics of texts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LengthStats {
    /// Shortest.
    pub min: usize,
    /// Median.
    pub median: usize,
    /// Mean.
    pub mean: f64,
    /// Longest.
    pub max: usize,
}

/// One split of an inspected data set.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitSummary {
    /// `train`, `val` or `test`.
    pub name: String,
    /// Examples.
    pub count: usize,
    /// Examples per class, indexed like the class names.
    pub per_class: Vec<usize>,
    /// `(channels, height, width)` of images.
    pub image_shape: Option<(usize, usize, usize)>,
    /// Token lengths of texts.
    pub text_lengths: Option<LengthStats>,
}

/// What `inspect` found.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// The path inspected.
    pub path: PathBuf,
    /// The format read.
    pub format: Format,
    /// Class names.
    pub class_names: Vec<String>,
    /// The splits the data has of its own.
    pub splits: Vec<SplitSummary>,
    /// Files read.
    pub files_read: usize,
    /// Problems: skipped files, non-UTF-8 files, replaced bytes, empty classes, a single class, empty texts,
    /// files beside an image folder's classes.
    pub problems: Vec<String>,
    /// CSV, TSV and JSONL: the columns (fields) found and the two read.
    pub columns: Option<TextColumns>,
    /// What is worth knowing but is no problem (an IDX folder of test files only).
    pub notes: Vec<String>,
    /// Tables: every column profiled.
    pub table_columns: Option<Vec<table::ColumnProfile>>,
}

/// How to read a data set: its format (detected when `None`) and, for CSV, TSV and
/// JSONL, the text and label columns (when `None`: `text` and `label`, else guessed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InspectOptions {
    /// The format, or `None` to detect it.
    pub format: Option<Format>,
    /// The column (JSONL: field) holding the text.
    pub text_column: Option<String>,
    /// The column (JSONL: field) holding the label.
    pub label_column: Option<String>,
    /// CSV, TSV: the separator, instead of the format's `,` or tab.
    pub delimiter: Option<u8>,
    /// CSV, TSV: `Some(false)` reads `"` as an ordinary character (the file's `quoting = false`).
    pub quoting: Option<bool>,
}

/// The columns of a CSV or TSV file (the fields of a JSONL file) and the two read.
#[derive(Clone, Debug, PartialEq)]
pub struct TextColumns {
    /// Every column, in file order (JSONL: the first object's fields, sorted).
    pub all: Vec<String>,
    /// The column read as text.
    pub text: String,
    /// The column read as label.
    pub label: String,
    /// The text column was guessed: neither given nor named `text`.
    pub text_guessed: bool,
    /// The label column was guessed: neither given nor named `label`.
    pub label_guessed: bool,
}

/// Recognises the format of `path` from its names and layout.
pub fn detect(path: &Path) -> Result<Format, DataError> {
    if !path.exists() {
        return Err(DataError::invalid(path, "no such file or directory"));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if !files::check_kind(path, Expected::FileOrFolder)? {
        return Ok(match name.rsplit('.').next().unwrap_or("") {
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "jsonl" | "ndjson" => Format::Jsonl,
            // TREC's train_5500.label and TREC_10.label.
            "label" => Format::PrefixedLines,
            "bin" => Format::Cifar,
            "gz" | "tgz" | "tar" if name.contains("imdb") => Format::AclImdb,
            _ => {
                return Err(DataError::invalid(path, "cannot tell the format of this file; pass --data-format FORMAT"))
            }
        });
    }
    let entries: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| DataError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let has = |pred: &dyn Fn(&str) -> bool| entries.iter().any(|e| pred(e));
    if molecules::is_layout(path) {
        Ok(Format::Qm9)
    } else if has(&|e| e == images::celeba::ATTRIBUTES) {
        Ok(Format::Celeba)
    } else if dense::is_layout(path) {
        Ok(Format::Nyuv2)
    } else if masks::is_layout(path) {
        Ok(Format::ImageMasks)
    } else if has(&|e| e.contains("-idx3-ubyte")) {
        Ok(Format::MnistIdx)
    } else if has(&|e| {
        e.ends_with(".bin") && (e.starts_with("data_batch") || e.starts_with("test_batch") || e == "train.bin")
    }) {
        Ok(Format::Cifar)
    } else if has(&|e| e == "aclImdb") || (path.join("train/pos").is_dir() && path.join("train/neg").is_dir()) {
        Ok(Format::AclImdb)
    } else if class_files(path, &entries).len() >= 2 {
        Ok(Format::TextLines)
    } else if entries.iter().any(|e| path.join(e).is_dir()) {
        Ok(Format::ImageFolder)
    } else {
        Err(DataError::invalid(path, "cannot tell the format of this folder; pass --data-format FORMAT"))
    }
}

/// Files of `dir` that share one stem and differ by extension (`rt-polarity.pos`, `rt-polarity.neg`).
fn class_files(dir: &Path, entries: &[String]) -> Vec<PathBuf> {
    let mut files: Vec<&String> = entries.iter().filter(|e| dir.join(e).is_file() && e.contains('.')).collect();
    files.sort();
    let stem = |e: &str| e.rsplit_once('.').map(|(s, _)| s.to_string()).unwrap_or_default();
    let first = files.first().map(|e| stem(e));
    if files.len() >= 2 && files.iter().all(|e| Some(stem(e)) == first) {
        files.iter().map(|e| dir.join(e)).collect()
    } else {
        Vec::new()
    }
}

/// Reads `path` in `format` (detected when `None`) and summarises it.
pub fn inspect(path: &Path, format: Option<Format>) -> Result<Inspection, DataError> {
    inspect_with(path, &InspectOptions { format, ..InspectOptions::default() })
}

/// Reads `path` as `options` say and summarises it.
pub fn inspect_with(path: &Path, options: &InspectOptions) -> Result<Inspection, DataError> {
    // Before any reader opens it: a FIFO would block, a device would never end.
    files::check_kind(path, Expected::FileOrFolder)?;
    let format = match options.format {
        Some(f) => f,
        None => detect(path)?,
    };
    let image_options = images::ImageFolderOptions {
        channels: 3,
        height: 32,
        width: 32,
        on_unreadable: images::Unreadable::Skip,
        fit: images::Fit::Stretch,
    };
    let delimited = |delimiter| -> Result<Inspection, DataError> {
        let (delimiter, quoting) = (options.delimiter.unwrap_or(delimiter), options.quoting.unwrap_or(true));
        let (names, sample) = delimited_sample(path, delimiter, quoting)?;
        let columns = choose_columns(path, &names, &sample, options)?;
        let read = text::DelimitedOptions {
            delimiter,
            has_header: true,
            text_columns: vec![text::Column::Name(columns.text.clone())],
            label_column: text::Column::Name(columns.label.clone()),
            quoting,
            classes: text::LabelClasses::Names,
        };
        let sourced = text::delimited(path, &read)?;
        let mut inspection = summarise_texts(path, format, sourced);
        if quoting {
            let rows = inspection.splits.first().map_or(0, |s| s.count);
            inspection.problems.extend(quotes_running_on(path, delimiter, rows)?);
        }
        Ok(Inspection { columns: Some(columns), ..inspection })
    };
    match format {
        Format::MnistIdx => {
            let mut inspection = summarise_images(path, format, images::idx_dir(path)?);
            // One pair read alone is the loader's training split (mtl run carves the others
            // from it), but t10k files are a data set's test split: say so.
            if only_t10k(path)? {
                inspection.splits.iter_mut().for_each(|s| s.name = "test".into());
                inspection.notes.push(
                    "only t10k (test) files: an experiment reading this folder carves its train and val splits \
                     from them"
                        .into(),
                );
            }
            Ok(inspection)
        }
        Format::Cifar => Ok(summarise_images(path, format, images::cifar(path, images::CifarLabels::Fine)?)),
        Format::ImageFolder => {
            let mut inspection = summarise_images(path, format, images::image_folder(path, &image_options)?);
            // Images are resized to read them; their own sizes vary.
            inspection.splits.iter_mut().for_each(|s| s.image_shape = None);
            inspection.problems.extend(stray_files(path)?);
            Ok(inspection)
        }
        Format::AclImdb => Ok(summarise_texts(path, format, text::aclimdb(path)?)),
        Format::TextLines => {
            files::check_kind(path, Expected::Folder)?;
            let entries: Vec<String> = std::fs::read_dir(path)
                .map_err(|e| DataError::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect();
            Ok(summarise_texts(path, format, text::lines_per_class(&class_files(path, &entries))?))
        }
        Format::PrefixedLines => {
            let options = text::PrefixedOptions { coarse: false, classes: text::LabelClasses::Names };
            Ok(summarise_texts(path, format, text::prefixed_lines(&text::SplitFiles::one(path), &options)?))
        }
        Format::Table => {
            let delimiter =
                options.delimiter.unwrap_or(if path.extension().is_some_and(|e| e == "tsv") { b'\t' } else { b',' });
            let (rows, columns) = table::profile(path, delimiter, options.quoting.unwrap_or(true))?;
            let split = SplitSummary {
                name: "train".into(),
                count: rows,
                per_class: Vec::new(),
                image_shape: None,
                text_lengths: None,
            };
            let inspection = Inspection::of(path, format, Vec::new(), vec![split], 1, table::problems(&columns));
            Ok(Inspection { table_columns: Some(columns), ..inspection })
        }
        Format::Celeba => {
            let images::celeba::LayoutSummary { names, splits, missing: (missing, n_missing) } =
                images::celeba::summary(path)?;
            let splits = ["train", "val", "test"].iter().zip(splits).map(|(name, (count, positives))| SplitSummary {
                name: (*name).into(),
                count,
                per_class: positives,
                image_shape: None,
                text_lengths: None,
            });
            let mut problems = Vec::new();
            if n_missing > 0 {
                problems.push(format!(
                    "{n_missing} image(s) listed in {} are not in {}/ (first: {})",
                    images::celeba::ATTRIBUTES,
                    images::celeba::IMAGES,
                    missing.join(", ")
                ));
            }
            let mut inspection = Inspection::of(path, format, names, splits.collect(), 2, problems);
            inspection.notes.push("per attribute: the images where it is present (1)".into());
            Ok(inspection)
        }
        Format::Nyuv2 => dense::inspection(path),
        Format::ImageMasks => masks::inspection(path),
        Format::Qm9 => molecules::inspection(path),
        Format::Csv => delimited(b','),
        Format::Tsv => delimited(b'\t'),
        Format::Jsonl => {
            let (names, sample) = jsonl_sample(path)?;
            let columns = choose_columns(path, &names, &sample, options)?;
            let read = text::JsonlOptions {
                text_fields: vec![columns.text.clone()],
                label_field: columns.label.clone(),
                classes: text::LabelClasses::Names,
            };
            let sourced = text::jsonl(path, &read)?;
            Ok(Inspection { columns: Some(columns), ..summarise_texts(path, format, sourced) })
        }
    }
}

/// Rows read to guess columns from their values.
const SAMPLE_ROWS: usize = 200;

/// Header names that are a text column, best first (compared without case).
const TEXT_NAMES: [&str; 11] =
    ["text", "sentence", "review", "content", "body", "document", "comment", "tweet", "message", "question", "title"];

/// Header names that are a label column, best first (compared without case).
const LABEL_NAMES: [&str; 10] =
    ["label", "labels", "class", "category", "sentiment", "polarity", "target", "y", "rating", "stars"];

/// A problem when a quoted file reads as fewer rows than it has non-blank lines after
/// its header, and read without quoting every line is a row with the header's fields:
/// then a field that opens with `"` ran on over the following lines, as in files that do
/// not quote at all (the SMS spam collection: 5,574 lines read as 5,572 messages). A
/// properly quoted file whose fields hold line breaks is not one.
fn quotes_running_on(path: &Path, delimiter: u8, rows: usize) -> Result<Option<String>, DataError> {
    let decoded = text::decode(&files::read_text(path)?);
    let lines = decoded.text.lines().filter(|line| !line.trim().is_empty()).count().saturating_sub(1);
    if rows >= lines {
        return Ok(None);
    }
    let mut plain = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(false)
        .flexible(true)
        .from_reader(decoded.text.as_bytes());
    let fields = plain.headers().map_or(0, |h| h.len());
    let mut plain_rows = 0;
    for record in plain.records() {
        match record {
            Ok(record) if record.len() == fields => plain_rows += 1,
            _ => return Ok(None),
        }
    }
    Ok((plain_rows == lines).then(|| {
        format!(
            "{lines} lines after the header read as {rows} rows: a field that opens with a quote runs on over \
             the following lines, and without quoting every line is a row; if the file does not quote, read it \
             with quoting = false (--quoting false)"
        )
    }))
}

/// The header and first [`SAMPLE_ROWS`] rows of a CSV or TSV file.
fn delimited_sample(path: &Path, delimiter: u8, quoting: bool) -> Result<(Vec<String>, Vec<Vec<String>>), DataError> {
    let bytes = files::read_text(path)?;
    let decoded = text::decode(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(quoting)
        .flexible(true)
        .from_reader(decoded.text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| DataError::invalid(path, format!("malformed delimited file: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    // A malformed row ends the sample; the reader proper reports it with its line.
    let rows = reader.records().take(SAMPLE_ROWS).map_while(Result::ok);
    Ok((header, rows.map(|r| r.iter().map(str::to_owned).collect()).collect()))
}

/// The fields of the first object of a JSONL file (sorted) and their values in its first
/// [`SAMPLE_ROWS`] objects.
fn jsonl_sample(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), DataError> {
    let bytes = files::read_text(path)?;
    let decoded = text::decode(&bytes);
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = decoded
        .text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .take(SAMPLE_ROWS)
        // A line that is not an object is skipped here; the reader proper reports it with its line.
        .filter_map(|line| match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(object)) => Some(object),
            _ => None,
        })
        .collect();
    let names: Vec<String> = objects.first().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let value = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let rows = objects.iter().map(|o| names.iter().map(|n| value(o.get(n))).collect()).collect();
    Ok((names, rows))
}

/// The text and label columns among `names`: those given, else `text` and `label`, else
/// guessed — a known name (`review`, `sentiment`, …), else from `sample`'s values: the
/// text the column with the longest values, the label the other column with the fewest
/// distinct values.
fn choose_columns(
    path: &Path,
    names: &[String],
    sample: &[Vec<String>],
    options: &InspectOptions,
) -> Result<TextColumns, DataError> {
    let listed = || names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    let position = |given: &str| {
        names
            .iter()
            .position(|n| n == given)
            .ok_or_else(|| DataError::invalid(path, format!("no column {given:?}; the columns are {}", listed())))
    };
    if names.len() < 2 {
        let message = format!("needs a text and a label column; the columns are {}", listed());
        return Err(DataError::invalid(path, message));
    }
    let by_name = |known: &[&str], not: Option<usize>| {
        known.iter().find_map(|k| (0..names.len()).find(|&i| Some(i) != not && names[i].eq_ignore_ascii_case(k)))
    };
    let cell = |row: &Vec<String>, i: usize| row.get(i).map_or("", String::as_str).trim().to_owned();
    let given_text = options.text_column.as_deref().map(position).transpose()?;
    let given_label = options.label_column.as_deref().map(position).transpose()?;
    let text = match given_text {
        Some(i) => i,
        None => by_name(&TEXT_NAMES, given_label).unwrap_or_else(|| {
            {
                let mean_len = |i: usize| sample.iter().map(|r| cell(r, i).chars().count()).sum::<usize>();
                // Longest first; the first column on ties.
                (0..names.len()).filter(|&i| Some(i) != given_label).max_by_key(|&i| (mean_len(i), usize::MAX - i))
            }
            .unwrap_or(0)
        }),
    };
    let label = match given_label {
        Some(i) => i,
        None => by_name(&LABEL_NAMES, Some(text)).unwrap_or_else(|| {
            let distinct =
                |i: usize| sample.iter().map(|r| cell(r, i)).collect::<std::collections::BTreeSet<_>>().len();
            (0..names.len()).filter(|&i| i != text).min_by_key(|&i| (distinct(i), i)).unwrap_or(0)
        }),
    };
    if text == label {
        return Err(DataError::invalid(
            path,
            format!("column {:?} cannot be both the text and the label", names[text]),
        ));
    }
    Ok(TextColumns {
        all: names.to_vec(),
        text: names[text].clone(),
        label: names[label].clone(),
        text_guessed: given_text.is_none() && names[text] != "text",
        label_guessed: given_label.is_none() && names[label] != "label",
    })
}

/// Whether the IDX folder `dir` has t10k files and no train files.
fn only_t10k(dir: &Path) -> Result<bool, DataError> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let has = |split: &str| names.iter().any(|n| n.contains(&format!("{split}-images-idx3-ubyte")));
    Ok(has("t10k") && !has("train"))
}

/// Files that lie beside an image folder's class (or split) folders: a data set has
/// none, a report folder (index.html, charts) has many.
fn stray_files(root: &Path) -> Result<Vec<String>, DataError> {
    let mut stray: Vec<String> = std::fs::read_dir(root)
        .map_err(|e| DataError::io(root, e))?
        .filter_map(|e| e.ok())
        .filter(|e| !e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    if stray.is_empty() {
        return Ok(Vec::new());
    }
    stray.sort();
    let n = stray.len();
    let shown: Vec<String> = stray.iter().take(3).map(|n| format!("{n:?}")).collect();
    let more = if n > 3 { ", …" } else { "" };
    Ok(vec![format!(
        "{n} file(s) lie beside the class folders and are not read ({}{more}): an image folder holds only \
         class folders, so this may not be a data set",
        shown.join(", ")
    )])
}

fn per_class(labels: &[u32], n_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; n_classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    counts
}

fn splits<T>(sourced: &Sourced<T>) -> Vec<(&'static str, &T)> {
    let mut out = vec![("train", &sourced.train)];
    out.extend(sourced.val.as_ref().map(|v| ("val", v)));
    out.extend(sourced.test.as_ref().map(|t| ("test", t)));
    out
}

fn problems(report: &LoadReport, splits: &[SplitSummary], class_names: &[String]) -> Vec<String> {
    let mut problems: Vec<String> =
        report.skipped.iter().map(|(path, why)| format!("skipped {}: {why}", path.display())).collect();
    if report.decoded_as_windows_1252 > 0 {
        problems.push(format!(
            "{} file(s) were not UTF-8 and were read as Windows-1252 ({} undefined byte(s) replaced)",
            report.decoded_as_windows_1252, report.replacements
        ));
    }
    for split in splits {
        for (class, &count) in class_names.iter().zip(&split.per_class) {
            if count == 0 {
                problems.push(format!("{} has no example of class {class:?}", split.name));
            }
        }
    }
    let mut with_examples = class_names
        .iter()
        .enumerate()
        .filter(|&(class, _)| splits.iter().any(|split| split.per_class.get(class).is_some_and(|&n| n > 0)));
    if let (Some((_, only)), None) = (with_examples.next(), with_examples.next()) {
        problems.push(format!("only one class has examples ({only:?}): there is nothing to tell apart"));
    }
    problems
}

fn summarise_images(path: &Path, format: Format, sourced: Sourced<LabeledImages>) -> Inspection {
    let n_classes = sourced.class_names.len();
    let splits: Vec<SplitSummary> = splits(&sourced)
        .into_iter()
        .map(|(name, images)| SplitSummary {
            name: name.into(),
            count: images.labels.len(),
            per_class: per_class(&images.labels, n_classes),
            image_shape: Some((images.channels, images.height, images.width)),
            text_lengths: None,
        })
        .collect();
    let problems = problems(&sourced.report, &splits, &sourced.class_names);
    Inspection::of(path, format, sourced.class_names, splits, sourced.report.files_read, problems)
}

fn summarise_texts(path: &Path, format: Format, sourced: Sourced<LabeledTexts>) -> Inspection {
    let n_classes = sourced.class_names.len();
    let mut empty_texts = Vec::new();
    let splits: Vec<SplitSummary> = splits(&sourced)
        .into_iter()
        .map(|(name, texts)| {
            let mut lengths: Vec<usize> = text::tokenize_all(&texts.texts).iter().map(Vec::len).collect();
            lengths.sort_unstable();
            // Sorted: the empty texts come first.
            let n_empty = lengths.iter().take_while(|&&len| len == 0).count();
            if n_empty == lengths.len() && n_empty > 0 {
                empty_texts.push(format!("all {n_empty} texts of {name} are empty (no tokens)"));
            } else if n_empty > 0 {
                empty_texts.push(format!("{n_empty} of {} texts of {name} are empty (no tokens)", lengths.len()));
            }
            let text_lengths = (!lengths.is_empty()).then(|| LengthStats {
                min: lengths[0],
                median: lengths[lengths.len() / 2],
                mean: lengths.iter().sum::<usize>() as f64 / lengths.len() as f64,
                max: lengths[lengths.len() - 1],
            });
            SplitSummary {
                name: name.into(),
                count: texts.labels.len(),
                per_class: per_class(&texts.labels, n_classes),
                image_shape: None,
                text_lengths,
            }
        })
        .collect();
    let mut problems = problems(&sourced.report, &splits, &sourced.class_names);
    problems.extend(empty_texts);
    Inspection::of(path, format, sourced.class_names, splits, sourced.report.files_read, problems)
}

impl Inspection {
    /// An inspection of `path` read as `format`, before any column guess or note.
    fn of(
        path: &Path,
        format: Format,
        class_names: Vec<String>,
        splits: Vec<SplitSummary>,
        files_read: usize,
        problems: Vec<String>,
    ) -> Inspection {
        Inspection {
            path: path.into(),
            format,
            class_names,
            splits,
            files_read,
            problems,
            columns: None,
            notes: Vec::new(),
            table_columns: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inspects `name` (written with `content`) with the given columns; returns the columns chosen.
    fn columns_of(name: &str, content: &str, text: Option<&str>, label: Option<&str>) -> Result<TextColumns, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        let options = InspectOptions {
            text_column: text.map(str::to_owned),
            label_column: label.map(str::to_owned),
            ..InspectOptions::default()
        };
        inspect_with(&path, &options).map(|i| i.columns.expect("columns")).map_err(|e| e.to_string())
    }

    #[track_caller]
    fn check(columns: Result<TextColumns, String>, expected: (&str, bool, &str, bool)) {
        let c = columns.expect("inspects");
        assert_eq!((c.text.as_str(), c.text_guessed, c.label.as_str(), c.label_guessed), expected);
    }

    #[test]
    fn columns_named_text_and_label_are_read_without_a_guess() {
        check(columns_of("a.csv", "label,text\npos,good film\nneg,bad\n", None, None), ("text", false, "label", false));
    }

    #[test]
    fn other_columns_are_guessed_by_name_then_by_value_or_taken_as_given() {
        let by_name = "id,review,sentiment\n1,a good film,pos\n2,bad,neg\n";
        check(columns_of("a.csv", by_name, None, None), ("review", true, "sentiment", true));
        check(columns_of("a.tsv", &by_name.replace(',', "\t"), None, None), ("review", true, "sentiment", true));
        // No known name: the longest values are the text, the fewest distinct values the label.
        let by_value = "n,words,kind\n1,a long sentence here,x\n2,another long one,y\n3,and more words,x\n";
        check(columns_of("b.csv", by_value, None, None), ("words", true, "kind", true));
        check(columns_of("b.csv", by_value, None, Some("n")), ("words", true, "n", false));
        check(columns_of("b.csv", by_value, Some("kind"), Some("words")), ("kind", false, "words", false));
        let message = columns_of("b.csv", by_value, Some("body"), None).unwrap_err();
        assert!(message.contains("no column \"body\"") && message.contains("\"n\", \"words\", \"kind\""), "{message}");
        let message = columns_of("c.csv", "only\nx\n", None, None).unwrap_err();
        assert!(message.contains("needs a text and a label column") && message.contains("\"only\""), "{message}");
        let message = columns_of("b.csv", by_value, Some("n"), Some("n")).unwrap_err();
        assert!(message.contains("both the text and the label"), "{message}");
    }

    #[test]
    fn jsonl_fields_are_guessed_like_columns() {
        let lines = "{\"body\": \"a fine film\", \"stars\": 5}\n{\"body\": \"dull\", \"stars\": 1}\n";
        check(columns_of("r.jsonl", lines, None, None), ("body", true, "stars", true));
    }

    /// An IDX pair of `n` 2×2 images labelled 0, 1, 0, … named `<split>-images-idx3-ubyte`.
    fn write_idx_pair(dir: &Path, split: &str, n: u8) {
        let mut images = vec![0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 2, 0, 0, 0, 2];
        images.extend(std::iter::repeat_n(7, 4 * n as usize));
        let mut labels = vec![0, 0, 8, 1, 0, 0, 0, n];
        labels.extend((0..n).map(|i| i % 2));
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).expect("write");
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), labels).expect("write");
    }

    #[test]
    fn t10k_idx_files_alone_are_the_test_split() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_idx_pair(dir.path(), "t10k", 4);
        let inspection = inspect(dir.path(), None).expect("inspects");
        let names: Vec<&str> = inspection.splits.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["test"]);
        assert!(inspection.notes[0].contains("only t10k"), "{:?}", inspection.notes);
        // With the train files too, t10k stays the test split and nothing is noted.
        write_idx_pair(dir.path(), "train", 2);
        let inspection = inspect(dir.path(), None).expect("inspects");
        let names: Vec<&str> = inspection.splits.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["train", "test"]);
        assert!(inspection.notes.is_empty());
    }

    #[test]
    fn a_report_folder_read_as_images_is_flagged_as_maybe_not_a_data_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("charts")).expect("mkdir");
        let png = image::GrayImage::from_pixel(4, 4, image::Luma([9]));
        png.save(dir.path().join("charts/loss.png")).expect("png");
        png.save(dir.path().join("accuracy.png")).expect("png");
        std::fs::write(dir.path().join("index.html"), "<html></html>").expect("write");
        let inspection = inspect(dir.path(), None).expect("inspects");
        assert_eq!(inspection.format, Format::ImageFolder);
        let stray = inspection.problems.iter().find(|p| p.contains("may not be a data set"));
        let stray = stray.unwrap_or_else(|| panic!("{:?}", inspection.problems));
        assert!(stray.starts_with("2 file(s)") && stray.contains("\"index.html\""), "{stray}");
        // A real image folder has nothing beside its class folders.
        std::fs::remove_file(dir.path().join("index.html")).expect("rm");
        std::fs::remove_file(dir.path().join("accuracy.png")).expect("rm");
        let inspection = inspect(dir.path(), None).expect("inspects");
        assert!(!inspection.problems.iter().any(|p| p.contains("may not be a data set")), "{:?}", inspection.problems);
    }

    #[test]
    fn a_quote_that_runs_on_is_a_problem_and_quoting_false_reads_every_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sms.csv");
        // Unquoted, as the SMS spam collection is: the third line's text opens with a quote.
        std::fs::write(&path, "label;text\nham;see you soon\nspam;\"Free entry now\nham;ok lar\nham;fine\n").unwrap();
        let read = |quoting| {
            let options = InspectOptions { delimiter: Some(b';'), quoting, ..InspectOptions::default() };
            inspect_with(&path, &options).expect("inspects")
        };
        let quoted = read(None);
        assert_eq!(quoted.splits[0].count, 2, "the quote swallows the lines after it");
        let expected = "4 lines after the header read as 2 rows: a field that opens with a quote runs on";
        assert!(quoted.problems.iter().any(|p| p.starts_with(expected)), "{:?}", quoted.problems);
        let plain = read(Some(false));
        assert_eq!((plain.splits[0].count, plain.problems.len()), (4, 0), "{:?}", plain.problems);
        // A properly quoted field with a line break in it is no problem.
        std::fs::write(&path, "label;text\nham;\"two\nlines\"\nspam;one line\n").unwrap();
        let proper = read(None);
        assert_eq!((proper.splits[0].count, proper.problems.len()), (2, 0), "{:?}", proper.problems);
    }
}
