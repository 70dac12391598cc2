//! The composed layers (`composed`, what runs off the CPU) against the CPU custom ops:
//! the same values and gradients in f64, with ties in the pooled windows.

use candle_core::{DType, Result, Tensor, Var};

use super::composed;
use super::kernels::Output;
use super::{max_pool2d, max_pool2x2, max_pool2x2_relu, Conv1d, Conv2d};
use crate::testing::{assert_close, output_and_gradients, random};

/// Values in {−2, …, 2}: most pooling windows hold ties, some only negatives.
fn tied(shape: &[usize], seed: u64) -> Result<Var> {
    Var::from_tensor(&(random(shape, seed)? * 1.2)?.round()?.clamp(-2.0, 2.0)?)
}

fn assert_same(what: &str, composed: &[Tensor], cpu: &[Tensor]) -> Result<()> {
    assert_within(what, composed, cpu, 1e-12)
}

fn assert_within(what: &str, composed: &[Tensor], cpu: &[Tensor], tolerance: f64) -> Result<()> {
    let names = ["output", "input gradient", "weight gradient", "bias gradient"];
    for ((ours, reference), name) in composed.iter().zip(cpu).zip(names) {
        assert_close(&format!("{what}: {name}"), ours, reference, tolerance)?;
    }
    Ok(())
}

#[test]
fn composed_convolutions_match_the_cpu_ops_in_values_and_gradients() -> Result<()> {
    // (input, kernel, padding, stride): stride 2 with heights and widths leaving different
    // remainders (candle's own backward refuses those), 1×1, 7×7 stems.
    let cases: [(&[usize], &[usize], usize, usize); 5] = [
        (&[2, 3, 7, 6], &[4, 3, 3, 3], 1, 1),
        (&[3, 2, 11, 9], &[5, 2, 7, 7], 3, 2),
        (&[2, 4, 6, 5], &[3, 4, 1, 1], 0, 2),
        (&[2, 3, 8, 10], &[2, 3, 3, 3], 1, 3),
        (&[1, 2, 5, 5], &[2, 2, 3, 3], 0, 1),
    ];
    for (i, (input, kernel, padding, stride)) in cases.into_iter().enumerate() {
        let seed = 10 * i as u64;
        let (x, w) = (Var::from_tensor(&random(input, seed)?)?, Var::from_tensor(&random(kernel, seed + 1)?)?);
        let b = Var::from_tensor(&random(&[kernel[0]], seed + 2)?)?;
        let conv = Conv2d::from_parts(w.as_tensor().clone(), Some(b.as_tensor().clone()), padding).with_stride(stride);
        let cpu = output_and_gradients(conv.forward(x.as_tensor())?, &[&x, &w, &b])?;
        let spacing = ((padding, padding), stride);
        let ours = composed::convolve(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), spacing, Output::Full)?;
        assert_same(&format!("conv2d case {i}"), &output_and_gradients(ours, &[&x, &w, &b])?, &cpu)?;
        let cpu = output_and_gradients(conv.forward_relu(x.as_tensor())?, &[&x, &w, &b])?;
        let ours = composed::convolve(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), spacing, Output::FullRelu)?;
        assert_same(&format!("conv2d → relu case {i}"), &output_and_gradients(ours, &[&x, &w, &b])?, &cpu)?;
    }
    Ok(())
}

#[test]
fn composed_fused_convolutions_route_gradients_to_the_first_maximum_as_the_cpu_ops() -> Result<()> {
    // Integer inputs and kernels make integer outputs with ties in the pooled windows.
    let (x, w) = (tied(&[2, 2, 7, 9], 1)?, tied(&[3, 2, 3, 3], 2)?);
    let b = tied(&[3], 3)?;
    let conv = Conv2d::from_parts(w.as_tensor().clone(), Some(b.as_tensor().clone()), 1);
    let cpu = output_and_gradients(conv.forward_pool_relu(x.as_tensor())?, &[&x, &w, &b])?;
    let ours = composed::convolve(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), ((1, 1), 1), Output::PooledRelu)?;
    assert_same("conv → pool → relu", &output_and_gradients(ours, &[&x, &w, &b])?, &cpu)?;

    // Text: zero-padded time steps give tied (zero) windows.
    let (x, w) = (tied(&[3, 4, 6], 4)?, tied(&[5, 4, 3], 5)?);
    let b = tied(&[5], 6)?;
    let conv = Conv1d::from_parts(w.as_tensor().clone(), Some(b.as_tensor().clone()), 2);
    for fused in [false, true] {
        let (cpu, output) = if fused {
            (conv.forward_relu_max_over_time(x.as_tensor())?, Output::MaxReluOverTime)
        } else {
            (conv.forward(x.as_tensor())?, Output::Full)
        };
        let cpu = output_and_gradients(cpu, &[&x, &w, &b])?;
        let ours = composed::convolve(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), ((0, 2), 1), output)?;
        assert_same(&format!("conv1d (max over time: {fused})"), &output_and_gradients(ours, &[&x, &w, &b])?, &cpu)?;
    }
    Ok(())
}

#[test]
fn composed_pools_match_the_cpu_ops_with_ties_odd_sizes_and_padding() -> Result<()> {
    let x = tied(&[2, 3, 7, 9], 7)?;
    for relu in [false, true] {
        let cpu = if relu { max_pool2x2_relu(x.as_tensor())? } else { max_pool2x2(x.as_tensor())? };
        let ours = composed::max_pool2x2(x.as_tensor(), relu)?;
        let what = format!("max_pool2x2 (relu: {relu})");
        assert_same(&what, &output_and_gradients(ours, &[&x])?, &output_and_gradients(cpu, &[&x])?)?;
    }
    for (kernel, stride, padding) in [(3, 2, 1), (2, 2, 0), (3, 1, 1), (5, 3, 2)] {
        let cpu = max_pool2d(x.as_tensor(), kernel, stride, padding)?;
        let out = (cpu.dim(2)?, cpu.dim(3)?);
        let ours = composed::max_pool2d(x.as_tensor(), kernel, stride, padding, out)?;
        let what = format!("max_pool2d {kernel}/{stride}/{padding}");
        assert_same(&what, &output_and_gradients(ours, &[&x])?, &output_and_gradients(cpu, &[&x])?)?;
    }
    // In f32 too, the dtype training uses (where windows overlap, a cell's gradient
    // sums in another order).
    let x32 = Var::from_tensor(&x.as_tensor().to_dtype(DType::F32)?)?;
    let cpu = output_and_gradients(max_pool2d(x32.as_tensor(), 3, 2, 1)?, &[&x32])?;
    let ours = output_and_gradients(composed::max_pool2d(x32.as_tensor(), 3, 2, 1, (4, 5))?, &[&x32])?;
    assert_within("max_pool2d in f32", &ours, &cpu, 1e-6)
}

#[test]
fn the_composed_upsampled_convolution_matches_the_cpu_op() -> Result<()> {
    let (x, w) = (Var::from_tensor(&random(&[2, 3, 4, 5], 70)?)?, Var::from_tensor(&random(&[4, 3, 3, 3], 71)?)?);
    let b = Var::from_tensor(&random(&[4], 72)?)?;
    let conv = Conv2d::from_parts(w.as_tensor().clone(), Some(b.as_tensor().clone()), 1);
    let cpu = output_and_gradients(conv.forward_upsampled(x.as_tensor(), 2)?, &[&x, &w, &b])?;
    super::compose_on_the_cpu(true);
    let composed = conv.forward_upsampled(x.as_tensor(), 2).and_then(|out| output_and_gradients(out, &[&x, &w, &b]));
    super::compose_on_the_cpu(false);
    assert_same("conv of an up-sampling", &composed?, &cpu)
}
