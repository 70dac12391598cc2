//! Hostile inputs to the readers (issue 15): devices and FIFOs are refused before they are
//! opened, a line over the cap is refused naming file and line, an IDX header that lies about
//! its size stops the reading, labels that leave classes empty are refused, control characters
//! in class names are escaped, and `inspect` reports empty texts and a single class.
//!
//! Each reader runs on a thread with a deadline, so that one that blocks on a FIFO fails the
//! test instead of hanging it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use mtl_data::formats::images::{self, cifar, idx_dir, image_folder, read_idx, CifarLabels};
use mtl_data::formats::text::{
    aclimdb, delimited, jsonl, lines_per_class, prefixed_lines, Column, DelimitedOptions, JsonlOptions, LabelClasses,
    PrefixedOptions, SplitFiles,
};
use mtl_data::inspect::{inspect, Format};
use mtl_data::DataError;

/// The documented cap on one line, one JSONL object or one CSV record: 16 MiB.
const LINE_CAP: usize = 16 << 20;

/// A hang guard, not a timing assertion.
const DEADLINE: Duration = Duration::from_secs(30);

/// `read(path)` on its own thread; its error message, or a panic if it succeeds or outlives [`DEADLINE`].
#[track_caller]
fn error_of<T: Send + 'static>(
    path: &Path,
    read: impl FnOnce(&Path) -> Result<T, DataError> + Send + 'static,
) -> String {
    let (send, receive) = mpsc::channel();
    let owned = path.to_path_buf();
    // A reader blocked on a FIFO stays blocked: the thread is left behind, the test fails.
    std::thread::spawn(move || send.send(read(&owned).err().map(|e| e.to_string())));
    match receive.recv_timeout(DEADLINE) {
        Ok(Some(message)) => message,
        Ok(None) => panic!("{} was read without an error", path.display()),
        Err(_) => panic!("reading {} did not end within {DEADLINE:?}", path.display()),
    }
}

#[track_caller]
fn assert_contains(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(message.contains(needle), "{message:?} does not contain {needle:?}");
    }
}

fn csv_options(delimiter: u8) -> DelimitedOptions {
    DelimitedOptions {
        delimiter,
        has_header: true,
        text_columns: vec![Column::Name("text".into())],
        label_column: Column::Name("label".into()),
        quoting: true,
        classes: LabelClasses::Names,
    }
}

fn jsonl_options() -> JsonlOptions {
    JsonlOptions { text_fields: vec!["text".into()], label_field: "label".into(), classes: LabelClasses::Names }
}

type Reader = fn(&Path) -> Result<(), DataError>;

/// Every reader that takes a file, by name.
const FILE_READERS: [(&str, Reader); 8] = [
    ("idx", |p| read_idx(p).map(drop)),
    ("cifar", |p| cifar(p, CifarLabels::Fine).map(drop)),
    ("aclimdb", |p| aclimdb(p).map(drop)),
    ("csv", |p| delimited(p, &csv_options(b',')).map(drop)),
    ("tsv", |p| delimited(p, &csv_options(b'\t')).map(drop)),
    ("jsonl", |p| jsonl(p, &jsonl_options()).map(drop)),
    ("text-lines", |p| lines_per_class(&[p.to_path_buf(), PathBuf::from("other.txt")]).map(drop)),
    ("prefixed-lines", |p| {
        prefixed_lines(&SplitFiles::one(p), &PrefixedOptions { coarse: false, classes: LabelClasses::Names }).map(drop)
    }),
];

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn devices_and_fifos_are_refused_before_they_are_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    mkfifo(&fifo);
    let device = PathBuf::from("/dev/null");
    for (path, kind) in [(&device, "a character device"), (&fifo, "a FIFO")] {
        let shown = path.to_str().unwrap();
        for (reader, read) in FILE_READERS {
            let message = error_of(path, read);
            assert_contains(&message, &[shown, kind]);
            assert!(
                message.contains("not a regular file") || message.contains("not a file or a folder"),
                "{reader}: {message}"
            );
        }
        let message = error_of(path, |p| idx_dir(p).map(drop));
        assert_contains(&message, &[shown, kind]);
        let message = error_of(path, |p| image_folder(p, &folder_options()).map(drop));
        assert_contains(&message, &[shown, kind]);
        for (format, _) in Format::ALL {
            let message = error_of(path, move |p| inspect(p, Some(format)).map(drop));
            assert_contains(&message, &[shown, kind]);
        }
        let message = error_of(path, |p| inspect(p, None).map(drop));
        assert_contains(&message, &[shown, kind]);
    }
}

#[test]
fn a_fifo_inside_a_data_folder_is_refused_not_skipped_unread() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("t10k-images-idx3-ubyte"));
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx(&[1], &[0])).unwrap();
    let message = error_of(dir.path(), |p| idx_dir(p).map(drop));
    assert_contains(&message, &["t10k-images-idx3-ubyte", "a FIFO"]);

    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("cat")).unwrap();
    image::RgbImage::new(2, 2).save(folder.path().join("cat/a.png")).unwrap();
    mkfifo(&folder.path().join("cat/b.png"));
    let message = error_of(folder.path(), |p| image_folder(p, &folder_options()).map(drop));
    assert_contains(&message, &["cat/b.png", "a FIFO"]);
    // Skipping unreadable images skips it without opening it, and says why.
    let skip = images::ImageFolderOptions { on_unreadable: images::Unreadable::Skip, ..folder_options() };
    let data = image_folder(folder.path(), &skip).unwrap();
    assert_eq!(data.report.skipped.len(), 1, "{:?}", data.report.skipped);
    assert_contains(&data.report.skipped[0].1, &["a FIFO"]);
}

fn folder_options() -> images::ImageFolderOptions {
    images::ImageFolderOptions {
        channels: 1,
        height: 2,
        width: 2,
        on_unreadable: images::Unreadable::Fail,
        fit: images::Fit::Stretch,
    }
}

/// Writes `content` as `name` in a new temporary folder.
fn file(name: &str, content: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

#[test]
fn a_line_over_the_cap_is_refused_naming_file_and_line() {
    let long = vec![b'a'; LINE_CAP + 1];
    let at_cap = vec![b'a'; LINE_CAP];
    let csv = [&b"text,label\nshort,pos\n"[..], &long, b",neg\n"].concat();
    let tsv = [&b"text\tlabel\nshort\tpos\n"[..], &long, b"\tneg\n"].concat();
    let json = [&b"{\"text\": \"ok\", \"label\": 0}\n\n{\"text\": \""[..], &long, b"\", \"label\": 1}\n"].concat();
    let lines = [&b"fine\n\n"[..], &long].concat();
    let prefixed = [&b"pos fine\n\npos "[..], &long].concat();
    let cases: [(&str, Vec<u8>, Reader); 5] = [
        ("data.csv", csv, |p| delimited(p, &csv_options(b',')).map(drop)),
        ("data.tsv", tsv, |p| delimited(p, &csv_options(b'\t')).map(drop)),
        ("data.jsonl", json, |p| jsonl(p, &jsonl_options()).map(drop)),
        ("a.pos", lines, |p| lines_per_class(&[p.to_path_buf(), p.with_extension("neg")]).map(drop)),
        ("t.label", prefixed, FILE_READERS[7].1),
    ];
    for (name, content, read) in cases {
        let (_dir, path) = file(name, &content);
        let message = error_of(&path, read);
        assert_contains(&message, &[path.to_str().unwrap(), "line 3", "16 MiB"]);
    }
    // An aclImdb review is one text, in a folder or in the archive.
    let dir = tempfile::tempdir().unwrap();
    let reviews: [(&str, &[u8]); 4] = [
        ("train/pos/0_9.txt", &long),
        ("train/neg/1_1.txt", b"bad"),
        ("test/pos/2_8.txt", b"good"),
        ("test/neg/3_2.txt", b"bad"),
    ];
    for (name, content) in reviews {
        let path = dir.path().join("aclImdb").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let message = error_of(dir.path(), |p| aclimdb(p).map(drop));
    assert_contains(&message, &["aclImdb/train/pos/0_9.txt", "line 1", "16 MiB"]);
    let archive = dir.path().join("aclImdb.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    tar.append_dir_all("aclImdb", dir.path().join("aclImdb")).unwrap();
    tar.finish().unwrap();
    let message = error_of(&archive, |p| aclimdb(p).map(drop));
    assert_contains(&message, &[archive.to_str().unwrap(), "aclImdb/train/pos/0_9.txt", "16 MiB"]);
    // A line of exactly the cap is read.
    let (_dir, path) = file("at-cap.csv", &[&b"text,label\n"[..], &at_cap[4..], b",pos\n"].concat());
    assert_eq!(delimited(&path, &csv_options(b',')).unwrap().train.texts[0].len(), LINE_CAP - 4);
}

#[test]
fn a_csv_record_over_the_cap_is_refused_even_in_short_lines() {
    // One quoted field of many short lines.
    let field: Vec<u8> = b"ab\n".repeat(LINE_CAP / 3 + 1);
    let content = [&b"text,label\nok,pos\n\""[..], &field, b"\",neg\n"].concat();
    let (_dir, path) = file("data.csv", &content);
    let message = error_of(&path, |p| delimited(p, &csv_options(b',')).map(drop));
    assert_contains(&message, &[path.to_str().unwrap(), "line 3", "record", "16 MiB"]);
}

/// An IDX file of unsigned bytes.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    bytes.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
    bytes.extend(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn an_idx_header_is_trusted_only_up_to_the_cap_and_bounds_the_reading() {
    let absurd = idx(&[u32::MAX, 28, 28], &[0; 100]);
    for (name, bytes) in [("absurd", absurd.clone()), ("absurd.gz", gzip(&absurd))] {
        let (_dir, path) = file(name, &bytes);
        let message = error_of(&path, |p| read_idx(p).map(drop));
        assert_contains(&message, &[path.to_str().unwrap(), "4294967295×28×28", "at most 1 GiB"]);
    }
    // Decompressed data past the header's size: refused, without the exact count of what follows.
    let bomb = gzip(&[idx(&[2, 2, 2], &[0; 8]), vec![0; 4 << 20]].concat());
    let (_dir, path) = file("bomb.gz", &bomb);
    let message = error_of(&path, |p| read_idx(p).map(drop));
    assert_contains(&message, &[path.to_str().unwrap(), "trailing", "2×2×2 = 8 bytes of data"]);
    // A raw file longer than its header says: refused from its length.
    let (_dir, path) = file("long", &idx(&[2, 2, 2], &[0; 11]));
    let message = error_of(&path, |p| read_idx(p).map(drop));
    assert_contains(&message, &["3 trailing bytes", "8 bytes of data", "file has 11"]);
}

/// Writes an IDX pair of `labels.len()` 1×1 images as `{split}-…-idx?-ubyte` in `dir`.
fn write_pair(dir: &Path, split: &str, labels: &[u8]) {
    let n = labels.len() as u32;
    std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), idx(&[n, 1, 1], &vec![0; labels.len()])).unwrap();
    std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), idx(&[n], labels)).unwrap();
}

#[test]
fn idx_labels_that_leave_classes_without_examples_are_refused() {
    fn check(train: &[u8], test: &[u8], expected: Result<usize, &[&str]>) {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "train", train);
        if !test.is_empty() {
            write_pair(dir.path(), "t10k", test);
        }
        match (idx_dir(dir.path()), expected) {
            (Ok(data), Ok(n_classes)) => assert_eq!(data.class_names.len(), n_classes, "{train:?} {test:?}"),
            (Err(error), Err(needles)) => assert_contains(&error.to_string(), needles),
            (got, expected) => panic!("{train:?} {test:?}: got {got:?}, expected {expected:?}"),
        }
    }
    check(&[0, 1, 2, 200, 1], &[], Err(&["train-labels-idx1-ubyte", "label 200 at index 3", "classes 3 to 199"]));
    check(&[0, 1, 2], &[2, 4], Err(&["t10k-labels-idx1-ubyte", "label 4 at index 1", "class 3 "]));
    // Classes may be spread over the splits; class 0 may be empty (EMNIST Letters labels 1 to 26).
    check(&[0, 1], &[2], Ok(3));
    check(&[1, 2, 3], &[], Ok(4));
}

#[test]
fn control_characters_in_class_names_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    for class in ["cat\u{1b}[31m", "dog\nline", "nul\0?"] {
        let folder = dir.path().join(class.replace('\0', "\u{7f}"));
        std::fs::create_dir(&folder).unwrap();
        image::RgbImage::new(2, 2).save(folder.join("a.png")).unwrap();
    }
    let data = image_folder(dir.path(), &folder_options()).unwrap();
    assert_eq!(data.class_names, ["cat\\u{1b}[31m", "dog\\nline", "nul\\u{7f}?"]);

    let (_dir, path) = file("data.csv", b"text,label\na,\"p\x07os\"\nb,neg\nc,\"tab\there\"\n");
    let data = delimited(&path, &csv_options(b',')).unwrap();
    assert_eq!(data.class_names, ["neg", "p\\u{7}os", "tab\\there"]);
    let (_dir, path) = file("data.jsonl", b"{\"text\": \"a\", \"label\": \"x\\u001b]0;\"}\n");
    assert_eq!(jsonl(&path, &jsonl_options()).unwrap().class_names, ["x\\u{1b}]0;"]);
    let (dir, path) = file("a\u{1b}.txt", b"one\n");
    std::fs::write(dir.path().join("b.txt"), b"two\n").unwrap();
    let data = lines_per_class(&[path, dir.path().join("b.txt")]).unwrap();
    assert_eq!(data.class_names, ["a\\u{1b}", "b"]);

    // Two names that escape alike are refused rather than merged.
    let (_dir, path) = file("data.csv", b"text,label\na,\"x\ny\"\nb,x\\ny\n");
    let message = error_of(&path, |p| delimited(p, &csv_options(b',')).map(drop));
    assert_contains(&message, &[path.to_str().unwrap(), "x\\ny", "control characters"]);
}

/// Checks `inspect`'s problems for a CSV of (text, label) rows.
#[track_caller]
fn check_problems(rows: &[(&str, &str)], expected: &[&str]) {
    let body: String = rows.iter().map(|(text, label)| format!("\"{text}\",{label}\n")).collect();
    let (_dir, path) = file("data.csv", format!("text,label\n{body}").as_bytes());
    assert_eq!(inspect(&path, None).unwrap().problems, expected, "{rows:?}");
}

#[test]
fn inspect_reports_empty_texts_and_a_single_class() {
    check_problems(&[("", "pos"), ("  ", "neg"), ("", "pos")], &["all 3 texts of train are empty (no tokens)"]);
    check_problems(&[("", "pos"), ("", "neg"), ("ok", "pos")], &["2 of 3 texts of train are empty (no tokens)"]);
    check_problems(
        &[("good", "pos"), ("fine", "pos")],
        &["only one class has examples (\"pos\"): there is nothing to tell apart"],
    );
    // Integer labels are names: no empty class "0" beside the "1"s.
    check_problems(
        &[("good", "1"), ("fine", "1")],
        &["only one class has examples (\"1\"): there is nothing to tell apart"],
    );
    check_problems(&[("good", "pos"), ("bad", "neg")], &[]);
}
