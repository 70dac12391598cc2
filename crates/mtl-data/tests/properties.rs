//! Property tests of the data loaders: arbitrary, truncated and almost-valid bytes in
//! IDX (raw and gzip), CIFAR, CSV/TSV, JSONL, line-per-class files, aclImdb archives and
//! `.npy` arrays never panic; a loader gives examples (which then split and tokenise without a panic)
//! or an error naming the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use mtl_data::formats::images::{cifar, idx_dir, read_idx, CifarLabels};
use mtl_data::formats::npy::{read_npy, NpyValues};
use mtl_data::formats::text::{
    aclimdb, delimited, jsonl, lines_per_class, prefixed_lines, Column, DelimitedOptions, JsonlOptions, LabelClasses,
    PrefixedOptions, SplitFiles,
};
use mtl_data::prepare::{image_task, text_task, Amount, Carve, Keep, SplitPolicy, TextOptions};
use mtl_data::{DataError, LabeledImages, LabeledTexts, Sourced};
use proptest::prelude::*;

/// Bounded: each property runs in a few seconds in CI.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() }
}

const POLICY: SplitPolicy = SplitPolicy {
    val: Amount::Fraction(0.1),
    test: Amount::Fraction(0.2),
    carve: Carve::Random,
    seed: 0,
    keep: Keep::ALL,
};
const TEXT: TextOptions = TextOptions { max_len: 8, vocab_size: 50, min_freq: 1 };

/// A temporary folder holding the files of one case.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write case file");
        path
    }
}

/// An error must name the file (or folder) it is about.
fn names(error: &DataError, path: &Path) -> Result<(), TestCaseError> {
    let message = error.to_string();
    prop_assert!(message.contains(&*path.to_string_lossy()), "{message:?} does not name {}", path.display());
    Ok(())
}

/// Images read: carving the splits gives an image task or an error naming `path`.
fn check_images(result: Result<Sourced<LabeledImages>, DataError>, path: &Path) -> Result<(), TestCaseError> {
    match result {
        Ok(sourced) => {
            let size = sourced.train.channels * sourced.train.height * sourced.train.width;
            prop_assert_eq!(sourced.train.pixels.len(), size * sourced.train.labels.len());
            if let Err(error) = image_task("t", path, sourced, &POLICY) {
                names(&error, path)?;
            }
            Ok(())
        }
        Err(error) => names(&error, path),
    }
}

/// Texts read: splitting and tokenising gives a text task or an error naming `path`.
fn check_texts(result: Result<Sourced<LabeledTexts>, DataError>, path: &Path) -> Result<(), TestCaseError> {
    match result {
        Ok(sourced) => {
            prop_assert_eq!(sourced.train.texts.len(), sourced.train.labels.len());
            let n_classes = sourced.class_names.len() as u32;
            prop_assert!(sourced.train.labels.iter().all(|&l| l < n_classes));
            if let Err(error) = text_task("t", path, sourced, &POLICY, &TEXT) {
                names(&error, path)?;
            }
            Ok(())
        }
        Err(error) => names(&error, path),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Bytes that are almost an IDX file: a magic number with 0 to 5 dimensions of 0 to 3,
/// then some data, maybe gzip-compressed, maybe cut short.
fn idx_like() -> impl Strategy<Value = Vec<u8>> {
    let header = (prop::sample::select(vec![0x08u8, 0x08, 0x08, 0x09, 0x0d]), prop::collection::vec(0u32..4, 0..6));
    (header, prop::collection::vec(any::<u8>(), 0..80), any::<bool>(), prop::option::of(any::<prop::sample::Index>()))
        .prop_map(|((element_type, dims), data, compress, cut)| {
            let mut bytes = vec![0, 0, element_type, dims.len() as u8];
            bytes.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
            bytes.extend(data);
            if compress {
                bytes = gzip(&bytes);
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// A `.npy` file from header pieces (versions, dtypes, orders, shapes, some wrong), data
/// of any length, and maybe cut short.
fn npy_like() -> impl Strategy<Value = Vec<u8>> {
    let descr = prop::sample::select(vec!["'<f4'", "'<f8'", "'|u1'", "'<i8'", "'<i4'", "'>f4'", "'<c8'", "<f4", "''"]);
    let order = prop::sample::select(vec!["False", "True", "0", ""]);
    let shape = prop::sample::select(vec![
        "()",
        "(3,)",
        "(2, 3)",
        "(0, 4)",
        "(1, 1, 2)",
        "(99999999999, 99999999999)",
        "(2",
        "[3]",
        "(-1,)",
    ]);
    let header =
        (descr, order, shape).prop_map(|(d, o, s)| format!("{{'descr': {d}, 'fortran_order': {o}, 'shape': {s}, }}\n"));
    (
        prop::sample::select(vec![1u8, 2, 3, 9]),
        header,
        prop::collection::vec(any::<u8>(), 0..64),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(version, header, data, cut)| {
            let mut bytes = b"\x93NUMPY".to_vec();
            bytes.extend([version, 0]);
            match version {
                1 => bytes.extend((header.len() as u16).to_le_bytes()),
                _ => bytes.extend((header.len() as u32).to_le_bytes()),
            }
            bytes.extend(header.as_bytes());
            bytes.extend(data);
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// Text made of the pieces a delimited or JSONL file is built from, and a few bytes that are not UTF-8.
fn pieces(words: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(words), 0..40).prop_map(|parts| parts.concat())
}

const CSV_PIECES: &[&[u8]] = &[
    b"text",
    b"label",
    b",",
    b"\t",
    b"\"",
    b"\n",
    b"\r\n",
    b"pos",
    b"neg",
    b"0",
    b"1",
    b"4294967296",
    b"-1",
    b" ",
    b"good film",
    b"\xe9",
    b"\x92",
    b"\xc3\xa9",
    b"\x00",
];

const JSON_PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"text\"",
    b"\"label\"",
    b":",
    b",",
    b"\"a b\"",
    b"1",
    b"-1",
    b"1e999",
    b"null",
    b"[",
    b"]",
    b"\n",
    b"\"",
    b"\\u0000",
    b"\\ud800",
    b"true",
    b" ",
    b"\xff",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let case = Case::new();
        let path = case.write("t10k-images-idx3-ubyte", &bytes);
        if let Err(error) = read_idx(&path) {
            names(&error, &path)?;
        }
    }

    #[test]
    fn idx_of_almost_valid_bytes(bytes in idx_like()) {
        let case = Case::new();
        let path = case.write("a-file", &bytes);
        match read_idx(&path) {
            Ok(array) => prop_assert_eq!(array.data.len(), array.dims.iter().product::<usize>()),
            Err(error) => names(&error, &path)?,
        }
    }

    #[test]
    fn idx_folders_of_almost_valid_files(images in idx_like(), labels in idx_like(), gz in any::<bool>()) {
        let case = Case::new();
        let ext = if gz { ".gz" } else { "" };
        case.write(&format!("t10k-images-idx3-ubyte{ext}"), &images);
        case.write(&format!("t10k-labels-idx1-ubyte{ext}"), &labels);
        let result = idx_dir(case.dir.path());
        // The folder's path is in the path of each of its files.
        check_images(result, case.dir.path())?;
    }

    #[test]
    fn gzip_streams_cut_anywhere(bytes in prop::collection::vec(any::<u8>(), 0..300), cut in any::<prop::sample::Index>()) {
        let case = Case::new();
        let mut compressed = gzip(&bytes);
        compressed.truncate(cut.index(compressed.len() + 1));
        let path = case.write("images.gz", &compressed);
        if let Err(error) = read_idx(&path) {
            names(&error, &path)?;
        }
    }

    #[test]
    fn cifar_batches_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4000), coarse in any::<bool>()) {
        let case = Case::new();
        let (name, labels) = if coarse { ("train.bin", CifarLabels::Coarse) } else { ("data_batch_1.bin", CifarLabels::Fine) };
        let path = case.write(name, &bytes);
        check_images(cifar(&path, labels), &path)?;
    }

    #[test]
    fn delimited_files(bytes in prop_oneof![pieces(CSV_PIECES), prop::collection::vec(any::<u8>(), 0..300)], by_name in any::<bool>(), tab in any::<bool>()) {
        let case = Case::new();
        let path = case.write("data.csv", &bytes);
        let (text_column, label_column) = if by_name {
            (Column::Name("text".into()), Column::Name("label".into()))
        } else {
            (Column::Index(0), Column::Index(1))
        };
        let options = DelimitedOptions {
            delimiter: if tab { b'\t' } else { b',' },
            has_header: by_name,
            text_columns: vec![text_column],
            label_column,
            quoting: true,
            classes: LabelClasses::Names,
        };
        check_texts(delimited(&path, &options), &path)?;
    }

    #[test]
    fn jsonl_files(bytes in prop_oneof![pieces(JSON_PIECES), prop::collection::vec(any::<u8>(), 0..300)]) {
        let case = Case::new();
        let path = case.write("data.jsonl", &bytes);
        let options = JsonlOptions { text_fields: vec!["text".into()], label_field: "label".into(), classes: LabelClasses::Names };
        check_texts(jsonl(&path, &options), &path)?;
    }

    #[test]
    fn label_prefixed_lines(bytes in prop_oneof![pieces(CSV_PIECES), prop::collection::vec(any::<u8>(), 0..300)], coarse in any::<bool>()) {
        let case = Case::new();
        let path = case.write("train_5500.label", &bytes);
        let options = PrefixedOptions { coarse, classes: LabelClasses::Names };
        check_texts(prefixed_lines(&SplitFiles::one(&path), &options), &path)?;
    }

    #[test]
    fn line_per_class_files(first in prop::collection::vec(any::<u8>(), 0..200), second in pieces(CSV_PIECES)) {
        let case = Case::new();
        let files = [case.write("a.pos", &first), case.write("b.neg", &second)];
        let result = lines_per_class(&files);
        // Either file may be the one at fault: the error names one of them.
        match result {
            Err(error) => {
                let message = error.to_string();
                prop_assert!(files.iter().any(|f| message.contains(&*f.to_string_lossy())), "{message}");
            }
            ok => check_texts(ok, &files[0])?,
        }
    }

    #[test]
    fn aclimdb_archives_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1500), compress in any::<bool>()) {
        let case = Case::new();
        let content = if compress { gzip(&bytes) } else { bytes };
        let path = case.write("aclImdb_v1.tar.gz", &content);
        check_texts(aclimdb(&path), &path)?;
    }

    #[test]
    fn npy_arrays_of_almost_valid_and_arbitrary_bytes(bytes in prop_oneof![npy_like(), prop::collection::vec(any::<u8>(), 0..200)]) {
        let case = Case::new();
        let path = case.write("array.npy", &bytes);
        match read_npy(&path) {
            Ok(array) => {
                let len = match &array.values {
                    NpyValues::F32(v) => v.len(),
                    NpyValues::F64(v) => v.len(),
                    NpyValues::U8(v) => v.len(),
                    NpyValues::I32(v) => v.len(),
                    NpyValues::I64(v) => v.len(),
                };
                prop_assert_eq!(len, array.shape.iter().product::<usize>());
            }
            Err(error) => names(&error, &path)?,
        }
    }
}
