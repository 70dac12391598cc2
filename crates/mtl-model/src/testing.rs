//! Helpers the crate's tests share: seeded random tensors, and the finite-difference
//! check every layer's gradients go through.

use candle_core::{DType, Device, Result, Tensor, Var};
use mtl_data::Rng;

/// Serialises the tests that change candle's thread count (read from `RAYON_NUM_THREADS`
/// at every matmul; other tests running meanwhile give the same results at any count).
pub(crate) static THREAD_COUNT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Standard normal values (f64) from `seed`.
pub(crate) fn random(shape: &[usize], seed: u64) -> Result<Tensor> {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.normal()).collect::<Vec<f64>>(), shape, &Device::Cpu)
}

/// A loss that weights every output element differently, so that a gradient
/// that is merely scaled or permuted is caught.
pub(crate) fn weighted_sum(out: &Tensor, seed: u64) -> Result<Tensor> {
    (out * random(out.dims(), seed)?.to_dtype(out.dtype())?)?.sum_all()
}

/// `out` and the gradients of `vars` of `loss = weighted_sum(out)`.
pub(crate) fn output_and_gradients(out: Tensor, vars: &[&Var]) -> Result<Vec<Tensor>> {
    let grads = weighted_sum(&out, 4)?.backward()?;
    let mut tensors = vec![out];
    for var in vars {
        tensors.push(grads.get(var).expect("gradient").clone());
    }
    Ok(tensors)
}

/// A variable of standard normal values from `seed`, in `dtype`.
pub(crate) fn random_var(shape: &[usize], seed: u64, dtype: DType) -> Result<Var> {
    Var::from_tensor(&random(shape, seed)?.to_dtype(dtype)?)
}

/// Every element, as f64.
pub(crate) fn values(tensor: &Tensor) -> Result<Vec<f64>> {
    tensor.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
}

/// Same shape, and every element within `tolerance`·(1 + |reference|).
pub(crate) fn assert_close(what: &str, ours: &Tensor, reference: &Tensor, tolerance: f64) -> Result<()> {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shape");
    for (i, (a, b)) in values(ours)?.into_iter().zip(values(reference)?).enumerate() {
        assert!((a - b).abs() <= tolerance * (1.0 + b.abs()), "{what}[{i}]: ours {a}, reference {b}");
    }
    Ok(())
}

/// Every strategy with small hyperparameters (two experts where there are any, three under
/// DSelect-k, whose gate renormalises when the count is not a power of two; PLE with
/// 2 levels, which every trunk has room for).
pub(crate) fn all_sharings() -> [crate::Sharing; 10] {
    use crate::Sharing;
    [
        Sharing::SingleTask,
        Sharing::Hard,
        Sharing::Soft { weight: 0.1 },
        Sharing::CrossStitch { init: 0.9 },
        Sharing::Mmoe { experts: 2 },
        Sharing::DSelectK { experts: 3, selectors: 2, gamma: 1.0 },
        Sharing::Cgc { experts: 1, task_experts: 1 },
        Sharing::Ple { experts: 1, task_experts: 1, levels: 2 },
        Sharing::Mtan,
        Sharing::Ltb { temperature: 1.0 },
    ]
}

/// [`all_sharings`] for a trunk of `blocks` blocks: PLE with at most that many levels.
pub(crate) fn sharings_for(blocks: usize) -> Vec<crate::Sharing> {
    use crate::Sharing;
    all_sharings()
        .into_iter()
        .map(|s| match s {
            Sharing::Ple { experts, task_experts, levels } => {
                Sharing::Ple { experts, task_experts, levels: levels.min(blocks) }
            }
            other => other,
        })
        .collect()
}

/// Compares the autograd gradient of `loss` for each variable with central finite
/// differences (f64, step 1e-6, tolerance 1e-6·(1 + |numeric|)), on at most
/// `max_elements` evenly spread elements of each variable. A step that straddles a kink
/// (a relu or max whose input lies within the step of its corner) is off by about the
/// step; such an element is measured again with a step 10× smaller, where a right
/// gradient agrees and a wrong one still does not.
pub(crate) fn check_gradients(
    vars: &[(&str, &Var)],
    max_elements: usize,
    loss: impl Fn() -> Result<Tensor>,
) -> Result<()> {
    let grads = loss()?.backward()?;
    for (name, var) in vars {
        let analytic = values(grads.get(var).unwrap_or_else(|| panic!("{name} received no gradient")))?;
        let original = values(var)?;
        let set =
            |values: Vec<f64>| var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu)?.to_dtype(var.dtype())?);
        for i in (0..original.len()).step_by(original.len().div_ceil(max_elements).max(1)) {
            let numeric = |eps: f64| -> Result<f64> {
                let at = |delta: f64| -> Result<f64> {
                    let mut perturbed = original.clone();
                    perturbed[i] += delta;
                    set(perturbed)?;
                    loss()?.to_scalar::<f64>()
                };
                let slope = (at(eps)? - at(-eps)?) / (2.0 * eps);
                set(original.clone())?;
                Ok(slope)
            };
            let agrees = |numeric: f64| (numeric - analytic[i]).abs() < 1e-6 * (1.0 + numeric.abs());
            let coarse = numeric(1e-6)?;
            if agrees(coarse) {
                continue;
            }
            let fine = numeric(1e-7)?;
            assert!(
                agrees(fine),
                "{name}[{i}]: autograd {} vs finite difference {coarse} (step 1e-6), {fine} (step 1e-7)",
                analytic[i]
            );
        }
    }
    Ok(())
}
