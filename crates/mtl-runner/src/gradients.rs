//! Per-task gradients and their combination into one update.
//!
//! Each task's loss is back-propagated on its own (one `GradStore` per task).
//! A variable is *shared* when more than one task's loss reaches it; the
//! shared variables' gradients are flattened per task (in parameter-name
//! order) for the weighting method, whose decision is turned back into one
//! `GradStore` for the optimiser: shared variables get the method's
//! gradient, every other variable its own task's gradient.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use crate::weighting::Decision;

/// The per-task gradients of one step.
pub(crate) struct TaskGradients {
    /// Per task present in the step (in the order of the losses given).
    stores: Vec<GradStore>,
    /// Indices (into the parameter list) of the variables more than one task reaches.
    shared: Vec<usize>,
    /// Per task: the shared variables' gradients, flattened in `shared` order (zeros where it has none).
    pub(crate) flat: Vec<Vec<f32>>,
}

impl TaskGradients {
    /// One backward pass per loss. Each pass's store keeps only the variables' gradients:
    /// candle's holds one for every activation too, which for 11 tasks of a large network
    /// held gigabytes until the step ended.
    pub(crate) fn compute(losses: &[Tensor], vars: &[Var]) -> Result<TaskGradients> {
        let variables_only = |loss: &Tensor| -> Result<GradStore> {
            let all = loss.backward()?;
            let mut kept = GradStore::default();
            for var in vars {
                if let Some(grad) = all.get(var) {
                    kept.insert(var, grad.clone());
                }
            }
            Ok(kept)
        };
        let stores = losses.iter().map(variables_only).collect::<Result<Vec<_>>>()?;
        let shared: Vec<usize> = (0..vars.len())
            .filter(|&v| stores.iter().filter(|store| store.get(&vars[v]).is_some()).count() > 1)
            .collect();
        let mut flat = Vec::with_capacity(stores.len());
        for store in &stores {
            let mut values = Vec::new();
            for &v in &shared {
                match store.get(&vars[v]) {
                    Some(grad) => {
                        values.extend(grad.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
                    }
                    None => values.extend(std::iter::repeat_n(0.0, vars[v].elem_count())),
                }
            }
            flat.push(values);
        }
        Ok(TaskGradients { stores, shared, flat })
    }

    /// The update the optimiser takes.
    pub(crate) fn combine(&self, decision: &Decision, vars: &[Var]) -> Result<GradStore> {
        let mut out = GradStore::default();
        let weighted_sum = |var: &Var, weights: &[f64]| -> Result<Option<Tensor>> {
            let mut sum: Option<Tensor> = None;
            for (store, &weight) in self.stores.iter().zip(weights) {
                if let Some(grad) = store.get(var) {
                    let term = (grad * weight)?;
                    sum = Some(match sum {
                        Some(s) => (s + term)?,
                        None => term,
                    });
                }
            }
            Ok(sum)
        };
        match decision {
            Decision::LossWeights(weights) => {
                for var in vars {
                    if let Some(grad) = weighted_sum(var, weights)? {
                        out.insert(var, grad);
                    }
                }
            }
            Decision::ClippedLossWeights { weights, shared_scale } => {
                for (v, var) in vars.iter().enumerate() {
                    if let Some(grad) = weighted_sum(var, weights)? {
                        let grad = if self.shared.contains(&v) { (grad * *shared_scale)? } else { grad };
                        out.insert(var, grad);
                    }
                }
            }
            Decision::SharedGradient { gradient, .. } => {
                let ones = vec![1.0; self.stores.len()];
                let mut offset = 0;
                for (v, var) in vars.iter().enumerate() {
                    if self.shared.contains(&v) {
                        let n = var.elem_count();
                        let slice = Tensor::from_slice(&gradient[offset..offset + n], var.shape(), var.device())?;
                        out.insert(var, slice.to_dtype(var.dtype())?);
                        offset += n;
                    } else if let Some(grad) = weighted_sum(var, &ones)? {
                        // Reached by one task only: that task's own gradient.
                        out.insert(var, grad);
                    }
                }
            }
        }
        Ok(out)
    }
}

impl TaskGradients {
    /// The mean over `samples` (the same variables' per-task gradients on several batches) of
    /// each sample's [`TaskGradients::combine`]: shared variables get the decision's gradient,
    /// the others their task's gradient averaged over the batches.
    pub(crate) fn combine_mean(samples: &[&TaskGradients], decision: &Decision, vars: &[Var]) -> Result<GradStore> {
        let stores = samples.iter().map(|sample| sample.combine(decision, vars)).collect::<Result<Vec<_>>>()?;
        let mut out = GradStore::default();
        for (v, var) in vars.iter().enumerate() {
            let grads: Vec<&Tensor> = stores.iter().filter_map(|store| store.get(var)).collect();
            if samples[0].shared.contains(&v) {
                // The decision's gradient, the same in every sample's combination.
                if let Some(grad) = grads.first() {
                    out.insert(var, (*grad).clone());
                }
            } else if let Some((first, rest)) = grads.split_first() {
                let sum = rest.iter().try_fold((*first).clone(), |sum, grad| sum + *grad)?;
                out.insert(var, (sum / grads.len() as f64)?);
            }
        }
        Ok(out)
    }
}

/// Adds `extra`'s gradients (e.g. of the soft-sharing penalty) into `grads`.
pub(crate) fn add_into(grads: &mut GradStore, extra: &GradStore, vars: &[Var]) -> Result<()> {
    for var in vars {
        if let Some(more) = extra.get(var) {
            let sum = match grads.get(var) {
                Some(grad) => (grad + more)?,
                None => more.clone(),
            };
            grads.insert(var, sum);
        }
    }
    Ok(())
}

/// Per-task gradient norms and pairwise cosines of flattened gradients.
pub(crate) fn norms_and_cosines(flat: &[Vec<f32>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>();
    let norms: Vec<f64> = flat.iter().map(|g| dot(g, g).sqrt()).collect();
    let cosines = (0..flat.len())
        .map(|i| {
            (0..flat.len())
                .map(|j| {
                    let denominator = norms[i] * norms[j];
                    if denominator > 0.0 {
                        dot(&flat[i], &flat[j]) / denominator
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    (norms, cosines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn shared_variables_get_the_method_gradient_and_the_others_their_own_task_gradient() -> Result<()> {
        // w is shared; a belongs to task 0, b to task 1. L0 = (w·a)², L1 = 3·w·b at w = 2, a = 1, b = 5:
        //   ∂L0/∂w = 2·w·a² = 4, ∂L0/∂a = 2·w²·a = 8; ∂L1/∂w = 3·b = 15, ∂L1/∂b = 3·w = 6.
        let device = Device::Cpu;
        let w = Var::new(&[2f32], &device)?;
        let a = Var::new(&[1f32], &device)?;
        let b = Var::new(&[5f32], &device)?;
        let vars = vec![a.clone(), b.clone(), w.clone()];
        let l0 = (w.as_tensor() * a.as_tensor())?.sqr()?.sum_all()?;
        let l1 = ((w.as_tensor() * b.as_tensor())? * 3.0)?.sum_all()?;
        let grads = TaskGradients::compute(&[l0, l1], &vars)?;
        assert_eq!(grads.flat, vec![vec![4.0], vec![15.0]], "only w is shared");
        let value = |store: &GradStore, var: &Var| store.get(var).expect("grad").to_vec1::<f32>().expect("vec")[0];

        // Loss weights [1, 0.5]: every gradient is Σ w_i ∇L_i.
        let combined = grads.combine(&Decision::LossWeights(vec![1.0, 0.5]), &vars)?;
        assert_eq!([value(&combined, &w), value(&combined, &a), value(&combined, &b)], [11.5, 8.0, 3.0]);

        // Loss weights [1, 0.5] with the shared gradient clipped by ½ (nash-mtl's max_norm):
        // only w's 11.5 is halved.
        let decision = Decision::ClippedLossWeights { weights: vec![1.0, 0.5], shared_scale: 0.5 };
        let combined = grads.combine(&decision, &vars)?;
        assert_eq!([value(&combined, &w), value(&combined, &a), value(&combined, &b)], [5.75, 8.0, 3.0]);

        // A method's shared gradient: w gets it, a and b their own task's unweighted gradient.
        let decision = Decision::SharedGradient { gradient: vec![-1.0], weights: vec![1.0, 1.0] };
        let combined = grads.combine(&decision, &vars)?;
        assert_eq!([value(&combined, &w), value(&combined, &a), value(&combined, &b)], [-1.0, 8.0, 6.0]);
        Ok(())
    }

    #[test]
    fn several_samples_average_the_task_gradients_and_keep_the_shared_one() -> Result<()> {
        // Two batches of L0 = (w·a)², L1 = 3·w·b: a = 1 then 2 (∂L0/∂a = 2w²a = 8, then 16),
        // b = 5 then 1 (∂L1/∂b = 3w = 6 both times). w gets the decision's gradient.
        let device = Device::Cpu;
        let w = Var::new(&[2f32], &device)?;
        let (a, b) = (Var::new(&[1f32], &device)?, Var::new(&[5f32], &device)?);
        let vars = vec![a.clone(), b.clone(), w.clone()];
        let losses = |scale_a: f64, scale_b: f64| -> Result<Vec<Tensor>> {
            Ok(vec![
                ((w.as_tensor() * a.as_tensor())? * scale_a)?.sqr()?.sum_all()?,
                ((w.as_tensor() * b.as_tensor())? * (3.0 * scale_b))?.sum_all()?,
            ])
        };
        let first = TaskGradients::compute(&losses(1.0, 1.0)?, &vars)?;
        let second = TaskGradients::compute(&losses(2.0_f64.sqrt(), 0.2)?, &vars)?;
        let decision = Decision::SharedGradient { gradient: vec![0.1], weights: vec![1.0, 1.0] };
        let combined = TaskGradients::combine_mean(&[&first, &second], &decision, &vars)?;
        let value = |var: &Var| combined.get(var).expect("grad").to_vec1::<f32>().expect("vec")[0];
        assert_eq!(value(&w), 0.1, "the shared gradient as decided, not a mean of copies");
        assert!((value(&a) - 12.0).abs() < 1e-5, "a: mean of 8 and 16, got {}", value(&a));
        assert!((value(&b) - 3.6).abs() < 1e-5, "b: mean of 6 and 1.2, got {}", value(&b));
        Ok(())
    }

    #[test]
    fn norms_and_cosines_match_a_hand_case() {
        // g0 = [3, 4] (norm 5), g1 = [-4, 3] (norm 5, orthogonal), g2 = [-3, -4] (opposite of g0).
        let (norms, cosines) = norms_and_cosines(&[vec![3.0, 4.0], vec![-4.0, 3.0], vec![-3.0, -4.0]]);
        assert_eq!(norms, [5.0, 5.0, 5.0]);
        assert_eq!(cosines[0], [1.0, 0.0, -1.0]);
        assert_eq!(cosines[1][2], 0.0);
    }
}
