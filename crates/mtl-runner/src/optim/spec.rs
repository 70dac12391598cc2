//! The optimiser as the experiment file names it: [`OptimizerSpec`], plain and validated.

use candle_nn::ParamsAdamW;

use super::sgd::SgdParams;

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptimizerKind {
    /// SGD with optional (Nesterov) momentum and L2 weight decay (`torch.optim.SGD`).
    Sgd,
    /// Adam with L2 weight decay added to the gradient (`torch.optim.Adam`).
    Adam,
    /// Adam with decoupled weight decay (`torch.optim.AdamW`).
    AdamW,
}

impl OptimizerKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [OptimizerKind; 3] = [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW];

    /// The name in experiment files: `sgd`, `adam`, `adamw`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<OptimizerKind> {
        OptimizerKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// An optimiser with its settings; fields a kind does not use are ignored by it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerSpec {
    /// The update rule.
    pub kind: OptimizerKind,
    /// Learning rate (the base rate a schedule scales).
    pub lr: f64,
    /// SGD: momentum factor μ in [0, 1).
    pub momentum: f64,
    /// SGD: dampening τ in [0, 1] of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// SGD: Nesterov momentum (needs momentum > 0 and dampening 0, as in PyTorch).
    pub nesterov: bool,
    /// L2 penalty (SGD, Adam) or decoupled decay rate (AdamW).
    pub weight_decay: f64,
    /// Adam, AdamW: the moments' decay rates (β1, β2), each in [0, 1).
    pub betas: (f64, f64),
    /// Adam, AdamW: ε added to √v̂.
    pub eps: f64,
}

impl OptimizerSpec {
    /// `kind` with PyTorch's defaults (lr 0.001; AdamW's weight decay 0.01, the others' 0).
    pub fn default_for(kind: OptimizerKind) -> OptimizerSpec {
        OptimizerSpec {
            kind,
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: if kind == OptimizerKind::AdamW { 0.01 } else { 0.0 },
            betas: (0.9, 0.999),
            eps: 1e-8,
        }
    }

    /// The kind's name (`sgd`, `adam`, `adamw`).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The kind called `name` with its defaults ([`OptimizerSpec::default_for`]).
    pub fn from_name(name: &str) -> Option<OptimizerSpec> {
        OptimizerKind::from_name(name).map(OptimizerSpec::default_for)
    }

    /// Whether the settings are usable; the message names the one that is not.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("{name}: the learning rate must be a finite number > 0, got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!("{name}: weight_decay must be a finite number ≥ 0, got {}", self.weight_decay));
        }
        match self.kind {
            OptimizerKind::Sgd => {
                if !(0.0..1.0).contains(&self.momentum) {
                    return Err(format!("sgd: momentum must be in [0, 1), got {}", self.momentum));
                }
                if !(0.0..=1.0).contains(&self.dampening) {
                    return Err(format!("sgd: dampening must be in [0, 1], got {}", self.dampening));
                }
                if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
                    return Err(format!(
                        "sgd: nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}",
                        self.momentum, self.dampening
                    ));
                }
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                for (key, beta) in [("beta1", self.betas.0), ("beta2", self.betas.1)] {
                    if !(0.0..1.0).contains(&beta) {
                        return Err(format!("{name}: {key} must be in [0, 1), got {beta}"));
                    }
                }
                if !(self.eps.is_finite() && self.eps > 0.0) {
                    return Err(format!("{name}: eps must be a finite number > 0, got {}", self.eps));
                }
            }
        }
        Ok(())
    }

    /// The settings the kind uses, under their store names (`<kind>_<setting>`; booleans as 0 or 1).
    pub fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        match self.kind {
            OptimizerKind::Sgd => vec![
                ("sgd_lr", self.lr),
                ("sgd_momentum", self.momentum),
                ("sgd_dampening", self.dampening),
                ("sgd_nesterov", f64::from(u8::from(self.nesterov))),
                ("sgd_weight_decay", self.weight_decay),
            ],
            OptimizerKind::Adam => vec![
                ("adam_lr", self.lr),
                ("adam_beta1", self.betas.0),
                ("adam_beta2", self.betas.1),
                ("adam_eps", self.eps),
                ("adam_weight_decay", self.weight_decay),
            ],
            OptimizerKind::AdamW => vec![
                ("adamw_lr", self.lr),
                ("adamw_beta1", self.betas.0),
                ("adamw_beta2", self.betas.1),
                ("adamw_eps", self.eps),
                ("adamw_weight_decay", self.weight_decay),
            ],
        }
    }

    /// SGD's settings.
    pub(super) fn sgd_params(&self) -> SgdParams {
        SgdParams {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
        }
    }

    /// Adam's and AdamW's settings.
    pub(super) fn adam_params(&self) -> ParamsAdamW {
        let (beta1, beta2) = self.betas;
        ParamsAdamW { lr: self.lr, beta1, beta2, eps: self.eps, weight_decay: self.weight_decay }
    }
}
