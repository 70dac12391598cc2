//! Learning-rate schedules, stepped once per epoch: [`ScheduleSpec`] (what the experiment
//! file names), [`Schedule`] (one trial's rates) and [`Plateau`] (`ReduceLROnPlateau`).
//!
//! Epochs are 1-based, as everywhere in mtl-lab: epoch `n` trains with the rate PyTorch's
//! scheduler gives after `n − 1` calls of `scheduler.step()`, writing `e = n − 1`:
//! - `step`: `lr·γ^⌊e/step_size⌋` (`StepLR`);
//! - `multi-step`: `lr·γ^(number of milestones ≤ e)` (`MultiStepLR`: a milestone m lowers
//!   the rate after m epochs);
//! - `cosine`: with `W = warmup_epochs`, `lr·(e+1)/(W+1)` for `e < W` (`LinearLR` from
//!   `1/(W+1)`), then `η_min + (lr − η_min)·(1 + cos(π·(e−W)/t_max))/2`, the closed form
//!   of `CosineAnnealingLR` (it rises again past `t_max`, as PyTorch's does, so set
//!   `t_max = epochs − W`); PyTorch's `SequentialLR` of the two, milestone `W`;
//! - `reduce-on-plateau`: [`Plateau`], fed each epoch's validation metric.
//!
//! ```
//! use mtl_runner::optim::{Schedule, ScheduleSpec};
//! let mut schedule = Schedule::new(ScheduleSpec::Step { step_size: 2, gamma: 0.5 }, 0.1);
//! assert_eq!((1..=5).map(|epoch| schedule.lr_at(epoch)).collect::<Vec<_>>(), [0.1, 0.1, 0.05, 0.05, 0.025]);
//! assert_eq!(schedule.observe(5, 0.3), 0.025); // the rate of epoch 6; only plateau reads the metric
//! ```

use super::Mode;

/// The most milestones a `multi-step` schedule may have (each is stored under its own name).
pub const MAX_MILESTONES: usize = 16;

const MILESTONE_NAMES: [&str; MAX_MILESTONES] = [
    "multi_step_milestone_1",
    "multi_step_milestone_2",
    "multi_step_milestone_3",
    "multi_step_milestone_4",
    "multi_step_milestone_5",
    "multi_step_milestone_6",
    "multi_step_milestone_7",
    "multi_step_milestone_8",
    "multi_step_milestone_9",
    "multi_step_milestone_10",
    "multi_step_milestone_11",
    "multi_step_milestone_12",
    "multi_step_milestone_13",
    "multi_step_milestone_14",
    "multi_step_milestone_15",
    "multi_step_milestone_16",
];

/// `ReduceLROnPlateau`'s settings (relative threshold, as PyTorch's default `threshold_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauSpec {
    /// Whether the metric should fall (a loss) or rise (an accuracy).
    pub mode: Mode,
    /// The rate is multiplied by this on a plateau, in (0, 1).
    pub factor: f64,
    /// Epochs without improvement tolerated; the next one lowers the rate.
    pub patience: u32,
    /// Relative improvement needed: below `best·(1 − threshold)` (min) or above `best·(1 + threshold)` (max).
    pub threshold: f64,
    /// Epochs after a reduction during which bad epochs are not counted.
    pub cooldown: u32,
    /// The rate never goes below this.
    pub min_lr: f64,
}

impl Default for PlateauSpec {
    /// PyTorch's defaults.
    fn default() -> PlateauSpec {
        PlateauSpec { mode: Mode::Min, factor: 0.1, patience: 10, threshold: 1e-4, cooldown: 0, min_lr: 0.0 }
    }
}

/// A learning-rate schedule as the experiment file names it.
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleSpec {
    /// The base rate throughout.
    Constant,
    /// Multiplied by `gamma` every `step_size` epochs.
    Step {
        /// Epochs between reductions (≥ 1).
        step_size: u32,
        /// Factor of each reduction.
        gamma: f64,
    },
    /// Multiplied by `gamma` after each milestone.
    MultiStep {
        /// Epoch counts after which the rate drops, strictly increasing, each ≥ 1.
        milestones: Vec<u32>,
        /// Factor of each reduction.
        gamma: f64,
    },
    /// Linear warm-up, then cosine annealing from the base rate to `eta_min` over `t_max` epochs.
    Cosine {
        /// Epochs of the cosine half-period (after the warm-up), ≥ 1.
        t_max: u32,
        /// The rate at the end of the half-period.
        eta_min: f64,
        /// Epochs of linear warm-up before the cosine (0: none).
        warmup_epochs: u32,
    },
    /// Lowered when a validation metric stops improving.
    ReduceOnPlateau(PlateauSpec),
}

impl ScheduleSpec {
    /// Every schedule's name.
    pub const NAMES: [&'static str; 5] = ["constant", "step", "multi-step", "cosine", "reduce-on-plateau"];

    /// The name in experiment files.
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleSpec::Constant => "constant",
            ScheduleSpec::Step { .. } => "step",
            ScheduleSpec::MultiStep { .. } => "multi-step",
            ScheduleSpec::Cosine { .. } => "cosine",
            ScheduleSpec::ReduceOnPlateau(_) => "reduce-on-plateau",
        }
    }

    /// The schedule called `name` with defaults: PyTorch's where it has them; `step_size` 1,
    /// no milestones and `t_max` 0 where it has none (which the file must then set:
    /// [`ScheduleSpec::validate`] rejects the last two).
    pub fn from_name(name: &str) -> Option<ScheduleSpec> {
        Some(match name {
            "constant" => ScheduleSpec::Constant,
            "step" => ScheduleSpec::Step { step_size: 1, gamma: 0.1 },
            "multi-step" => ScheduleSpec::MultiStep { milestones: Vec::new(), gamma: 0.1 },
            "cosine" => ScheduleSpec::Cosine { t_max: 0, eta_min: 0.0, warmup_epochs: 0 },
            "reduce-on-plateau" => ScheduleSpec::ReduceOnPlateau(PlateauSpec::default()),
            _ => return None,
        })
    }

    /// Whether the settings are usable; the message names the one that is not.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        let gamma_ok = |gamma: f64| {
            if gamma.is_finite() && gamma > 0.0 && gamma <= 1.0 {
                Ok(())
            } else {
                Err(format!("{name}: gamma must be in (0, 1], got {gamma}"))
            }
        };
        match self {
            ScheduleSpec::Constant => Ok(()),
            ScheduleSpec::Step { step_size, gamma } => {
                if *step_size == 0 {
                    return Err("step: step_size must be ≥ 1, got 0".to_string());
                }
                gamma_ok(*gamma)
            }
            ScheduleSpec::MultiStep { milestones, gamma } => {
                if milestones.is_empty() || milestones.len() > MAX_MILESTONES {
                    return Err(format!(
                        "multi-step: milestones must list 1 to {MAX_MILESTONES} epochs, got {}",
                        milestones.len()
                    ));
                }
                if milestones[0] == 0 || milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!(
                        "multi-step: milestones must be strictly increasing epochs ≥ 1, got {milestones:?}"
                    ));
                }
                gamma_ok(*gamma)
            }
            ScheduleSpec::Cosine { t_max, eta_min, .. } => {
                if *t_max == 0 {
                    return Err("cosine: t_max must be ≥ 1 (e.g. the epochs after the warm-up), got 0".to_string());
                }
                if !(eta_min.is_finite() && *eta_min >= 0.0) {
                    return Err(format!("cosine: eta_min must be a finite number ≥ 0, got {eta_min}"));
                }
                Ok(())
            }
            ScheduleSpec::ReduceOnPlateau(p) => {
                if !(p.factor > 0.0 && p.factor < 1.0) {
                    return Err(format!("reduce-on-plateau: factor must be in (0, 1), got {}", p.factor));
                }
                if !(p.threshold.is_finite() && p.threshold >= 0.0) {
                    return Err(format!(
                        "reduce-on-plateau: threshold must be a finite number ≥ 0, got {}",
                        p.threshold
                    ));
                }
                if !(p.min_lr.is_finite() && p.min_lr >= 0.0) {
                    return Err(format!("reduce-on-plateau: min_lr must be a finite number ≥ 0, got {}", p.min_lr));
                }
                Ok(())
            }
        }
    }

    /// The settings under their store names (`<schedule>_<setting>`, `-` as `_`; the mode
    /// as `reduce_on_plateau_maximize` 0 or 1); empty for `constant`.
    pub fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        match self {
            ScheduleSpec::Constant => Vec::new(),
            ScheduleSpec::Step { step_size, gamma } => {
                vec![("step_step_size", f64::from(*step_size)), ("step_gamma", *gamma)]
            }
            ScheduleSpec::MultiStep { milestones, gamma } => std::iter::once(("multi_step_gamma", *gamma))
                .chain(MILESTONE_NAMES.iter().zip(milestones).map(|(&name, &m)| (name, f64::from(m))))
                .collect(),
            ScheduleSpec::Cosine { t_max, eta_min, warmup_epochs } => vec![
                ("cosine_t_max", f64::from(*t_max)),
                ("cosine_eta_min", *eta_min),
                ("cosine_warmup_epochs", f64::from(*warmup_epochs)),
            ],
            ScheduleSpec::ReduceOnPlateau(p) => vec![
                ("reduce_on_plateau_maximize", f64::from(u8::from(p.mode == Mode::Max))),
                ("reduce_on_plateau_factor", p.factor),
                ("reduce_on_plateau_patience", f64::from(p.patience)),
                ("reduce_on_plateau_threshold", p.threshold),
                ("reduce_on_plateau_cooldown", f64::from(p.cooldown)),
                ("reduce_on_plateau_min_lr", p.min_lr),
            ],
        }
    }

    /// The closed-form rate of 1-based `epoch` from `base_lr`; `None` for reduce-on-plateau,
    /// whose rate depends on the metrics seen.
    pub fn lr_at(&self, base_lr: f64, epoch: u32) -> Option<f64> {
        let e = epoch.saturating_sub(1);
        let powi = |gamma: f64, times: usize| gamma.powi(i32::try_from(times).unwrap_or(i32::MAX));
        Some(match self {
            ScheduleSpec::Constant => base_lr,
            ScheduleSpec::Step { step_size, gamma } => base_lr * powi(*gamma, (e / (*step_size).max(1)) as usize),
            ScheduleSpec::MultiStep { milestones, gamma } => {
                base_lr * powi(*gamma, milestones.iter().filter(|&&m| m <= e).count())
            }
            ScheduleSpec::Cosine { t_max, eta_min, warmup_epochs } => {
                if e < *warmup_epochs {
                    base_lr * f64::from(e + 1) / f64::from(warmup_epochs + 1)
                } else {
                    let progress = f64::from(e - warmup_epochs) / f64::from((*t_max).max(1));
                    eta_min + (base_lr - eta_min) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
                }
            }
            ScheduleSpec::ReduceOnPlateau(_) => return None,
        })
    }
}

/// PyTorch's `ReduceLROnPlateau` (relative threshold): after more than `patience` epochs in
/// a row without a relative improvement of `threshold` over the best metric, the rate
/// becomes `max(lr·factor, min_lr)` (unchanged if that moves it by less than 1e-8), and
/// the next `cooldown` epochs count no bad epochs. A NaN metric is never an improvement.
#[derive(Clone, Debug, PartialEq)]
pub struct Plateau {
    spec: PlateauSpec,
    lr: f64,
    best: f64,
    bad_epochs: u32,
    cooldown_left: u32,
}

impl Plateau {
    /// Starts at `base_lr` with no metric seen.
    pub fn new(spec: PlateauSpec, base_lr: f64) -> Plateau {
        let best = match spec.mode {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        };
        Plateau { spec, lr: base_lr, best, bad_epochs: 0, cooldown_left: 0 }
    }

    /// Records one epoch's metric; returns the rate for the next epoch.
    pub fn observe(&mut self, metric: f64) -> f64 {
        let s = &self.spec;
        let improved = match s.mode {
            // PyTorch's `best·(1 ∓ threshold)` for a positive best; with |best| a negative
            // one (a mean that holds a negative R²) still needs to move the right way. The
            // first finite metric always improves on the start (±∞).
            _ if self.best.is_infinite() => metric.is_finite(),
            Mode::Min => metric < self.best - self.best.abs() * s.threshold,
            Mode::Max => metric > self.best + self.best.abs() * s.threshold,
        };
        if improved {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > s.patience {
            let reduced = (self.lr * s.factor).max(s.min_lr);
            if self.lr - reduced > 1e-8 {
                self.lr = reduced;
            }
            self.cooldown_left = s.cooldown;
            self.bad_epochs = 0;
        }
        self.lr
    }

    /// The current rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }
}

/// One trial's learning rates: the closed form, or the plateau state it has reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    spec: ScheduleSpec,
    base_lr: f64,
    plateau: Option<Plateau>,
}

impl Schedule {
    /// `spec` from the optimiser's base rate `base_lr`.
    pub fn new(spec: ScheduleSpec, base_lr: f64) -> Schedule {
        let plateau = match &spec {
            ScheduleSpec::ReduceOnPlateau(p) => Some(Plateau::new(*p, base_lr)),
            _ => None,
        };
        Schedule { spec, base_lr, plateau }
    }

    /// The rate of 1-based `epoch`: the closed form, or for reduce-on-plateau the rate the
    /// metrics observed so far have led to.
    pub fn lr_at(&self, epoch: u32) -> f64 {
        match &self.plateau {
            Some(plateau) => plateau.learning_rate(),
            None => self.spec.lr_at(self.base_lr, epoch).unwrap_or(self.base_lr),
        }
    }

    /// Records `epoch`'s validation `metric` (only reduce-on-plateau reads it) and returns
    /// the rate of epoch `epoch + 1`.
    pub fn observe(&mut self, epoch: u32, metric: f64) -> f64 {
        if let Some(plateau) = &mut self.plateau {
            plateau.observe(metric);
        }
        self.lr_at(epoch + 1)
    }

    /// The schedule's description.
    pub fn spec(&self) -> &ScheduleSpec {
        &self.spec
    }
}
