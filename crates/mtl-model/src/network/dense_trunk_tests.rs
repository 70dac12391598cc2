//! The encoder–decoder as a [`MultiTaskNet`] trunk under every sharing strategy: per-pixel
//! outputs at the input's size, one pass equal to each task alone, finite-difference
//! gradient checks in f64, and checkpoints that load back with identical outputs.

use super::*;
use crate::init::InitScheme;
use crate::testing::random;

/// ResNet-18 at width 1/16 with the CIFAR stem: total stride 8, decoder 4 channels.
const TRUNK: TrunkSpec =
    TrunkSpec::EncoderDecoder { depth: ResNetDepth::R18, width: 1.0 / 16.0, stem: ResNetStem::Cifar };

/// Every strategy, PLE with the one level a one-block trunk allows.
fn sharings() -> Vec<Sharing> {
    crate::testing::sharings_for(1)
}

/// A 3-class segmentation and a 1-channel depth task on 3×6×10 images (not a multiple
/// of the stride: the trunk pads and crops).
fn spec(sharing: Sharing) -> ModelSpec {
    let input = InputSpec::Image { channels: 3, height: 6, width: 10 };
    ModelSpec {
        tasks: vec![
            TaskSpec { name: "segmentation".into(), input, n_classes: 3 },
            TaskSpec { name: "depth".into(), input, n_classes: 1 },
        ],
        sharing,
        trunk: TRUNK,
        dropout: 0.0,
        init: InitScheme::Framework,
    }
}

#[test]
fn every_strategy_gives_per_pixel_outputs_and_one_pass_equals_each_task_alone() -> Result<()> {
    let xs = random(&[2, 3, 6, 10], 5)?.to_dtype(DType::F32)?;
    assert_eq!(TRUNK.representation(), 4);
    for sharing in sharings() {
        let (net, _) = MultiTaskNet::new(&spec(sharing), 1, DType::F32, &Device::Cpu)?;
        let both = net.representations(&[0, 1], &xs)?;
        for (task, representation) in both.iter().enumerate() {
            assert_eq!(representation.dims(), &[2, 4, 6, 10], "{}", sharing.label());
            let alone = net.representation(task, &xs)?;
            let difference = (representation - alone)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(difference, 0.0, "{}, task {task}", sharing.label());
        }
        assert_eq!(net.forward(0, &xs)?.dims(), &[2, 3, 6, 10], "{}", sharing.label());
        assert_eq!(net.forward(1, &xs)?.dims(), &[2, 1, 6, 10], "{}", sharing.label());
    }
    Ok(())
}

/// A per-pixel loss over both heads in training mode: Σ w·output² with fixed weights.
fn dense_loss(net: &MultiTaskNet, xs: &Tensor) -> Result<Tensor> {
    let mut rng = mtl_data::Rng::new(0);
    let mut total = net.penalty()?.unwrap_or(Tensor::zeros((), DType::F64, &Device::Cpu)?);
    for (task, representation) in net.representations_train(&[0, 1], xs, &mut rng)?.iter().enumerate() {
        let output = net.head(task, representation)?;
        let weights = random(output.dims(), 11 + task as u64)?;
        total = (total + (output.sqr()? * weights)?.sum_all()?)?;
    }
    Ok(total)
}

#[test]
fn every_strategy_passes_a_finite_difference_gradient_check() -> Result<()> {
    let xs = random(&[2, 3, 6, 10], 3)?;
    for sharing in sharings() {
        let (net, params) = MultiTaskNet::new(&spec(sharing), 2, DType::F64, &Device::Cpu)?;
        let vars: Vec<(&str, &candle_core::Var)> = params.named().collect();
        crate::testing::check_gradients(&vars, 2, || dense_loss(&net, &xs)).map_err(|e| e.context(sharing.label()))?;
    }
    Ok(())
}

#[test]
fn checkpoints_load_back_with_identical_outputs() -> Result<()> {
    let xs = random(&[2, 3, 6, 10], 9)?.to_dtype(DType::F32)?;
    for sharing in [Sharing::Hard, Sharing::SingleTask, Sharing::Mtan] {
        let (net, params) = MultiTaskNet::new(&spec(sharing), 1, DType::F32, &Device::Cpu)?;
        // Move the running statistics, so that the checkpoint must carry them.
        net.representations_train(&[0, 1], &xs, &mut mtl_data::Rng::new(1))?;
        let (other, other_params) = MultiTaskNet::new(&spec(sharing), 2, DType::F32, &Device::Cpu)?;
        let outputs = |net: &MultiTaskNet| -> Result<Vec<f32>> { net.forward(1, &xs)?.flatten_all()?.to_vec1::<f32>() };
        assert_ne!(outputs(&net)?, outputs(&other)?);
        assert!(params.tensors().keys().any(|name| name.starts_with("trunk.") && name.ends_with("running_var")));
        other_params.load(&params.tensors())?;
        assert_eq!(outputs(&net)?, outputs(&other)?, "{}", sharing.label());
    }
    Ok(())
}

#[test]
fn the_encoder_decoder_reads_images_only() {
    let mut text = spec(Sharing::Hard);
    text.tasks[1].input = InputSpec::Text { vocab_size: 5 };
    let error = MultiTaskNet::new(&text, 0, DType::F32, &Device::Cpu).err().expect("text refused").to_string();
    assert!(error.contains("encoder-decoder trunk reads images only"), "{error}");
}
