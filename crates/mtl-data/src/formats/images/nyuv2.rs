//! NYUv2 as LibMTL preprocesses it (Liu et al. 2019's MTAN release): under the root,
//! `train/` and `val/` each hold `image/`, `label/`, `depth/` and `normal/` folders of
//! `<i>.npy` files, one per example and the same indices in each:
//!
//! | folder | shape | values |
//! |---|---|---|
//! | `image` | `[H, W, 3]` | RGB in [0, 1] |
//! | `label` | `[H, W]` | class 0 … C−1, or −1 where unlabelled |
//! | `depth` | `[H, W, 1]` (or `[H, W]`) | metres, 0 where unmeasured |
//! | `normal` | `[H, W, 3]` | unit vectors, all 0 where unknown |
//!
//! Any float or integer dtype the `.npy` reader takes is accepted. LibMTL trains on
//! `train/` and reports on `val/` (the 654 official test images), so `val/` is the test
//! split here and validation is carved from `train/`. Only the folders the tasks need are
//! read, and only the examples each split keeps. With `size`, images are resized
//! bilinearly and targets by nearest neighbour, so labels stay labels; without it, every
//! image of every split must have the size of the first one read.

use std::path::{Path, PathBuf};

use super::super::npy::{read_npy, NpyArray};
use crate::prepare::{kept_indices, SplitPolicy};
use crate::{files, DataError, Sourced, IGNORED_PIXEL};

/// The two folders of the layout: training, and the one LibMTL calls `val` (the test split).
pub const SPLITS: [&str; 2] = ["train", "val"];

/// The most values one split may hold per part (images, or one target): 2^30 (4 GiB of f32).
const MAX_SPLIT_VALUES: usize = 1 << 30;

/// Which target folders to read besides `image/`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DenseParts {
    /// `label/`: segmentation.
    pub label: bool,
    /// `depth/`.
    pub depth: bool,
    /// `normal/`.
    pub normal: bool,
}

/// What to read and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseOptions {
    /// The target folders.
    pub parts: DenseParts,
    /// Segmentation classes: labels must lie in `0..classes` (or be −1).
    pub classes: usize,
    /// `(height, width)` to resize to; `None` keeps the files' size.
    pub size: Option<(usize, usize)>,
}

/// One split: images `[n, 3, H, W]` and the targets read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DenseExamples {
    /// Rows of each image and map.
    pub height: usize,
    /// Columns of each image and map.
    pub width: usize,
    /// `n × 3 × H × W` pixels.
    pub pixels: Vec<f32>,
    /// `n × H × W` classes ([`IGNORED_PIXEL`] where unlabelled), if read.
    pub labels: Vec<u8>,
    /// `n × H × W` depths, if read.
    pub depth: Vec<f32>,
    /// `n × 3 × H × W` normals, if read.
    pub normals: Vec<f32>,
    /// Examples.
    pub n: usize,
}

/// The example indices of one split folder: its `image/<i>.npy` files, by number.
pub fn indices(split: &Path) -> Result<Vec<u64>, DataError> {
    let folder = split.join("image");
    files::check_kind(&folder, files::Expected::Folder)?;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&folder).map_err(|e| DataError::io(&folder, e))? {
        let entry = entry.map_err(|e| DataError::io(&folder, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".npy") {
            continue;
        }
        // `01.npy` would be read as `1.npy`: a name must be the index as the layout writes it.
        let index = npy_index(&name).ok_or_else(|| {
            DataError::invalid(entry.path(), "not <number>.npy: the layout names each example by its index")
        })?;
        found.push(index);
        if found.len() > 10_000_000 {
            return Err(DataError::invalid(&folder, "more than 10,000,000 files"));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// The index of a file named `<i>.npy`, `i` written as the layout writes it (no sign, no
/// leading zero); `None` for any other name.
pub(crate) fn npy_index(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".npy")?;
    stem.parse::<u64>().ok().filter(|index| index.to_string() == stem)
}

/// Reads the layout under `root` as `options` say: `train/` split into train and
/// validation by `policy`, `val/` as test, each cut to `policy.keep`.
pub fn nyuv2(root: &Path, options: &DenseOptions, policy: &SplitPolicy) -> Result<Sourced<DenseExamples>, DataError> {
    files::check_kind(root, files::Expected::Folder)?;
    if options.classes == 0 || options.classes > usize::from(IGNORED_PIXEL) {
        return Err(DataError::invalid(root, format!("classes = {}: give 1 to 255", options.classes)));
    }
    let (train_dir, test_dir) = (root.join(SPLITS[0]), root.join(SPLITS[1]));
    let (train_files, test_files) = (indices(&train_dir)?, indices(&test_dir)?);
    if train_files.is_empty() {
        return Err(DataError::invalid(train_dir.join("image"), "no <i>.npy files: no training examples"));
    }
    let lengths = [Some(train_files.len()), None, Some(test_files.len())];
    let (train, val, test) = kept_indices(lengths, policy).map_err(|m| DataError::invalid(root, m))?;
    let parts = options.parts;
    let files_per_example = 1 + usize::from(parts.label) + usize::from(parts.depth) + usize::from(parts.normal);
    let mut files_read = 0;
    // Every split has the first image's size (without `size`): a test split of another
    // size would be read as if it had the training split's.
    let mut first = None;
    let mut read = |dir: &Path, files: &[u64], kept: Vec<usize>| -> Result<DenseExamples, DataError> {
        let examples = read_split(dir, kept.iter().map(|&i| files[i]), options, &mut first)?;
        files_read += kept.len() * files_per_example;
        Ok(examples)
    };
    let (train, val, test) = (
        read(&train_dir, &train_files, train)?,
        read(&train_dir, &train_files, val)?,
        read(&test_dir, &test_files, test)?,
    );
    if train.n == 0 {
        return Err(DataError::invalid(&train_dir, "no training examples"));
    }
    // An empty split still has the maps' size.
    let sized = |split: DenseExamples| DenseExamples { height: train.height, width: train.width, ..split };
    let (val, test) = (sized(val), sized(test));
    let report = crate::LoadReport { files_read, ..Default::default() };
    Ok(Sourced { class_names: Vec::new(), train, val: Some(val), test: Some(test), report })
}

/// Reads the examples `indices` of the split folder `dir`; `first` is the first image read
/// of any split and its size, which every image must have unless `options.size` is given.
fn read_split(
    dir: &Path,
    indices: impl Iterator<Item = u64>,
    options: &DenseOptions,
    first: &mut Option<(PathBuf, (usize, usize))>,
) -> Result<DenseExamples, DataError> {
    let mut split = DenseExamples::default();
    for index in indices {
        let file = |part: &str| dir.join(part).join(format!("{index}.npy"));
        let image_path = file("image");
        let image = read_npy(&image_path)?;
        let (height, width) = match image.shape[..] {
            [h, w, 3] if h > 0 && w > 0 => (h, w),
            _ => return Err(shape_error(&image_path, &image, "[H, W, 3] (RGB, channels last)")),
        };
        match first {
            None => *first = Some((image_path.clone(), (height, width))),
            Some((first_path, (h, w))) if options.size.is_none() && (height, width) != (*h, *w) => {
                let message = format!(
                    "{height}×{width}, but {} is {h}×{w}: give size = [h, w] to resize all",
                    first_path.display()
                );
                return Err(DataError::invalid(&image_path, message));
            }
            Some(_) => {}
        }
        let (out_h, out_w) = options.size.unwrap_or((height, width));
        (split.height, split.width) = (out_h, out_w);
        if (split.n + 1) * 3 * out_h * out_w > MAX_SPLIT_VALUES {
            return Err(DataError::invalid(
                dir,
                "the split exceeds 2^30 pixel values: keep fewer (n_train …) or resize",
            ));
        }
        let hwc = finite(&image_path, image.to_f32())?;
        let chw = channels_first(&hwc, height * width, 3);
        split.pixels.extend(resize_bilinear(&chw, 3, (height, width), (out_h, out_w)));
        let same_size = |path: &PathBuf, array: &NpyArray, channels: usize| -> Result<(), DataError> {
            let ok = match (array.shape[..].len(), channels) {
                (2, 1) => array.shape[..] == [height, width],
                _ => array.shape[..] == [height, width, channels],
            };
            if ok {
                Ok(())
            } else {
                let expected = if channels == 1 { "[H, W] or [H, W, 1]" } else { "[H, W, 3]" };
                Err(shape_error(path, array, &format!("{expected} with the image's H × W = {height} × {width}")))
            }
        };
        if options.parts.label {
            let path = file("label");
            let array = read_npy(&path)?;
            same_size(&path, &array, 1)?;
            let labels = array
                .to_f32()
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    -1.0 => Ok(IGNORED_PIXEL),
                    v if v >= 0.0 && v.fract() == 0.0 && (v as usize) < options.classes => Ok(v as u8),
                    v => Err(DataError::invalid(
                        &path,
                        format!(
                            "label {v} at row {}, column {} is neither a class 0 … {} nor −1 (unlabelled)",
                            i / width,
                            i % width,
                            options.classes - 1
                        ),
                    )),
                })
                .collect::<Result<Vec<u8>, _>>()?;
            split.labels.extend(resize_nearest(&labels, 1, (height, width), (out_h, out_w)));
        }
        if options.parts.depth {
            let path = file("depth");
            let array = read_npy(&path)?;
            same_size(&path, &array, 1)?;
            let depth = finite(&path, array.to_f32())?;
            if let Some(i) = depth.iter().position(|&v| v < 0.0) {
                let (v, row, column) = (depth[i], i / width, i % width);
                let message = format!("negative depth {v} at row {row}, column {column} (0 marks an unmeasured pixel)");
                return Err(DataError::invalid(&path, message));
            }
            split.depth.extend(resize_nearest(&depth, 1, (height, width), (out_h, out_w)));
        }
        if options.parts.normal {
            let path = file("normal");
            let array = read_npy(&path)?;
            same_size(&path, &array, 3)?;
            let normals = channels_first(&finite(&path, array.to_f32())?, height * width, 3);
            split.normals.extend(resize_nearest(&normals, 3, (height, width), (out_h, out_w)));
        }
        split.n += 1;
    }
    Ok(split)
}

fn shape_error(path: &Path, array: &NpyArray, expected: &str) -> DataError {
    DataError::invalid(path, format!("shape {:?}, expected {expected}", array.shape))
}

fn finite(path: &Path, values: Vec<f32>) -> Result<Vec<f32>, DataError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(DataError::invalid(path, format!("value {} at flat index {i} is not finite", values[i]))),
        None => Ok(values),
    }
}

/// `[positions, channels]` → `[channels, positions]`.
fn channels_first(values: &[f32], positions: usize, channels: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for p in 0..positions {
        for c in 0..channels {
            out[c * positions + p] = values[p * channels + c];
        }
    }
    out
}

/// Nearest-neighbour resize of `[channels, h, w]` maps (pixel centres aligned, as
/// PyTorch's `nearest-exact`).
pub fn resize_nearest<T: Copy>(values: &[T], channels: usize, from: (usize, usize), to: (usize, usize)) -> Vec<T> {
    if from == to {
        return values.to_vec();
    }
    let source = |out: usize, n_out: usize, n_in: usize| {
        (((out as f64 + 0.5) * n_in as f64 / n_out as f64) as usize).min(n_in - 1)
    };
    let mut out = Vec::with_capacity(channels * to.0 * to.1);
    for c in 0..channels {
        for y in 0..to.0 {
            let sy = source(y, to.0, from.0);
            out.extend((0..to.1).map(|x| values[(c * from.0 + sy) * from.1 + source(x, to.1, from.1)]));
        }
    }
    out
}

/// Bilinear resize of `[channels, h, w]` maps (pixel centres aligned, as PyTorch's
/// `align_corners=False`, without antialiasing).
pub fn resize_bilinear(values: &[f32], channels: usize, from: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    if from == to {
        return values.to_vec();
    }
    let taps = |n_out: usize, n_in: usize| -> Vec<(usize, usize, f32)> {
        (0..n_out)
            .map(|o| {
                let x = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
                let lo = (x.floor() as usize).min(n_in - 1);
                let hi = (lo + 1).min(n_in - 1);
                (lo, hi, (x - lo as f64) as f32)
            })
            .collect()
    };
    let (rows, cols) = (taps(to.0, from.0), taps(to.1, from.1));
    let mut out = Vec::with_capacity(channels * to.0 * to.1);
    for c in 0..channels {
        let plane = &values[c * from.0 * from.1..(c + 1) * from.0 * from.1];
        for &(y0, y1, fy) in &rows {
            for &(x0, x1, fx) in &cols {
                let at = |y: usize, x: usize| plane[y * from.1 + x];
                let top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * fx;
                let bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * fx;
                out.push(top + (bottom - top) * fy);
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "nyuv2_tests.rs"]
pub(crate) mod tests;
