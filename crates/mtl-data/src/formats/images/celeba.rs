//! CelebA's attribute layout: a folder `img_align_celeba/` of face images, the table
//! `list_attr_celeba.txt` (the image count, the attribute names, then one row per image:
//! its file name and one `1` or `-1` per attribute) and `list_eval_partition.txt` (one
//! row per image: its file name and 0 train, 1 val, 2 test).
//!
//! Only the images a run keeps are decoded: the tables are read first, each split cut to
//! its `n_train`/`n_val`/`n_test` (a seeded subset in file order), then those images.

use std::collections::HashMap;
use std::path::Path;

use super::folder::{check_options, decode};
use super::{ImageFolderOptions, Unreadable};
use crate::formats::text::decode::decode_owned;
use crate::prepare::{subsample, Keep};
use crate::{files, DataError, LabeledImages, LoadReport, Sourced};

/// The image folder, attribute table and partition file of the layout.
pub const IMAGES: &str = "img_align_celeba";
/// The attribute table.
pub const ATTRIBUTES: &str = "list_attr_celeba.txt";
/// The partition file.
pub const PARTITION: &str = "list_eval_partition.txt";

/// One split of CelebA: the images (their `labels` unused, all 0) and every attribute of
/// each, `n × k` values 1 (present) or 0 (absent), row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeImages {
    /// The decoded images.
    pub images: LabeledImages,
    /// `n × k` attributes.
    pub attributes: Vec<u8>,
}

/// The attribute table: names, and per image its file name and attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeTable {
    /// Attribute names, in the file's order.
    pub names: Vec<String>,
    /// Image file names, in the file's order.
    pub files: Vec<String>,
    /// `files × names` values, 1 present, 0 absent.
    pub values: Vec<u8>,
}

/// Reads `list_attr_celeba.txt`; every problem names the line.
pub fn attribute_table(path: &Path) -> Result<AttributeTable, DataError> {
    let text = decode_owned(files::read_text(path)?).text;
    let mut lines =
        text.lines().enumerate().map(|(i, line)| (i as u64 + 1, line)).filter(|(_, l)| !l.trim().is_empty());
    let invalid = |line: u64, message: String| DataError::invalid(path, format!("line {line}: {message}"));
    let (count_line, count) = lines.next().ok_or_else(|| DataError::invalid(path, "empty file"))?;
    let count: usize =
        count.trim().parse().map_err(|_| invalid(count_line, format!("{count:?} is not the image count")))?;
    let (names_line, names) = lines.next().ok_or_else(|| DataError::invalid(path, "no attribute names (line 2)"))?;
    let names: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
    if names.is_empty() {
        return Err(invalid(names_line, "no attribute names".into()));
    }
    let mut table = AttributeTable { names, files: Vec::new(), values: Vec::new() };
    for (line, row) in lines {
        let mut fields = row.split_whitespace();
        let file = fields.next().unwrap_or_default();
        let values: Vec<&str> = fields.collect();
        if values.len() != table.names.len() {
            return Err(invalid(line, format!("{} values for {} attributes", values.len(), table.names.len())));
        }
        for (value, name) in values.iter().zip(&table.names) {
            table.values.push(match *value {
                "1" => 1,
                "-1" | "0" => 0,
                other => return Err(invalid(line, format!("attribute {name}: {other:?} must be 1 or -1"))),
            });
        }
        table.files.push(file.to_owned());
    }
    if table.files.len() != count {
        let message = format!("the first line promises {count} images, the file lists {}", table.files.len());
        return Err(DataError::invalid(path, message));
    }
    Ok(table)
}

/// Reads `list_eval_partition.txt`: each file name's split, 0, 1 or 2.
fn partition(path: &Path) -> Result<HashMap<String, u8>, DataError> {
    let text = decode_owned(files::read_text(path)?).text;
    let mut splits = HashMap::new();
    for (i, row) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let split = match fields[..] {
            [_, "0"] => 0,
            [_, "1"] => 1,
            [_, "2"] => 2,
            _ => {
                let message = format!("line {}: {row:?} must be a file name and 0 (train), 1 (val) or 2 (test)", i + 1);
                return Err(DataError::invalid(path, message));
            }
        };
        splits.insert(fields[0].to_owned(), split);
    }
    Ok(splits)
}

/// What `mtl data inspect` shows of a CelebA layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutSummary {
    /// The attribute names.
    pub names: Vec<String>,
    /// Per split (train, val, test): its images and each attribute's positives.
    pub splits: [(usize, Vec<usize>); 3],
    /// Listed images missing from the image folder: up to 5 named, and their count.
    pub missing: (Vec<String>, usize),
}

/// The [`LayoutSummary`] of the layout under `root`, without decoding an image.
pub fn summary(root: &Path) -> Result<LayoutSummary, DataError> {
    files::check_kind(root, files::Expected::Folder)?;
    let table = attribute_table(&root.join(ATTRIBUTES))?;
    let partition_path = root.join(PARTITION);
    let splits = partition(&partition_path)?;
    let k = table.names.len();
    let mut counts: [(usize, Vec<usize>); 3] = std::array::from_fn(|_| (0, vec![0; k]));
    let (mut missing, mut n_missing) = (Vec::new(), 0);
    for (i, file) in table.files.iter().enumerate() {
        let Some(&split) = splits.get(file) else {
            return Err(DataError::invalid(
                &partition_path,
                format!("no split for {file:?}, which {ATTRIBUTES} lists"),
            ));
        };
        let (count, positives) = &mut counts[split as usize];
        *count += 1;
        positives.iter_mut().zip(&table.values[i * k..(i + 1) * k]).for_each(|(p, &v)| *p += usize::from(v));
        if !root.join(IMAGES).join(file).is_file() {
            n_missing += 1;
            if missing.len() < 5 {
                missing.push(file.clone());
            }
        }
    }
    Ok(LayoutSummary { names: table.names, splits: counts, missing: (missing, n_missing) })
}

/// Reads the CelebA layout under `root`: the splits of the partition file, each cut to
/// `keep` (drawn from `seed`), their images decoded as `options` say. The class names of
/// the result are the attribute names.
pub fn celeba(
    root: &Path,
    options: &ImageFolderOptions,
    keep: Keep,
    seed: u64,
) -> Result<Sourced<AttributeImages>, DataError> {
    check_options(root, options)?;
    files::check_kind(root, files::Expected::Folder)?;
    let table = attribute_table(&root.join(ATTRIBUTES))?;
    let partition_path = root.join(PARTITION);
    let splits = partition(&partition_path)?;
    let mut indices: [Vec<usize>; 3] = Default::default();
    for (i, file) in table.files.iter().enumerate() {
        let Some(&split) = splits.get(file) else {
            return Err(DataError::invalid(
                &partition_path,
                format!("no split for {file:?}, which {ATTRIBUTES} lists"),
            ));
        };
        indices[split as usize].push(i);
    }
    let [train, val, test] = indices;
    let kept = [(train, keep.train, "train"), (val, keep.val, "val"), (test, keep.test, "test")]
        .map(|(indices, n, name)| subsample(indices, n, seed, name));
    let mut report = LoadReport::default();
    let mut read = |indices: Result<Vec<usize>, String>| -> Result<AttributeImages, DataError> {
        let indices = indices.map_err(|message| DataError::invalid(root, message))?;
        let k = table.names.len();
        let (mut pixels, mut attributes) = (Vec::new(), Vec::new());
        for i in indices {
            let file = root.join(IMAGES).join(&table.files[i]);
            match decode(&file, options) {
                Ok(image) => {
                    pixels.extend(image);
                    attributes.extend_from_slice(&table.values[i * k..(i + 1) * k]);
                    report.files_read += 1;
                }
                Err(reason) => match options.on_unreadable {
                    Unreadable::Skip => report.skipped.push((file, reason)),
                    Unreadable::Fail => return Err(DataError::invalid(file, format!("unreadable image: {reason}"))),
                },
            }
        }
        let n = attributes.len() / k;
        let (channels, height, width) = (options.channels, options.height, options.width);
        Ok(AttributeImages {
            images: LabeledImages { pixels, channels, height, width, labels: vec![0; n] },
            attributes,
        })
    };
    let [train, val, test] = kept;
    let (train, val, test) = (read(train)?, read(val)?, read(test)?);
    if train.attributes.is_empty() {
        let message = format!("no training images: no row of {PARTITION} marks a listed, readable image 0 (train)");
        return Err(DataError::invalid(partition_path, message));
    }
    Ok(Sourced { class_names: table.names, train, val: Some(val), test: Some(test), report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::images::Fit;

    /// A CelebA layout of 6 images (4 train, 1 val, 1 test) with attributes Smiling and Young.
    pub(crate) fn layout(root: &Path) {
        std::fs::create_dir_all(root.join(IMAGES)).expect("mkdir");
        let rows = [
            "000001.jpg  1 -1",
            "000002.jpg -1 -1",
            "000003.jpg  1  1",
            "000004.jpg -1  1",
            "000005.jpg  1  1",
            "000006.jpg -1 -1",
        ];
        for (i, _) in rows.iter().enumerate() {
            let shade = (i * 40) as u8;
            let image = image::RgbImage::from_pixel(178, 218, image::Rgb([shade, 255 - shade, 7]));
            image.save(root.join(IMAGES).join(format!("{:06}.jpg", i + 1))).expect("jpeg");
        }
        std::fs::write(root.join(ATTRIBUTES), format!("6\nSmiling Young \n{}\n", rows.join("\n"))).expect("attributes");
        let partition = "000001.jpg 0\n000002.jpg 0\n000003.jpg 0\n000004.jpg 0\n000005.jpg 1\n000006.jpg 2\n";
        std::fs::write(root.join(PARTITION), partition).expect("partition");
    }

    fn options() -> ImageFolderOptions {
        ImageFolderOptions { channels: 3, height: 8, width: 8, on_unreadable: Unreadable::Fail, fit: Fit::CenterCrop }
    }

    #[test]
    fn reads_the_splits_of_the_partition_with_their_attributes() {
        let dir = tempfile::tempdir().expect("dir");
        layout(dir.path());
        let read = celeba(dir.path(), &options(), Keep::ALL, 0).expect("reads");
        assert_eq!(read.class_names, ["Smiling", "Young"]);
        assert_eq!(read.train.attributes, [1, 0, 0, 0, 1, 1, 0, 1]);
        assert_eq!(read.val.as_ref().expect("val").attributes, [1, 1]);
        assert_eq!(read.test.as_ref().expect("test").attributes, [0, 0]);
        assert_eq!(read.train.images.pixels.len(), 4 * 3 * 8 * 8);
        // Only the kept images are decoded: 2 of train, all of val and test.
        let kept = celeba(dir.path(), &options(), Keep { train: Some(2), ..Keep::ALL }, 0).expect("reads");
        assert_eq!((kept.train.attributes.len(), kept.report.files_read), (4, 4));
    }

    #[test]
    fn the_summary_counts_each_split_s_images_and_positives_and_names_missing_images() {
        let dir = tempfile::tempdir().expect("dir");
        layout(dir.path());
        std::fs::remove_file(dir.path().join(IMAGES).join("000002.jpg")).expect("remove");
        let summary = summary(dir.path()).expect("summary");
        assert_eq!(summary.names, ["Smiling", "Young"]);
        assert_eq!(summary.splits, [(4, vec![2, 2]), (1, vec![1, 1]), (1, vec![0, 0])]);
        assert_eq!(summary.missing, (vec!["000002.jpg".to_owned()], 1));
    }

    #[test]
    fn bad_tables_name_the_file_and_line() {
        let cases = [
            (ATTRIBUTES, "6\nSmiling Young\n000001.jpg 1\n", "list_attr_celeba.txt: line 3: 1 values for 2 attributes"),
            (ATTRIBUTES, "6\nSmiling Young\n000001.jpg 1 yes\n", "line 3: attribute Young: \"yes\" must be 1 or -1"),
            (ATTRIBUTES, "7\nSmiling Young\n000001.jpg 1 1\n", "the first line promises 7 images, the file lists 1"),
            (PARTITION, "000001.jpg 0\n", "list_eval_partition.txt: no split for \"000002.jpg\""),
            (PARTITION, "000001.jpg 3\n", "line 1: \"000001.jpg 3\" must be a file name and 0 (train)"),
        ];
        for (file, text, expected) in cases {
            let dir = tempfile::tempdir().expect("dir");
            layout(dir.path());
            std::fs::write(dir.path().join(file), text).expect("write");
            let error = celeba(dir.path(), &options(), Keep::ALL, 0).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
        let dir = tempfile::tempdir().expect("dir");
        layout(dir.path());
        std::fs::remove_file(dir.path().join(IMAGES).join("000003.jpg")).expect("remove");
        let error = celeba(dir.path(), &options(), Keep::ALL, 0).unwrap_err().to_string();
        assert!(error.contains("000003.jpg: unreadable image"), "{error}");
    }
}
