//! IDX files (MNIST, Fashion-MNIST, EMNIST), raw or gzip-compressed, and
//! folders of them.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{file_name, numbered_class_names, sorted_entries};
use crate::{DataError, LabeledImages, LoadReport, Sourced};

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (MNIST images: count, rows, columns).
    pub dims: Vec<usize>,
    /// The `dims.iter().product()` values, row-major.
    pub data: Vec<u8>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UNSIGNED_BYTE: u8 = 0x08;

/// Reads an IDX file of unsigned bytes, gzip-compressed (recognised by its
/// magic bytes, whatever the file name) or raw.
///
/// The header is checked (two zero bytes, element type 0x08, 1 to 4
/// dimensions) and the data must be exactly as long as the dimensions say.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let compressed = raw.starts_with(&GZIP_MAGIC);
    let bytes = if compressed {
        let mut bytes = Vec::new();
        // Multi-member, as `gzip -c a b > c` and some tools write.
        MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut bytes)
            .map_err(|e| DataError::invalid(path, format!("corrupt or truncated gzip stream: {e}")))?;
        bytes
    } else {
        raw
    };
    parse_idx(&bytes, compressed).map_err(|message| DataError::invalid(path, message))
}

fn parse_idx(bytes: &[u8], compressed: bool) -> Result<IdxArray, String> {
    let Some(&[zero_0, zero_1, element_type, n_dims]) = bytes.get(..4) else {
        return Err(format!("not an IDX file: {} bytes, shorter than the 4-byte magic number", bytes.len()));
    };
    if (zero_0, zero_1) != (0, 0) {
        return Err(format!(
            "not an IDX file: magic number {zero_0:02x} {zero_1:02x} {element_type:02x} {n_dims:02x} \
             does not start with two zero bytes"
        ));
    }
    if element_type != UNSIGNED_BYTE {
        let name = match element_type {
            0x09 => "signed byte",
            0x0b => "16-bit integer",
            0x0c => "32-bit integer",
            0x0d => "32-bit float",
            0x0e => "64-bit float",
            _ => "unknown",
        };
        return Err(format!("element type 0x{element_type:02x} ({name}) is not supported, only 0x08 (unsigned byte)"));
    }
    if !(1..=4).contains(&n_dims) {
        return Err(format!("the magic number gives {n_dims} dimensions, expected 1 to 4"));
    }
    let header_len = 4 + 4 * n_dims as usize;
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(format!("truncated header: {n_dims} dimensions need {header_len} bytes, file has {}", bytes.len()));
    };
    let dims: Vec<usize> =
        dim_bytes.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let shape = dims_text(&dims);
    let expected =
        dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or(format!("dimensions {shape} overflow"))?;
    let actual = bytes.len() - header_len;
    let decompressed = if compressed { " (decompressed)" } else { "" };
    if actual < expected {
        return Err(format!(
            "truncated: header promises {shape} = {expected} bytes of data, file has {actual}{decompressed}"
        ));
    }
    if actual > expected {
        return Err(format!(
            "{} trailing bytes: header promises {shape} = {expected} bytes of data, file has {actual}{decompressed}",
            actual - expected
        ));
    }
    Ok(IdxArray { dims, data: bytes[header_len..].to_vec() })
}

fn dims_text(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}

/// Reads an IDX image file (n × rows × columns) and its IDX label file (n),
/// as 1-channel images with pixels divided by 255.
pub fn mnist_pair(images: &Path, labels: &Path) -> Result<LabeledImages, DataError> {
    let image_array = read_idx(images)?;
    let &[n_images, height, width] = image_array.dims.as_slice() else {
        let found = dims_text(&image_array.dims);
        return Err(DataError::invalid(
            images,
            format!("expected 3 dimensions (images × rows × columns), found {found}"),
        ));
    };
    if height == 0 || width == 0 {
        return Err(DataError::invalid(images, format!("images of {height}×{width} pixels")));
    }
    let label_array = read_idx(labels)?;
    let &[n_labels] = label_array.dims.as_slice() else {
        let found = dims_text(&label_array.dims);
        return Err(DataError::invalid(labels, format!("expected 1 dimension (labels), found {found}")));
    };
    if n_images != n_labels {
        let message = format!("{n_images} images but {} has {n_labels} labels", labels.display());
        return Err(DataError::invalid(images, message));
    }
    Ok(LabeledImages {
        pixels: image_array.data.iter().map(|&byte| f32::from(byte) / 255.0).collect(),
        channels: 1,
        height,
        width,
        labels: label_array.data.iter().map(|&label| u32::from(label)).collect(),
    })
}

/// Reads a folder of IDX files with the standard MNIST names: files ending in
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each optionally
/// with `.gz` (EMNIST's `emnist-digits-train-images-idx3-ubyte.gz` matches).
///
/// With both pairs, t10k is the test split; with one pair, it is the
/// training split and there is no test split. When a file is there both
/// compressed and decompressed (as torchvision leaves them), the
/// decompressed one is read. Class names are "0" to the largest label.
pub fn idx_dir(dir: &Path) -> Result<Sourced<LabeledImages>, DataError> {
    let names: Vec<String> =
        sorted_entries(dir)?.iter().filter(|path| path.is_file()).map(|path| file_name(path).to_owned()).collect();
    let train = find_pair(dir, &names, "train")?;
    let t10k = find_pair(dir, &names, "t10k")?;
    let (train, test) = match (train, t10k) {
        (Some(train), test) => (train, test),
        (None, Some(test)) => (test, None),
        (None, None) => {
            let message = "no IDX files: expected names ending in train-images-idx3-ubyte or t10k-images-idx3-ubyte \
                           (optionally .gz)";
            return Err(DataError::invalid(dir, message));
        }
    };
    let train_images = mnist_pair(&train.0, &train.1)?;
    let test_images = match &test {
        Some((images, labels)) => {
            let test_images = mnist_pair(images, labels)?;
            let (train_size, test_size) =
                ((train_images.height, train_images.width), (test_images.height, test_images.width));
            if train_size != test_size {
                let message = format!(
                    "images are {}×{} but those of {} are {}×{}",
                    test_size.0,
                    test_size.1,
                    train.0.display(),
                    train_size.0,
                    train_size.1
                );
                return Err(DataError::invalid(images, message));
            }
            Some(test_images)
        }
        None => None,
    };
    let all_labels = train_images.labels.iter().chain(test_images.iter().flat_map(|split| &split.labels));
    let n_classes = all_labels.max().map_or(0, |&max| max as usize + 1);
    Ok(Sourced {
        class_names: numbered_class_names(n_classes),
        train: train_images,
        val: None,
        test: test_images,
        report: LoadReport { files_read: if test.is_some() { 4 } else { 2 }, ..LoadReport::default() },
    })
}

/// The image and label files of `split` ("train" or "t10k") in `dir`, if any.
fn find_pair(dir: &Path, names: &[String], split: &str) -> Result<Option<(PathBuf, PathBuf)>, DataError> {
    let image_suffix = format!("{split}-images-idx3-ubyte");
    let label_suffix = format!("{split}-labels-idx1-ubyte");
    let missing = |present: &str, present_suffix: &str, absent_suffix: &str| {
        // Name the absent file as its partner's name implies (same prefix and compression).
        let absent = present.replacen(present_suffix, absent_suffix, 1);
        let message = format!("missing: {present} is here but not its partner (with or without .gz)");
        DataError::invalid(dir.join(absent), message)
    };
    match (find_one(dir, names, &image_suffix)?, find_one(dir, names, &label_suffix)?) {
        (Some(images), Some(labels)) => Ok(Some((dir.join(images), dir.join(labels)))),
        (None, None) => Ok(None),
        (Some(images), None) => Err(missing(images, &image_suffix, &label_suffix)),
        (None, Some(labels)) => Err(missing(labels, &label_suffix, &image_suffix)),
    }
}

/// The one name in sorted `names` ending in `suffix` or `suffix.gz`.
fn find_one<'a>(dir: &Path, names: &'a [String], suffix: &str) -> Result<Option<&'a str>, DataError> {
    let gz_suffix = format!("{suffix}.gz");
    let found: Vec<&str> =
        names.iter().map(String::as_str).filter(|name| name.ends_with(suffix) || name.ends_with(&gz_suffix)).collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        // Sorted, so the decompressed copy comes first.
        [plain, gz] if *gz == format!("{plain}.gz") => Ok(Some(plain)),
        several => {
            let message =
                format!("several files end in {suffix}[.gz]: {}; keep one data set per folder", several.join(", "));
            Err(DataError::invalid(dir, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;
    use crate::formats::images::test_support::assert_error;

    /// An IDX file of unsigned bytes with the given dimensions and data.
    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, UNSIGNED_BYTE, dims.len() as u8];
        bytes.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
        bytes.extend(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Writes `n` 2×3 images (pixel k of image i is 10·i + k) and `labels` as
    /// `{prefix}-images-idx3-ubyte` and `{prefix}-labels-idx1-ubyte`, gzipped if `gz`.
    fn write_pair(dir: &Path, prefix: &str, n: u32, labels: &[u8], gz: bool) {
        let pixels: Vec<u8> = (0..n as u8).flat_map(|i| (0..6).map(move |k| 10 * i + k)).collect();
        let files = [
            (format!("{prefix}-images-idx3-ubyte"), idx_bytes(&[n, 2, 3], &pixels)),
            (format!("{prefix}-labels-idx1-ubyte"), idx_bytes(&[labels.len() as u32], labels)),
        ];
        for (name, bytes) in files {
            let (name, bytes) = if gz { (format!("{name}.gz"), gzip(&bytes)) } else { (name, bytes) };
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    #[test]
    fn gzip_and_raw_pairs_read_back_scaled() {
        for gz in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            write_pair(dir.path(), "train", 2, &[7, 3], gz);
            let ext = if gz { ".gz" } else { "" };
            let images = mnist_pair(
                &dir.path().join(format!("train-images-idx3-ubyte{ext}")),
                &dir.path().join(format!("train-labels-idx1-ubyte{ext}")),
            )
            .unwrap();
            assert_eq!((images.channels, images.height, images.width), (1, 2, 3), "gz: {gz}");
            assert_eq!(images.labels, [7, 3]);
            let expected: Vec<f32> = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15].map(|v| v as f32 / 255.0).to_vec();
            assert_eq!(images.pixels, expected);
        }
    }

    #[test]
    fn gzip_is_recognised_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain-name");
        std::fs::write(&path, gzip(&idx_bytes(&[3], &[1, 2, 3]))).unwrap();
        assert_eq!(read_idx(&path).unwrap(), IdxArray { dims: vec![3], data: vec![1, 2, 3] });
    }

    #[test]
    fn idx_dir_reads_both_pairs_or_one_as_train() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "t10k", 1, &[4], true);
        let only_test = idx_dir(dir.path()).unwrap();
        assert_eq!((only_test.train.labels.clone(), only_test.test.clone()), (vec![4], None));
        assert_eq!(only_test.class_names, ["0", "1", "2", "3", "4"]);

        write_pair(dir.path(), "train", 3, &[0, 1, 2], false);
        let both = idx_dir(dir.path()).unwrap();
        assert_eq!(both.train.labels, [0, 1, 2]);
        assert_eq!(both.test.map(|test| test.labels), Some(vec![4]));
        assert_eq!(both.class_names.len(), 5);
        assert_eq!(both.report.files_read, 4);
    }

    #[test]
    fn idx_dir_matches_prefixed_names_and_prefers_the_decompressed_copy() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "emnist-digits-train", 1, &[9], false);
        // A stale compressed copy with different content is not read.
        write_pair(dir.path(), "emnist-digits-train", 1, &[1], true);
        let data = idx_dir(dir.path()).unwrap();
        assert_eq!((data.train.labels, data.class_names.len()), (vec![9], 10));
    }

    #[test]
    fn bad_idx_files_are_refused_naming_file_and_problem() {
        let good = idx_bytes(&[2, 2, 2], &[0; 8]);
        let truncated_gzip = gzip(&good)[..20].to_vec();
        let cases: [(&str, Vec<u8>, &[&str]); 8] = [
            ("truncated", idx_bytes(&[2, 2, 2], &[0; 5]), &["truncated", "2×2×2 = 8 bytes", "file has 5"]),
            ("wrong-magic", [&[1, 0][..], &good[2..]].concat(), &["not an IDX file", "01 00 08 03"]),
            ("float", [&[0, 0, 0x0d][..], &good[3..]].concat(), &["0x0d (32-bit float)", "not supported"]),
            ("zero-dims", [&[0, 0, 8, 0][..], &good[4..]].concat(), &["0 dimensions"]),
            ("short-header", good[..9].to_vec(), &["truncated header", "16 bytes", "file has 9"]),
            ("trailing", [&good[..], &[0, 0, 0]].concat(), &["3 trailing bytes", "8 bytes of data", "file has 11"]),
            ("empty", Vec::new(), &["not an IDX file", "0 bytes"]),
            ("truncated.gz", truncated_gzip, &["corrupt or truncated gzip stream"]),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes, needles) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert_error(read_idx(&path), &[&[path.to_str().unwrap()], needles].concat());
        }
    }

    #[test]
    fn bad_pairs_and_folders_are_refused_naming_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        write_pair(dir.path(), "train", 3, &[1, 2], true);
        let (images, labels) = (path("train-images-idx3-ubyte.gz"), path("train-labels-idx1-ubyte.gz"));
        assert_error(mnist_pair(images.as_ref(), labels.as_ref()), &[&images, &labels, "3 images", "2 labels"]);
        assert_error(mnist_pair(labels.as_ref(), labels.as_ref()), &[&labels, "expected 3 dimensions", "found 2"]);

        std::fs::remove_file(&labels).unwrap();
        assert_error(idx_dir(dir.path()), &[&labels, "missing", "train-images-idx3-ubyte.gz is here"]);
        std::fs::remove_file(&images).unwrap();
        assert_error(idx_dir(dir.path()), &[dir.path().to_str().unwrap(), "no IDX files"]);
        let absent = path("absent");
        assert_error(idx_dir(absent.as_ref()), &[&absent]);

        write_pair(dir.path(), "emnist-digits-t10k", 1, &[1], true);
        write_pair(dir.path(), "emnist-letters-t10k", 1, &[1], true);
        assert_error(idx_dir(dir.path()), &["several files end in t10k-images-idx3-ubyte[.gz]", "emnist-digits"]);
    }
}
