//! Early stopping on a validation metric: [`EarlyStopping`] (the settings) and
//! [`EarlyStopper`] (one trial's state), a policy that returns decisions and does no IO.
//!
//! ```
//! use mtl_runner::optim::{EarlyStopping, Mode};
//! let mut stopper = EarlyStopping { patience: 2, mode: Mode::Min, min_delta: 0.0 }.start();
//! let stops: Vec<bool> = [1.0, 0.8, 0.9, 0.85, 0.7].iter().zip(1..).map(|(&m, e)| stopper.observe(e, m).stop).collect();
//! assert_eq!(stops, [false, false, false, true, false]);
//! assert_eq!(stopper.best(), Some((5, 0.7)));
//! ```

use super::Mode;

/// When to stop: after `patience` epochs in a row without an improvement of more than
/// `min_delta` over the best metric so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Epochs in a row without improvement that stop training (≥ 1).
    pub patience: u32,
    /// Whether the metric should fall (a loss) or rise (an accuracy).
    pub mode: Mode,
    /// The least change that counts as an improvement (absolute, ≥ 0).
    pub min_delta: f64,
}

impl EarlyStopping {
    /// Whether the settings are usable; the message names the one that is not.
    pub fn validate(&self) -> Result<(), String> {
        if self.patience == 0 {
            return Err("early stopping: patience must be ≥ 1, got 0".to_string());
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return Err(format!("early stopping: min_delta must be a finite number ≥ 0, got {}", self.min_delta));
        }
        Ok(())
    }

    /// The settings under their store names (the mode as `early_stopping_maximize` 0 or 1).
    pub fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("early_stopping_patience", f64::from(self.patience)),
            ("early_stopping_maximize", f64::from(u8::from(self.mode == Mode::Max))),
            ("early_stopping_min_delta", self.min_delta),
        ]
    }

    /// A fresh state for one trial.
    pub fn start(self) -> EarlyStopper {
        EarlyStopper { settings: self, best: None, bad_epochs: 0 }
    }
}

/// What one epoch's metric means for training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoppingDecision {
    /// This epoch is the new best (the one to keep as the result).
    pub improved: bool,
    /// Training should end after this epoch.
    pub stop: bool,
}

/// One trial's early-stopping state.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopper {
    settings: EarlyStopping,
    /// The best epoch so far and its metric.
    best: Option<(u32, f64)>,
    bad_epochs: u32,
}

impl EarlyStopper {
    /// Records `epoch`'s validation `metric`. The first finite metric is an improvement;
    /// a NaN never is.
    pub fn observe(&mut self, epoch: u32, metric: f64) -> StoppingDecision {
        let EarlyStopping { patience, mode, min_delta } = self.settings;
        let improved = !metric.is_nan()
            && match self.best {
                None => true,
                Some((_, best)) => match mode {
                    Mode::Min => metric < best - min_delta,
                    Mode::Max => metric > best + min_delta,
                },
            };
        if improved {
            self.best = Some((epoch, metric));
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        StoppingDecision { improved, stop: self.bad_epochs >= patience }
    }

    /// The best epoch so far and its metric.
    pub fn best(&self) -> Option<(u32, f64)> {
        self.best
    }
}
