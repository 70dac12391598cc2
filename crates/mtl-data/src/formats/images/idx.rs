//! IDX files (MNIST, Fashion-MNIST, EMNIST), raw or gzip-compressed, and
//! folders of them.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::{file_name, numbered_class_names, sorted_entries};
use crate::files;
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

/// The most data one IDX file may hold: 1 GiB. EMNIST ByClass, the largest IDX data set, has
/// 547 MB of images; a header that claims more is refused before anything is allocated.
pub const MAX_IDX_DATA_BYTES: usize = 1 << 30;

/// Deflate expands data at most about 1032 times, so a gzip file of n bytes holds at most
/// 1032·n: the first allocation for its data is no larger, whatever the header claims.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads an IDX file of unsigned bytes, gzip-compressed (recognised by its
/// magic bytes, whatever the file name) or raw.
///
/// The header is checked (two zero bytes, element type 0x08, 1 to 4
/// dimensions, at most [`MAX_IDX_DATA_BYTES`] of data) and the data must be
/// exactly as long as the dimensions say. The header bounds the reading: a raw
/// file of another length is refused from its length, and a gzip stream is
/// decompressed only up to one byte past the promised size, so a gzip bomb
/// costs no more memory than the data it claims to hold.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let invalid = |message: String| DataError::invalid(path, message);
    let (file, file_len) = files::open(path)?;
    let mut file = BufReader::new(file);
    let compressed = file.fill_buf().map_err(|e| DataError::io(path, e))?.starts_with(&GZIP_MAGIC);
    // Multi-member, as `gzip -c a b > c` and some tools write.
    let mut reader: Box<dyn Read> = if compressed { Box::new(MultiGzDecoder::new(file)) } else { Box::new(file) };
    let read_error = |e: std::io::Error| match compressed {
        true => invalid(format!("corrupt or truncated gzip stream: {e}")),
        false => DataError::io(path, e),
    };
    let mut header = Vec::with_capacity(4 + 4 * 4);
    (&mut reader).take(4).read_to_end(&mut header).map_err(read_error)?;
    let n_dims = check_magic(&header).map_err(invalid)?;
    let header_len = 4 + 4 * n_dims;
    (&mut reader).take(4 * n_dims as u64).read_to_end(&mut header).map_err(read_error)?;
    if header.len() < header_len {
        let len = header.len();
        return Err(invalid(format!("truncated header: {n_dims} dimensions need {header_len} bytes, file has {len}")));
    }
    let dims: Vec<usize> =
        header[4..].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let expected = data_len(&dims).map_err(invalid)?;
    let shape = dims_text(&dims);
    if !compressed {
        // A raw file's length tells the length of its data before any is read.
        let actual = file_len.saturating_sub(header_len as u64);
        if actual > expected as u64 {
            let trailing = actual - expected as u64;
            return Err(invalid(format!(
                "{trailing} trailing bytes: header promises {shape} = {expected} bytes of data, file has {actual}"
            )));
        }
    }
    let most = if compressed { file_len.saturating_mul(MAX_DEFLATE_RATIO) } else { file_len };
    let mut data = Vec::with_capacity((expected as u64 + 1).min(most) as usize);
    // One byte past the promise is enough to know there is more.
    reader.take(expected as u64 + 1).read_to_end(&mut data).map_err(read_error)?;
    let decompressed = if compressed { " (decompressed)" } else { "" };
    if data.len() > expected {
        return Err(invalid(format!(
            "trailing data: header promises {shape} = {expected} bytes of data, the file has more{decompressed}"
        )));
    }
    if data.len() < expected {
        return Err(invalid(format!(
            "truncated: header promises {shape} = {expected} bytes of data, file has {}{decompressed}",
            data.len()
        )));
    }
    Ok(IdxArray { dims, data })
}

/// Checks the magic number (the first 4 bytes, or all there are); answers the number of dimensions.
fn check_magic(bytes: &[u8]) -> Result<usize, String> {
    let &[zero_0, zero_1, element_type, n_dims] = bytes else {
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
    Ok(usize::from(n_dims))
}

/// The bytes of data `dims` promise, at most [`MAX_IDX_DATA_BYTES`].
fn data_len(dims: &[usize]) -> Result<usize, String> {
    let shape = dims_text(dims);
    let len =
        dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or(format!("dimensions {shape} overflow"))?;
    if len > MAX_IDX_DATA_BYTES {
        return Err(format!(
            "header promises {shape} = {len} bytes of data; at most 1 GiB ({MAX_IDX_DATA_BYTES} bytes) is read \
             from one IDX file"
        ));
    }
    Ok(len)
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
/// decompressed one is read.
///
/// Labels are class indices: the classes are "0" to the largest label. Every
/// class from 1 up must have an example in some split (class 0 may have none,
/// as EMNIST Letters labels 1 to 26); otherwise the first label above the
/// first run of empty classes is refused, naming its file and index, so that a
/// stray label (a 200 among digits) cannot make a class of its own and many
/// empty ones.
pub fn idx_dir(dir: &Path) -> Result<Sourced<LabeledImages>, DataError> {
    idx_dir_with_prefix(dir, None)
}

/// [`idx_dir`] over the files named exactly `prefix` + the standard name (+ `.gz`) when
/// `prefix` is given: one data set of a folder that holds several (`"emnist-letters-"`
/// beside `"emnist-digits-"`; `""` for plain `train-images-idx3-ubyte`).
pub fn idx_dir_with_prefix(dir: &Path, prefix: Option<&str>) -> Result<Sourced<LabeledImages>, DataError> {
    // Anything but a folder is listed, so that a FIFO or device with an IDX name is refused, not skipped.
    let names: Vec<String> =
        sorted_entries(dir)?.iter().filter(|path| !path.is_dir()).map(|path| file_name(path).to_owned()).collect();
    let train = find_pair(dir, &names, "train", prefix)?;
    let t10k = find_pair(dir, &names, "t10k", prefix)?;
    let (train, test) = match (train, t10k) {
        (Some(train), test) => (train, test),
        (None, Some(test)) => (test, None),
        (None, None) => {
            let message = match prefix {
                None => "no IDX files: expected names ending in train-images-idx3-ubyte or t10k-images-idx3-ubyte \
                         (optionally .gz)"
                    .to_owned(),
                Some(prefix) => format!(
                    "no IDX files named {prefix}train-images-idx3-ubyte or {prefix}t10k-images-idx3-ubyte \
                     (optionally .gz) for prefix = {prefix:?}"
                ),
            };
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
    let mut label_files = vec![(train.1.as_path(), train_images.labels.as_slice())];
    if let (Some((_, labels)), Some(images)) = (&test, &test_images) {
        label_files.push((labels.as_path(), images.labels.as_slice()));
    }
    let n_classes = n_classes(&label_files)?;
    Ok(Sourced {
        class_names: numbered_class_names(n_classes),
        train: train_images,
        val: None,
        test: test_images,
        report: LoadReport { files_read: if test.is_some() { 4 } else { 2 }, ..LoadReport::default() },
    })
}

/// The number of classes of the labels of `label_files` (path, labels): see [`idx_dir`].
fn n_classes(label_files: &[(&Path, &[u32])]) -> Result<usize, DataError> {
    // IDX labels are bytes.
    let mut counts = [0usize; 256];
    for &label in label_files.iter().flat_map(|(_, labels)| labels.iter()) {
        counts[label as usize % 256] += 1;
    }
    let Some(max) = counts.iter().rposition(|&count| count > 0) else { return Ok(0) };
    let Some(first_empty) = (1..max).find(|&class| counts[class] == 0) else { return Ok(max + 1) };
    let last_empty = (first_empty..max).take_while(|&class| counts[class] == 0).last().unwrap_or(first_empty);
    let empty = match last_empty - first_empty {
        0 => format!("class {first_empty}"),
        _ => format!("classes {first_empty} to {last_empty}"),
    };
    // Some label is above the gap: `max` is.
    let (path, index, label) = label_files
        .iter()
        .find_map(|(path, labels)| {
            labels.iter().position(|&label| label as usize > last_empty).map(|index| (*path, index, labels[index]))
        })
        .unwrap_or((label_files[0].0, 0, max as u32));
    let message = format!(
        "label {label} at index {index} leaves {empty} without an example: IDX labels are class indices from 0 \
         to the largest, and only class 0 may have none (as in EMNIST Letters)"
    );
    Err(DataError::invalid(path, message))
}

/// The image and label files of `split` ("train" or "t10k") in `dir`, if any.
fn find_pair(
    dir: &Path,
    names: &[String],
    split: &str,
    prefix: Option<&str>,
) -> Result<Option<(PathBuf, PathBuf)>, DataError> {
    let image_suffix = format!("{split}-images-idx3-ubyte");
    let label_suffix = format!("{split}-labels-idx1-ubyte");
    let missing = |present: &str, present_suffix: &str, absent_suffix: &str| {
        // Name the absent file as its partner's name implies (same prefix and compression).
        let absent = present.replacen(present_suffix, absent_suffix, 1);
        let message = format!("missing: {present} is here but not its partner (with or without .gz)");
        DataError::invalid(dir.join(absent), message)
    };
    match (find_one(dir, names, &image_suffix, prefix)?, find_one(dir, names, &label_suffix, prefix)?) {
        (Some(images), Some(labels)) => Ok(Some((dir.join(images), dir.join(labels)))),
        (None, None) => Ok(None),
        (Some(images), None) => Err(missing(images, &image_suffix, &label_suffix)),
        (None, Some(labels)) => Err(missing(labels, &label_suffix, &image_suffix)),
    }
}

/// The one name in sorted `names` ending in `suffix` or `suffix.gz` (with `prefix`: that is
/// `prefix` + `suffix`, or the same + `.gz`).
fn find_one<'a>(
    dir: &Path,
    names: &'a [String],
    suffix: &str,
    prefix: Option<&str>,
) -> Result<Option<&'a str>, DataError> {
    let gz_suffix = format!("{suffix}.gz");
    let matches = |name: &str| match prefix {
        None => name.ends_with(suffix) || name.ends_with(&gz_suffix),
        Some(prefix) => name.strip_prefix(prefix).is_some_and(|rest| rest == suffix || rest == gz_suffix),
    };
    let found: Vec<&str> = names.iter().map(String::as_str).filter(|name| matches(name)).collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        // Sorted, so the decompressed copy comes first.
        [plain, gz] if *gz == format!("{plain}.gz") => Ok(Some(plain)),
        several => {
            // What each file's name has before the suffix: the prefix that would choose it.
            let mut prefixes: Vec<String> =
                several.iter().map(|name| format!("{:?}", &name[..name.find(suffix).unwrap_or(0)])).collect();
            prefixes.dedup();
            let message = format!(
                "several files end in {suffix}[.gz]: {}; choose one data set with prefix = {} (the part of the \
                 name before {suffix}), or keep one data set per folder",
                several.join(", "),
                prefixes.join(" or ")
            );
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
        write_pair(dir.path(), "t10k", 1, &[1], true);
        let only_test = idx_dir(dir.path()).unwrap();
        assert_eq!((only_test.train.labels.clone(), only_test.test.clone()), (vec![1], None));
        assert_eq!(only_test.class_names, ["0", "1"]);

        write_pair(dir.path(), "train", 3, &[0, 2, 2], false);
        let both = idx_dir(dir.path()).unwrap();
        assert_eq!(both.train.labels, [0, 2, 2]);
        assert_eq!(both.test.map(|test| test.labels), Some(vec![1]));
        assert_eq!(both.class_names.len(), 3);
        assert_eq!(both.report.files_read, 4);
    }

    #[test]
    fn idx_dir_matches_prefixed_names_and_prefers_the_decompressed_copy() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "emnist-digits-train", 2, &[1, 0], false);
        // A stale compressed copy with different content is not read.
        write_pair(dir.path(), "emnist-digits-train", 1, &[2], true);
        let data = idx_dir(dir.path()).unwrap();
        assert_eq!((data.train.labels, data.class_names.len()), (vec![1, 0], 2));
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
        let several =
            ["several files end in t10k-images-idx3-ubyte[.gz]", r#"prefix = "emnist-digits-" or "emnist-letters-""#];
        assert_error(idx_dir(dir.path()), &several);
    }

    #[test]
    fn a_prefix_chooses_one_data_set_of_a_folder_that_holds_several() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "emnist-digits-t10k", 2, &[1, 0], true);
        write_pair(dir.path(), "emnist-letters-t10k", 3, &[1, 2, 3], true);
        write_pair(dir.path(), "t10k", 1, &[1], false);
        let letters = idx_dir_with_prefix(dir.path(), Some("emnist-letters-")).unwrap();
        assert_eq!((letters.train.labels, letters.class_names.len()), (vec![1, 2, 3], 4));
        let digits = idx_dir_with_prefix(dir.path(), Some("emnist-digits-")).unwrap();
        assert_eq!(digits.train.labels, [1, 0]);
        // "" is the plain MNIST names, not every name.
        assert_eq!(idx_dir_with_prefix(dir.path(), Some("")).unwrap().train.labels.len(), 1);
        let absent = idx_dir_with_prefix(dir.path(), Some("kmnist-"));
        assert_error(absent, &["no IDX files named kmnist-train-images-idx3-ubyte", r#"prefix = "kmnist-""#]);
    }
}
