//! Training programs of the user's own (`[trainer]`): each trial runs the program in a
//! fresh working folder, hands it the trial's settings and reads back what it reports over
//! the metrics protocol ([`protocol`]), epoch by epoch, into the store like a built-in
//! trial's.
//!
//! The trial's settings reach the program three ways: substituted into the command's
//! `{placeholders}`, as environment variables, and as a JSON file named by `MTL_TRIAL`:
//!
//! | placeholder | variable | value |
//! |---|---|---|
//! | `{lambda}` | `MTL_LAMBDA` | λ (1 where the trial has none: single-task, or a weighting other than static) |
//! | `{lr}` | `MTL_LR` | the learning rate |
//! | `{seed}` | `MTL_SEED` | the seed |
//! | `{strategy}` | `MTL_STRATEGY` | the sharing strategy's name |
//! | `{weighting}` | `MTL_WEIGHTING` | the weighting method's name |
//! | `{epochs}` | `MTL_EPOCHS` | the file's `epochs` |
//! | `{batch_size}` | `MTL_BATCH_SIZE` | the file's `batch_size` |
//! | `{experiment}` | `MTL_EXPERIMENT` | the experiment's name |
//! | `{trial}` | `MTL_TRIAL_KEY` | the trial key |
//! | `{workdir}` | `MTL_WORKDIR` | the trial's working folder |
//! | `{dir}` | `MTL_DIR` | the experiment file's folder (so the command can name files beside it) |
//!
//! With `mtl run --gpus 0,1` each concurrent trial's program sees one of the listed GPUs
//! (`CUDA_VISIBLE_DEVICES`, by the job running it). `MTL_METRICS` names the file the
//! program appends its metrics to; its standard output and
//! error go to `output.log` in the working folder, whose last lines are stored with a
//! failed run. A program that exits non-zero, breaks the protocol, or outlives `timeout`
//! fails its trial (never the sweep); a stop (Ctrl-C, SIGTERM) is passed on to the
//! program's whole process group as SIGTERM, then SIGKILL after [`GRACE`]. On Linux the
//! program is killed when mtl is (even by SIGKILL: the parent-death signal); processes it
//! starts itself are its to end.

pub mod protocol;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mtl_store::MetricPoint;
use serde_json::json;

use self::protocol::{Declared, EpochCollector, Event};
use crate::plan::Trial;

/// How long a stopped or timed-out program has between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);

/// How often the metrics file and the program are looked at.
const POLL: Duration = Duration::from_millis(50);

/// Lines of `output.log` kept with a failed run.
const LOG_TAIL_LINES: usize = 20;

/// The placeholders a command may hold.
pub const PLACEHOLDERS: [&str; 11] =
    ["lambda", "lr", "seed", "strategy", "weighting", "epochs", "batch_size", "experiment", "trial", "workdir", "dir"];

/// Which way a declared metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Higher is better.
    Higher,
    /// Lower is better.
    Lower,
}

/// A `[trainer]` section, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandTrainer {
    /// The program and its arguments, with `{placeholders}`.
    pub command: Vec<String>,
    /// Task → metric → direction, as declared.
    pub metrics: BTreeMap<String, BTreeMap<String, Direction>>,
    /// Each task's metric that picks the best epoch.
    pub select: BTreeMap<String, String>,
    /// The longest a trial may run.
    pub timeout: Option<Duration>,
    /// The experiment file's folder, absolute (`{dir}`; not in the trial key, so that a
    /// moved folder keeps its trials).
    pub dir: PathBuf,
}

impl CommandTrainer {
    /// What the trial key records of it.
    pub fn settings(&self) -> serde_json::Value {
        let metrics: BTreeMap<&String, BTreeMap<&String, &str>> = self
            .metrics
            .iter()
            .map(|(task, metrics)| {
                let directions = metrics
                    .iter()
                    .map(|(m, d)| (m, if *d == Direction::Higher { "higher" } else { "lower" }))
                    .collect();
                (task, directions)
            })
            .collect();
        json!({ "command": self.command, "metrics": metrics, "select": self.select })
    }

    /// The tasks and metrics the protocol accepts.
    pub fn declared(&self) -> Declared {
        let tasks = self.metrics.iter().map(|(task, m)| (task.clone(), m.keys().cloned().collect())).collect();
        Declared { tasks }
    }
}

/// How a program's trial ended, when not with success.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program failed, broke the protocol, or ran too long.
    #[error("{0}")]
    Failed(String),
    /// Stopped by the user.
    #[error("interrupted (the program was stopped)")]
    Interrupted,
}

/// Where a program's trial reports to.
pub trait CommandObserver {
    /// An epoch is complete; an error stops the program.
    fn epoch(&mut self, epoch: u32, points: &[MetricPoint]) -> Result<(), String>;
    /// Whether the sweep is stopping.
    fn should_stop(&self) -> bool;
}

/// The artifacts a finished program named, as `(name, path)` under its working folder.
pub type Artifacts = Vec<(String, PathBuf)>;

/// The values the placeholders and variables take for `trial`.
fn trial_values(trial: &Trial, experiment: &str, workdir: &Path, dir: &Path) -> Vec<(&'static str, String)> {
    let lambda = match &trial.static_weights {
        Some(crate::plan::StaticWeights::Lambda(lambda)) => lambda.to_string(),
        _ => "1".to_string(),
    };
    vec![
        ("lambda", lambda),
        ("lr", trial.lr.to_string()),
        ("seed", trial.seed.to_string()),
        ("strategy", trial.sharing.strategy().name().to_string()),
        ("weighting", trial.weighting.name().to_string()),
        ("epochs", trial.settings.epochs.to_string()),
        ("batch_size", trial.settings.batch_size.to_string()),
        ("experiment", experiment.to_string()),
        ("trial", trial.key.clone()),
        ("workdir", workdir.display().to_string()),
        ("dir", dir.display().to_string()),
    ]
}

/// Runs `trainer`'s program for `trial` in the fresh folder `workdir`.
pub fn run(
    trainer: &CommandTrainer,
    trial: &Trial,
    experiment: &str,
    workdir: &Path,
    gpu: Option<&str>,
    observer: &mut dyn CommandObserver,
) -> Result<Artifacts, CommandError> {
    let failed = |message: String| CommandError::Failed(message);
    if workdir.exists() {
        std::fs::remove_dir_all(workdir).map_err(|e| failed(format!("clearing {}: {e}", workdir.display())))?;
    }
    std::fs::create_dir_all(workdir).map_err(|e| failed(format!("creating {}: {e}", workdir.display())))?;
    // The program runs in it: every path it is given is absolute.
    let workdir = &workdir.canonicalize().map_err(|e| failed(format!("{}: {e}", workdir.display())))?;
    let values = trial_values(trial, experiment, workdir, &trainer.dir);
    let trial_file = workdir.join("trial.json");
    // Numbers as numbers, the rest as text.
    let settings: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(k, v)| {
            let value = match *k {
                "lambda" | "lr" | "seed" | "epochs" | "batch_size" => {
                    v.parse::<f64>().map_or_else(|_| json!(v), |n| json!(n))
                }
                _ => json!(v),
            };
            (k.to_string(), value)
        })
        .collect();
    let resolved: serde_json::Value = serde_json::from_str(&trial.settings_json).unwrap_or_default();
    let document = json!({ "settings": settings, "resolved": resolved });
    std::fs::write(&trial_file, document.to_string()).map_err(|e| failed(format!("writing trial.json: {e}")))?;
    let metrics_file = workdir.join("metrics.jsonl");
    std::fs::write(&metrics_file, "").map_err(|e| failed(format!("creating metrics.jsonl: {e}")))?;
    let log_file = workdir.join("output.log");
    let log = std::fs::File::create(&log_file).map_err(|e| failed(format!("creating output.log: {e}")))?;
    let log_err = log.try_clone().map_err(|e| failed(format!("output.log: {e}")))?;

    let substitute = |arg: &str| values.iter().fold(arg.to_string(), |a, (k, v)| a.replace(&format!("{{{k}}}"), v));
    let args: Vec<String> = trainer.command.iter().map(|a| substitute(a)).collect();
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]).current_dir(workdir).stdin(Stdio::null()).stdout(log).stderr(log_err);
    for (key, value) in &values {
        let name = match *key {
            "trial" => "MTL_TRIAL_KEY".to_string(),
            other => format!("MTL_{}", other.to_ascii_uppercase()),
        };
        command.env(name, value);
    }
    command.env("MTL_TRIAL", &trial_file).env("MTL_METRICS", &metrics_file);
    if let Some(gpu) = gpu {
        command.env("CUDA_VISIBLE_DEVICES", gpu);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        // If mtl itself is killed (SIGKILL leaves it no say), the program goes with it.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; nothing is allocated between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(|e| failed(format!("starting {:?}: {e}", args[0])))?;
    let outcome = watch(trainer, &mut child, &metrics_file, observer);
    if outcome.is_err() {
        stop(&mut child);
    }
    let (artifacts, status) = match outcome {
        Ok(result) => result,
        Err(e) => {
            return Err(match e {
                CommandError::Failed(message) => failed(with_log_tail(message, &log_file)),
                other => other,
            })
        }
    };
    if !status.success() {
        let code = status.code().map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
        return Err(failed(with_log_tail(format!("the program exited with {code}"), &log_file)));
    }
    let mut kept = Vec::new();
    for (name, path) in artifacts {
        let full = workdir.join(&path);
        if !full.is_file() {
            return Err(failed(format!("artifact {path:?}: no such file in {}", workdir.display())));
        }
        kept.push((name, full));
    }
    Ok(kept)
}

/// Reads the metrics file while the program runs; answers its artifacts and exit status.
fn watch(
    trainer: &CommandTrainer,
    child: &mut Child,
    metrics_file: &Path,
    observer: &mut dyn CommandObserver,
) -> Result<(Artifacts, std::process::ExitStatus), CommandError> {
    let declared = trainer.declared();
    let mut epochs = EpochCollector::default();
    let mut artifacts = Vec::new();
    let (mut offset, mut pending, mut line_number) = (0u64, Vec::<u8>::new(), 0usize);
    let started = Instant::now();
    loop {
        let exited = child.try_wait().map_err(|e| CommandError::Failed(format!("waiting for the program: {e}")))?;
        // Read what the program appended (after it exited: everything it wrote).
        let mut file =
            std::fs::File::open(metrics_file).map_err(|e| CommandError::Failed(format!("metrics.jsonl: {e}")))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| CommandError::Failed(format!("metrics.jsonl: {e}")))?;
        let mut fresh = Vec::new();
        let read = (&mut file)
            .take(1 << 20)
            .read_to_end(&mut fresh)
            .map_err(|e| CommandError::Failed(format!("metrics.jsonl: {e}")))?;
        offset += read as u64;
        pending.extend_from_slice(&fresh);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            line_number += 1;
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if text.trim().is_empty() {
                continue;
            }
            let event = declared.parse_line(&text, line_number).map_err(|e| CommandError::Failed(e.to_string()))?;
            if let Event::Artifact { path, name } = &event {
                artifacts.push((name.clone().unwrap_or_else(|| path.clone()), PathBuf::from(path)));
            }
            for (epoch, points) in epochs.take(&event, line_number).map_err(|e| CommandError::Failed(e.to_string()))? {
                observer.epoch(epoch, &points).map_err(CommandError::Failed)?;
            }
        }
        if pending.len() > protocol::MAX_LINE {
            let message = format!("metrics line {}: longer than {} bytes", line_number + 1, protocol::MAX_LINE);
            return Err(CommandError::Failed(message));
        }
        if read == 1 << 20 {
            continue; // more to read now
        }
        if let Some(status) = exited {
            if !pending.is_empty() {
                let message = format!("metrics line {}: the program ended it without a newline", line_number + 1);
                return Err(CommandError::Failed(message));
            }
            if status.success() {
                if let Some((epoch, points)) = epochs.finish() {
                    observer.epoch(epoch, &points).map_err(CommandError::Failed)?;
                }
            }
            return Ok((artifacts, status));
        }
        if observer.should_stop() {
            return Err(CommandError::Interrupted);
        }
        if let Some(limit) = trainer.timeout.filter(|limit| started.elapsed() > *limit) {
            return Err(CommandError::Failed(format!("timed out after {} s (timeout)", limit.as_secs_f64())));
        }
        std::thread::sleep(POLL);
    }
}

/// Ends the program's whole process group: SIGTERM, then SIGKILL after [`GRACE`].
fn stop(child: &mut Child) {
    #[cfg(unix)]
    {
        let group = -(child.id() as i32);
        // SAFETY: kill(2) on the group this process started; no memory is touched.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                // The leader is gone; make sure its group is too.
                unsafe { libc::kill(group, libc::SIGKILL) };
                return;
            }
            std::thread::sleep(POLL);
        }
        unsafe { libc::kill(group, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `message` with the last lines of the program's output.
fn with_log_tail(message: String, log: &Path) -> String {
    let text = std::fs::read(log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    match tail.is_empty() {
        true => format!("{message} (output.log is empty)"),
        false => format!("{message}; the last lines of its output.log:\n{tail}"),
    }
}
