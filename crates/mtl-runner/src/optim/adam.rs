//! Adam (Kingma & Ba 2015) with L2 weight decay, with PyTorch's `torch.optim.Adam` update,
//! as one pass over each variable: `g ← g + λ·θ`, `m ← β1·m + (1−β1)·g`,
//! `v ← β2·v + (1−β2)·g²`, `θ ← θ − lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β1^t)`,
//! `v̂ = v/(1−β2^t)`; as in PyTorch, `t` counts each variable's own updates.
//! For decoupled decay use [`super::FusedAdamW`].

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::ParamsAdamW;

use super::fused::{self, Slot};

/// Adam over f32 variables; `ParamsAdamW::weight_decay` is the L2 penalty added to the gradient.
pub struct FusedAdam {
    params: ParamsAdamW,
    /// Each variable with its first and second moments.
    slots: Vec<Slot>,
    /// Updates taken by each variable.
    steps: Vec<i32>,
    non_finite: Option<(usize, f32)>,
}

impl FusedAdam {
    /// An optimiser for `vars` (f32).
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<FusedAdam> {
        let slots = fused::slots(vars, 2, "FusedAdam")?;
        let steps = vec![0; slots.len()];
        Ok(FusedAdam { params, slots, steps, non_finite: None })
    }

    /// One update from `grads`; variables without a gradient are left alone. A gradient
    /// with a NaN or infinite element stops the update at its variable: see
    /// [`FusedAdam::non_finite_gradient`].
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let p = &self.params;
        let (beta1, beta2) = (p.beta1 as f32, p.beta2 as f32);
        let (lr, eps, weight_decay) = (p.lr as f32, p.eps as f32, p.weight_decay as f32);
        let non_finite = fused::each_gradient(&mut self.slots, grads, |slot_idx, slot, grad| {
            self.steps[slot_idx] += 1;
            let t = self.steps[slot_idx];
            let scale_m = (1.0 / (1.0 - p.beta1.powi(t))) as f32;
            let scale_v = (1.0 / (1.0 - p.beta2.powi(t))) as f32;
            let kernel = |theta: &mut [f32], buffers: &mut [&mut [f32]], g: &[f32]| {
                let [m, v] = buffers else { unreachable!("Adam keeps two moments") };
                for (((theta, m), v), &g) in theta.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                    let g = g + weight_decay * *theta;
                    *m = *m * beta1 + g * (1.0 - beta1);
                    *v = *v * beta2 + g * g * (1.0 - beta2);
                    let adjusted = (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
                    *theta -= adjusted * lr;
                }
            };
            let on_device = |theta: &Tensor, buffers: &mut [Tensor], g: &Tensor| -> Result<Tensor> {
                let g = (g + (theta * f64::from(weight_decay))?)?;
                let adjusted = fused::adam_direction(buffers, &g, (beta1, beta2), (scale_m, scale_v), eps)?;
                theta - (adjusted * f64::from(lr))?
            };
            fused::apply(slot, grad, kernel, on_device)
        })?;
        if non_finite.is_some() {
            self.non_finite = non_finite;
        }
        Ok(())
    }

    /// After a step that met a NaN or infinite gradient: the index of its variable (in the
    /// order given to [`FusedAdam::new`]) and the offending value.
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

    /// Sets the learning rate of the following steps (the moments are kept).
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }
}
