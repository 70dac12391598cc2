//! Training diagnostics: the task weights a method set, each task's gradient
//! norm on the shared parameters, and the pairwise cosines of those gradients
//! (negative: the tasks conflict), averaged over logging windows.
//!
//! Gradient-level methods compute per-task gradients every step, so their
//! gradient diagnostics are free; loss-level methods pay for extra backward
//! passes on every `measure_every`-th step (the update itself is unchanged,
//! so diagnostics never change the numbers a trial produces).

use std::collections::BTreeMap;

use mtl_store::DiagnosticPoint;

use crate::gradients::norms_and_cosines;

/// When diagnostics are measured and logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiagnosticsSettings {
    /// Log window in optimiser steps; 0 = one window per epoch.
    pub log_every: u64,
    /// Loss-level methods: measure gradients every this many steps; 0 = never.
    pub measure_every: u64,
}

impl Default for DiagnosticsSettings {
    fn default() -> Self {
        DiagnosticsSettings { log_every: 0, measure_every: 10 }
    }
}

/// Sums of the diagnostics of the current window.
pub(crate) struct Diagnostics {
    settings: DiagnosticsSettings,
    task_names: Vec<String>,
    /// (name, task, other) → (sum, count).
    sums: BTreeMap<(&'static str, usize, Option<usize>), (f64, u64)>,
}

impl Diagnostics {
    pub(crate) fn new(settings: DiagnosticsSettings, task_names: Vec<String>) -> Diagnostics {
        Diagnostics { settings, task_names, sums: BTreeMap::new() }
    }

    /// Whether a loss-level method measures gradients at this (1-based) step.
    pub(crate) fn measures_at(&self, global_step: u64) -> bool {
        self.settings.measure_every > 0 && global_step % self.settings.measure_every == 0
    }

    fn add(&mut self, name: &'static str, task: usize, other: Option<usize>, value: f64) {
        let entry = self.sums.entry((name, task, other)).or_insert((0.0, 0));
        entry.0 += value;
        entry.1 += 1;
    }

    /// The weights the method gave the tasks this step.
    pub(crate) fn record_weights(&mut self, weights: &[f64]) {
        for (task, &weight) in weights.iter().enumerate() {
            self.add("weight", task, None, weight);
        }
    }

    /// Per-task gradients of the shared parameters, flattened.
    pub(crate) fn record_gradients(&mut self, flat: &[Vec<f32>]) {
        let (norms, cosines) = norms_and_cosines(flat);
        for (task, &norm) in norms.iter().enumerate() {
            self.add("grad_norm", task, None, norm);
        }
        for (i, row) in cosines.iter().enumerate() {
            for (j, &cosine) in row.iter().enumerate().skip(i + 1) {
                self.add("grad_cosine", i, Some(j), cosine);
            }
        }
    }

    /// After a step: the window's averages when it ends here (and a new window starts), else
    /// nothing. The last step of training ends the last window, however short.
    pub(crate) fn window(
        &mut self,
        global_step: u64,
        end_of_epoch: bool,
        last_step: bool,
    ) -> Option<Vec<DiagnosticPoint>> {
        let ends = last_step
            || match self.settings.log_every {
                0 => end_of_epoch,
                every => global_step % every == 0,
            };
        if !ends || self.sums.is_empty() {
            return None;
        }
        let points = std::mem::take(&mut self.sums)
            .into_iter()
            .map(|((name, task, other), (sum, count))| DiagnosticPoint {
                name: name.to_string(),
                task: self.task_names[task].clone(),
                other: other.map(|o| self.task_names[o].clone()).unwrap_or_default(),
                value: sum / count as f64,
            })
            .collect();
        Some(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_average_what_was_recorded() {
        let settings = DiagnosticsSettings { log_every: 2, measure_every: 3 };
        let mut diagnostics = Diagnostics::new(settings, vec!["a".into(), "b".into()]);
        assert!(!diagnostics.measures_at(2) && diagnostics.measures_at(3));
        // Step 1: weights [1, 3], gradients [3, 4] and [-4, 3] (norms 5, cosine 0).
        diagnostics.record_weights(&[1.0, 3.0]);
        diagnostics.record_gradients(&[vec![3.0, 4.0], vec![-4.0, 3.0]]);
        assert!(diagnostics.window(1, false, false).is_none(), "the window is 2 steps");
        // Step 2: weights [1, 1], gradients [3, 4] and [-3, -4] (norms 5, cosine -1).
        diagnostics.record_weights(&[1.0, 1.0]);
        diagnostics.record_gradients(&[vec![3.0, 4.0], vec![-3.0, -4.0]]);
        let points = diagnostics.window(2, false, false).expect("window ends");
        let value = |name: &str, task: &str, other: &str| {
            points.iter().find(|p| p.name == name && p.task == task && p.other == other).expect("point").value
        };
        // Means: weight of b (3 + 1)/2 = 2; cosine (0 + -1)/2 = -0.5; norm of a 5.
        assert_eq!(value("weight", "b", ""), 2.0);
        assert_eq!(value("grad_cosine", "a", "b"), -0.5);
        assert_eq!(value("grad_norm", "a", ""), 5.0);
        assert_eq!(points.len(), 5);
        assert!(diagnostics.window(4, true, false).is_none(), "nothing recorded since");
        // Step 5, the last of training: its window (one step) is logged, though shorter than 2.
        diagnostics.record_weights(&[1.0, 4.0]);
        let last = diagnostics.window(5, true, true).expect("the last window is logged");
        assert!(last.iter().any(|p| p.name == "weight" && p.task == "b" && p.value == 4.0), "{last:?}");
    }
}
