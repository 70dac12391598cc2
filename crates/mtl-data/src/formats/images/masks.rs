//! The common image/mask layout of segmentation and depth sets: under the root (or under
//! each of `train/`, `val/`, `test/` where the set comes split),
//!
//! | folder | files | values |
//! |---|---|---|
//! | `images/` | `<name>.png`, `.jpg`, `.jpeg`, `.bmp` | RGB (grayscale is repeated) |
//! | `masks/` | `<name>.png`, 8-bit grayscale or 8-bit palette | class index per pixel; `ignore` (255) unlabelled |
//! | `depth/` | `<name>.png` 16-bit grayscale, or `<name>.npy` `[H, W]` / `[H, W, 1]` | depth × `depth_scale` (PNG) or depth (npy); 0 unmeasured |
//!
//! Every image needs the target files of the tasks that read it, of its own size. Images
//! are resized bilinearly to `size` (default: the first training image's), masks and
//! depth by nearest neighbour, so that labels stay labels. Splits the set lacks are carved
//! from its training examples.

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

/// The most bytes one decoded mask or depth PNG may take.
const MAX_PNG_BYTES: usize = 1 << 28;

/// How the layout is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskOptions {
    /// Which target folders to read: `label` is `masks/`, `depth` is `depth/` (no normals).
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
    split.pixels.extend(pixels);
    split.n += 1;
    Ok(())
}

/// The values and `(height, width)` of a one-channel PNG of `bits` bits: 8-bit grayscale
/// or palette indices for masks, 16-bit grayscale for depth.
pub(crate) fn read_png(path: &Path, bits: u8) -> Result<(Vec<u16>, (usize, usize)), DataError> {
    let (file, _) = files::open(path)?;
    let mut decoder = png::Decoder::new_with_limits(BufReader::new(file), png::Limits { bytes: MAX_PNG_BYTES });
    decoder.set_transformations(png::Transformations::IDENTITY);
    let invalid = |message: String| DataError::invalid(path, message);
    let mut reader = decoder.read_info().map_err(|e| invalid(format!("not a readable PNG: {e}")))?;
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
        return Err(invalid(format!("the PNG is {}; write {wanted}", describe_png(color, depth))));
    }
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer).map_err(|e| invalid(format!("not a readable PNG: {e}")))?;
    let (width, height) = (frame.width as usize, frame.height as usize);
    let bytes = &buffer[..frame.buffer_size()];
    let values: Vec<u16> = match bits {
        8 => bytes.iter().map(|&b| u16::from(b)).collect(),
        _ => bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect(),
    };
    Ok((values, (height, width)))
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
