//! `mtl data inspect` of the image/mask layout (`format = "image-masks"`, read by
//! [`crate::formats::images::masks`]): per split folder (`train/`, `val/`, `test/`, or the
//! root when it has none), its images and their sizes, the images that lack a mask, depth
//! or normals file, the pixels of each mask value, how masks, depth and normals are
//! stored, the raw depth range (to choose `depth_scale`) and unmeasured share, the unknown
//! share of normals, and the problems a run would refuse, each naming its file.
//!
//! One file is read at a time and only counts are kept, so memory does not grow with the
//! data set; at most [`MAX_EXAMINED`] images of each split are read.
//!
//! ```no_run
//! let summary = mtl_data::inspect::masks::summary("data/streets".as_ref())?;
//! println!("{} training images", summary.splits[0].images);
//! # Ok::<(), mtl_data::DataError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{Format, Inspection, SplitSummary};
use crate::files::{self, Expected};
use crate::formats::images::masks::{describe_png, read_normals_npy, read_normals_png, read_png, IMAGE_EXTENSIONS};
use crate::formats::npy::read_npy;
use crate::DataError;

/// Images read per split folder: the first ones by name.
pub const MAX_EXAMINED: usize = 2_000;

/// Problems listed per split folder; the rest are counted.
const MAX_PROBLEMS: usize = 20;

/// The split folders a run reads beside `train/`.
const SPLIT_FOLDERS: [&str; 3] = ["train", "val", "test"];

/// File names shown in one list.
const SHOWN: usize = 5;

/// The mask value shown as unlabelled (the reader's default `ignore`).
const UNLABELLED: usize = 255;

/// The target folders, the extensions a run reads in each, and the task that needs it.
const TARGETS: [(&str, &[&str], &str); 3] =
    [("masks", &["png"], "segmentation"), ("depth", &["png", "npy"], "depth"), ("normals", &["png", "npy"], "normals")];

/// File names: up to [`SHOWN`], and how many there are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Named {
    /// The first names.
    pub shown: Vec<String>,
    /// How many.
    pub count: usize,
}

impl Named {
    fn add(&mut self, name: &str) {
        if self.shown.len() < SHOWN {
            self.shown.push(name.to_owned());
        }
        self.count += 1;
    }

    /// `a.png, b.png, …`.
    fn list(&self) -> String {
        let more = if self.count > self.shown.len() { ", …" } else { "" };
        format!("{}{more}", self.shown.join(", "))
    }
}

/// A target folder (`masks/`, `depth/` or `normals/`) of a split folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetFolder {
    /// Its files of the target's extensions (`.png`; depth and normals also `.npy`).
    pub files: usize,
    /// The images that have no file here.
    pub missing: Named,
}

/// What one split folder holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaskSplit {
    /// `train`, `val` or `test` (`train` for a root without split folders).
    pub name: &'static str,
    /// The folder holding `images/`.
    pub dir: PathBuf,
    /// Its images (`.png`, `.jpg`, `.jpeg`, `.bmp` in `images/`).
    pub images: usize,
    /// Files in `images/` that are not images, which a run does not read.
    pub not_images: Named,
    /// The images read: the first [`MAX_EXAMINED`] by name.
    pub examined: usize,
    /// The examined images' `(height, width)`, with how many have each.
    pub sizes: BTreeMap<(usize, usize), usize>,
    /// `masks/`, where it is a folder.
    pub masks: Option<TargetFolder>,
    /// `depth/`, where it is a folder.
    pub depth: Option<TargetFolder>,
    /// Pixels of each mask value, indexed by the value (256 entries).
    pub mask_pixels: Vec<u64>,
    /// How the masks read are stored ("8-bit palette", …), with how many.
    pub mask_kinds: BTreeMap<String, usize>,
    /// Masks of another size than their image.
    pub mask_size_differs: Named,
    /// How the depth files read are stored ("16-bit grayscale PNG", ".npy"), with how many.
    pub depth_kinds: BTreeMap<String, usize>,
    /// The smallest and largest raw value of the 16-bit depth PNGs' measured (non-zero) pixels.
    pub depth_png_range: Option<(u16, u16)>,
    /// The smallest and largest depth of the `.npy` files' measured (non-zero) pixels.
    pub depth_npy_range: Option<(f32, f32)>,
    /// Depth pixels: unmeasured (0), and all.
    pub depth_zero: (u64, u64),
    /// `normals/`, where it is a folder.
    pub normals: Option<TargetFolder>,
    /// How the normals files read are stored ("8-bit RGB PNG", ".npy"), with how many.
    pub normals_kinds: BTreeMap<String, usize>,
    /// Pixels of the normals files read: unknown (all 0), and all.
    pub normals_unknown: (u64, u64),
    /// Problems, each naming its file: at most 20 …
    pub problems: Vec<String>,
    /// … and how many more there are.
    pub more_problems: usize,
    /// Files read (an image's header counts).
    pub files_read: usize,
}

/// What `mtl data inspect` shows of the layout.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskSummary {
    /// Whether the root has `train/` (then `val/` and `test/` are read where they are), or
    /// holds `images/` itself.
    pub split_folders: bool,
    /// `train`, then `val` and `test` where they are.
    pub splits: Vec<MaskSplit>,
}

/// Whether `dir/images/` holds an image file (not only class folders).
fn holds_images(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("images")).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| is_image(&e.path()) && e.file_type().is_ok_and(|t| !t.is_dir())))
    })
}

fn is_image(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Whether `root` looks like the layout: it (or its `train/`) holds `images/` with image
/// files in it, beside `masks/`, `depth/` or `normals/`.
pub(super) fn is_layout(root: &Path) -> bool {
    [root.to_path_buf(), root.join("train")]
        .iter()
        .any(|dir| holds_images(dir) && TARGETS.iter().any(|(folder, ..)| dir.join(folder).is_dir()))
}

/// The [`MaskSummary`] of the layout under `root`.
pub fn summary(root: &Path) -> Result<MaskSummary, DataError> {
    summary_of(root, MAX_EXAMINED)
}

fn summary_of(root: &Path, max_examined: usize) -> Result<MaskSummary, DataError> {
    files::check_kind(root, Expected::Folder)?;
    // As the reader decides: a train/ folder makes the root's split folders the splits.
    let split_folders = root.join("train").is_dir();
    let mut splits = Vec::new();
    if split_folders {
        for name in SPLIT_FOLDERS {
            let dir = root.join(name);
            if name == "train" || dir.is_dir() {
                splits.push(split_summary(&dir, name, max_examined)?);
            }
        }
    } else {
        splits.push(split_summary(root, "train", max_examined)?);
    }
    Ok(MaskSummary { split_folders, splits })
}

/// The file names of `folder`, sorted (an error past 10,000,000).
fn listing(folder: &Path) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|e| DataError::io(folder, e))? {
        let entry = entry.map_err(|e| DataError::io(folder, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
        if names.len() > 10_000_000 {
            return Err(DataError::invalid(folder, "more than 10,000,000 files"));
        }
    }
    names.sort();
    Ok(names)
}

/// An error as one line: an I/O error with its cause.
fn message(e: &DataError) -> String {
    match e {
        DataError::Io { path, source } => format!("{}: {source}", path.display()),
        e => e.to_string(),
    }
}

/// The PNG's color type and bit depth from its header, e.g. "8-bit palette".
fn png_kind(path: &Path) -> Result<String, DataError> {
    let (file, _) = files::open(path)?;
    let reader = png::Decoder::new(BufReader::new(file))
        .read_info()
        .map_err(|e| DataError::invalid(path, format!("not a readable PNG: {e}")))?;
    Ok(describe_png(reader.info().color_type, reader.info().bit_depth))
}

/// Extends `range` to hold `value`.
fn widen<T: PartialOrd + Copy>(range: &mut Option<(T, T)>, value: T) {
    *range = Some(match *range {
        None => (value, value),
        Some((lo, hi)) => (if value < lo { value } else { lo }, if value > hi { value } else { hi }),
    });
}

impl MaskSplit {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        } else {
            self.more_problems += 1;
        }
    }

    /// Notes a problem when a target of `shape` is not its image's `size` (where known).
    fn same_size(&mut self, path: &Path, image: &str, shape: (usize, usize), size: Option<(usize, usize)>) -> bool {
        match size {
            Some((h, w)) if (h, w) != shape => {
                self.problem(format!("{}: {}×{}, but its image {image} is {h}×{w}", path.display(), shape.0, shape.1));
                false
            }
            _ => true,
        }
    }

    /// Reads the mask at `path`: its kind, its values' pixels and its size against the image's.
    fn mask(&mut self, path: &Path, image: &str, size: Option<(usize, usize)>) {
        let kind = match png_kind(path) {
            Ok(kind) => kind,
            Err(e) => return self.problem(message(&e)),
        };
        *self.mask_kinds.entry(kind).or_default() += 1;
        self.files_read += 1;
        match read_png(path, 8) {
            Ok((values, shape)) => {
                values.iter().for_each(|&v| self.mask_pixels[usize::from(v)] += 1);
                if !self.same_size(path, image, shape, size) {
                    self.mask_size_differs.add(image);
                }
            }
            Err(e) => self.problem(message(&e)),
        }
    }

    /// Reads the depth file `png` (or the `.npy` beside it): its kind, range, unmeasured
    /// pixels and size against the image's.
    fn depth(&mut self, png: &Path, npy: bool, image: &str, size: Option<(usize, usize)>) {
        if npy {
            let path = png.with_extension("npy");
            let array = match read_npy(&path) {
                Ok(array) => array,
                Err(e) => return self.problem(message(&e)),
            };
            self.files_read += 1;
            *self.depth_kinds.entry(".npy".into()).or_default() += 1;
            let shape = match array.shape[..] {
                [h, w] | [h, w, 1] => (h, w),
                _ => {
                    let shape = &array.shape;
                    return self.problem(format!("{}: shape {shape:?}, expected [H, W] or [H, W, 1]", path.display()));
                }
            };
            self.same_size(&path, image, shape, size);
            let values = array.to_f32();
            let bad = values.iter().filter(|v| !v.is_finite() || **v < 0.0).count();
            if let Some(first) = values.iter().find(|v| !v.is_finite() || **v < 0.0) {
                self.problem(format!(
                    "{}: {bad} depth(s) are negative or not finite (first: {first}); give finite depths ≥ 0 (0 \
                     unmeasured)",
                    path.display()
                ));
            }
            self.depth_zero.1 += values.len() as u64;
            for v in values {
                if v == 0.0 {
                    self.depth_zero.0 += 1;
                } else if v.is_finite() && v > 0.0 {
                    widen(&mut self.depth_npy_range, v);
                }
            }
            return;
        }
        let kind = match png_kind(png) {
            Ok(kind) => kind,
            Err(e) => return self.problem(message(&e)),
        };
        *self.depth_kinds.entry(format!("{kind} PNG")).or_default() += 1;
        self.files_read += 1;
        match read_png(png, 16) {
            Ok((values, shape)) => {
                self.same_size(png, image, shape, size);
                self.depth_zero.1 += values.len() as u64;
                for v in values {
                    if v == 0 {
                        self.depth_zero.0 += 1;
                    } else {
                        widen(&mut self.depth_png_range, v);
                    }
                }
            }
            Err(e) => self.problem(message(&e)),
        }
    }

    /// Reads the normals file `png` (or the `.npy` beside it) as a run does: its kind, its
    /// unknown (all 0) pixels and its size against the image's.
    fn normals(&mut self, png: &Path, npy: bool, image: &str, size: Option<(usize, usize)>) {
        // A PNG counts by its header (a grayscale one too, so that the note shows it); a
        // .npy once it is read.
        let (path, kind, read) = if npy {
            let path = png.with_extension("npy");
            let read = read_normals_npy(&path);
            (path, read.is_ok().then(|| ".npy".to_owned()), read)
        } else {
            match png_kind(png) {
                Ok(kind) => (png.to_path_buf(), Some(format!("{kind} PNG")), read_normals_png(png)),
                Err(e) => return self.problem(message(&e)),
            }
        };
        if let Some(kind) = kind {
            *self.normals_kinds.entry(kind).or_default() += 1;
            self.files_read += 1;
        }
        match read {
            Ok((normals, shape)) => {
                self.same_size(&path, image, shape, size);
                self.normals_unknown.1 += (normals.len() / 3) as u64;
                self.normals_unknown.0 +=
                    normals.chunks_exact(3).filter(|n| n.iter().all(|&v| v == 0.0)).count() as u64;
            }
            Err(e) => self.problem(message(&e)),
        }
    }
}

/// The stems of `folder`'s files with one of `extensions`, with the stems that have a `.npy`.
fn stems(folder: &Path, extensions: &[&str]) -> Result<(BTreeSet<String>, BTreeSet<String>), DataError> {
    let (mut found, mut npy) = (BTreeSet::new(), BTreeSet::new());
    for name in listing(folder)? {
        if let Some((stem, extension)) = name.rsplit_once('.') {
            if extensions.contains(&extension) {
                found.insert(stem.to_owned());
                if extension == "npy" {
                    npy.insert(stem.to_owned());
                }
            }
        }
    }
    Ok((found, npy))
}

fn split_summary(dir: &Path, name: &'static str, max_examined: usize) -> Result<MaskSplit, DataError> {
    let mut split = MaskSplit { name, dir: dir.to_path_buf(), mask_pixels: vec![0; 256], ..MaskSplit::default() };
    let image_dir = dir.join("images");
    if !image_dir.is_dir() {
        let what = if image_dir.exists() { "not a folder" } else { "missing" };
        split.problem(format!("{}: {what}; every split folder needs images/", image_dir.display()));
        return Ok(split);
    }
    let mut images = Vec::new();
    for file in listing(&image_dir)? {
        if is_image(Path::new(&file)) {
            images.push(file);
        } else if !file.starts_with('.') {
            split.not_images.add(&file);
        }
    }
    split.images = images.len();
    let stem = |image: &str| image.rsplit_once('.').map_or(image, |(s, _)| s).to_owned();
    // Per target folder (in `TARGETS`' order): the stems of its files, and those with a .npy.
    let mut found: [Option<BTreeSet<String>>; 3] = Default::default();
    let mut with_npy: [BTreeSet<String>; 3] = Default::default();
    for (t, (folder, extensions, task)) in TARGETS.into_iter().enumerate() {
        let folder = dir.join(folder);
        if !folder.is_dir() {
            continue;
        }
        let (stems, npy) = stems(&folder, extensions)?;
        let mut target = TargetFolder { files: stems.len(), ..TargetFolder::default() };
        images.iter().filter(|i| !stems.contains(&stem(i))).for_each(|i| target.missing.add(i));
        if let Some(first) = target.missing.shown.first() {
            split.problem(format!(
                "{}: {} of the {} images have no file (missing for: {}): a {task} task fails at {first}",
                folder.display(),
                target.missing.count,
                images.len(),
                target.missing.list()
            ));
        }
        *[&mut split.masks, &mut split.depth, &mut split.normals][t] = Some(target);
        (found[t], with_npy[t]) = (Some(stems), npy);
    }
    for image in images.iter().take(max_examined) {
        split.examined += 1;
        let path = image_dir.join(image);
        // Checked before opening: opening a FIFO blocks.
        let dimensions = files::check_kind(&path, Expected::File)
            .and_then(|_| image::image_dimensions(&path).map_err(|e| DataError::invalid(&path, e.to_string())));
        let size = match dimensions {
            Ok((w, h)) => {
                split.files_read += 1;
                *split.sizes.entry((h as usize, w as usize)).or_default() += 1;
                Some((h as usize, w as usize))
            }
            Err(e) => {
                split.problem(format!("unreadable image {}", message(&e)));
                None
            }
        };
        let stem = stem(image);
        // A missing file is one problem of its folder, not one per file.
        if found[0].as_ref().is_some_and(|s| s.contains(&stem)) {
            split.mask(&dir.join("masks").join(format!("{stem}.png")), image, size);
        }
        if found[1].as_ref().is_some_and(|s| s.contains(&stem)) {
            split.depth(&dir.join("depth").join(format!("{stem}.png")), with_npy[1].contains(&stem), image, size);
        }
        if found[2].as_ref().is_some_and(|s| s.contains(&stem)) {
            split.normals(&dir.join("normals").join(format!("{stem}.png")), with_npy[2].contains(&stem), image, size);
        }
    }
    Ok(split)
}

/// `part` of `whole` as a percentage.
fn percent(part: u64, whole: u64) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole.max(1) as f64)
}

/// `8-bit palette (3), 8-bit grayscale (1)`.
fn counted(kinds: &BTreeMap<String, usize>) -> String {
    kinds.iter().map(|(kind, n)| format!("{kind} ({n})")).collect::<Vec<_>>().join(", ")
}

/// The inspection `mtl data inspect` prints: per split, its images and the pixels of each
/// mask value seen (255: unlabelled); the rest as notes.
pub(super) fn inspection(root: &Path) -> Result<Inspection, DataError> {
    inspection_of(root, MAX_EXAMINED)
}

fn inspection_of(root: &Path, max_examined: usize) -> Result<Inspection, DataError> {
    let MaskSummary { split_folders, splits } = summary_of(root, max_examined)?;
    let values: Vec<usize> = (0..256).filter(|&v| splits.iter().any(|s| s.mask_pixels[v] > 0)).collect();
    let class_names =
        values.iter().map(|&v| if v == UNLABELLED { "unlabelled".into() } else { v.to_string() }).collect();
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let mut summaries = Vec::new();
    for s in &splits {
        let at = if split_folders { format!("{}/: ", s.name) } else { String::new() };
        problems.extend(s.problems.iter().cloned());
        if s.more_problems > 0 {
            problems.push(format!("… and {} more problem(s) in {}", s.more_problems, s.dir.display()));
        }
        let folder = |name: &str, t: &Option<TargetFolder>| {
            t.as_ref().map_or(format!("{name}/ absent"), |t| format!("{name}/ {} files", t.files))
        };
        notes.push(format!(
            "{at}{} images; {}, {}, {}",
            s.images,
            folder("masks", &s.masks),
            folder("depth", &s.depth),
            folder("normals", &s.normals)
        ));
        if s.examined < s.images {
            notes.push(format!("{at}the first {} of {} images (by name) were read", s.examined, s.images));
        }
        if s.not_images.count > 0 {
            notes.push(format!(
                "{at}{} file(s) in images/ are not .png, .jpg, .jpeg or .bmp and are not read ({})",
                s.not_images.count,
                s.not_images.list()
            ));
        }
        if s.sizes.len() > 1 {
            let mut sizes: Vec<_> = s.sizes.iter().collect();
            sizes.sort_by_key(|&(_, n)| std::cmp::Reverse(*n));
            let more = if sizes.len() > SHOWN { ", …" } else { "" };
            let shown: Vec<String> = sizes.iter().take(SHOWN).map(|((h, w), n)| format!("{h}×{w} ({n})")).collect();
            notes.push(format!(
                "{at}images of {} sizes: {}{more}; a run resizes them to size = [h, w] (default: the first training \
                 image's)",
                s.sizes.len(),
                shown.join(", ")
            ));
        }
        if !s.mask_kinds.is_empty() {
            notes.push(format!("{at}masks: {}", counted(&s.mask_kinds)));
        }
        if s.mask_size_differs.count > 0 {
            notes.push(format!(
                "{at}{} mask(s) of another size than their image ({})",
                s.mask_size_differs.count,
                s.mask_size_differs.list()
            ));
        }
        if !s.depth_kinds.is_empty() {
            let mut ranges = Vec::new();
            if let Some((lo, hi)) = s.depth_png_range {
                ranges.push(format!("PNG values {lo} to {hi} (raw: a run divides them by depth_scale)"));
            }
            if let Some((lo, hi)) = s.depth_npy_range {
                ranges.push(format!(".npy depths {lo:.3} to {hi:.3}"));
            }
            if ranges.is_empty() {
                ranges.push("no measured pixel".into());
            }
            notes.push(format!(
                "{at}depth: {}; {} over the measured pixels; {} unmeasured (0)",
                counted(&s.depth_kinds),
                ranges.join(", "),
                percent(s.depth_zero.0, s.depth_zero.1)
            ));
        }
        if !s.normals_kinds.is_empty() {
            notes.push(format!(
                "{at}normals: {}; {} unknown (all 0: a (0, 0, 0) PNG pixel)",
                counted(&s.normals_kinds),
                percent(s.normals_unknown.0, s.normals_unknown.1)
            ));
        }
        let image_shape = match s.sizes.keys().collect::<Vec<_>>()[..] {
            [&(h, w)] => Some((3, h, w)),
            _ => None,
        };
        let per_class = values.iter().map(|&v| s.mask_pixels[v] as usize).collect();
        summaries.push(SplitSummary {
            name: s.name.into(),
            count: s.images,
            per_class,
            image_shape,
            text_lengths: None,
        });
    }
    // A target folder one split has and another lacks fails that task on the other.
    for (t, (name, _, task)) in TARGETS.into_iter().enumerate() {
        let has = |s: &MaskSplit| [&s.masks, &s.depth, &s.normals][t].is_some();
        if let Some(with) = splits.iter().find(|s| has(s)) {
            for s in splits.iter().filter(|s| !has(s) && s.images > 0) {
                problems.push(format!(
                    "{}: missing, though {}/ is there: a {task} task fails on {}/",
                    s.dir.join(name).display(),
                    with.dir.join(name).display(),
                    s.name
                ));
            }
        }
    }
    let classes: Vec<usize> = values.iter().copied().filter(|&v| v != UNLABELLED).collect();
    if let Some(&last) = classes.last() {
        let unlabelled = if values.contains(&UNLABELLED) { " and 255 (unlabelled)" } else { "" };
        notes.push(format!(
            "mask values {}{unlabelled}: a segmentation task needs classes = {} or more (a value ≥ classes other than \
             ignore = 255 is refused)",
            if classes.len() == last + 1 { format!("0 … {last}") } else { format!("{classes:?}") },
            last + 1
        ));
    }
    if !values.is_empty() {
        notes.push("per value: the pixels of masks/ holding it (255: unlabelled, the default ignore)".into());
    }
    if !split_folders {
        notes.push(
            "no train/ folder: these images are the training examples; a run carves val and test from them".into(),
        );
    } else {
        for name in ["val", "test"].into_iter().filter(|n| !splits.iter().any(|s| s.name == *n)) {
            notes.push(format!("no {name}/ folder: a run carves its {name} split from train/"));
        }
        if root.join("images").is_dir() {
            notes.push("images/ beside train/ is not read: with train/, the splits are train/, val/ and test/".into());
        }
    }
    let files_read = splits.iter().map(|s| s.files_read).sum();
    let mut inspection = Inspection::of(root, Format::ImageMasks, class_names, summaries, files_read, problems);
    inspection.notes = notes;
    Ok(inspection)
}

#[cfg(test)]
#[path = "masks_tests.rs"]
mod tests;
