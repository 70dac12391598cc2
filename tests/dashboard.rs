//! End-to-end tests of `mtl ui` in a real headless Chromium.

use std::time::Duration;

mod support {
    pub mod cdp;
    pub mod ui_fixture;
}
use support::cdp::Browser;
use support::ui_fixture::*;

use mtl_store::RunStatus;

/// `html` as a `data:` URL, every byte but the unreserved ones percent-encoded.
fn data_url(html: &str) -> String {
    let mut url = String::from("data:text/html;charset=utf-8,");
    for byte in html.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// A button that adds a list item and then throws, a hover flag, a console
/// line, and an image that cannot load (Chromium never fetches from port 9).
const SMOKE_PAGE: &str = r#"<!doctype html>
<title>cdp smoke</title>
<button id="add" style="position: absolute; left: 100px; top: 200px; width: 120px; height: 40px">add</button>
<ul id="items" style="margin-top: 300px"></ul>
<img src="http://127.0.0.1:9/missing.png" alt="">
<div style="height: 3000px"></div>
<script>
  console.log('hello');
  const button = document.getElementById('add');
  button.addEventListener('mouseenter', () => { document.body.dataset.hovered = 'yes'; });
  button.addEventListener('click', () => {
    const item = document.createElement('li');
    item.textContent = 'clicked';
    document.getElementById('items').append(item);
    throw new Error('boom after click');
  });
</script>
"#;

#[test]
fn cdp_driver_drives_a_page() {
    let mut browser = Browser::launch();
    browser.goto(&data_url(SMOKE_PAGE));

    assert_eq!(browser.eval("1 + 2"), 3);
    assert_eq!(browser.eval("document.title"), "cdp smoke");
    assert_eq!(
        browser.eval("Promise.resolve([window.innerWidth, window.innerHeight])"),
        serde_json::json!([1280, 900])
    );
    // A page of its own, yet neither hidden nor throttled.
    assert_eq!(browser.eval("document.visibilityState"), "visible");
    let (x, y) = browser.center_of("#add");
    assert_eq!((x, y), (160.0, 220.0));
    browser.mouse_move(x, y);
    assert_eq!(browser.wait_for("document.body.dataset.hovered", Duration::from_secs(5)), "yes");
    browser.click(x, y);
    let items = browser.wait_for("document.querySelectorAll('#items li').length", Duration::from_secs(5));
    assert_eq!(items, 1);

    let console = browser.console();
    let errors = browser.errors();
    let first_lines: Vec<&str> = errors.iter().map(|error| error.lines().next().unwrap_or_default()).collect();
    eprintln!("console: {console:#?}\nerrors (first lines): {first_lines:#?}");
    assert!(console.contains(&"log: hello".to_string()), "{console:#?}");
    assert!(errors.iter().any(|error| error.starts_with("Uncaught Error: boom after click")), "{errors:#?}");
    assert!(errors.iter().any(|error| error.contains("Failed to load resource")), "{errors:#?}");

    let shots = tempfile::tempdir().expect("temp dir for screenshots");
    let viewport_png = shots.path().join("shots/viewport.png");
    browser.screenshot(&viewport_png);
    browser.set_viewport(390, 844);
    assert_eq!(browser.eval("window.innerWidth"), 390);
    let full_png = shots.path().join("shots/full.png");
    browser.screenshot_full_page(&full_png);
    for (png, width, min_height) in [(&viewport_png, 1280, 900), (&full_png, 390, 3000)] {
        let bytes = std::fs::read(png).expect("reading the screenshot");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", png.display());
        // The IHDR chunk: big-endian width and height at bytes 16..24.
        let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        assert_eq!(size(16), width, "{}", png.display());
        assert!(size(20) >= min_height, "{} is {} px high", png.display(), size(20));
    }

    // Failures say what failed; an exception in an evaluation is not a page error.
    eprintln!("(two panic messages are expected next: a throwing eval, a wait that times out)");
    let eval_panic = panic_message(|| browser.eval("undefined.x"));
    assert!(eval_panic.contains("`undefined.x` threw TypeError: Cannot read properties of undefined"), "{eval_panic}");
    let wait_panic = panic_message(|| browser.wait_for("document.querySelector('#never')", Duration::from_millis(300)));
    assert!(wait_panic.contains("`document.querySelector('#never')`; its last value: null"), "{wait_panic}");
    assert_eq!(browser.errors().len(), errors.len(), "{:#?}", browser.errors());
}

/// The message `run` panicked with; panics if it returned.
fn panic_message<T: std::fmt::Debug>(run: impl FnOnce() -> T) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(value) => panic!("expected a panic, got {value:?}"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
            .unwrap_or_default(),
    }
}

/// Where the tests leave their screenshots: target/dashboard-screenshots.
fn screenshot_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

/// Loads `url` as a new document (not a hash change, so nothing of the last view lingers)
/// and waits until it has rendered `view`.
fn open(browser: &mut Browser, url: &str, view: &str) {
    browser.goto("about:blank");
    browser.goto(url);
    wait_view(browser, view);
}

/// Waits until the page has rendered `view` (the page's own `data-view` mark).
fn wait_view(browser: &mut Browser, view: &str) {
    let condition = format!("document.body.dataset.view === '{view}' && Number(document.body.dataset.renders) > 0");
    browser.wait_for(&condition, Duration::from_secs(20));
}

/// Types `text` into the focused-by-click element `selector` and presses Enter, as a user does.
fn type_and_enter(browser: &mut Browser, selector: &str, text: &str) {
    let (x, y) = browser.center_of(selector);
    browser.click(x, y);
    browser.eval(&format!("document.querySelector('{selector}').select()"));
    browser.call("Input.insertText", serde_json::json!({ "text": text }));
    for kind in ["keyDown", "keyUp"] {
        let key = serde_json::json!({ "type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r" });
        browser.call("Input.dispatchKeyEvent", key);
    }
}

/// The ids of the runs table's rows, in order.
fn row_ids(browser: &mut Browser) -> Vec<i64> {
    let ids = browser
        .eval("[...document.querySelectorAll('#runs-table tbody tr[data-run-id]')].map(r => Number(r.dataset.runId))");
    ids.as_array().expect("ids").iter().map(|v| v.as_i64().expect("id")).collect()
}

/// Hovers the first point of the ECharts scatter `chart` (a `window.mtlCharts` id) whose
/// data item satisfies `pick` (a JS predicate over the item), and returns the tooltip's text.
fn hover_point(browser: &mut Browser, chart: &str, pick: &str) -> String {
    let js = format!(
        "(() => {{ const c = window.mtlCharts['{chart}']; const o = c.getOption();
           for (let s = 0; s < o.series.length; s++) {{
             const data = o.series[s].data || [];
             for (let i = 0; i < data.length; i++) {{
               const item = data[i]; const value = item && item.value !== undefined ? item.value : item;
               if (!Array.isArray(value) || !({pick})(item)) continue;
               const [x, y] = c.convertToPixel({{ seriesIndex: s }}, value.slice(0, 2));
               const r = c.getDom().getBoundingClientRect();
               return [r.left + x, r.top + y];
             }}
           }} return null; }})()"
    );
    let (x, y) = {
        browser.eval(&format!("window.mtlCharts['{chart}'].getDom().scrollIntoView({{block: 'center'}})"));
        let at = browser.eval(&js);
        (at[0].as_f64().expect("a point to hover"), at[1].as_f64().expect("a point to hover"))
    };
    browser.mouse_move(x, y);
    let tooltip = "[...document.querySelectorAll('.mtl-tooltip')].filter(t => t.offsetParent !== null && \
                   getComputedStyle(t).display !== 'none' && t.textContent.trim()).map(t => t.textContent).join('|')";
    browser.wait_for(tooltip, Duration::from_secs(5)).as_str().unwrap_or_default().to_string()
}

#[test]
fn every_view_loads_filters_sorts_opens_overlays_and_hovers_without_console_errors() {
    let (_dir, _db, server) = mixed_server();
    let shots = screenshot_dir();
    let mut browser = Browser::launch();

    open(&mut browser, &server.url, "experiments");
    assert_eq!(browser.eval("document.querySelectorAll('#experiments-table tr[data-experiment]').length"), 1);
    let verdict = browser.eval("document.querySelector('#experiments-table').textContent");
    assert!(verdict.as_str().unwrap_or_default().contains("Δm%"), "{verdict}");
    browser.screenshot(&shots.join("fixture-experiments.png"));

    open(&mut browser, &format!("{}#/runs?experiment=mixed", server.url), "runs");
    assert_eq!(row_ids(&mut browser), [1, 2, 3, 4, 5, 6, 7]);
    // The failed run's error, shortened in the table, whole in its title.
    let failed = browser.eval("document.querySelector('tr[data-run-id=\"7\"]').textContent");
    assert!(failed.as_str().unwrap_or_default().contains("failed"), "{failed}");

    // Filter with the CLI's language, as typed.
    type_and_enter(&mut browser, "#filter", "lambda > 1 or strategy = 'single-task'");
    browser.wait_for(
        "document.querySelectorAll('#runs-table tbody tr[data-run-id]').length === 4",
        Duration::from_secs(10),
    );
    assert_eq!(row_ids(&mut browser), [1, 3, 4, 6]);
    // A typo: the error points at it, and the listing is not replaced by nothing.
    type_and_enter(&mut browser, "#filter", "lamda > 1");
    let error = browser.wait_for(
        "!document.querySelector('#filter-error').hidden && document.querySelector('#filter-error').textContent",
        Duration::from_secs(10),
    );
    let error = error.as_str().unwrap_or_default().to_string();
    assert!(error.contains("lamda > 1\n^") && error.contains("unknown key \"lamda\""), "{error}");
    browser.screenshot(&shots.join("fixture-filter-error.png"));
    type_and_enter(&mut browser, "#filter", "");
    browser.wait_for(
        "document.querySelectorAll('#runs-table tbody tr[data-run-id]').length === 7",
        Duration::from_secs(10),
    );

    // Sorting: a header click sorts ascending, a second descending (missing values first then, as `mtl ls --sort -key`).
    for (clicks, expected) in [(1, [7, 1, 4, 2, 5, 3, 6]), (2, [6, 3, 5, 2, 4, 1, 7])] {
        let (x, y) = browser.center_of("th[data-key='right.test.accuracy']");
        browser.click(x, y);
        let order = format!("JSON.stringify([...document.querySelectorAll('#runs-table tbody tr[data-run-id]')].map(r => Number(r.dataset.runId))) === '{}'", serde_json::json!(expected));
        let why = format!("after {clicks} click(s) on right.test.accuracy");
        browser.wait_for(&order, Duration::from_secs(10));
        eprintln!("sorted {why}: {:?}", row_ids(&mut browser));
    }

    // Select two runs and overlay them.
    for id in [2, 3] {
        let (x, y) = browser.center_of(&format!("tr[data-run-id='{id}'] input.select-run"));
        browser.click(x, y);
    }
    let (x, y) = browser.center_of("#compare-selected");
    browser.click(x, y);
    wait_view(&mut browser, "compare");
    let series = browser.wait_for(
        "(() => { const c = window.mtlCharts['overlay:left:accuracy']; return c && c.getOption().series.filter(s => s.type === 'line' && (s.data || []).length).length; })()",
        Duration::from_secs(10),
    );
    assert_eq!(series, 2, "two overlaid runs");
    browser.screenshot_full_page(&shots.join("fixture-compare-selected.png"));

    // The Pareto front: hovering a point names its group.
    open(&mut browser, &format!("{}#/compare?experiment=mixed", server.url), "compare");
    let tooltip = hover_point(&mut browser, "pareto:left:right", "() => true");
    assert!(tooltip.contains("hard") || tooltip.contains("single-task"), "tooltip: {tooltip}");
    eprintln!("Pareto tooltip: {tooltip}");
    browser.screenshot(&shots.join("fixture-pareto-hover.png"));
    // A seed group clicked: its mean curve with a band, the group named in the URL by its settings.
    let (x, y) = browser.center_of("#groups-table tbody tr:nth-child(2)");
    browser.click(x, y);
    browser.wait_for(
        "location.hash.includes('group=') && !!window.mtlCharts['overlay:left:accuracy']",
        Duration::from_secs(10),
    );
    let hash = browser.eval("decodeURIComponent(location.hash)");
    assert!(hash.as_str().unwrap_or_default().contains("group=strategy=hard"), "{hash}");
    for chart in ["heatmap", "parallel", "pareto:left:right"] {
        assert_eq!(browser.eval(&format!("!!window.mtlCharts['{chart}']")), true, "chart {chart}");
    }

    // A run: its curves and settings.
    open(&mut browser, &format!("{}#/run/7", server.url), "run");
    let title = browser.eval("document.querySelector('#run-title').textContent");
    assert!(title.as_str().unwrap_or_default().contains('7'), "{title}");
    let error = browser.eval("document.querySelector('#run-error').textContent");
    assert!(error.as_str().unwrap_or_default().contains("ValueError: bad batch"), "the log tail: {error}");
    assert_eq!(browser.eval("!!window.mtlCharts['curve:left:accuracy'] && !!window.mtlCharts['diag:weight']"), true);
    browser.screenshot_full_page(&shots.join("fixture-run.png"));

    // Chromium itself logs the one 400 the typo asked for; the page logged nothing.
    let expected = |line: &String| line.contains("status of 400") && line.contains("where=lamda");
    let errors: Vec<String> = browser.errors().into_iter().filter(|l| !expected(l)).collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let console: Vec<String> = browser.console().into_iter().filter(|l| !expected(l)).collect();
    assert!(console.is_empty(), "the page logged: {console:#?}");
}

#[test]
fn hostile_names_are_shown_as_text_and_never_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("mtl.db");
    let mut store = write_mixed(&db, false);
    write_hostile(&mut store);
    drop(store);
    let server = UiServer::start(&db, &[]);
    let mut browser = Browser::launch();
    let experiment: String = url_encode(HOSTILE_EXPERIMENT);
    let views = [
        ("experiments", String::new()),
        ("runs", format!("#/runs?experiment={experiment}")),
        ("run", "#/run/9".to_string()),
        ("run", "#/run/12".to_string()),
        ("compare", format!("#/compare?experiment={experiment}")),
        ("compare", format!("#/compare?experiment=mixed&other={experiment}")),
    ];
    let untouched = "document.title === 'mtl-lab' || !document.title.includes('pwned')";
    for (view, hash) in &views {
        open(&mut browser, &format!("{}{hash}", server.url), view);
        let text = browser.eval("document.body.innerText");
        let text = text.as_str().unwrap_or_default();
        let shown: Vec<&str> =
            [HOSTILE_EXPERIMENT, HOSTILE_TASK, HOSTILE_STRATEGY, HOSTILE_TAG, HOSTILE_NOTE, HOSTILE_ERROR]
                .into_iter()
                .filter(|name| text.contains(name))
                .collect();
        eprintln!("{view} {hash}: shows {} hostile name(s) as text", shown.len());
        assert!(!shown.is_empty(), "{view}: no hostile name shown as text");
        assert_eq!(browser.eval(untouched), true, "{view}: {}", browser.eval("document.title"));
        assert_eq!(
            browser.eval("document.querySelectorAll('img[src=\"x\"], svg[onload], script:not([src])').length"),
            0
        );
        assert_eq!(browser.eval("[...document.querySelectorAll('a[href]')].filter(a => a.getAttribute('href').toLowerCase().startsWith('javascript')).length"), 0);
    }
    // Tooltips, which ECharts writes as HTML: the Pareto point and the heatmap cell named
    // by the hostile strategy.
    open(&mut browser, &format!("{}#/compare?experiment={experiment}", server.url), "compare");
    let keys = browser.eval("Object.keys(window.mtlCharts)");
    let pareto = keys.as_array().expect("keys").iter().filter_map(|k| k.as_str()).find(|k| k.starts_with("pareto:"));
    let pareto = pareto.expect("a Pareto chart").replace('\\', "\\\\").replace('\'', "\\'");
    for (chart, pick) in
        [(pareto.as_str(), "(item) => item.name && item.name.includes('<img')"), ("heatmap", "() => true")]
    {
        let tooltip = hover_point(&mut browser, chart, pick);
        eprintln!("hostile tooltip of {chart}: {tooltip}");
        assert!(tooltip.contains(HOSTILE_STRATEGY), "{chart}: {tooltip}");
        assert_eq!(browser.eval(untouched), true);
        let injected = "document.querySelectorAll('.mtl-tooltip img, .mtl-tooltip script, .mtl-tooltip svg').length";
        assert_eq!(browser.eval(injected), 0, "{chart}");
    }
    browser.screenshot_full_page(&screenshot_dir().join("hostile-compare.png"));
    let errors: Vec<String> = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// `text` percent-encoded for a URL's query.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_page_follows_the_database_while_a_trial_trains() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("mtl.db");
    let mut store = write_mixed(&db, true);
    let server = UiServer::start(&db, &[]);
    let mut browser = Browser::launch();
    open(&mut browser, &format!("{}#/runs?experiment=mixed", server.url), "runs");
    let running = "document.querySelector('tr[data-run-id=\"8\"]').textContent";
    let before = browser.eval(running);
    assert!(before.as_str().unwrap_or_default().contains("epoch 1/3"), "{before}");

    // The test writes as a sweep does: an epoch, then the end of the run.
    let spec = RunSpec {
        experiment: "mixed",
        tasks: ["left", "right"],
        strategy: "cross-stitch",
        lambda: Some(1.0),
        seed: 0.0,
        skill: 0.0,
        epochs: 1,
        planned_epochs: 3,
        status: RunStatus::Running,
        error: None,
    };
    let written = std::time::Instant::now();
    log_epoch(&mut store, mtl_store::RunId(8), &spec, 2);
    browser.wait_for(&format!("{running}.includes('epoch 2/3')"), Duration::from_secs(10));
    eprintln!("epoch 2 shown {} ms after it was written", written.elapsed().as_millis());
    browser.screenshot(&screenshot_dir().join("live-running.png"));

    open(&mut browser, &format!("{}#/run/8", server.url), "run");
    let points = "window.mtlCharts['curve:left:accuracy'].getOption().series.find(s => s.name === 'val').data.length";
    assert_eq!(browser.eval(points), 2);
    let renders = browser.eval("Number(document.body.dataset.renders)").as_i64().unwrap_or_default();
    let written = std::time::Instant::now();
    log_epoch(&mut store, mtl_store::RunId(8), &spec, 3);
    store.finish_run(mtl_store::RunId(8), RunStatus::Done, None).expect("finish");
    browser.wait_for(
        &format!("{points} === 3 && document.querySelector('#run-title').parentNode.textContent.includes('done')"),
        Duration::from_secs(10),
    );
    eprintln!("epoch 3 and the end of the run shown {} ms after they were written", written.elapsed().as_millis());
    let after = browser.eval("Number(document.body.dataset.renders)").as_i64().unwrap_or_default();
    assert!(after > renders, "the view rendered again ({renders} → {after})");
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn hostile_requests_get_4xx_and_the_server_keeps_serving() {
    let (_dir, db, mut server) = mixed_server();
    let host = server.address.clone();
    let long = "a".repeat(9000);
    let cases: Vec<(String, u16)> = vec![
        (format!("GET /../../etc/passwd HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), 404),
        (format!("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), 404),
        (format!("GET /vendor/..%2f..%2fCargo.toml HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), 404),
        (format!("GET /api/runs?experiment={long} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), 414),
        (format!("GET /api/run/1%27%20or%201=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), 400),
        (format!("GET /api/runs?experiment=mixed&where=%ZZ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), 400),
        (format!("GET /api/runs?experiment=mixed&where=1%3D1%3B%20DROP%20TABLE%20runs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"), 400),
        (format!("POST /api/changes HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), 405),
        // DNS rebinding: a page of another site whose name now points here.
        ("GET /api/experiments HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n".to_string(), 421),
        ("GET /api/experiments HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(), 421),
        ("\x16\x03\x01 not http at all\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nBad Header Line\r\n\r\n".to_string(), 400),
    ];
    for (request, expected) in &cases {
        let (status, text) = server.raw(request);
        let first = request.lines().next().unwrap_or_default();
        let shown: String = first.chars().take(80).collect();
        assert_eq!(status, *expected, "{shown}: {}", text.lines().next().unwrap_or_default());
        assert!(server.alive(), "the server died on {shown}");
    }
    // A page of another site (its requests marked so by the browser) gets nothing.
    let cross_site = format!("GET /api/runs?experiment=mixed&sort=id HTTP/1.1\r\nHost: {host}\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n");
    assert_eq!(server.raw(&cross_site).0, 403);
    let two_hosts =
        format!("GET /api/changes HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    assert_eq!(server.raw(&two_hosts).0, 400);
    let many_keys = ["id"; 9].join(",");
    assert_eq!(server.get(&format!("/api/runs?experiment=mixed&sort={many_keys}")).0, 400);
    // Requests the database cannot answer leave it as it was: no reopening, no new version.
    let version = server.get("/api/changes").1;
    for target in ["/api/run/999999", "/api/curves?runs=999999", "/api/runs?experiment=nope"] {
        assert_eq!(server.get(target).0, 404, "{target}");
    }
    let body = |text: &str| text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    assert_eq!(body(&server.get("/api/changes").1), body(&version));
    let (status, text) = server.get("/api/runs?experiment=mixed");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("content-security-policy: default-src 'self'"), "{text}");
    // The database is untouched: the rows are all there.
    let conn = rusqlite::Connection::open(&db).expect("open");
    let runs: i64 = conn.query_row("SELECT count(*) FROM runs", [], |r| r.get(0)).expect("count");
    assert_eq!(runs, 7);
}

#[test]
fn off_loopback_every_request_needs_the_printed_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("mtl.db");
    drop(write_mixed(&db, false));
    let mut local = UiServer::start(&db, &["--host", "0.0.0.0"]);
    let token = local.url.split("token=").nth(1).expect("a token in the URL").to_string();
    assert_eq!(token.len(), 32, "{}", local.url);
    let port = local.address.rsplit(':').next().unwrap_or_default().to_string();
    local.address = format!("127.0.0.1:{port}");
    assert_eq!(local.get("/api/experiments").0, 401);
    assert_eq!(local.get("/api/experiments?token=0123456789abcdef0123456789abcdef").0, 401);
    let (status, text) = local.get(&format!("/?token={token}"));
    assert_eq!(status, 200);
    assert!(
        text.to_lowercase().contains(&format!("set-cookie: mtl_token={token}; path=/; httponly; samesite=strict")),
        "{text}"
    );
    let with_cookie = format!(
        "GET /api/experiments HTTP/1.1\r\nHost: anything\r\nCookie: mtl_token={token}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(local.raw(&with_cookie).0, 200);
}

#[test]
fn a_missing_corrupt_or_newer_database_is_a_clear_page_not_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("later.db");
    let mut server = UiServer::start(&db, &[]);
    let mut browser = Browser::launch();
    open(&mut browser, &server.url, "error");
    let shown = browser.eval("document.body.innerText");
    assert!(shown.as_str().unwrap_or_default().contains("no results database at"), "{shown}");
    browser.screenshot(&screenshot_dir().join("missing-database.png"));

    std::fs::write(&db, b"this is not an SQLite file, it is only text, long enough to look like a header...")
        .expect("write");
    let (status, text) = server.get("/api/experiments");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("not an mtl-lab results database"), "{text}");

    std::fs::remove_file(&db).expect("remove");
    drop(write_mixed(&db, false));
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.pragma_update(None, "user_version", 999).expect("set version");
    drop(conn);
    let (status, text) = server.get("/api/experiments");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("newer than this mtl-lab supports"), "{text}");
    assert!(server.alive());
    // The page says so too, and recovers by itself once the file is one it can read.
    browser.wait_for("document.body.innerText.includes('newer than this mtl-lab supports')", Duration::from_secs(10));
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.pragma_update(None, "user_version", mtl_store::SCHEMA_VERSION).expect("set version");
    drop(conn);
    wait_view(&mut browser, "experiments");
}

/// The experiment "mixed" (finished runs only) in a temporary folder, served by `mtl ui`.
fn mixed_server() -> (tempfile::TempDir, std::path::PathBuf, UiServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("mtl.db");
    drop(write_mixed(&db, false));
    let server = UiServer::start(&db, &[]);
    (dir, db, server)
}

/// The body of an HTTP response, as JSON.
fn body_json(response: &(u16, String)) -> serde_json::Value {
    assert_eq!(response.0, 200, "{}", response.1);
    let body = response.1.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

#[test]
fn the_page_shows_the_numbers_the_cli_prints() {
    let (_dir, db, server) = mixed_server();
    let cli = |args: &[&str]| -> serde_json::Value {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mtl"))
            .args(args)
            .arg("--db")
            .arg(&db)
            .args(["--format", "json"])
            .output()
            .expect("run mtl");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let compared = cli(&["compare"]);
    let page = body_json(&server.get("/api/compare?experiment=mixed"));
    let groups = page["groups"].as_array().expect("groups");
    let rows = compared.as_array().expect("rows");
    assert_eq!(groups.len(), rows.len());
    for (group, row) in groups.iter().zip(rows) {
        assert_eq!(group["runs"], row["runs"]);
        assert_eq!(group["delta_m"]["value"], row["delta_m"], "{group}");
        assert_eq!(group["delta_m"]["low"], row["delta_m.ci95_low"]);
        assert_eq!(group["stats"]["left.test.accuracy"]["mean"], row["metrics"]["left.test.accuracy"]["mean"]);
    }
    let best = cli(&["best"]);
    let verdict = &body_json(&server.get("/api/experiments"))["experiments"][0]["verdict"];
    let best = &best.as_array().expect("winners")[0];
    assert_eq!(verdict["delta_m"], best["delta_m"], "{verdict} against {best}");
    let listed = cli(&["ls", "--where", "lambda > 1", "--sort", "-right.test.accuracy"]);
    let page = body_json(&server.get("/api/runs?experiment=mixed&where=lambda%20%3E%201&sort=-right.test.accuracy"));
    let ids =
        |rows: &serde_json::Value| rows.as_array().expect("rows").iter().map(|r| r["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&page["rows"]), ids(&listed));
    assert_eq!(page["rows"][0]["values"]["right.test.accuracy"], listed[0]["result_metrics"]["right.test.accuracy"]);
}
