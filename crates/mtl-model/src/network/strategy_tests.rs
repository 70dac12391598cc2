//! Every sharing strategy, on both kinds of task set (images + text through the
//! sequence trunk; two tasks on the same images through LeNet): shapes,
//! parameter counts against hand counts, finite-difference gradient checks,
//! every variable moving after a step, and each strategy's own hand cases.

use super::sharing::stitch;
use super::*;
use crate::init::InitScheme;

use crate::testing::{all_sharings, random};
use candle_core::Var;
use candle_nn::Optimizer;

const IMAGE: InputSpec = InputSpec::Image { channels: 2, height: 5, width: 4 };
const TEXT: InputSpec = InputSpec::Text { vocab_size: 7 };

/// Images (`pics`, 3 classes) and text (`words`, 2 classes) through the sequence trunk.
fn multi_input(sharing: Sharing, width: usize, hidden: usize) -> ModelSpec {
    ModelSpec {
        tasks: vec![
            TaskSpec { name: "pics".into(), input: IMAGE, n_classes: 3 },
            TaskSpec { name: "words".into(), input: TEXT, n_classes: 2 },
        ],
        sharing,
        trunk: TrunkSpec::Sequence { width, hidden, image_stem: ImageStem::Conv },
        dropout: 0.0,
        init: InitScheme::Framework,
    }
}

/// Two 10-class tasks on the same `side`×`side` images through LeNet (MultiMNIST).
fn same_input(sharing: Sharing, side: usize) -> ModelSpec {
    let input = InputSpec::Image { channels: 1, height: side, width: side };
    ModelSpec {
        tasks: vec![
            TaskSpec { name: "left".into(), input, n_classes: 10 },
            TaskSpec { name: "right".into(), input, n_classes: 10 },
        ],
        sharing,
        trunk: TrunkSpec::LeNet,
        dropout: 0.0,
        init: InitScheme::Framework,
    }
}

fn tokens(n: usize) -> Result<Tensor> {
    Tensor::from_vec((0..n * 6).map(|i| (i * 5 % 7) as u32).collect::<Vec<_>>(), (n, 6), &Device::Cpu)
}

/// Both tasks' cross-entropy losses, summed, on a batch of `n` examples of each: training
/// passes (LTB's branching logits train only there; no dropout, no batch norm in these trunks),
/// with the same Gumbel noise at every call.
fn joint_loss(spec: &ModelSpec, net: &MultiTaskNet, dtype: DType, n: usize) -> Result<Tensor> {
    let mut rng = mtl_data::Rng::new(0);
    let labels =
        |classes: u32| Tensor::from_vec((0..n as u32).map(|i| i % classes).collect::<Vec<_>>(), n, &Device::Cpu);
    let mut total = match net.penalty()? {
        Some(penalty) => penalty,
        None => Tensor::zeros((), dtype, &Device::Cpu)?,
    };
    if matches!(spec.trunk, TrunkSpec::LeNet) {
        let side = match spec.tasks[0].input {
            InputSpec::Image { height, .. } => height,
            InputSpec::Text { .. } | InputSpec::Features { .. } | InputSpec::Graph { .. } => {
                unreachable!("lenet reads images")
            }
        };
        let images = random(&[n, 1, side, side], 7)?.to_dtype(dtype)?;
        // One pass for both tasks, as training does for tasks that share inputs.
        let representations = net.representations_train(&[0, 1], &images, &mut rng)?;
        for (task, representation) in representations.iter().enumerate() {
            let logits = net.head(task, representation)?;
            total = (total + candle_nn::loss::cross_entropy(&logits, &labels(10 - task as u32)?)?)?;
        }
    } else {
        let images = random(&[n, 2, 5, 4], 11)?.to_dtype(dtype)?;
        let mut logits = |task: usize, xs: &Tensor| -> Result<Tensor> {
            net.head(task, &net.representations_train(&[task], xs, &mut rng)?.remove(0))
        };
        total = (total + candle_nn::loss::cross_entropy(&logits(0, &images)?, &labels(3)?)?)?;
        total = (total + (candle_nn::loss::cross_entropy(&logits(1, &tokens(n)?)?, &labels(2)?)? * 0.7)?)?;
    }
    Ok(total)
}

#[test]
fn parameter_counts_match_a_hand_count() -> Result<()> {
    // Sequence trunk, width 8, hidden 16 (hand counts of tests.rs):
    //   stems: image 1592, text 56 → 1648; heads 51 + 34 = 85
    //   one trunk column: conv1 8→16 k3 (400), conv2 16→16 k3 (784), fc 16→16 (272) = 1456
    let (stems, heads, column) = (1648, 85, 1456);
    // mmoe(2): 2 columns + a gate per task over the stem output averaged over time (8 → 2: 18).
    let mmoe = 2 * column + 2 * 18;
    // cgc(1 shared, 1 per task): 3 columns + a gate per task (8 → 2: 18).
    let cgc = 3 * column + 2 * 18;
    // ple(1, 1, 2 levels): level 1 = conv1 ×3 experts (1200), task gates 8 → 2 (2·18),
    //   shared gate 8 → 3 (27); level 2 = conv2 + fc ×3 (3·1056), task gates 16 → 2 (2·34).
    let ple = 1200 + 36 + 27 + 3 * 1056 + 68;
    // mtan: the shared column + per task masks 16→16 (272), 32→16 (528), 32→16 (528).
    let mtan = column + 2 * (272 + 528 + 528);
    // dselect-k(3 experts, k = 2): 3 columns + per task a gate over the stem output (8):
    //   codes 8 → k·⌈log₂ 3⌉ = 4 (36), selectors 8 → 2 (18).
    let dselect = 3 * column + 2 * (36 + 18);
    // ltb: a column per task + a 2×2 matrix of branching logits after each of the 3 blocks.
    let ltb = 2 * column + 3 * 4;
    let expected_trunks = [
        (Sharing::SingleTask, 2 * column),
        (Sharing::Hard, column),
        (Sharing::Soft { weight: 0.1 }, 2 * column),
        (Sharing::CrossStitch { init: 0.9 }, 2 * column + 3 * 4),
        (Sharing::Mmoe { experts: 2 }, mmoe),
        (Sharing::Cgc { experts: 1, task_experts: 1 }, cgc),
        (Sharing::Ple { experts: 1, task_experts: 1, levels: 2 }, ple),
        (Sharing::Mtan, mtan),
        (Sharing::DSelectK { experts: 3, selectors: 2, gamma: 1.0 }, dselect),
        (Sharing::Ltb { temperature: 1.0 }, ltb),
    ];
    for (sharing, trunk) in expected_trunks {
        let (_, params) = MultiTaskNet::new(&multi_input(sharing, 8, 16), 0, DType::F32, &Device::Cpu)?;
        assert_eq!(params.n_parameters(), stems + trunk + heads, "{}", sharing.label());
    }

    // LeNet on 28×28: trunk 21330 (conv1 260, conv2 5020, fc 320→50 16050), heads 2 × 3060.
    let (lenet, lenet_heads) = (21330, 6120);
    // mmoe(2): gates read the flattened image, 784 → 2 (1570) per task.
    // mtan masks per task: 10→10 (110), 40→20 (820), 100→50 (5050).
    // dselect-k(3, k = 2): gates read the flattened image: codes 784 → 4 (3140), selectors 784 → 2 (1570).
    // ple(1, 1, 2): level 1 = conv1 ×3 (780), task gates 784 → 2 (2·1570), shared gate 784 → 3 (2355);
    //   level 2 = conv2 + fc ×3 (3·21070), task gates read 10×12×12 = 1440 → 2 (2·2882).
    let expected_lenet = [
        (Sharing::Hard, lenet),
        (Sharing::CrossStitch { init: 0.9 }, 2 * lenet + 12),
        (Sharing::Mmoe { experts: 2 }, 2 * lenet + 2 * 1570),
        (Sharing::Ple { experts: 1, task_experts: 1, levels: 2 }, 780 + 3140 + 2355 + 3 * 21070 + 2 * 2882),
        (Sharing::Mtan, lenet + 2 * (110 + 820 + 5050)),
        (Sharing::DSelectK { experts: 3, selectors: 2, gamma: 1.0 }, 3 * lenet + 2 * (3140 + 1570)),
        (Sharing::Ltb { temperature: 1.0 }, 2 * lenet + 12),
    ];
    for (sharing, trunk) in expected_lenet {
        let (_, params) = MultiTaskNet::new(&same_input(sharing, 28), 0, DType::F32, &Device::Cpu)?;
        assert_eq!(params.n_parameters(), trunk + lenet_heads, "lenet {}", sharing.label());
    }
    Ok(())
}

#[test]
fn output_shapes_for_both_kinds_of_task_set() -> Result<()> {
    for sharing in all_sharings() {
        let (net, _) = MultiTaskNet::new(&multi_input(sharing, 4, 6), 1, DType::F32, &Device::Cpu)?;
        let images = random(&[3, 2, 5, 4], 1)?.to_dtype(DType::F32)?;
        assert_eq!(net.forward(0, &images)?.dims(), &[3, 3], "{}", sharing.label());
        assert_eq!(net.forward(1, &tokens(3)?)?.dims(), &[3, 2], "{}", sharing.label());
        assert_eq!(net.representation(1, &tokens(3)?)?.dims(), &[3, 6], "{}", sharing.label());

        let (net, _) = MultiTaskNet::new(&same_input(sharing, 28), 1, DType::F32, &Device::Cpu)?;
        let images = random(&[3, 1, 28, 28], 2)?.to_dtype(DType::F32)?;
        let both = net.representations(&[0, 1], &images)?;
        assert_eq!(both.len(), 2);
        // One pass for both tasks gives what each task's own pass gives.
        for (task, representation) in both.iter().enumerate() {
            assert_eq!(representation.dims(), &[3, 50], "{}", sharing.label());
            let alone = net.representation(task, &images)?;
            let difference = (representation - alone)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(difference, 0.0, "{} task {task}", sharing.label());
        }
        assert_eq!(net.forward(1, &images)?.dims(), &[3, 10]);
    }
    Ok(())
}

/// Finite differences on up to 60 elements of every variable.
fn check_gradients(params: &Parameters, loss: impl Fn() -> Result<Tensor>) -> Result<()> {
    let vars: Vec<(&str, &Var)> = params.named().collect();
    crate::testing::check_gradients(&vars, 60, loss)
}

#[test]
fn every_strategy_passes_a_finite_difference_gradient_check() -> Result<()> {
    for sharing in all_sharings() {
        let spec = multi_input(sharing, 3, 4);
        let (net, params) = MultiTaskNet::new(&spec, 2, DType::F64, &Device::Cpu)?;
        check_gradients(&params, || joint_loss(&spec, &net, DType::F64, 2))?;
    }
    // The LeNet variants of the strategies whose layers differ on feature maps (16×16 keeps it fast).
    for sharing in [
        Sharing::CrossStitch { init: 0.7 },
        Sharing::Ple { experts: 1, task_experts: 1, levels: 3 },
        Sharing::Mtan,
        Sharing::DSelectK { experts: 4, selectors: 3, gamma: 0.5 },
        Sharing::Ltb { temperature: 0.5 },
    ] {
        let spec = same_input(sharing, 16);
        let (net, params) = MultiTaskNet::new(&spec, 3, DType::F64, &Device::Cpu)?;
        check_gradients(&params, || joint_loss(&spec, &net, DType::F64, 2))?;
    }
    Ok(())
}

#[test]
fn every_trainable_variable_of_every_strategy_changes_after_one_step() -> Result<()> {
    for sharing in all_sharings() {
        for spec in [multi_input(sharing, 4, 8), same_input(sharing, 16)] {
            let (net, params) = MultiTaskNet::new(&spec, 3, DType::F32, &Device::Cpu)?;
            let before: Vec<Vec<f32>> =
                params.named().map(|(_, v)| v.flatten_all()?.to_vec1::<f32>()).collect::<Result<_>>()?;
            let mut optimizer = candle_nn::AdamW::new(params.vars(), candle_nn::ParamsAdamW::default())?;
            optimizer.backward_step(&joint_loss(&spec, &net, DType::F32, 4)?)?;
            for ((name, var), old) in params.named().zip(before) {
                assert_ne!(var.flatten_all()?.to_vec1::<f32>()?, old, "{}: {name} did not change", sharing.label());
            }
        }
    }
    Ok(())
}

#[test]
fn soft_sharing_penalty_matches_a_hand_computation() -> Result<()> {
    // Three tasks on the sequence trunk (width 8, hidden 16: 1456 parameters per column).
    // Every parameter of column a is 0, of b is 1, of c is 3, weight w = 0.1:
    //   penalty = w · 1456 · ((0−1)² + (0−3)² + (1−3)²) = 0.1 · 1456 · 14 = 2038.4
    //   d penalty / dθ_a = 2w · ((θ_a − θ_b) + (θ_a − θ_c)) = 0.2 · (−1 − 3) = −0.8
    let mut spec = multi_input(Sharing::Soft { weight: 0.1 }, 8, 16);
    spec.tasks =
        ["a", "b", "c"].iter().map(|name| TaskSpec { name: name.to_string(), input: IMAGE, n_classes: 2 }).collect();
    let (net, params) = MultiTaskNet::new(&spec, 0, DType::F64, &Device::Cpu)?;
    for (name, var) in params.named() {
        let value = match name.split('.').nth(1) {
            Some("a") if name.starts_with("trunk.") => 0.0,
            Some("b") if name.starts_with("trunk.") => 1.0,
            Some("c") if name.starts_with("trunk.") => 3.0,
            _ => continue,
        };
        var.set(&Tensor::full(value, var.shape(), &Device::Cpu)?)?;
    }
    let penalty = net.penalty()?.expect("soft sharing has a penalty");
    assert!((penalty.to_scalar::<f64>()? - 2038.4).abs() < 1e-9, "{penalty}");
    let grads = penalty.backward()?;
    for (name, var) in params.named().filter(|(name, _)| name.starts_with("trunk.a.")) {
        let grad = grads.get(var).expect("gradient").flatten_all()?.to_vec1::<f64>()?;
        assert!(grad.iter().all(|g| (g + 0.8).abs() < 1e-12), "{name}: {grad:?}");
    }
    // The other strategies add nothing.
    let (hard, _) = MultiTaskNet::new(&multi_input(Sharing::Hard, 8, 16), 0, DType::F64, &Device::Cpu)?;
    assert!(hard.penalty()?.is_none());
    Ok(())
}

#[test]
fn cross_stitch_starts_from_its_documented_initialisation() -> Result<()> {
    let alphas = |spec: &ModelSpec| -> Result<Vec<(String, Vec<Vec<f64>>)>> {
        let (_, params) = MultiTaskNet::new(spec, 0, DType::F64, &Device::Cpu)?;
        params
            .named()
            .filter(|(name, _)| name.starts_with("trunk.stitch."))
            .map(|(name, var)| Ok((name.to_string(), var.as_tensor().to_vec2::<f64>()?)))
            .collect()
    };
    // Two tasks, init 0.9: α = [[0.9, 0.1], [0.1, 0.9]] after each of the three blocks.
    let two = alphas(&multi_input(Sharing::CrossStitch { init: 0.9 }, 4, 8))?;
    let names: Vec<&str> = two.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["trunk.stitch.conv1", "trunk.stitch.conv2", "trunk.stitch.fc"]);
    let check = |alpha: &[Vec<f64>], diagonal: f64, other: f64| {
        for (t, row) in alpha.iter().enumerate() {
            for (u, &value) in row.iter().enumerate() {
                let expected = if t == u { diagonal } else { other };
                assert!((value - expected).abs() < 1e-12, "α[{t}][{u}] = {value}");
            }
        }
    };
    for (_, alpha) in &two {
        check(alpha, 0.9, 0.1);
    }
    // Three tasks, init 0.8: the other 0.2 of each row split equally.
    let mut spec = multi_input(Sharing::CrossStitch { init: 0.8 }, 4, 8);
    spec.tasks.push(TaskSpec { name: "more".into(), input: IMAGE, n_classes: 2 });
    for (_, alpha) in alphas(&spec)? {
        check(&alpha, 0.8, 0.1);
    }
    Ok(())
}

#[test]
fn cross_stitch_mixing_matches_a_hand_case_and_identity_alpha_leaves_columns_independent() -> Result<()> {
    // α = [[0.9, 0.1], [0.2, 0.8]], h0 = [1, 2], h1 = [3, 4]:
    //   out0 = 0.9·[1, 2] + 0.1·[3, 4] = [1.2, 2.2]; out1 = 0.2·[1, 2] + 0.8·[3, 4] = [2.6, 3.6]
    let alpha = Tensor::new(&[[0.9f64, 0.1], [0.2, 0.8]], &Device::Cpu)?;
    let h = [Tensor::new(&[[1f64, 2.]], &Device::Cpu)?, Tensor::new(&[[3f64, 4.]], &Device::Cpu)?];
    let mixed = stitch(&alpha, &h)?;
    for (out, expected) in mixed.iter().zip([[1.2, 2.2], [2.6, 3.6]]) {
        let got = out.flatten_all()?.to_vec1::<f64>()?;
        assert!(got.iter().zip(expected).all(|(g, e)| (g - e).abs() < 1e-12), "{got:?} vs {expected:?}");
    }
    // With α = I (init 1) cross-stitch is soft sharing without the penalty: same seed, same columns
    // (the stitches are constants, so they draw nothing), same outputs.
    let images = random(&[3, 2, 5, 4], 5)?;
    let output = |sharing| -> Result<Vec<f64>> {
        let (net, _) = MultiTaskNet::new(&multi_input(sharing, 4, 8), 4, DType::F64, &Device::Cpu)?;
        net.forward(0, &images)?.flatten_all()?.to_vec1::<f64>()
    };
    assert_eq!(output(Sharing::CrossStitch { init: 1.0 })?, output(Sharing::Soft { weight: 0.0 })?);
    Ok(())
}

#[test]
fn parameter_names_follow_the_documented_scheme() -> Result<()> {
    let names = |sharing| -> Result<Vec<String>> {
        let (_, params) = MultiTaskNet::new(&multi_input(sharing, 2, 2), 0, DType::F32, &Device::Cpu)?;
        Ok(params.named().map(|(n, _)| n.to_string()).filter(|n| n.starts_with("trunk.")).collect())
    };
    let cases: [(Sharing, &[&str]); 7] = [
        (Sharing::Soft { weight: 0.1 }, &["trunk.pics.conv1.weight", "trunk.words.fc.bias"]),
        (Sharing::CrossStitch { init: 0.9 }, &["trunk.stitch.conv2", "trunk.words.conv2.weight"]),
        (Sharing::Mmoe { experts: 2 }, &["trunk.level1.shared.1.conv1.weight", "trunk.level1.gates.words.weight"]),
        (
            Sharing::Ple { experts: 1, task_experts: 1, levels: 2 },
            &[
                "trunk.level1.tasks.pics.0.conv1.weight",
                "trunk.level1.shared_gate.bias",
                "trunk.level2.shared.0.fc.weight",
            ],
        ),
        (Sharing::Mtan, &["trunk.conv1.weight", "trunk.attention.pics.conv2.weight"]),
        (
            Sharing::DSelectK { experts: 2, selectors: 2, gamma: 1.0 },
            &[
                "trunk.level1.shared.1.conv1.weight",
                "trunk.level1.gates.words.codes.weight",
                "trunk.level1.gates.pics.selectors.bias",
            ],
        ),
        (Sharing::Ltb { temperature: 1.0 }, &["trunk.pics.conv1.weight", "trunk.branch.conv2", "trunk.branch.fc"]),
    ];
    for (sharing, expected) in cases {
        let names = names(sharing)?;
        for name in expected {
            assert!(names.iter().any(|n| n == name), "{}: no {name} in {names:?}", sharing.label());
        }
    }
    Ok(())
}

#[test]
fn invalid_hyperparameters_are_refused_with_a_reason() {
    let cases = [
        (Sharing::Soft { weight: -1.0 }, "soft-sharing weight"),
        (Sharing::CrossStitch { init: 1.5 }, "cross-stitch init"),
        (Sharing::Mmoe { experts: 0 }, "at least 1 expert"),
        (Sharing::Cgc { experts: 0, task_experts: 0 }, "cannot both be 0"),
        (Sharing::Ple { experts: 1, task_experts: 1, levels: 4 }, "levels must be 1, 2 or 3"),
        (Sharing::DSelectK { experts: 1, selectors: 2, gamma: 1.0 }, "at least 2 experts"),
        (Sharing::DSelectK { experts: 4, selectors: 0, gamma: 1.0 }, "k ≥ 1"),
        (Sharing::DSelectK { experts: 4, selectors: 2, gamma: 0.0 }, "gamma must be a finite number > 0"),
        (Sharing::Ltb { temperature: f64::NAN }, "temperature must be a finite number > 0"),
    ];
    for (sharing, expected) in cases {
        let error = MultiTaskNet::new(&multi_input(sharing, 2, 2), 0, DType::F32, &Device::Cpu).err().expect("refused");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[test]
fn gates_are_softmax_mixtures_of_the_experts() -> Result<()> {
    // A hand case of an MMoE gate: two experts, gate logits [0, ln 3] → weights [1/4, 3/4];
    // expert outputs [1, 2] and [3, 4] → 0.25·[1, 2] + 0.75·[3, 4] = [2.5, 3.5].
    let (net, params) = MultiTaskNet::new(&same_input(Sharing::Mmoe { experts: 2 }, 16), 0, DType::F64, &Device::Cpu)?;
    // Zero gate weights and biases [0, ln 3] make the gate constant; compare with the experts' own outputs.
    for (name, var) in params.named().filter(|(name, _)| name.starts_with("trunk.level1.gates.")) {
        let value = if name.ends_with("bias") {
            Tensor::new(&[0f64, 3f64.ln()], &Device::Cpu)?
        } else {
            Tensor::zeros(var.shape(), DType::F64, &Device::Cpu)?
        };
        var.set(&value)?;
    }
    let images = random(&[2, 1, 16, 16], 9)?;
    let mixed = net.representation(0, &images)?;
    let Trunk::Experts(levels) = &net.trunk else { panic!("mmoe has expert levels") };
    let expert = |e: usize| levels[0].shared[e].forward(&images, &mut Dropout::off());
    let expected = ((expert(0)? * 0.25)? + (expert(1)? * 0.75)?)?;
    let difference = (mixed - expected)?.abs()?.max_all()?.to_scalar::<f64>()?;
    assert!(difference < 1e-12, "{difference}");
    Ok(())
}

#[test]
fn a_checkpoint_of_every_strategy_loads_back_with_identical_outputs() -> Result<()> {
    let images = random(&[3, 2, 5, 4], 6)?.to_dtype(DType::F32)?;
    for sharing in all_sharings() {
        let spec = multi_input(sharing, 4, 8);
        let (net, params) = MultiTaskNet::new(&spec, 1, DType::F32, &Device::Cpu)?;
        let (other, other_params) = MultiTaskNet::new(&spec, 2, DType::F32, &Device::Cpu)?;
        let outputs = |net: &MultiTaskNet| -> Result<Vec<f32>> {
            let mut values = net.forward(0, &images)?.flatten_all()?.to_vec1::<f32>()?;
            values.extend(net.forward(1, &tokens(3)?)?.flatten_all()?.to_vec1::<f32>()?);
            Ok(values)
        };
        assert_ne!(outputs(&net)?, outputs(&other)?, "{}: seeds 1 and 2 differ", sharing.label());
        // Through a safetensors file, as `--save-checkpoints` writes it.
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("net.safetensors");
        candle_core::safetensors::save(&params.tensors(), &path)?;
        other_params.load(&candle_core::safetensors::load(&path, &Device::Cpu)?)?;
        assert_eq!(outputs(&net)?, outputs(&other)?, "{}", sharing.label());
    }
    Ok(())
}

/// Two 2-class tasks on the same texts through TextCNN (embedding width 4, 3 maps per width).
fn text_only(sharing: Sharing) -> ModelSpec {
    ModelSpec {
        tasks: vec![
            TaskSpec { name: "topic".into(), input: TEXT, n_classes: 2 },
            TaskSpec { name: "tone".into(), input: TEXT, n_classes: 2 },
        ],
        sharing,
        trunk: TrunkSpec::TextCnn { width: 4, filters: 3 },
        dropout: 0.0,
        init: InitScheme::Framework,
    }
}

#[test]
fn textcnn_matches_a_hand_count_and_passes_a_gradient_check() -> Result<()> {
    // Hand count (hard): embedding 7·4 = 28; convs 4→3 of widths 3, 4, 5: (36 + 3) + (48 + 3) + (60 + 3) = 153;
    // heads 9 → 2 each: 20 + 20.
    let spec = text_only(Sharing::Hard);
    let (net, params) = MultiTaskNet::new(&spec, 0, DType::F64, &Device::Cpu)?;
    assert_eq!(params.n_parameters(), 28 + 153 + 40);
    assert_eq!(net.representation(0, &tokens(2)?)?.dims(), &[2, 9]);
    let loss = || -> Result<Tensor> {
        let labels = Tensor::new(&[0u32, 1], &Device::Cpu)?;
        let both = net.representations(&[0, 1], &tokens(2)?)?;
        let first = candle_nn::loss::cross_entropy(&net.head(0, &both[0])?, &labels)?;
        first + (candle_nn::loss::cross_entropy(&net.head(1, &both[1])?, &labels)? * 0.5)?
    };
    check_gradients(&params, loss)?;
    // Every strategy builds on it; images are refused.
    for sharing in all_sharings() {
        let (net, _) = MultiTaskNet::new(&text_only(sharing), 1, DType::F32, &Device::Cpu)?;
        assert_eq!(net.forward(1, &tokens(3)?)?.dims(), &[3, 2], "{}", sharing.label());
    }
    let images = ModelSpec { trunk: TrunkSpec::TextCnn { width: 4, filters: 3 }, ..multi_input(Sharing::Hard, 4, 4) };
    let error = MultiTaskNet::new(&images, 0, DType::F32, &Device::Cpu).err().expect("refused");
    assert!(error.to_string().contains("textcnn trunk reads text only"), "{error}");
    Ok(())
}

/// Sets every variable whose name starts with `prefix` and ends with a key of `values` to that
/// value, and every other variable under `prefix` to zeros.
fn set_under(params: &Parameters, prefix: &str, values: &[(&str, Tensor)]) -> Result<()> {
    for (name, var) in params.named().filter(|(name, _)| name.starts_with(prefix)) {
        let value = match values.iter().find(|(suffix, _)| name.ends_with(suffix)) {
            Some((_, value)) => value.clone(),
            None => Tensor::zeros(var.shape(), var.dtype(), &Device::Cpu)?,
        };
        var.set(&value)?;
    }
    Ok(())
}

fn max_difference(a: &Tensor, b: &Tensor) -> Result<f64> {
    (a - b)?.abs()?.max_all()?.to_scalar::<f64>()
}

#[test]
fn dselect_k_gates_weigh_the_experts_their_selectors_pick() -> Result<()> {
    // Three experts (codes 00, 01, 10; 11 unused), γ = 1, two selectors; zero gate weights make
    // each gate constant. Code biases are per selector, bit by bit (most significant first);
    // s(t) = 1 for t ≥ 1/2, 0 for t ≤ −1/2, s(0) = 1/2. Selector logits (0, ln 3) → (1/4, 3/4).
    //   left:  selector 1 (1, −1) → code 10, expert 2; selector 2 (−1, 1) → code 01, expert 1:
    //          1/4·e2 + 3/4·e1.
    //   right: selector 1 (0, −1) → codes 00 and 10 at 1/2 each; selector 2 (1, 1) → code 11, which
    //          no expert has: that selector weighs every expert 0 (see `network::dselect`):
    //          1/4·(e0/2 + e2/2).
    let sharing = Sharing::DSelectK { experts: 3, selectors: 2, gamma: 1.0 };
    let (net, params) = MultiTaskNet::new(&same_input(sharing, 16), 0, DType::F64, &Device::Cpu)?;
    let selectors = Tensor::new(&[0f64, 3f64.ln()], &Device::Cpu)?;
    for (task, codes) in [("left", [1f64, -1., -1., 1.]), ("right", [0., -1., 1., 1.])] {
        let values = [("codes.bias", Tensor::new(&codes, &Device::Cpu)?), ("selectors.bias", selectors.clone())];
        set_under(&params, &format!("trunk.level1.gates.{task}."), &values)?;
    }
    let images = random(&[2, 1, 16, 16], 9)?;
    let Trunk::Experts(levels) = &net.trunk else { panic!("dselect-k has an expert level") };
    let expert = |e: usize| levels[0].shared[e].forward(&images, &mut Dropout::off());
    let left = ((expert(2)? * 0.25)? + (expert(1)? * 0.75)?)?;
    let right = ((expert(0)? * 0.125)? + (expert(2)? * 0.125)?)?;
    let got = net.representations(&[0, 1], &images)?;
    assert!(max_difference(&got[0], &left)? < 1e-12, "left");
    assert!(max_difference(&got[1], &right)? < 1e-12, "right");
    Ok(())
}

/// `[[a, b], [c, d]]` as branching logits (child × parent).
fn logits(rows: [[f64; 2]; 2]) -> Result<Tensor> {
    Tensor::new(&rows, &Device::Cpu)
}

#[test]
fn ltb_evaluates_the_argmax_tree_and_a_peaked_tree_trains_as_it_evaluates() -> Result<()> {
    let spec = same_input(Sharing::Ltb { temperature: 1.0 }, 16);
    let (net, params) = MultiTaskNet::new(&spec, 4, DType::F64, &Device::Cpu)?;
    let Trunk::Branching(branching) = &net.trunk else { panic!("ltb branches") };
    let images = random(&[3, 1, 16, 16], 8)?;
    let block = |u: usize, b: usize, xs: &Tensor| branching.columns[u].blocks[b].forward(xs, &mut Dropout::off());
    let set = |after: [[[f64; 2]; 2]; 3]| -> Result<()> {
        let [conv1, conv2, fc] = after;
        let values = [("conv1", logits(conv1)?), ("conv2", logits(conv2)?), ("fc", logits(fc)?)];
        set_under(&params, "trunk.branch.", &values)
    };
    let both = |rows: [[f64; 2]; 2]| [rows, rows, rows];
    // Every child on parent 0: both tasks read column 0 whole (hard sharing). Ties go to the
    // first parent, so the initial all-zero logits give the same tree.
    let column0 = block(0, 2, &block(0, 1, &block(0, 0, &images)?)?)?;
    for tree in [both([[1., 0.], [1., 0.]]), both([[0., 0.], [0., 0.]])] {
        set(tree)?;
        for representation in net.representations(&[0, 1], &images)? {
            assert_eq!(max_difference(&representation, &column0)?, 0.0);
        }
    }
    // Each child on its own task: one network per task, soft sharing's columns (same seed, and
    // the branching logits draw nothing).
    set(both([[1., 0.], [0., 1.]]))?;
    let (soft, _) = MultiTaskNet::new(&same_input(Sharing::Soft { weight: 0.0 }, 16), 4, DType::F64, &Device::Cpu)?;
    for (task, representation) in net.representations(&[0, 1], &images)?.iter().enumerate() {
        assert_eq!(max_difference(representation, &soft.representation(task, &images)?)?, 0.0, "task {task}");
    }
    // A branch after conv1: conv1 of column 1 shared, then each task its own conv2 and fc; and the
    // one pass for both equals each task alone (which computes only its own path).
    set([[[0., 1.], [0., 1.]], [[1., 0.], [0., 1.]], [[1., 0.], [0., 1.]]])?;
    let shared = block(1, 0, &images)?;
    for task in 0..2 {
        let expected = block(task, 2, &block(task, 1, &shared)?)?;
        assert_eq!(max_difference(&net.representations(&[0, 1], &images)?[task], &expected)?, 0.0);
        assert_eq!(max_difference(&net.representation(task, &images)?, &expected)?, 0.0);
    }
    // Logits 1000 apart: the Gumbel-softmax is one-hot in f64 whatever the noise, so a training
    // pass takes the evaluation tree.
    set([[[0., 1e3], [0., 1e3]], [[1e3, 0.], [0., 1e3]], [[1e3, 0.], [0., 1e3]]])?;
    let trained = net.representations_train(&[0, 1], &images, &mut mtl_data::Rng::new(1))?;
    for (task, representation) in trained.iter().enumerate() {
        let expected = block(task, 2, &block(task, 1, &shared)?)?;
        assert!(max_difference(representation, &expected)? < 1e-12, "task {task}");
    }
    Ok(())
}

#[test]
fn ltb_trains_on_the_gumbel_softmax_of_the_seeded_noise_at_the_annealed_temperature() -> Result<()> {
    // τ₀ = 2 at epoch 4: τ = 2/√4 = 1. The pass draws 2×2 Gumbel values g_b per boundary, in block
    // order, from the generator it is given (dropout 0 draws nothing); child t's input is
    // Σ_u d_b[t][u]·h_u with d_b[t][u] = exp((θ_b[t][u] + g_b[t][u])/τ) / Σ_v exp((θ_b[t][v] + g_b[t][v])/τ).
    let spec = same_input(Sharing::Ltb { temperature: 2.0 }, 16);
    let (mut net, params) = MultiTaskNet::new(&spec, 6, DType::F64, &Device::Cpu)?;
    net.set_epoch(4);
    let theta = [[[0.3, -0.2], [1.0, 0.5]], [[0.0, 0.0], [-1.0, 2.0]], [[0.7, 0.1], [0.2, 0.2]]];
    set_under(
        &params,
        "trunk.branch.",
        &[("conv1", logits(theta[0])?), ("conv2", logits(theta[1])?), ("fc", logits(theta[2])?)],
    )?;
    let noise = Dropout::new(0.0, &mut mtl_data::Rng::new(5)).gumbel(12).expect("training");
    let d = |b: usize, t: usize| -> [f64; 2] {
        let e = [0, 1].map(|u| (theta[b][t][u] + noise[4 * b + 2 * t + u]).exp());
        [e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])]
    };
    let Trunk::Branching(branching) = &net.trunk else { panic!("ltb branches") };
    let images = random(&[2, 1, 16, 16], 3)?;
    let block = |u: usize, b: usize, xs: &Tensor| branching.columns[u].blocks[b].forward(xs, &mut Dropout::off());
    let mut h = vec![block(0, 0, &images)?, block(1, 0, &images)?];
    for b in 0..3 {
        let inputs: Vec<Tensor> =
            (0..2).map(|t| (&h[0] * d(b, t)[0])? + (&h[1] * d(b, t)[1])?).collect::<Result<_>>()?;
        h = if b < 2 { (0..2).map(|t| block(t, b + 1, &inputs[t])).collect::<Result<_>>()? } else { inputs };
    }
    let trained = net.representations_train(&[0, 1], &images, &mut mtl_data::Rng::new(5))?;
    for task in 0..2 {
        assert!(max_difference(&trained[task], &h[task])? < 1e-12, "task {task}");
    }
    Ok(())
}

#[test]
fn gumbel_draws_are_seeded_finite_and_standard_gumbel() {
    // Standard Gumbel: mean γ_Euler = 0.5772…, variance π²/6 = 1.6449…; 200,000 draws put the
    // mean within about 0.003 (one standard error), the variance within about 0.01.
    assert!(Dropout::off().gumbel(3).is_none(), "evaluation draws nothing");
    let draws = |seed| Dropout::new(0.5, &mut mtl_data::Rng::new(seed)).gumbel(200_000).expect("training");
    let g = draws(7);
    assert_eq!(g, draws(7));
    assert!(g.iter().all(|x| x.is_finite()));
    let mean = g.iter().sum::<f64>() / g.len() as f64;
    let variance = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / g.len() as f64;
    assert!((mean - 0.577_215_664_9).abs() < 0.015, "mean {mean}");
    assert!((variance - std::f64::consts::PI.powi(2) / 6.0).abs() < 0.05, "variance {variance}");
}
