//! The Large Movie Review Dataset (Maas et al. 2011): `aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt`.

use super::decode::decode_owned;
use super::parallel_map;
use crate::files::{self, Expected};
use crate::{DataError, LabeledTexts, LoadReport, Sourced};
use std::path::{Path, PathBuf};

const CLASS_NAMES: [&str; 2] = ["neg", "pos"];

/// Reads the aclImdb train and test splits; `root` is the `aclImdb` folder, its
/// parent, or the distributed archive itself (`aclImdb_v1.tar.gz`, read without extracting).
///
/// Labels are 0 = "neg" and 1 = "pos"; `unsup`, the `.feat` files and the url lists are ignored.
/// Reviews come in a fixed order: negatives then positives, each by numeric id. A review is one example:
/// it may hold at most [`files::MAX_LINE_BYTES`].
pub fn aclimdb(root: &Path) -> Result<Sourced<LabeledTexts>, DataError> {
    if !files::check_kind(root, Expected::FileOrFolder)? {
        return aclimdb_archive(root);
    }
    let nested = root.join("aclImdb");
    let root = if nested.is_dir() { nested } else { root.to_path_buf() };
    // Both splits are listed before any file is read, so a broken layout fails fast.
    let train_files = list_split(&root, "train")?;
    let test_files = list_split(&root, "test")?;
    let mut report = LoadReport::default();
    let train = read_split(&train_files, &mut report)?;
    let test = read_split(&test_files, &mut report)?;
    Ok(Sourced {
        class_names: CLASS_NAMES.iter().map(|&c| c.to_owned()).collect(),
        train,
        val: None,
        test: Some(test),
        report,
    })
}

/// The review files of one split with their labels, in reading order.
fn list_split(root: &Path, split: &str) -> Result<Vec<(PathBuf, u32)>, DataError> {
    let split_dir = root.join(split);
    if !split_dir.is_dir() {
        return Err(DataError::invalid(&split_dir, format!("missing aclImdb split folder '{split}'")));
    }
    let mut files = Vec::new();
    for (label, class) in CLASS_NAMES.iter().enumerate() {
        let class_dir = split_dir.join(class);
        if !class_dir.is_dir() {
            return Err(DataError::invalid(&class_dir, format!("missing aclImdb class folder '{split}/{class}'")));
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&class_dir).map_err(|e| DataError::io(&class_dir, e))? {
            let entry = entry.map_err(|e| DataError::io(&class_dir, e))?;
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "txt") && !path.is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        if names.is_empty() {
            return Err(DataError::invalid(
                &class_dir,
                format!("no .txt reviews in aclImdb class folder '{split}/{class}'"),
            ));
        }
        names.sort_by_cached_key(|name| file_order(name));
        files.extend(names.into_iter().map(|name| (class_dir.join(name), label as u32)));
    }
    Ok(files)
}

/// `<id>_<rating>.txt` sorts by numeric id (then rating), before any other name, which sorts as text.
fn file_order(name: &str) -> (bool, Option<(u64, u64)>, String) {
    let numeric = name.strip_suffix(".txt").and_then(|stem| {
        let (id, rating) = stem.split_once('_')?;
        Some((id.parse().ok()?, rating.parse().ok()?))
    });
    (numeric.is_none(), numeric, name.to_owned())
}

fn read_split(review_files: &[(PathBuf, u32)], report: &mut LoadReport) -> Result<LabeledTexts, DataError> {
    let decoded = parallel_map(review_files, |(path, _)| files::read_text(path).map(decode_owned));
    let mut texts = Vec::with_capacity(review_files.len());
    for result in decoded {
        let decoded = result?;
        report.files_read += 1;
        report.decoded_as_windows_1252 += usize::from(decoded.windows_1252);
        report.replacements += decoded.replacements;
        texts.push(decoded.text);
    }
    Ok(LabeledTexts { texts, labels: review_files.iter().map(|&(_, label)| label).collect() })
}

/// Reads the reviews straight from a `.tar` or `.tar.gz` of the aclImdb folder.
fn aclimdb_archive(path: &Path) -> Result<Sourced<LabeledTexts>, DataError> {
    use std::io::Read;
    let (mut file, _) = files::open(path)?;
    let mut magic = [0u8; 2];
    let gzipped = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let (file, _) = files::open(path)?;
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let broken = |e: std::io::Error| DataError::invalid(path, format!("not a readable tar archive: {e}"));
    // (split, class) → (name, bytes), for train/neg, train/pos, test/neg, test/pos.
    let mut groups: [Vec<(String, Vec<u8>)>; 4] = Default::default();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let entry_path = entry.path().map_err(broken)?.into_owned();
        let parts: Vec<String> = entry_path.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let [.., split, class, name] = parts.as_slice() else { continue };
        let split_idx = ["train", "test"].iter().position(|s| s == split);
        let class_idx = CLASS_NAMES.iter().position(|c| c == class);
        let (Some(split_idx), Some(class_idx)) = (split_idx, class_idx) else { continue };
        if !name.ends_with(".txt") || !entry.header().entry_type().is_file() {
            continue;
        }
        // The header's size is checked before it reserves anything.
        if entry.size() > files::MAX_LINE_BYTES as u64 {
            let message = format!(
                "{}: a review of {} bytes, more than the 16 MiB one example may hold",
                entry_path.display(),
                entry.size()
            );
            return Err(DataError::invalid(path, message));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(broken)?;
        groups[split_idx * 2 + class_idx].push((name.clone(), bytes));
    }
    let mut report = LoadReport::default();
    let mut splits = Vec::new();
    for (split_idx, split) in ["train", "test"].iter().enumerate() {
        let mut labelled = Vec::new();
        for (class_idx, class) in CLASS_NAMES.iter().enumerate() {
            let mut files = std::mem::take(&mut groups[split_idx * 2 + class_idx]);
            if files.is_empty() {
                return Err(DataError::invalid(path, format!("the archive has no {split}/{class}/*.txt reviews")));
            }
            files.sort_by_cached_key(|(name, _)| file_order(name));
            labelled.extend(files.into_iter().map(|(_, bytes)| (bytes, class_idx as u32)));
        }
        let decoded = parallel_map(&labelled, |(bytes, _)| decode_owned(bytes.clone()));
        let mut texts = Vec::with_capacity(labelled.len());
        for d in decoded {
            report.files_read += 1;
            report.decoded_as_windows_1252 += usize::from(d.windows_1252);
            report.replacements += d.replacements;
            texts.push(d.text);
        }
        splits.push(LabeledTexts { texts, labels: labelled.iter().map(|(_, label)| *label).collect() });
    }
    let test = splits.pop();
    let train = splits.pop().unwrap_or(LabeledTexts { texts: vec![], labels: vec![] });
    Ok(Sourced { class_names: CLASS_NAMES.iter().map(|&c| c.to_owned()).collect(), train, val: None, test, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Writes `files` (path relative to `root`, content) and creates the folders they need.
    fn write(root: &Path, files: &[(&str, &[u8])]) {
        for (name, content) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
    }

    fn mini_imdb(root: &Path) {
        write(
            root,
            &[
                ("aclImdb/train/neg/10_2.txt", b"Dull.<br /><br />Really dull."),
                ("aclImdb/train/neg/9_1.txt", b"Awful."),
                ("aclImdb/train/neg/urls_neg.txt.bak", b"ignored"),
                ("aclImdb/train/pos/0_10.txt", b"\xEF\xBB\xBFGreat!"),
                ("aclImdb/train/pos/1_9.txt", b"Fine\x85 I guess\x81"),
                ("aclImdb/train/pos/notes.txt", b"odd name, sorted last"),
                ("aclImdb/train/unsup/0_0.txt", b"unlabelled"),
                ("aclImdb/train/labeledBow.feat", b"0 0:1"),
                ("aclImdb/test/neg/3_4.txt", b"Meh."),
                ("aclImdb/test/neg/2_1.txt", b"Bad."),
                ("aclImdb/test/pos/5_7.txt", b"Good."),
                ("aclImdb/test/pos/4_8.txt", b"Lovely."),
                ("aclImdb/imdb.vocab", b"the"),
            ],
        );
    }

    #[test]
    fn aclimdb_reads_mini_folder_in_order() {
        let dir = tempfile::tempdir().unwrap();
        mini_imdb(dir.path());
        let expected = Sourced {
            class_names: vec!["neg".to_owned(), "pos".to_owned()],
            train: LabeledTexts {
                texts: [
                    "Awful.",
                    "Dull.<br /><br />Really dull.",
                    "Great!",
                    "Fine\u{2026} I guess\u{FFFD}",
                    "odd name, sorted last",
                ]
                .map(String::from)
                .to_vec(),
                labels: vec![0, 0, 1, 1, 1],
            },
            val: None,
            test: Some(LabeledTexts {
                texts: ["Bad.", "Meh.", "Lovely.", "Good."].map(String::from).to_vec(),
                labels: vec![0, 0, 1, 1],
            }),
            report: LoadReport { files_read: 9, skipped: vec![], decoded_as_windows_1252: 1, replacements: 1 },
        };
        // The parent of aclImdb and aclImdb itself both work.
        assert_eq!(aclimdb(dir.path()).unwrap(), expected);
        assert_eq!(aclimdb(&dir.path().join("aclImdb")).unwrap(), expected);
        // And so does the .tar.gz of the folder, read without extracting (fewer files are
        // read from it: the stray .txt name in train/pos counts, the rest never reach a reader).
        let archive = dir.path().join("aclImdb_v1.tar.gz");
        let gz = flate2::write::GzEncoder::new(fs::File::create(&archive).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all("aclImdb", dir.path().join("aclImdb")).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let from_archive = aclimdb(&archive).unwrap();
        assert_eq!((&from_archive.train, &from_archive.test), (&expected.train, &expected.test));
        assert_eq!(from_archive.report.files_read, 9);
    }

    #[test]
    fn aclimdb_layout_errors() {
        fn check(remove: &[&str], expected: &str) {
            let dir = tempfile::tempdir().unwrap();
            mini_imdb(dir.path());
            let root = dir.path().join("aclImdb");
            for path in remove {
                let path = root.join(path);
                if path.is_dir() {
                    fs::remove_dir_all(&path).unwrap();
                } else {
                    fs::remove_file(&path).unwrap();
                }
            }
            let err = aclimdb(dir.path()).unwrap_err().to_string();
            assert_eq!(err, expected.replace("ROOT", &root.to_string_lossy()), "removing {remove:?}");
        }
        check(&["test"], "ROOT/test: missing aclImdb split folder 'test'");
        check(&["train"], "ROOT/train: missing aclImdb split folder 'train'");
        check(&["test/pos"], "ROOT/test/pos: missing aclImdb class folder 'test/pos'");
        // Only a file that is not a review is left.
        check(
            &["train/neg/10_2.txt", "train/neg/9_1.txt"],
            "ROOT/train/neg: no .txt reviews in aclImdb class folder 'train/neg'",
        );
    }
}
