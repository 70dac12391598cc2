//! End-to-end tests of `mtl ui` in a real headless Chromium.

use std::time::Duration;

mod support {
    pub mod cdp;
}
use support::cdp::Browser;

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
