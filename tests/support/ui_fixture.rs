//! What the dashboard tests share: results databases written through mtl-store's API
//! as a sweep writes them, and a real `mtl ui` process on a free port.
#![allow(dead_code)] // each test uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mtl_store::{DiagnosticPoint, MetricPoint, NewRun, ParamValue, Provenance, RunId, RunStatus, Store};

/// Names a page must show as text and never run: each would change the title if it did.
pub const HOSTILE_EXPERIMENT: &str = "<script>document.title='pwned-experiment'</script>";
pub const HOSTILE_TASK: &str = "\"><img src=x onerror=\"document.title='pwned-task'\">";
pub const HOSTILE_STRATEGY: &str = "<img src=x onerror=\"document.title='pwned-strategy'\">";
pub const HOSTILE_TAG: &str = "<svg onload=\"document.title='pwned-tag'\">";
pub const HOSTILE_NOTE: &str = "javascript:document.title='pwned-note'";
pub const HOSTILE_ERROR: &str = "</pre><script>document.title='pwned-error'</script>";

/// One run to write: its settings, then `epochs` epochs of two tasks' accuracy and loss
/// (rising with the epoch, offset by `skill`) and task weights.
pub struct RunSpec<'a> {
    pub experiment: &'a str,
    pub tasks: [&'a str; 2],
    pub strategy: &'a str,
    pub lambda: Option<f64>,
    pub seed: f64,
    pub skill: f64,
    pub epochs: u32,
    pub planned_epochs: u32,
    pub status: RunStatus,
    pub error: Option<&'a str>,
}

/// Writes `spec` and returns its run.
pub fn write_run(store: &mut Store, spec: &RunSpec) -> RunId {
    let experiment = store.experiment(spec.experiment).expect("experiment");
    let mut params = vec![
        ("strategy".to_string(), ParamValue::Text(spec.strategy.into())),
        ("seed".to_string(), ParamValue::Num(spec.seed)),
        ("epochs".to_string(), ParamValue::Num(f64::from(spec.planned_epochs))),
        ("weighting".to_string(), ParamValue::Text("static".into())),
    ];
    if let Some(lambda) = spec.lambda {
        params.push(("lambda".to_string(), ParamValue::Num(lambda)));
    }
    let key = format!("{}-{:?}-{}", spec.strategy, spec.lambda, spec.seed);
    let provenance = Provenance { host: Some("test-host".into()), ..Provenance::default() };
    let new_run = NewRun { experiment, trial_key: &key, settings_json: "{}", params: &params, provenance: &provenance };
    let run = store.begin_run(&new_run).expect("begin run");
    for epoch in 1..=spec.epochs {
        log_epoch(store, run, spec, epoch);
    }
    if spec.status != RunStatus::Running {
        store.finish_run(run, spec.status, spec.error).expect("finish run");
    }
    run
}

/// Logs epoch `epoch` of `spec`'s run.
pub fn log_epoch(store: &mut Store, run: RunId, spec: &RunSpec, epoch: u32) {
    let progress = f64::from(epoch) / f64::from(spec.planned_epochs.max(1));
    let mut points = Vec::new();
    for (i, task) in spec.tasks.iter().enumerate() {
        let accuracy = (0.5 + 0.3 * progress + spec.skill * (i as f64 + 1.0) + 0.01 * spec.seed).min(0.99);
        for split in ["train", "val", "test"] {
            points.push(MetricPoint::new(task, split, "accuracy", accuracy));
            points.push(MetricPoint::new(task, split, "loss", 1.0 - accuracy));
        }
    }
    store.log_epoch(run, epoch, &points).expect("log epoch");
    let weights: Vec<DiagnosticPoint> = spec
        .tasks
        .iter()
        .map(|task| DiagnosticPoint { name: "weight".into(), task: task.to_string(), other: String::new(), value: 1.0 })
        .collect();
    store.log_diagnostics(run, epoch, u64::from(epoch) * 10, &weights).expect("log diagnostics");
}

/// The experiment "mixed": single-task and hard sharing at λ 0.5 and 2, two seeds each,
/// three epochs; a failed run and, if `running`, one still training (epoch 1 of 3).
pub fn write_mixed(db: &Path, running: bool) -> Store {
    let mut store = Store::open(db).expect("open store");
    let base = RunSpec {
        experiment: "mixed",
        tasks: ["left", "right"],
        strategy: "single-task",
        lambda: None,
        seed: 0.0,
        skill: 0.0,
        epochs: 3,
        planned_epochs: 3,
        status: RunStatus::Done,
        error: None,
    };
    for seed in [0.0, 1.0] {
        write_run(&mut store, &RunSpec { seed, ..base });
        for (lambda, skill) in [(0.5, 0.02), (2.0, 0.04)] {
            write_run(&mut store, &RunSpec { strategy: "hard", lambda: Some(lambda), seed, skill, ..base });
        }
    }
    let error = "the program exited with 1; the last lines of output.log:\nTraceback (most recent call last):\nValueError: bad batch";
    let failed = RunSpec {
        strategy: "soft",
        lambda: Some(1.0),
        epochs: 1,
        status: RunStatus::Failed,
        error: Some(error),
        ..base
    };
    write_run(&mut store, &failed);
    if running {
        let spec =
            RunSpec { strategy: "cross-stitch", lambda: Some(1.0), epochs: 1, status: RunStatus::Running, ..base };
        write_run(&mut store, &spec);
    }
    store
}

/// An experiment whose every name is hostile, with a tag and a note.
pub fn write_hostile(store: &mut Store) {
    let base = RunSpec {
        experiment: HOSTILE_EXPERIMENT,
        tasks: [HOSTILE_TASK, "plain"],
        strategy: "single-task",
        lambda: None,
        seed: 0.0,
        skill: 0.0,
        epochs: 2,
        planned_epochs: 2,
        status: RunStatus::Done,
        error: None,
    };
    let mut ids = Vec::new();
    for seed in [0.0, 1.0] {
        ids.push(write_run(store, &RunSpec { seed, ..base }));
        ids.push(write_run(
            store,
            &RunSpec { strategy: HOSTILE_STRATEGY, lambda: Some(1.0), seed, skill: 0.03, ..base },
        ));
    }
    let failed =
        RunSpec { strategy: "hard", lambda: Some(2.0), status: RunStatus::Failed, error: Some(HOSTILE_ERROR), ..base };
    ids.push(write_run(store, &failed));
    store.tag_runs(&ids, HOSTILE_TAG, HOSTILE_TAG).expect("tag");
    store.set_note(ids[1], HOSTILE_NOTE).expect("note");
}

/// `mtl ui` on a free port, killed when dropped.
pub struct UiServer {
    child: Child,
    /// The page's URL as the server printed it (with `?token=` off loopback).
    pub url: String,
    /// `host:port`.
    pub address: String,
}

impl UiServer {
    pub fn start(db: &Path, extra: &[&str]) -> UiServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mtl"))
            .args(["ui", "--port", "0", "--db"])
            .arg(db)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mtl ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read the URL line");
        let url = line.split_whitespace().last().unwrap_or_default().to_string();
        assert!(url.starts_with("http://"), "mtl ui printed {line:?}");
        let address = url["http://".len()..].split('/').next().unwrap_or_default().to_string();
        UiServer { child, url, address }
    }

    /// One raw HTTP/1.1 exchange: `request` as written (with its blank line), the
    /// response's status and whole text.
    pub fn raw(&self, request: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response).to_string();
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    /// `GET target` with the right Host header and `Connection: close`.
    pub fn get(&self, target: &str) -> (u16, String) {
        self.raw(&format!("GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.address))
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
