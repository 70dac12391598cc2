//! Opens a report in headless Chromium and checks it as a reader would see it:
//! every image loaded, nothing logged to the console, and the sortable tables
//! sorting when a header is clicked. Without a driver protocol: the check runs
//! inside the page and leaves its result in the DOM, which Chromium dumps.
//!
//! ```text
//! let check = browser::check_report(&report_dir, &screenshot_png);
//! assert!(check.problems().is_empty(), "{:#?}", check.problems());
//! ```
//!
//! How: `index.html` is copied to `.browser-check.html` in the same folder (so
//! the charts' relative paths resolve) with [`CHECK_SCRIPT`] first in `<head>`;
//! `chromium --dump-dom` loads the copy and prints the DOM once the page has
//! settled, and the script's JSON is read back from `<pre id="browser-check-result">`.
//! Chromium's own log (`--enable-logging=stderr`) is a second source: every
//! `CONSOLE` line any run of the page printed. The screenshots are of the
//! unmodified `index.html`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the browser saw. Build with [`check_report`].
#[derive(Debug, Default)]
pub struct BrowserCheck {
    /// Number of `<img>` elements on the page.
    pub images_total: usize,
    /// `src` of each image that did not load (not complete, or zero natural width).
    pub broken_images: Vec<String>,
    /// Uncaught errors, unhandled rejections, `console.error` calls and failed
    /// resource loads the page script recorded, plus the error lines of
    /// Chromium's log.
    pub console_errors: Vec<String>,
    /// Every console line of Chromium's log, whatever its level: Chromium 156
    /// logs `console.log` and `console.error` alike as `INFO:CONSOLE`, so a page
    /// that should log nothing is held to exactly that.
    pub console_messages: Vec<String>,
    /// Number of `table.sortable` elements.
    pub sortable_tables: usize,
    /// One line per sortable table: the column clicked and what happened.
    pub sort_details: Vec<String>,
    /// At least one table was sorted, and after one click on a numeric header
    /// every sorted table's rows were in ascending order of that column
    /// (dashes last), with `aria-sort="ascending"` and a ▲.
    pub sorted_ascending: bool,
    /// Likewise after the second click: descending, `aria-sort="descending"`, ▼.
    pub sorted_descending: bool,
    /// Every sortable header had `cursor: pointer`.
    pub headers_look_clickable: bool,
    /// The screenshots written: the one asked for (1280 px wide) and a phone-width
    /// one beside it (`<stem>-phone.png`, 390 px).
    pub screenshots: Vec<PathBuf>,
}

impl BrowserCheck {
    /// Each failed check, in words; empty when the page passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.images_total == 0 {
            problems.push("the page has no images".to_string());
        }
        if !self.broken_images.is_empty() {
            problems.push(format!("images that did not load: {:?}", self.broken_images));
        }
        if !self.console_errors.is_empty() {
            problems.push(format!("console errors: {:#?}", self.console_errors));
        }
        if !self.console_messages.is_empty() {
            problems.push(format!("the page logged to the console: {:#?}", self.console_messages));
        }
        if !self.sorted_ascending {
            problems.push(format!("a first header click did not sort ascending: {:#?}", self.sort_details));
        }
        if !self.sorted_descending {
            problems.push(format!("a second header click did not sort descending: {:#?}", self.sort_details));
        }
        if !self.headers_look_clickable {
            problems.push("sortable headers do not have cursor: pointer".to_string());
        }
        problems
    }
}

/// Chromium's binary on `PATH`, if there is one.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs in the copy of the page before anything else: records errors, and once
/// the page and every image have loaded, checks images and tables and writes the
/// JSON result into `<pre id="browser-check-result">`. `<`, `>` and `&` are
/// written as JSON escapes so that the dumped DOM holds the JSON verbatim.
const CHECK_SCRIPT: &str = r#"<script>
(() => {
  const errors = [];
  window.addEventListener('error', (event) => {
    const element = event.target;
    if (element && element !== window) {
      errors.push('failed to load ' + (element.getAttribute('src') || element.getAttribute('href') || element.tagName));
    } else {
      errors.push(event.message + ' (' + event.filename + ':' + event.lineno + ')');
    }
  }, true);
  window.addEventListener('unhandledrejection', (event) => errors.push('unhandled rejection: ' + event.reason));
  const consoleError = console.error.bind(console);
  console.error = (...args) => { errors.push('console.error: ' + args.map(String).join(' ')); consoleError(...args); };

  // The check's own reading of a cell, independent of the page's sort code.
  const numberIn = (cell) => {
    const match = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?/i.exec(cell.textContent.trim());
    return match ? Number(match[0]) : null;
  };
  const isDash = (cell) => ['', '-', '\u2013'].includes(cell.textContent.trim());
  const inOrder = (keys, sign) => {
    const firstMissing = keys.indexOf(null);
    const present = firstMissing < 0 ? keys : keys.slice(0, firstMissing);
    return present.length === keys.filter((key) => key !== null).length
      && present.every((key, i) => i === 0 || sign * (key - present[i - 1]) >= 0);
  };

  const checkTable = (table, tableIndex) => {
    const body = table.tBodies[0];
    const headers = [...table.tHead.rows[0].cells];
    const heading = table.closest('.table-scroll')?.previousElementSibling;
    const name = (table.caption?.textContent ?? (heading ? heading.textContent : 'table ' + tableIndex)).slice(0, 40);
    const keysOf = (column) => [...body.rows].map((row) => isDash(row.cells[column]) ? null : numberIn(row.cells[column]));
    // A numeric column with two different values; preferably one the first click must reorder.
    const numeric = headers.map((_, column) => column).filter((column) => {
      const cells = [...body.rows].map((row) => row.cells[column]);
      const keys = keysOf(column);
      return cells.every((cell, i) => keys[i] !== null || isDash(cell))
        && new Set(keys.filter((key) => key !== null)).size >= 2;
    });
    const column = numeric.find((candidate) => !inOrder(keysOf(candidate), 1)) ?? numeric[0];
    const clickable = headers.every((cell) => getComputedStyle(cell).cursor === 'pointer');
    if (column === undefined) return { table: name, sorted: false, clickable, detail: 'no numeric column with two values' };
    const header = headers[column];
    const rowsBefore = [...body.rows].map((row) => row.textContent).sort().join('\n');
    const clickAndRead = (sign, aria, arrow) => {
      header.click();
      const keys = keysOf(column);
      const indicator = getComputedStyle(header, '::after').content;
      const sameRows = [...body.rows].map((row) => row.textContent).sort().join('\n') === rowsBefore;
      const ok = inOrder(keys, sign) && header.getAttribute('aria-sort') === aria && indicator.includes(arrow) && sameRows;
      return { ok, seen: aria + ' ' + JSON.stringify(keys) + ' aria-sort=' + header.getAttribute('aria-sort') + ' after=' + indicator + (sameRows ? '' : ' ROWS CHANGED') };
    };
    const ascending = clickAndRead(1, 'ascending', '\u25B2');
    const descending = clickAndRead(-1, 'descending', '\u25BC');
    return {
      table: name, column: header.textContent, sorted: true, ascending: ascending.ok, descending: descending.ok,
      clickable,
      detail: ascending.seen + '; ' + descending.seen,
    };
  };

  const finish = () => {
    const images = [...document.images].map((image) => ({
      src: image.getAttribute('src'), complete: image.complete, naturalWidth: image.naturalWidth,
    }));
    let tables = [];
    try {
      tables = [...document.querySelectorAll('table.sortable')].map(checkTable);
    } catch (error) {
      errors.push('table check threw: ' + error);
    }
    const pre = document.createElement('pre');
    pre.id = 'browser-check-result';
    pre.textContent = JSON.stringify({ images, errors, tables })
      .replace(/[<>&]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    document.body.append(pre);
  };
  window.addEventListener('load', () => {
    // Lazy images off screen would never load in a window this size: ask for them now.
    const pending = [...document.images].filter((image) => {
      image.loading = 'eager';
      return !image.complete;
    }).map((image) => new Promise((resolve) => {
      image.addEventListener('load', resolve);
      image.addEventListener('error', resolve);
    }));
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000));
    Promise.race([Promise.all(pending), timeout]).then(finish);
  });
})();
</script>
"#;

/// Opens `report_dir/index.html` in headless Chromium, checks it (see
/// [`BrowserCheck`]) and saves screenshots at `screenshot` (1280×2000) and
/// `<stem>-phone.png` beside it (390×844). Panics when Chromium is missing,
/// fails, or the page never reports back.
pub fn check_report(report_dir: &Path, screenshot: &Path) -> BrowserCheck {
    let chromium = chromium().expect("chromium is not on PATH: install it with `apt-get install chromium`");
    let index = report_dir.join("index.html");
    let page = std::fs::read_to_string(&index).unwrap_or_else(|error| panic!("reading {}: {error}", index.display()));
    let head_end = page.find("<head>").map(|at| at + "<head>".len()).expect("index.html has a <head>");
    let check_copy = CheckCopy(report_dir.join(".browser-check.html"));
    std::fs::write(&check_copy.0, format!("{}\n{CHECK_SCRIPT}{}", &page[..head_end], &page[head_end..]))
        .expect("writing the check copy of index.html");

    let profile = tempfile::tempdir().expect("temp dir for the browser profile");
    let dump = run_chromium(&chromium, profile.path(), &check_copy.0, &["--dump-dom"]);
    let mut check = read_result(&dump.stdout, &dump.stderr);

    let phone = screenshot.with_file_name(format!(
        "{}-phone.png",
        screenshot.file_stem().and_then(|stem| stem.to_str()).unwrap_or("screenshot")
    ));
    let mut stderr_logs = vec![dump.stderr];
    for (path, size) in [(screenshot, "1280,2000"), (phone.as_path(), "390,844")] {
        let _ = std::fs::remove_file(path);
        let flags =
            [format!("--screenshot={}", path.display()), format!("--window-size={size}"), "--hide-scrollbars".into()];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let run = run_chromium(&chromium, profile.path(), &index, &flags);
        assert!(path.is_file(), "chromium wrote no screenshot at {}\n--- stderr\n{}", path.display(), run.stderr);
        check.screenshots.push(path.to_path_buf());
        stderr_logs.push(run.stderr);
    }
    for line in stderr_logs.iter().flat_map(|log| log.lines()).filter(|line| line.contains("CONSOLE")) {
        let message = line.split_once("] ").map_or(line, |(_, message)| message).to_string();
        if line.contains("ERROR:CONSOLE") || line.contains("FATAL:CONSOLE") || message.contains("Uncaught") {
            check.console_errors.push(format!("chromium log: {message}"));
        }
        check.console_messages.push(message);
    }
    check
}

/// The instrumented copy of the page, removed however the check ends.
struct CheckCopy(PathBuf);

impl Drop for CheckCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct ChromiumRun {
    stdout: String,
    stderr: String,
}

/// Runs headless Chromium on `page` with `flags`, with a fresh profile and a
/// minute's limit; panics with its stderr if it fails.
fn run_chromium(chromium: &Path, profile: &Path, page: &Path, flags: &[&str]) -> ChromiumRun {
    let page = page.canonicalize().expect("canonical page path");
    // Files rather than pipes: waiting with a deadline cannot fill a pipe and block.
    let outputs = tempfile::tempdir().expect("temp dir for chromium's output");
    let (stdout_path, stderr_path) = (outputs.path().join("stdout"), outputs.path().join("stderr"));
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--allow-file-access-from-files"])
        .args(["--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(flags)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|error| panic!("starting {}: {error}", chromium.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {} within 60 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &Path| String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let run = ChromiumRun { stdout: read(&stdout_path), stderr: read(&stderr_path) };
    assert!(
        status.success(),
        "chromium {flags:?} on {} exited with {status}\n--- stderr\n{}",
        page.display(),
        run.stderr
    );
    run
}

/// The check script's JSON from the dumped DOM, as a [`BrowserCheck`] without
/// the log's console lines and the screenshots.
fn read_result(dom: &str, stderr: &str) -> BrowserCheck {
    let start_tag = "<pre id=\"browser-check-result\">";
    let json = dom
        .split_once(start_tag)
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(json, _)| json)
        .unwrap_or_else(|| {
            panic!("the page never wrote its check result (did the script run?)\n--- dom\n{dom}\n--- stderr\n{stderr}")
        });
    let result: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|error| panic!("check result is not JSON ({error}): {json}"));
    let images = result["images"].as_array().expect("images");
    let tables = result["tables"].as_array().expect("tables");
    let sorted: Vec<&serde_json::Value> = tables.iter().filter(|table| table["sorted"] == true).collect();
    let text = |value: &serde_json::Value| value.as_str().map_or_else(|| value.to_string(), str::to_string);
    BrowserCheck {
        images_total: images.len(),
        broken_images: images
            .iter()
            .filter(|image| image["complete"] != true || image["naturalWidth"].as_u64().unwrap_or(0) == 0)
            .map(|image| text(&image["src"]))
            .collect(),
        console_errors: result["errors"].as_array().expect("errors").iter().map(text).collect(),
        sortable_tables: tables.len(),
        sort_details: tables
            .iter()
            .map(|table| format!("{} — {}: {}", text(&table["table"]), text(&table["column"]), text(&table["detail"])))
            .collect(),
        sorted_ascending: !sorted.is_empty() && sorted.iter().all(|table| table["ascending"] == true),
        sorted_descending: !sorted.is_empty() && sorted.iter().all(|table| table["descending"] == true),
        headers_look_clickable: !tables.is_empty() && tables.iter().all(|table| table["clickable"] == true),
        ..BrowserCheck::default()
    }
}
