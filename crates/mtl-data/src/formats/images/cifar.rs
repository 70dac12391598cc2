//! CIFAR-10 and CIFAR-100 binary batches (the "binary version" archives).

use std::path::{Path, PathBuf};

use super::{file_name, numbered_class_names, sorted_entries};
use crate::files::{self, Expected};
use crate::{DataError, LabeledImages, LoadReport, Sourced};

/// Which CIFAR-100 labels to read; CIFAR-10 has only one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarLabels {
    /// The 100 classes ("apple", "aquarium_fish", …).
    Fine,
    /// The 20 superclasses ("aquatic_mammals", "fish", …).
    Coarse,
}

/// 32×32 pixels in three planes: 1024 red, 1024 green, 1024 blue, each row-major.
const PIXEL_BYTES: usize = 3 * 32 * 32;

#[derive(Clone, Copy, Debug)]
enum Variant {
    Cifar10,
    Cifar100(CifarLabels),
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Cifar10 => "CIFAR-10",
            Variant::Cifar100(_) => "CIFAR-100",
        }
    }

    /// Label bytes before the pixels of each record.
    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100(_) => 2, // coarse, then fine
        }
    }

    fn label_offset(self) -> usize {
        match self {
            Variant::Cifar10 | Variant::Cifar100(CifarLabels::Coarse) => 0,
            Variant::Cifar100(CifarLabels::Fine) => 1,
        }
    }

    fn n_classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100(CifarLabels::Fine) => 100,
            Variant::Cifar100(CifarLabels::Coarse) => 20,
        }
    }

    fn names_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "batches.meta.txt",
            Variant::Cifar100(CifarLabels::Fine) => "fine_label_names.txt",
            Variant::Cifar100(CifarLabels::Coarse) => "coarse_label_names.txt",
        }
    }

    /// The variant a batch file's name belongs to, and whether it is a test batch.
    fn of_file(name: &str, labels: CifarLabels) -> Option<(Variant, bool)> {
        match name {
            "test_batch.bin" => Some((Variant::Cifar10, true)),
            "train.bin" => Some((Variant::Cifar100(labels), false)),
            "test.bin" => Some((Variant::Cifar100(labels), true)),
            _ => data_batch_number(name).map(|_| (Variant::Cifar10, false)),
        }
    }
}

/// N of `data_batch_N.bin`.
fn data_batch_number(name: &str) -> Option<u32> {
    name.strip_prefix("data_batch_")?.strip_suffix(".bin")?.parse().ok()
}

/// Reads CIFAR-10 or CIFAR-100 from one binary batch file or from the
/// extracted folder (`cifar-10-batches-bin` or `cifar-100-binary`).
///
/// The file names tell the variant: `data_batch_N.bin` and `test_batch.bin`
/// are CIFAR-10 (the data batches, in order of N, are the training split),
/// `train.bin` and `test.bin` CIFAR-100. As with [`super::idx_dir`], a lone
/// test batch (or a single file) is the training split. Class names come
/// from `batches.meta.txt` or `fine_label_names.txt`/`coarse_label_names.txt`
/// beside the batches, or are the label numbers when that file is absent.
/// Images are 3×32×32.
pub fn cifar(path: &Path, labels: CifarLabels) -> Result<Sourced<LabeledImages>, DataError> {
    let is_dir = files::check_kind(path, Expected::FileOrFolder)?;
    let (folder, batches) = if is_dir {
        (path.to_path_buf(), sorted_entries(path)?)
    } else {
        let folder = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        (folder.to_path_buf(), vec![path.to_path_buf()])
    };
    let mut variant = None;
    let (mut train_files, mut test_file): (Vec<(u32, PathBuf)>, Option<PathBuf>) = (Vec::new(), None);
    for batch in batches {
        let Some((this_variant, is_test)) = Variant::of_file(file_name(&batch), labels) else {
            if is_dir {
                continue; // the folder also holds readme.html and the names files
            }
            let message = "cannot tell CIFAR-10 from CIFAR-100: expected the name data_batch_N.bin or test_batch.bin \
                           (CIFAR-10), or train.bin or test.bin (CIFAR-100)";
            return Err(DataError::invalid(batch, message));
        };
        if let Some(seen) = variant.filter(|seen: &Variant| seen.name() != this_variant.name()) {
            let message = format!("{} batch beside {} batches", this_variant.name(), seen.name());
            return Err(DataError::invalid(batch, message));
        }
        variant = Some(this_variant);
        if is_test {
            test_file = Some(batch);
        } else {
            train_files.push((data_batch_number(file_name(&batch)).unwrap_or(0), batch));
        }
    }
    let Some(variant) = variant else {
        let message = "no CIFAR batches: expected data_batch_N.bin and test_batch.bin (CIFAR-10) \
                       or train.bin and test.bin (CIFAR-100)";
        return Err(DataError::invalid(path, message));
    };
    train_files.sort();
    if train_files.is_empty() {
        train_files.extend(test_file.take().map(|test| (0, test)));
    }

    let mut report = LoadReport::default();
    let mut train = empty_images();
    for (_, file) in &train_files {
        read_batch(file, variant, &mut train)?;
        report.files_read += 1;
    }
    let test = match test_file {
        Some(file) => {
            let mut test = empty_images();
            read_batch(&file, variant, &mut test)?;
            report.files_read += 1;
            Some(test)
        }
        None => None,
    };
    let class_names = match read_class_names(&folder.join(variant.names_file()), variant)? {
        Some(names) => {
            report.files_read += 1;
            names
        }
        None => numbered_class_names(variant.n_classes()),
    };
    Ok(Sourced { class_names, train, val: None, test, report })
}

fn empty_images() -> LabeledImages {
    LabeledImages { pixels: Vec::new(), channels: 3, height: 32, width: 32, labels: Vec::new() }
}

/// Appends the records of one batch file to `out`.
fn read_batch(path: &Path, variant: Variant, out: &mut LabeledImages) -> Result<(), DataError> {
    let bytes = files::read(path)?;
    let record_len = variant.label_bytes() + PIXEL_BYTES;
    if bytes.is_empty() || bytes.len() % record_len != 0 {
        let message = format!(
            "{} bytes is not a whole, non-zero number of {record_len}-byte {} records ({} label bytes + {PIXEL_BYTES} pixel bytes)",
            bytes.len(),
            variant.name(),
            variant.label_bytes()
        );
        return Err(DataError::invalid(path, message));
    }
    out.pixels.reserve(bytes.len() / record_len * PIXEL_BYTES);
    for (record_idx, record) in bytes.chunks_exact(record_len).enumerate() {
        let label = record[variant.label_offset()];
        if usize::from(label) >= variant.n_classes() {
            let message = format!(
                "record {record_idx}: label {label} is out of range ({} has {} classes); is this a {} file?",
                variant.name(),
                variant.n_classes(),
                variant.name()
            );
            return Err(DataError::invalid(path, message));
        }
        out.labels.push(u32::from(label));
        // The record's planes are already the channels-first layout.
        out.pixels.extend(record[variant.label_bytes()..].iter().map(|&byte| f32::from(byte) / 255.0));
    }
    Ok(())
}

/// The class names in `path`, one per non-empty line (control characters escaped), or None if it
/// does not exist.
fn read_class_names(path: &Path, variant: Variant) -> Result<Option<Vec<String>>, DataError> {
    let bytes = match files::read_text(path) {
        Ok(bytes) => bytes,
        Err(DataError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| DataError::invalid(path, format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
    let names: Vec<String> = text.lines().map(str::trim).filter(|line| !line.is_empty()).map(String::from).collect();
    if names.len() != variant.n_classes() {
        let message = format!("{} class names, expected {} for {}", names.len(), variant.n_classes(), variant.name());
        return Err(DataError::invalid(path, message));
    }
    files::escaped_class_names(path, names).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::images::test_support::assert_error;

    /// A record with `labels` and three marked pixels: red 200 at (row 1, col 2),
    /// green 100 at (3, 4), blue 50 at (31, 31); every other byte is 0.
    fn record(labels: &[u8]) -> Vec<u8> {
        let mut pixels = vec![0u8; PIXEL_BYTES];
        pixels[32 + 2] = 200;
        pixels[1024 + 3 * 32 + 4] = 100;
        pixels[2048 + 31 * 32 + 31] = 50;
        [labels, &pixels].concat()
    }

    /// The value at (channel, row, col) of image `image_idx`.
    fn pixel(images: &LabeledImages, image_idx: usize, channel: usize, row: usize, col: usize) -> f32 {
        images.pixels[image_idx * PIXEL_BYTES + channel * 1024 + row * 32 + col]
    }

    fn assert_marked_pixels(images: &LabeledImages, image_idx: usize) {
        let marked = [((0, 1, 2), 200.0), ((1, 3, 4), 100.0), ((2, 31, 31), 50.0), ((0, 3, 4), 0.0), ((2, 1, 2), 0.0)];
        for ((channel, row, col), value) in marked {
            assert_eq!(pixel(images, image_idx, channel, row, col), value / 255.0, "({channel}, {row}, {col})");
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn cifar10_folder_reads_batches_in_order_with_names_and_pixel_layout() {
        let dir = tempfile::tempdir().unwrap();
        let names: String = (0..10).map(|k| format!("class{k}\n")).collect();
        write(dir.path(), "batches.meta.txt", format!("{names}\n").as_bytes());
        // data_batch_10 sorts before data_batch_2 by name but comes after it by number.
        write(dir.path(), "data_batch_10.bin", &record(&[9]));
        write(dir.path(), "data_batch_2.bin", &[record(&[3]), record(&[4])].concat());
        write(dir.path(), "test_batch.bin", &record(&[7]));
        write(dir.path(), "readme.html", b"<html>");
        let data = cifar(dir.path(), CifarLabels::Fine).unwrap();
        assert_eq!(data.train.labels, [3, 4, 9]);
        assert_eq!(data.test.as_ref().map(|test| test.labels.clone()), Some(vec![7]));
        assert_eq!((data.train.channels, data.train.height, data.train.width), (3, 32, 32));
        assert_eq!(data.class_names[9], "class9");
        assert_eq!(data.report.files_read, 4);
        for image_idx in 0..3 {
            assert_marked_pixels(&data.train, image_idx);
        }
    }

    #[test]
    fn cifar100_file_reads_fine_or_coarse_labels() {
        let dir = tempfile::tempdir().unwrap();
        let batch = write(dir.path(), "train.bin", &[record(&[19, 99]), record(&[0, 5]), record(&[4, 50])].concat());
        for (labels, expected, n_classes) in
            [(CifarLabels::Fine, [99, 5, 50], 100), (CifarLabels::Coarse, [19, 0, 4], 20)]
        {
            let data = cifar(&batch, labels).unwrap();
            assert_eq!((data.train.labels.as_slice(), data.test.is_none()), (&expected[..], true));
            assert_eq!((data.class_names.len(), data.class_names[1].as_str()), (n_classes, "1"));
            assert_marked_pixels(&data.train, 2);
        }
        let coarse: String = (0..20).map(|k| format!("super{k}\n")).collect();
        write(dir.path(), "coarse_label_names.txt", coarse.as_bytes());
        assert_eq!(cifar(&batch, CifarLabels::Coarse).unwrap().class_names[19], "super19");
    }

    #[test]
    fn bad_cifar_files_are_refused_naming_file_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, Vec<u8>, &[&str]); 4] = [
            ("data_batch_1.bin", [record(&[1]), vec![0; 10]].concat(), &["3083 bytes", "3073-byte CIFAR-10 records"]),
            ("train.bin", record(&[1]), &["3073 bytes", "3074-byte CIFAR-100 records"]),
            ("test_batch.bin", record(&[12]), &["record 0: label 12 is out of range", "10 classes"]),
            ("batch.bin", record(&[1]), &["cannot tell CIFAR-10 from CIFAR-100"]),
        ];
        for (name, bytes, needles) in cases {
            let path = write(dir.path(), name, &bytes);
            assert_error(cifar(&path, CifarLabels::Fine), &[&[path.to_str().unwrap()], needles].concat());
            std::fs::remove_file(path).unwrap();
        }
        let names = write(dir.path(), "batches.meta.txt", b"airplane\nautomobile\n");
        write(dir.path(), "test_batch.bin", &record(&[1]));
        assert_error(cifar(dir.path(), CifarLabels::Fine), &[names.to_str().unwrap(), "2 class names, expected 10"]);
    }
}
