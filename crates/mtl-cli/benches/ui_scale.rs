//! `mtl ui` at scale, measured in the browser: how long the runs view takes to render
//! its table from navigation start, a filter from Enter to the new table, and a run's
//! page from the click to its charts — each the page's own render mark
//! (`body[data-renders]`), timed with `performance.now()` inside headless Chromium.
//!
//! ```text
//! benches/ui_scale.sh                      # builds the 10,000-run database, then runs this
//! cargo bench -p mtl-cli --bench ui_scale -- --db target/store-bench.db [--repeat 5]
//! ```

#[path = "../../../tests/support/cdp.rs"]
mod cdp;
#[path = "../../../tests/support/ui_fixture.rs"]
mod ui_fixture;

use std::time::Duration;

use cdp::Browser;
use serde_json::json;
use ui_fixture::UiServer;

/// Records the time of every render of the page (ms since navigation start).
const RENDER_CLOCK: &str = "window.__renders = []; new MutationObserver(() => { \
    const n = Number((document.body && document.body.dataset.renders) || 0); \
    while (window.__renders.length < n) window.__renders.push(performance.now()); }) \
    .observe(document, { attributes: true, subtree: true, attributeFilter: ['data-renders'] });";

const FILTERS: [&str; 3] = [
    "strategy = 'hard' and (lambda >= 0.5 or right.test.accuracy > 0.85)",
    "right.test.accuracy > 0.9",
    "weighting in ('pcgrad', 'mgda') and seed < 10",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let Some(db) = value("--db") else {
        eprintln!("usage: cargo bench -p mtl-cli --bench ui_scale -- --db PATH [--repeat N]");
        std::process::exit(2);
    };
    let repeat: usize = value("--repeat").and_then(|r| r.parse().ok()).unwrap_or(5);
    let server = UiServer::start(std::path::Path::new(&db), &[]);
    let url = server.url.clone();

    let mut browser = Browser::launch();
    browser.call("Page.addScriptToEvaluateOnNewDocument", json!({ "source": RENDER_CLOCK }));
    let experiment = first_experiment(&mut browser, &url);
    let runs_url = format!("{url}#/runs?experiment={experiment}");
    let wait = Duration::from_secs(60);

    let mut first_render = Vec::new();
    for _ in 0..repeat {
        browser.goto("about:blank");
        browser.goto(&runs_url);
        browser.wait_for("document.body.dataset.view === 'runs' && window.__renders.length > 0", wait);
        first_render.push(browser.eval("window.__renders[0]").as_f64().expect("ms"));
    }
    let rows = browser.eval("document.querySelectorAll('#runs-table tbody tr').length");
    let count = browser
        .eval("document.querySelector('#runs-table').parentNode.parentNode.innerText.match(/\\d+ of \\d+ runs/)");
    println!("database: {db}; experiment {experiment:?}: {count} ({rows} rows drawn)");
    report("runs view, navigation start → table drawn", &first_render);

    for filter in FILTERS {
        let mut times = Vec::new();
        for i in 0..repeat {
            // Alternate with no filter so that every submission changes the table.
            for text in ["", filter] {
                let js = format!(
                    "(() => {{ const n = window.__renders.length; const t0 = performance.now(); \
                     const input = document.querySelector('#filter'); input.value = {text}; \
                     document.querySelector('#filter-form').requestSubmit(); return [n, t0]; }})()",
                    text = json!(text)
                );
                let started = browser.eval(&js);
                let (n, t0) = (started[0].as_u64().expect("n"), started[1].as_f64().expect("t0"));
                browser.wait_for(&format!("window.__renders.length > {n}"), wait);
                if !text.is_empty() && i < repeat {
                    times.push(browser.eval(&format!("window.__renders[{n}]")).as_f64().expect("ms") - t0);
                }
            }
        }
        let matched = browser.eval("document.querySelector('#runs-table tbody tr[data-run-id]') ? document.body.innerText.match(/\\d+ of \\d+ runs/)[0] : 'none'");
        report(&format!("filter {filter:?} ({matched}), Enter → table"), &times);
    }

    let mut run_times = Vec::new();
    let ids = browser.eval(
        "[...document.querySelectorAll('#runs-table tbody tr[data-run-id]')].slice(0, 50).map(r => r.dataset.runId)",
    );
    let ids: Vec<String> = ids.as_array().expect("ids").iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    for id in ids.iter().take(repeat) {
        browser.goto(&runs_url);
        browser.wait_for("document.body.dataset.view === 'runs' && window.__renders.length > 0", wait);
        let js = format!(
            "(() => {{ const n = window.__renders.length; const t0 = performance.now(); \
             location.hash = '#/run/{id}'; return [n, t0]; }})()"
        );
        let started = browser.eval(&js);
        let (n, t0) = (started[0].as_u64().expect("n"), started[1].as_f64().expect("t0"));
        browser.wait_for(&format!("document.body.dataset.view === 'run' && window.__renders.length > {n}"), wait);
        run_times.push(browser.eval(&format!("window.__renders[{n}]")).as_f64().expect("ms") - t0);
    }
    report("a run's page, click → curves drawn", &run_times);

    let errors = browser.errors();
    if !errors.is_empty() {
        println!("console errors: {errors:#?}");
    }
    drop(server);
}

fn first_experiment(browser: &mut Browser, url: &str) -> String {
    browser.goto(url);
    browser.wait_for("document.body.dataset.view === 'experiments'", Duration::from_secs(60));
    let name = browser.eval("document.querySelector('#experiments-table tr[data-experiment]').dataset.experiment");
    name.as_str().expect("an experiment").to_string()
}

/// Prints the median, least and greatest of `times` (ms).
fn report(what: &str, times: &[f64]) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    let (least, most) = (sorted.first().copied().unwrap_or(f64::NAN), sorted.last().copied().unwrap_or(f64::NAN));
    println!("{what:<95} median {median:>6.0} ms  (min {least:.0}, max {most:.0}, n {})", times.len());
}
