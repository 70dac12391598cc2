//! The Winograd path of [`Conv2d`] (3×3, stride 1, padding 1, ≥ 16 channels each side,
//! large enough planes and batches; small edge cases through [`winograd::at_any_size`]):
//! values and gradients against candle's conv2d, finite differences, and the same bits
//! on one thread as on the pool.

use candle_core::{DType, Device, Module, Result, Tensor, Var};

use super::kernels::Geometry;
use super::parallel::{on_the_pool, sequentially};
use super::winograd;
use super::Conv2d;
use crate::testing::{assert_close, check_gradients, random_var, values, weighted_sum};

/// (batch, in channels, out channels, height, width), run with [`winograd::at_any_size`].
const CASES: [(usize, usize, usize, usize, usize); 6] = [
    (3, 16, 16, 5, 7),
    // 9 samples: chunks of 3, 3 and 3; odd and even sizes on both axes.
    (9, 16, 24, 8, 6),
    (2, 24, 16, 1, 1),
    (2, 16, 16, 1, 6),
    (2, 16, 20, 3, 2),
    // Rows of tiles split into several blocks, a block spanning two samples.
    (2, 64, 64, 9, 40),
];

/// A case that takes the Winograd path by the thresholds alone: 8×9 planes, 52 samples
/// (1,040 tiles; chunks of 8, the last of 4).
const FULL_SIZE: (usize, usize, usize, usize, usize) = (52, 16, 24, 8, 9);

fn geometry((batch, in_channels, out_channels, in_height, in_width): (usize, usize, usize, usize, usize)) -> Geometry {
    Geometry {
        batch,
        in_channels,
        in_height,
        in_width,
        out_channels,
        kernel_height: 3,
        kernel_width: 3,
        pad_height: 1,
        pad_width: 1,
        stride: 1,
    }
}

fn parts(case: (usize, usize, usize, usize, usize), dtype: DType) -> Result<(Var, Var, Var)> {
    let (batch, in_channels, out_channels, height, width) = case;
    let weight = random_var(&[out_channels, in_channels, 3, 3], 1, dtype)?;
    let bias = random_var(&[out_channels], 2, dtype)?;
    let input = random_var(&[batch, in_channels, height, width], 3, dtype)?;
    Ok((weight, bias, input))
}

/// The output and the gradients of input, kernel and bias of `weighted_sum(output)`.
fn results(output: Tensor, vars: [&Var; 3]) -> Result<Vec<Tensor>> {
    let grads = weighted_sum(&output, 4)?.backward()?;
    let mut tensors = vec![output];
    tensors.extend(vars.iter().map(|var| grads.get(var).expect("gradient").clone()));
    Ok(tensors)
}

#[test]
fn the_winograd_path_takes_large_3x3_stride_1_padding_1_convolutions_with_16_channels_or_more() {
    let base = geometry(FULL_SIZE);
    assert!(winograd::applies(&base));
    assert!(!winograd::applies(&Geometry { in_channels: 15, ..base }));
    assert!(!winograd::applies(&Geometry { out_channels: 8, ..base }));
    assert!(!winograd::applies(&Geometry { stride: 2, ..base }));
    assert!(!winograd::applies(&Geometry { pad_width: 0, ..base }));
    assert!(!winograd::applies(&Geometry { kernel_height: 1, pad_height: 0, ..base }));
    // Small planes, or too few tiles in the batch (51 samples: 1,020).
    assert!(!winograd::applies(&Geometry { in_height: 7, batch: 100, ..base }));
    assert!(!winograd::applies(&Geometry { batch: 51, ..base }));
    assert!(CASES.iter().all(|&case| !winograd::applies(&geometry(case))));
    assert!(winograd::at_any_size(|| CASES.iter().all(|&case| winograd::applies(&geometry(case)))));
}

#[test]
fn winograd_convolutions_match_candles_conv2d_in_values_and_gradients() -> Result<()> {
    for (dtype, tolerance) in [(DType::F64, 1e-11), (DType::F32, 2e-4)] {
        for (case, any_size) in CASES.iter().map(|&case| (case, true)).chain([(FULL_SIZE, false)]) {
            let (weight, bias, input) = parts(case, dtype)?;
            let (w, b) = (weight.as_tensor().clone(), Some(bias.as_tensor().clone()));
            let conv = Conv2d::from_parts(w.clone(), b.clone(), 1);
            let run = || results(conv.forward(&input)?, [&input, &weight, &bias]);
            let ours = if any_size { winograd::at_any_size(run)? } else { run()? };
            let config = candle_nn::Conv2dConfig { padding: 1, ..Default::default() };
            let reference = candle_nn::Conv2d::new(w, b, config).forward(&input)?;
            let reference = results(reference, [&input, &weight, &bias])?;
            for (name, (a, b)) in ["output", "dinput", "dweight", "dbias"].iter().zip(ours.iter().zip(&reference)) {
                // Sums of up to 9·C products of unit-variance values: scale the bound.
                let scale = values(b)?.iter().fold(1f64, |most, v| most.max(v.abs()));
                assert_close(&format!("{case:?} {dtype:?} {name}"), a, b, tolerance * scale)?;
            }
        }
    }
    Ok(())
}

#[test]
fn winograd_convolution_hand_case() -> Result<()> {
    // 16 channels of ones into 16 kernels of ones, 3×3 image: each output counts the
    // window's cells inside the image, times 16 channels: corners 4·16, edges 6·16,
    // the centre 9·16; plus the bias 0.5.
    let ones = |shape: &[usize]| Tensor::ones(shape, DType::F64, &Device::Cpu);
    let conv = Conv2d::from_parts(ones(&[16, 16, 3, 3])?, Some((ones(&[16])? * 0.5)?), 1);
    let out = values(&winograd::at_any_size(|| conv.forward(&ones(&[1, 16, 3, 3])?))?)?;
    let plane = [4., 6., 4., 6., 9., 6., 4., 6., 4.].map(|cells| 16. * cells + 0.5);
    assert_eq!(out, plane.repeat(16));
    Ok(())
}

#[test]
fn winograd_convolutions_pass_finite_differences() -> Result<()> {
    let (weight, bias, input) = parts((2, 16, 16, 3, 5), DType::F64)?;
    let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), 1);
    let vars = [("input", &input), ("weight", &weight), ("bias", &bias)];
    winograd::at_any_size(|| check_gradients(&vars, 150, || weighted_sum(&conv.forward(&input)?, 5)))
}

#[test]
fn winograd_results_are_bit_identical_whatever_the_number_of_threads() -> Result<()> {
    let (weight, bias, input) = parts(FULL_SIZE, DType::F32)?;
    let conv = Conv2d::from_parts(weight.as_tensor().clone(), Some(bias.as_tensor().clone()), 1);
    let run = || -> Result<Vec<Vec<u32>>> {
        let tensors = results(conv.forward(&input)?, [&input, &weight, &bias])?;
        tensors.iter().map(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect())).collect()
    };
    let in_order = sequentially(run)?;
    assert!(in_order == on_the_pool(run)?, "the pool's result differs");
    Ok(())
}
