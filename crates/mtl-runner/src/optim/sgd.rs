//! SGD with momentum, Nesterov momentum and weight decay, with PyTorch's `torch.optim.SGD`
//! update, as one pass over each variable:
//! `g ← g + λ·θ`; with momentum μ > 0, `b ← g` at a variable's first update and
//! `b ← μ·b + (1−τ)·g` after, then `g ← g + μ·b` (Nesterov) or `g ← b`; `θ ← θ − lr·g`.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::fused::{self, Slot};

/// SGD's settings, as `torch.optim.SGD` names them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdParams {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor μ (0: plain SGD, no buffer kept).
    pub momentum: f64,
    /// Dampening τ of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// Nesterov momentum (needs μ > 0 and τ = 0).
    pub nesterov: bool,
    /// L2 penalty λ, added to the gradient.
    pub weight_decay: f64,
}

/// SGD over f32 variables.
pub struct FusedSgd {
    params: SgdParams,
    /// Each variable with its momentum buffer (none without momentum).
    slots: Vec<Slot>,
    /// Whether each variable's momentum buffer holds a gradient yet.
    started: Vec<bool>,
    non_finite: Option<(usize, f32)>,
}

impl FusedSgd {
    /// An optimiser for `vars` (f32).
    pub fn new(vars: Vec<Var>, params: SgdParams) -> Result<FusedSgd> {
        let n_buffers = usize::from(params.momentum != 0.0);
        let slots = fused::slots(vars, n_buffers, "FusedSgd")?;
        let started = vec![false; slots.len()];
        Ok(FusedSgd { params, slots, started, non_finite: None })
    }

    /// One update from `grads`; variables without a gradient are left alone. A gradient
    /// with a NaN or infinite element stops the update at its variable: see
    /// [`FusedSgd::non_finite_gradient`].
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let p = self.params;
        let (lr, momentum, weight_decay) = (p.lr as f32, p.momentum as f32, p.weight_decay as f32);
        let kept = (1.0 - p.dampening) as f32;
        let non_finite = fused::each_gradient(&mut self.slots, grads, |slot_idx, slot, grad| {
            let first = !std::mem::replace(&mut self.started[slot_idx], true);
            let on_device = |theta: &Tensor, buffers: &mut [Tensor], g: &Tensor| -> Result<Tensor> {
                let g = (g + (theta * f64::from(weight_decay))?)?;
                let direction = match buffers {
                    [] => g,
                    [b] => {
                        *b = if first { g.clone() } else { ((&*b * f64::from(momentum))? + (&g * f64::from(kept))?)? };
                        if p.nesterov {
                            (g + (&*b * f64::from(momentum))?)?
                        } else {
                            b.clone()
                        }
                    }
                    _ => candle_core::bail!("SGD keeps at most one buffer"),
                };
                theta - (direction * f64::from(lr))?
            };
            let kernel = |theta: &mut [f32], buffers: &mut [&mut [f32]], g: &[f32]| match buffers {
                [] => {
                    for (theta, &g) in theta.iter_mut().zip(g) {
                        *theta -= lr * (g + weight_decay * *theta);
                    }
                }
                [b] => {
                    for ((theta, b), &g) in theta.iter_mut().zip(b.iter_mut()).zip(g) {
                        let g = g + weight_decay * *theta;
                        *b = if first { g } else { momentum * *b + kept * g };
                        let direction = if p.nesterov { g + momentum * *b } else { *b };
                        *theta -= lr * direction;
                    }
                }
                _ => unreachable!("SGD keeps at most one buffer"),
            };
            fused::apply(slot, grad, kernel, on_device)
        })?;
        if non_finite.is_some() {
            self.non_finite = non_finite;
        }
        Ok(())
    }

    /// After a step that met a NaN or infinite gradient: the index of its variable (in the
    /// order given to [`FusedSgd::new`]) and the offending value.
    pub fn non_finite_gradient(&self) -> Option<(usize, f32)> {
        self.non_finite
    }

    /// Back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        self.step(&loss.backward()?)
    }

    /// The learning rate the next step uses.
    pub fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    /// Sets the learning rate of the following steps (the momentum buffers are kept).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }
}
