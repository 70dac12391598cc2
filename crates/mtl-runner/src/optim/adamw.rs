//! AdamW (Loshchilov & Hutter 2019) as one pass over each variable.
//!
//! candle-nn's `AdamW` is the same update written as a dozen tensor ops, each
//! allocating and walking the whole variable; with a 20,000-word embedding that
//! is a large share of a step. This one keeps the moments as plain vectors and
//! updates moments and parameters in a single loop, with candle's formula:
//! `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//! `θ ← θ·(1 − lr·λ) − lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β1^t)`, `v̂ = v/(1−β2^t)`.
//! As in candle, `t` counts the optimiser's steps, not each variable's.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::ParamsAdamW;

use super::fused::{self, Slot};

/// AdamW over f32 variables.
pub struct FusedAdamW {
    params: ParamsAdamW,
    step: i32,
    /// Each variable with its first and second moments.
    slots: Vec<Slot>,
    /// The first variable (index) whose gradient had a NaN or infinite element, and that element.
    non_finite: Option<(usize, f32)>,
}

impl FusedAdamW {
    /// An optimiser for `vars` (f32).
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<FusedAdamW> {
        let slots = fused::slots(vars, 2, "FusedAdamW")?;
        Ok(FusedAdamW { params, step: 0, slots, non_finite: None })
    }

    /// One update from `grads`; variables without a gradient are left alone. A gradient
    /// with a NaN or infinite element stops the update at its variable (training has
    /// diverged): see [`FusedAdamW::non_finite_gradient`].
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let p = &self.params;
        let (beta1, beta2) = (p.beta1 as f32, p.beta2 as f32);
        let scale_m = (1.0 / (1.0 - p.beta1.powi(self.step))) as f32;
        let scale_v = (1.0 / (1.0 - p.beta2.powi(self.step))) as f32;
        let (lr, eps) = (p.lr as f32, p.eps as f32);
        let decay = (1.0 - p.lr * p.weight_decay) as f32;
        let non_finite = fused::each_gradient(&mut self.slots, grads, |_, slot, grad| {
            let kernel = |theta: &mut [f32], buffers: &mut [&mut [f32]], g: &[f32]| {
                let [m, v] = buffers else { unreachable!("AdamW keeps two moments") };
                for (((theta, m), v), &g) in theta.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                    *m = *m * beta1 + g * (1.0 - beta1);
                    *v = *v * beta2 + g * g * (1.0 - beta2);
                    let adjusted = (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
                    *theta = *theta * decay - adjusted * lr;
                }
            };
            let on_device = |theta: &Tensor, buffers: &mut [Tensor], g: &Tensor| -> Result<Tensor> {
                let adjusted = fused::adam_direction(buffers, g, (beta1, beta2), (scale_m, scale_v), eps)?;
                (theta * f64::from(decay))? - (adjusted * f64::from(lr))?
            };
            fused::apply(slot, grad, kernel, on_device)
        })?;
        if non_finite.is_some() {
            self.non_finite = non_finite;
        }
        Ok(())
    }

    /// After a step that met a NaN or infinite gradient: the index of its variable (in the
    /// order given to [`FusedAdamW::new`]) and the offending value.
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::Optimizer;

    #[test]
    fn matches_candle_nn_adamw_step_by_step() -> Result<()> {
        // Same start, same gradients (from a loss that changes with θ), three steps, with weight decay.
        let params = ParamsAdamW { lr: 0.01, weight_decay: 0.1, ..Default::default() };
        let start = Tensor::new(&[[0.5f32, -1.0, 2.0], [0.25, 0.0, -3.0]], &Device::Cpu)?;
        let ours = Var::from_tensor(&start)?;
        let theirs = Var::from_tensor(&start)?;
        let mut fused = FusedAdamW::new(vec![ours.clone()], params.clone())?;
        let mut reference = candle_nn::AdamW::new(vec![theirs.clone()], params)?;
        let loss =
            |var: &Var| -> Result<Tensor> { (var.as_tensor().sqr()? * 3.0)?.sum_all()? + var.as_tensor().sum_all()? };
        for step in 1..=3 {
            fused.backward_step(&loss(&ours)?)?;
            reference.backward_step(&loss(&theirs)?)?;
            let (a, b) = (ours.flatten_all()?.to_vec1::<f32>()?, theirs.flatten_all()?.to_vec1::<f32>()?);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "step {step}: {a:?} vs {b:?}");
            }
            assert_ne!(a, start.flatten_all()?.to_vec1::<f32>()?, "step {step} moved θ");
        }
        Ok(())
    }

    #[test]
    fn a_non_finite_gradient_is_reported_with_its_variable_and_not_applied() -> Result<()> {
        let params = ParamsAdamW { lr: 0.01, ..Default::default() };
        let first = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu)?)?;
        let second = Var::from_tensor(&Tensor::new(&[3f32, 4.0], &Device::Cpu)?)?;
        let mut optimizer = FusedAdamW::new(vec![first.clone(), second.clone()], params)?;
        // A finite loss whose gradient is not: d/dx sqrt(x) at 0 is +inf.
        let loss = (first.as_tensor().sum_all()? + (second.as_tensor() - 3.0)?.sqrt()?.sum_all()?)?;
        optimizer.backward_step(&loss)?;
        assert_eq!(optimizer.non_finite_gradient(), Some((1, f32::INFINITY)));
        assert_eq!(second.to_vec1::<f32>()?, [3.0, 4.0], "the bad gradient was not applied");
        for (name, grad) in [("finite", 1f32), ("NaN", f32::NAN), ("-inf", f32::NEG_INFINITY)] {
            let var = Var::from_tensor(&Tensor::new(&[0f32; 3], &Device::Cpu)?)?;
            let mut optimizer = FusedAdamW::new(vec![var.clone()], ParamsAdamW::default())?;
            let mut grads = GradStore::default();
            grads.insert(var.as_tensor(), Tensor::new(&[1f32, grad, 1.0], &Device::Cpu)?);
            optimizer.step(&grads)?;
            let found = optimizer.non_finite_gradient().map(|(i, g)| (i, g.to_string()));
            let expected = (name != "finite").then(|| (0, grad.to_string()));
            assert_eq!(found, expected, "{name}");
        }
        Ok(())
    }
}
