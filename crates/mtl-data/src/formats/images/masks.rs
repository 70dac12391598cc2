//! The common image/mask layout of segmentation, depth and surface-normal sets: under the
//! root (or under each of `train/`, `val/`, `test/` where the set comes split),
//!
//! | folder | files | values |
//! |---|---|---|
//! | `images/` | `<name>.png`, `.jpg`, `.jpeg`, `.bmp` | RGB (grayscale is repeated) |
//! | `masks/` | `<name>.png`, 8-bit grayscale or 8-bit palette | class index per pixel; `ignore` (255) unlabelled |
//! | `depth/` | `<name>.png` 16-bit grayscale, or `<name>.npy` `[H, W]` / `[H, W, 1]` | depth × `depth_scale` (PNG) or depth (npy); 0 unmeasured |
//! | `normals/` | `<name>.png` 8- or 16-bit RGB, or `<name>.npy` `[H, W, 3]` | per channel `2·v/max − 1` (PNG, max 255 or 65535) or the vector (npy); all 0 unknown |
//!
//! Every image needs the target files of the tasks that read it, of its own size. Normals
//! that are not all 0 are scaled to unit length (a PNG's, quantised, are slightly off).
//! Images are resized bilinearly to `size` (default: the first training image's), masks,
//! depth and normals by nearest neighbour, so that labels stay labels. Splits the set lacks
//! are carved from its training examples.
//!
//! ```no_run
//! use mtl_data::formats::images::masks::{image_masks, MaskOptions};
//! use mtl_data::formats::images::nyuv2::DenseParts;
//! use mtl_data::prepare::{Amount, Carve, Keep, SplitPolicy};
//! let parts = DenseParts { label: true, depth: false, normal: true };
//! let options = MaskOptions { parts, classes: 21, ignore: 255, depth_scale: 1.0, size: Some((64, 96)) };
//! let (val, test) = (Amount::Fraction(0.1), Amount::Fraction(0.2));
//! let policy = SplitPolicy { val, test, carve: Carve::Random, seed: 0, keep: Keep::ALL };
//! let set = image_masks("data/rooms".as_ref(), &options, &policy)?;
//! assert_eq!(set.train.normals.len(), set.train.n * 3 * 64 * 96); // channels first, unit or all 0
//! # Ok::<(), mtl_data::DataError>(())
//! ```

use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::folder::{check_options, decode};
use super::nyuv2::{resize_nearest, DenseExamples, DenseParts};
use super::{file_name, sorted_entries, Fit, ImageFolderOptions, Unreadable};
use crate::formats::npy::read_npy;
use crate::prepare::{kept_indices, SplitPolicy};
use crate::{files, DataError, Sourced, IGNORED_PIXEL};

/// Image extensions read from `images/`.
pub(crate) const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// The most bytes one decoded mask, depth or normals PNG may take.
const MAX_PNG_BYTES: usize = 1 << 28;

/// How the layout is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskOptions {
    /// Which target folders to read: `label` is `masks/`, `depth` is `depth/`, `normal` is
    /// `normals/`.
    pub parts: DenseParts,
    /// Segmentation classes: mask values must lie in `0..classes` or be `ignore`.
    pub classes: usize,
    /// The mask value of unlabelled pixels.
    pub ignore: u8,
    /// A 16-bit depth PNG's value per unit of depth (e.g. 1000 for millimetres, 256 for KITTI).
    pub depth_scale: f64,
    /// `(height, width)` every example is resized to; `None`: the first training image's.
    pub size: Option<(usize, usize)>,
}

/// The images of one split folder (`images/` under it), sorted by name.
fn images_of(split: &Path) -> Result<Vec<PathBuf>, DataError> {
    let found: Vec<PathBuf> = sorted_entries(&split.join("images"))?
        .into_iter()
        .filter(|p| {
            let extension = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
        })
        .collect();
    Ok(found)
}

/// Reads the layout under `root`, split by `policy` (its own `train/`, `val/`, `test/`
/// folders where they exist, carved otherwise).
pub fn image_masks(
    root: &Path,
    options: &MaskOptions,
    policy: &SplitPolicy,
) -> Result<Sourced<DenseExamples>, DataError> {
    files::check_kind(root, files::Expected::Folder)?;
    if options.classes == 0
        || options.classes > usize::from(IGNORED_PIXEL)
        || usize::from(options.ignore) < options.classes
    {
        let message = format!(
            "classes = {} with ignore = {}: give 1 to 255 classes, all below ignore",
            options.classes, options.ignore
        );
        return Err(DataError::invalid(root, message));
    }
    if !(options.depth_scale.is_finite() && options.depth_scale > 0.0) {
        return Err(DataError::invalid(root, format!("depth_scale = {} must be above 0", options.depth_scale)));
    }
    let split_dirs = root.join("train").is_dir();
    let folder = |name: &str| if split_dirs { root.join(name) } else { root.to_path_buf() };
    let train_images = images_of(&folder("train"))?;
    let own = |name: &str| -> Result<Option<Vec<PathBuf>>, DataError> {
        let dir = root.join(name);
        if split_dirs && dir.is_dir() {
            Ok(Some(images_of(&dir)?))
        } else {
            Ok(None)
        }
    };
    let (val_images, test_images) = (own("val")?, own("test")?);
    let lengths = [Some(train_images.len()), val_images.as_ref().map(Vec::len), test_images.as_ref().map(Vec::len)];
    let (train, val, test) = kept_indices(lengths, policy).map_err(|m| DataError::invalid(root, m))?;
    let size = match (options.size, train_images.first()) {
        (Some(size), _) => size,
        (None, Some(first)) => {
            // Checked before opening: opening a FIFO blocks.
            files::check_kind(first, files::Expected::File)?;
            let (w, h) = image::image_dimensions(first).map_err(|e| DataError::invalid(first, e.to_string()))?;
            (h as usize, w as usize)
        }
        (None, None) => return Err(DataError::invalid(folder("train").join("images"), "no images")),
    };
    let image_options = ImageFolderOptions {
        channels: 3,
        height: size.0,
        width: size.1,
        fit: Fit::Stretch,
        on_unreadable: Unreadable::Fail,
    };
    check_options(root, &image_options)?;
    let read = |files: &[PathBuf], kept: Vec<usize>| -> Result<DenseExamples, DataError> {
        let mut split = DenseExamples { height: size.0, width: size.1, ..DenseExamples::default() };
        for i in kept {
            read_example(&files[i], options, &image_options, &mut split)?;
        }
        Ok(split)
    };
    let train_split = read(&train_images, train)?;
    if train_split.n == 0 {
        return Err(DataError::invalid(folder("train").join("images"), "no training images"));
    }
    let val_split = read(val_images.as_deref().unwrap_or(&train_images), val)?;
    let test_split = read(test_images.as_deref().unwrap_or(&train_images), test)?;
    let files_read = train_split.n + val_split.n + test_split.n;
    let report = crate::LoadReport { files_read, ..Default::default() };
    Ok(Sourced { class_names: Vec::new(), train: train_split, val: Some(val_split), test: Some(test_split), report })
}

/// Adds the image at `image_path` and its targets to `split`.
fn read_example(
    image_path: &Path,
    options: &MaskOptions,
    image_options: &ImageFolderOptions,
    split: &mut DenseExamples,
) -> Result<(), DataError> {
    // Checked before opening: opening a FIFO blocks.
    files::check_kind(image_path, files::Expected::File)?;
    let dims = image::image_dimensions(image_path).map_err(|e| DataError::invalid(image_path, e.to_string()))?;
    let from = (dims.1 as usize, dims.0 as usize);
    let to = (split.height, split.width);
    let pixels = decode(image_path, image_options)
        .map_err(|e| DataError::invalid(image_path, format!("unreadable image: {e}")))?;
    let folder = image_path.parent().and_then(Path::parent).unwrap_or(Path::new("."));
    let stem = image_path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let same_size = |path: &Path, (h, w): (usize, usize)| {
        if (h, w) == from {
            Ok(())
        } else {
            let message = format!("{h}×{w}, but its image {} is {}×{}", file_name(image_path), from.0, from.1);
            Err(DataError::invalid(path, message))
        }
    };
    if options.parts.label {
        let path = folder.join("masks").join(format!("{stem}.png"));
        let (values, shape) = read_png(&path, 8)?;
        same_size(&path, shape)?;
        let labels = values
            .into_iter()
            .map(|v| match v as u8 {
                v if v == options.ignore => Ok(IGNORED_PIXEL),
                v if usize::from(v) < options.classes => Ok(v),
                v => Err(DataError::invalid(
                    &path,
                    format!(
                        "mask value {v} is neither a class 0..{} nor ignore = {}",
                        options.classes - 1,
                        options.ignore
                    ),
                )),
            })
            .collect::<Result<Vec<u8>, _>>()?;
        split.labels.extend(resize_nearest(&labels, 1, from, to));
    }
    if options.parts.depth {
        let png = folder.join("depth").join(format!("{stem}.png"));
        let npy = png.with_extension("npy");
        let (depth, shape) = if npy.exists() {
            let array = read_npy(&npy)?;
            let shape = match array.shape[..] {
                [h, w] | [h, w, 1] => (h, w),
                _ => {
                    return Err(DataError::invalid(
                        &npy,
                        format!("shape {:?}, expected [H, W] or [H, W, 1]", array.shape),
                    ))
                }
            };
            (array.to_f32(), shape)
        } else {
            let (values, shape) = read_png(&png, 16)?;
            (values.into_iter().map(|v| (f64::from(v) / options.depth_scale) as f32).collect(), shape)
        };
        let file = if npy.exists() { &npy } else { &png };
        same_size(file, shape)?;
        if let Some(v) = depth.iter().find(|v| !v.is_finite() || **v < 0.0) {
            return Err(DataError::invalid(file, format!("depth {v}: give finite depths ≥ 0 (0 unmeasured)")));
        }
        split.depth.extend(resize_nearest(&depth, 1, from, to));
    }
    if options.parts.normal {
        let png = folder.join("normals").join(format!("{stem}.png"));
        let npy = png.with_extension("npy");
        let (file, (normals, shape)) = if npy.exists() {
            (&npy, read_normals_npy(&npy)?)
        } else if png.exists() {
            (&png, read_normals_png(&png)?)
        } else {
            let message = format!(
                "missing (and no {stem}.npy beside it): the image {} needs its normals, an RGB PNG or a [H, W, 3] .npy",
                file_name(image_path)
            );
            return Err(DataError::invalid(&png, message));
        };
        same_size(file, shape)?;
        split.normals.extend(resize_nearest(&unit_normals(&normals), 3, from, to));
    }
    split.pixels.extend(pixels);
    split.n += 1;
    Ok(())
}

/// A PNG opened for decoding.
type PngReader = png::Reader<BufReader<std::fs::File>>;

/// The PNG at `path`, its header read, to decode its samples as stored (no palette or
/// bit-depth expansion).
fn open_png(path: &Path) -> Result<PngReader, DataError> {
    let (file, _) = files::open(path)?;
    let mut decoder = png::Decoder::new_with_limits(BufReader::new(file), png::Limits { bytes: MAX_PNG_BYTES });
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.read_info().map_err(|e| DataError::invalid(path, format!("not a readable PNG: {e}")))
}

/// The samples of the PNG's first frame (16-bit ones as read big-endian) and its
/// `(height, width)`.
fn png_samples(path: &Path, mut reader: PngReader) -> Result<(Vec<u16>, (usize, usize)), DataError> {
    let sixteen = reader.output_color_type().1 == png::BitDepth::Sixteen;
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame =
        reader.next_frame(&mut buffer).map_err(|e| DataError::invalid(path, format!("not a readable PNG: {e}")))?;
    let (width, height) = (frame.width as usize, frame.height as usize);
    let bytes = &buffer[..frame.buffer_size()];
    let values: Vec<u16> = if sixteen {
        bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
    } else {
        bytes.iter().map(|&b| u16::from(b)).collect()
    };
    Ok((values, (height, width)))
}

/// The values and `(height, width)` of a one-channel PNG of `bits` bits: 8-bit grayscale
/// or palette indices for masks, 16-bit grayscale for depth.
pub(crate) fn read_png(path: &Path, bits: u8) -> Result<(Vec<u16>, (usize, usize)), DataError> {
    let reader = open_png(path)?;
    let (color, depth) = reader.output_color_type();
    let wanted = match bits {
        8 => "an 8-bit grayscale or 8-bit palette PNG (pixel value = class)",
        _ => "a 16-bit grayscale PNG (or a .npy beside it)",
    };
    let fits = match (color, depth) {
        (png::ColorType::Grayscale | png::ColorType::Indexed, png::BitDepth::Eight) => bits == 8,
        (png::ColorType::Grayscale, png::BitDepth::Sixteen) => bits == 16,
        _ => false,
    };
    if !fits {
        let message = format!("the PNG is {}; write {wanted}", describe_png(color, depth));
        return Err(DataError::invalid(path, message));
    }
    png_samples(path, reader)
}

/// The normals of an 8- or 16-bit RGB PNG, channels last, and its `(height, width)`: each
/// channel `2·v/max − 1`, a (0, 0, 0) pixel the all-zero vector (unknown), as stored.
pub(crate) fn read_normals_png(path: &Path) -> Result<(Vec<f32>, (usize, usize)), DataError> {
    let reader = open_png(path)?;
    let (color, depth) = reader.output_color_type();
    let max = match (color, depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => 255.0,
        (png::ColorType::Rgb, png::BitDepth::Sixteen) => 65535.0,
        _ => {
            let message = format!(
                "the PNG is {}; write an 8-bit or 16-bit RGB PNG (per channel 2·value/max − 1, (0, 0, 0) unknown) \
                 or a [H, W, 3] .npy beside it",
                describe_png(color, depth)
            );
            return Err(DataError::invalid(path, message));
        }
    };
    let (values, shape) = png_samples(path, reader)?;
    let mut normals: Vec<f32> = values.iter().map(|&v| (2.0 * f64::from(v) / max - 1.0) as f32).collect();
    for (pixel, stored) in normals.chunks_exact_mut(3).zip(values.chunks_exact(3)) {
        if stored == [0, 0, 0] {
            pixel.fill(0.0);
        }
    }
    Ok((normals, shape))
}

/// The normals of a `[H, W, 3]` `.npy` (any dtype the reader takes), channels last, and
/// its `(height, width)`; every value must be finite.
pub(crate) fn read_normals_npy(path: &Path) -> Result<(Vec<f32>, (usize, usize)), DataError> {
    let array = read_npy(path)?;
    let shape = match array.shape[..] {
        [h, w, 3] => (h, w),
        _ => {
            let message = format!("shape {:?}, expected [H, W, 3] (x, y, z per pixel)", array.shape);
            return Err(DataError::invalid(path, message));
        }
    };
    let normals = array.to_f32();
    if let Some(i) = normals.iter().position(|v| !v.is_finite()) {
        let (row, column) = (i / 3 / shape.1, i / 3 % shape.1);
        let message = format!("{} at row {row}, column {column}: give finite normals ((0, 0, 0) unknown)", normals[i]);
        return Err(DataError::invalid(path, message));
    }
    Ok((normals, shape))
}

/// Channels-last normals as `[3, H, W]`, each vector that is not all 0 scaled to unit length.
fn unit_normals(normals: &[f32]) -> Vec<f32> {
    let positions = normals.len() / 3;
    let mut out = vec![0.0; normals.len()];
    for (p, n) in normals.chunks_exact(3).enumerate() {
        let length = n.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        if length > 0.0 {
            for (c, &v) in n.iter().enumerate() {
                out[c * positions + p] = (f64::from(v) / length) as f32;
            }
        }
    }
    out
}

/// How a PNG stores its pixels, as messages name it: "8-bit palette", "16-bit grayscale".
pub(crate) fn describe_png(color: png::ColorType, depth: png::BitDepth) -> String {
    let color = match color {
        png::ColorType::Grayscale => "grayscale",
        png::ColorType::Indexed => "palette",
        png::ColorType::Rgb => "RGB",
        png::ColorType::Rgba => "RGBA",
        png::ColorType::GrayscaleAlpha => "grayscale+alpha",
    };
    format!("{}-bit {color}", depth as u8)
}

#[cfg(test)]
#[path = "masks_tests.rs"]
mod tests;
