//! `mtl data inspect` of LibMTL's NYUv2 layout (`format = "nyuv2"`, read by
//! [`crate::formats::images::nyuv2`]): per split folder, its examples and image sizes, the
//! target folders and their files, what the values hold (each class's share of the
//! labelled pixels, the depth range, the invalid pixels) and the problems a run would
//! refuse, each naming its file.
//!
//! One file is read at a time and only counts are kept, so memory does not grow with the
//! data set; at most [`MAX_EXAMINED`] examples of each split are read.
//!
//! ```no_run
//! let summary = mtl_data::inspect::dense::summary("data/nyuv2".as_ref())?;
//! println!("{} training examples", summary.splits[0].examples);
//! # Ok::<(), mtl_data::DataError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Format, Inspection, SplitSummary};
use crate::files::{self, Expected};
use crate::formats::images::nyuv2::{npy_index, SPLITS};
use crate::formats::npy::{read_npy, NpyArray};
use crate::DataError;

/// Examples read per split folder: the first ones by index.
pub const MAX_EXAMINED: usize = 2_000;

/// Problems listed per split folder; the rest are counted.
const MAX_PROBLEMS: usize = 20;

/// The target folders beside `image/`.
pub const TARGETS: [&str; 3] = ["label", "depth", "normal"];

/// The largest class a label file may hold (255 is the unlabelled pixel once read).
const MAX_CLASS: usize = 254;

/// One target folder of a split folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetFolder {
    /// Whether the folder is there.
    pub present: bool,
    /// Its `<i>.npy` files.
    pub files: usize,
    /// The indices of `image/` that have no file here: up to 5, and how many.
    pub missing: (Vec<u64>, usize),
}

/// What one split folder (`train/` or `val/`) holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DenseSplit {
    /// `train` or `val`.
    pub name: &'static str,
    /// Its `image/<i>.npy` files.
    pub examples: usize,
    /// The examples read: the first [`MAX_EXAMINED`] by index.
    pub examined: usize,
    /// The examined images' `(height, width)`, with how many have each.
    pub sizes: BTreeMap<(usize, usize), usize>,
    /// `label/`, `depth/` and `normal/`, in [`TARGETS`]' order.
    pub targets: [TargetFolder; 3],
    /// Pixels of each class, up to the largest class seen.
    pub label_pixels: Vec<u64>,
    /// Pixels labelled −1.
    pub unlabelled_pixels: u64,
    /// The smallest and largest image value.
    pub image_range: Option<(f32, f32)>,
    /// The smallest and largest depth of the measured (non-zero) pixels.
    pub depth_range: Option<(f32, f32)>,
    /// Depth pixels: unmeasured (0), and all.
    pub depth_invalid: (u64, u64),
    /// Normal pixels: unknown (all three 0), and all.
    pub normal_invalid: (u64, u64),
    /// Problems, each naming its file: at most 20 …
    pub problems: Vec<String>,
    /// … and how many more there are.
    pub more_problems: usize,
    /// Files read.
    pub files_read: usize,
}

/// What `mtl data inspect` shows of the layout: `train/`, then `val/`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseSummary {
    /// The split folders, in [`SPLITS`]' order.
    pub splits: Vec<DenseSplit>,
}

/// Whether `root` looks like the layout: `train/image/` or `val/image/` holds `.npy` files.
pub(super) fn is_layout(root: &Path) -> bool {
    SPLITS.iter().any(|split| {
        let folder = root.join(split).join("image");
        folder.is_dir()
            && std::fs::read_dir(&folder).is_ok_and(|mut entries| {
                entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".npy")))
            })
    })
}

/// The [`DenseSummary`] of the layout under `root`.
pub fn summary(root: &Path) -> Result<DenseSummary, DataError> {
    summary_of(root, MAX_EXAMINED)
}

fn summary_of(root: &Path, max_examined: usize) -> Result<DenseSummary, DataError> {
    files::check_kind(root, Expected::Folder)?;
    let splits = SPLITS.iter().map(|&name| split_summary(&root.join(name), name, max_examined));
    Ok(DenseSummary { splits: splits.collect::<Result<_, _>>()? })
}

/// The `<i>.npy` files of `folder` by index, sorted, and the `.npy` files not so named.
fn listing(folder: &Path) -> Result<(Vec<u64>, Vec<PathBuf>), DataError> {
    let (mut indices, mut misnamed) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(folder).map_err(|e| DataError::io(folder, e))? {
        let entry = entry.map_err(|e| DataError::io(folder, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match npy_index(&name) {
            Some(index) => indices.push(index),
            None if name.ends_with(".npy") => misnamed.push(entry.path()),
            None => {}
        }
        if indices.len() + misnamed.len() > 10_000_000 {
            return Err(DataError::invalid(folder, "more than 10,000,000 files"));
        }
    }
    indices.sort_unstable();
    misnamed.sort();
    Ok((indices, misnamed))
}

impl DenseSplit {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        } else {
            self.more_problems += 1;
        }
    }

    /// The array at `path`, or `None` with the problem noted.
    fn read(&mut self, path: &Path) -> Option<NpyArray> {
        match files::check_kind(path, Expected::File).and_then(|_| read_npy(path)) {
            Ok(array) => {
                self.files_read += 1;
                Some(array)
            }
            Err(e) => {
                self.problem(e.to_string());
                None
            }
        }
    }

    /// Whether `array` is `[H, W]` (when `channels` is 1) or `[H, W, channels]`, of the
    /// image's `size` where it is known; notes the problem when not.
    fn shaped(&mut self, path: &Path, array: &NpyArray, channels: usize, size: Option<(usize, usize)>) -> bool {
        let ok = match array.shape[..] {
            [h, w] if channels == 1 => size.is_none_or(|s| s == (h, w)),
            [h, w, c] if c == channels => size.is_none_or(|s| s == (h, w)),
            _ => false,
        };
        if !ok {
            let expected = if channels == 1 { "[H, W] or [H, W, 1]" } else { "[H, W, 3]" };
            let of = size.map_or(String::new(), |(h, w)| format!(" with the image's H × W = {h} × {w}"));
            self.problem(format!("{}: shape {:?}, expected {expected}{of}", path.display(), array.shape));
        }
        ok
    }

    /// Notes a problem when `values` are not all finite.
    fn finite(&mut self, path: &Path, values: &[f32]) {
        let bad = values.iter().filter(|v| !v.is_finite()).count();
        if let Some(first) = values.iter().position(|v| !v.is_finite()) {
            let message = format!(
                "{}: {bad} value(s) are not finite (first: {} at flat index {first})",
                path.display(),
                values[first]
            );
            self.problem(message);
        }
    }
}

/// Extends `range` to hold `value`.
fn widen(range: &mut Option<(f32, f32)>, value: f32) {
    *range = Some(range.map_or((value, value), |(lo, hi)| (lo.min(value), hi.max(value))));
}

fn split_summary(dir: &Path, name: &'static str, max_examined: usize) -> Result<DenseSplit, DataError> {
    let mut split = DenseSplit { name, ..DenseSplit::default() };
    let image_dir = dir.join("image");
    if !image_dir.is_dir() {
        let what = if image_dir.exists() { "not a folder" } else { "missing" };
        split.problem(format!("{}: {what}; the layout needs train/image/ and val/image/", image_dir.display()));
        return Ok(split);
    }
    let (indices, misnamed) = listing(&image_dir)?;
    split.examples = indices.len();
    for path in misnamed {
        split.problem(format!("{}: not <number>.npy: a run refuses the layout", path.display()));
    }
    // Each target folder's indices; `None` where it is absent.
    let mut found_in: [Option<Vec<u64>>; 3] = Default::default();
    for (t, target) in TARGETS.iter().enumerate() {
        let folder = dir.join(target);
        if !folder.is_dir() {
            continue;
        }
        let (found, misnamed) = listing(&folder)?;
        let missing: Vec<u64> = indices.iter().copied().filter(|i| found.binary_search(i).is_err()).collect();
        if let Some(&first) = missing.first() {
            let shown: Vec<String> = missing.iter().take(5).map(u64::to_string).collect();
            let more = if missing.len() > 5 { ", …" } else { "" };
            split.problem(format!(
                "{}: {} of the {} examples have no file (missing: {}{more}): a task reading {target}/ fails at {first}.npy",
                folder.display(),
                missing.len(),
                indices.len(),
                shown.join(", ")
            ));
        }
        for path in misnamed {
            split.problem(format!("{}: not <number>.npy", path.display()));
        }
        split.targets[t] = TargetFolder {
            present: true,
            files: found.len(),
            missing: (missing.iter().take(5).copied().collect(), missing.len()),
        };
        found_in[t] = Some(found);
    }
    let mut labels = vec![0u64; MAX_CLASS + 1];
    let mut out_of_range_images = (0usize, None);
    for &index in indices.iter().take(max_examined) {
        split.examined += 1;
        let file = |part: &str| dir.join(part).join(format!("{index}.npy"));
        // A missing file is one problem of its folder, not one per file.
        let has = |t: usize| found_in[t].as_ref().is_some_and(|found| found.binary_search(&index).is_ok());
        let mut size = None;
        let path = file("image");
        if let Some(image) = split.read(&path) {
            match image.shape[..] {
                [h, w, 3] if h > 0 && w > 0 => {
                    size = Some((h, w));
                    *split.sizes.entry((h, w)).or_default() += 1;
                }
                _ => split.problem(format!(
                    "{}: shape {:?}, expected [H, W, 3] (RGB, channels last)",
                    path.display(),
                    image.shape
                )),
            }
            let values = image.to_f32();
            split.finite(&path, &values);
            let mut range = None;
            values.iter().filter(|v| v.is_finite()).for_each(|&v| widen(&mut range, v));
            if let Some((lo, hi)) = range {
                widen(&mut split.image_range, lo);
                widen(&mut split.image_range, hi);
                if lo < 0.0 || hi > 1.0 {
                    out_of_range_images.0 += 1;
                    out_of_range_images.1.get_or_insert((path.clone(), lo, hi));
                }
            }
        }
        if has(0) {
            let path = file("label");
            if let Some(array) = split.read(&path).filter(|a| split.shaped(&path, a, 1, size)) {
                let width = array.shape[1];
                let (mut bad, mut first_bad) = (0, None);
                for (i, v) in array.to_f32().into_iter().enumerate() {
                    if v == -1.0 {
                        split.unlabelled_pixels += 1;
                    } else if v >= 0.0 && v.fract() == 0.0 && v as usize <= MAX_CLASS {
                        labels[v as usize] += 1;
                    } else {
                        bad += 1;
                        first_bad.get_or_insert((v, i / width, i % width));
                    }
                }
                if let Some((v, row, column)) = first_bad {
                    split.problem(format!(
                        "{}: {bad} label(s) are neither −1 (unlabelled) nor a class 0 … {MAX_CLASS} (first: {v} at row \
                         {row}, column {column})",
                        path.display()
                    ));
                }
            }
        }
        if has(1) {
            let path = file("depth");
            if let Some(array) = split.read(&path).filter(|a| split.shaped(&path, a, 1, size)) {
                let values = array.to_f32();
                split.finite(&path, &values);
                let negative = values.iter().filter(|&&v| v < 0.0).count();
                if negative > 0 {
                    split.problem(format!(
                        "{}: {negative} negative depth(s) (0 marks an unmeasured pixel)",
                        path.display()
                    ));
                }
                split.depth_invalid.1 += values.len() as u64;
                for v in values {
                    if v == 0.0 {
                        split.depth_invalid.0 += 1;
                    } else if v.is_finite() {
                        widen(&mut split.depth_range, v);
                    }
                }
            }
        }
        if has(2) {
            let path = file("normal");
            if let Some(array) = split.read(&path).filter(|a| split.shaped(&path, a, 3, size)) {
                let values = array.to_f32();
                split.finite(&path, &values);
                split.normal_invalid.1 += (values.len() / 3) as u64;
                split.normal_invalid.0 += values.chunks_exact(3).filter(|n| n.iter().all(|&v| v == 0.0)).count() as u64;
            }
        }
    }
    if let (n, Some((path, lo, hi))) = out_of_range_images {
        split.problem(format!(
            "{n} image(s) hold values outside [0, 1] (first: {}, {lo} to {hi}): the layout's images are RGB in [0, 1]",
            path.display()
        ));
    }
    let classes = labels.iter().rposition(|&n| n > 0).map_or(0, |last| last + 1);
    labels.truncate(classes);
    split.label_pixels = labels;
    Ok(split)
}

/// `part` of `whole` as a percentage.
fn percent(part: u64, whole: u64) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole.max(1) as f64)
}

/// The inspection `mtl data inspect` prints: per split folder, its examples and each class's
/// labelled pixels (a last column the unlabelled ones); the rest as notes.
pub(super) fn inspection(root: &Path) -> Result<Inspection, DataError> {
    inspection_of(root, MAX_EXAMINED)
}

fn inspection_of(root: &Path, max_examined: usize) -> Result<Inspection, DataError> {
    let DenseSummary { splits } = summary_of(root, max_examined)?;
    let classes = splits.iter().map(|s| s.label_pixels.len()).max().unwrap_or(0);
    let with_labels = splits.iter().any(|s| s.targets[0].present);
    let mut class_names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
    if with_labels {
        class_names.push("unlabelled".into());
    }
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let mut sizes = BTreeMap::new();
    let mut summaries = Vec::new();
    for s in &splits {
        problems.extend(s.problems.iter().cloned());
        if s.more_problems > 0 {
            problems.push(format!("… and {} more problem(s) in {}/", s.more_problems, s.name));
        }
        s.sizes.iter().for_each(|(&size, &n)| *sizes.entry(size).or_insert(0) += n);
        if s.examined < s.examples {
            notes
                .push(format!("{}/: the first {} of {} examples (by index) were read", s.name, s.examined, s.examples));
        }
        let folders: Vec<String> = TARGETS
            .iter()
            .zip(&s.targets)
            .map(|(name, t)| if t.present { format!("{name}/ {} files", t.files) } else { format!("{name}/ absent") })
            .collect();
        notes.push(format!("{}/: {} examples; {}", s.name, s.examples, folders.join(", ")));
        let labelled: u64 = s.label_pixels.iter().sum();
        if labelled + s.unlabelled_pixels > 0 {
            let shares: Vec<String> =
                s.label_pixels.iter().enumerate().map(|(c, &n)| format!("{c} {}", percent(n, labelled))).collect();
            notes.push(format!(
                "{}/: labels: {} of the pixels unlabelled (−1); of the labelled: {}",
                s.name,
                percent(s.unlabelled_pixels, labelled + s.unlabelled_pixels),
                if shares.is_empty() { "none".into() } else { shares.join(", ") }
            ));
        }
        if s.depth_invalid.1 > 0 {
            let range = s.depth_range.map_or("no measured pixel".into(), |(lo, hi)| format!("{lo:.3} to {hi:.3}"));
            notes.push(format!(
                "{}/: depth {range} over the measured pixels; {} unmeasured (0)",
                s.name,
                percent(s.depth_invalid.0, s.depth_invalid.1)
            ));
        }
        if s.normal_invalid.1 > 0 {
            notes.push(format!(
                "{}/: normals {} unknown (all 0)",
                s.name,
                percent(s.normal_invalid.0, s.normal_invalid.1)
            ));
        }
        let mut per_class: Vec<usize> =
            (0..classes).map(|c| s.label_pixels.get(c).map_or(0, |&n| n as usize)).collect();
        if with_labels {
            per_class.push(s.unlabelled_pixels as usize);
        }
        let image_shape = match s.sizes.keys().collect::<Vec<_>>()[..] {
            [&(h, w)] => Some((3, h, w)),
            _ => None,
        };
        summaries.push(SplitSummary {
            name: s.name.into(),
            count: s.examples,
            per_class,
            image_shape,
            text_lengths: None,
        });
    }
    if sizes.len() > 1 {
        let shown: Vec<String> = sizes.iter().map(|((h, w), n)| format!("{h}×{w} ({n})")).collect();
        notes.push(format!(
            "images of {} sizes: {}; an experiment reads them with size = [h, w]",
            sizes.len(),
            shown.join(", ")
        ));
    }
    if with_labels {
        notes.push("per class: the labelled pixels of label/ (unlabelled: −1)".into());
    }
    notes.push("val/ is a run's test split; validation is carved from train/ (val_size)".into());
    let files_read = splits.iter().map(|s| s.files_read).sum();
    let mut inspection = Inspection::of(root, Format::Nyuv2, class_names, summaries, files_read, problems);
    inspection.notes = notes;
    Ok(inspection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::images::nyuv2::tests::{example, layout, write_npy, Values};

    /// 3 train and 2 val examples of 4×6 (each: 6 pixels of each class 0, 1, 2 and 6
    /// unlabelled; depth 1 to 2, 0 where unlabelled; normals 0 there), spoiled: a stray
    /// `a.npy`, train's depth 2 missing, two bad labels in train's label 1, val's image 1
    /// channels first and no `val/normal/`.
    fn spoiled_layout(root: &Path) {
        layout(root, 3, 2, (4, 6));
        write_npy(&root.join("train/image/a.npy"), &[1, 1, 3], Values::F4(&[0.0; 3]));
        std::fs::remove_file(root.join("train/depth/2.npy")).expect("rm");
        let mut label = example(4, 6, 1).label;
        // Pixel 5 was class 1, pixel 6 class 2 (((p + 1) mod 4) − 1).
        (label[5], label[6]) = (300.0, f32::NAN);
        write_npy(&root.join("train/label/1.npy"), &[4, 6], Values::F4(&label));
        write_npy(&root.join("val/image/1.npy"), &[3, 4, 6], Values::F4(&[0.5; 72]));
        std::fs::remove_dir_all(root.join("val/normal")).expect("rm");
    }

    #[test]
    fn the_summary_counts_files_pixels_and_problems_by_file() {
        let dir = tempfile::tempdir().expect("dir");
        spoiled_layout(dir.path());
        let DenseSummary { splits } = summary(dir.path()).expect("summary");
        let [train, val] = &splits[..] else { panic!("{splits:?}") };
        let folder =
            |files, missing: &[u64]| TargetFolder { present: true, files, missing: (missing.to_vec(), missing.len()) };
        assert_eq!((train.examples, train.examined, train.files_read), (3, 3, 3 + 3 + 2 + 3));
        assert_eq!(train.sizes, BTreeMap::from([((4, 6), 3)]));
        assert_eq!(train.targets, [folder(3, &[]), folder(2, &[2]), folder(3, &[])]);
        assert_eq!((train.label_pixels.clone(), train.unlabelled_pixels), (vec![18, 17, 17], 18));
        assert_eq!((train.depth_range, train.depth_invalid), (Some((1.0, 2.0)), (12, 48)));
        assert_eq!(train.normal_invalid, (18, 72));
        let expected = [
            "train/image/a.npy: not <number>.npy",
            "train/depth: 1 of the 3 examples have no file (missing: 2): a task reading depth/ fails at 2.npy",
            "train/label/1.npy: 2 label(s) are neither −1 (unlabelled) nor a class 0 … 254 (first: 300 at row 0, column 5)",
        ];
        assert_eq!(train.problems.len(), expected.len(), "{:?}", train.problems);
        for (problem, expected) in train.problems.iter().zip(expected) {
            assert!(problem.contains(expected), "{problem:?} lacks {expected:?}");
        }
        assert_eq!((val.examples, val.files_read, val.sizes.len()), (2, 2 + 2 + 2, 1));
        assert_eq!(val.targets[2], TargetFolder::default());
        assert_eq!(
            (val.label_pixels.clone(), val.unlabelled_pixels, val.normal_invalid),
            (vec![12, 12, 12], 12, (0, 0))
        );
        assert_eq!(val.problems.len(), 1, "{:?}", val.problems);
        assert!(val.problems[0].contains("val/image/1.npy: shape [3, 4, 6], expected [H, W, 3]"), "{:?}", val.problems);
    }

    #[test]
    fn inspect_recognises_the_layout_and_shows_pixels_per_class_and_notes() {
        let dir = tempfile::tempdir().expect("dir");
        spoiled_layout(dir.path());
        let inspection = super::super::inspect(dir.path(), None).expect("inspects");
        assert_eq!(inspection.format, Format::Nyuv2);
        assert_eq!(inspection.class_names, ["0", "1", "2", "unlabelled"]);
        let rows: Vec<_> = inspection.splits.iter().map(|s| (s.name.as_str(), s.count, s.per_class.clone())).collect();
        assert_eq!(rows, [("train", 3, vec![18, 17, 17, 18]), ("val", 2, vec![12, 12, 12, 12])]);
        assert_eq!(inspection.splits[0].image_shape, Some((3, 4, 6)));
        assert_eq!((inspection.files_read, inspection.problems.len()), (17, 4));
        let notes = inspection.notes.join("\n");
        for expected in [
            "train/: 3 examples; label/ 3 files, depth/ 2 files, normal/ 3 files",
            "val/: 2 examples; label/ 2 files, depth/ 2 files, normal/ absent",
            "train/: labels: 25.7% of the pixels unlabelled (−1); of the labelled: 0 34.6%, 1 32.7%, 2 32.7%",
            "train/: depth 1.000 to 2.000 over the measured pixels; 25.0% unmeasured (0)",
            "train/: normals 25.0% unknown (all 0)",
        ] {
            assert!(notes.contains(expected), "{notes}\nlacks {expected:?}");
        }
        assert!(!notes.contains("were read"), "{notes}");
        // At most `max_examined` examples of a split are read, and the notes say so.
        let capped = inspection_of(dir.path(), 2).expect("inspects");
        assert!(
            capped.notes.iter().any(|n| n == "train/: the first 2 of 3 examples (by index) were read"),
            "{:?}",
            capped.notes
        );
        assert_eq!(capped.files_read, 2 * 4 + 2 + 2 + 2);
    }

    #[test]
    fn sizes_that_differ_are_noted_and_missing_split_folders_are_problems() {
        let dir = tempfile::tempdir().expect("dir");
        layout(dir.path(), 2, 0, (4, 6));
        crate::formats::images::nyuv2::tests::write_example(dir.path(), "train", 1, &example(2, 3, 1));
        let inspection = inspect_as_nyuv2(dir.path());
        assert_eq!(inspection.splits[0].image_shape, None);
        assert!(
            inspection.notes.iter().any(|n| n.starts_with("images of 2 sizes: 2×3 (1), 4×6 (1); ")),
            "{:?}",
            inspection.notes
        );
        assert_eq!(inspection.problems.len(), 1, "{:?}", inspection.problems);
        assert!(inspection.problems[0].contains("val/image: missing"), "{:?}", inspection.problems);
    }

    fn inspect_as_nyuv2(root: &Path) -> Inspection {
        super::super::inspect(root, Some(Format::Nyuv2)).expect("inspects")
    }
}
