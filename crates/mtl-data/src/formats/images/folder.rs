//! Folders of image files, one sub-folder per class (the torchvision
//! `ImageFolder` layout), optionally below `train/`, `val/` and `test/`.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Pixel};

use super::sorted_entries;
use crate::files::{self, Expected};
use crate::{DataError, LabeledImages, LoadReport, Sourced};

/// How [`image_folder`] decodes and sizes images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolderOptions {
    /// 1: grayscale (luma, Rec. 709 weights as the `image` crate computes it), 3: RGB.
    pub channels: usize,
    /// Rows every image is resized to.
    pub height: usize,
    /// Columns every image is resized to.
    pub width: usize,
    /// What to do with a file that cannot be decoded.
    pub on_unreadable: Unreadable,
    /// How an image of another aspect ratio meets `height × width`.
    pub fit: Fit,
}

/// How [`image_folder`] brings an image to `height × width` (every resize is the `image`
/// crate's bilinear `Triangle` filter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fit {
    /// Resized to exactly `height × width`: an image of another aspect ratio is distorted.
    #[default]
    Stretch,
    /// Its centre cut out at the target's aspect ratio, then resized to `height × width`
    /// (torchvision's `Resize` of the short side then `CenterCrop`, up to rounding).
    CenterCrop,
    /// Resized, keeping its aspect ratio, until it fits inside `height × width`, then
    /// centred on black (letterboxing): nothing is cut off.
    Pad,
}

/// What [`image_folder`] does with an image file it cannot read or decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Leave it out and record it in [`LoadReport::skipped`] with the reason.
    Skip,
    /// Stop with an error naming the file.
    Fail,
}

const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "gif", "bmp"];
const SPLIT_FOLDERS: [&str; 2] = ["val", "test"];

/// Reads `root/<class>/<image>` or, when `root/train` exists,
/// `root/train/<class>/<image>` plus the optional `root/val/…` and
/// `root/test/…` (other folders in `root` are then ignored).
///
/// Class names are the class folder names, sorted, with control characters
/// escaped (a newline as `\n`, ESC as `\u{1b}`); with splits they come
/// from `train/`, and a class folder in `val/` or `test/` that `train/`
/// lacks is an error. Image files are those with the extensions jpg, jpeg,
/// png, gif or bmp (any case); other files, sub-folders of class folders,
/// and names starting with "." (such as `.ipynb_checkpoints`) are ignored.
/// The format is recognised by content, a GIF gives its first frame, and
/// alpha is dropped. Each image is converted to grayscale or RGB, resized
/// to `height × width` (triangle filter), and stored channels first with
/// values in [0, 1]. Files are read in sorted path order. A class folder
/// without image files is an error.
pub fn image_folder(root: &Path, options: &ImageFolderOptions) -> Result<Sourced<LabeledImages>, DataError> {
    check_options(root, options)?;
    files::check_kind(root, Expected::Folder)?;
    let train_root = root.join("train");
    let split_layout = train_root.is_dir();
    let class_root = if split_layout { train_root } else { root.to_path_buf() };
    let classes = class_folders(&class_root)?;
    if classes.is_empty() {
        return Err(DataError::invalid(class_root, "no class folders"));
    }
    let class_names: Vec<String> = classes.iter().map(|(name, _)| name.clone()).collect();
    let labelled: Vec<(usize, PathBuf)> = classes.into_iter().map(|(_, path)| path).enumerate().collect();
    let mut report = LoadReport::default();
    let train = read_split(&labelled, options, &mut report)?;

    let mut other_splits = [None, None];
    if split_layout {
        for (split, split_name) in other_splits.iter_mut().zip(SPLIT_FOLDERS) {
            let split_root = root.join(split_name);
            if !split_root.is_dir() {
                continue;
            }
            let mut labelled = Vec::new();
            for (name, path) in class_folders(&split_root)? {
                let Some(label) = class_names.iter().position(|known| *known == name) else {
                    let message = format!("class folder not in train/ (whose classes are {})", class_names.join(", "));
                    return Err(DataError::invalid(path, message));
                };
                labelled.push((label, path));
            }
            *split = Some(read_split(&labelled, options, &mut report)?);
        }
    }
    let [val, test] = other_splits;
    Ok(Sourced { class_names, train, val, test, report })
}

/// The class sub-folders of `dir` as (name, path), sorted by name; names have their control
/// characters escaped ([`files::escape_control`]).
fn class_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let folders: Vec<PathBuf> =
        sorted_entries(dir)?.into_iter().filter(|path| path.is_dir() && !is_hidden(path)).collect();
    let names = folders.iter().map(|path| path.file_name().unwrap_or_default().to_string_lossy().into_owned());
    let names = files::escaped_class_names(dir, names.collect())?;
    Ok(names.into_iter().zip(folders).collect())
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
}

fn is_image_file(path: &Path) -> bool {
    let extension = path.extension().and_then(|ext| ext.to_str()).unwrap_or("");
    // Not only regular files: a FIFO or device named as an image is reported, not silently left out.
    !path.is_dir() && !is_hidden(path) && EXTENSIONS.iter().any(|known| known.eq_ignore_ascii_case(extension))
}

/// Reads every image of the given (label, class folder) pairs.
fn read_split(
    classes: &[(usize, PathBuf)],
    options: &ImageFolderOptions,
    report: &mut LoadReport,
) -> Result<LabeledImages, DataError> {
    let mut images = LabeledImages {
        pixels: Vec::new(),
        channels: options.channels,
        height: options.height,
        width: options.width,
        labels: Vec::new(),
    };
    for (label, folder) in classes {
        let files: Vec<PathBuf> = sorted_entries(folder)?.into_iter().filter(|path| is_image_file(path)).collect();
        if files.is_empty() {
            let message = format!("no image files ({}) in this class folder", EXTENSIONS.join(", "));
            return Err(DataError::invalid(folder, message));
        }
        for file in files {
            match decode(&file, options) {
                Ok(pixels) => {
                    images.pixels.extend(pixels);
                    images.labels.push(*label as u32);
                    report.files_read += 1;
                }
                Err(reason) => match options.on_unreadable {
                    Unreadable::Skip => report.skipped.push((file, reason)),
                    Unreadable::Fail => return Err(DataError::invalid(file, format!("unreadable image: {reason}"))),
                },
            }
        }
    }
    Ok(images)
}

/// Whether images can be read as `options` say (`root` names the data in the error).
pub(super) fn check_options(root: &Path, options: &ImageFolderOptions) -> Result<(), DataError> {
    let size_ok = |side: usize| side > 0 && u32::try_from(side).is_ok();
    if !matches!(options.channels, 1 | 3) || !size_ok(options.height) || !size_ok(options.width) {
        let message = format!(
            "cannot read images as {}×{}×{}: channels must be 1 or 3 and the sides between 1 and 2^32 - 1",
            options.channels, options.height, options.width
        );
        return Err(DataError::invalid(root, message));
    }
    Ok(())
}

/// One image as `channels × height × width` values in [0, 1], or why it cannot be read.
pub(super) fn decode(path: &Path, options: &ImageFolderOptions) -> Result<Vec<f32>, String> {
    // Checked before opening: opening a FIFO blocks.
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err(format!("{}, not a regular file", files::describe(metadata.file_type())));
    }
    let image = image::io::Reader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?;
    // Checked to fit by `image_folder`.
    let (width, height) = (options.width as u32, options.height as u32);
    let scale = |value: &u8| f32::from(*value) / 255.0;
    Ok(if options.channels == 1 {
        fitted(image.to_luma8(), width, height, options.fit).as_raw().iter().map(scale).collect()
    } else {
        let interleaved = fitted(image.to_rgb8(), width, height, options.fit).into_raw();
        // Row-major RGBRGB… to three planes.
        (0..3).flat_map(|channel| interleaved.iter().skip(channel).step_by(3).map(scale)).collect()
    })
}

/// `buffer` brought to `width × height` as `fit` says.
fn fitted<P>(buffer: ImageBuffer<P, Vec<u8>>, width: u32, height: u32, fit: Fit) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (w, h) = buffer.dimensions();
    if (w, h) == (width, height) || fit == Fit::Stretch || w == 0 || h == 0 {
        return resized(buffer, width, height);
    }
    let (sx, sy) = (f64::from(width) / f64::from(w), f64::from(height) / f64::from(h));
    if fit == Fit::CenterCrop {
        // The window of the source that, scaled, covers the target: cut first, so that a
        // long thin image is never scaled whole (a 65535×1 strip at 224 px would be GBs).
        let scale = sx.max(sy);
        let window = |target: u32, n: u32| ((f64::from(target) / scale).round() as u32).clamp(1, n);
        let (cw, ch) = (window(width, w), window(height, h));
        let cropped = imageops::crop_imm(&buffer, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
        return resized(cropped, width, height);
    }
    // Pad: scaled to fit inside (never past the target), then centred on black.
    let scale = sx.min(sy);
    let side = |n: u32, target: u32| ((f64::from(n) * scale).round() as u32).clamp(1, target);
    let (nw, nh) = (side(w, width), side(h, height));
    let scaled = resized(buffer, nw, nh);
    let mut canvas = ImageBuffer::new(width, height);
    imageops::replace(&mut canvas, &scaled, i64::from((width - nw) / 2), i64::from((height - nh) / 2));
    canvas
}

fn resized<P>(buffer: ImageBuffer<P, Vec<u8>>, width: u32, height: u32) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if buffer.dimensions() == (width, height) {
        buffer
    } else {
        imageops::resize(&buffer, width, height, FilterType::Triangle)
    }
}

#[cfg(test)]
mod tests {
    use image::{ImageFormat, Rgb, RgbImage};

    use super::*;
    use crate::formats::images::test_support::assert_error;

    const RED: [u8; 3] = [255, 0, 0];
    const GREEN: [u8; 3] = [0, 255, 0];
    const BLUE: [u8; 3] = [0, 0, 255];

    /// Writes a 6×4 (columns × rows) image of one colour at `root/relative`.
    fn write_image(root: &Path, relative: &str, colour: [u8; 3], format: ImageFormat) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        RgbImage::from_pixel(6, 4, Rgb(colour)).save_with_format(&path, format).unwrap();
    }

    fn options(channels: usize, on_unreadable: Unreadable) -> ImageFolderOptions {
        ImageFolderOptions { channels, height: 2, width: 3, on_unreadable, fit: Fit::Stretch }
    }

    /// Each image's mean value per channel.
    fn channel_means(images: &LabeledImages) -> Vec<Vec<f32>> {
        let plane = images.height * images.width;
        let image_len = images.channels * plane;
        let means = |image: &[f32]| image.chunks(plane).map(|p| p.iter().sum::<f32>() / plane as f32).collect();
        images.pixels.chunks(image_len).map(means).collect()
    }

    #[track_caller]
    fn assert_close(got: &[Vec<f32>], expected: &[&[f32]], tolerance: f32) {
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (got, expected) in got.iter().zip(expected) {
            assert!(got.iter().zip(*expected).all(|(g, e)| (g - e).abs() <= tolerance), "{got:?} vs {expected:?}");
        }
    }

    /// Classes "cat" (a red PNG, a green JPEG named with a space) and "dog"
    /// (a blue GIF with an upper-case extension), plus a file to ignore.
    fn two_classes(root: &Path) {
        write_image(root, "cat/a.png", RED, ImageFormat::Png);
        write_image(root, "cat/b b.jpeg", GREEN, ImageFormat::Jpeg);
        write_image(root, "dog/c.GIF", BLUE, ImageFormat::Gif);
        std::fs::write(root.join("dog/notes.txt"), "not an image").unwrap();
    }

    #[test]
    fn flat_folder_reads_png_jpeg_gif_as_rgb_resized_channels_first() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let data = image_folder(dir.path(), &options(3, Unreadable::Fail)).unwrap();
        assert_eq!(data.class_names, ["cat", "dog"]);
        assert_eq!(data.train.labels, [0, 0, 1]);
        assert_eq!((data.train.channels, data.train.height, data.train.width), (3, 2, 3));
        assert_eq!(data.train.pixels.len(), 3 * 3 * 2 * 3);
        assert_eq!((data.val.is_none(), data.test.is_none(), data.report.files_read), (true, true, 3));
        // Solid colours survive the resize; JPEG is lossy, hence the tolerance.
        assert_close(&channel_means(&data.train), &[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0], &[0.0, 0.0, 1.0]], 0.02);
        assert_eq!(&data.train.pixels[..6], [1.0; 6]); // the PNG's red plane, exactly
    }

    #[test]
    fn stretch_center_crop_and_pad_fit_a_wide_image_to_a_square() {
        // 6×2: columns red, red, green, green, blue, blue; fitted to 2×2.
        let dir = tempfile::tempdir().unwrap();
        let colours = [RED, RED, GREEN, GREEN, BLUE, BLUE];
        std::fs::create_dir_all(dir.path().join("wide")).unwrap();
        RgbImage::from_fn(6, 2, |x, _| Rgb(colours[x as usize])).save(dir.path().join("wide/a.png")).unwrap();
        let read = |fit| {
            let options = ImageFolderOptions { height: 2, width: 2, fit, ..options(3, Unreadable::Fail) };
            image_folder(dir.path(), &options).unwrap().train.pixels
        };
        // Planes R, G, B of 2×2 each, rows first.
        let pixels = |rgb: [[u8; 3]; 4]| -> Vec<f32> {
            (0..3).flat_map(|c| rgb.iter().map(move |p| f32::from(p[c]) / 255.0)).collect()
        };
        // The centre 2×2 of the image at its own size: the green columns, exactly.
        assert_eq!(read(Fit::CenterCrop), pixels([GREEN; 4]));
        // Shrunk to 2×1 on black: the lower row black, the upper row reddish then bluish.
        let padded = read(Fit::Pad);
        let black = [0, 0, 0];
        let (red_left, blue_right) = (padded[0], padded[2 * 4 + 1]);
        assert!(red_left > 0.5 && blue_right > 0.5, "{padded:?}");
        for plane in 0..3 {
            assert_eq!(&padded[plane * 4 + 2..plane * 4 + 4], &pixels([black; 4])[..2], "{padded:?}");
        }
        // Stretched: the left column reddish, the right bluish, both rows alike.
        let stretched = read(Fit::Stretch);
        let (red, blue) = (&stretched[..4], &stretched[8..]);
        assert!(red[0] > 0.5 && red[2] > 0.5 && red[1] < 0.5 && red[3] < 0.5, "{stretched:?}");
        assert!(blue[1] > 0.5 && blue[3] > 0.5 && blue[0] < 0.5 && blue[2] < 0.5, "{stretched:?}");
    }

    #[test]
    fn grayscale_is_rec709_luma() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let data = image_folder(dir.path(), &options(1, Unreadable::Fail)).unwrap();
        assert_eq!(data.train.channels, 1);
        // image 0.24: luma = (2126 r + 7152 g + 722 b) / 10000, truncated: red 54, green 182, blue 18.
        let expected: [&[f32]; 3] = [&[54.0 / 255.0], &[182.0 / 255.0], &[18.0 / 255.0]];
        assert_close(&channel_means(&data.train), &expected, 0.02);
    }

    #[test]
    fn split_layout_labels_val_and_test_by_train_classes() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(&dir.path().join("train"));
        write_image(dir.path(), "test/dog/d.bmp", BLUE, ImageFormat::Bmp);
        write_image(dir.path(), "elsewhere/x/e.png", RED, ImageFormat::Png);
        let data = image_folder(dir.path(), &options(3, Unreadable::Fail)).unwrap();
        assert_eq!(data.class_names, ["cat", "dog"]);
        assert_eq!(data.train.labels, [0, 0, 1]);
        assert_eq!((data.val.is_none(), data.test.map(|test| test.labels)), (true, Some(vec![1])));
        assert_eq!(data.report.files_read, 4);

        write_image(dir.path(), "val/bird/f.png", RED, ImageFormat::Png);
        let bird = dir.path().join("val/bird");
        assert_error(
            image_folder(dir.path(), &options(3, Unreadable::Fail)),
            &[bird.to_str().unwrap(), "not in train/"],
        );
    }

    #[test]
    fn corrupt_images_are_skipped_or_fail_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let corrupt = dir.path().join("cat/broken.png");
        std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n and then nothing").unwrap();

        let data = image_folder(dir.path(), &options(3, Unreadable::Skip)).unwrap();
        assert_eq!((data.train.labels.len(), data.report.files_read), (3, 3));
        assert_eq!(data.report.skipped.len(), 1);
        assert_eq!(data.report.skipped[0].0, corrupt);

        let failed = image_folder(dir.path(), &options(3, Unreadable::Fail));
        assert_error(failed, &[corrupt.to_str().unwrap(), "unreadable image"]);
    }

    #[test]
    fn bad_folders_are_refused_naming_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        two_classes(dir.path());
        let empty = dir.path().join("empty class");
        std::fs::create_dir(&empty).unwrap();
        std::fs::write(empty.join("readme.txt"), "").unwrap();
        let fail = options(3, Unreadable::Fail);
        assert_error(image_folder(dir.path(), &fail), &[empty.to_str().unwrap(), "no image files"]);

        let no_classes = tempfile::tempdir().unwrap();
        assert_error(
            image_folder(no_classes.path(), &fail),
            &[no_classes.path().to_str().unwrap(), "no class folders"],
        );
        let absent = dir.path().join("absent");
        assert_error(image_folder(&absent, &fail), &[absent.to_str().unwrap()]);
        let bad_channels = ImageFolderOptions { channels: 2, ..fail };
        assert_error(image_folder(dir.path(), &bad_channels), &["channels must be 1 or 3"]);
    }
}
