//! Gradient clipping by global norm, as PyTorch's `torch.nn.utils.clip_grad_norm_`.

use candle_core::backprop::GradStore;
use candle_core::{Result, Var};

/// Scales the gradients of `vars` in `grads` so that their global L2 norm is at most
/// `max_norm`, and returns the norm before clipping.
///
/// As PyTorch: `total = √(Σ ‖g‖²)` over every variable that has a gradient, and when
/// `max_norm / (total + 1e-6) < 1` each gradient is multiplied by that factor. The sum
/// runs in f64 in the order of `vars` and of each gradient's elements, so it does not
/// depend on the thread count. Unlike PyTorch, a non-finite total leaves the gradients
/// as they are, so that the optimiser's `non_finite_gradient` still names the variable.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut sum_of_squares = 0f64;
    for var in vars {
        if let Some(grad) = grads.get(var) {
            let grad = grad.flatten_all()?.to_vec1::<f32>()?;
            sum_of_squares += grad.iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>();
        }
    }
    let total = sum_of_squares.sqrt();
    let factor = max_norm / (total + 1e-6);
    if total.is_finite() && factor < 1.0 {
        for var in vars {
            if let Some(grad) = grads.get(var) {
                let clipped = (grad * factor)?;
                grads.insert(var, clipped);
            }
        }
    }
    Ok(total)
}
