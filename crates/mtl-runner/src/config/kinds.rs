//! `format = "table"`, `format = "celeba"`, `format = "nyuv2"` and a task's `loss` and
//! `select`: the experiment-file side of the task kinds beyond classification.

use std::path::{Path, PathBuf};

use mtl_data::formats::images::{Fit, ImageFolderOptions};
use mtl_data::formats::table::{TableOptions, TableTarget};
use mtl_data::formats::text::{parse_delimiter, Column};

use super::entries::{
    CelebaEntry, ColumnEntry, ImageMasksEntry, Nyuv2Entry, ObjectiveEntry, OneOrSeveral, Qm9Entry, TableEntry,
};
use super::{Checker, ConfigError, Index, Key};
use crate::data::{CelebaTarget, DataSource, DenseTarget, ImageFormat};
use crate::objective::{metric_names, ObjectiveSpec, RegressionLoss};

/// At most this many class or label weights.
const MAX_WEIGHTS: usize = 100_000;

/// At most this many columns of one kind: more is a wrong list.
const MAX_COLUMNS: usize = 10_000;

impl Checker<'_> {
    pub(super) fn table(
        &self,
        i: usize,
        entry: TableEntry,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<DataSource, ConfigError> {
        let at = |key: &'static str| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let has_header = entry.header.unwrap_or(true);
        let columns = |entries: Vec<ColumnEntry>, key: &'static str| -> Result<Vec<Column>, ConfigError> {
            if entries.len() > MAX_COLUMNS {
                return self.fail(&at(key), format!("{} columns (at most {MAX_COLUMNS})", entries.len()));
            }
            entries
                .into_iter()
                .map(|c| match c {
                    ColumnEntry::Index(index) => Ok(Column::Index(index)),
                    ColumnEntry::Name(_) if !has_header => {
                        self.fail(&at(key), "a column name needs header = true; give a 0-based column index instead")
                    }
                    ColumnEntry::Name(name) => Ok(Column::Name(name)),
                })
                .collect()
        };
        let delimiter = match entry.delimiter.as_deref().map(parse_delimiter) {
            None => b',',
            Some(Ok(given)) => given,
            Some(Err(message)) => return self.fail(&at("delimiter"), message),
        };
        let (numeric, categorical) = (columns(entry.features, "features")?, columns(entry.categorical, "categorical")?);
        let embedded = columns(entry.embedded, "embedded")?;
        if entry.embedding_dim.is_some() && embedded.is_empty() {
            return self
                .fail(&at("embedding_dim"), "embedding_dim goes with embedded = [\"…\"] (the columns to embed)");
        }
        let embedding_dim = self.count(entry.embedding_dim, 8, &at("embedding_dim"), 1..1025)?;
        if numeric.is_empty() && categorical.is_empty() && embedded.is_empty() {
            return self.fail(
                &[Key("tasks"), Index(i), Key("data")],
                "a table needs feature columns: features = [\"…\"] (numeric) and/or categorical = [\"…\"] (one-hot)",
            );
        }
        let given =
            [entry.label_column.is_some(), entry.targets.is_some(), entry.labels.is_some(), entry.label_list.is_some()];
        if given.iter().filter(|&&g| g).count() != 1 {
            return self.fail(
                &[Key("tasks"), Index(i), Key("data")],
                "give exactly one of label_column = \"…\" (classification), targets = [\"…\"] (regression), \
                 labels = [\"…\", …] (multi-label: one 0/1 column per label) or label_list = \"…\" (multi-label: one \
                 column of labels separated by label_separator, default \"|\")",
            );
        }
        if entry.label_separator.is_some() && entry.label_list.is_none() {
            return self.fail(&at("label_separator"), "label_separator goes with label_list");
        }
        let separator = match entry.label_separator.as_deref() {
            None => '|',
            Some(given) => match given.chars().collect::<Vec<_>>()[..] {
                [one] if !one.is_alphanumeric() && one != '"' => one,
                _ => {
                    return self.fail(
                        &at("label_separator"),
                        format!("label_separator {given:?} must be one character that is not a letter, digit or quote, e.g. \"|\" or \";\""),
                    )
                }
            },
        };
        if entry.label_range.is_some() && entry.label_column.is_none() {
            return self.fail(&at("label_range"), "label_range goes with label_column");
        }
        let positive = entry.positive.map(OneOrSeveral::into_vec);
        match &positive {
            Some(_) if entry.label_column.is_none() => {
                return self.fail(&at("positive"), "positive goes with label_column (the column it makes two-class)")
            }
            Some(_) if entry.label_range.is_some() => {
                return self.fail(&at("positive"), "give positive or label_range, not both")
            }
            Some(values) if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) => {
                return self
                    .fail(&at("positive"), "give the label values of the positive class, e.g. \"Never married\"")
            }
            _ => {}
        }
        let target = match (entry.label_column, entry.targets, entry.labels, entry.label_list) {
            (Some(column), ..) => TableTarget::Class {
                column: columns(vec![column], "label_column")?.remove(0),
                classes: self.label_classes(i, entry.label_range)?,
                positive: positive.map(|values| values.iter().map(|v| v.trim().to_owned()).collect()),
            },
            (_, Some(targets), ..) => TableTarget::Values(columns(targets.into_vec(), "targets")?),
            (_, _, Some(labels), _) => TableTarget::Labels(columns(labels, "labels")?),
            (.., Some(list)) => {
                TableTarget::LabelList { column: columns(vec![list], "label_list")?.remove(0), separator }
            }
            _ => unreachable!("exactly one is given"),
        };
        if let TableTarget::Values(c) | TableTarget::Labels(c) = &target {
            if c.is_empty() {
                let key = if matches!(target, TableTarget::Values(_)) { "targets" } else { "labels" };
                return self.fail(&at(key), "give at least one column");
            }
        }
        let options = TableOptions {
            delimiter,
            has_header,
            quoting: entry.quoting.unwrap_or(true),
            numeric,
            categorical,
            embedded,
            embedding_dim,
            target,
        };
        let files = [entry.path, entry.train, entry.val, entry.test];
        let (path, splits) = self.split_files(i, files, [&entry.val_size, &entry.test_size], resolve)?;
        let split = self.split(
            i,
            entry.val_size,
            entry.test_size,
            entry.carve,
            entry.seed,
            [entry.n_train, entry.n_val, entry.n_test],
        )?;
        Ok(DataSource::Table { path, options, splits, split })
    }

    /// A task's `loss`, `select`, `label_smoothing`, `class_weights` and `pos_weight`,
    /// checked against its kind (their counts against its classes once the data is read).
    pub(super) fn objective(&self, i: usize, kind: &str, task: ObjectiveEntry) -> Result<ObjectiveSpec, ConfigError> {
        let ObjectiveEntry { loss, select, label_smoothing, class_weights, pos_weight } = task;
        let at = |key: &'static str| [Key("tasks"), Index(i), Key(key)];
        let classification = kind.ends_with("classification");
        for (key, given, fits) in [
            ("label_smoothing", label_smoothing.is_some(), classification),
            ("class_weights", class_weights.is_some(), classification),
            ("pos_weight", pos_weight.is_some(), kind == "multi-label"),
        ] {
            if given && !fits {
                let wanted = if key == "pos_weight" { "multi-label" } else { "classification" };
                return self.fail(&at(key), format!("{key} is for {wanted} tasks; this task is {kind}"));
            }
        }
        let label_smoothing = match label_smoothing {
            Some(e) if !(0.0..1.0).contains(&e) => {
                return self.fail(&at("label_smoothing"), format!("{e} must be in [0, 1), e.g. 0.1"))
            }
            e => e.unwrap_or(0.0),
        };
        let weights = |key: &'static str, values: Option<Vec<f64>>, zero_ok: bool| match values {
            Some(v) if v.is_empty() || v.len() > MAX_WEIGHTS => {
                self.fail(&at(key), format!("give 1 to {} weights", MAX_WEIGHTS))
            }
            Some(v) if v.iter().any(|w| !w.is_finite() || *w < 0.0 || (!zero_ok && *w == 0.0)) => self.fail(
                &at(key),
                format!("every weight must be a finite number {}", if zero_ok { "≥ 0" } else { "> 0" }),
            ),
            Some(v) if v.iter().all(|w| *w == 0.0) => self.fail(&at(key), "some weight must be above 0"),
            v => Ok(v),
        };
        let class_weights = weights("class_weights", class_weights, true)?;
        let pos_weight = weights("pos_weight", pos_weight.map(|w| w.into_vec()), false)?;
        let loss = match loss.as_deref() {
            None => RegressionLoss::default(),
            Some(name) if kind != "regression" => {
                return self.fail(
                    &at("loss"),
                    format!(
                        "loss \"{name}\" is for regression tasks; this task is {kind} (its loss is fixed by its kind)"
                    ),
                )
            }
            Some(name) => match RegressionLoss::from_name(name) {
                Some(loss) => loss,
                None => {
                    let names = RegressionLoss::NAMES.join(", ");
                    return self.fail(&at("loss"), format!("loss \"{name}\" must be one of {names}"));
                }
            },
        };
        let names = metric_names(kind);
        if let Some(metric) = select.as_deref().filter(|m| !names.contains(m)) {
            return self.fail(
                &at("select"),
                format!(
                    "select \"{metric}\" cannot pick the best epoch of a {kind} task: give one of its higher-is-better \
                     validation metrics, {}",
                    names.join(", ")
                ),
            );
        }
        // The kind's own selecting metric, written out, is the default: the same key.
        let select = select.filter(|metric| metric != crate::objective::default_selection(kind));
        Ok(ObjectiveSpec { loss, select, label_smoothing, class_weights, pos_weight })
    }
}

impl Checker<'_> {
    /// `format = "celeba"`: the attribute layout, its images 3 × 64 × 64 centre-cropped by default.
    pub(super) fn celeba(
        &self,
        i: usize,
        entry: CelebaEntry,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<DataSource, ConfigError> {
        let at = |key: &'static str| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let target = match (entry.attribute, entry.attributes) {
            (Some(_), Some(_)) => {
                return self.fail(
                    &at("attribute"),
                    "give attribute = \"…\" (one attribute, a two-class task) or attributes = [\"…\", …] (one \
                     multi-label task; all 40 when left out), not both",
                )
            }
            (Some(one), None) => CelebaTarget::Attribute(one),
            (None, several) => CelebaTarget::Attributes(several.unwrap_or_default()),
        };
        let channels = self.count(entry.channels, 3, &at("channels"), 1..4)?;
        if channels == 2 {
            return self.fail(&at("channels"), "channels must be 1 (grayscale) or 3 (RGB)");
        }
        let options = ImageFolderOptions {
            channels,
            height: self.count(entry.height, 64, &at("height"), 1..4097)?,
            width: self.count(entry.width, 64, &at("width"), 1..4097)?,
            fit: self.fit(i, entry.fit, Fit::CenterCrop)?,
            on_unreadable: self.on_unreadable(i, entry.on_unreadable)?,
        };
        // The partition file gives the splits: nothing is carved.
        let split = self.split(i, None, None, None, entry.seed, [entry.n_train, entry.n_val, entry.n_test])?;
        Ok(DataSource::Images { path: resolve(&entry.path), format: ImageFormat::Celeba { options, target }, split })
    }

    /// `format = "nyuv2"` or `"cityscapes"`: LibMTL's layout of either, one task per target;
    /// `train/` gives train and validation (`val_size`, default 10%), `val/` the test split.
    /// `classes` defaults to `default_classes` (13 for NYUv2, 7 for Cityscapes).
    pub(super) fn nyuv2(
        &self,
        i: usize,
        entry: Nyuv2Entry,
        default_classes: usize,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<DataSource, ConfigError> {
        let at = |key: &'static str| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let Some(target) = DenseTarget::from_name(&entry.task) else {
            let names = DenseTarget::NAMES.join("\", \"");
            return self.fail(&at("task"), format!("unknown task \"{}\"; expected \"{names}\"", entry.task));
        };
        if entry.classes.is_some() && target != DenseTarget::Segmentation {
            return self.fail(&at("classes"), "classes is for the segmentation task");
        }
        let classes = self.count(entry.classes, default_classes, &at("classes"), 1..255)?;
        let size = self.dense_size(i, entry.size)?;
        let split =
            self.split(i, entry.val_size, None, entry.carve, entry.seed, [entry.n_train, entry.n_val, entry.n_test])?;
        Ok(DataSource::Images {
            path: resolve(&entry.path),
            format: ImageFormat::Nyuv2 { target, classes, size },
            split,
        })
    }

    /// `size = [height, width]` of a dense layout.
    fn dense_size(&self, i: usize, size: Option<Vec<usize>>) -> Result<Option<(usize, usize)>, ConfigError> {
        match size.as_deref() {
            None => Ok(None),
            Some(&[h, w]) if (1..=4096).contains(&h) && (1..=4096).contains(&w) => Ok(Some((h, w))),
            Some(_) => self.fail(
                &[Key("tasks"), Index(i), Key("data"), Key("size")],
                "give [height, width], each 1 to 4096, e.g. [96, 128]",
            ),
        }
    }

    /// `format = "qm9"`: QM9's raw files, one task per `target` (or one task of several);
    /// the splits are carved (LibMTL's QM9: 10,000 validation and 10,000 test molecules).
    pub(super) fn qm9(
        &self,
        i: usize,
        entry: Qm9Entry,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<DataSource, ConfigError> {
        use mtl_data::formats::molecules::QM9_TARGETS;
        let at = [Key("tasks"), Index(i), Key("data"), Key("target")];
        let targets = entry.target.into_vec();
        if targets.is_empty() {
            return self.fail(&at, "give a target, e.g. target = \"mu\", or a list of them");
        }
        for (k, target) in targets.iter().enumerate() {
            if !QM9_TARGETS.iter().any(|t| t.name == target) {
                let known: Vec<&str> = QM9_TARGETS.iter().map(|t| t.name).collect();
                let message = format!("unknown QM9 target \"{target}\"; expected one of {}", known.join(", "));
                return self.fail(&at, message);
            }
            if targets[..k].contains(target) {
                return self.fail(&at, format!("\"{target}\" is listed twice"));
            }
        }
        let split = self.split(
            i,
            entry.val_size,
            entry.test_size,
            entry.carve,
            entry.seed,
            [entry.n_train, entry.n_val, entry.n_test],
        )?;
        Ok(DataSource::Molecules { path: resolve(&entry.path), targets, split })
    }

    /// `format = "image-masks"`: `images/` with `masks/` (segmentation, `classes` required),
    /// `depth/` (16-bit PNG divided by `depth_scale`, default 1, or `.npy`) and/or `normals/`
    /// (RGB PNG or `.npy`).
    pub(super) fn image_masks(
        &self,
        i: usize,
        entry: ImageMasksEntry,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<DataSource, ConfigError> {
        let at = |key: &'static str| [Key("tasks"), Index(i), Key("data"), Key(key)];
        let Some(target) = DenseTarget::from_name(&entry.task) else {
            let message =
                format!("unknown task \"{}\"; expected \"segmentation\", \"depth\" or \"normals\"", entry.task);
            return self.fail(&at("task"), message);
        };
        let segmentation = target == DenseTarget::Segmentation;
        for (key, given, fits) in [
            ("classes", entry.classes.is_some(), segmentation),
            ("ignore", entry.ignore.is_some(), segmentation),
            ("depth_scale", entry.depth_scale.is_some(), target == DenseTarget::Depth),
        ] {
            if given && !fits {
                return self.fail(&at(key), format!("{key} is not a setting of the {} task", target.name()));
            }
        }
        let ignore = entry.ignore.unwrap_or(255);
        let classes = match entry.classes {
            None if segmentation => return self.fail(&at("classes"), "give the number of classes, e.g. classes = 21"),
            None => 1,
            Some(c) if c == 0 || c > usize::from(ignore) => {
                return self
                    .fail(&at("classes"), format!("{c}: give 1 to {ignore} (every class below ignore = {ignore})"))
            }
            Some(c) => c,
        };
        let depth_scale = entry.depth_scale.unwrap_or(1.0);
        if !(depth_scale.is_finite() && depth_scale > 0.0) {
            return self.fail(
                &at("depth_scale"),
                format!("{depth_scale}: give the PNG value of one unit of depth, e.g. 1000 for millimetres"),
            );
        }
        let size = self.dense_size(i, entry.size)?;
        let split = self.split(
            i,
            entry.val_size,
            entry.test_size,
            entry.carve,
            entry.seed,
            [entry.n_train, entry.n_val, entry.n_test],
        )?;
        let format = ImageFormat::ImageMasks { target, classes, ignore, depth_scale, size };
        Ok(DataSource::Images { path: resolve(&entry.path), format, split })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The kind of the one task of a file that reads `image-masks` with `settings`, or the
    /// file's error.
    fn check(settings: &str) -> Result<&'static str, String> {
        let data = format!("{{ format = \"image-masks\", path = \"rooms\", {settings} }}");
        let text = format!("name = \"t\"\n\n[[tasks]]\nname = \"t0\"\ndata = {data}\n");
        let plan = crate::config::parse_str(&text, Path::new("x.toml")).map_err(|e| e.to_string())?;
        Ok(plan.tasks[0].data.kind())
    }

    #[test]
    fn image_masks_tasks_take_the_settings_of_their_target_only() {
        assert_eq!(check("task = \"normals\""), Ok("normals"));
        assert_eq!(check("task = \"depth\", depth_scale = 1000"), Ok("depth"));
        assert_eq!(check("task = \"segmentation\", classes = 3, ignore = 200"), Ok("segmentation"));
        for (settings, message) in [
            ("task = \"normals\", classes = 3", "tasks[0].data.classes: classes is not a setting of the normals task"),
            ("task = \"normals\", ignore = 0", "tasks[0].data.ignore: ignore is not a setting of the normals task"),
            (
                "task = \"normals\", depth_scale = 1000",
                "tasks[0].data.depth_scale: depth_scale is not a setting of the normals task",
            ),
            (
                "task = \"segmentation\", classes = 3, depth_scale = 1000",
                "depth_scale is not a setting of the segmentation task",
            ),
            ("task = \"depth\", classes = 3", "classes is not a setting of the depth task"),
            ("task = \"height\"", "unknown task \"height\"; expected \"segmentation\", \"depth\" or \"normals\""),
        ] {
            let error = check(settings).expect_err(settings);
            assert!(error.contains(message), "{settings}: {error}");
        }
    }
}
