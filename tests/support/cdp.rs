//! A small Chrome DevTools Protocol driver for end-to-end tests: one headless
//! Chromium with one page, each command sent over a WebSocket and answered
//! before the next, and the page's console messages and errors collected from
//! the events that arrive meanwhile.
//!
//! ```text
//! mod support {
//!     pub mod cdp;
//! }
//! let mut browser = support::cdp::Browser::launch();
//! browser.goto("http://127.0.0.1:8080/");
//! browser.wait_for("document.querySelector('table tbody tr')", Duration::from_secs(5));
//! let (x, y) = browser.center_of("th.sortable");
//! browser.click(x, y);
//! browser.screenshot(&dir.join("runs.png"));
//! assert!(browser.errors().is_empty(), "{:#?}", browser.errors());
//! ```
//!
//! Every wait has a deadline and panics with what it was waiting for: a failing
//! test must not hang. Chromium is killed, and its profile removed, when the
//! [`Browser`] is dropped, however the test ends.
#![allow(dead_code)] // each test file uses its own part

use std::fs::File;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The longest one command may take (an `awaitPromise` evaluation included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest Chromium may take to start, and a page to fire its load event.
const LOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// The socket's read timeout: how often waits look at their deadline, and how
/// long the socket must stay quiet before [`Browser::console`] and
/// [`Browser::errors`] answer.
const POLL: Duration = Duration::from_millis(50);

/// Headless Chromium with one page, driven over the DevTools protocol.
pub struct Browser {
    socket: WebSocket<TcpStream>,
    /// The page's session on the browser's socket, once attached.
    session: Option<String>,
    next_id: u64,
    console: Vec<String>,
    errors: Vec<String>,
    load_fired: bool,
    process: Process,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closed rather than killed, Chromium takes its renderers down with it;
        // [`Process`] kills it if it has not exited within 5 s.
        let close = json!({ "id": 0, "method": "Browser.close" }).to_string();
        if self.socket.send(Message::text(close)).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(self.process.child.try_wait(), Ok(None)) {
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Chromium and its temporary folder (profile and stderr log).
struct Process {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        // The temporary folder is removed after this.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// The end of Chromium's stderr, for panic messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!("--- chromium stderr, last lines\n{}", lines[lines.len().saturating_sub(20)..].join("\n"))
    }
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens a page on
    /// `about:blank`, 1280×900. Panics when Chromium is missing or does not start.
    pub fn launch() -> Browser {
        let dir = tempfile::tempdir().expect("temp dir for the browser profile");
        let profile = dir.path().join("profile");
        // A file rather than a pipe: nobody reads it until a panic, and a full pipe would block Chromium.
        let stderr = File::create(dir.path().join("stderr.log")).expect("chromium's stderr log");
        let child = Command::new("chromium")
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check"])
            .args(["--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage"])
            // As Puppeteer does: timers and rendering at full speed in a page without focus.
            .args(["--disable-background-timer-throttling", "--disable-renderer-backgrounding"])
            .args(["--disable-backgrounding-occluded-windows", "--remote-debugging-port=0", "--window-size=1280,900"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| match error.kind() {
                ErrorKind::NotFound => panic!("chromium is not on PATH: install it with `apt-get install chromium`"),
                _ => panic!("starting chromium: {error}"),
            });
        let mut process = Process { child, dir };

        // Port 0: Chromium picks a free port and, once it listens, writes it
        // and the browser's WebSocket path to DevToolsActivePort.
        let deadline = Instant::now() + LOAD_TIMEOUT;
        let port_file = profile.join("DevToolsActivePort");
        let browser_url = loop {
            if let Some(status) = process.child.try_wait().expect("waiting for chromium") {
                panic!("chromium exited with {status} before it listened\n{}", process.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not listen within {LOAD_TIMEOUT:?}\n{}",
                process.log_tail()
            );
            std::thread::sleep(POLL);
            let text = std::fs::read_to_string(&port_file).unwrap_or_default();
            // Both lines, or the file is still being written.
            if let Some((port, path)) = text.split_once('\n').filter(|(_, path)| path.starts_with("/devtools/")) {
                break format!("127.0.0.1:{}{}", port.trim(), path.trim());
            }
        };

        let host = browser_url.split('/').next().unwrap_or_default();
        let stream = TcpStream::connect(host).unwrap_or_else(|error| panic!("connecting to {browser_url}: {error}"));
        stream.set_nodelay(true).expect("socket nodelay");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("socket read timeout");
        stream.set_write_timeout(Some(Duration::from_secs(10))).expect("socket write timeout");
        // Full-page screenshots arrive as one message, base64 encoded: allow large ones.
        let config = WebSocketConfig::default().max_message_size(Some(512 << 20)).max_frame_size(Some(512 << 20));
        let (socket, _) = tungstenite::client::client_with_config(format!("ws://{browser_url}"), stream, Some(config))
            .unwrap_or_else(|error| panic!("WebSocket handshake with {browser_url}: {error}"));
        socket.get_ref().set_read_timeout(Some(POLL)).expect("socket read timeout");

        let (console, errors) = (Vec::new(), Vec::new());
        let mut browser = Browser { socket, session: None, next_id: 0, console, errors, load_fired: false, process };
        // A page of our own, its commands and events multiplexed on the one socket by session id.
        let page = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attach = json!({ "targetId": page["targetId"], "flatten": true });
        browser.session = browser.call("Target.attachToTarget", attach)["sessionId"].as_str().map(str::to_string);
        for domain in ["Runtime", "Page", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        // The new headless mode keeps room for a window frame: 1280×900 gives a 1280×757 viewport.
        browser.set_viewport(1280, 900);
        browser
    }

    /// Sends one command and returns its `result`, recording the events that
    /// arrive before it. Panics on a protocol error or after [`COMMAND_TIMEOUT`].
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params).unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// [`Browser::call`], with a protocol error (a page that navigated away
    /// during an evaluation, say) returned rather than panicking.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            request["sessionId"] = session.as_str().into();
        }
        if let Err(error) = self.socket.send(Message::text(request.to_string())) {
            panic!("sending {method} to chromium: {error}\n{}", self.process.log_tail());
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let Some(mut message) = self.read(deadline) else {
                let params: String = params.to_string().chars().take(300).collect();
                panic!("chromium did not answer {method} {params} within {COMMAND_TIMEOUT:?}");
            };
            if message["id"] == id {
                return match message.get("error") {
                    Some(error) => Err(error.to_string()),
                    None => Ok(message["result"].take()),
                };
            }
            self.record(&message);
        }
    }

    /// Opens `url` and waits for its load event. Panics when the navigation fails
    /// (a network error, not an HTTP status) or the page does not load in time.
    pub fn goto(&mut self, url: &str) {
        self.load_fired = false;
        let result = self.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = result["errorText"].as_str() {
            panic!("navigating to {url}: {error}");
        }
        if result.get("loaderId").is_none() {
            return; // within the same document (a #fragment): no load event comes
        }
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while !self.load_fired {
            let Some(message) = self.read(deadline) else {
                panic!("{url} did not fire its load event within {LOAD_TIMEOUT:?}; errors so far: {:#?}", self.errors);
            };
            self.record(&message);
        }
    }

    /// The value of the JavaScript expression `js` (promises awaited, results
    /// as JSON; `undefined` is `null`). Panics with the exception if it throws.
    pub fn eval(&mut self, js: &str) -> Value {
        self.try_eval(js).unwrap_or_else(|exception| panic!("evaluating `{js}` threw {exception}"))
    }

    fn try_eval(&mut self, js: &str) -> Result<Value, String> {
        let params = json!({ "expression": js, "returnByValue": true, "awaitPromise": true });
        let mut result = self.try_call("Runtime.evaluate", params)?;
        match result.get("exceptionDetails") {
            Some(details) if details.get("exception").is_some() => Err(remote_text(&details["exception"])),
            Some(details) => Err(details["text"].to_string()),
            None => Ok(result["result"]["value"].take()),
        }
    }

    /// Evaluates `js_condition` every [`POLL`] until its value is truthy, and
    /// returns that value. A throw counts as not yet (the element may not be
    /// there yet, the page may be navigating); on timeout, panics with the
    /// condition and its last value.
    pub fn wait_for(&mut self, js_condition: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.try_eval(js_condition);
            match last {
                Ok(value) if truthy(&value) => return value,
                _ if Instant::now() >= deadline => {
                    let last = last.map_or_else(|exception| format!("threw {exception}"), |value| value.to_string());
                    panic!("waited {timeout:?} for `{js_condition}`; its last value: {last}");
                }
                _ => self.pump(Instant::now() + POLL),
            }
        }
    }

    /// The centre of the first element matching the CSS `selector`, scrolled
    /// into view first, in viewport coordinates for [`Browser::click`].
    pub fn center_of(&mut self, selector: &str) -> (f64, f64) {
        let selector_js = Value::from(selector);
        let centre = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector_js}); if (!e) return null; \
             e.scrollIntoView({{ block: 'center', inline: 'center' }}); const r = e.getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        match (centre[0].as_f64(), centre[1].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => panic!("no element matches `{selector}`"),
        }
    }

    /// Moves the mouse to (`x`, `y`) in CSS pixels of the viewport (hover).
    pub fn mouse_move(&mut self, x: f64, y: f64) {
        self.call("Input.dispatchMouseEvent", json!({ "type": "mouseMoved", "x": x, "y": y }));
    }

    /// A left click at (`x`, `y`): move there, press, release.
    pub fn click(&mut self, x: f64, y: f64) {
        self.mouse_move(x, y);
        for kind in ["mousePressed", "mouseReleased"] {
            let event = json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 });
            self.call("Input.dispatchMouseEvent", event);
        }
    }

    /// Resizes the viewport to `width`×`height` CSS pixels (scale 1, not mobile).
    pub fn set_viewport(&mut self, width: u32, height: u32) {
        let metrics = json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false });
        self.call("Emulation.setDeviceMetricsOverride", metrics);
    }

    /// Saves the viewport as a PNG at `path`, creating its folder.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        write_png(path, &shot);
    }

    /// Saves the whole document, beyond the viewport, as a PNG at `path`.
    pub fn screenshot_full_page(&mut self, path: &Path) {
        // The document's size, or the viewport's where larger: it includes the scrollbar.
        let element = "document.documentElement";
        let size = self.eval(&format!(
            "[Math.max({element}.scrollWidth, innerWidth), Math.max({element}.scrollHeight, innerHeight)]"
        ));
        let clip = json!({ "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1 });
        let params = json!({ "format": "png", "captureBeyondViewport": true, "clip": clip });
        let shot = self.call("Page.captureScreenshot", params);
        write_png(path, &shot);
    }

    /// Every console message so far, as `type: text` (`log: hello`), and the
    /// browser's own log entries as `level: text (url)`.
    pub fn console(&mut self) -> Vec<String> {
        self.pump(Instant::now());
        self.console.clone()
    }

    /// Every error so far: uncaught exceptions, `console.error` and
    /// `console.assert` calls, and error entries of the browser's log (a
    /// resource that failed to load, for one).
    pub fn errors(&mut self) -> Vec<String> {
        self.pump(Instant::now());
        self.errors.clone()
    }

    /// Records the events that arrive until `deadline`, and after it until the
    /// socket has been quiet for [`POLL`].
    fn pump(&mut self, deadline: Instant) {
        while let Some(message) = self.read(deadline) {
            self.record(&message);
        }
    }

    /// The next message, or `None` once `deadline` has passed with nothing to read.
    fn read(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    let message = serde_json::from_str(text.as_str());
                    return Some(message.unwrap_or_else(|error| panic!("chromium sent bad JSON ({error}): {text}")));
                }
                Ok(_) => {} // tungstenite answers pings itself
                // A read timeout leaves a partly read frame buffered: reading again resumes it.
                Err(tungstenite::Error::Io(error))
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(error) => panic!("reading from chromium's DevTools socket: {error}\n{}", self.process.log_tail()),
            }
        }
    }

    fn record(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str().unwrap_or_default() {
            "Page.loadEventFired" => self.load_fired = true,
            "Runtime.consoleAPICalled" => {
                let kind = params["type"].as_str().unwrap_or("log");
                let args = params["args"].as_array().map(Vec::as_slice).unwrap_or_default();
                let text = args.iter().map(remote_text).collect::<Vec<_>>().join(" ");
                if matches!(kind, "error" | "assert") {
                    self.errors.push(format!("console.{kind}: {text}"));
                }
                self.console.push(format!("{kind}: {text}"));
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let text = details["text"].as_str().unwrap_or("exception");
                let exception = details.get("exception").map(remote_text).unwrap_or_default();
                self.errors.push(format!("{text} {exception}").trim_end().to_string());
            }
            "Log.entryAdded" => {
                let entry = &params["entry"];
                let level = entry["level"].as_str().unwrap_or("info");
                let line = format!(
                    "{level}: {} ({})",
                    entry["text"].as_str().unwrap_or(""),
                    entry["url"].as_str().unwrap_or("")
                );
                if level == "error" {
                    self.errors.push(line.clone());
                }
                self.console.push(line);
            }
            _ => {}
        }
    }
}

/// A `Runtime.RemoteObject` as the console would show it.
fn remote_text(object: &Value) -> String {
    match &object["value"] {
        Value::String(text) => text.clone(),
        Value::Null => ["unserializableValue", "description", "type"]
            .iter()
            .find_map(|key| object[key].as_str())
            .unwrap_or("undefined")
            .to_string(),
        value => value.to_string(),
    }
}

/// JavaScript's truthiness, for values that came back as JSON.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64() != Some(0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Writes the base64 `data` of a `Page.captureScreenshot` result to `path`.
fn write_png(path: &Path, shot: &Value) {
    let data = shot["data"].as_str().expect("a screenshot has data");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|error| panic!("creating {}: {error}", parent.display()));
    }
    std::fs::write(path, decode_base64(data)).unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}

/// Standard base64 (RFC 4648, with padding) to bytes; no crate for 15 lines.
fn decode_base64(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut n_bits) = (0u32, 0);
    for byte in text.bytes().filter(|&byte| byte != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: byte {byte:#04x}"),
        };
        bits = (bits << 6 | u32::from(value)) & 0xffff;
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            bytes.push((bits >> n_bits) as u8);
        }
    }
    bytes
}
