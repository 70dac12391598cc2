//! The ResNet, Transformer, recurrent and MLP trunks under every sharing strategy:
//! parameter counts against torchvision's and hand counts, the block-wise Transformer and
//! LSTM against `crate::sequence`'s whole encoders, finite-difference gradient checks in
//! f64 (batch norm in training mode), batch norm's train/eval modes and running
//! statistics in checkpoints, and the same bits at any thread count.

use super::*;
use crate::init::InitScheme;
use crate::sequence::{CellKind, Pooling, Positions, RecurrentPooling};
use crate::testing::{all_sharings, random};

const TEXT: InputSpec = InputSpec::Text { vocab_size: 7 };

/// ResNet-18 at width 1/16 (4, 8, 16, 32 channels) with the CIFAR stem.
fn tiny_resnet() -> TrunkSpec {
    TrunkSpec::ResNet { depth: ResNetDepth::R18, width: 1.0 / 16.0, stem: Some(ResNetStem::Cifar) }
}

fn tiny_transformer(pooling: Pooling, positions: Positions) -> TrunkSpec {
    TrunkSpec::Transformer { d_model: 8, heads: 2, layers: 2, ff: 16, positions, pooling, max_len: 6 }
}

fn tiny_recurrent(cell: CellKind, pooling: RecurrentPooling) -> TrunkSpec {
    TrunkSpec::Recurrent { cell, width: 3, hidden: 4, bidirectional: true, pooling }
}

fn tiny_mlp() -> TrunkSpec {
    TrunkSpec::Mlp { width: 5, depth: 2 }
}

fn tiny_mpnn() -> TrunkSpec {
    TrunkSpec::Mpnn { width: 3, steps: 2, readout_steps: 2 }
}

/// Graphs of 2 features per atom, padded to 3 atoms.
const GRAPH: InputSpec = InputSpec::Graph { node_features: 2, max_nodes: 3 };

/// The input every task of `trunk` reads: 3×8×8 images, texts or 6 features.
fn input_of(trunk: TrunkSpec) -> InputSpec {
    match trunk {
        TrunkSpec::ResNet { .. } => InputSpec::Image { channels: 3, height: 8, width: 8 },
        TrunkSpec::Mlp { .. } => InputSpec::Features { size: 6, embedded: Default::default() },
        TrunkSpec::Mpnn { .. } => GRAPH,
        _ => TEXT,
    }
}

/// Two tasks (3 and 2 classes) on the same inputs through `trunk`.
fn two_tasks(trunk: TrunkSpec, sharing: Sharing) -> ModelSpec {
    let input = input_of(trunk);
    ModelSpec {
        tasks: vec![
            TaskSpec { name: "first".into(), input, n_classes: 3 },
            TaskSpec { name: "second".into(), input, n_classes: 2 },
        ],
        sharing,
        trunk,
        dropout: 0.0,
        init: InitScheme::Framework,
    }
}

/// A batch of `n` inputs for `trunk` in `dtype` (texts of 6 ids, some padded).
fn batch(trunk: TrunkSpec, n: usize, dtype: DType) -> Result<Tensor> {
    match input_of(trunk) {
        InputSpec::Image { channels, height, width } => random(&[n, channels, height, width], 7)?.to_dtype(dtype),
        InputSpec::Features { size, .. } => random(&[n, size], 8)?.to_dtype(dtype),
        InputSpec::Graph { node_features, max_nodes } => {
            // Graphs of 3, 2, 1, 3, … atoms: random features and positions, bonds i–j of code (i + j) % 5.
            let sizes = [3, 2, 1];
            let noise = random(&[n * max_nodes * (node_features + 3)], 8)?.to_vec1::<f64>()?;
            let mut values = Vec::new();
            for b in 0..n {
                for i in 0..max_nodes {
                    let real = i < sizes[b % 3];
                    let at = (b * max_nodes + i) * (node_features + 3);
                    let keep = |v: f64| if real { v } else { 0.0 };
                    values.extend(noise[at..at + node_features].iter().map(|&v| keep(v)));
                    values.push(keep(1.0));
                    values.extend(noise[at + node_features..at + node_features + 3].iter().map(|&v| keep(2.0 * v)));
                    values.extend(
                        (0..max_nodes)
                            .map(|j| keep(if j != i && j < sizes[b % 3] { ((i + j) % 5) as f64 } else { 0.0 })),
                    );
                }
            }
            Tensor::from_vec(values, (n, max_nodes, node_features + 4 + max_nodes), &Device::Cpu)?.to_dtype(dtype)
        }
        InputSpec::Text { .. } => {
            let lengths = [6, 3, 1, 5];
            let ids: Vec<u32> =
                (0..n * 6).map(|i| if i % 6 < lengths[(i / 6) % 4] { 1 + (i * 5 % 6) as u32 } else { 0 }).collect();
            Tensor::from_vec(ids, (n, 6), &Device::Cpu)
        }
    }
}

/// Both tasks' cross-entropy losses in one training pass (batch norm on batch statistics), plus the penalty.
fn joint_loss(net: &MultiTaskNet, xs: &Tensor, dtype: DType) -> Result<Tensor> {
    let n = xs.dim(0)?;
    let mut rng = mtl_data::Rng::new(0);
    let mut total = net.penalty()?.unwrap_or(Tensor::zeros((), dtype, &Device::Cpu)?);
    for (task, representation) in net.representations_train(&[0, 1], xs, &mut rng)?.iter().enumerate() {
        let labels =
            Tensor::from_vec((0..n as u32).map(|i| i % (3 - task as u32)).collect::<Vec<_>>(), n, &Device::Cpu)?;
        let loss = candle_nn::loss::cross_entropy(&net.head(task, representation)?, &labels)?;
        total = (total + (loss * (1.0 - 0.3 * task as f64))?)?;
    }
    Ok(total)
}

fn new_trunks() -> Vec<TrunkSpec> {
    vec![
        tiny_resnet(),
        tiny_transformer(Pooling::MaskedMean, Positions::Sinusoidal),
        tiny_transformer(Pooling::Cls, Positions::Learned),
        tiny_recurrent(CellKind::Lstm, RecurrentPooling::FinalStates),
        tiny_recurrent(CellKind::Gru, RecurrentPooling::MaskedMean),
        tiny_mlp(),
        tiny_mpnn(),
    ]
}

#[test]
fn resnet_parameter_counts_match_torchvision_and_a_hand_count() -> Result<()> {
    // torchvision's resnet18 and resnet34 have 11,689,512 and 21,797,672 parameters with
    // their 512 → 1000 fc (513,000): the trunks alone are 11,176,512 and 21,284,672.
    for (depth, expected) in [(ResNetDepth::R18, 11_176_512), (ResNetDepth::R34, 21_284_672)] {
        let trunk = TrunkSpec::ResNet { depth, width: 1.0, stem: None };
        let spec = ModelSpec {
            tasks: vec![TaskSpec {
                name: "a".into(),
                input: InputSpec::Image { channels: 3, height: 64, width: 64 },
                n_classes: 1000,
            }],
            ..two_tasks(trunk, Sharing::Hard)
        };
        let (_, params) = MultiTaskNet::new(&spec, 0, DType::F32, &Device::Cpu)?;
        assert_eq!(params.n_parameters(), expected + 513_000, "{depth:?}");
    }
    // Width 1/16, CIFAR stem, 3 channels in (channels 4, 8, 16, 32; conv weights k·k·in·out, bn 2·out):
    //   stem 108 + 8; stage1 2 × (2·144 + 2·8) = 608;
    //   stage2 (288 + 16 + 576 + 16 + 1×1 32 + 16) + (2·576 + 2·16) = 944 + 1184 = 2128;
    //   stage3 (1152 + 32 + 2304 + 32 + 128 + 32) + (2·2304 + 2·32) = 3680 + 4672 = 8352;
    //   stage4 (4608 + 64 + 9216 + 64 + 512 + 64) + (2·9216 + 2·64) = 14528 + 18560 = 33088;
    //   total 44292; heads 32 → 3 (99) and 32 → 2 (66).
    let (net, params) = MultiTaskNet::new(&two_tasks(tiny_resnet(), Sharing::Hard), 0, DType::F32, &Device::Cpu)?;
    assert_eq!(params.n_parameters(), 44292 + 99 + 66);
    // 20 batch norms (stem, 16 in the blocks, 3 projections), each with running statistics.
    let tensors = params.tensors();
    assert_eq!(tensors.len(), params.named().count() + 2 * 20);
    for name in ["stems.image.bn.running_mean", "trunk.stage4.blocks.0.downsample.bn.running_var"] {
        assert!(tensors.contains_key(name), "no {name}");
    }
    for name in ["trunk.stage2.blocks.1.conv2.weight", "trunk.stage3.blocks.0.downsample.conv.weight"] {
        assert!(params.named().any(|(n, _)| n == name), "no {name}");
    }
    let xs = batch(tiny_resnet(), 3, DType::F32)?;
    assert_eq!(net.representation(0, &xs)?.dims(), &[3, 32]);
    Ok(())
}

#[test]
fn the_stem_is_imagenets_from_64_pixels_unless_given() -> Result<()> {
    // 64×64 through the ImageNet stem: 7×7/2 → 32, max-pool 3×3/2 → 16, stages → 16, 8, 4, 2;
    // 63×63 through the CIFAR stem: 63, 32, 16, 8.
    let stage1 = |side: usize, stem: Option<ResNetStem>| -> Result<Vec<usize>> {
        let trunk = TrunkSpec::ResNet { depth: ResNetDepth::R18, width: 1.0 / 64.0, stem };
        let input = InputSpec::Image { channels: 1, height: side, width: side };
        let spec = ModelSpec {
            tasks: vec![TaskSpec { name: "a".into(), input, n_classes: 2 }],
            ..two_tasks(trunk, Sharing::Hard)
        };
        let (net, _) = MultiTaskNet::new(&spec, 0, DType::F32, &Device::Cpu)?;
        let Trunk::Shared(column) = &net.trunk else { panic!("hard sharing") };
        let images = Tensor::zeros((2, 1, side, side), DType::F32, &Device::Cpu)?;
        let stemmed = net.stems[0].forward(&images, &Dropout::off())?;
        Ok(column.blocks[0].forward(&stemmed, &mut Dropout::off())?.dims().to_vec())
    };
    assert_eq!(stage1(64, None)?, [2, 1, 16, 16]);
    assert_eq!(stage1(63, None)?, [2, 1, 63, 63]);
    assert_eq!(stage1(64, Some(ResNetStem::Cifar))?, [2, 1, 64, 64]);
    assert_eq!(stage1(63, Some(ResNetStem::ImageNet))?, [2, 1, 16, 16]);
    Ok(())
}

#[test]
fn block_wise_text_trunks_compute_what_the_whole_encoders_compute() -> Result<()> {
    use crate::init::SeededBackend;
    use crate::sequence::{
        padding_mask, Activation, RecurrentConfig, RecurrentEncoder, TransformerConfig, TransformerEncoder,
    };
    use candle_nn::Module;
    use std::sync::Arc;
    let ids = batch(tiny_transformer(Pooling::Cls, Positions::Learned), 4, DType::F64)?;
    // The network draws stems, trunk, heads in that order; the encoders draw embedding,
    // positions, CLS, layers, final norm (or embedding, cells): the same values from one seed.
    for (pooling, positions) in [(Pooling::Cls, Positions::Learned), (Pooling::MaskedMean, Positions::Sinusoidal)] {
        let trunk = tiny_transformer(pooling, positions);
        let (net, _) = MultiTaskNet::new(&two_tasks(trunk, Sharing::Hard), 5, DType::F64, &Device::Cpu)?;
        let config = TransformerConfig {
            vocab_size: 7,
            d_model: 8,
            n_heads: 2,
            d_feed_forward: 16,
            n_layers: 2,
            max_len: 6,
            positions,
            pooling,
            activation: Activation::Gelu,
            dropout: 0.0,
        };
        let backend = Arc::new(SeededBackend::new(5));
        let encoder =
            TransformerEncoder::new(&config, InitScheme::Framework, backend.builder(DType::F64, &Device::Cpu))?;
        let expected = encoder.forward(&ids, None)?;
        let got = net.representation(0, &ids)?;
        assert_eq!(got.flatten_all()?.to_vec1::<f64>()?, expected.flatten_all()?.to_vec1::<f64>()?, "{pooling:?}");
    }
    for (cell, pooling) in
        [(CellKind::Lstm, RecurrentPooling::FinalStates), (CellKind::Gru, RecurrentPooling::MaskedMean)]
    {
        let trunk = tiny_recurrent(cell, pooling);
        let (net, _) = MultiTaskNet::new(&two_tasks(trunk, Sharing::Hard), 6, DType::F64, &Device::Cpu)?;
        let backend = Arc::new(SeededBackend::new(6));
        let vb = backend.builder(DType::F64, &Device::Cpu);
        let table = vb.pp("embedding").get_with_hints((7, 3), "weight", InitScheme::Framework.embedding())?;
        let config = RecurrentConfig { cell, input_size: 3, hidden_size: 4, bidirectional: true, pooling };
        let encoder = RecurrentEncoder::new(&config, InitScheme::Framework, vb)?;
        let embedded = candle_nn::Embedding::new(table, 3).forward(&ids)?;
        let expected = encoder.forward(&embedded, &padding_mask(&ids, DType::F64)?)?;
        let got = net.representation(1, &ids)?;
        assert_eq!(got.flatten_all()?.to_vec1::<f64>()?, expected.flatten_all()?.to_vec1::<f64>()?, "{cell:?}");
    }
    Ok(())
}

/// Finite differences on a few elements of every variable of `trunk` under every strategy,
/// the loss in training mode (batch norm on batch statistics).
fn check_every_strategy(trunk: TrunkSpec) -> Result<()> {
    // ResNet's variables are many; a few elements of each keep the check short.
    let per_variable = if matches!(trunk, TrunkSpec::ResNet { .. }) { 3 } else { 20 };
    let xs = batch(trunk, 3, DType::F64)?;
    for sharing in crate::testing::sharings_for(trunk.n_blocks()) {
        let spec = two_tasks(trunk, sharing);
        let (net, params) = MultiTaskNet::new(&spec, 2, DType::F64, &Device::Cpu)?;
        let vars: Vec<(&str, &candle_core::Var)> = params.named().collect();
        crate::testing::check_gradients(&vars, per_variable, || joint_loss(&net, &xs, DType::F64))
            .map_err(|e| e.context(format!("{} on {trunk:?}", sharing.label())))?;
    }
    Ok(())
}

#[test]
fn every_strategy_on_resnet_passes_a_finite_difference_gradient_check() -> Result<()> {
    check_every_strategy(tiny_resnet())
}

#[test]
fn every_strategy_on_the_transformer_passes_a_finite_difference_gradient_check() -> Result<()> {
    check_every_strategy(tiny_transformer(Pooling::MaskedMean, Positions::Sinusoidal))?;
    check_every_strategy(tiny_transformer(Pooling::Cls, Positions::Learned))
}

#[test]
fn every_strategy_on_lstm_gru_and_mlp_passes_a_finite_difference_gradient_check() -> Result<()> {
    check_every_strategy(tiny_recurrent(CellKind::Lstm, RecurrentPooling::FinalStates))?;
    check_every_strategy(tiny_recurrent(CellKind::Gru, RecurrentPooling::MaskedMean))?;
    check_every_strategy(tiny_mlp())
}

#[test]
fn every_strategy_on_the_mpnn_passes_a_finite_difference_gradient_check() -> Result<()> {
    check_every_strategy(tiny_mpnn())
}

#[test]
fn every_strategy_on_every_new_trunk_gives_each_task_its_shape_and_one_pass_equals_each_alone() -> Result<()> {
    for trunk in new_trunks() {
        let xs = batch(trunk, 4, DType::F32)?;
        for sharing in crate::testing::sharings_for(trunk.n_blocks()) {
            let (net, _) = MultiTaskNet::new(&two_tasks(trunk, sharing), 1, DType::F32, &Device::Cpu)?;
            let both = net.representations(&[0, 1], &xs)?;
            for (task, representation) in both.iter().enumerate() {
                assert_eq!(representation.dims(), &[4, trunk.representation()], "{}", sharing.label());
                let alone = net.representation(task, &xs)?;
                let difference = (representation - alone)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert_eq!(difference, 0.0, "{} on {trunk:?}, task {task}", sharing.label());
            }
            assert_eq!(net.forward(0, &xs)?.dims(), &[4, 3]);
        }
    }
    Ok(())
}

#[test]
fn ple_levels_follow_the_trunks_block_count() {
    let cases = [
        (tiny_resnet(), 5, "ple levels must be 1, 2, 3 or 4 (the trunk has 4 blocks), got 5"),
        (tiny_recurrent(CellKind::Gru, RecurrentPooling::MaskedMean), 3, "must be 1 or 2 (the trunk has 2 blocks)"),
        (TrunkSpec::Mlp { width: 4, depth: 1 }, 2, "ple levels must be 1 (the trunk has 1 block), got 2"),
    ];
    for (trunk, levels, expected) in cases {
        let sharing = Sharing::Ple { experts: 1, task_experts: 1, levels };
        let error = MultiTaskNet::new(&two_tasks(trunk, sharing), 0, DType::F32, &Device::Cpu).err().expect("refused");
        assert!(error.to_string().contains(expected), "{error}");
        let fits = Sharing::Ple { experts: 1, task_experts: 1, levels: levels - 1 };
        assert!(MultiTaskNet::new(&two_tasks(trunk, fits), 0, DType::F32, &Device::Cpu).is_ok());
    }
    // The transformer has one block per layer.
    let deep = TrunkSpec::Transformer {
        d_model: 8,
        heads: 2,
        layers: 4,
        ff: 16,
        positions: Positions::Sinusoidal,
        pooling: Pooling::Cls,
        max_len: 6,
    };
    assert_eq!(deep.block_names(), ["layer1", "layer2", "layer3", "layer4"]);
}

#[test]
fn each_trunk_refuses_inputs_it_does_not_read() {
    let image = InputSpec::Image { channels: 1, height: 8, width: 8 };
    let cases = [
        (
            tiny_resnet(),
            InputSpec::Features { size: 3, embedded: Default::default() },
            "the resnet18 trunk reads images and text only",
        ),
        (tiny_transformer(Pooling::Cls, Positions::Sinusoidal), image, "the transformer trunk reads text only"),
        (tiny_recurrent(CellKind::Lstm, RecurrentPooling::FinalStates), image, "the lstm trunk reads text only"),
        (tiny_mlp(), TEXT, "the mlp trunk reads numeric feature vectors only"),
        (tiny_mpnn(), TEXT, "the mpnn trunk reads molecular graphs only"),
        (tiny_mlp(), GRAPH, "the mlp trunk reads numeric feature vectors only"),
        (
            DEFAULT_SEQUENCE,
            InputSpec::Features { size: 3, embedded: Default::default() },
            "the sequence trunk reads images and text only",
        ),
    ];
    for (trunk, input, expected) in cases {
        let spec = ModelSpec {
            tasks: vec![TaskSpec { name: "a".into(), input, n_classes: 2 }],
            ..two_tasks(trunk, Sharing::Hard)
        };
        let error = MultiTaskNet::new(&spec, 0, DType::F32, &Device::Cpu).err().expect("refused");
        assert!(error.to_string().contains(expected), "{error}");
    }
    // Features beside images: the second task's input is refused too.
    let mut spec = two_tasks(tiny_resnet(), Sharing::Hard);
    spec.tasks[1].input = InputSpec::Features { size: 3, embedded: Default::default() };
    let error = MultiTaskNet::new(&spec, 0, DType::F32, &Device::Cpu).err().expect("refused");
    assert!(error.to_string().contains("reads images and text only, not features inputs"), "{error}");
}

#[test]
fn shared_batch_norms_keep_running_statistics_per_modality() -> Result<()> {
    // Under hard sharing the stages read photos and texts; a text batch in training moves
    // only the text stream's statistics, so an image evaluated afterwards comes out as
    // from an untouched network. Checkpoints carry the text stream as `<norm>.text.…`.
    let mut spec = two_tasks(tiny_resnet(), Sharing::Hard);
    spec.tasks[1].input = TEXT;
    let (net, params) = MultiTaskNet::new(&spec, 3, DType::F32, &Device::Cpu)?;
    let (image_name, text_name) =
        ("trunk.stage2.blocks.0.bn1.running_mean", "trunk.stage2.blocks.0.bn1.text.running_mean");
    let value = |name: &str| -> Result<Vec<f32>> { params.tensors()[name].to_vec1::<f32>() };
    let (image_before, text_before) = (value(image_name)?, value(text_name)?);
    assert!(!params.tensors().contains_key("stems.image.bn.text.running_mean"), "the image stem reads images only");
    let texts = batch(tiny_transformer(Pooling::Cls, Positions::Learned), 4, DType::F32)?;
    net.representations_train(&[1], &texts, &mut mtl_data::Rng::new(0))?;
    assert_eq!(value(image_name)?, image_before, "a text batch left the images' statistics alone");
    assert_ne!(value(text_name)?, text_before, "a text batch moved the text statistics");
    let images = batch(tiny_resnet(), 3, DType::F32)?;
    let (untouched, _) = MultiTaskNet::new(&spec, 3, DType::F32, &Device::Cpu)?;
    let bits = |t: Tensor| -> Result<Vec<u32>> {
        Ok(t.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v.to_bits()).collect())
    };
    assert_eq!(bits(net.representation(0, &images)?)?, bits(untouched.representation(0, &images)?)?);
    // An image-only network keeps one stream under the plain names.
    let (_, params) = MultiTaskNet::new(&two_tasks(tiny_resnet(), Sharing::Hard), 3, DType::F32, &Device::Cpu)?;
    assert!(!params.tensors().keys().any(|name| name.contains(".text.")));
    Ok(())
}

#[test]
fn resnet_reads_images_and_texts_together_under_every_strategy() -> Result<()> {
    // Task 0 reads 3×8×8 images, task 1 texts (a one-row map of embeddings through the
    // same stages): both get the representation, and finite differences agree with the
    // gradient of their joint loss in every parameter, the two stems included.
    let trunk = tiny_resnet();
    let images = batch(trunk, 3, DType::F64)?;
    // A text trunk's batch: texts of 6 ids, some padded.
    let texts = batch(tiny_transformer(Pooling::Cls, Positions::Learned), 3, DType::F64)?;
    for sharing in all_sharings() {
        let mut spec = two_tasks(trunk, sharing);
        spec.tasks[1].input = TEXT;
        let (net, params) = MultiTaskNet::new(&spec, 3, DType::F64, &Device::Cpu)?;
        let names: Vec<&str> = params.named().map(|(name, _)| name).collect();
        assert!(names.contains(&"stems.text.embedding.weight") || sharing == Sharing::SingleTask, "{names:?}");
        assert_eq!(net.representation(0, &images)?.dims(), &[3, trunk.representation()]);
        assert_eq!(net.representation(1, &texts)?.dims(), &[3, trunk.representation()]);
        let loss = || -> Result<Tensor> {
            let mut rng = mtl_data::Rng::new(0);
            let image = net.representations_train(&[0], &images, &mut rng)?.remove(0);
            let text = net.representations_train(&[1], &texts, &mut rng)?.remove(0);
            let labels = Tensor::from_vec(vec![0u32, 1, 2], 3, &Device::Cpu)?;
            let first = candle_nn::loss::cross_entropy(&net.head(0, &image)?, &labels)?;
            let labels = Tensor::from_vec(vec![1u32, 0, 1], 3, &Device::Cpu)?;
            let second = candle_nn::loss::cross_entropy(&net.head(1, &text)?, &labels)?;
            let total = (first + (second * 0.7)?)?;
            match net.penalty()? {
                Some(penalty) => total + penalty,
                None => Ok(total),
            }
        };
        let vars: Vec<(&str, &candle_core::Var)> = params.named().collect();
        crate::testing::check_gradients(&vars, 3, loss).map_err(|e| e.context(sharing.label()))?;
    }
    Ok(())
}

const DEFAULT_SEQUENCE: TrunkSpec = TrunkSpec::Sequence { width: 4, hidden: 4, image_stem: ImageStem::Rows };

/// The running statistics of every batch norm, in name order.
fn running_stats(params: &Parameters) -> Result<Vec<(String, Vec<f32>)>> {
    let mut stats: Vec<(String, Vec<f32>)> = params
        .tensors()
        .into_iter()
        .filter(|(name, _)| name.contains(".running_"))
        .map(|(name, t)| Ok((name, t.flatten_all()?.to_vec1::<f32>()?)))
        .collect::<Result<_>>()?;
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(stats)
}

#[test]
fn batch_norm_moves_its_running_statistics_in_training_only_and_checkpoints_carry_them() -> Result<()> {
    let xs = batch(tiny_resnet(), 4, DType::F32)?;
    for sharing in all_sharings() {
        let spec = two_tasks(tiny_resnet(), sharing);
        let (net, params) = MultiTaskNet::new(&spec, 1, DType::F32, &Device::Cpu)?;
        let fresh = running_stats(&params)?;
        assert!(!fresh.is_empty());
        net.representations(&[0, 1], &xs)?;
        assert_eq!(running_stats(&params)?, fresh, "{}: evaluation moved them", sharing.label());
        let mut rng = mtl_data::Rng::new(3);
        net.representations_train(&[0, 1], &xs, &mut rng)?;
        let trained = running_stats(&params)?;
        for ((name, after), (_, before)) in trained.iter().zip(&fresh) {
            assert_ne!(after, before, "{}: {name} did not move in training", sharing.label());
        }
        // Evaluation reads them: a checkpoint (safetensors, as `--save-checkpoints` writes
        // it) loaded into a network of another seed gives the same outputs, bit for bit.
        let outputs = |net: &MultiTaskNet| -> Result<Vec<f32>> {
            let mut values = net.forward(0, &xs)?.flatten_all()?.to_vec1::<f32>()?;
            values.extend(net.forward(1, &xs)?.flatten_all()?.to_vec1::<f32>()?);
            Ok(values)
        };
        let (other, other_params) = MultiTaskNet::new(&spec, 2, DType::F32, &Device::Cpu)?;
        assert_ne!(outputs(&net)?, outputs(&other)?);
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("net.safetensors");
        candle_core::safetensors::save(&params.tensors(), &path)?;
        other_params.load(&candle_core::safetensors::load(&path, &Device::Cpu)?)?;
        assert_eq!(running_stats(&other_params)?, trained, "{}", sharing.label());
        assert_eq!(outputs(&net)?, outputs(&other)?, "{}", sharing.label());
    }
    // A checkpoint without the running statistics is refused, naming the missing one.
    let (_, params) = MultiTaskNet::new(&two_tasks(tiny_resnet(), Sharing::Hard), 1, DType::F32, &Device::Cpu)?;
    let mut tensors = params.tensors();
    tensors.remove("trunk.stage3.blocks.1.bn2.running_var");
    let error = params.load(&tensors).expect_err("incomplete");
    assert!(error.to_string().contains("no trunk.stage3.blocks.1.bn2.running_var"), "{error}");
    Ok(())
}

#[test]
fn checkpoints_of_the_text_trunks_load_back_with_identical_outputs() -> Result<()> {
    for trunk in new_trunks().into_iter().skip(1) {
        let xs = batch(trunk, 4, DType::F32)?;
        let levels = trunk.n_blocks().min(2);
        for sharing in
            [Sharing::Hard, Sharing::CrossStitch { init: 0.8 }, Sharing::Ple { experts: 1, task_experts: 1, levels }]
        {
            let spec = two_tasks(trunk, sharing);
            let (net, params) = MultiTaskNet::new(&spec, 1, DType::F32, &Device::Cpu)?;
            let (other, other_params) = MultiTaskNet::new(&spec, 2, DType::F32, &Device::Cpu)?;
            other_params.load(&params.tensors())?;
            let a = net.forward(1, &xs)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(a, other.forward(1, &xs)?.flatten_all()?.to_vec1::<f32>()?, "{trunk:?} {}", sharing.label());
        }
    }
    Ok(())
}

/// The bits of a training pass's loss and of every gradient, for `trunk` under MTAN (every
/// block twice per task), cross-stitch, DSelect-k and LTB (its Gumbel noise seeded).
fn training_bits(trunk: TrunkSpec, seed: u64) -> Result<Vec<Vec<u32>>> {
    let mut all = Vec::new();
    let dselect = Sharing::DSelectK { experts: 2, selectors: 2, gamma: 1.0 };
    for sharing in [Sharing::Mtan, Sharing::CrossStitch { init: 0.9 }, dselect, Sharing::Ltb { temperature: 1.0 }] {
        let (net, params) = MultiTaskNet::new(&two_tasks(trunk, sharing), seed, DType::F32, &Device::Cpu)?;
        let input = match trunk {
            TrunkSpec::ResNet { .. } => random(&[16, 3, 32, 32], seed)?.to_dtype(DType::F32)?,
            _ => batch(trunk, 16, DType::F32)?,
        };
        let loss = joint_loss(&net, &input, DType::F32)?;
        let grads = loss.backward()?;
        all.push(vec![loss.to_scalar::<f32>()?.to_bits()]);
        for (name, var) in params.named() {
            let grad = grads.get(var).unwrap_or_else(|| panic!("{name}: no gradient"));
            all.push(grad.flatten_all()?.to_vec1::<f32>()?.into_iter().map(f32::to_bits).collect());
        }
    }
    Ok(all)
}

#[test]
fn same_seed_same_bits_on_one_thread_and_on_the_pool() -> Result<()> {
    let _guard = crate::testing::THREAD_COUNT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = std::env::var_os("RAYON_NUM_THREADS");
    let resnet = TrunkSpec::ResNet { depth: ResNetDepth::R18, width: 0.25, stem: None };
    for trunk in [resnet, tiny_transformer(Pooling::MaskedMean, Positions::Learned)] {
        crate::layers::run_on_one_thread(true);
        std::env::set_var("RAYON_NUM_THREADS", "1");
        let one = training_bits(trunk, 3);
        crate::layers::run_on_one_thread(false);
        std::env::set_var("RAYON_NUM_THREADS", "4");
        let pool = training_bits(trunk, 3);
        match &previous {
            Some(value) => std::env::set_var("RAYON_NUM_THREADS", value),
            None => std::env::remove_var("RAYON_NUM_THREADS"),
        }
        let one = one?;
        assert!(one == pool?, "{trunk:?}: the thread count changed the results");
        assert!(one != training_bits(trunk, 4)?, "another seed gave the same results");
    }
    Ok(())
}

#[test]
fn final_states_are_read_at_each_texts_last_real_token() -> Result<()> {
    // xs[b, t, c] = 10·b + 2·t + c; texts of 2 and 4 real tokens: [2, 3] (t = 1) and [16, 17] (t = 3),
    // not the padded end (t = 3 for both), which MTAN's masks and cross-stitch change.
    let values: Vec<f64> =
        (0..2).flat_map(|b| (0..4).flat_map(move |t| (0..2).map(move |c| (10 * b + 2 * t + c) as f64))).collect();
    let xs = Tensor::from_vec(values, (2, 4, 2), &Device::Cpu)?;
    let keep = Tensor::new(&[[1f64, 1., 0., 0.], [1., 1., 1., 1.]], &Device::Cpu)?;
    let last = super::text_encoders::last_real_step(&xs, &keep)?;
    assert_eq!(last.to_vec2::<f64>()?, [[2., 3.], [16., 17.]]);
    Ok(())
}
