//! Values and gradients of the custom ops against references: candle's own
//! conv2d (forward and backward) and conv1d (forward only: its backward is wrong),
//! finite differences, and hand-computed max-pool cases.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};

use super::{max_pool2x2, max_pool2x2_relu, Conv1d, Conv2d};
use crate::init::{InitScheme, SeededBackend};
use crate::testing::{assert_close, check_gradients, random, random_var, values, weighted_sum};

/// Every element of every variable against finite differences.
fn check_finite_differences(vars: &[(&str, &Var)], loss: impl Fn() -> Result<Tensor>) -> Result<()> {
    check_gradients(vars, usize::MAX, loss)
}

#[derive(Clone, Copy, Debug)]
struct Conv2dCase {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    padding: usize,
}

/// Values and the gradients of input, kernel and bias against candle's conv2d
/// (whose backward is right), and no input gradient when the input needs none.
fn check_conv2d(case: Conv2dCase, dtype: DType, tolerance: f64) -> Result<()> {
    let Conv2dCase { batch, in_channels, out_channels, height, width, kernel, padding } = case;
    let weight = random_var(&[out_channels, in_channels, kernel, kernel], 1, dtype)?;
    let bias = random_var(&[out_channels], 2, dtype)?;
    let input = random_var(&[batch, in_channels, height, width], 3, dtype)?;
    let ours = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), padding);
    let config = candle_nn::Conv2dConfig { padding, ..Default::default() };
    let reference = candle_nn::Conv2d::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), config);

    let (our_out, reference_out) = (ours.forward(&input)?, reference.forward(&input)?);
    assert_close(&format!("{case:?} output"), &our_out, &reference_out, tolerance)?;
    let our_grads = weighted_sum(&our_out, 4)?.backward()?;
    let reference_grads = weighted_sum(&reference_out, 4)?.backward()?;
    for (name, var) in [("input", &input), ("weight", &weight), ("bias", &bias)] {
        let grad = |grads: &candle_core::backprop::GradStore| grads.get(var).expect("gradient").clone();
        assert_close(&format!("{case:?} d{name}"), &grad(&our_grads), &grad(&reference_grads), tolerance)?;
    }

    // An input that needs no gradient (the images): none is computed, the others are unchanged.
    let images = input.as_tensor().detach();
    let grads = weighted_sum(&ours.forward(&images)?, 4)?.backward()?;
    assert!(grads.get(&images).is_none(), "{case:?}: an input gradient nobody asked for");
    for var in [&weight, &bias] {
        assert_eq!(values(grads.get(var).expect("gradient"))?, values(our_grads.get(var).expect("gradient"))?);
    }
    Ok(())
}

const CONV2D_CASES: [Conv2dCase; 10] = [
    Conv2dCase { batch: 1, in_channels: 1, out_channels: 1, height: 5, width: 7, kernel: 1, padding: 0 },
    Conv2dCase { batch: 3, in_channels: 2, out_channels: 4, height: 7, width: 6, kernel: 3, padding: 2 },
    Conv2dCase { batch: 2, in_channels: 3, out_channels: 5, height: 9, width: 8, kernel: 5, padding: 0 },
    Conv2dCase { batch: 1, in_channels: 1, out_channels: 3, height: 6, width: 5, kernel: 5, padding: 2 },
    // More than one chunk of samples in the backward pass (8 per chunk), the last one partial.
    Conv2dCase { batch: 9, in_channels: 2, out_channels: 3, height: 5, width: 5, kernel: 3, padding: 0 },
    Conv2dCase { batch: 17, in_channels: 1, out_channels: 2, height: 6, width: 7, kernel: 3, padding: 1 },
    // A kernel wider than the image: some output positions read only padding.
    Conv2dCase { batch: 4, in_channels: 3, out_channels: 2, height: 3, width: 3, kernel: 5, padding: 2 },
    Conv2dCase { batch: 3, in_channels: 4, out_channels: 1, height: 1, width: 1, kernel: 1, padding: 0 },
    // Many output channels on small planes: dW as one product over the batch, by channels
    // (4 chunks × 40 channels ≥ 4 × the batch's 16 positions; 40 rows: a partial block).
    Conv2dCase { batch: 4, in_channels: 3, out_channels: 40, height: 2, width: 2, kernel: 3, padding: 1 },
    Conv2dCase { batch: 1, in_channels: 2, out_channels: 33, height: 2, width: 3, kernel: 3, padding: 1 },
];

#[test]
fn conv2d_matches_candle_values_and_gradients_in_f64() -> Result<()> {
    for case in CONV2D_CASES {
        check_conv2d(case, DType::F64, 1e-12)?;
    }
    Ok(())
}

#[test]
fn conv2d_matches_candle_values_and_gradients_in_f32() -> Result<()> {
    for case in CONV2D_CASES {
        check_conv2d(case, DType::F32, 1e-4)?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
struct Conv1dCase {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    length: usize,
    kernel: usize,
    padding: usize,
}

/// Values against candle's conv1d (its forward is right), gradients against finite
/// differences (its backward is not: see network::tests).
fn check_conv1d(case: Conv1dCase) -> Result<()> {
    let Conv1dCase { batch, in_channels, out_channels, length, kernel, padding } = case;
    let weight = random_var(&[out_channels, in_channels, kernel], 1, DType::F64)?;
    let bias = random_var(&[out_channels], 2, DType::F64)?;
    let input = random_var(&[batch, in_channels, length], 3, DType::F64)?;
    let ours = Conv1d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), padding);
    let config = candle_nn::Conv1dConfig { padding, ..Default::default() };
    let reference = candle_nn::Conv1d::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), config);
    assert_close(&format!("{case:?} output"), &ours.forward(&input)?, &reference.forward(&input)?, 1e-12)?;
    let vars = [("input", &input), ("weight", &weight), ("bias", &bias)];
    check_finite_differences(&vars, || weighted_sum(&ours.forward(&input)?, 4))
}

#[test]
fn conv1d_matches_candle_values_and_finite_difference_gradients() -> Result<()> {
    let cases = [
        Conv1dCase { batch: 1, in_channels: 1, out_channels: 1, length: 5, kernel: 1, padding: 0 },
        Conv1dCase { batch: 3, in_channels: 2, out_channels: 4, length: 7, kernel: 3, padding: 1 },
        Conv1dCase { batch: 2, in_channels: 3, out_channels: 5, length: 9, kernel: 5, padding: 2 },
        Conv1dCase { batch: 9, in_channels: 4, out_channels: 3, length: 6, kernel: 3, padding: 0 },
        Conv1dCase { batch: 1, in_channels: 2, out_channels: 2, length: 2, kernel: 5, padding: 2 },
        Conv1dCase { batch: 17, in_channels: 1, out_channels: 2, length: 5, kernel: 3, padding: 1 },
    ];
    for case in cases {
        check_conv1d(case)?;
    }
    Ok(())
}

#[test]
fn conv1d_without_bias_is_the_convolution_alone() -> Result<()> {
    // One channel, kernel [1, 2, 3], padding 1 over x = [1, 0, 2]:
    // y = [0·1 + 1·2 + 0·3, 1·1 + 0·2 + 2·3, 0·1 + 2·2 + 0·3] = [2, 7, 4].
    let conv = Conv1d::from_parts(Tensor::new(&[[[1f64, 2., 3.]]], &Device::Cpu)?, None, 1);
    let y = conv.forward(&Tensor::new(&[[[1f64, 0., 2.]]], &Device::Cpu)?)?;
    assert_eq!(values(&y)?, [2., 7., 4.]);
    Ok(())
}

#[test]
fn convolutions_refuse_mismatched_shapes_with_an_error() -> Result<()> {
    let conv = |weight: &[usize], input: &[usize], padding| -> String {
        let conv = Conv2d::from_parts(random(weight, 1).expect("weight"), None, padding);
        conv.forward(&random(input, 2).expect("input")).expect_err("refused").to_string()
    };
    assert!(conv(&[2, 3, 3, 3], &[1, 2, 5, 5], 0).contains("the input has 2 channels, the kernel 3"));
    assert!(conv(&[2, 1, 5, 5], &[1, 1, 3, 3], 0).contains("larger than the padded input"));
    assert!(conv(&[2, 1, 3], &[1, 1, 5, 5], 0).contains("must be"));
    let f32_input = random(&[1, 1, 5, 5], 2)?.to_dtype(DType::F32)?;
    let mixed = Conv2d::from_parts(random(&[2, 1, 3, 3], 1)?, None, 0).forward(&f32_input);
    assert!(mixed.expect_err("refused").to_string().contains("one dtype"));
    Ok(())
}

/// The bits of `out` and of the gradients of `vars` and `input` (f32) after a backward pass.
fn output_and_gradient_bits(out: &Tensor, vars: &[&Var], input: &Var) -> Result<Vec<Vec<u32>>> {
    let grads = weighted_sum(out, 4)?.backward()?;
    let mut bits = vec![out.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect()];
    for var in vars.iter().chain([&input]) {
        let grad = grads.get(var).expect("gradient").flatten_all()?.to_vec1::<f32>()?;
        bits.push(grad.iter().map(|v| v.to_bits()).collect());
    }
    Ok(bits)
}

/// Forward and backward of a convolution and a pool after it (as three ops or as one).
fn conv_bits(conv: &Conv2d, vars: &[&Var], input: &Var, fused: bool) -> Result<Vec<Vec<u32>>> {
    let out = if fused { conv.forward_pool_relu(input)? } else { max_pool2x2_relu(&conv.forward(input)?)? };
    output_and_gradient_bits(&out, vars, input)
}

#[test]
fn conv_results_are_bit_identical_whatever_the_number_of_threads() -> Result<()> {
    // 37 samples: five chunks, the last partial, taken by candle's pool threads in whatever
    // order they come, against all of them run in order on this thread.
    let weight = random_var(&[6, 3, 5, 5], 1, DType::F32)?;
    let bias = random_var(&[6], 2, DType::F32)?;
    let input = random_var(&[37, 3, 12, 11], 3, DType::F32)?;
    let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), 1);
    for fused in [false, true] {
        let in_order = crate::layers::parallel::sequentially(|| conv_bits(&conv, &[&weight, &bias], &input, fused))?;
        for _ in 0..3 {
            let on_the_pool =
                crate::layers::parallel::on_the_pool(|| conv_bits(&conv, &[&weight, &bias], &input, fused))?;
            assert!(in_order == on_the_pool, "the pool's result differs");
        }
    }
    Ok(())
}

/// Random f32 kernel, bias and input of `case`, and the convolution over them.
fn f32_case(case: Conv2dCase) -> Result<(Var, Var, Var, Conv2d)> {
    let Conv2dCase { batch, in_channels, out_channels, height, width, kernel, padding } = case;
    let weight = random_var(&[out_channels, in_channels, kernel, kernel], 1, DType::F32)?;
    let bias = random_var(&[out_channels], 2, DType::F32)?;
    let input = random_var(&[batch, in_channels, height, width], 3, DType::F32)?;
    let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), padding);
    Ok((weight, bias, input, conv))
}

#[test]
fn fused_conv_pool_relu_equals_the_three_ops_bit_for_bit_and_passes_finite_differences() -> Result<()> {
    // Odd and even conv outputs (the pool drops an odd last row/column), padding, several
    // chunks with a partial last one, and one sample.
    let cases = [
        Conv2dCase { batch: 11, in_channels: 3, out_channels: 5, height: 9, width: 8, kernel: 3, padding: 1 },
        Conv2dCase { batch: 1, in_channels: 1, out_channels: 2, height: 6, width: 7, kernel: 2, padding: 0 },
        Conv2dCase { batch: 17, in_channels: 2, out_channels: 3, height: 12, width: 12, kernel: 5, padding: 0 },
    ];
    for case in cases {
        let (weight, bias, input, conv) = f32_case(case)?;
        let vars = [&weight, &bias];
        assert!(conv_bits(&conv, &vars, &input, true)? == conv_bits(&conv, &vars, &input, false)?, "{case:?}");

        let [weight, bias, input] = [&weight, &bias, &input].map(|v| Var::from_tensor(&v.to_dtype(DType::F64)?));
        let (weight, bias, input) = (weight?, bias?, input?);
        let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), case.padding);
        let vars = [("weight", &weight), ("bias", &bias), ("input", &input)];
        check_finite_differences(&vars, || weighted_sum(&conv.forward_pool_relu(&input)?, 6))?;
    }
    Ok(())
}

#[test]
fn fused_conv_relu_equals_conv_then_relu_bit_for_bit_and_passes_finite_differences() -> Result<()> {
    // One im2col product per chunk, tiles of rows (over 1,024 positions a sample), and the
    // Winograd path (16 channels each side, 1,024 tiles), each with several chunks.
    let cases = [
        Conv2dCase { batch: 11, in_channels: 3, out_channels: 5, height: 9, width: 8, kernel: 3, padding: 1 },
        Conv2dCase { batch: 3, in_channels: 2, out_channels: 3, height: 40, width: 33, kernel: 3, padding: 1 },
        Conv2dCase { batch: 4, in_channels: 16, out_channels: 16, height: 32, width: 32, kernel: 3, padding: 1 },
    ];
    for case in cases {
        let (weight, bias, input, conv) = f32_case(case)?;
        let vars = [&weight, &bias];
        let fused = output_and_gradient_bits(&conv.forward_relu(&input)?, &vars, &input)?;
        let separate = output_and_gradient_bits(&conv.forward(&input)?.relu()?, &vars, &input)?;
        assert!(fused == separate, "{case:?}");
        let zeros = fused[0].iter().filter(|&&bits| f32::from_bits(bits) == 0.0).count();
        assert!(zeros > 0 && zeros < fused[0].len(), "{case:?}: the relu clamps some outputs, not all");
    }
    let weight = Var::from_tensor(&random(&[3, 2, 3, 3], 1)?)?;
    let bias = Var::from_tensor(&random(&[3], 2)?)?;
    let input = Var::from_tensor(&random(&[2, 2, 6, 5], 3)?)?;
    let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), 1);
    let vars = [("weight", &weight), ("bias", &bias), ("input", &input)];
    check_finite_differences(&vars, || weighted_sum(&conv.forward_relu(&input)?, 6))
}

#[test]
fn upsampled_conv_equals_conv_of_the_upsampling_bit_for_bit_and_passes_finite_differences() -> Result<()> {
    // ×2 on the im2col path (and on tiles of rows: 2·21 = 42 rows of 40 columns), ×3 with
    // stride 2, and ×2 onto the Winograd path (16 channels, 32×32 planes); input gradients
    // through the up-sampling's adjoint.
    let cases = [
        (Conv2dCase { batch: 5, in_channels: 3, out_channels: 4, height: 4, width: 3, kernel: 3, padding: 1 }, 2, 1),
        (Conv2dCase { batch: 2, in_channels: 2, out_channels: 3, height: 21, width: 20, kernel: 3, padding: 1 }, 2, 1),
        (Conv2dCase { batch: 3, in_channels: 2, out_channels: 2, height: 3, width: 4, kernel: 3, padding: 0 }, 3, 2),
        (
            Conv2dCase { batch: 4, in_channels: 16, out_channels: 16, height: 16, width: 16, kernel: 3, padding: 1 },
            2,
            1,
        ),
    ];
    for (case, scale, stride) in cases {
        let (weight, bias, input, conv) = f32_case(case)?;
        let conv = conv.with_stride(stride);
        let vars = [&weight, &bias];
        let fused = output_and_gradient_bits(&conv.forward_upsampled(&input, scale)?, &vars, &input)?;
        let upsampled = super::upsample_bilinear_fused(&input, scale)?;
        let separate = output_and_gradient_bits(&conv.forward(&upsampled)?, &vars, &input)?;
        assert!(fused == separate, "{case:?} ×{scale}");
        assert_eq!(fused[3].len(), input.elem_count(), "{case:?}: the gradient of the input before up-sampling");
    }
    // An empty or 3-D input is an error, not a panic.
    let conv = Conv2d::from_parts(random(&[2, 3, 3, 3], 1)?, None, 1);
    let empty = conv.forward_upsampled(&Tensor::zeros((2, 3, 4, 0), DType::F64, &Device::Cpu)?, 2);
    assert!(empty.expect_err("refused").to_string().contains("empty input"));
    assert!(conv.forward_upsampled(&random(&[2, 3, 5], 2)?, 2).is_err());
    let weight = Var::from_tensor(&random(&[3, 2, 3, 3], 1)?)?;
    let bias = Var::from_tensor(&random(&[3], 2)?)?;
    let input = Var::from_tensor(&random(&[2, 2, 3, 4], 3)?)?;
    let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), 1);
    let vars = [("weight", &weight), ("bias", &bias), ("input", &input)];
    check_finite_differences(&vars, || weighted_sum(&conv.forward_upsampled(&input, 2)?, 6))
}

#[test]
fn only_a_2d_convolution_pools_its_output() -> Result<()> {
    // A [B, C, T] input with a [O, C, k] kernel is a valid 1-D convolution, but is not pooled.
    let conv = Conv2d::from_parts(random(&[2, 1, 3], 1)?, None, 0);
    let sequence = conv.forward_pool_relu(&random(&[2, 1, 7], 2)?);
    assert!(sequence.expect_err("refused").to_string().contains("only a 2-D convolution can pool"));
    Ok(())
}

/// Forward and backward of a 1-D convolution, relu and max over time (as three ops or as one).
fn conv1d_max_bits(conv: &Conv1d, vars: &[&Var], input: &Var, fused: bool) -> Result<Vec<Vec<u32>>> {
    let out = match fused {
        true => conv.forward_relu_max_over_time(input)?,
        false => conv.forward(input)?.relu()?.max(D::Minus1)?,
    };
    output_and_gradient_bits(&out, vars, input)
}

#[test]
fn fused_conv1d_relu_max_equals_the_three_ops_bit_for_bit_and_passes_finite_differences() -> Result<()> {
    // Random values have no ties, where the two differ (see the next test). Rows whose
    // maximum is negative (relu clips them) occur in every case; several chunks with a
    // partial last one, padding, odd lengths, a single output position.
    let cases = [
        Conv1dCase { batch: 19, in_channels: 4, out_channels: 6, length: 13, kernel: 3, padding: 0 },
        Conv1dCase { batch: 1, in_channels: 2, out_channels: 3, length: 5, kernel: 5, padding: 0 },
        Conv1dCase { batch: 9, in_channels: 3, out_channels: 8, length: 8, kernel: 4, padding: 2 },
    ];
    for case in cases {
        let Conv1dCase { batch, in_channels, out_channels, length, kernel, padding } = case;
        let weight = random_var(&[out_channels, in_channels, kernel], 1, DType::F32)?;
        let bias = random_var(&[out_channels], 2, DType::F32)?;
        let input = random_var(&[batch, in_channels, length], 3, DType::F32)?;
        let conv = Conv1d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), padding);
        let vars = [&weight, &bias];
        let fused = conv1d_max_bits(&conv, &vars, &input, true)?;
        assert!(fused == conv1d_max_bits(&conv, &vars, &input, false)?, "{case:?}");
        assert!(fused[0].contains(&0), "{case:?}: no row was clipped by relu");
        let in_order = crate::layers::parallel::sequentially(|| conv1d_max_bits(&conv, &vars, &input, true))?;
        let on_the_pool = crate::layers::parallel::on_the_pool(|| conv1d_max_bits(&conv, &vars, &input, true))?;
        assert!(in_order == on_the_pool, "{case:?}: the pool's result differs from one thread's");

        let [weight, bias, input] = [&weight, &bias, &input].map(|v| Var::from_tensor(&v.to_dtype(DType::F64)?));
        let (weight, bias, input) = (weight?, bias?, input?);
        let conv = Conv1d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), padding);
        let vars = [("weight", &weight), ("bias", &bias), ("input", &input)];
        check_finite_differences(&vars, || weighted_sum(&conv.forward_relu_max_over_time(&input)?, 6))?;
    }
    Ok(())
}

#[test]
fn max_over_time_gives_the_whole_gradient_to_the_first_of_tied_maxima() -> Result<()> {
    // The identity convolution (one channel, kernel [1], no bias) over three rows:
    // [1, 3, 3, 2] → 3, its gradient at the first 3 only; [-1, -2, -1, -3] → relu clips
    // it to 0, no gradient; [0.5, -1, 0.5, 0.5] → 0.5, gradient at the first. PyTorch's
    // `relu(x).max(dim=2).values` gives these values and gradients (torch 2.15).
    let rows = [[1f64, 3., 3., 2.], [-1., -2., -1., -3.], [0.5, -1., 0.5, 0.5]];
    let x = Var::from_tensor(&Tensor::new(&rows, &Device::Cpu)?.unsqueeze(1)?)?;
    let identity = Conv1d::from_parts(Tensor::new(&[[[1f64]]], &Device::Cpu)?, None, 0);
    let y = identity.forward_relu_max_over_time(&x)?;
    assert_eq!(y.dims(), [3, 1]);
    assert_eq!(values(&y)?, [3., 0., 0.5]);
    let grad = values(y.sum_all()?.backward()?.get(&x).expect("gradient"))?;
    assert_eq!(grad, [0., 1., 0., 0., 0., 0., 0., 0., 1., 0., 0., 0.]);
    // candle's relu → max gives every tied maximum the whole gradient: over padded text,
    // where every all-padding window has the same value, that multiplies it by their count.
    let candle = x.relu()?.max(D::Minus1)?.sum_all()?.backward()?;
    assert_eq!(values(candle.get(&x).expect("gradient"))?, [0., 1., 1., 0., 0., 0., 0., 0., 1., 0., 1., 1.]);
    Ok(())
}

#[test]
fn max_over_time_propagates_the_first_nan_and_passes_the_gradient_at_exactly_zero() -> Result<()> {
    // [1, NaN, 5, NaN] → NaN, its gradient at the first NaN; [-1, 0, -2, 0] → 0 at the
    // first 0, where the gradient passes (as through candle's relu and `max_pool2x2_relu`).
    let rows = [[1f64, f64::NAN, 5., f64::NAN], [-1., 0., -2., 0.]];
    let x = Var::from_tensor(&Tensor::new(&rows, &Device::Cpu)?.unsqueeze(1)?)?;
    let identity = Conv1d::from_parts(Tensor::new(&[[[1f64]]], &Device::Cpu)?, None, 0);
    let y = values(&identity.forward_relu_max_over_time(&x)?)?;
    assert!(y[0].is_nan() && y[1] == 0.0, "{y:?}");
    // d(2·y0 + 3·y1)/dx, so that the NaN output does not reach the other row's gradient.
    let weights = Tensor::new(&[[2f64], [3.]], &Device::Cpu)?;
    let loss = (identity.forward_relu_max_over_time(&x)? * weights)?.sum_all()?;
    let grad = values(loss.backward()?.get(&x).expect("gradient"))?;
    assert_eq!(grad, [0., 2., 0., 0., 0., 3., 0., 0.]);
    Ok(())
}

#[test]
fn only_a_1d_convolution_maxes_over_time() -> Result<()> {
    let conv = Conv1d::from_parts(random(&[2, 1, 3, 3], 1)?, None, 0);
    let maps = conv.forward_relu_max_over_time(&random(&[2, 1, 5, 5], 2)?);
    assert!(maps.expect_err("refused").to_string().contains("only a 1-D convolution can max over time"));
    Ok(())
}

#[test]
fn convolutions_under_the_candle_scheme_draw_their_parameters_exactly_as_candle_nn_does() -> Result<()> {
    // Parameters come from a seeded generator in construction order: the same names,
    // shapes, order and initialisation as candle-nn's conv1d/conv2d give the same model
    // (`init = "candle"`, what earlier versions drew).
    let draw = |build: &dyn Fn(candle_nn::VarBuilder) -> Result<()>| -> Result<Vec<(String, Vec<f64>)>> {
        let backend = Arc::new(SeededBackend::new(5));
        build(backend.builder(DType::F32, &Device::Cpu).pp("layer"))?;
        backend.parameters().named().map(|(name, var)| Ok((name.to_string(), values(var)?))).collect()
    };
    let config = candle_nn::Conv2dConfig { padding: 2, ..Default::default() };
    let ours = draw(&|vb| Conv2d::new(3, 7, 5, 2, InitScheme::Candle, vb).map(drop))?;
    assert_eq!(ours, draw(&|vb| candle_nn::conv2d(3, 7, 5, config, vb).map(drop))?);
    assert_eq!(ours.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["layer.bias", "layer.weight"]);
    let config = candle_nn::Conv1dConfig { padding: 1, ..Default::default() };
    let ours = draw(&|vb| Conv1d::new(4, 6, 3, 1, InitScheme::Candle, vb).map(drop))?;
    assert_eq!(ours, draw(&|vb| candle_nn::conv1d(4, 6, 3, config, vb).map(drop))?);
    Ok(())
}

/// `max_pool2x2` (or the relu variant) of `x` `[H, W]` (one sample, one channel)
/// gives `pooled`, and the gradient of its sum is `grad` (row-major).
fn check_pool(x: &[&[f64]], relu: bool, pooled: &[f64], grad: &[f64]) -> Result<()> {
    let (height, width) = (x.len(), x[0].len());
    let flat: Vec<f64> = x.iter().flat_map(|row| row.iter().copied()).collect();
    let input = Var::from_tensor(&Tensor::from_vec(flat, (1, 1, height, width), &Device::Cpu)?)?;
    let ours = if relu { max_pool2x2_relu(&input)? } else { max_pool2x2(&input)? };
    let our_grad = ours.sum_all()?.backward()?.get(&input).expect("gradient").clone();
    assert_eq!(values(&ours)?, pooled, "{x:?}, relu {relu}: pooled");
    assert_eq!(values(&our_grad)?, grad, "{x:?}, relu {relu}: gradient");
    Ok(())
}

#[test]
fn max_pool_matches_hand_computed_cases() -> Result<()> {
    // PyTorch's max_pool2d (and relu) give the same values and gradients.
    // A hand case: the whole gradient to the arg-max (candle 0.11.1 gives 0.25).
    check_pool(&[&[1., 2.], &[3., 4.]], false, &[4.], &[0., 0., 0., 1.])?;
    // Ties: the first maximum in row-major order takes it all.
    check_pool(&[&[5., 5.], &[5., 5.]], false, &[5.], &[1., 0., 0., 0.])?;
    check_pool(&[&[1., 3.], &[3., 2.]], false, &[3.], &[0., 1., 0., 0.])?;
    // Odd sizes: the last row and column are dropped, as in PyTorch (3×5 → 1×2).
    check_pool(
        &[&[1., 2., 0., 7., 9.], &[3., 4., 8., 6., 9.], &[9., 9., 9., 9., 9.]],
        false,
        &[4., 8.],
        &[0., 0., 0., 0., 0., 0., 1., 1., 0., 0., 0., 0., 0., 0., 0.],
    )?;
    // relu: a negative maximum gives 0 and no gradient ...
    check_pool(&[&[-1., -2.], &[-3., -4.]], true, &[0.], &[0., 0., 0., 0.])?;
    // ... a maximum of exactly 0 passes it (candle's relu has gradient 1 at 0) ...
    check_pool(&[&[-1., 0.], &[-3., -4.]], true, &[0.], &[0., 1., 0., 0.])?;
    // ... and a positive one is untouched.
    check_pool(&[&[-1., 2.], &[0.5, -4.], &[1., 1.]], true, &[2.], &[0., 1., 0., 0., 0., 0.])
}

#[test]
fn max_pool_matches_candle_values_and_finite_difference_gradients_on_odd_shapes() -> Result<()> {
    for (batch, channels, height, width) in [(1, 1, 2, 2), (3, 2, 5, 7), (2, 3, 6, 4), (1, 4, 9, 3), (2, 1, 3, 3)] {
        let input = random_var(&[batch, channels, height, width], 7, DType::F64)?;
        // candle's max_pool2d forward is right (only its backward is not); it drops odd edges too.
        let (even_height, even_width) = (height / 2 * 2, width / 2 * 2);
        let reference = input.narrow(2, 0, even_height)?.narrow(3, 0, even_width)?.max_pool2d(2)?;
        assert_close("max_pool2x2", &max_pool2x2(&input)?, &reference, 0.0)?;
        assert_close("max_pool2x2_relu", &max_pool2x2_relu(&input)?, &reference.relu()?, 0.0)?;
        for relu in [false, true] {
            let pool = |x: &Tensor| if relu { max_pool2x2_relu(x) } else { max_pool2x2(x) };
            check_finite_differences(&[("input", &input)], || weighted_sum(&pool(&input)?, 8))?;
        }
    }
    Ok(())
}

#[test]
fn max_pool_of_a_single_column_is_empty_and_passes_no_gradient() -> Result<()> {
    let input = random_var(&[2, 1, 3, 1], 7, DType::F64)?;
    let pooled = max_pool2x2_relu(&input)?;
    assert_eq!(pooled.dims(), &[2, 1, 1, 0]);
    let grad = (pooled.sum_all()? + input.sum_all()?)?.backward()?.get(&input).expect("gradient").clone();
    assert_eq!(values(&grad)?, [1.0; 6], "only the direct term's gradient");
    Ok(())
}

#[test]
fn max_pool_reads_non_contiguous_inputs() -> Result<()> {
    // A transposed view is pooled as its values, not as its memory.
    let input = random_var(&[2, 3, 4, 6], 9, DType::F64)?;
    let transposed = input.transpose(2, 3)?;
    let expected = max_pool2x2(&transposed.contiguous()?)?;
    assert_close("transposed", &max_pool2x2(&transposed)?, &expected, 0.0)?;
    check_finite_differences(&[("input", &input)], || weighted_sum(&max_pool2x2_relu(&input.transpose(2, 3)?)?, 3))
}

#[test]
fn small_parallel_loops_run_on_the_calling_thread() {
    use crate::layers::parallel::{parallel_for, MIN_PARALLEL_COST};
    // Waking a pool worker costs more than a small loop: below the threshold nothing is handed over.
    let caller = std::thread::current().id();
    let elsewhere = std::sync::atomic::AtomicUsize::new(0);
    let ran = std::sync::atomic::AtomicUsize::new(0);
    parallel_for(64, MIN_PARALLEL_COST - 1, |_| {
        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if std::thread::current().id() != caller {
            elsewhere.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert_eq!(ran.into_inner(), 64);
    assert_eq!(elsewhere.into_inner(), 0);
}

#[test]
fn a_thread_kept_to_one_thread_runs_even_large_loops_itself_and_counts_their_work() {
    use crate::layers::parallel::{parallel_for, run_on_one_thread, take_parallel_work, MIN_PARALLEL_COST};
    let caller = std::thread::current().id();
    let elsewhere = std::sync::atomic::AtomicUsize::new(0);
    take_parallel_work();
    run_on_one_thread(true);
    parallel_for(64, MIN_PARALLEL_COST * 100, |_| {
        if std::thread::current().id() != caller {
            elsewhere.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    run_on_one_thread(false);
    assert_eq!(elsewhere.into_inner(), 0);
    assert_eq!(take_parallel_work(), (MIN_PARALLEL_COST * 100) as u64, "the work is counted");
    assert_eq!(take_parallel_work(), 0, "and taken once");
}

#[test]
fn gathered_rows_are_an_odd_number_of_cache_lines_apart() {
    use super::kernels::odd_lines;
    // f32: 16 to a 64-byte line; 768 values are 48 lines, 49 after rounding.
    assert_eq!(odd_lines::<f32>(768), 784);
    assert_eq!(odd_lines::<f32>(1), 16);
    assert_eq!(odd_lines::<f32>(17), 48);
    assert_eq!(odd_lines::<f32>(0), 16, "at least one line");
    // f64: 8 to a line.
    assert_eq!(odd_lines::<f64>(16), 24);
    for values in 1..300 {
        let (stride, lines) = (odd_lines::<f32>(values), odd_lines::<f32>(values) / 16);
        assert!(stride >= values && stride % 16 == 0 && lines % 2 == 1, "{values} → {stride}");
    }
}
