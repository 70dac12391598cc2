//! Where each task's examples come from, as resolved from the experiment file,
//! and how they are loaded (once per sweep; tasks that read the same input,
//! like MultiMNIST's left and right digit, share one load; text tasks share one
//! vocabulary).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mtl_data::formats::images::masks::MaskOptions;
use mtl_data::formats::images::{self, CifarLabels, Fit, ImageFolderOptions, Unreadable};
use mtl_data::formats::table::{self, TableOptions, TableTarget};
use mtl_data::formats::text::{self, Column, DelimitedOptions, JsonlOptions, LabelClasses};
use mtl_data::prepare::{
    carve_texts, encode_texts, image_task, shared_vocabulary, table_task, Amount, Carve, CarvedTexts, SplitPolicy,
    TextOptions,
};
use mtl_data::synthetic::{ReviewsConfig, ShapesConfig};
use mtl_data::{DataError, Inputs, TaskData};
use serde_json::{json, Value};

use crate::objective::ObjectiveSpec;

mod celeba;
mod dense;
mod molecules;
mod multimnist;
pub use celeba::CelebaTarget;
pub use dense::DenseTarget;
pub use multimnist::{ComposeSeed, Composition};

/// A task of the experiment: its name and where its data comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSource {
    /// Unique name.
    pub name: String,
    /// Its data.
    pub data: DataSource,
    /// Its loss and selecting metric, where the file sets them.
    pub objective: ObjectiveSpec,
}

/// Which digit of a MultiMNIST image a task predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digit {
    /// The top-left digit.
    Left,
    /// The bottom-right digit.
    Right,
    /// The sum of the two digits, 0–18, as a regression target.
    Sum,
    /// Which of the digits 0–9 the image shows (one or two), as 10 binary labels.
    Present,
}

/// The validation and test files of a data set kept as one file per split (`None`: that
/// split is carved from the training file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitPaths {
    /// The validation file.
    pub val: Option<PathBuf>,
    /// The test file.
    pub test: Option<PathBuf>,
}

impl SplitPaths {
    /// The files with `train`.
    fn with_train(&self, train: &Path) -> text::SplitFiles {
        text::SplitFiles { train: train.to_owned(), val: self.val.clone(), test: self.test.clone() }
    }

    /// The files given enter the key; none given adds nothing, so earlier keys hold.
    fn add_to(&self, settings: &mut Value) {
        for (key, path) in [("val_file", &self.val), ("test_file", &self.test)] {
            if let Some(path) = path {
                settings[key] = json!(path);
            }
        }
    }
}

/// A text file format with its columns.
#[derive(Clone, Debug, PartialEq)]
pub enum TextFormat {
    /// `{train,test}/{neg,pos}/*.txt`.
    AclImdb,
    /// One file per class, one example per line.
    Lines(Vec<PathBuf>),
    /// Lines `LABEL text` (TREC, fastText), and the validation and test files if given.
    Prefixed(text::PrefixedOptions, SplitPaths),
    /// CSV or TSV, and its validation and test files if given.
    Delimited(DelimitedOptions, SplitPaths),
    /// One JSON object per line, and its validation and test files if given.
    Jsonl(JsonlOptions, SplitPaths),
}

/// An image file format.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageFormat {
    /// IDX files (MNIST, Fashion-MNIST, EMNIST) in a folder; with a prefix, those named
    /// exactly `<prefix>train-images-idx3-ubyte` and so on.
    Idx {
        /// The part of the names before the standard ones.
        prefix: Option<String>,
    },
    /// CIFAR-10/100 binary batches.
    Cifar(CifarLabels),
    /// `root/<class>/*.png|jpg|gif|bmp`, optionally under train/val/test.
    Folder(ImageFolderOptions),
    /// CelebA's `img_align_celeba/` with its attribute and partition tables.
    Celeba {
        /// How the images are decoded and sized.
        options: ImageFolderOptions,
        /// The attribute(s) the task predicts.
        target: CelebaTarget,
    },
    /// LibMTL's NYUv2 layout: `{train,val}/{image,label,depth,normal}/<i>.npy`.
    Nyuv2 {
        /// What the task predicts.
        target: DenseTarget,
        /// Segmentation classes (labels 0 … classes − 1).
        classes: usize,
        /// `(height, width)` to resize to, if not the files' size.
        size: Option<(usize, usize)>,
    },
    /// `images/<name>.png|jpg` with `masks/<name>.png`, `depth/<name>.png|npy` and/or
    /// `normals/<name>.png|npy`.
    ImageMasks {
        /// Segmentation, depth or normals.
        target: DenseTarget,
        /// Segmentation classes (mask values 0 … classes − 1).
        classes: usize,
        /// The mask value of unlabelled pixels.
        ignore: u8,
        /// A 16-bit depth PNG's value per unit of depth.
        depth_scale: f64,
        /// `(height, width)` to resize to; `None`: the first training image's size.
        size: Option<(usize, usize)>,
    },
    /// MultiMNIST composed from the IDX digits of the folder, each split from its own digits.
    MultiMnist {
        /// The digit this task predicts.
        digit: Digit,
        /// How the images are composed.
        composition: Composition,
    },
}

/// Where a task's examples come from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The built-in shapes images.
    SyntheticShapes {
        /// Sizes and noise.
        config: ShapesConfig,
        /// Generation seed (fixed per experiment, unlike the trial seed).
        seed: u64,
    },
    /// The built-in review texts.
    SyntheticReviews {
        /// Sizes, length and label noise.
        config: ReviewsConfig,
        /// Generation seed.
        seed: u64,
    },
    /// Image files.
    Images {
        /// File or folder, resolved against the experiment file's folder.
        path: PathBuf,
        /// Their format.
        format: ImageFormat,
        /// How missing splits are carved.
        split: SplitPolicy,
    },
    /// A table of feature columns and targets (CSV or TSV).
    Table {
        /// The training file (all rows when no other file is given).
        path: PathBuf,
        /// Its columns.
        options: TableOptions,
        /// The validation and test files, if given.
        splits: SplitPaths,
        /// How missing splits are carved.
        split: SplitPolicy,
    },
    /// QM9's raw files (`gdb9.sdf`, `gdb9.sdf.csv`, `uncharacterized.txt`): molecular
    /// graphs and their 19 properties.
    Molecules {
        /// The folder holding them.
        path: PathBuf,
        /// The targets this task regresses (names of `mtl_data::formats::molecules::QM9_TARGETS`).
        targets: Vec<String>,
        /// How the splits are carved (QM9 has none of its own).
        split: SplitPolicy,
    },
    /// Text files.
    Texts {
        /// File or folder (for `Lines`, the files are in the format).
        path: PathBuf,
        /// Their format.
        format: TextFormat,
        /// How missing splits are carved.
        split: SplitPolicy,
        /// Tokenisation.
        options: TextOptions,
    },
}

fn amount(a: &Amount) -> Value {
    match a {
        Amount::Count(c) => json!(c),
        Amount::Fraction(f) => json!(f),
    }
}

fn split_settings(split: &SplitPolicy) -> Value {
    let carve = match split.carve {
        Carve::Random => "random",
        Carve::Tail => "tail",
    };
    let mut settings =
        json!({ "val_size": amount(&split.val), "test_size": amount(&split.test), "carve": carve, "seed": split.seed });
    // Only where given, so that earlier keys hold.
    for (key, n) in [("n_train", split.keep.train), ("n_val", split.keep.val), ("n_test", split.keep.test)] {
        if let Some(n) = n {
            settings[key] = json!(n);
        }
    }
    settings
}

fn column(c: &Column) -> Value {
    match c {
        Column::Name(name) => json!(name),
        Column::Index(i) => json!(i),
    }
}

/// One column as itself, several as a list: a single column's key is what it was before
/// lists were allowed.
fn one_or_several(mut columns: Vec<Value>) -> Value {
    match columns.len() {
        1 => columns.remove(0),
        _ => Value::Array(columns),
    }
}

/// A declared label range enters the key; the default (labels are names) adds nothing.
fn add_label_range(settings: &mut Value, classes: LabelClasses) {
    if let LabelClasses::Range(lo, hi) = classes {
        settings["label_range"] = json!([lo, hi]);
    }
}

impl DataSource {
    /// The task kind its targets make: `image-classification`, `text-classification`,
    /// `classification` (a table's class column), `regression` or `multi-label`.
    pub fn kind(&self) -> &'static str {
        match self {
            DataSource::Images { format: ImageFormat::MultiMnist { digit: Digit::Sum, .. }, .. } => "regression",
            DataSource::Images { format: ImageFormat::MultiMnist { digit: Digit::Present, .. }, .. } => "multi-label",
            DataSource::Images { format: ImageFormat::Celeba { target: CelebaTarget::Attributes(_), .. }, .. } => {
                "multi-label"
            }
            DataSource::Images {
                format: ImageFormat::Nyuv2 { target, .. } | ImageFormat::ImageMasks { target, .. },
                ..
            } => target.name(),
            DataSource::SyntheticShapes { .. } | DataSource::Images { .. } => "image-classification",
            DataSource::SyntheticReviews { .. } | DataSource::Texts { .. } => "text-classification",
            DataSource::Table { options, .. } => match options.target {
                TableTarget::Class { .. } => "classification",
                TableTarget::Values(_) => "regression",
                TableTarget::Labels(_) | TableTarget::LabelList { .. } => "multi-label",
            },
            DataSource::Molecules { .. } => "regression",
        }
    }

    /// Whether its inputs are images (of any task kind).
    pub fn reads_images(&self) -> bool {
        matches!(self, DataSource::SyntheticShapes { .. } | DataSource::Images { .. })
    }

    /// The file or folder the data is read from (the first of several files; none for the
    /// built-in sets), for errors.
    pub fn path(&self) -> &Path {
        match self {
            DataSource::SyntheticShapes { .. } | DataSource::SyntheticReviews { .. } => Path::new("(built-in data)"),
            DataSource::Images { path, .. }
            | DataSource::Texts { path, .. }
            | DataSource::Table { path, .. }
            | DataSource::Molecules { path, .. } => path,
        }
    }

    /// Every setting that decides the examples, for the trial key.
    pub fn settings(&self) -> Value {
        match self {
            DataSource::SyntheticShapes { config, seed } => json!({
                "format": "synthetic-shapes", "n_train": config.n_train, "n_val": config.n_val,
                "n_test": config.n_test, "noise": config.noise, "seed": seed,
            }),
            DataSource::SyntheticReviews { config, seed } => json!({
                "format": "synthetic-reviews", "n_train": config.n_train, "n_val": config.n_val,
                "n_test": config.n_test, "seq_len": config.seq_len, "label_noise": config.label_noise, "seed": seed,
            }),
            DataSource::Images { path, format, split } => {
                let format = match format {
                    ImageFormat::Idx { prefix: None } => json!({ "format": "mnist-idx" }),
                    ImageFormat::Idx { prefix: Some(prefix) } => json!({ "format": "mnist-idx", "prefix": prefix }),
                    ImageFormat::Cifar(labels) => json!({ "format": "cifar", "labels": format!("{labels:?}") }),
                    ImageFormat::Folder(o) => {
                        let mut settings = json!({
                            "format": "image-folder", "channels": o.channels, "height": o.height, "width": o.width,
                            "on_unreadable": format!("{:?}", o.on_unreadable),
                        });
                        // Only where not the default, so that earlier keys hold.
                        if o.fit != Fit::Stretch {
                            settings["fit"] = json!(format!("{:?}", o.fit));
                        }
                        settings
                    }
                    ImageFormat::Celeba { options: o, target } => {
                        let target = match target {
                            CelebaTarget::Attributes(names) => json!({ "attributes": names }),
                            CelebaTarget::Attribute(name) => json!({ "attribute": name }),
                        };
                        json!({
                            "format": "celeba", "channels": o.channels, "height": o.height, "width": o.width,
                            "fit": format!("{:?}", o.fit), "on_unreadable": format!("{:?}", o.on_unreadable),
                            "target": target,
                        })
                    }
                    ImageFormat::Nyuv2 { target, classes, size } => json!({
                        "format": "nyuv2", "task": target.name(), "classes": classes, "size": size,
                    }),
                    ImageFormat::ImageMasks { target, classes, ignore, depth_scale, size } => json!({
                        "format": "image-masks", "task": target.name(), "classes": classes, "ignore": ignore,
                        "depth_scale": depth_scale, "size": size,
                    }),
                    ImageFormat::MultiMnist { digit, composition } => {
                        let mut settings = composition.settings();
                        settings["format"] = json!("multimnist");
                        settings["digit"] = json!(format!("{digit:?}"));
                        settings
                    }
                };
                json!({ "path": path, "source": format, "split": split_settings(split) })
            }
            DataSource::Table { path, options: o, splits, split } => {
                let columns = |columns: &[Column]| Value::Array(columns.iter().map(column).collect());
                let target = match &o.target {
                    TableTarget::Class { column: c, classes, positive } => {
                        let mut target = json!({ "label_column": column(c) });
                        add_label_range(&mut target, *classes);
                        if let Some(values) = positive {
                            target["positive"] = json!(values);
                        }
                        target
                    }
                    TableTarget::Values(c) => json!({ "targets": columns(c) }),
                    TableTarget::Labels(c) => json!({ "labels": columns(c) }),
                    TableTarget::LabelList { column: c, separator } => {
                        json!({ "label_list": column(c), "separator": separator.to_string() })
                    }
                };
                let mut source = json!({
                    "format": "table", "delimiter": (o.delimiter as char).to_string(), "header": o.has_header,
                    "quoting": o.quoting, "features": columns(&o.numeric), "categorical": columns(&o.categorical),
                    "target": target,
                });
                // Only where given, so that earlier keys hold.
                if !o.embedded.is_empty() {
                    source["embedded"] = columns(&o.embedded);
                    source["embedding_dim"] = json!(o.embedding_dim);
                }
                splits.add_to(&mut source);
                json!({ "path": path, "source": source, "split": split_settings(split) })
            }
            DataSource::Molecules { path, targets, split } => json!({
                "path": path, "source": { "format": "qm9", "targets": targets }, "split": split_settings(split),
            }),
            DataSource::Texts { path, format, split, options } => {
                let format = match format {
                    TextFormat::AclImdb => json!({ "format": "aclimdb" }),
                    TextFormat::Lines(files) => json!({ "format": "text-lines", "files": files }),
                    TextFormat::Prefixed(o, splits) => {
                        let mut settings = json!({ "format": "prefixed-lines", "coarse": o.coarse });
                        add_label_range(&mut settings, o.classes);
                        splits.add_to(&mut settings);
                        settings
                    }
                    TextFormat::Delimited(o, splits) => {
                        let text_columns: Vec<Value> = o.text_columns.iter().map(column).collect();
                        let mut settings = json!({
                            "format": if o.delimiter == b'\t' { "tsv" } else { "csv" }, "header": o.has_header,
                            "text_column": one_or_several(text_columns), "label_column": column(&o.label_column),
                        });
                        add_label_range(&mut settings, o.classes);
                        // Only where they differ from a csv or tsv file's, so that earlier keys hold.
                        if !matches!(o.delimiter, b',' | b'\t') {
                            settings["delimiter"] = json!((o.delimiter as char).to_string());
                        }
                        if !o.quoting {
                            settings["quoting"] = json!(false);
                        }
                        splits.add_to(&mut settings);
                        settings
                    }
                    TextFormat::Jsonl(o, splits) => {
                        let text_fields = o.text_fields.iter().map(|f| json!(f)).collect();
                        let mut settings = json!({
                            "format": "jsonl", "text_field": one_or_several(text_fields), "label_field": o.label_field,
                        });
                        add_label_range(&mut settings, o.classes);
                        splits.add_to(&mut settings);
                        settings
                    }
                };
                json!({
                    "path": path, "source": format, "split": split_settings(split),
                    "max_len": options.max_len, "vocab_size": options.vocab_size, "min_freq": options.min_freq,
                })
            }
        }
    }

    /// Tasks whose sources give equal keys read the same inputs: they share
    /// batches (one image, several labels; one table row, several target columns).
    pub fn shared_input_key(&self) -> Option<String> {
        match self {
            DataSource::Images { path, format: ImageFormat::Celeba { options: o, .. }, split } => {
                let (fit, unreadable) = (format!("{:?}", o.fit), format!("{:?}", o.on_unreadable));
                let image = json!([o.channels, o.height, o.width, fit, unreadable]);
                Some(format!("celeba:{}:{image}:{}", path.display(), split_settings(split)))
            }
            DataSource::Table { path, options: o, splits, split } => {
                let columns = |c: &[Column]| c.iter().map(column).collect::<Vec<Value>>();
                let rows = json!({
                    "path": path, "val": splits.val, "test": splits.test, "delimiter": o.delimiter, "header": o.has_header,
                    "quoting": o.quoting, "features": columns(&o.numeric), "categorical": columns(&o.categorical),
                    "embedded": columns(&o.embedded), "embedding_dim": o.embedding_dim, "split": split_settings(split),
                });
                Some(format!("table:{rows}"))
            }
            // The settings of one target (classes, the mask's ignore value, depth's scale) are
            // not in the key: the tasks of one folder read it once.
            DataSource::Images { path, format: ImageFormat::Nyuv2 { size, .. }, split } => {
                Some(format!("nyuv2:{}:{size:?}:{}", path.display(), split_settings(split)))
            }
            DataSource::Images { path, format: ImageFormat::ImageMasks { size, .. }, split } => {
                Some(format!("image-masks:{}:{size:?}:{}", path.display(), split_settings(split)))
            }
            DataSource::Molecules { path, split, .. } => {
                Some(format!("qm9:{}:{}", path.display(), split_settings(split)))
            }
            DataSource::Images { path, format: ImageFormat::MultiMnist { composition, .. }, split } => {
                Some(format!("multimnist:{}:{}:{}", path.display(), composition.settings(), split_settings(split)))
            }
            _ => None,
        }
    }
}

/// The name of the run param that records [`split_sizes`].
pub const SPLIT_SIZES_PARAM: &str = "split_sizes";

/// Each task's examples per split, train/val/test: `digits 500/100/200 · polarity
/// 1000/900/300`. What `mtl run` prints before training and `mtl show` lists (the
/// `split_sizes` param of every run).
pub fn split_sizes(tasks: &[TaskData]) -> String {
    let sizes = tasks.iter().map(|t| format!("{} {}/{}/{}", t.name, t.train.len(), t.val.len(), t.test.len()));
    sizes.collect::<Vec<_>>().join(" · ")
}

/// The loaded tasks of a plan and which of them read the same inputs.
#[derive(Clone, Debug)]
pub struct TaskSet {
    /// Every task's examples, in plan order.
    pub tasks: Vec<TaskData>,
    /// Tasks that share inputs (and so batches), as index lists in plan order;
    /// every task is in exactly one group.
    pub input_groups: Vec<Vec<usize>>,
    /// Each task's loss and selecting metric as the file sets them, in plan order.
    pub objectives: Vec<ObjectiveSpec>,
    /// The MultiMNIST tasks whose images follow the trial seed (`compose_seed = "trial"`):
    /// `tasks` holds them composed with seed 0, [`TaskSet::for_seed`] composes a trial's.
    per_seed: multimnist::PerSeed,
}

impl TaskSet {
    /// Tasks read from elsewhere (e.g. generated for a benchmark), none following the trial seed.
    pub fn new(tasks: Vec<TaskData>, input_groups: Vec<Vec<usize>>) -> TaskSet {
        let objectives = vec![ObjectiveSpec::default(); tasks.len()];
        TaskSet { tasks, input_groups, objectives, per_seed: Default::default() }
    }

    /// The tasks a trial of seed `seed` trains on: these, with the images of MultiMNIST
    /// tasks that follow the trial seed composed for `seed`.
    pub fn for_seed(&self, seed: u64) -> Result<std::borrow::Cow<'_, TaskSet>, DataError> {
        if self.per_seed.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(self));
        }
        self.per_seed.compose(self, seed).map(std::borrow::Cow::Owned)
    }
}

/// Loads every task of a plan and groups those that read the same inputs.
pub fn load_task_set(sources: &[TaskSource]) -> Result<TaskSet, DataError> {
    let tasks = load_tasks(sources)?;
    let mut input_groups: Vec<Vec<usize>> = Vec::new();
    let mut keys: Vec<Option<String>> = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let key = source.data.shared_input_key();
        match key.as_ref().and_then(|k| keys.iter().position(|other| other.as_ref() == Some(k))) {
            Some(group) => input_groups[group].push(i),
            None => {
                input_groups.push(vec![i]);
                keys.push(key);
            }
        }
    }
    let objectives = sources.iter().map(|s| s.objective.clone()).collect();
    Ok(TaskSet { tasks, input_groups, objectives, per_seed: multimnist::PerSeed::new(sources)? })
}

/// The run artifact holding the experiment's one vocabulary (one token per line, id
/// order). Runs written before text tasks shared it have `vocabulary/<task>` per task.
pub const VOCABULARY_ARTIFACT: &str = "vocabulary";

/// The tasks that share the experiment's one vocabulary, in plan order: every task that
/// reads text files (the built-in reviews have their own fixed words). Whatever the
/// strategy, single-task included, so that baselines and multi-task trials tokenise alike.
pub fn vocabulary_tasks(sources: &[TaskSource]) -> Vec<&str> {
    sources.iter().filter(|t| matches!(t.data, DataSource::Texts { .. })).map(|t| t.name.as_str()).collect()
}

/// A task being loaded: text tasks wait for the vocabulary they share.
enum Loading {
    Ready(Box<TaskData>),
    Text(CarvedTexts, usize),
}

/// A dense format's target and how its layout is read (`None` for other formats).
fn dense_layout(format: &ImageFormat) -> Option<(DenseTarget, dense::Layout)> {
    match *format {
        ImageFormat::Nyuv2 { target, classes, size } => Some((target, dense::Layout::Npy { classes, size })),
        ImageFormat::ImageMasks { target, classes, ignore, depth_scale, size } => {
            let parts = mtl_data::formats::images::nyuv2::DenseParts::default();
            let options = MaskOptions { parts, classes, ignore, depth_scale, size };
            Some((target, dense::Layout::Masks(options)))
        }
        _ => None,
    }
}

/// Loads every task of a plan, in order. Sources read once per sweep. The text tasks
/// ([`vocabulary_tasks`]) are encoded with one vocabulary built over all of their
/// training splits ([`shared_vocabulary`]), so that a token id is the same word for each.
pub fn load_tasks(tasks: &[TaskSource]) -> Result<Vec<TaskData>, DataError> {
    let mut multi_digits: HashMap<String, multimnist::Input> = HashMap::new();
    let mut celeba_inputs: HashMap<String, celeba::Input> = HashMap::new();
    let mut dense_inputs: HashMap<String, dense::Input> = HashMap::new();
    let mut molecule_inputs: HashMap<String, molecules::Input> = HashMap::new();
    let mut shared_inputs = SharedInputs::new();
    let mut loading = Vec::with_capacity(tasks.len());
    // The first text task's vocabulary options: validation makes every text task's the same.
    let mut vocabulary_options: Option<(&Path, TextOptions)> = None;
    for task in tasks {
        let name = task.name.as_str();
        let data = match &task.data {
            DataSource::SyntheticShapes { config, seed } => mtl_data::synthetic::shapes(name, config, *seed),
            DataSource::SyntheticReviews { config, seed } => mtl_data::synthetic::reviews(name, config, *seed),
            DataSource::Images { path, format: ImageFormat::MultiMnist { digit, composition }, split } => {
                let key = task.data.shared_input_key().expect("a MultiMNIST input has a key");
                if !multi_digits.contains_key(&key) {
                    multi_digits.insert(key.clone(), multimnist::load(path, split, composition)?);
                }
                multimnist::input_task(name, path, split, *digit, &multi_digits[&key])?
            }
            DataSource::Molecules { path, targets, split } => {
                let key = task.data.shared_input_key().expect("a QM9 input has a key");
                if !molecule_inputs.contains_key(&key) {
                    molecule_inputs.insert(key.clone(), molecules::load(path, split)?);
                }
                molecules::task(name, path, targets, &molecule_inputs[&key])?
            }
            DataSource::Table { path, options, splits, split } => {
                table_task(name, path, table::table(&splits.with_train(path), options)?, split, options.embedding_dim)?
            }
            DataSource::Images { path, format: ImageFormat::Celeba { options, target }, split } => {
                let key = task.data.shared_input_key().expect("a CelebA input has a key");
                if !celeba_inputs.contains_key(&key) {
                    celeba_inputs.insert(key.clone(), celeba::load(path, options, split)?);
                }
                celeba::task(name, path, target, &celeba_inputs[&key])?
            }
            DataSource::Images {
                path,
                format: format @ (ImageFormat::Nyuv2 { .. } | ImageFormat::ImageMasks { .. }),
                split,
            } => {
                let (target, layout) = dense_layout(format).expect("a dense format");
                let key = task.data.shared_input_key().expect("a dense input has a key");
                if !dense_inputs.contains_key(&key) {
                    // Every task of this input, read in one pass: the folders they need, the
                    // most classes any asks for, the mask and depth settings they agree on.
                    let layouts: Vec<(DenseTarget, dense::Layout)> = tasks
                        .iter()
                        .filter(|t| t.data.shared_input_key().as_ref() == Some(&key))
                        .filter_map(|t| match &t.data {
                            DataSource::Images { format, .. } => dense_layout(format),
                            _ => None,
                        })
                        .collect();
                    let (merged, parts) = dense::merged(&layouts, path)?;
                    dense_inputs.insert(key.clone(), dense::load(path, merged, parts, split)?);
                }
                dense::task(name, path, target, layout.classes(), &dense_inputs[&key])?
            }
            DataSource::Images { path, format, split } => {
                let sourced = match format {
                    ImageFormat::Idx { prefix } => images::idx_dir_with_prefix(path, prefix.as_deref())?,
                    ImageFormat::Cifar(labels) => images::cifar(path, *labels)?,
                    ImageFormat::Folder(options) => images::image_folder(path, options)?,
                    ImageFormat::MultiMnist { .. }
                    | ImageFormat::Celeba { .. }
                    | ImageFormat::Nyuv2 { .. }
                    | ImageFormat::ImageMasks { .. } => {
                        unreachable!("handled above")
                    }
                };
                image_task(name, path, sourced, split)?
            }
            DataSource::Texts { path, format, split, options } => {
                let sourced = match format {
                    TextFormat::AclImdb => text::aclimdb(path)?,
                    TextFormat::Lines(files) => text::lines_per_class(files)?,
                    TextFormat::Prefixed(o, splits) => text::prefixed_lines(&splits.with_train(path), o)?,
                    TextFormat::Delimited(o, splits) => text::delimited_splits(&splits.with_train(path), o)?,
                    TextFormat::Jsonl(o, splits) => text::jsonl_splits(&splits.with_train(path), o)?,
                };
                match vocabulary_options {
                    None => vocabulary_options = Some((path, *options)),
                    Some((first, o)) if (o.vocab_size, o.min_freq) != (options.vocab_size, options.min_freq) => {
                        return Err(DataError::invalid(
                            path,
                            format!(
                                "text tasks share one vocabulary, but this task's vocab_size {} and min_freq {} \
                                 differ from {}'s {} and {}",
                                options.vocab_size,
                                options.min_freq,
                                first.display(),
                                o.vocab_size,
                                o.min_freq
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                loading.push(Loading::Text(carve_texts(name, path, sourced, split)?, options.max_len));
                continue;
            }
        };
        loading.push(Loading::Ready(Box::new(share_inputs(&mut shared_inputs, &task.data, task.data.path(), data)?)));
    }
    let carved: Vec<&CarvedTexts> = loading
        .iter()
        .filter_map(|l| match l {
            Loading::Text(carved, _) => Some(carved),
            Loading::Ready(_) => None,
        })
        .collect();
    let vocabulary = vocabulary_options.map(|(_, o)| shared_vocabulary(&carved, o.vocab_size, o.min_freq));
    let tasks = loading
        .into_iter()
        .map(|l| match (l, &vocabulary) {
            (Loading::Ready(data), _) => *data,
            (Loading::Text(carved, max_len), Some(vocabulary)) => encode_texts(carved, vocabulary, max_len),
            (Loading::Text(..), None) => unreachable!("a text task sets the vocabulary options"),
        })
        .collect();
    Ok(tasks)
}

/// The inputs of each split (train, val, test) by [`DataSource::shared_input_key`].
pub(crate) type SharedInputs = HashMap<String, [Inputs; 3]>;

/// `task` with the inputs of the first task loaded with the same shared-input key, when
/// there was one: tasks that read the same images or rows hold them once (MultiMNIST's
/// digits, a table's target columns), however many they are.
pub(crate) fn share_inputs(
    shared: &mut SharedInputs,
    source: &DataSource,
    path: &Path,
    mut task: TaskData,
) -> Result<TaskData, DataError> {
    let Some(key) = source.shared_input_key() else { return Ok(task) };
    let splits = [&mut task.train, &mut task.val, &mut task.test];
    match shared.get(&key) {
        // The same source and split settings give the same examples; checked, not assumed,
        // since such tasks share batches.
        Some(first) if splits.iter().zip(first).all(|(split, inputs)| split.inputs == *inputs) => {
            for (split, inputs) in splits.into_iter().zip(first) {
                split.inputs = inputs.clone();
            }
        }
        Some(_) => {
            let message = format!("task {} reads this data as an earlier task does, but got other examples", task.name);
            return Err(DataError::invalid(path, message));
        }
        None => {
            shared.insert(key, splits.map(|split| split.inputs.clone()));
        }
    }
    Ok(task)
}

/// Defaults of the experiment file for file-backed data.
pub mod defaults {
    use super::*;

    /// Validation examples carved from train when the format has none: 10%.
    pub const VAL: Amount = Amount::Fraction(0.1);
    /// Test examples carved when the format has none: 20%.
    pub const TEST: Amount = Amount::Fraction(0.2);
    /// Tokenisation.
    pub const TEXT: TextOptions = TextOptions { max_len: 256, vocab_size: 20_000, min_freq: 2 };
    /// Image folders: unreadable files fail the load.
    pub const UNREADABLE: Unreadable = Unreadable::Fail;
}
