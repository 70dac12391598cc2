//! One optimiser step from a training step's losses: the weighting method's decision on
//! them, turned into one gradient per variable, clipped, and applied.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::diagnostics::Diagnostics;
use crate::gradients::{add_into, TaskGradients};
use crate::optim::{clip_grad_norm, Optimizer};
use crate::weighting::{Decision, Method, StepInput, Weighter};
use mtl_model::MultiTaskNet;

/// On the representation: the shared representation `Z` of the step (attached to the trunk)
/// and each task's loss computed by its head on a detached copy of `Z`.
#[derive(Default)]
pub(crate) struct RepresentationStep {
    pub(crate) representation: Option<Tensor>,
    pub(crate) losses: Vec<(usize, Tensor)>,
}

/// What one optimiser step needs.
pub(crate) struct Update<'a> {
    pub(crate) method: Method,
    pub(crate) weighter: &'a mut dyn Weighter,
    pub(crate) diagnostics: &'a mut Diagnostics,
    pub(crate) losses: &'a [(usize, Tensor)],
    /// Each task's loss value this step (NaN for tasks without a batch).
    pub(crate) loss_values: &'a [f64],
    /// Per task, the gradient of its loss with respect to the shared representation (empty
    /// unless `on_representation`).
    pub(crate) representation_gradients: &'a [Vec<f32>],
    /// The other batches' (task, loss) of a method with several samples a step (sdmgrad, modo).
    pub(crate) more_losses: &'a [Vec<(usize, Tensor)>],
    /// Whether the method decides on the representation's gradients ([`crate::plan::TrainingSettings::on_representation`]).
    pub(crate) on_representation: bool,
    /// The representation and the losses on its detached copy, when `on_representation`.
    pub(crate) on_copy: &'a RepresentationStep,
    pub(crate) static_weights: &'a [f64],
    pub(crate) n_tasks: usize,
    pub(crate) global_step: u64,
    pub(crate) net: &'a MultiTaskNet,
    pub(crate) vars: &'a [Var],
    pub(crate) optimizer: &'a mut Optimizer,
    /// Clip the combined gradient to this global norm before the step.
    pub(crate) clip_norm: Option<f64>,
}

impl Update<'_> {
    /// One optimiser step from `grads`, clipped first when the trial asks for it.
    fn step(&mut self, mut grads: GradStore) -> candle_core::Result<()> {
        if let Some(max_norm) = self.clip_norm {
            clip_grad_norm(&mut grads, self.vars, max_norm)?;
        }
        self.optimizer.step(&grads)
    }
}

/// Weighs the step's task losses with the method and takes one optimiser step.
pub(crate) fn update(u: &mut Update) -> candle_core::Result<()> {
    let penalty = u.net.penalty()?;
    // Steps where only some tasks drew a batch (sampling other than "all"): the static
    // weights of those tasks (the config allows only static and equal weighting then).
    if u.losses.len() < u.n_tasks {
        let mut total: Option<Tensor> = None;
        for (task_idx, loss) in u.losses {
            let weight = if u.method == Method::Equal { 1.0 } else { u.static_weights[*task_idx] };
            let weighted = (loss * weight)?;
            total = Some(match total {
                Some(sum) => (sum + weighted)?,
                None => weighted,
            });
        }
        return match (total, penalty) {
            (Some(total), Some(penalty)) => u.step((total + penalty)?.backward()?),
            (Some(total), None) => u.step(total.backward()?),
            (None, _) => Ok(()),
        };
    }
    // Every task is present: losses in task order for the method.
    let task_losses = in_task_order(u.losses, u.n_tasks);
    // Methods that need the shared parameters' per-task gradients (not the representation's).
    let needs_gradients = u.method.needs_gradients() && !u.on_representation;
    let measured = if needs_gradients || u.diagnostics.measures_at(u.global_step) {
        Some(TaskGradients::compute(&task_losses, u.vars)?)
    } else {
        None
    };
    let input = StepInput {
        losses: u.loss_values,
        static_weights: u.static_weights,
        shared_gradients: if u.on_representation {
            Some(u.representation_gradients)
        } else if needs_gradients {
            measured.as_ref().map(|g| g.flat.as_slice())
        } else {
            None
        },
    };
    // The other samples' gradients, for the methods that take several a step.
    let samples: Vec<TaskGradients> = u
        .more_losses
        .iter()
        .map(|losses| TaskGradients::compute(&in_task_order(losses, u.n_tasks), u.vars))
        .collect::<candle_core::Result<_>>()?;
    let decision = if samples.is_empty() {
        u.weighter.step(&input)
    } else {
        let more: Vec<&[Vec<f32>]> = samples.iter().map(|sample| sample.flat.as_slice()).collect();
        u.weighter.step_sampled(&input, &more)
    };
    // Without shared parameters (single-task) there are no gradients to compare.
    if let Some(gradients) = measured.as_ref().filter(|g| g.flat.iter().any(|f| !f.is_empty())) {
        u.diagnostics.record_gradients(&gradients.flat);
    }
    match (&decision, &measured) {
        (Decision::LossWeights(weights), _) if !needs_gradients => {
            u.diagnostics.record_weights(weights);
            // One backward of Σ w_i L_i, summed in the sampler's order (as before there were methods).
            let mut total: Option<Tensor> = None;
            for (task_idx, loss) in u.losses {
                let weighted = (loss * weights[*task_idx])?;
                total = Some(match total {
                    Some(sum) => (sum + weighted)?,
                    None => weighted,
                });
            }
            let total = total.expect("at least one task");
            let total = match penalty {
                Some(penalty) => (total + penalty)?,
                None => total,
            };
            u.step(total.backward()?)
        }
        (Decision::SharedGradient { .. } | Decision::ClippedLossWeights { .. }, _) if u.on_representation => {
            u.diagnostics.record_weights(decision.weights());
            let total = through_representation(&decision, u.representation_gradients, u.on_copy)?;
            let total = match penalty {
                Some(penalty) => (total + penalty)?,
                None => total,
            };
            u.step(total.backward()?)
        }
        (_, Some(gradients)) => {
            u.diagnostics.record_weights(decision.weights());
            let mut grads = if samples.is_empty() {
                gradients.combine(&decision, u.vars)?
            } else {
                // Task-specific parameters: their task's gradient averaged over the samples.
                let all: Vec<&TaskGradients> = std::iter::once(gradients).chain(&samples).collect();
                TaskGradients::combine_mean(&all, &decision, u.vars)?
            };
            if let Some(penalty) = penalty {
                add_into(&mut grads, &penalty.backward()?, u.vars)?;
            }
            u.step(grads)
        }
        (Decision::SharedGradient { .. } | Decision::ClippedLossWeights { .. }, None) => {
            candle_core::bail!("{} returned a gradient decision without being given gradients", u.method.name())
        }
        (Decision::LossWeights(_), None) => unreachable!("handled above"),
    }
}

/// Each task's loss, in task order (every task present).
fn in_task_order(losses: &[(usize, Tensor)], n_tasks: usize) -> Vec<Tensor> {
    let mut by_task: Vec<Option<&Tensor>> = vec![None; n_tasks];
    for (task_idx, loss) in losses {
        by_task[*task_idx] = Some(loss);
    }
    by_task.into_iter().map(|l| l.expect("every task present").clone()).collect()
}

/// The objective whose backward applies a representation-level decision: `Σ Z ⊙ G` with `G`
/// the decision's representation gradient (constant), so that the trunk gets `Jᵀ G` (the
/// chain rule from G), plus each task's loss on the detached copy, weighted by `c_i`, so that
/// each head gets `c_i` times its own gradient. A shared gradient `G` comes with `c = 1` (each
/// head keeps its task's unweighted gradient, as on the shared parameters); clipped loss
/// weights give `G = scale · Σ w_i g_i` and `c = w` (the gradient of `Σ w_i L_i`, with the
/// trunk's part scaled).
fn through_representation(
    decision: &Decision,
    gradients: &[Vec<f32>],
    on_copy: &RepresentationStep,
) -> candle_core::Result<Tensor> {
    let z = on_copy.representation.as_ref().expect("the representation of a step on it");
    let (g, head_weights): (Vec<f32>, Vec<f64>) = match decision {
        Decision::SharedGradient { gradient, .. } => (gradient.clone(), vec![1.0; gradients.len()]),
        Decision::ClippedLossWeights { weights, shared_scale } => {
            let mut sum = vec![0f64; z.elem_count()];
            for (gradient, weight) in gradients.iter().zip(weights) {
                sum.iter_mut().zip(gradient).for_each(|(s, &g)| *s += weight * shared_scale * f64::from(g));
            }
            (sum.into_iter().map(|v| v as f32).collect(), weights.clone())
        }
        Decision::LossWeights(_) => unreachable!("loss weights take the weighted loss's backward"),
    };
    let g = Tensor::from_vec(g, z.shape(), z.device())?.to_dtype(z.dtype())?;
    let mut total = (z * g)?.sum_all()?;
    for (task_idx, loss) in &on_copy.losses {
        total = (total + (loss * head_weights[*task_idx])?)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use crate::bench::{random_task_set, Workload};
    use crate::optim::{OptimizerKind, OptimizerSpec};
    use crate::train::{train, TrainObserver};
    use crate::weighting::Method;
    use mtl_store::MetricPoint;

    /// Counts the optimiser steps.
    #[derive(Default)]
    struct Steps(usize);

    impl TrainObserver for Steps {
        fn step(&mut self, _epoch: u32, _step: usize, _steps_per_epoch: usize) {
            self.0 += 1;
        }
        fn epoch(&mut self, _epoch: u32, _points: &[MetricPoint]) -> Result<(), String> {
            Ok(())
        }
    }

    /// Every parameter's values after an epoch of `batches` batches of SGD (batch 16 of w1's LeNet on both digits
    /// of one random image set; a large rate, so that one step moves every parameter visibly)
    /// under `method`, by name.
    fn after(batches: usize, method: Method, rep_grad: bool) -> Vec<(String, Vec<f32>)> {
        after_counting(batches, method, rep_grad).0
    }

    /// [`after`], and the number of optimiser steps taken.
    fn after_counting(batches: usize, method: Method, rep_grad: bool) -> (Vec<(String, Vec<f32>)>, usize) {
        let mut trial = Workload::W1.plan().expect("w1 has a plan").trials.swap_remove(0);
        trial.weighting = method;
        trial.settings.rep_grad = rep_grad;
        trial.settings.batch_size = 16;
        trial.settings.optimizer = OptimizerSpec::default_for(OptimizerKind::Sgd);
        trial.lr = 10.0;
        let mut steps = Steps::default();
        let params = train(&trial, &random_task_set(Workload::W1, 16 * batches), &candle_core::Device::Cpu, &mut steps)
            .expect("training");
        let values = params
            .named()
            .map(|(name, var)| (name.to_string(), var.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect();
        (values, steps.0)
    }

    fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn mgda_on_the_representation_moves_the_trunk_as_mgda_ub_does() {
        // Both take the min-norm weights α of the representation's gradients; the trunk gets
        // Jᵀ(Σ α_i g_i) either way (mgda-ub through the backward of Σ α_i L_i, mgda under
        // rep_grad through Σ Z ⊙ G), while mgda-ub's heads get α_i-weighted gradients and
        // mgda's their own (as on the shared parameters).
        let (ub, rep, plain) =
            (after(1, Method::MgdaUb, false), after(1, Method::Mgda, true), after(1, Method::Mgda, false));
        let mut trunk_moved_differently = false;
        for (((name, a), (_, b)), (_, c)) in ub.iter().zip(&rep).zip(&plain) {
            if name.starts_with("heads.") {
                assert!(largest_difference(a, b) > 1e-4, "{name}: mgda-ub's heads should move differently");
                assert_eq!(b, c, "{name}: heads keep their own gradient either way");
            } else {
                let scale = a.iter().fold(1f32, |m, v| m.max(v.abs()));
                assert!(largest_difference(a, b) <= 1e-5 * scale, "{name}: the trunk differs from mgda-ub's");
                trunk_moved_differently |= largest_difference(b, c) > 1e-4;
            }
        }
        assert!(trunk_moved_differently, "rep_grad changed nothing in the trunk");
    }

    #[test]
    fn every_kind_of_decision_trains_on_the_representation() {
        // upgrad (a shared gradient), nash-mtl (clipped loss weights), gradnorm (loss weights,
        // equal at the first step: two steps).
        for name in ["upgrad", "nash-mtl", "gradnorm"] {
            let method = Method::default_for(name).unwrap();
            let (rep, plain) = (after(2, method, true), after(2, method, false));
            assert!(rep.iter().all(|(_, values)| values.iter().all(|v| v.is_finite())), "{name}");
            let moved = rep.iter().zip(&plain).any(|((_, a), (_, b))| largest_difference(a, b) > 1e-4);
            assert!(moved, "{name}: rep_grad changed nothing");
        }
    }

    #[test]
    fn sdmgrad_and_modo_take_three_batches_a_step() {
        // An epoch of six batches of 16: equal weighting takes six steps, sdmgrad and modo two.
        let (_, equal_steps) = after_counting(6, Method::Equal, false);
        assert_eq!(equal_steps, 6);
        for name in ["sdmgrad", "modo"] {
            let (values, steps) = after_counting(6, Method::default_for(name).unwrap(), false);
            assert_eq!(steps, 2, "{name}");
            assert!(values.iter().all(|(_, values)| values.iter().all(|v| v.is_finite())), "{name}");
        }
    }

    #[test]
    fn rep_grad_is_read_swept_and_keyed_only_where_it_changes_something() {
        let source = |weighting: &str| {
            format!(
                "name = \"x\"\n[[tasks]]\nname = \"a\"\ndata = {{ format = \"synthetic-shapes\" }}\n\
                 [[tasks]]\nname = \"b\"\ndata = {{ format = \"synthetic-shapes\" }}\n\
                 [sweep]\nstrategy = [\"hard\"]\nweighting = [\"static\", \"pcgrad\", \"mgda-ub\"]\n{weighting}"
            )
        };
        let plan = |text: &str| crate::config::parse_str(&source(text), std::path::Path::new("x.toml")).expect("valid");
        let (off, on) = (plan(""), plan("[weighting]\nrep_grad = true\n"));
        let keys = |plan: &crate::plan::Plan| plan.trials.iter().map(|t| t.key.clone()).collect::<Vec<_>>();
        let (off_keys, on_keys) = (keys(&off), keys(&on));
        // static ignores it and mgda-ub is always on the representation: same keys; pcgrad changes.
        assert_eq!(
            (off_keys[0] == on_keys[0], off_keys[1] == on_keys[1], off_keys[2] == on_keys[2]),
            (true, false, true)
        );
        let recorded: Vec<bool> =
            on.trials.iter().map(|t| t.params().iter().any(|(name, _)| name == "rep_grad")).collect();
        assert_eq!(recorded, [false, true, false]);
        // Swept like any setting, over gradient methods that it changes.
        let text = source("\"weighting.rep_grad\" = [false, true]\n")
            .replace("\"static\", \"pcgrad\", \"mgda-ub\"", "\"pcgrad\"");
        let swept = crate::config::parse_str(&text, std::path::Path::new("x.toml")).expect("valid");
        assert_eq!(keys(&swept), [off_keys[1].clone(), on_keys[1].clone()]);
        // With a method it does not change, the sweep repeats that method's trials: an error.
        let repeated = crate::config::parse_str(
            &source("\"weighting.rep_grad\" = [false, true]\n"),
            std::path::Path::new("x.toml"),
        );
        let error = repeated.expect_err("static's trials repeat");
        assert!(error.message.contains("a swept setting does nothing here"), "{}", error.message);
    }
}
