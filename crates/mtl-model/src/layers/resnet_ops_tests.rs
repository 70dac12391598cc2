//! Values and gradients of the ResNet building blocks against references: candle's
//! conv2d with a stride (forward and backward), finite differences, PyTorch's batch-norm
//! semantics by hand, hand-computed pooling cases, and the bilinear numbers printed by
//! `benches/reference/upsample_reference.py`.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor, Var};

use super::batchnorm::{batch_norm_train_composed, batch_norm_train_fused, Epilogue};
use super::parallel::{on_the_pool, sequentially};
use super::{global_avg_pool2d, max_pool2d, upsample_bilinear, upsample_nearest, BatchNorm2d, Conv2d, BATCH_NORM_EPS};
use crate::init::{InitScheme, SeededBackend};
use crate::testing::{assert_close, check_gradients, output_and_gradients, random, random_var, values, weighted_sum};

fn assert_values_close(what: &str, ours: &Tensor, expected: &[f64], tolerance: f64) -> Result<()> {
    let ours = values(ours)?;
    assert_eq!(ours.len(), expected.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!((a - b).abs() <= tolerance, "{what}[{i}]: ours {a}, expected {b}");
    }
    Ok(())
}

/// The bits of every tensor (f32).
fn bits(tensors: &[Tensor]) -> Result<Vec<Vec<u32>>> {
    tensors.iter().map(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect())).collect()
}

// ---- strided convolution ----

#[derive(Clone, Copy, Debug)]
struct StridedCase {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

const STRIDED_CASES: [StridedCase; 12] = [
    // ResNet's 1×1 projection shortcut, stride 2, even and odd sizes.
    StridedCase { batch: 3, in_channels: 4, out_channels: 6, height: 8, width: 8, kernel: 1, stride: 2, padding: 0 },
    StridedCase { batch: 2, in_channels: 3, out_channels: 2, height: 7, width: 5, kernel: 1, stride: 2, padding: 0 },
    StridedCase { batch: 2, in_channels: 2, out_channels: 3, height: 6, width: 7, kernel: 1, stride: 1, padding: 1 },
    // The basic block's down-sampling 3×3, stride 2, padding 1; and without padding.
    StridedCase { batch: 3, in_channels: 3, out_channels: 4, height: 8, width: 8, kernel: 3, stride: 2, padding: 1 },
    StridedCase { batch: 2, in_channels: 2, out_channels: 3, height: 9, width: 6, kernel: 3, stride: 2, padding: 0 },
    StridedCase { batch: 2, in_channels: 2, out_channels: 2, height: 7, width: 7, kernel: 3, stride: 1, padding: 3 },
    StridedCase { batch: 1, in_channels: 1, out_channels: 2, height: 5, width: 6, kernel: 3, stride: 3, padding: 2 },
    // The ImageNet stem's 7×7, stride 2, padding 3, and other paddings.
    StridedCase { batch: 3, in_channels: 3, out_channels: 4, height: 16, width: 13, kernel: 7, stride: 2, padding: 3 },
    StridedCase { batch: 2, in_channels: 2, out_channels: 3, height: 9, width: 10, kernel: 7, stride: 2, padding: 0 },
    StridedCase { batch: 2, in_channels: 1, out_channels: 2, height: 8, width: 8, kernel: 7, stride: 1, padding: 2 },
    // Several chunks in the backward pass (5, 5, 5 and 2 samples), the last one partial.
    StridedCase { batch: 17, in_channels: 2, out_channels: 3, height: 7, width: 8, kernel: 3, stride: 2, padding: 1 },
    // A kernel wider than the image: some outputs read only padding.
    StridedCase { batch: 2, in_channels: 2, out_channels: 2, height: 3, width: 4, kernel: 7, stride: 2, padding: 3 },
];

/// `x` `[B, C, H, W]` with zero rows and columns appended until `(H + 2·padding − kernel)`
/// and the same of W leave the remainder `stride − 1`: the same outputs (the new cells
/// lie past the last window or read as the zero padding would), and a shape that candle's
/// conv2d backward handles (see the next test).
fn pad_end_for_candle(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let mut x = x.clone();
    for dim in [2, 3] {
        let (dims, extent) = (x.dims().to_vec(), x.dim(dim)? + 2 * padding - kernel);
        let mut zeros = dims.clone();
        zeros[dim] = stride - 1 - extent % stride;
        x = Tensor::cat(&[&x, &Tensor::zeros(zeros, x.dtype(), x.device())?], dim)?;
    }
    Ok(x)
}

#[test]
fn candle_conv2d_backward_fails_when_height_and_width_leave_different_remainders() -> Result<()> {
    // candle 0.11.1 sizes the transposed convolution of the input gradient from the height
    // alone: 9×6, kernel 3, stride 2 ((9 − 3) mod 2 = 0, (6 − 3) mod 2 = 1) is refused.
    let input = random_var(&[1, 1, 9, 6], 1, DType::F64)?;
    let out = input.conv2d(&random(&[1, 1, 3, 3], 2)?, 0, 2, 1, 1)?;
    let refused = out.sum_all()?.backward().expect_err("candle refuses").to_string();
    assert!(refused.contains("shape mismatch"), "{refused}");
    Ok(())
}

/// Values and the gradients of input, kernel and bias against candle's conv2d with the
/// same stride and padding (whose backward is right where it runs).
fn check_strided_conv(case: StridedCase, dtype: DType, tolerance: f64) -> Result<()> {
    let StridedCase { batch, in_channels, out_channels, height, width, kernel, stride, padding } = case;
    let weight = random_var(&[out_channels, in_channels, kernel, kernel], 1, dtype)?;
    let bias = random_var(&[out_channels], 2, dtype)?;
    let input = random_var(&[batch, in_channels, height, width], 3, dtype)?;
    let (w, b) = (weight.as_tensor().clone(), Some(bias.as_tensor().clone()));
    let ours = Conv2d::from_parts(w.clone(), b.clone(), padding).with_stride(stride);
    let config = candle_nn::Conv2dConfig { padding, stride, ..Default::default() };
    let reference = candle_nn::Conv2d::new(w, b, config);
    let vars = [&input, &weight, &bias];
    let our_results = output_and_gradients(ours.forward(&input)?, &vars)?;
    let padded = pad_end_for_candle(&input, kernel, stride, padding)?;
    let reference_results = output_and_gradients(reference.forward(&padded)?, &vars)?;
    for (name, (a, b)) in
        ["output", "dinput", "dweight", "dbias"].iter().zip(our_results.iter().zip(&reference_results))
    {
        assert_close(&format!("{case:?} {name}"), a, b, tolerance)?;
    }
    Ok(())
}

#[test]
fn strided_conv2d_matches_candle_values_and_gradients_in_f64_and_f32() -> Result<()> {
    for case in STRIDED_CASES {
        check_strided_conv(case, DType::F64, 1e-12)?;
        check_strided_conv(case, DType::F32, 1e-4)?;
    }
    Ok(())
}

#[test]
fn strided_conv2d_passes_finite_differences() -> Result<()> {
    for case in [STRIDED_CASES[0], STRIDED_CASES[3], STRIDED_CASES[7], STRIDED_CASES[11]] {
        let StridedCase { batch, in_channels, out_channels, height, width, kernel, stride, padding } = case;
        let weight = random_var(&[out_channels, in_channels, kernel, kernel], 1, DType::F64)?;
        let bias = random_var(&[out_channels], 2, DType::F64)?;
        let input = random_var(&[batch, in_channels, height, width], 3, DType::F64)?;
        let conv =
            Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), padding).with_stride(stride);
        let vars = [("input", &input), ("weight", &weight), ("bias", &bias)];
        check_gradients(&vars, 200, || weighted_sum(&conv.forward(&input)?, 5))?;
    }
    Ok(())
}

#[test]
fn strided_conv2d_hand_case() -> Result<()> {
    // x = 0..16 as a 4×4 image, kernel 2×2 of ones, stride 2, padding 0: each output is the
    // sum of one 2×2 block: [0+1+4+5, 2+3+6+7, 8+9+12+13, 10+11+14+15] = [10, 18, 42, 50].
    // With padding 1 and a 1×1 kernel of 1, stride 2: x at rows/columns −1, 1, 3 → the
    // padded corner 0, then x[1,1] = 5, x[1,3] = 7, x[3,1] = 13, x[3,3] = 15.
    let x = Tensor::arange(0f64, 16., &Device::Cpu)?.reshape((1, 1, 4, 4))?;
    let ones = |k: usize| Tensor::ones((1, 1, k, k), DType::F64, &Device::Cpu);
    let blocks = Conv2d::from_parts(ones(2)?, None, 0).with_stride(2).forward(&x)?;
    assert_eq!(values(&blocks)?, [10., 18., 42., 50.]);
    let picked = Conv2d::from_parts(ones(1)?, None, 1).with_stride(2).forward(&x)?;
    assert_eq!(values(&picked)?, [0., 0., 0., 0., 5., 7., 0., 13., 15.]);
    Ok(())
}

#[test]
fn strided_conv2d_results_are_bit_identical_whatever_the_number_of_threads() -> Result<()> {
    let weight = random_var(&[6, 3, 3, 3], 1, DType::F32)?;
    let bias = random_var(&[6], 2, DType::F32)?;
    let input = random_var(&[37, 3, 12, 11], 3, DType::F32)?;
    let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), 1).with_stride(2);
    let run = || bits(&output_and_gradients(conv.forward(&input)?, &[&weight, &bias, &input])?);
    let in_order = sequentially(run)?;
    assert!(in_order == on_the_pool(run)?, "the pool's result differs");
    Ok(())
}

#[test]
fn stride_one_is_the_default_and_stride_zero_is_refused() -> Result<()> {
    let conv = Conv2d::from_parts(random(&[2, 1, 3, 3], 1)?, None, 1);
    assert_eq!(conv.stride(), 1);
    let x = random(&[2, 1, 5, 5], 2)?;
    assert_eq!(values(&conv.forward(&x)?)?, values(&conv.clone().with_stride(1).forward(&x)?)?);
    let refused = conv.with_stride(0).forward(&x).expect_err("refused").to_string();
    assert!(refused.contains("stride 0"), "{refused}");
    Ok(())
}

#[test]
fn conv2d_without_bias_creates_only_the_weight() -> Result<()> {
    let backend = Arc::new(SeededBackend::new(5));
    let vb = backend.builder(DType::F64, &Device::Cpu).pp("conv");
    let conv = Conv2d::new_without_bias(3, 4, 3, 1, InitScheme::KaimingNormal, vb)?.with_stride(2);
    let names: Vec<String> = backend.parameters().named().map(|(name, _)| name.to_string()).collect();
    assert_eq!(names, ["conv.weight"]);
    assert_eq!(conv.forward(&random(&[2, 3, 8, 8], 1)?)?.dims(), &[2, 4, 4, 4]);
    Ok(())
}

// ---- batch norm ----

/// A batch norm with random affine parameters (so that their gradients are not trivial).
fn random_batch_norm(channels: usize, dtype: DType) -> Result<(BatchNorm2d, Var, Var)> {
    let weight = random_var(&[channels], 11, dtype)?;
    let bias = random_var(&[channels], 12, dtype)?;
    let norm = BatchNorm2d::from_parts(weight.as_tensor().clone(), bias.as_tensor().clone())?;
    Ok((norm, weight, bias))
}

#[test]
fn batch_norm_training_and_evaluation_match_hand_computed_values() -> Result<()> {
    // One channel, x = [1, 2, 3, 4] as [2, 1, 1, 2], weight 2, bias 1. PyTorch's
    // nn.BatchNorm2d(1) in training: mean 2.5, biased var 1.25, so
    // y = 2·(x − 2.5)/√(1.25 + 1e-5) + 1; running mean 0.9·0 + 0.1·2.5 = 0.25, running var
    // 0.9·1 + 0.1·(5/3) (the unbiased 1.25·4/3) = 1.0666….
    let x = Tensor::new(&[1f64, 2., 3., 4.], &Device::Cpu)?.reshape((2, 1, 1, 2))?;
    let norm = BatchNorm2d::from_parts(Tensor::new(&[2f64], &Device::Cpu)?, Tensor::new(&[1f64], &Device::Cpu)?)?;
    let expected: Vec<f64> =
        [1., 2., 3., 4.].iter().map(|v| 2.0 * (v - 2.5) / (1.25 + BATCH_NORM_EPS).sqrt() + 1.0).collect();
    assert_values_close("training output", &norm.forward_t(&x, true)?, &expected, 1e-12)?;
    let (mean, var) = norm.running_stats();
    assert_values_close("running mean", &mean, &[0.25], 1e-15)?;
    assert_values_close("running var", &var, &[0.9 + 0.1 * 5.0 / 3.0], 1e-15)?;
    // Evaluation: y = 2·(x − 0.25)/√(1.0666… + 1e-5) + 1, and the running stats stay.
    let running_var = 0.9 + 0.1 * 5.0 / 3.0;
    let expected: Vec<f64> =
        [1., 2., 3., 4.].iter().map(|v| 2.0 * (v - 0.25) / (running_var + BATCH_NORM_EPS).sqrt() + 1.0).collect();
    assert_values_close("evaluation output", &norm.forward_t(&x, false)?, &expected, 1e-12)?;
    assert_values_close("running mean after evaluation", &norm.running_stats().0, &[0.25], 1e-15)?;
    // A second training step blends again: 0.9·0.25 + 0.1·2.5.
    norm.forward_t(&x, true)?;
    assert_values_close("running mean after two steps", &norm.running_stats().0, &[0.475], 1e-15)?;
    Ok(())
}

#[test]
fn batch_norm_fused_op_matches_the_composed_ops_in_values_gradients_and_statistics() -> Result<()> {
    for (dtype, tolerance) in [(DType::F64, 1e-10), (DType::F32, 2e-4)] {
        for shape in [[4, 3, 5, 6], [1, 2, 3, 3], [9, 5, 1, 1], [2, 1, 7, 1], [3, 4, 8, 8]] {
            let (norm, weight, bias) = random_batch_norm(shape[1], dtype)?;
            // Not centred, not unit: the statistics matter.
            let input = Var::from_tensor(&(random(&shape, 13)?.affine(3.0, 2.0)?.to_dtype(dtype)?))?;
            let skip = Var::from_tensor(&random(&shape, 18)?.to_dtype(dtype)?)?;
            let vars = [&input, &weight, &bias, &skip];
            let epilogues =
                [Epilogue::None, Epilogue::Relu { skip: None }, Epilogue::Relu { skip: Some(skip.as_tensor()) }];
            for epilogue in epilogues {
                let run = |fused: bool| -> Result<Vec<Tensor>> {
                    let (w, b) = (weight.as_tensor(), bias.as_tensor());
                    let (ys, mean, var) = match fused {
                        true => batch_norm_train_fused(&input, w, b, epilogue)?,
                        false => batch_norm_train_composed(&input, w, b, epilogue)?,
                    };
                    // The ReLU clamps some outputs: the gradients of the others flow back.
                    let clamped = values(&ys)?.iter().filter(|&&v| v == 0.0).count();
                    let relu = matches!(epilogue, Epilogue::Relu { .. });
                    assert!(!relu || clamped > 0, "{shape:?} {epilogue:?}: nothing clamped");
                    let used = if let Epilogue::Relu { skip: Some(_) } = epilogue { &vars[..] } else { &vars[..3] };
                    let mut results = output_and_gradients(ys, used)?;
                    results.extend([mean, var]);
                    Ok(results)
                };
                let names = ["output", "dinput", "dweight", "dbias", "dskip", "mean", "var"];
                let names =
                    names.iter().filter(|n| **n != "dskip" || matches!(epilogue, Epilogue::Relu { skip: Some(_) }));
                let (fused, composed) = (run(true)?, run(false)?);
                assert_eq!(fused.len(), names.clone().count());
                for (name, (a, b)) in names.zip(fused.iter().zip(&composed)) {
                    assert_close(&format!("{shape:?} {dtype:?} {epilogue:?} {name}"), a, b, tolerance)?;
                }
            }
            drop(norm);
        }
    }
    Ok(())
}

#[test]
fn batch_norm_passes_finite_differences_in_training_and_evaluation() -> Result<()> {
    for shape in [[3, 2, 4, 5], [5, 3, 1, 1], [1, 2, 3, 2]] {
        let (norm, weight, bias) = random_batch_norm(shape[1], DType::F64)?;
        let input = Var::from_tensor(&random(&shape, 14)?.affine(2.0, -1.0)?)?;
        let skip = Var::from_tensor(&random(&shape, 19)?)?;
        let vars = [("input", &input), ("weight", &weight), ("bias", &bias)];
        let with_skip = [("input", &input), ("weight", &weight), ("bias", &bias), ("skip", &skip)];
        // Training through the statistics, fused (the CPU path) and composed (other devices),
        // alone and followed by the ReLU, with and without a skip input.
        for train in [true, false] {
            if !train {
                norm.set_running_stats(&random(&[shape[1]], 15)?, &random(&[shape[1]], 16)?.abs()?)?;
            }
            check_gradients(&vars, 200, || weighted_sum(&norm.forward_t(&input, train)?, 6))?;
            check_gradients(&vars, 200, || weighted_sum(&norm.forward_relu(&input, train, 0, None)?, 6))?;
            let residual = || norm.forward_relu(&input, train, 0, Some(skip.as_tensor()));
            check_gradients(&with_skip, 200, || weighted_sum(&residual()?, 6))?;
        }
        let composed = || batch_norm_train_composed(&input, weight.as_tensor(), bias.as_tensor(), Epilogue::None);
        check_gradients(&vars, 200, || weighted_sum(&composed()?.0, 6))?;
    }
    Ok(())
}

#[test]
fn batch_norm_with_relu_and_skip_matches_a_hand_computed_case() -> Result<()> {
    // x = [1, 2, 3, 4] as [2, 1, 1, 2], weight 2, bias 1: norm(x) = 2·(x − 2.5)/√1.25 + 1
    // ≈ [−1.683, 0.106, 1.894, 3.683]; + skip [1, −1, −2, 0] → [−0.683, −0.894, −0.106,
    // 3.683]; relu keeps the last. d/dskip of Σ out = [0, 0, 0, 1]; through the batch
    // statistics d/dx = 2/√1.25·(g − mean g − x̂·mean(g·x̂)) with g = [0, 0, 0, 1].
    let device = &Device::Cpu;
    let x = Var::from_tensor(&Tensor::new(&[1f64, 2., 3., 4.], device)?.reshape((2, 1, 1, 2))?)?;
    let skip = Var::from_tensor(&Tensor::new(&[1f64, -1., -2., 0.], device)?.reshape((2, 1, 1, 2))?)?;
    let norm = BatchNorm2d::from_parts(Tensor::new(&[2f64], device)?, Tensor::new(&[1f64], device)?)?;
    let out = norm.forward_relu(&x, true, 0, Some(skip.as_tensor()))?;
    let inv_std = 1.0 / (1.25 + BATCH_NORM_EPS).sqrt();
    let normed: Vec<f64> = [1., 2., 3., 4.].iter().map(|v| 2.0 * (v - 2.5) * inv_std + 1.0).collect();
    assert_values_close("output", &out, &[0.0, 0.0, 0.0, normed[3]], 1e-12)?;
    let grads = out.sum_all()?.backward()?;
    assert_values_close("dskip", grads.get(&skip).expect("skip gradient"), &[0., 0., 0., 1.], 0.0)?;
    let x_hat: Vec<f64> = [1., 2., 3., 4.].iter().map(|v| (v - 2.5) * inv_std).collect();
    let mean_g_xhat = x_hat[3] / 4.0;
    let dx: Vec<f64> = (0..4).map(|i| 2.0 * inv_std * ([0., 0., 0., 1.][i] - 0.25 - x_hat[i] * mean_g_xhat)).collect();
    assert_values_close("dx", grads.get(&x).expect("x gradient"), &dx, 1e-12)?;
    Ok(())
}

#[test]
fn batch_norm_running_statistics_follow_pytorchs_update() -> Result<()> {
    // Over three steps, running = 0.9·running + 0.1·batch, the variance unbiased (n/(n − 1)).
    let norm = BatchNorm2d::from_parts(
        Tensor::ones(3, DType::F64, &Device::Cpu)?,
        Tensor::zeros(3, DType::F64, &Device::Cpu)?,
    )?;
    let (mut mean, mut var) = (vec![0.0; 3], vec![1.0; 3]);
    for step in 0..3 {
        let x = random(&[4, 3, 2, 5], 20 + step)?.affine(1.5, step as f64)?;
        norm.forward_t(&x, true)?;
        let per_channel = x.transpose(0, 1)?.reshape((3, ()))?;
        let n = per_channel.dim(1)? as f64;
        let batch_mean = values(&per_channel.mean(1)?)?;
        let sums = values(&per_channel.broadcast_sub(&per_channel.mean_keepdim(1)?)?.sqr()?.sum(1)?)?;
        for c in 0..3 {
            mean[c] = 0.9 * mean[c] + 0.1 * batch_mean[c];
            var[c] = 0.9 * var[c] + 0.1 * sums[c] / (n - 1.0);
        }
    }
    let (running_mean, running_var) = norm.running_stats();
    assert_values_close("running mean", &running_mean, &mean, 1e-12)?;
    assert_values_close("running var", &running_var, &var, 1e-12)?;
    Ok(())
}

#[test]
fn batch_norm_parameters_and_running_statistics_are_created_and_restored() -> Result<()> {
    let backend = Arc::new(SeededBackend::new(5));
    let norm = BatchNorm2d::new(3, backend.builder(DType::F32, &Device::Cpu).pp("bn"))?;
    let named: Vec<(String, Vec<f64>)> =
        backend.parameters().named().map(|(name, var)| Ok((name.to_string(), values(var)?))).collect::<Result<_>>()?;
    assert_eq!(named, [("bn.bias".to_string(), vec![0.0; 3]), ("bn.weight".to_string(), vec![1.0; 3])]);
    let (mean, var) = norm.running_stats();
    assert_eq!((values(&mean)?, values(&var)?), (vec![0.0; 3], vec![1.0; 3]));
    assert_eq!(mean.dtype(), DType::F32);
    // A checkpoint's statistics come back in the layer's dtype; a clone shares them.
    let clone = norm.clone();
    norm.set_running_stats(&Tensor::new(&[1f64, 2., 3.], &Device::Cpu)?, &Tensor::new(&[4f64, 5., 6.], &Device::Cpu)?)?;
    let (mean, var) = clone.running_stats();
    assert_eq!((values(&mean)?, values(&var)?, mean.dtype()), (vec![1., 2., 3.], vec![4., 5., 6.], DType::F32));
    let wrong = norm.set_running_stats(&Tensor::zeros(2, DType::F32, &Device::Cpu)?, &var);
    assert!(wrong.expect_err("refused").to_string().contains("for 3 channels"));
    // Training needs two values per channel, as in PyTorch.
    let single = norm.forward_t(&Tensor::ones((1, 3, 1, 1), DType::F32, &Device::Cpu)?, true);
    assert!(single.expect_err("refused").to_string().contains("more than one value per channel"));
    Ok(())
}

#[test]
fn batch_norm_results_are_bit_identical_whatever_the_number_of_threads() -> Result<()> {
    let (norm, weight, bias) = random_batch_norm(6, DType::F32)?;
    let input = random_var(&[16, 6, 20, 20], 17, DType::F32)?;
    let run = || {
        let mut tensors = output_and_gradients(norm.forward_t(&input, true)?, &[&input, &weight, &bias])?;
        tensors.extend([norm.running_stats().0, norm.running_stats().1]);
        bits(&tensors)
    };
    let in_order = sequentially(run)?;
    let on_pool = on_the_pool(run)?;
    // The running statistics moved on between the runs; the rest must be equal.
    assert!(in_order[..4] == on_pool[..4], "the pool's result differs");
    Ok(())
}

// ---- pooling ----

fn image(rows: &[&[f64]]) -> Result<Var> {
    let (height, width) = (rows.len(), rows[0].len());
    let flat: Vec<f64> = rows.iter().flat_map(|row| row.iter().copied()).collect();
    Var::from_tensor(&Tensor::from_vec(flat, (1, 1, height, width), &Device::Cpu)?)
}

/// `max_pool2d(x, kernel, stride, padding)` of one plane gives `pooled`, and the gradient
/// of its sum is `grad` (row-major).
fn check_max_pool(
    x: &[&[f64]],
    (kernel, stride, padding): (usize, usize, usize),
    pooled: &[f64],
    grad: &[f64],
) -> Result<()> {
    let input = image(x)?;
    let out = max_pool2d(&input, kernel, stride, padding)?;
    let our_grad = values(out.sum_all()?.backward()?.get(&input).expect("gradient"))?;
    let out = values(&out)?;
    let same =
        |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
    assert!(same(&out, pooled), "{x:?}: pooled {out:?}, expected {pooled:?}");
    assert_eq!(our_grad, grad, "{x:?}: gradient");
    Ok(())
}

#[test]
fn max_pool2d_matches_hand_computed_cases() -> Result<()> {
    // ResNet's stem pool, 3×3 / 2, padding 1, on 4×4 → 2×2. The windows cover rows (and
    // columns) 0–1 and 1–3; both top windows pick the 9, which gathers both gradients
    // (PyTorch's max_pool2d backward adds them too).
    let x: &[&[f64]] = &[&[1., 2., 3., 4.], &[5., 9., 7., 8.], &[0., 10., 6., 12.], &[13., 11., 14., 15.]];
    let grad = [0., 0., 0., 0., 0., 2., 0., 0., 0., 0., 0., 0., 1., 0., 0., 1.];
    check_max_pool(x, (3, 2, 1), &[9., 9., 13., 15.], &grad)?;
    // Padding is −∞, not 0: negative maxima come through.
    let x: &[&[f64]] = &[&[-1., -2.], &[-3., -4.]];
    check_max_pool(x, (3, 2, 1), &[-1.], &[1., 0., 0., 0.])?;
    // Ties: the first maximum in row-major order takes the whole gradient (candle's
    // max_pool2d backward gives 2×2 windows a quarter each).
    check_max_pool(&[&[5., 5.], &[5., 5.]], (3, 2, 1), &[5.], &[1., 0., 0., 0.])?;
    check_max_pool(&[&[1., 4.], &[4., 2.]], (2, 2, 0), &[4.], &[0., 1., 0., 0.])?;
    // A NaN wins its window.
    check_max_pool(&[&[1., f64::NAN], &[3., 2.]], (2, 1, 0), &[f64::NAN], &[0., 1., 0., 0.])?;
    // 3×3 / 1 with padding 1 keeps the size; the centre 5 wins the four windows around it.
    let x: &[&[f64]] = &[&[1., 0., 2.], &[0., 5., 0.], &[3., 0., 4.]];
    check_max_pool(x, (3, 1, 1), &[5.; 9], &[0., 0., 0., 0., 9., 0., 0., 0., 0.])
}

/// candle's max_pool2d forward (right; only its backward is not) over the input padded with −∞.
fn reference_max_pool(xs: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let (b, c, h, w) = xs.dims4()?;
    let rows = Tensor::full(f64::NEG_INFINITY, (b, c, padding, w), &Device::Cpu)?;
    let padded = Tensor::cat(&[&rows, xs, &rows], 2)?;
    let columns = Tensor::full(f64::NEG_INFINITY, (b, c, h + 2 * padding, padding), &Device::Cpu)?;
    Tensor::cat(&[&columns, &padded, &columns], 3)?.max_pool2d_with_stride(kernel, stride)
}

#[test]
fn max_pool2d_matches_candle_values_and_finite_difference_gradients() -> Result<()> {
    let windows = [(3, 2, 1), (2, 2, 0), (3, 1, 1), (5, 3, 2), (3, 2, 0), (1, 2, 0)];
    for shape in [[2, 3, 8, 8], [1, 2, 7, 5], [3, 1, 3, 4]] {
        for (kernel, stride, padding) in windows {
            let input = random_var(&shape, 7, DType::F64)?;
            let what = format!("{shape:?}, kernel {kernel}, stride {stride}, padding {padding}");
            let reference = reference_max_pool(&input, kernel, stride, padding)?;
            assert_close(&what, &max_pool2d(&input, kernel, stride, padding)?, &reference, 0.0)?;
            check_gradients(&[("input", &input)], 100, || {
                weighted_sum(&max_pool2d(&input, kernel, stride, padding)?, 8)
            })?;
        }
    }
    Ok(())
}

#[test]
fn max_pool2d_refuses_bad_windows_and_is_bit_identical_whatever_the_number_of_threads() -> Result<()> {
    let x = random(&[1, 1, 5, 5], 1)?;
    for (kernel, stride, padding) in [(3, 2, 2), (3, 0, 1), (0, 1, 0), (7, 1, 0)] {
        assert!(
            max_pool2d(&x, kernel, stride, padding).is_err(),
            "kernel {kernel}, stride {stride}, padding {padding}"
        );
    }
    let input = random_var(&[16, 8, 17, 17], 3, DType::F32)?;
    let run = || bits(&output_and_gradients(max_pool2d(&input, 3, 2, 1)?, &[&input])?);
    let in_order = sequentially(run)?;
    assert!(in_order == on_the_pool(run)?, "the pool's result differs");
    Ok(())
}

#[test]
fn global_avg_pool2d_is_the_mean_of_each_plane() -> Result<()> {
    // [1, 2, 3, 4] → 2.5, and each cell gets a quarter of the gradient.
    let input = image(&[&[1., 2.], &[3., 4.]])?;
    let pooled = global_avg_pool2d(&input)?;
    assert_eq!((pooled.dims(), values(&pooled)?), (&[1usize, 1][..], vec![2.5]));
    assert_eq!(values(pooled.sum_all()?.backward()?.get(&input).expect("gradient"))?, [0.25; 4]);
    let input = random_var(&[3, 4, 5, 2], 9, DType::F64)?;
    check_gradients(&[("input", &input)], usize::MAX, || weighted_sum(&global_avg_pool2d(&input)?, 3))
}

// ---- up-sampling ----

#[test]
fn upsample_nearest_repeats_each_cell_and_sums_its_gradient() -> Result<()> {
    let input = image(&[&[1., 2., 3.], &[4., 5., 6.]])?;
    let out = upsample_nearest(&input, 2)?;
    let expected = [1., 1., 2., 2., 3., 3., 1., 1., 2., 2., 3., 3., 4., 4., 5., 5., 6., 6., 4., 4., 5., 5., 6., 6.];
    assert_eq!((out.dims(), values(&out)?), (&[1usize, 1, 4, 6][..], expected.to_vec()));
    // d(Σ out²/2)/dx = Σ over its 2×2 block of out = 4·x.
    let grad = (out.sqr()?.sum_all()? * 0.5)?.backward()?.get(&input).expect("gradient").clone();
    assert_eq!(values(&grad)?, [4., 8., 12., 16., 20., 24.]);
    for (shape, scale) in [([2, 3, 4, 5], 2), ([1, 2, 3, 1], 3), ([2, 1, 1, 1], 1)] {
        let input = random_var(&shape, 4, DType::F64)?;
        let (height, width) = (shape[2] * scale, shape[3] * scale);
        assert_close("nearest", &upsample_nearest(&input, scale)?, &input.upsample_nearest2d(height, width)?, 0.0)?;
        check_gradients(&[("input", &input)], usize::MAX, || weighted_sum(&upsample_nearest(&input, scale)?, 5))?;
    }
    Ok(())
}

/// `x[n] = (7n mod 11) − 5`, shape `[1, 2, 3, 4]`: the input of `upsample_reference.py`.
fn reference_input() -> Result<Var> {
    let x: Vec<f64> = (0..24).map(|n| ((7 * n) % 11) as f64 - 5.0).collect();
    Var::from_tensor(&Tensor::from_vec(x, (1, 2, 3, 4), &Device::Cpu)?)
}

#[test]
fn upsample_bilinear_matches_the_numpy_reference() -> Result<()> {
    // Printed by benches/reference/upsample_reference.py (PyTorch's align_corners=False formula).
    #[rustfmt::skip]
    let scale_2 = [
        -5.0, -3.25, 0.25, 1.0, -1.0, -0.25, 3.25, 5.0, -3.5, -2.4375, -0.3125, 0.4375, -0.1875, 0.5625, 2.6875, 3.75,
        -0.5, -0.8125, -1.4375, -0.6875, 1.4375, 2.1875, 1.5625, 1.25, -0.25, -0.5625, -1.1875, -0.4375, 1.6875, 1.75,
        -0.25, -1.25, -2.75, -1.6875, 0.4375, 1.1875, 0.5625, -0.75, -2.75, -3.75, -4.0, -2.25, 1.25, 2.0, 0.0, -2.0,
        -4.0, -5.0, 2.0, 1.0, -1.0, -0.25, 3.25, 4.0, 2.0, 1.0, 0.75, 0.4375, -0.1875, 0.5625, 2.6875, 2.75, 0.75,
        -0.25, -1.75, -0.6875, 1.4375, 2.1875, 1.5625, 0.25, -1.75, -2.75, -1.5, -0.4375, 1.6875, 1.75, -0.25, -1.5625,
        -2.1875, -2.5, 1.5, 1.1875, 0.5625, -0.75, -2.75, -2.6875, -0.5625, 0.5, 3.0, 2.0, 0.0, -2.0, -4.0, -3.25, 0.25,
        2.0,
    ];
    // The first three output rows of scale 3 (rows 0 and 1 both read source row 0, clamped).
    #[rustfmt::skip]
    let scale_3_rows = [
        -5.0, -5.0, -2.666666666667, -0.333333333333, 2.0, 0.666666666667, -0.666666666667, -2.0, 0.333333333333,
        2.666666666667, 5.0, 5.0, -5.0, -5.0, -2.666666666667, -0.333333333333, 2.0, 0.666666666667, -0.666666666667,
        -2.0, 0.333333333333, 2.666666666667, 5.0, 5.0, -3.0, -3.0, -1.888888888889, -0.777777777778, 0.333333333333,
        0.222222222222, 0.111111111111, 0.0, 1.111111111111, 2.222222222222, 3.333333333333, 3.333333333333,
    ];
    let input = reference_input()?;
    assert_values_close("scale 2", &upsample_bilinear(&input, 2)?, &scale_2, 1e-12)?;
    let scale_3 = upsample_bilinear(&input, 3)?;
    assert_eq!(scale_3.dims(), &[1, 2, 9, 12]);
    assert_values_close("scale 3", &scale_3.flatten_all()?.narrow(0, 0, 36)?, &scale_3_rows, 1e-11)
}

#[test]
fn upsample_bilinear_matches_candle_values_and_finite_difference_gradients() -> Result<()> {
    // candle's upsample_bilinear2d forward (align_corners=false) agrees; it has no backward.
    for (shape, scale) in
        [([2, 3, 5, 4], 2), ([1, 2, 3, 6], 3), ([1, 1, 1, 3], 2), ([2, 1, 2, 1], 4), ([1, 1, 3, 3], 1)]
    {
        let input = random_var(&shape, 6, DType::F64)?;
        let (height, width) = (shape[2] * scale, shape[3] * scale);
        let reference = input.upsample_bilinear2d(height, width, false)?;
        assert_close(&format!("{shape:?} ×{scale}"), &upsample_bilinear(&input, scale)?, &reference, 1e-12)?;
        check_gradients(&[("input", &input)], usize::MAX, || weighted_sum(&upsample_bilinear(&input, scale)?, 5))?;
    }
    let f32_input = reference_input()?.to_dtype(DType::F32)?;
    assert_eq!(upsample_bilinear(&f32_input, 2)?.dtype(), DType::F32);
    assert!(upsample_bilinear(&f32_input, 0).is_err() && upsample_nearest(&f32_input, 0).is_err());
    Ok(())
}

#[test]
fn candle_lacks_or_gets_wrong_the_pooling_and_nearest_upsampling_backward_passes() -> Result<()> {
    // candle 0.11.1's max_pool2d has no backward for overlapping windows (3×3, stride 2).
    let input = random_var(&[1, 1, 5, 5], 3, DType::F64)?;
    let refused = input.max_pool2d_with_stride(3, 2)?.sum_all()?.backward().expect_err("refused").to_string();
    assert!(refused.contains("backward not supported"), "{refused}");
    let our_grad = max_pool2d(&input, 3, 2, 0)?.sum_all()?.backward()?.get(&input).expect("gradient").clone();
    assert_eq!(values(&our_grad)?.iter().sum::<f64>(), 4.0, "four windows, one unit each");
    // Its upsample_nearest2d backward overwrites the input's gradient: d(Σ up(x) + Σ x)/dx
    // is 4 + 1 per cell for ×2, candle gives 4.
    let input = random_var(&[1, 1, 2, 2], 4, DType::F64)?;
    let loss = |up: Tensor| (up.sum_all()? + input.sum_all()?)?.backward();
    let candle_grad = loss(input.upsample_nearest2d(4, 4)?)?.get(&input).expect("gradient").clone();
    let our_grad = loss(upsample_nearest(&input, 2)?)?.get(&input).expect("gradient").clone();
    assert_eq!((values(&candle_grad)?, values(&our_grad)?), (vec![4.0; 4], vec![5.0; 4]));
    Ok(())
}

/// The shapes of a ResNet at 224 px (the stem's 7×7/2 on the photo, 3×3 and 1×1 at 56×56,
/// batches of several chunks, the stem's max-pool at 112×112), against candle's ops: the
/// small cases above cover the geometry, these the indexing at full size.
#[test]
fn imagenet_sized_convolutions_and_pooling_match_candle() -> Result<()> {
    let case = |batch, in_channels, out_channels, side, kernel, stride, padding| StridedCase {
        batch,
        in_channels,
        out_channels,
        height: side,
        width: side,
        kernel,
        stride,
        padding,
    };
    for case in [
        case(2, 3, 4, 224, 7, 2, 3),
        case(3, 8, 8, 56, 3, 1, 1),
        case(9, 8, 16, 56, 3, 2, 1),
        case(9, 8, 16, 56, 1, 2, 0),
        // A deep stage: more patch values (64·9) than positions in a chunk (2·16).
        case(5, 64, 8, 4, 3, 1, 1),
    ] {
        check_strided_conv(case, DType::F64, 1e-10)?;
    }
    let input = random_var(&[2, 4, 112, 112], 7, DType::F64)?;
    let reference = reference_max_pool(&input, 3, 2, 1)?;
    assert_close("max-pool 3×3/2 at 112×112", &max_pool2d(&input, 3, 2, 1)?, &reference, 0.0)
}
