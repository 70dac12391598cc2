//! Optimisation: the update rules ([`Optimizer`]: SGD, Adam, AdamW, each one fused pass
//! per variable), gradient clipping by global norm ([`clip_grad_norm`]), per-epoch
//! learning-rate schedules ([`ScheduleSpec`], [`Schedule`]) and early stopping
//! ([`EarlyStopping`]). [`OptimizerSpec`] and [`ScheduleSpec`] are the plain, validated
//! descriptions an experiment file names; the rest holds one trial's state.
//!
//! Every rule follows PyTorch's documented update, checked against
//! `benches/reference/optim_reference.py`. The updates are element-wise and the clipping
//! norm is summed in a fixed order, so no result depends on the thread count.
//!
//! ```no_run
//! # fn demo(vars: Vec<candle_core::Var>, loss: &candle_core::Tensor) -> candle_core::Result<()> {
//! use mtl_runner::optim::{clip_grad_norm, Optimizer, OptimizerSpec, Schedule, ScheduleSpec};
//! let spec = OptimizerSpec { momentum: 0.9, nesterov: true, lr: 0.1, ..OptimizerSpec::from_name("sgd").unwrap() };
//! let mut optimizer = Optimizer::new(vars.clone(), &spec)?;
//! let schedule = Schedule::new(ScheduleSpec::Cosine { t_max: 10, eta_min: 0.0, warmup_epochs: 0 }, spec.lr);
//! optimizer.set_learning_rate(schedule.lr_at(1));
//! let mut grads = loss.backward()?;
//! clip_grad_norm(&mut grads, &vars, 1.0)?;
//! optimizer.step(&grads)?;
//! # Ok(()) }
//! ```

mod adam;
mod adamw;
mod clip;
mod early_stopping;
pub(crate) mod fused;
mod schedule;
mod sgd;
mod spec;
#[cfg(test)]
mod tests;

pub use adam::FusedAdam;
pub use adamw::FusedAdamW;
pub use clip::clip_grad_norm;
pub use early_stopping::{EarlyStopper, EarlyStopping, StoppingDecision};
pub use schedule::{Plateau, PlateauSpec, Schedule, ScheduleSpec, MAX_MILESTONES};
pub use sgd::{FusedSgd, SgdParams};
pub use spec::{OptimizerKind, OptimizerSpec};

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Whether a validation metric should fall or rise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

impl Mode {
    /// `min` or `max`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<Mode> {
        [Mode::Min, Mode::Max].into_iter().find(|m| m.name() == name)
    }
}

/// One of the update rules over f32 variables.
pub enum Optimizer {
    /// `torch.optim.SGD`.
    Sgd(FusedSgd),
    /// `torch.optim.Adam` (L2 weight decay).
    Adam(FusedAdam),
    /// `torch.optim.AdamW` (decoupled weight decay).
    AdamW(FusedAdamW),
}

/// Forwards a call to whichever rule `self` holds.
macro_rules! each {
    ($self:expr, $rule:ident => $call:expr) => {
        match $self {
            Optimizer::Sgd($rule) => $call,
            Optimizer::Adam($rule) => $call,
            Optimizer::AdamW($rule) => $call,
        }
    };
}

impl Optimizer {
    /// The rule `spec` describes, for `vars` (f32); an invalid `spec` is an error naming the setting.
    pub fn new(vars: Vec<Var>, spec: &OptimizerSpec) -> Result<Optimizer> {
        spec.validate().map_err(candle_core::Error::Msg)?;
        Ok(match spec.kind {
            OptimizerKind::Sgd => Optimizer::Sgd(FusedSgd::new(vars, spec.sgd_params())?),
            OptimizerKind::Adam => Optimizer::Adam(FusedAdam::new(vars, spec.adam_params())?),
            OptimizerKind::AdamW => Optimizer::AdamW(FusedAdamW::new(vars, spec.adam_params())?),
        })
    }

    /// One update from `grads`; variables without a gradient are left alone, and a
    /// non-finite gradient stops the update at its variable (see [`Optimizer::non_finite_gradient`]).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        each!(self, rule => rule.step(grads))
    }

    /// Back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        each!(self, rule => rule.backward_step(loss))
    }

    /// Sets the learning rate of the following steps (state such as moments is kept).
    pub fn set_learning_rate(&mut self, lr: f64) {
        each!(self, rule => rule.set_learning_rate(lr))
    }

    /// The learning rate the next step uses.
    pub fn learning_rate(&self) -> f64 {
        each!(self, rule => rule.learning_rate())
    }

    /// After a step that met a NaN or infinite gradient: the index of its variable (in the
    /// order given to [`Optimizer::new`]) and the offending value.
    pub fn non_finite_gradient(&self) -> Option<(usize, f32)> {
        each!(self, rule => rule.non_finite_gradient())
    }
}
