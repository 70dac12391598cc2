//! Progress of a sweep: bars on a terminal, one line per finished trial otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mtl_runner::plan::{Plan, Trial};
use mtl_runner::sweep::{SweepEvents, TrialOutcome};
use mtl_store::{MetricPoint, RunStatus, StaleRun};

pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Per job: its bar, when its trial started, and the trial network's parameter count.
    jobs: Mutex<Vec<(ProgressBar, Instant, usize)>>,
    n_tasks_trained: Mutex<usize>,
    total: Mutex<usize>,
    terminal: bool,
    /// Each task's selecting metric: what the lines show.
    selection: mtl_store::Selection,
}

impl Progress {
    pub fn new(jobs: usize, selection: mtl_store::Selection) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("trials {bar:30.cyan/blue} {pos}/{len} [{elapsed_precise}, eta {eta}]")
                .expect("template"),
        );
        let style = ProgressStyle::with_template("  {prefix:52!} {bar:20} {msg}").expect("template");
        let bars =
            (0..jobs).map(|_| (multi.add(ProgressBar::new(1).with_style(style.clone())), Instant::now(), 0)).collect();
        Progress {
            multi,
            overall,
            jobs: Mutex::new(bars),
            n_tasks_trained: Mutex::new(0),
            total: Mutex::new(0),
            terminal,
            selection,
        }
    }

    /// Prints above the bars (or plainly when there are none).
    fn line(&self, text: String) {
        if self.terminal {
            self.multi.suspend(|| note!("{text}"));
        } else {
            note!("{text}");
        }
    }

    pub fn finish(&self) {
        for (bar, _, _) in self.jobs.lock().expect("bars").iter() {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }
    /// Each task's selecting metric among `points` of the splits `split` keeps, as
    /// `accuracy digits.val 0.912` (with the split) or `accuracy digits 0.912`; consecutive
    /// points of one metric share its name.
    fn selected(&self, points: &[MetricPoint], split: impl Fn(&str) -> bool, with_split: bool) -> Vec<String> {
        let mut last_metric = "";
        let chosen =
            points.iter().filter(|p| split(&p.key.split) && p.key.metric == self.selection.metric_for(&p.key.task));
        chosen
            .map(|p| {
                let name = if with_split { format!("{}.{}", p.key.task, p.key.split) } else { p.key.task.clone() };
                let metric = if p.key.metric == last_metric { String::new() } else { format!("{} ", p.key.metric) };
                last_metric = &p.key.metric;
                format!("{metric}{name} {:.3}", p.value)
            })
            .collect()
    }
}

impl SweepEvents for Progress {
    fn planned(&self, plan: &Plan, pending: &[usize], recovered: &[StaleRun]) {
        for stale in recovered {
            let trial = plan.trials.iter().find(|t| t.key == stale.trial_key);
            let label = trial.map_or_else(|| format!("run {}", stale.run.0), |t| t.label());
            self.line(format!("{label}: marked interrupted ({}); it is trained again", stale.reason));
        }
        let skipped = plan.trials.len() - pending.len();
        *self.total.lock().expect("total") = pending.len();
        self.overall.set_length(pending.len() as u64);
        self.line(format!(
            "experiment {:?}: {} trials planned, {} already done, {} to run",
            plan.experiment,
            plan.trials.len(),
            skipped,
            pending.len()
        ));
    }

    fn searching(&self, trials: u64) {
        *self.total.lock().expect("total") += trials as usize;
        self.overall.set_length(self.overall.length().unwrap_or(0) + trials);
        self.line(format!("[search]: {trials} trials of its budget left to propose and run"));
    }

    fn left_to_other(&self, _job: usize, trial: &Trial, why: &str) {
        let mut total = self.total.lock().expect("total");
        *total = total.saturating_sub(1);
        drop(total);
        self.overall.set_length(self.overall.length().unwrap_or(1).saturating_sub(1));
        self.line(format!("{}: {why}; left to it", trial.label()));
    }

    fn trial_started(&self, job: usize, trial: &Trial, n_parameters: usize) {
        let mut jobs = self.jobs.lock().expect("bars");
        let (bar, started, parameters) = &mut jobs[job];
        *started = Instant::now();
        *parameters = n_parameters;
        bar.reset();
        // A program of the user's own (`[trainer]`) reports no parameter count.
        match n_parameters {
            0 => bar.set_prefix(trial.label()),
            n => bar.set_prefix(format!("{} ({n} params)", trial.label())),
        }
    }

    fn step(&self, job: usize, trial: &Trial, epoch: u32, step: usize, steps_per_epoch: usize) {
        let jobs = self.jobs.lock().expect("bars");
        let bar = &jobs[job].0;
        let epochs = trial.settings.epochs as u64;
        bar.set_length(epochs * steps_per_epoch as u64);
        bar.set_position((epoch as u64 - 1) * steps_per_epoch as u64 + step as u64);
        bar.set_message(format!("epoch {epoch}/{epochs}"));
    }

    fn epoch(&self, job: usize, trial: &Trial, epoch: u32, points: &[MetricPoint]) {
        // On a terminal the bars show this; in a log, one line per epoch shows a long trial moving.
        if self.terminal {
            return;
        }
        let elapsed = self.jobs.lock().expect("bars")[job].1.elapsed();
        let scores = self.selected(points, |split| split != "train", true);
        self.line(format!(
            "    {} epoch {epoch}/{} ({:.0}s): {}",
            trial.label(),
            trial.settings.epochs,
            elapsed.as_secs_f64(),
            scores.join(", ")
        ));
    }

    fn trial_finished(&self, job: usize, trial: &Trial, outcome: &TrialOutcome) {
        let (elapsed, n_parameters) = {
            let mut jobs = self.jobs.lock().expect("bars");
            // Taken, so that a next trial failing before its network is built shows none.
            (jobs[job].1.elapsed(), std::mem::take(&mut jobs[job].2))
        };
        let done = {
            let mut n = self.n_tasks_trained.lock().expect("count");
            *n += 1;
            *n
        };
        let total = *self.total.lock().expect("total");
        self.overall.inc(1);
        let detail = match outcome.status {
            // The run's result, as `mtl ls` and the summary show it.
            RunStatus::Done => {
                let test = self.selected(&outcome.result_points, |split| split == "test", false).join(", ");
                match outcome.result_epoch {
                    Some(epoch) => format!("done, test {test} (epoch {epoch}/{})", trial.settings.epochs),
                    None => format!("done, test {test}"),
                }
            }
            RunStatus::Interrupted => format!("interrupted ({})", outcome.error.as_deref().unwrap_or("Ctrl-C")),
            RunStatus::Pruned => outcome.error.clone().unwrap_or_else(|| "pruned".into()),
            _ => format!("FAILED: {}", outcome.error.as_deref().unwrap_or("unknown error")),
        };
        let time = elapsed.as_secs_f64();
        let size = if n_parameters > 0 { format!("{n_parameters} params, ") } else { String::new() };
        let attempt = match (outcome.attempt, &outcome.recovered) {
            (_, Some(reason)) => format!(", attempt {}: the last was interrupted, {reason}", outcome.attempt),
            (1, None) => String::new(),
            (n, None) => format!(", attempt {n}"),
        };
        self.line(format!("[{done}/{total}] {} ({size}{time:.1}s{attempt}): {detail}", trial.label()));
    }
}
