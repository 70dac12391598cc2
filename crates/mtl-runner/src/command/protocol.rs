//! The metrics protocol a user's training program speaks: one JSON object per line,
//! appended to the file named by `MTL_METRICS` (stdout stays the program's own). Any
//! language can write it; `clients/python/mtl_client.py` is a stdlib-only helper.
//!
//! | line | means |
//! |---|---|
//! | `{"epoch": 3, "task": "left", "split": "val", "metric": "accuracy", "value": 0.91}` | one value |
//! | `{"epoch": 3, "task": "left", "split": "val", "metrics": {"accuracy": 0.91, "loss": 0.3}}` | several of one task and split |
//! | `{"end_epoch": 3}` | epoch 3 is complete: its values are stored in one transaction |
//! | `{"artifact": "model.pt"}` (optionally `"name": "…"`) | a file the run keeps (path relative to the working folder) |
//!
//! Epochs count from 1 and never go back: a value for an epoch already complete is an
//! error. An epoch also completes when a value of a later epoch arrives or the program
//! exits. Tasks and metrics must be those the experiment file declares, splits `train`,
//! `val` or `test`, values finite numbers, and no key may be unknown. A line longer than
//! [`MAX_LINE`] bytes, or one that is not such an object, is an error naming its number:
//! the trial fails, the sweep goes on.

use std::collections::{BTreeMap, BTreeSet};

use mtl_store::MetricPoint;
use serde_json::{Map, Value};

/// The longest line read (bytes).
pub const MAX_LINE: usize = 64 * 1024;

/// The splits a value may belong to.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The tasks a program reports on, each with its declared metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Declared {
    /// Task name → metric names.
    pub tasks: BTreeMap<String, BTreeSet<String>>,
}

/// What one line says.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Values of one epoch.
    Values {
        /// 1-based epoch.
        epoch: u32,
        /// The values, each for a declared task, split and metric.
        points: Vec<MetricPoint>,
    },
    /// The program says this epoch is complete.
    EndEpoch(u32),
    /// A file the run keeps, by its path relative to the working folder.
    Artifact {
        /// As the program wrote it.
        path: String,
        /// The name to store it under (default: the path).
        name: Option<String>,
    },
}

/// A line that breaks the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("metrics line {line}: {message}")]
pub struct ProtocolError {
    /// 1-based line number in the metrics file.
    pub line: usize,
    /// What is wrong, and what to write instead.
    pub message: String,
}

impl Declared {
    /// Reads line `number` (1-based) of the metrics file.
    pub fn parse_line(&self, line: &str, number: usize) -> Result<Event, ProtocolError> {
        let fail = |message: String| ProtocolError { line: number, message };
        if line.len() > MAX_LINE {
            return Err(fail(format!("{} bytes; a line holds at most {MAX_LINE}", line.len())));
        }
        let value: Value = serde_json::from_str(line).map_err(|e| fail(format!("not JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(fail("expected one JSON object per line, e.g. {\"epoch\": 1, \"task\": …}".into()));
        };
        let allow = |keys: &[&str]| -> Result<(), ProtocolError> {
            match object.keys().find(|k| !keys.contains(&k.as_str())) {
                Some(key) => Err(fail(format!("unknown key \"{key}\"; this line may hold {}", keys.join(", ")))),
                None => Ok(()),
            }
        };
        if object.contains_key("artifact") {
            allow(&["artifact", "name"])?;
            let text = |key: &str| match object.get(key) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(other) => Err(fail(format!("\"{key}\" must be a non-empty string, got {other}"))),
            };
            let path = text("artifact")?.expect("present");
            return Ok(Event::Artifact { path, name: text("name")? });
        }
        if object.contains_key("end_epoch") {
            allow(&["end_epoch"])?;
            return Ok(Event::EndEpoch(epoch(&object, "end_epoch").map_err(fail)?));
        }
        let epoch = epoch(&object, "epoch").map_err(fail)?;
        let task = string(&object, "task").map_err(fail)?;
        let Some(metrics) = self.tasks.get(task) else {
            let known: Vec<&str> = self.tasks.keys().map(String::as_str).collect();
            return Err(fail(format!("unknown task \"{task}\"; the experiment declares {}", known.join(", "))));
        };
        let split = string(&object, "split").map_err(fail)?;
        if !SPLITS.contains(&split) {
            return Err(fail(format!("unknown split \"{split}\"; expected train, val or test")));
        }
        let values: Vec<(&str, &Value)> = match (object.get("metric"), object.get("metrics")) {
            (Some(_), None) => {
                allow(&["epoch", "task", "split", "metric", "value"])?;
                let value = object.get("value").ok_or_else(|| fail("\"metric\" needs its \"value\"".into()))?;
                vec![(string(&object, "metric").map_err(fail)?, value)]
            }
            (None, Some(Value::Object(several))) if !several.is_empty() => {
                allow(&["epoch", "task", "split", "metrics"])?;
                several.iter().map(|(k, v)| (k.as_str(), v)).collect()
            }
            (None, Some(other)) => {
                return Err(fail(format!("\"metrics\" must be a non-empty object of name: value, got {other}")))
            }
            (Some(_), Some(_)) => return Err(fail("give \"metric\" with \"value\", or \"metrics\", not both".into())),
            (None, None) => return Err(fail("no \"metric\" with \"value\" and no \"metrics\"".into())),
        };
        let mut points = Vec::with_capacity(values.len());
        for (metric, value) in values {
            if !metrics.contains(metric) {
                let known: Vec<&str> = metrics.iter().map(String::as_str).collect();
                return Err(fail(format!(
                    "unknown metric \"{metric}\" of task \"{task}\"; the experiment declares {}",
                    known.join(", ")
                )));
            }
            match value.as_f64() {
                Some(v) if v.is_finite() => points.push(MetricPoint::new(task, split, metric, v)),
                _ => return Err(fail(format!("{task} {split} {metric}: {value} is not a finite number"))),
            }
        }
        Ok(Event::Values { epoch, points })
    }
}

/// The string at `key`.
fn string<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(other) => Err(format!("\"{key}\" must be a non-empty string, got {other}")),
        None => Err(format!("no \"{key}\"")),
    }
}

/// The epoch at `key`: a whole number from 1.
fn epoch(object: &Map<String, Value>, key: &str) -> Result<u32, String> {
    match object.get(key) {
        Some(value) => match value.as_u64() {
            Some(e) if e >= 1 && e <= u64::from(u32::MAX) => Ok(e as u32),
            _ => Err(format!("\"{key}\" must be a whole number from 1, got {value}")),
        },
        None => Err(format!("no \"{key}\"")),
    }
}

/// One epoch's values so far, by (task, split, metric).
type EpochValues = BTreeMap<(String, String, String), f64>;

/// Groups a program's values into complete epochs, in order.
#[derive(Debug, Default)]
pub struct EpochCollector {
    /// The open epoch and its values (a later value of one key replaces an earlier one).
    open: Option<(u32, EpochValues)>,
    /// The last epoch completed.
    last_done: u32,
}

impl EpochCollector {
    /// Takes `event` (line `number`); returns the epochs it completes, each with its values.
    pub fn take(&mut self, event: &Event, number: usize) -> Result<Vec<(u32, Vec<MetricPoint>)>, ProtocolError> {
        let fail = |message: String| ProtocolError { line: number, message };
        match event {
            Event::Artifact { .. } => Ok(Vec::new()),
            Event::EndEpoch(epoch) => {
                if *epoch <= self.last_done {
                    return Err(fail(format!("epoch {epoch} is already complete")));
                }
                match &self.open {
                    Some((open, _)) if open == epoch => {}
                    Some((open, _)) => {
                        return Err(fail(format!("end_epoch {epoch}, but the open epoch is {open}")));
                    }
                    None => {
                        return Err(fail(format!("end_epoch {epoch}, but the program sent no value of epoch {epoch}")))
                    }
                }
                self.last_done = *epoch;
                Ok(self.close_before(epoch + 1))
            }
            Event::Values { epoch, points } => {
                if *epoch <= self.last_done {
                    return Err(fail(format!(
                        "a value of epoch {epoch}, which is complete (epochs never go back; the last complete is {})",
                        self.last_done
                    )));
                }
                if let Some((open, _)) = &self.open {
                    if epoch < open {
                        return Err(fail(format!(
                            "a value of epoch {epoch} after values of epoch {open}: epochs never go back"
                        )));
                    }
                }
                let done = self.close_before(*epoch);
                if let Some((e, _)) = done.last() {
                    self.last_done = *e;
                }
                let (_, values) = self.open.get_or_insert_with(|| (*epoch, BTreeMap::new()));
                for p in points {
                    values.insert((p.key.task.clone(), p.key.split.clone(), p.key.metric.clone()), p.value);
                }
                Ok(done)
            }
        }
    }

    /// At the program's exit: the open epoch, if any.
    pub fn finish(&mut self) -> Option<(u32, Vec<MetricPoint>)> {
        let mut done = self.close_before(u32::MAX);
        let last = done.pop();
        if let Some((e, _)) = &last {
            self.last_done = *e;
        }
        last
    }

    /// Closes the open epoch if it is before `epoch`.
    fn close_before(&mut self, epoch: u32) -> Vec<(u32, Vec<MetricPoint>)> {
        match self.open.take() {
            Some((open, values)) if open < epoch => {
                let points =
                    values.into_iter().map(|((task, split, metric), v)| MetricPoint::new(&task, &split, &metric, v));
                vec![(open, points.collect())]
            }
            other => {
                self.open = other;
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
