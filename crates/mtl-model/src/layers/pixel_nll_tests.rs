//! `pixel_nll` against a hand-computed case, the composed candle ops (values and
//! gradients in f64) and finite differences, and its refusals.

use candle_core::{DType, Device, Result, Tensor, Var};

use super::{compose_on_the_cpu, pixel_nll};
use crate::testing::{assert_close, check_gradients, output_and_gradients, random};

/// Labels in `-1..classes` (about one pixel in `classes + 1` unlabelled), as f64.
fn labels(shape: &[usize], classes: usize, seed: u64) -> Result<Tensor> {
    let mut rng = mtl_data::Rng::new(seed);
    let values: Vec<f64> = (0..shape.iter().product()).map(|_| rng.below(classes + 1) as f64 - 1.0).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

#[test]
fn pixel_nll_matches_a_hand_computed_case() -> Result<()> {
    // Three pixels of 2 classes: scores (0, ln 3), (ln 3, 0) and (5, 7); labels 1, 1 and
    // unlabelled: −ln(3/4), −ln(1/4) and 0. Gradients g·(softmax − one-hot) with g = 1:
    // (1/4, −1/4), (3/4, −3/4) and none at the unlabelled pixel (class-major below).
    let ln3 = 3f64.ln();
    let scores = Var::from_tensor(&Tensor::new(&[[[[0.0, ln3, 5.0]], [[ln3, 0.0, 7.0]]]], &Device::Cpu)?)?;
    let labels = Tensor::new(&[[[1.0, 1.0, -1.0]]], &Device::Cpu)?;
    let nll = pixel_nll(&scores, &labels)?;
    let expected = [-(0.75f64).ln(), -(0.25f64).ln(), 0.0];
    for (got, want) in nll.flatten_all()?.to_vec1::<f64>()?.iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    let grad = nll.sum_all()?.backward()?.get(&scores).expect("gradient").flatten_all()?.to_vec1::<f64>()?;
    let expected = [0.25, 0.75, 0.0, -0.25, -0.75, 0.0];
    for (got, want) in grad.iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{grad:?} vs {expected:?}");
    }
    Ok(())
}

#[test]
fn pixel_nll_matches_the_composed_ops_and_finite_differences() -> Result<()> {
    // More pixels than one block of work (1,024), an odd plane, several samples.
    for (shape, seed) in [([3, 5, 7, 9], 1), ([2, 4, 33, 40], 2), ([1, 1, 2, 3], 3)] {
        let scores = Var::from_tensor(&(random(&shape, seed)? * 3.0)?)?;
        let labels = labels(&[shape[0], shape[2], shape[3]], shape[1], seed + 10)?;
        let fused = output_and_gradients(pixel_nll(&scores, &labels)?, &[&scores])?;
        compose_on_the_cpu(true);
        let composed = pixel_nll(&scores, &labels).and_then(|out| output_and_gradients(out, &[&scores]));
        compose_on_the_cpu(false);
        let composed = composed?;
        for (what, (ours, reference)) in ["loss", "gradient"].iter().zip(fused.iter().zip(&composed)) {
            assert_close(&format!("{shape:?} {what}"), ours, reference, 1e-12)?;
        }
    }
    let scores = Var::from_tensor(&random(&[2, 3, 2, 3], 4)?)?;
    let labels = labels(&[2, 2, 3], 3, 5)?;
    check_gradients(&[("scores", &scores)], usize::MAX, || {
        crate::testing::weighted_sum(&pixel_nll(&scores, &labels)?, 6)
    })?;

    // f32: the op's arithmetic is the composed ops' within rounding.
    let (scores, labels) = (scores.to_dtype(DType::F32)?, labels.to_dtype(DType::F32)?);
    let fused = pixel_nll(&scores, &labels)?;
    compose_on_the_cpu(true);
    let composed = pixel_nll(&scores, &labels);
    compose_on_the_cpu(false);
    assert_close("f32 loss", &fused, &composed?, 1e-6)
}

#[test]
fn pixel_nll_refuses_labels_outside_the_classes_naming_the_pixel() -> Result<()> {
    let scores = random(&[2, 3, 2, 2], 1)?;
    for (bad, what) in [(3.0, "label 3 at pixel 2 of sample 1"), (0.5, "label 0.5"), (-2.0, "label -2")] {
        let mut values = vec![0.0; 8];
        values[6] = bad;
        let labels = Tensor::from_vec(values, (2, 2, 2), &Device::Cpu)?;
        let error = pixel_nll(&scores, &labels).expect_err("refused").to_string();
        assert!(error.contains(what) && error.contains("0..3"), "{error}");
    }
    let wrong_shape = Tensor::zeros((2, 2, 3), DType::F64, &Device::Cpu)?;
    assert!(pixel_nll(&scores, &wrong_shape).expect_err("refused").to_string().contains("labels"));
    Ok(())
}
