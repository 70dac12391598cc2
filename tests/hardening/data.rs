//! Data that never ends, decompresses without bound, or holds labels and names that mislead:
//! each is refused with a message naming the file, quickly and in bounded memory.
//!
//! `mtl` runs under [`run_guarded`], which kills it past a deadline or a memory ceiling, so that a
//! regression (reading `/dev/zero`, blocking on a FIFO) fails the test instead of hanging it or
//! exhausting the machine.

use std::path::Path;
use std::time::Duration;

use crate::support::common::*;

/// A hang guard, not a timing assertion: each command here answers in well under a second.
const DEADLINE: Duration = Duration::from_secs(30);

/// How a guarded `mtl` ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// The child's own peak resident set size (`wait4`'s `ru_maxrss`), not that of other tests' children.
    peak_rss_kib: u64,
}

/// Runs `mtl ARGS` in the workspace under [`run_measured`]'s deadline and memory ceiling.
fn run_guarded(ws: &Workspace, args: &[&str]) -> Finished {
    let (output, peak_rss_kib) = run_measured(ws.command(args), DEADLINE);
    Finished { code: output.status.code(), stdout: text(&output.stdout), stderr: text(&output.stderr), peak_rss_kib }
}

/// Asserts exit 2 and every fragment in stderr.
#[track_caller]
fn expect_refused(finished: &Finished, fragments: &[&str]) {
    assert_eq!(finished.code, Some(2), "stdout:\n{}\nstderr:\n{}", finished.stdout, finished.stderr);
    for fragment in fragments {
        assert!(finished.stderr.contains(fragment), "expected {fragment:?} in:\n{}", finished.stderr);
    }
}

/// An experiment with one task reading `data` (an inline TOML table).
fn experiment(data: &str) -> String {
    format!(
        "name = \"hostile\"\nepochs = 1\nseeds = [0]\nbatch_size = 8\n\n[[tasks]]\nname = \"t\"\ndata = {data}\n\n\
         [model]\nwidth = 4\nhidden = 4\n\n[sweep]\nstrategy = [\"hard\"]\nlambda = [1.0]\nlr = [0.01]\n"
    )
}

fn data_entries(path: &str) -> [(&'static str, String); 4] {
    [
        ("csv", format!("{{ format = \"csv\", path = \"{path}\", text_column = \"text\", label_column = \"label\" }}")),
        (
            "tsv",
            format!("{{ format = \"tsv\", path = \"{path}\", text_column = 0, label_column = 1, header = false }}"),
        ),
        (
            "jsonl",
            format!("{{ format = \"jsonl\", path = \"{path}\", text_field = \"text\", label_field = \"label\" }}"),
        ),
        ("text-lines", format!("{{ format = \"text-lines\", files = [\"{path}\", \"b.neg\"] }}")),
    ]
}

#[test]
fn a_device_as_a_data_file_is_refused_before_reading() {
    let ws = Workspace::new();
    ws.write("b.neg", "fine\n");
    for (format, data) in data_entries("/dev/zero") {
        ws.write("endless.toml", &experiment(&data));
        let finished = run_guarded(&ws, &["run", "endless.toml"]);
        expect_refused(&finished, &["/dev/zero", "character device", "not a regular file"]);
        assert!(!ws.path("mtl.db").exists(), "{format}: no database may be created");
        let finished = run_guarded(&ws, &["data", "inspect", "/dev/zero", "--as", format]);
        expect_refused(&finished, &["/dev/zero", "character device"]);
    }
    let finished = run_guarded(&ws, &["data", "inspect", "/dev/zero"]);
    expect_refused(&finished, &["/dev/zero", "character device"]);
}

#[test]
fn a_device_as_the_experiment_file_is_refused_before_reading() {
    let ws = Workspace::new();
    let finished = run_guarded(&ws, &["run", "/dev/zero"]);
    expect_refused(&finished, &["/dev/zero", "character device", "not a regular file"]);
}

#[test]
fn a_fifo_is_refused_without_opening_it() {
    let ws = Workspace::new();
    let fifo = ws.path("pipe");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    ws.write("b.neg", "fine\n");
    let finished = run_guarded(&ws, &["run", "pipe"]);
    expect_refused(&finished, &["pipe", "FIFO", "not a regular file"]);
    for (format, data) in data_entries("pipe") {
        ws.write("piped.toml", &experiment(&data));
        let finished = run_guarded(&ws, &["run", "piped.toml"]);
        expect_refused(&finished, &["pipe", "FIFO", "not a regular file"]);
        let finished = run_guarded(&ws, &["data", "inspect", "pipe", "--as", format]);
        expect_refused(&finished, &["pipe", "FIFO"]);
    }
    // In a data folder, a FIFO named as an IDX file is refused too, not skipped unread.
    std::fs::create_dir(ws.path("digits")).expect("mkdir");
    std::fs::rename(&fifo, ws.path("digits/t10k-images-idx3-ubyte")).expect("move fifo");
    write_idx(&ws.path("digits/t10k-labels-idx1-ubyte"), &[2], &[0, 1], false);
    let finished = run_guarded(&ws, &["data", "inspect", "digits"]);
    expect_refused(&finished, &["t10k-images-idx3-ubyte", "FIFO"]);
}

#[test]
fn an_experiment_file_over_one_mib_is_refused_before_parsing() {
    let ws = Workspace::new();
    // Valid TOML that would parse: a comment padding the file past the cap.
    let padding = format!("# {}\n", "x".repeat(1 << 20));
    ws.write("huge.toml", &(experiment("{ format = \"synthetic-shapes\" }") + &padding));
    let finished = run_guarded(&ws, &["run", "huge.toml"]);
    expect_refused(&finished, &["huge.toml", "1 MiB"]);
    assert!(!ws.path("mtl.db").exists());
}

#[test]
fn a_line_over_sixteen_mib_is_refused_naming_file_and_line() {
    let ws = Workspace::new();
    let long = "a".repeat((16 << 20) + 1);
    ws.write("reviews.csv", &format!("text,label\nshort,pos\n{long},neg\n"));
    ws.write("reviews.jsonl", &format!("{{\"text\": \"ok\", \"label\": 0}}\n{{\"text\": \"{long}\", \"label\": 1}}\n"));
    std::fs::create_dir(ws.path("lines")).expect("mkdir");
    ws.write("lines/long.pos", &format!("fine\n\n{long}\n"));
    ws.write("lines/long.neg", "fine\n");
    for (args, line) in [
        (&["data", "inspect", "reviews.csv"][..], "line 3"),
        (&["data", "inspect", "reviews.jsonl"], "line 2"),
        (&["data", "inspect", "lines", "--as", "text-lines"], "line 3"),
    ] {
        let finished = run_guarded(&ws, args);
        expect_refused(&finished, &[line, "16 MiB"]);
        assert!(finished.stderr.contains("reviews.") || finished.stderr.contains("long.pos"), "{}", finished.stderr);
    }
}

/// Writes an IDX file (gzip-compressed when `gz`) holding `dims` and `data` as unsigned bytes.
fn write_idx(path: &Path, dims: &[u32], data: &[u8], gz: bool) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    bytes.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
    bytes.extend(data);
    if gz {
        bytes = gzip(&bytes);
    }
    std::fs::write(path, bytes).expect("write idx");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A gzip bomb: the IDX header of `dims` and `mib` MiB of zeros, as one gzip member holding the header
/// and the first MiB, then copies of one member of a MiB of zeros (multi-member gzip, as `cat a.gz b.gz`).
fn gzip_bomb(dims: &[u32], mib: usize) -> Vec<u8> {
    let mut first = vec![0, 0, 0x08, dims.len() as u8];
    first.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
    first.resize(first.len() + (1 << 20), 0);
    let zeros = gzip(&vec![0; 1 << 20]);
    let mut bomb = gzip(&first);
    for _ in 1..mib {
        bomb.extend_from_slice(&zeros);
    }
    bomb
}

/// `mtl data inspect digits` on a folder whose image file is `images` (named `name`) beside ten labels.
fn inspect_digits(images_name: &str, write_images: impl FnOnce(&Path)) -> (Workspace, Finished) {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("digits")).expect("mkdir");
    write_images(&ws.path("digits").join(images_name));
    write_idx(&ws.path("digits/t10k-labels-idx1-ubyte"), &[10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], false);
    let finished = run_guarded(&ws, &["data", "inspect", "digits"]);
    (ws, finished)
}

/// Peak memory well above `mtl`'s own (tens of MiB) and well below the 256 MiB a bomb would fill.
const BOUNDED_PEAK_KIB: u64 = 128 * 1024;

#[test]
fn a_gzip_bomb_is_decompressed_only_as_far_as_its_header_says() {
    // 256 MiB of zeros (about 256 KiB compressed) behind a header that promises ten 28×28 images.
    let (_ws, finished) = inspect_digits("t10k-images-idx3-ubyte", |path| {
        std::fs::write(path, gzip_bomb(&[10, 28, 28], 256)).expect("write bomb");
    });
    expect_refused(&finished, &["t10k-images-idx3-ubyte", "trailing", "10×28×28 = 7840 bytes"]);
    assert!(finished.peak_rss_kib < BOUNDED_PEAK_KIB, "peak RSS {} KiB", finished.peak_rss_kib);
}

#[test]
fn a_raw_idx_file_longer_than_its_header_says_is_refused_unread() {
    // A sparse 8 GiB file: reading it whole would pass the memory ceiling.
    let (_ws, finished) = inspect_digits("t10k-images-idx3-ubyte", |path| {
        write_idx(path, &[10, 28, 28], &[0; 7840], false);
        std::fs::OpenOptions::new().write(true).open(path).expect("open").set_len(8 << 30).expect("sparse");
    });
    expect_refused(&finished, &["t10k-images-idx3-ubyte", "trailing bytes", "7840 bytes of data"]);
    assert!(finished.peak_rss_kib < BOUNDED_PEAK_KIB, "peak RSS {} KiB", finished.peak_rss_kib);
}

#[test]
fn an_idx_header_claiming_an_absurd_size_is_refused_before_allocating() {
    let (_ws, finished) = inspect_digits("t10k-images-idx3-ubyte.gz", |path| {
        write_idx(path, &[u32::MAX, 28, 28], &[0; 100], true);
    });
    expect_refused(&finished, &["t10k-images-idx3-ubyte.gz", "4294967295×28×28", "at most 1 GiB"]);
    assert!(finished.peak_rss_kib < BOUNDED_PEAK_KIB, "peak RSS {} KiB", finished.peak_rss_kib);
}

#[test]
fn an_idx_label_beyond_the_classes_is_refused_naming_file_and_index() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("digits")).expect("mkdir");
    let mut labels: Vec<u8> = (0..30).map(|i| i % 10).collect();
    labels[17] = 200;
    write_idx(&ws.path("digits/t10k-images-idx3-ubyte"), &[30, 28, 28], &[0; 30 * 784], false);
    write_idx(&ws.path("digits/t10k-labels-idx1-ubyte"), &[30], &labels, false);
    let finished = run_guarded(&ws, &["data", "inspect", "digits"]);
    expect_refused(&finished, &["t10k-labels-idx1-ubyte", "label 200 at index 17", "classes 10 to 199"]);
    ws.write("digits.toml", &experiment("{ format = \"mnist-idx\", path = \"digits\", test_size = 10, val_size = 5 }"));
    let finished = run_guarded(&ws, &["run", "digits.toml"]);
    expect_refused(&finished, &["t10k-labels-idx1-ubyte", "label 200 at index 17"]);
    assert!(!ws.path("mtl.db").exists());
}

/// `mtl data inspect FILE` on a CSV with `rows` (text, label); its problems section.
fn csv_problems(rows: &[(&str, &str)]) -> String {
    let ws = Workspace::new();
    let body: String = rows.iter().map(|(text, label)| format!("\"{text}\",{label}\n")).collect();
    ws.write("data.csv", &format!("text,label\n{body}"));
    let finished = run_guarded(&ws, &["data", "inspect", "data.csv"]);
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    finished.stdout.split_once("problems").map(|(_, problems)| problems.to_owned()).unwrap_or_default()
}

#[test]
fn data_inspect_reports_empty_texts_and_a_single_class() {
    let problems = csv_problems(&[("", "pos"), ("", "neg"), ("", "pos")]);
    assert!(problems.contains("all 3 texts of train are empty"), "{problems}");
    let problems = csv_problems(&[("", "pos"), ("", "neg"), ("ok", "pos")]);
    assert!(problems.contains("2 of 3 texts of train are empty"), "{problems}");
    let problems = csv_problems(&[("good", "pos"), ("fine", "pos")]);
    assert!(problems.contains("one class"), "{problems}");
    let problems = csv_problems(&[("good", "pos"), ("bad", "neg")]);
    assert_eq!(problems.trim(), ": none");
}

#[test]
fn control_characters_in_class_names_are_escaped() {
    let ws = Workspace::new();
    for class in ["cat\u{1b}[31m", "dog\nsecond line", "plain"] {
        let folder = ws.path("images").join(class);
        std::fs::create_dir_all(&folder).expect("mkdir");
        image::RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9])).save(folder.join("a.png")).expect("png");
    }
    let finished = run_guarded(&ws, &["data", "inspect", "images", "--format", "json"]);
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    let inspection: serde_json::Value = serde_json::from_str(&finished.stdout).expect("json");
    assert_eq!(inspection["classes"], serde_json::json!(["cat\\u{1b}[31m", "dog\\nsecond line", "plain"]));
    let finished = run_guarded(&ws, &["data", "inspect", "images"]);
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    assert!(!finished.stdout.contains('\u{1b}'), "{:?}", finished.stdout);
    assert!(finished.stdout.contains("cat\\u{1b}[31m"), "{}", finished.stdout);

    ws.write("labels.csv", "text,label\ngood,\"p\u{7}os\"\nbad,neg\n");
    let finished = run_guarded(&ws, &["data", "inspect", "labels.csv", "--format", "json"]);
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    let inspection: serde_json::Value = serde_json::from_str(&finished.stdout).expect("json");
    assert_eq!(inspection["classes"], serde_json::json!(["neg", "p\\u{7}os"]));
}

#[test]
fn inspect_takes_data_format_and_the_text_and_label_columns() {
    let ws = Workspace::new();
    ws.write("reviews.dat", "id,review,sentiment\n1,a good film,pos\n2,a bad one,neg\n3,fine,pos\n");
    // Guessed (on stderr, so that JSON on stdout stays clean), then given.
    let finished = run_guarded(&ws, &["data", "inspect", "reviews.dat", "--data-format", "csv", "--format", "json"]);
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    assert!(finished.stderr.contains("text \"review\", label \"sentiment\" (guessed both"), "{}", finished.stderr);
    let inspection: serde_json::Value = serde_json::from_str(&finished.stdout).expect("json");
    assert_eq!(inspection["classes"], serde_json::json!(["neg", "pos"]));
    assert_eq!(inspection["columns"]["all"], serde_json::json!(["id", "review", "sentiment"]));
    let given = ["--text-column", "review", "--label-column", "sentiment"];
    let finished = run_guarded(&ws, &[&["data", "inspect", "reviews.dat", "--as", "csv"][..], &given].concat());
    assert_eq!(finished.code, Some(0), "the hidden alias --as still works: {}", finished.stderr);
    assert!(finished.stdout.contains("train         3"), "{}", finished.stdout);
    assert!(!finished.stderr.contains("guessed"), "{}", finished.stderr);
    // A column that is not there is named with the ones that are; columns of images are refused.
    let finished =
        run_guarded(&ws, &["data", "inspect", "reviews.dat", "--data-format", "csv", "--text-column", "body"]);
    expect_refused(&finished, &["no column \"body\"", "\"id\", \"review\", \"sentiment\""]);
    let finished = run_guarded(&ws, &["data", "inspect", ".", "--data-format", "cifar", "--label-column", "x"]);
    expect_refused(&finished, &["apply to csv, tsv and jsonl, not cifar"]);
    let help = run_guarded(&ws, &["data", "inspect", "--help"]);
    assert!(help.stdout.contains("--data-format") && !help.stdout.contains("--as "), "{}", help.stdout);
}
