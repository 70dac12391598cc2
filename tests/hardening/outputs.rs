//! Outputs that would overwrite an input, the sweep bounded before it is built, checks
//! made before training, names, and output streams that fail.

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use crate::support::common::*;

/// The small experiment, run once without a report: a real database to protect.
fn small_database() -> Workspace {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    expect_code(&ws.mtl(&["run", "small.toml", "--no-report"]), 0);
    ws
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).expect("list").map(|e| e.expect("entry").file_name().to_string_lossy().into()).collect();
    names.sort();
    names
}

#[test]
fn export_onto_the_database_it_reads_is_refused_and_changes_nothing() {
    let ws = small_database();
    std::os::unix::fs::symlink(ws.path("mtl.db"), ws.path("link.db")).expect("symlink");
    let before = std::fs::read(ws.path("mtl.db")).expect("db");
    let points = count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM metrics");
    let files = files_in(ws.dir.path());
    for (format, out) in
        [("csv", "mtl.db"), ("json", "mtl.db"), ("csv", "link.db"), ("csv", "mtl.db-wal"), ("json", "mtl.db-shm")]
    {
        let output = ws.mtl(&["export", "--format", format, "--out", out]);
        expect_code(&output, 2);
        let stderr = text(&output.stderr);
        assert!(stderr.contains(&format!("--out {out} is the database mtl.db")), "{stderr}");
        assert_eq!(std::fs::read(ws.path("mtl.db")).expect("db"), before, "--out {out} changed the database");
        assert_eq!(files_in(ws.dir.path()), files, "--out {out} wrote a file");
    }
    // The same database given through another path is the same file.
    let output = ws.mtl(&["export", "--db", "link.db", "--format", "csv", "--out", "mtl.db"]);
    expect_code(&output, 2);
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM metrics"), points);

    // A FIFO (or a terminal, a process substitution) is written to, not replaced.
    let fifo = ws.path("points.fifo");
    let c_fifo = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).expect("read the FIFO"))
    };
    let (output, _) =
        run_measured(ws.command(&["export", "--format", "csv", "--out", "points.fifo"]), Duration::from_secs(60));
    // Should the export not have opened the FIFO, opening it here lets the reader finish.
    drop(std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo));
    expect_code(&output, 0);
    assert_eq!(String::from_utf8(reader.join().expect("reader")).expect("utf-8").lines().count() as i64, points + 1);
    assert!(std::fs::symlink_metadata(&fifo).expect("fifo").file_type().is_fifo(), "the FIFO was replaced");

    // Elsewhere the export is written whole, with no temporary file left beside it.
    expect_code(&ws.mtl(&["export", "--format", "csv", "--out", "points.csv"]), 0);
    let csv = std::fs::read_to_string(ws.path("points.csv")).expect("csv");
    assert_eq!(csv.lines().count() as i64, points + 1);
    assert!(!files_in(ws.dir.path()).iter().any(|n| n.starts_with(".mtl-partial")), "{:?}", files_in(ws.dir.path()));
}

#[test]
fn run_and_report_refuse_outputs_that_land_on_their_inputs() {
    let ws = small_database();
    let before = std::fs::read(ws.path("small.toml")).expect("toml");
    let cases: [(&[&str], &str); 4] = [
        (&["run", "small.toml", "--db", "small.toml"], "--db small.toml is the experiment file small.toml"),
        (&["run", "small.toml", "--out", "small.toml"], "--out small.toml is a file, not a folder"),
        (&["report", "--out", "mtl.db"], "--out mtl.db is a file, not a folder"),
        (&["run", "small.toml", "--save-checkpoints", "--checkpoints", "small.toml"], "--checkpoints small.toml"),
    ];
    let files = files_in(ws.dir.path());
    for (args, message) in cases {
        let output = ws.mtl(args);
        expect_code(&output, 2);
        assert!(text(&output.stderr).contains(message), "mtl {args:?}: {}", text(&output.stderr));
        assert_eq!(files_in(ws.dir.path()), files, "mtl {args:?} wrote a file");
    }
    assert_eq!(std::fs::read(ws.path("small.toml")).expect("toml"), before);
    // A database named like a report file, in the report's folder.
    std::fs::copy(ws.path("mtl.db"), ws.path("index.html")).expect("copy");
    let output = ws.mtl(&["report", "--db", "index.html", "--out", "."]);
    expect_code(&output, 2);
    assert!(text(&output.stderr).contains("would overwrite the database index.html"), "{}", text(&output.stderr));
}

/// `n` distinct numbers as a TOML list.
fn list(n: usize, from: usize) -> String {
    (from..from + n).map(|i| format!("{i}.5")).collect::<Vec<_>>().join(", ")
}

#[test]
fn a_huge_sweep_is_refused_from_its_axis_lengths_in_little_memory() {
    let ws = Workspace::new();
    // 10 × 100 λ × 100 lr × 1,000 seeds = 10^7 trials from a few KB of text.
    let seeds = (0..1000).map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
    let text_of_file = SMALL
        .replace("seeds = [0, 1]", &format!("seeds = [{seeds}]"))
        .replace("lambda = [0.5, 2.0]", &format!("lambda = [{}]", list(100, 0)))
        .replace("lr = [0.01]", &format!("lr = [{}]", list(100, 1).replace(".5", "e-3")));
    ws.write("huge.toml", &text_of_file);
    assert!(text_of_file.len() < 16_000, "{} bytes", text_of_file.len());
    let (output, peak_kib) =
        run_measured(ws.command(&["run", "huge.toml", "--max-trials", "100000"]), Duration::from_secs(120));
    expect_code(&output, 2);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the sweep has 10100000 trials (strategy 2 × weighting 1 × lambda 100 × lr 100 × seeds 1000)"),
        "{stderr}"
    );
    assert!(peak_kib < 100 * 1024, "peak memory {peak_kib} KiB");
    assert!(!ws.path("mtl.db").exists());
    // Under the default limit, the message says how to raise it.
    let output = ws.mtl(&["run", "huge.toml"]);
    expect_code(&output, 2);
    assert!(text(&output.stderr).contains("more than the limit of 1000 (raise it with mtl run --max-trials)"));
}

#[test]
fn a_hyperparameter_section_too_large_to_build_is_refused_even_outside_the_sweep() {
    let ws = Workspace::new();
    // ple is not in the sweep, but its section is checked: 1,000^3 combinations.
    let file = format!(
        "{SMALL}\n[strategy.ple]\nexperts = [{}]\ntask_experts = [{}]\nlevels = [{}]\n",
        (1..=1000).map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
        (1..=1000).map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
        (1..=1000).map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
    );
    ws.write("ple.toml", &file);
    let (output, peak_kib) = run_measured(ws.command(&["run", "ple.toml"]), Duration::from_secs(120));
    expect_code(&output, 2);
    assert!(
        text(&output.stderr).contains("strategy.ple: its lists make 1000000000 combinations"),
        "{}",
        text(&output.stderr)
    );
    assert!(peak_kib < 100 * 1024, "peak memory {peak_kib} KiB");
}

/// An image folder of `size`×`size` PNGs in two classes.
fn image_folder(ws: &Workspace, name: &str, size: u32) {
    for (class, shade) in [("dark", 30u8), ("light", 220u8)] {
        let dir = ws.path(name).join(class);
        std::fs::create_dir_all(&dir).expect("folder");
        for i in 0..12u8 {
            let image =
                image::GrayImage::from_fn(size, size, |x, y| image::Luma([shade.wrapping_add((x + y) as u8 + i)]));
            image.save(dir.join(format!("{i}.png"))).expect("png");
        }
    }
}

#[test]
fn what_can_be_checked_before_training_is_checked_before_anything_is_written() {
    let ws = Workspace::new();
    image_folder(&ws, "small-images", 8);
    // An 8×8 image folder and 28×28 shapes through one shared stem.
    let two_sizes = r#"
name = "two sizes"
epochs = 1
batch_size = 8

[[tasks]]
name = "photos"
data = { format = "image-folder", path = "small-images", height = 8, width = 8 }

[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 32, n_val = 8, n_test = 8 }

[model]
width = 4
hidden = 4

[sweep]
strategy = ["single-task", "hard"]
lambda = [1.0]
lr = [0.01]
"#;
    ws.write("two-sizes.toml", two_sizes);
    ws.write("small.toml", SMALL);
    ws.write("a-file", "not a folder");
    let long_name = SMALL.replace("name = \"small\"", &format!("name = \"{}\"", "n".repeat(300)));
    ws.write("long-name.toml", &long_name);
    let control = SMALL.replace("name = \"small\"", "name = \"bad\\u001b[31mname\"");
    ws.write("control.toml", &control);
    ws.write("texts.csv", "text,label\ngood film,pos\nbad film,neg\nfine,pos\nawful,neg\n");
    let short_texts = r#"
name = "short texts"
epochs = 1
batch_size = 2

[[tasks]]
name = "reviews"
data = { format = "csv", path = "texts.csv", text_column = "text", label_column = "label", max_len = 2, val_size = 1, test_size = 1 }

[model]
trunk = "textcnn"

[sweep]
strategy = ["hard"]
lambda = [1.0]
lr = [0.01]
"#;
    ws.write("short-texts.toml", short_texts);
    ws.write("small", "a file named like the experiment's checkpoint folder");
    std::fs::create_dir(ws.path("a-folder")).expect("folder");
    let cases: [(&[&str], &str); 9] = [
        (&["run", "two-sizes.toml"], "cannot share one image stem under strategy hard: set tasks[0].data.height = 28"),
        (
            &["run", "short-texts.toml"],
            "short-texts.toml: trial hard λ=1 lr=0.01 seed=0: the model does not fit these tasks",
        ),
        (
            &["run", "small.toml", "--save-checkpoints", "--checkpoints", "."],
            "--checkpoints ./small is a file, not a folder",
        ),
        (&["run", "small.toml", "--executor", "plan", "--db", "a-folder"], "--db a-folder is not a database file"),
        (&["run", "small.toml", "--db", "missing/mtl.db"], "--db missing/mtl.db: missing is not an existing folder"),
        (&["run", "small.toml", "--save-checkpoints", "--checkpoints", "a-file"], "--checkpoints a-file is a file"),
        (&["run", "small.toml", "--save-checkpoints", "--checkpoints", "a-file/sub"], "is inside the file a-file"),
        (&["run", "long-name.toml"], "name: the experiment name is 300 bytes long; at most 200"),
        (&["run", "control.toml"], "name: the experiment name has a control character (\\u{1b})"),
    ];
    let files = files_in(ws.dir.path());
    for (args, message) in cases {
        let output = ws.mtl(args);
        expect_code(&output, 2);
        assert!(text(&output.stderr).contains(message), "mtl {args:?}: {}", text(&output.stderr));
        assert_eq!(files_in(ws.dir.path()), files, "mtl {args:?} wrote something");
    }
}

#[test]
fn a_database_with_a_very_long_or_unprintable_experiment_name_still_reports() {
    let ws = small_database();
    // An older mtl-lab accepted any name: give the experiment one no file system takes whole.
    let name = format!("{}\u{0}\u{1b}", "x".repeat(300));
    rusqlite::Connection::open(ws.path("mtl.db"))
        .expect("open")
        .execute("UPDATE experiments SET name = ?1", [&name])
        .expect("rename");
    let output = ws.mtl(&["report"]);
    expect_code(&output, 0);
    for entry in std::fs::read_dir(ws.path("report")).expect("report") {
        let entry = entry.expect("entry");
        let file_name = entry.file_name().to_string_lossy().into_owned();
        assert!(file_name.len() <= 130, "{file_name}");
        assert!(!file_name.starts_with(".partial-"), "{file_name} left behind");
        if file_name.ends_with(".svg") || file_name.ends_with(".html") {
            let page = std::fs::read_to_string(entry.path()).expect("read");
            assert!(!page.contains(['\u{0}', '\u{1b}']), "{file_name} holds a control character");
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_output_stream_ends_the_output_not_the_work() {
    let ws = small_database();
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    // stdout full: exit 1 with a message, no panic.
    let output = ws.command(&["ls"]).stdout(full()).output().expect("run");
    expect_code(&output, 1);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("could not write to standard output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // stderr full during a sweep: every trial is trained and stored, then exit 1.
    std::fs::remove_file(ws.path("mtl.db")).expect("remove");
    let output = ws.command(&["run", "small.toml", "--no-report"]).stderr(full()).output().expect("run");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 6);
}

#[test]
fn a_closed_pipe_ends_the_output_of_a_sweep_not_the_sweep() {
    let ws = Workspace::new();
    ws.write("small.toml", SMALL);
    // `mtl run … 2>&1 | head -1`: the reader is gone before the first line.
    let mut child = ws
        .command(&["run", "small.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{status:?}: killed by SIGPIPE?");
    assert_eq!(count(&ws.path("mtl.db"), "SELECT COUNT(*) FROM runs WHERE status = 'done'"), 6);
    assert!(ws.path("report").join("index.html").exists(), "the report is written before the summary is printed");
}
