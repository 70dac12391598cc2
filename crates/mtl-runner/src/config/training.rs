//! `[optimizer]`, `[schedule]` and `[early_stopping]`: the training controls, validated
//! into `mtl_runner::optim`'s specs. Each message names the key it is about.

use super::entries::{EarlyStoppingEntry, OptimizerEntry, ScheduleEntry};
use super::{Checker, ConfigError, Key};
use crate::optim::{EarlyStopping, Mode, OptimizerKind, OptimizerSpec, PlateauSpec, ScheduleSpec};

/// The optimiser and the clipping norm.
pub(super) struct Optimization {
    pub(super) optimizer: OptimizerSpec,
    pub(super) clip_norm: Option<f64>,
}

impl Checker<'_> {
    /// `top_weight_decay`: the older top-level `weight_decay` key.
    pub(super) fn optimization(
        &self,
        entry: &OptimizerEntry,
        top_weight_decay: Option<f64>,
    ) -> Result<Optimization, ConfigError> {
        let at = |key: &'static str| [Key("optimizer"), Key(key)];
        let name = entry.name.as_deref().unwrap_or("adamw");
        let Some(kind) = OptimizerKind::from_name(name) else {
            let names: Vec<&str> = OptimizerKind::ALL.iter().map(|k| k.name()).collect();
            return self
                .fail(&at("name"), format!("unknown optimizer \"{name}\"; expected one of {}", names.join(", ")));
        };
        // The top-level key came first; one place only.
        let weight_decay = match (top_weight_decay, entry.weight_decay) {
            (Some(_), Some(_)) => {
                return self.fail(&[Key("weight_decay")], "weight_decay is given twice; keep optimizer.weight_decay")
            }
            (top, inner) => top.or(inner).unwrap_or(0.0),
        };
        let sgd_only = [("momentum", entry.momentum.is_some()), ("dampening", entry.dampening.is_some())];
        let adam_only =
            [("beta1", entry.beta1.is_some()), ("beta2", entry.beta2.is_some()), ("eps", entry.eps.is_some())];
        let (unused, owner) = match kind {
            OptimizerKind::Sgd => (&adam_only[..], "adam and adamw"),
            _ => (&sgd_only[..], "sgd"),
        };
        if let Some((key, _)) = unused.iter().find(|(_, given)| *given) {
            self.fail(&at(key), format!("{key} is a setting of {owner}, not of {name}"))?;
        }
        if entry.nesterov.is_some() && kind != OptimizerKind::Sgd {
            self.fail(&at("nesterov"), format!("nesterov is a setting of sgd, not of {name}"))?;
        }
        let defaults = OptimizerSpec::default_for(kind);
        let optimizer = OptimizerSpec {
            kind,
            lr: defaults.lr,
            momentum: entry.momentum.unwrap_or(defaults.momentum),
            dampening: entry.dampening.unwrap_or(defaults.dampening),
            nesterov: entry.nesterov.unwrap_or(defaults.nesterov),
            weight_decay,
            betas: (entry.beta1.unwrap_or(defaults.betas.0), entry.beta2.unwrap_or(defaults.betas.1)),
            eps: entry.eps.unwrap_or(defaults.eps),
        };
        if let Err(message) = optimizer.validate() {
            // The message starts with the setting's name after "<optimizer>: ".
            let key = ["weight_decay", "momentum", "dampening", "nesterov", "beta1", "beta2", "eps"]
                .into_iter()
                .find(|key| message.contains(&format!(": {key} ")) || message.contains(&format!(": {key} must")))
                .unwrap_or("name");
            if key == "weight_decay" && top_weight_decay.is_some() {
                self.fail(&[Key("weight_decay")], message)?;
            } else {
                self.fail(&at(key), message)?;
            }
        }
        if let Some(norm) = entry.clip_norm {
            if !(norm.is_finite() && norm > 0.0) {
                self.fail(
                    &at("clip_norm"),
                    format!("{norm} must be a finite number > 0 (leave it out for no clipping)"),
                )?;
            }
        }
        Ok(Optimization { optimizer, clip_norm: entry.clip_norm })
    }

    pub(super) fn schedule(&self, entry: &ScheduleEntry, epochs: u32) -> Result<ScheduleSpec, ConfigError> {
        let at = |key: &'static str| [Key("schedule"), Key(key)];
        let name = entry.name.as_deref().unwrap_or("constant");
        let Some(defaults) = ScheduleSpec::from_name(name) else {
            let message = format!("unknown schedule \"{name}\"; expected one of {}", ScheduleSpec::NAMES.join(", "));
            return self.fail(&at("name"), message);
        };
        let given = [
            ("step_size", entry.step_size.is_some()),
            ("gamma", entry.gamma.is_some()),
            ("milestones", entry.milestones.is_some()),
            ("t_max", entry.t_max.is_some()),
            ("eta_min", entry.eta_min.is_some()),
            ("warmup_epochs", entry.warmup_epochs.is_some()),
            ("factor", entry.factor.is_some()),
            ("patience", entry.patience.is_some()),
            ("threshold", entry.threshold.is_some()),
            ("cooldown", entry.cooldown.is_some()),
            ("min_lr", entry.min_lr.is_some()),
        ];
        let takes: &[&str] = match defaults {
            ScheduleSpec::Constant => &[],
            ScheduleSpec::Step { .. } => &["step_size", "gamma"],
            ScheduleSpec::MultiStep { .. } => &["milestones", "gamma"],
            ScheduleSpec::Cosine { .. } => &["t_max", "eta_min", "warmup_epochs"],
            ScheduleSpec::ReduceOnPlateau(_) => &["factor", "patience", "threshold", "cooldown", "min_lr"],
        };
        if let Some((key, _)) = given.iter().find(|(key, given)| *given && !takes.contains(key)) {
            let takes = if takes.is_empty() { "no settings".to_string() } else { takes.join(", ") };
            self.fail(&at(key), format!("the {name} schedule has no setting {key}; it takes {takes}"))?;
        }
        let spec = match defaults {
            ScheduleSpec::Constant => ScheduleSpec::Constant,
            ScheduleSpec::Step { step_size, gamma } => ScheduleSpec::Step {
                step_size: entry.step_size.unwrap_or(step_size),
                gamma: entry.gamma.unwrap_or(gamma),
            },
            ScheduleSpec::MultiStep { gamma, .. } => ScheduleSpec::MultiStep {
                milestones: entry.milestones.clone().unwrap_or_default(),
                gamma: entry.gamma.unwrap_or(gamma),
            },
            ScheduleSpec::Cosine { eta_min, .. } => {
                let warmup_epochs = entry.warmup_epochs.unwrap_or(0);
                ScheduleSpec::Cosine {
                    // By default the cosine spans the epochs after the warm-up.
                    t_max: entry.t_max.unwrap_or(epochs.saturating_sub(warmup_epochs).max(1)),
                    eta_min: entry.eta_min.unwrap_or(eta_min),
                    warmup_epochs,
                }
            }
            ScheduleSpec::ReduceOnPlateau(d) => ScheduleSpec::ReduceOnPlateau(PlateauSpec {
                // The validation score (mean over tasks of each task's selecting metric) rises.
                mode: Mode::Max,
                factor: entry.factor.unwrap_or(d.factor),
                patience: entry.patience.unwrap_or(d.patience),
                threshold: entry.threshold.unwrap_or(d.threshold),
                cooldown: entry.cooldown.unwrap_or(d.cooldown),
                min_lr: entry.min_lr.unwrap_or(d.min_lr),
            }),
        };
        if let Err(message) = spec.validate() {
            let key = takes.iter().find(|key| message.contains(&format!(" {key} "))).copied().unwrap_or("name");
            self.fail(&at(key), message)?;
        }
        Ok(spec)
    }

    pub(super) fn early_stopping(
        &self,
        entry: Option<&EarlyStoppingEntry>,
    ) -> Result<Option<EarlyStopping>, ConfigError> {
        let Some(entry) = entry else { return Ok(None) };
        let stopping =
            EarlyStopping { patience: entry.patience, mode: Mode::Max, min_delta: entry.min_delta.unwrap_or(0.0) };
        if let Err(message) = stopping.validate() {
            let key = if message.contains("patience") { "patience" } else { "min_delta" };
            self.fail(&[Key("early_stopping"), Key(key)], message)?;
        }
        Ok(Some(stopping))
    }
}
