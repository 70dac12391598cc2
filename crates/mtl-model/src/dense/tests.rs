//! The encoder–decoder: finite-difference gradients in f64 (batch norm in training mode,
//! padded inputs), output shapes at any input size, names and counts against PyTorch's
//! `benches/torch_reference.py` model, checkpoints with running statistics, and the
//! same bits at any thread count.

use candle_core::{DType, Device, Result, Tensor, Var};

use super::*;
use crate::testing::{check_gradients, random, weighted_sum};

/// A segmentation head (3 classes) and a depth head on `in_channels` images.
fn spec(in_channels: usize, width: f64, stem: ResNetStem) -> EncoderDecoderSpec {
    EncoderDecoderSpec {
        in_channels,
        depth: ResNetDepth::R18,
        width,
        stem,
        heads: vec![
            ("segmentation".into(), DenseHead { out_channels: 3 }),
            ("depth".into(), DenseHead { out_channels: 1 }),
        ],
        init: InitScheme::Framework,
    }
}

fn joint_loss(net: &EncoderDecoder, xs: &Tensor) -> Result<Tensor> {
    let outputs = net.forward_t(xs, true)?;
    weighted_sum(&outputs[0], 11)? + weighted_sum(&outputs[1], 12)?
}

#[test]
fn gradients_match_finite_differences_in_training_mode() -> Result<()> {
    // (stem, input [B, C, H, W], elements checked per variable): 8×12 is padded to 8×16
    // (CIFAR stem, stride 8), 20×36 to 32×64 (ImageNet stem, stride 32).
    let cases = [(ResNetStem::Cifar, [2, 3, 8, 12], 3), (ResNetStem::ImageNet, [2, 1, 20, 36], 2)];
    for (stem, shape, per_variable) in cases {
        let (net, params) = EncoderDecoder::new(&spec(shape[1], 1.0 / 16.0, stem), 1, DType::F64, &Device::Cpu)?;
        let input = Var::from_tensor(&random(&shape, 5)?)?;
        let mut vars: Vec<(&str, &Var)> = params.named().collect();
        vars.push(("input", &input));
        check_gradients(&vars, per_variable, || joint_loss(&net, input.as_tensor()))?;
    }
    Ok(())
}

#[test]
fn outputs_have_the_input_resolution_at_any_size() -> Result<()> {
    // (stem, height, width): multiples of the total stride, and sizes padded up to one.
    let cases = [
        (ResNetStem::Cifar, 8, 8),
        (ResNetStem::Cifar, 16, 24),
        (ResNetStem::Cifar, 9, 13),
        (ResNetStem::Cifar, 1, 7),
        (ResNetStem::ImageNet, 32, 64),
        (ResNetStem::ImageNet, 96, 128),
        (ResNetStem::ImageNet, 33, 31),
        (ResNetStem::ImageNet, 5, 70),
    ];
    for (stem, height, width) in cases {
        let (net, _) = EncoderDecoder::new(&spec(3, 1.0 / 16.0, stem), 0, DType::F32, &Device::Cpu)?;
        let xs = random(&[2, 3, height, width], 1)?.to_dtype(DType::F32)?;
        for train in [true, false] {
            let outputs = net.forward_t(&xs, train)?;
            assert_eq!(outputs[0].dims(), [2, 3, height, width], "{stem:?} {height}×{width}");
            assert_eq!(outputs[1].dims(), [2, 1, height, width], "{stem:?} {height}×{width}");
        }
        // The crop keeps the top-left H × W of the padded input's output (eval: no batch
        // statistics, so the padding changes nothing else).
        let multiple = net.total_stride();
        let padded = xs.pad_with_zeros(2, 0, height.next_multiple_of(multiple) - height)?.pad_with_zeros(
            3,
            0,
            width.next_multiple_of(multiple) - width,
        )?;
        let whole = net.features_t(&padded, false)?;
        let cropped = whole.narrow(2, 0, height)?.narrow(3, 0, width)?;
        assert_eq!(
            net.features_t(&xs, false)?.flatten_all()?.to_vec1::<f32>()?,
            cropped.flatten_all()?.to_vec1::<f32>()?,
            "{stem:?} {height}×{width}"
        );
    }
    Ok(())
}

#[test]
fn names_and_sizes_match_the_pytorch_model() -> Result<()> {
    // Counts printed by `benches/reference/dense_reference.py` (the `w6` model of
    // benches/torch_reference.py: sum of p.numel() over parameters()); widths 1 and 1/16.
    let cases = [(1.0, ResNetStem::ImageNet, 3, 12_800_142), (1.0 / 16.0, ResNetStem::Cifar, 3, 50_762)];
    for (width, stem, in_channels, expected) in cases {
        let mut spec = spec(in_channels, width, stem);
        spec.heads[0].1.out_channels = 13;
        let (net, params) = EncoderDecoder::new(&spec, 0, DType::F32, &Device::Cpu)?;
        assert_eq!(params.n_parameters(), expected, "width {width}, {stem:?}");
        let expected_decoder = match stem {
            ResNetStem::ImageNet => resnet_channels(width, 0) / 2,
            ResNetStem::Cifar => resnet_channels(width, 0),
        };
        assert_eq!(net.decoder_channels(), expected_decoder);
    }
    let (_, params) = EncoderDecoder::new(&spec(3, 0.25, ResNetStem::ImageNet), 0, DType::F32, &Device::Cpu)?;
    let names: Vec<&str> = params.named().map(|(name, _)| name).collect();
    for name in [
        "encoder.stem.conv.weight",
        "encoder.stem.bn.weight",
        "encoder.stage1.blocks.1.conv2.weight",
        "encoder.stage2.blocks.0.downsample.conv.weight",
        "encoder.stage4.blocks.1.bn2.bias",
        "decoder.up1.conv.weight",
        "decoder.up5.bn.bias",
        "heads.segmentation.conv1.bias",
        "heads.depth.conv2.weight",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // Five decoder steps (strides 32 → 1), no sixth; convolutions before batch norms have no bias.
    assert!(!names.iter().any(|name| name.starts_with("decoder.up6") || name.ends_with("conv.bias")));
    let norms: Vec<&str> = params.batch_norms().map(|(name, _)| name).collect();
    assert_eq!(norms.len(), 1 + 8 * 2 + 3 + 5, "{norms:?}");
    Ok(())
}

#[test]
fn training_outputs_match_pytorch_with_the_same_parameters() -> Result<()> {
    // benches/reference/dense_reference.py: the tensor called `name` holds
    // 0.5·sin(0.37·i + 0.11·len(name)); the input [2, 2, 9, 13] holds cos(0.1·i).
    let mut spec = spec(2, 1.0 / 16.0, ResNetStem::Cifar);
    spec.heads[0].1.out_channels = 3;
    let (net, params) = EncoderDecoder::new(&spec, 0, DType::F64, &Device::Cpu)?;
    let mut tensors = params.tensors();
    for (name, tensor) in tensors.iter_mut() {
        if !name.contains("running") {
            let values: Vec<f64> =
                (0..tensor.elem_count()).map(|i| 0.5 * (0.37 * i as f64 + 0.11 * name.len() as f64).sin()).collect();
            *tensor = Tensor::from_vec(values, tensor.shape(), &Device::Cpu)?;
        }
    }
    params.load(&tensors)?;
    let input: Vec<f64> = (0..2 * 2 * 9 * 13).map(|i| (0.1 * i as f64).cos()).collect();
    let outputs = net.forward_t(&Tensor::from_vec(input, (2, 2, 9, 13), &Device::Cpu)?, true)?;
    // (sum, values at the flat indices 0, 29, 101, 233) printed by the script.
    let expected = [
        (
            -1.923847219531679e+02,
            [-4.320786692825476e-01, -2.419422168420707e-02, -2.419422168420707e-02, -2.031528510722084e-01],
        ),
        (
            6.028737263488699e+01,
            [1.327947735387509e-01, 6.559284417670503e-01, 3.975632812709572e-01, 3.660099338868442e-01],
        ),
    ];
    for (output, (sum, values)) in outputs.iter().zip(expected) {
        let flat = output.flatten_all()?.to_vec1::<f64>()?;
        let got_sum: f64 = flat.iter().sum();
        assert!((got_sum - sum).abs() < 1e-9 * (1.0 + sum.abs()), "sum {got_sum}, PyTorch {sum}");
        for (index, value) in [0, 29, 101, 233].into_iter().zip(values) {
            assert!((flat[index] - value).abs() < 1e-10, "[{index}]: {}, PyTorch {value}", flat[index]);
        }
    }
    Ok(())
}

#[test]
fn checkpoints_carry_the_running_statistics_and_give_identical_outputs() -> Result<()> {
    let spec = spec(3, 1.0 / 8.0, ResNetStem::ImageNet);
    let xs = random(&[3, 3, 32, 40], 2)?.to_dtype(DType::F32)?;
    let (net, params) = EncoderDecoder::new(&spec, 1, DType::F32, &Device::Cpu)?;
    let fresh = params.tensors();
    net.forward_t(&xs, false)?;
    assert_eq!(running_mean(&params.tensors())?, running_mean(&fresh)?, "evaluation moved the statistics");
    net.forward_t(&xs, true)?;
    assert_ne!(running_mean(&params.tensors())?, running_mean(&fresh)?, "training left the statistics");
    let outputs = |net: &EncoderDecoder| -> Result<Vec<f32>> {
        let mut values = Vec::new();
        for output in net.forward_t(&xs, false)? {
            values.extend(output.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(values)
    };
    let (other, other_params) = EncoderDecoder::new(&spec, 2, DType::F32, &Device::Cpu)?;
    assert_ne!(outputs(&net)?, outputs(&other)?);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dense.safetensors");
    candle_core::safetensors::save(&params.tensors(), &path)?;
    other_params.load(&candle_core::safetensors::load(&path, &Device::Cpu)?)?;
    assert_eq!(outputs(&net)?, outputs(&other)?);
    let mut tensors = params.tensors();
    tensors.remove("decoder.up2.bn.running_var");
    let error = other_params.load(&tensors).expect_err("incomplete");
    assert!(error.to_string().contains("no decoder.up2.bn.running_var"), "{error}");
    Ok(())
}

/// The running means of the decoder's last batch norm and the stem's.
fn running_mean(tensors: &std::collections::HashMap<String, Tensor>) -> Result<Vec<f32>> {
    let mut values = tensors["decoder.up5.bn.running_mean"].to_vec1::<f32>()?;
    values.extend(tensors["encoder.stem.bn.running_mean"].to_vec1::<f32>()?);
    Ok(values)
}

/// The bits of a training pass's loss and every gradient.
fn training_bits(seed: u64) -> Result<Vec<Vec<u32>>> {
    let (net, params) = EncoderDecoder::new(&spec(3, 0.25, ResNetStem::ImageNet), seed, DType::F32, &Device::Cpu)?;
    let xs = random(&[8, 3, 32, 48], seed)?.to_dtype(DType::F32)?;
    let loss = joint_loss(&net, &xs)?;
    let grads = loss.backward()?;
    let mut all = vec![vec![loss.to_scalar::<f32>()?.to_bits()]];
    for (name, var) in params.named() {
        let grad = grads.get(var).unwrap_or_else(|| panic!("{name}: no gradient"));
        all.push(grad.flatten_all()?.to_vec1::<f32>()?.into_iter().map(f32::to_bits).collect());
    }
    Ok(all)
}

#[test]
fn same_seed_same_bits_on_one_thread_and_on_the_pool() -> Result<()> {
    let _guard = crate::testing::THREAD_COUNT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = std::env::var_os("RAYON_NUM_THREADS");
    crate::layers::run_on_one_thread(true);
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let one = training_bits(3);
    crate::layers::run_on_one_thread(false);
    std::env::set_var("RAYON_NUM_THREADS", "4");
    let pool = training_bits(3);
    match &previous {
        Some(value) => std::env::set_var("RAYON_NUM_THREADS", value),
        None => std::env::remove_var("RAYON_NUM_THREADS"),
    }
    let one = one?;
    assert!(one == pool?, "the thread count changed the results");
    assert!(one != training_bits(4)?, "another seed gave the same results");
    Ok(())
}

#[test]
fn fused_bilinear_matches_the_composed_ops_and_finite_differences() -> Result<()> {
    // The composed `layers::upsample_bilinear` is checked against
    // benches/reference/upsample_reference.py (PyTorch's formula); forward and backward
    // must agree with it, including planes of one row or column.
    for (shape, scale) in [([2, 3, 4, 5], 2), ([1, 2, 1, 3], 2), ([1, 1, 3, 1], 3), ([2, 1, 3, 4], 3)] {
        let xs = Var::from_tensor(&random(&shape, 9)?)?;
        let fused = crate::layers::upsample_bilinear_fused(xs.as_tensor(), scale)?;
        let composed = crate::layers::upsample_bilinear(xs.as_tensor(), scale)?;
        assert_eq!(fused.dims(), composed.dims());
        let difference = (&fused - &composed)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(difference < 1e-14, "{shape:?} ×{scale}: forward differs by {difference}");
        let grad = |out: &Tensor| -> Result<Tensor> {
            let grads = weighted_sum(out, 4)?.backward()?;
            Ok(grads.get(&xs).expect("input gradient").clone())
        };
        let difference = (grad(&fused)? - grad(&composed)?)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(difference < 1e-13, "{shape:?} ×{scale}: backward differs by {difference}");
        check_gradients(&[("xs", &xs)], 100, || {
            weighted_sum(&crate::layers::upsample_bilinear_fused(xs.as_tensor(), scale)?, 4)
        })?;
    }
    Ok(())
}
