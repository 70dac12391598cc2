//! `mtl data inspect`: recognise a data set's format and summarise it —
//! counts per split and class, image size or text length, and problems met.

use std::path::{Path, PathBuf};

use crate::files::{self, Expected};
use crate::formats::{images, text};
use crate::{DataError, LabeledImages, LabeledTexts, LoadReport, Sourced};

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
    /// CSV with a header, columns `text` and `label`.
    Csv,
    /// TSV with a header, columns `text` and `label`.
    Tsv,
    /// JSON lines with fields `text` and `label`.
    Jsonl,
}

impl Format {
    /// Every format, with the name the experiment file uses.
    pub const ALL: [(Format, &'static str); 8] = [
        (Format::MnistIdx, "mnist-idx"),
        (Format::Cifar, "cifar"),
        (Format::ImageFolder, "image-folder"),
        (Format::AclImdb, "aclimdb"),
        (Format::TextLines, "text-lines"),
        (Format::Csv, "csv"),
        (Format::Tsv, "tsv"),
        (Format::Jsonl, "jsonl"),
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
    /// Problems: skipped files, non-UTF-8 files, replaced bytes, empty classes, a single class, empty texts.
    pub problems: Vec<String>,
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
            "bin" => Format::Cifar,
            "gz" | "tgz" | "tar" if name.contains("imdb") => Format::AclImdb,
            _ => return Err(DataError::invalid(path, "cannot tell the format of this file; pass --as FORMAT")),
        });
    }
    let entries: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| DataError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let has = |pred: &dyn Fn(&str) -> bool| entries.iter().any(|e| pred(e));
    if has(&|e| e.contains("-idx3-ubyte")) {
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
        Err(DataError::invalid(path, "cannot tell the format of this folder; pass --as FORMAT"))
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
    // Before any reader opens it: a FIFO would block, a device would never end.
    files::check_kind(path, Expected::FileOrFolder)?;
    let format = match format {
        Some(f) => f,
        None => detect(path)?,
    };
    let image_options =
        images::ImageFolderOptions { channels: 3, height: 32, width: 32, on_unreadable: images::Unreadable::Skip };
    let columns = |delimiter| text::DelimitedOptions {
        delimiter,
        has_header: true,
        text_column: text::Column::Name("text".into()),
        label_column: text::Column::Name("label".into()),
    };
    match format {
        Format::MnistIdx => Ok(summarise_images(path, format, images::idx_dir(path)?)),
        Format::Cifar => Ok(summarise_images(path, format, images::cifar(path, images::CifarLabels::Fine)?)),
        Format::ImageFolder => {
            let mut inspection = summarise_images(path, format, images::image_folder(path, &image_options)?);
            // Images are resized to read them; their own sizes vary.
            inspection.splits.iter_mut().for_each(|s| s.image_shape = None);
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
        Format::Csv => Ok(summarise_texts(path, format, text::delimited(path, &columns(b','))?)),
        Format::Tsv => Ok(summarise_texts(path, format, text::delimited(path, &columns(b'\t'))?)),
        Format::Jsonl => Ok(summarise_texts(path, format, text::jsonl(path, "text", "label")?)),
    }
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
    let files_read = sourced.report.files_read;
    Inspection { path: path.into(), format, class_names: sourced.class_names, splits, files_read, problems }
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
    let files_read = sourced.report.files_read;
    Inspection { path: path.into(), format, class_names: sourced.class_names, splits, files_read, problems }
}
