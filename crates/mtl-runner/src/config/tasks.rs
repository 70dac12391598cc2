//! Tasks and their data: each `[[tasks]]` entry turned into a [`TaskSource`] with its
//! resolved [`DataSource`] (paths relative to the experiment file, splits, text options).

use std::path::{Path, PathBuf};

use mtl_data::formats::images::{CifarLabels, Fit, ImageFolderOptions, Unreadable};
use mtl_data::formats::text::{
    parse_delimiter, Column, DelimitedOptions, JsonlOptions, LabelClasses, PrefixedOptions, MAX_CLASSES,
};
use mtl_data::prepare::{Amount, Carve, Keep, SplitPolicy, TextOptions};
use mtl_data::synthetic::{ReviewsConfig, ShapesConfig};

use super::entries::{ColumnEntry, DataEntry, DelimitedEntry, ObjectiveEntry, OneOrSeveral, SizeEntry, TaskEntry};
use super::{Checker, ConfigError, Index, Key};
use crate::data::{defaults, DataSource, Digit, ImageFormat, SplitPaths, TextFormat};
use crate::plan::TaskSource;

impl Checker<'_> {
    pub(super) fn task(&self, i: usize, task: TaskEntry, earlier: &[TaskSource]) -> Result<TaskSource, ConfigError> {
        let name_path = [Key("tasks"), Index(i), Key("name")];
        // Task names become metric keys (`digits.test.accuracy`) in filters and file names.
        let valid_name = task.name.len() <= 64
            && task.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && task.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            self.fail(
                &name_path,
                format!("task name {:?} must be 1–64 letters, digits, '_' or '-', starting with a letter", task.name),
            )?;
        }
        if earlier.iter().any(|t| t.name == task.name) {
            self.fail(&name_path, format!("task name \"{}\" is used twice", task.name))?;
        }
        let at = |key| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let base = self.file.parent().unwrap_or(Path::new("."));
        let resolve = |path: &Path| if path.is_absolute() { path.to_owned() } else { base.join(path) };
        let data = match task.data {
            DataEntry::SyntheticShapes { n_train, n_val, n_test, noise, seed } => {
                let default = ShapesConfig::default();
                DataSource::SyntheticShapes {
                    config: ShapesConfig {
                        n_train: self.count(n_train, default.n_train, &at("n_train"), 1..10_000_001)?,
                        n_val: self.count(n_val, default.n_val, &at("n_val"), 1..10_000_001)?,
                        n_test: self.count(n_test, default.n_test, &at("n_test"), 1..10_000_001)?,
                        noise: self.fraction(noise, default.noise, &at("noise"), 2.0)?,
                    },
                    seed,
                }
            }
            DataEntry::SyntheticReviews { n_train, n_val, n_test, seq_len, label_noise, seed } => {
                let default = ReviewsConfig::default();
                DataSource::SyntheticReviews {
                    config: ReviewsConfig {
                        n_train: self.count(n_train, default.n_train, &at("n_train"), 1..10_000_001)?,
                        n_val: self.count(n_val, default.n_val, &at("n_val"), 1..10_000_001)?,
                        n_test: self.count(n_test, default.n_test, &at("n_test"), 1..10_000_001)?,
                        seq_len: self.count(seq_len, default.seq_len, &at("seq_len"), 16..4097)?,
                        label_noise: self.fraction(label_noise, default.label_noise, &at("label_noise"), 0.5)?,
                    },
                    seed,
                }
            }
            DataEntry::MnistIdx { path, prefix, val_size, test_size, carve, seed, n_train, n_val, n_test } => {
                DataSource::Images {
                    path: resolve(&path),
                    format: ImageFormat::Idx { prefix: self.idx_prefix(i, prefix)? },
                    split: self.split(i, val_size, test_size, carve, seed, [n_train, n_val, n_test])?,
                }
            }
            DataEntry::Multimnist {
                path,
                digit,
                val_size,
                test_size,
                carve,
                seed,
                compose_seed,
                resize,
                n_train,
                n_val,
                n_test,
            } => {
                let digit = match digit.as_str() {
                    "left" => Digit::Left,
                    "right" => Digit::Right,
                    "sum" => Digit::Sum,
                    "present" => Digit::Present,
                    other => {
                        return self.fail(
                            &at("digit"),
                            format!(
                                "digit \"{other}\" must be \"left\" or \"right\" (classification), \"sum\" (the two \
                                 digits' sum, a regression target) or \"present\" (which of 0–9 appear: multi-label)"
                            ),
                        )
                    }
                };
                DataSource::Images {
                    path: resolve(&path),
                    format: ImageFormat::MultiMnist {
                        digit,
                        composition: self.composition(i, compose_seed, resize, seed)?,
                    },
                    split: self.split(i, val_size, test_size, carve, seed, [n_train, n_val, n_test])?,
                }
            }
            DataEntry::Cifar { path, labels, val_size, carve, seed, n_train, n_val, n_test } => {
                let labels = match labels.as_deref().unwrap_or("fine") {
                    "fine" => CifarLabels::Fine,
                    "coarse" => CifarLabels::Coarse,
                    other => {
                        return self.fail(&at("labels"), format!("labels \"{other}\" must be \"fine\" or \"coarse\""))
                    }
                };
                DataSource::Images {
                    path: resolve(&path),
                    format: ImageFormat::Cifar(labels),
                    split: self.split(i, val_size, None, carve, seed, [n_train, n_val, n_test])?,
                }
            }
            DataEntry::ImageFolder {
                path,
                channels,
                height,
                width,
                on_unreadable,
                fit,
                val_size,
                test_size,
                carve,
                seed,
                n_train,
                n_val,
                n_test,
            } => {
                let channels = self.count(channels, 1, &at("channels"), 1..4)?;
                if channels == 2 {
                    return self.fail(&at("channels"), "channels must be 1 (grayscale) or 3 (RGB)");
                }
                let options = ImageFolderOptions {
                    fit: self.fit(i, fit, Fit::Stretch)?,
                    channels,
                    height: self.count(height, 28, &at("height"), 1..4097)?,
                    width: self.count(width, 28, &at("width"), 1..4097)?,
                    on_unreadable: self.on_unreadable(i, on_unreadable)?,
                };
                DataSource::Images {
                    path: resolve(&path),
                    format: ImageFormat::Folder(options),
                    split: self.split(i, val_size, test_size, carve, seed, [n_train, n_val, n_test])?,
                }
            }
            DataEntry::Aclimdb {
                path,
                max_len,
                vocab_size,
                min_freq,
                val_size,
                carve,
                seed,
                n_train,
                n_val,
                n_test,
            } => DataSource::Texts {
                path: resolve(&path),
                format: TextFormat::AclImdb,
                split: self.split(i, val_size, None, carve, seed, [n_train, n_val, n_test])?,
                options: self.text_options(i, max_len, vocab_size, min_freq)?,
            },
            DataEntry::TextLines {
                files,
                max_len,
                vocab_size,
                min_freq,
                val_size,
                test_size,
                carve,
                seed,
                n_train,
                n_val,
                n_test,
            } => {
                if files.len() < 2 {
                    return self.fail(&at("files"), "give one file per class, at least two");
                }
                let files: Vec<PathBuf> = files.iter().map(|f| resolve(f)).collect();
                DataSource::Texts {
                    path: files[0].clone(),
                    format: TextFormat::Lines(files),
                    split: self.split(i, val_size, test_size, carve, seed, [n_train, n_val, n_test])?,
                    options: self.text_options(i, max_len, vocab_size, min_freq)?,
                }
            }
            DataEntry::PrefixedLines {
                path,
                train,
                val,
                test,
                labels,
                label_range,
                max_len,
                vocab_size,
                min_freq,
                val_size,
                test_size,
                carve,
                seed,
                n_train,
                n_val,
                n_test,
            } => {
                let coarse = match labels.as_deref() {
                    None | Some("whole") => false,
                    Some("coarse") => true,
                    Some(other) => {
                        return self.fail(
                            &at("labels"),
                            format!(
                                "labels \"{other}\" must be \"whole\" (the first word: TREC's NUM:dist) or \"coarse\" \
                                 (its part before ':', NUM)"
                            ),
                        )
                    }
                };
                let (path, splits) =
                    self.split_files(i, [path, train, val, test], [&val_size, &test_size], &resolve)?;
                let options = PrefixedOptions { coarse, classes: self.label_classes(i, label_range)? };
                DataSource::Texts {
                    path,
                    format: TextFormat::Prefixed(options, splits),
                    split: self.split(i, val_size, test_size, carve, seed, [n_train, n_val, n_test])?,
                    options: self.text_options(i, max_len, vocab_size, min_freq)?,
                }
            }
            DataEntry::Csv(entry) => self.delimited(i, entry, b',', &resolve)?,
            DataEntry::Tsv(entry) => self.delimited(i, entry, b'\t', &resolve)?,
            DataEntry::Table(entry) => self.table(i, entry, &resolve)?,
            DataEntry::Celeba(entry) => self.celeba(i, entry, &resolve)?,
            DataEntry::Nyuv2(entry) => self.nyuv2(i, entry, 13, &resolve)?,
            DataEntry::Cityscapes(entry) => self.nyuv2(i, entry, 7, &resolve)?,
            DataEntry::ImageMasks(entry) => self.image_masks(i, entry, &resolve)?,
            DataEntry::Qm9(entry) => self.qm9(i, entry, &resolve)?,
            DataEntry::Jsonl {
                path,
                train,
                val,
                test,
                text_field,
                label_field,
                label_range,
                max_len,
                vocab_size,
                min_freq,
                val_size,
                test_size,
                carve,
                seed,
                n_train,
                n_val,
                n_test,
            } => {
                let (path, splits) =
                    self.split_files(i, [path, train, val, test], [&val_size, &test_size], &resolve)?;
                DataSource::Texts {
                    path,
                    format: TextFormat::Jsonl(
                        JsonlOptions {
                            text_fields: self.text_columns(i, "text_field", text_field)?,
                            label_field,
                            classes: self.label_classes(i, label_range)?,
                        },
                        splits,
                    ),
                    split: self.split(i, val_size, test_size, carve, seed, [n_train, n_val, n_test])?,
                    options: self.text_options(i, max_len, vocab_size, min_freq)?,
                }
            }
        };
        if let Some(kind) = &task.kind {
            if kind != data.kind() {
                self.fail(
                    &[Key("tasks"), Index(i), Key("kind")],
                    format!(
                        "kind \"{kind}\" does not match the data, which gives \"{}\" (kinds: \
                         image-classification, text-classification, classification, regression, multi-label, \
                         segmentation, depth, normals)",
                        data.kind()
                    ),
                )?;
            }
        }
        let TaskEntry { name, loss, select, label_smoothing, class_weights, pos_weight, .. } = task;
        let entry = ObjectiveEntry { loss, select, label_smoothing, class_weights, pos_weight };
        let objective = self.objective(i, data.kind(), entry)?;
        Ok(TaskSource { name, data, objective })
    }

    pub(super) fn split(
        &self,
        i: usize,
        val: Option<SizeEntry>,
        test: Option<SizeEntry>,
        carve: Option<String>,
        seed: u64,
        [n_train, n_val, n_test]: [Option<usize>; 3],
    ) -> Result<SplitPolicy, ConfigError> {
        let amount = |entry: Option<SizeEntry>, default: Amount, key: &str| match entry {
            None => Ok(default),
            Some(SizeEntry::Count(c)) => Ok(Amount::Count(c as usize)),
            Some(SizeEntry::Fraction(f)) if (0.0..1.0).contains(&f) => Ok(Amount::Fraction(f)),
            Some(SizeEntry::Fraction(f)) => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key(key)],
                format!("{f} is not a fraction in [0, 1); give a fraction or a whole count"),
            ),
        };
        let carve = match carve.as_deref() {
            None | Some("random") => Carve::Random,
            Some("tail") => Carve::Tail,
            Some(other) => {
                return self.fail(
                    &[Key("tasks"), Index(i), Key("data"), Key("carve")],
                    format!("carve \"{other}\" must be \"random\" or \"tail\""),
                )
            }
        };
        let kept = |n: Option<usize>, key| match n {
            Some(0) => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key(key)],
                format!("{key} = 0 keeps nothing; give at least 1 (or leave {key} out to keep every example)"),
            ),
            n => Ok(n),
        };
        Ok(SplitPolicy {
            val: amount(val, defaults::VAL, "val_size")?,
            test: amount(test, defaults::TEST, "test_size")?,
            carve,
            seed,
            keep: Keep { train: kept(n_train, "n_train")?, val: kept(n_val, "n_val")?, test: kept(n_test, "n_test")? },
        })
    }

    fn text_options(
        &self,
        i: usize,
        max_len: Option<usize>,
        vocab_size: Option<usize>,
        min_freq: Option<usize>,
    ) -> Result<TextOptions, ConfigError> {
        let at = |key| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let d = defaults::TEXT;
        Ok(TextOptions {
            max_len: self.count(max_len, d.max_len, &at("max_len"), 1..100_001)?,
            vocab_size: self.count(vocab_size, d.vocab_size, &at("vocab_size"), 3..10_000_001)?,
            min_freq: self.count(min_freq, d.min_freq, &at("min_freq"), 1..1_000_001)?,
        })
    }

    fn delimited(
        &self,
        i: usize,
        entry: DelimitedEntry,
        delimiter: u8,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<DataSource, ConfigError> {
        let has_header = entry.header.unwrap_or(true);
        let column = |c: ColumnEntry, key: &str| match c {
            ColumnEntry::Index(i) => Ok(Column::Index(i)),
            ColumnEntry::Name(_) if !has_header => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key(key)],
                "a column name needs header = true; give a 0-based column index instead",
            ),
            ColumnEntry::Name(name) => Ok(Column::Name(name)),
        };
        let delimiter = match entry.delimiter.as_deref().map(parse_delimiter) {
            None => delimiter,
            Some(Ok(given)) => given,
            Some(Err(message)) => return self.fail(&[Key("tasks"), Index(i), Key("data"), Key("delimiter")], message),
        };
        let text_columns = self.text_columns(i, "text_column", entry.text_column)?;
        let options = DelimitedOptions {
            delimiter,
            has_header,
            text_columns: text_columns.into_iter().map(|c| column(c, "text_column")).collect::<Result<_, _>>()?,
            label_column: column(entry.label_column, "label_column")?,
            quoting: entry.quoting.unwrap_or(true),
            classes: self.label_classes(i, entry.label_range)?,
        };
        let files = [entry.path, entry.train, entry.val, entry.test];
        let (path, splits) = self.split_files(i, files, [&entry.val_size, &entry.test_size], resolve)?;
        Ok(DataSource::Texts {
            path,
            format: TextFormat::Delimited(options, splits),
            split: self.split(
                i,
                entry.val_size,
                entry.test_size,
                entry.carve,
                entry.seed,
                [entry.n_train, entry.n_val, entry.n_test],
            )?,
            options: self.text_options(i, entry.max_len, entry.vocab_size, entry.min_freq)?,
        })
    }

    /// An image `fit` (`default` when not given).
    pub(super) fn fit(&self, i: usize, fit: Option<String>, default: Fit) -> Result<Fit, ConfigError> {
        match fit.as_deref() {
            None => Ok(default),
            Some("stretch") => Ok(Fit::Stretch),
            Some("center-crop") => Ok(Fit::CenterCrop),
            Some("pad") => Ok(Fit::Pad),
            Some(other) => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key("fit")],
                format!(
                    "fit \"{other}\" must be \"stretch\" (resize to height × width), \"center-crop\" \
                     (keep the aspect ratio, cut the overflow) or \"pad\" (keep it, fill with black)"
                ),
            ),
        }
    }

    /// What to do with an image that cannot be decoded.
    pub(super) fn on_unreadable(&self, i: usize, given: Option<String>) -> Result<Unreadable, ConfigError> {
        match given.as_deref() {
            None => Ok(defaults::UNREADABLE),
            Some("skip") => Ok(Unreadable::Skip),
            Some("fail") => Ok(Unreadable::Fail),
            Some(other) => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key("on_unreadable")],
                format!("\"{other}\" must be \"skip\" or \"fail\""),
            ),
        }
    }

    /// A prefix of IDX file names: a plain file-name part, not a path.
    fn idx_prefix(&self, i: usize, prefix: Option<String>) -> Result<Option<String>, ConfigError> {
        match prefix {
            Some(p) if p.contains(['/', '\\']) || p.chars().any(char::is_control) => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key("prefix")],
                format!(
                    "prefix {p:?} is the start of the IDX file names in the folder (e.g. \"emnist-letters-\"), \
                     not a path: put the folder in path"
                ),
            ),
            prefix => Ok(prefix),
        }
    }

    /// `path` (one file, the splits carved from it) or `train` with `val` and `test` files:
    /// the training file and the others. A split given as a file has no size to carve.
    pub(super) fn split_files(
        &self,
        i: usize,
        [path, train, val, test]: [Option<PathBuf>; 4],
        [val_size, test_size]: [&Option<SizeEntry>; 2],
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(PathBuf, SplitPaths), ConfigError> {
        let at = |key| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let train = match (path, train) {
            (Some(path), None) => {
                if val.is_some() || test.is_some() {
                    let key = if val.is_some() { "val" } else { "test" };
                    return self.fail(
                        &at(key),
                        format!(
                            "a {key} file goes with train = \"…\" instead of path (with path, {key}_size carves it)"
                        ),
                    );
                }
                path
            }
            (None, Some(train)) => train,
            (Some(_), Some(_)) => {
                return self.fail(&at("train"), "give path (one file, the splits carved from it) or train, not both")
            }
            (None, None) => {
                return self.fail(
                    &[Key("tasks"), Index(i), Key("data")],
                    "missing path = \"…\" (one file), or train = \"…\" with val and test files (one per split)",
                )
            }
        };
        for (key, file, size) in [("val_size", &val, val_size), ("test_size", &test, test_size)] {
            if file.is_some() && size.is_some() {
                let split = &key[..key.len() - 5];
                return self.fail(&at(key), format!("{split} comes from its own file; drop {key}"));
            }
        }
        let splits = SplitPaths { val: val.as_deref().map(resolve), test: test.as_deref().map(resolve) };
        Ok((resolve(&train), splits))
    }

    /// The text columns (or JSONL fields) of `key`: one, or a list of up to 16 joined with a space.
    fn text_columns<T>(&self, i: usize, key: &str, entry: OneOrSeveral<T>) -> Result<Vec<T>, ConfigError> {
        let columns = entry.into_vec();
        if columns.is_empty() || columns.len() > 16 {
            return self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key(key)],
                format!("{key} takes one column or a list of 1 to 16 (joined with a space), not {}", columns.len()),
            );
        }
        Ok(columns)
    }

    /// `label_range = [lo, hi]`: every integer of it a class; without it each distinct label is one.
    pub(super) fn label_classes(&self, i: usize, range: Option<Vec<i64>>) -> Result<LabelClasses, ConfigError> {
        let Some(range) = range else { return Ok(LabelClasses::Names) };
        match range[..] {
            [lo, hi] if lo < hi && hi.abs_diff(lo) < MAX_CLASSES as u64 => Ok(LabelClasses::Range(lo, hi)),
            _ => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key("label_range")],
                format!(
                    "label_range {range:?} must be [lowest, highest] label, lowest < highest, at most {MAX_CLASSES} \
                     classes (e.g. [1, 4] for labels 1 to 4)"
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse_str;
    use std::path::Path;

    /// The key settings of the one trial of a file whose only task reads `data`.
    fn settings(data: &str) -> Result<String, String> {
        let text = format!("name = \"t\"\n\n[[tasks]]\nname = \"t0\"\ndata = {data}\n");
        let plan = parse_str(&text, Path::new("x.toml")).map_err(|e| e.to_string())?;
        Ok(plan.trials[0].settings_json.clone())
    }

    #[test]
    fn joined_text_columns_and_a_label_range_enter_the_key_only_when_given() {
        let csv = |extra: &str| format!("{{ format = \"csv\", path = \"a.csv\", label_column = \"label\"{extra} }}");
        let one = settings(&csv(", text_column = \"text\"")).unwrap();
        // One column keys as it did before lists, label ranges and split files were allowed.
        let source = r#""source":{"format":"csv","header":true,"label_column":"label","text_column":"text"}"#;
        assert!(one.contains(source), "{one}");
        let joined = settings(&csv(", text_column = [\"title\", 2], label_range = [1, 4]")).unwrap();
        assert!(joined.contains(r#""text_column":["title",2]"#), "{joined}");
        assert!(joined.contains(r#""label_range":[1,4]"#), "{joined}");
        let jsonl =
            "{ format = \"jsonl\", path = \"a.jsonl\", text_field = [\"title\", \"body\"], label_field = \"y\" }";
        assert!(settings(jsonl).unwrap().contains(r#""text_field":["title","body"]"#));
        for (extra, message) in [
            (", text_column = \"text\", label_range = [3]", "label_range [3] must be [lowest, highest] label"),
            (", text_column = \"text\", label_range = [0, 100000]", "at most 100000 classes"),
            (
                ", text_column = [\"a\", [\"b\"]]",
                "tasks[0].data: a column (a name, or a 0-based index for csv and tsv) or a list of columns",
            ),
            (", text_column = []", "text_column takes one column or a list of 1 to 16"),
        ] {
            let err = settings(&csv(extra)).unwrap_err();
            assert!(err.contains(message), "{extra}: {err}");
        }
    }

    #[test]
    fn files_per_split_are_in_the_key_and_exclude_carving_that_split() {
        let csv =
            |files: &str| format!("{{ format = \"csv\", {files}, text_column = \"text\", label_column = \"label\" }}");
        let one = settings(&csv("path = \"all.csv\"")).unwrap();
        assert!(!one.contains("val_file") && !one.contains("test_file") && !one.contains("n_train"), "{one}");
        let idx = |extra: &str| settings(&format!("{{ format = \"mnist-idx\", path = \"m\"{extra} }}"));
        assert!(!idx("").unwrap().contains("prefix"));
        assert!(idx(", prefix = \"emnist-letters-\"").unwrap().contains(r#""prefix":"emnist-letters-""#));
        assert!(idx(", prefix = \"a/b\"").unwrap_err().contains("tasks[0].data.prefix: prefix \"a/b\" is the start"));
        let kept = settings(&csv("path = \"all.csv\", n_train = 500, n_test = 200")).unwrap();
        assert!(kept.contains(r#""n_train":500"#) && kept.contains(r#""n_test":200"#) && !kept.contains("n_val"));
        let split = settings(&csv("train = \"train.csv\", test = \"test.csv\"")).unwrap();
        assert!(split.contains(r#""path":"train.csv""#) && split.contains(r#""test_file":"test.csv""#), "{split}");
        assert!(!split.contains("val_file"), "{split}");
        let jsonl =
            "{ format = \"jsonl\", train = \"a.jsonl\", val = \"b.jsonl\", text_field = \"t\", label_field = \"y\" }";
        assert!(settings(jsonl).unwrap().contains(r#""val_file":"b.jsonl""#));
        for (files, message) in [
            (
                "path = \"a.csv\", train = \"b.csv\"",
                "tasks[0].data.train: give path (one file, the splits carved from it) or train, not both",
            ),
            (
                "path = \"a.csv\", test = \"b.csv\"",
                "tasks[0].data.test: a test file goes with train = \"…\" instead of path",
            ),
            (
                "train = \"a.csv\", val = \"b.csv\", val_size = 0.1",
                "tasks[0].data.val_size: val comes from its own file; drop val_size",
            ),
            (
                "header = true",
                "tasks[0].data: missing path = \"…\" (one file), or train = \"…\" with val and test files",
            ),
        ] {
            let err = settings(&csv(files)).unwrap_err();
            assert!(err.contains(message), "{files}: {err}");
        }
    }
}
