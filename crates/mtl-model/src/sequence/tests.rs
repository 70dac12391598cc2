//! Gradients of every sequence module against finite differences (f64), hand cases,
//! candle's fused ops (values equal, no gradient), padding invariance, parameter names,
//! dropout and determinism. Numbers from the numpy reference are in `reference_tests`.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};
use candle_nn::VarBuilder;
use mtl_data::Rng;

use super::*;
use crate::init::{InitScheme, Parameters, SeededBackend};
use crate::testing::{check_gradients, random, weighted_sum};

fn values(tensor: &Tensor) -> Result<Vec<f64>> {
    tensor.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
}

#[track_caller]
fn assert_close(what: &str, ours: &Tensor, expected: &[f64], tolerance: f64) {
    let ours = values(ours).expect("values");
    assert_eq!(ours.len(), expected.len(), "{what}: size");
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!((a - b).abs() <= tolerance * (1.0 + b.abs()), "{what}[{i}]: ours {a}, expected {b}");
    }
}

fn random_var(shape: &[usize], seed: u64) -> Result<Var> {
    Var::from_tensor(&random(shape, seed)?)
}

/// A module built with seeded parameters (`seed`) in `dtype`, and its parameters.
fn build<M>(seed: u64, dtype: DType, make: impl FnOnce(VarBuilder) -> Result<M>) -> Result<(M, Parameters)> {
    let backend = Arc::new(SeededBackend::new(seed));
    let module = make(backend.builder(dtype, &Device::Cpu))?;
    Ok((module, backend.parameters()))
}

/// Finite differences on up to `per_var` elements of every parameter and of `extra`.
fn check_all(
    parameters: &Parameters,
    extra: &[(&str, &Var)],
    per_var: usize,
    loss: impl Fn() -> Result<Tensor>,
) -> Result<()> {
    let mut vars: Vec<(&str, &Var)> = parameters.named().collect();
    vars.extend_from_slice(extra);
    check_gradients(&vars, per_var, loss)
}

/// `[B, T]` keep mask of sequences of `lengths` real tokens.
fn keep_mask(lengths: &[usize], len: usize, dtype: DType) -> Result<Tensor> {
    let values: Vec<f64> = lengths.iter().flat_map(|&n| (0..len).map(move |t| if t < n { 1.0 } else { 0.0 })).collect();
    Tensor::from_vec(values, (lengths.len(), len), &Device::Cpu)?.to_dtype(dtype)
}

fn transformer_config(positions: Positions, pooling: Pooling, activation: Activation) -> TransformerConfig {
    TransformerConfig {
        vocab_size: 11,
        d_model: 6,
        n_heads: 2,
        d_feed_forward: 8,
        n_layers: 2,
        max_len: 8,
        positions,
        pooling,
        activation,
        dropout: 0.2,
    }
}

fn every_transformer_config() -> Vec<TransformerConfig> {
    let mut configs = Vec::new();
    for positions in [Positions::Sinusoidal, Positions::Learned] {
        for pooling in [Pooling::MaskedMean, Pooling::Cls] {
            let activation = if pooling == Pooling::Cls { Activation::Relu } else { Activation::Gelu };
            configs.push(transformer_config(positions, pooling, activation));
        }
    }
    configs
}

fn every_recurrent_config(input_size: usize, hidden_size: usize) -> Vec<RecurrentConfig> {
    let mut configs = Vec::new();
    for cell in [CellKind::Lstm, CellKind::Gru] {
        for pooling in [RecurrentPooling::FinalStates, RecurrentPooling::MaskedMean] {
            for bidirectional in [false, true] {
                configs.push(RecurrentConfig { cell, input_size, hidden_size, bidirectional, pooling });
            }
        }
    }
    configs
}

/// Right-padded token ids: sequence `b` has `lengths[b]` tokens in 1..vocab, then zeros.
fn token_ids(lengths: &[usize], len: usize, vocab: usize, seed: u64) -> Result<Tensor> {
    let mut rng = Rng::new(seed);
    let ids: Vec<u32> = lengths
        .iter()
        .flat_map(|&n| (0..len).map(|t| if t < n { 1 + rng.below(vocab - 1) as u32 } else { 0 }).collect::<Vec<_>>())
        .collect();
    Tensor::from_vec(ids, (lengths.len(), len), &Device::Cpu)
}

#[test]
fn layer_norm_hand_case_and_candles_values() -> Result<()> {
    // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25; weight 2, bias 1.
    let x = Tensor::new(&[[1f64, 2.0, 3.0, 4.0]], &Device::Cpu)?;
    let norm = LayerNorm::from_parameters(
        Tensor::new(&[2f64; 4], &Device::Cpu)?,
        Tensor::new(&[1f64; 4], &Device::Cpu)?,
        LayerNorm::DEFAULT_EPS,
    );
    let expected: Vec<f64> =
        [1.0, 2.0, 3.0, 4.0].iter().map(|x| (x - 2.5) / (1.25f64 + 1e-5).sqrt() * 2.0 + 1.0).collect();
    assert_close("hand case", &norm.forward(&x)?, &expected, 1e-14);

    // candle's fused op refuses f64 ("unsupported dtype for rmsnorm F64"): f32 against it,
    // f64 against its unfused `layer_norm_slow`.
    let (xs, weight, bias) = (random(&[3, 5, 7], 1)?, random(&[7], 2)?, random(&[7], 3)?);
    let ours = LayerNorm::from_parameters(weight.clone(), bias.clone(), 1e-5).forward(&xs)?;
    assert_close(
        "f64 against candle",
        &ours,
        &values(&candle_nn::ops::layer_norm_slow(&xs, &weight, &bias, 1e-5)?)?,
        1e-12,
    );
    let [xs, weight, bias] = [xs, weight, bias].map(|t| t.to_dtype(DType::F32).expect("cast"));
    let theirs = candle_nn::ops::layer_norm(&xs, &weight, &bias, 1e-5)?;
    let ours = LayerNorm::from_parameters(weight, bias, 1e-5).forward(&xs)?;
    assert_close("f32 against candle", &ours, &values(&theirs)?, 1e-5);
    Ok(())
}

#[test]
fn candles_fused_layer_norm_and_softmax_record_no_gradient() -> Result<()> {
    // candle 0.11.1 builds both with `apply_op*_no_bwd`: the input receives no gradient.
    // Should a later candle record one, this test fails and the fused ops may be used.
    let f32_var = |shape: &[usize], seed| Var::from_tensor(&random(shape, seed)?.to_dtype(DType::F32)?);
    let xs = f32_var(&[2, 3, 5], 1)?;
    let (weight, bias) = (f32_var(&[5], 2)?, f32_var(&[5], 3)?);
    let fused = candle_nn::ops::layer_norm(&xs, &weight, &bias, 1e-5)?;
    let grads = weighted_sum(&fused, 4)?.backward()?;
    assert!(grads.get(&xs).is_none() && grads.get(&weight).is_none() && grads.get(&bias).is_none());
    let grads = weighted_sum(&candle_nn::ops::softmax_last_dim(&xs)?, 4)?.backward()?;
    assert!(grads.get(&xs).is_none());

    let ours = LayerNorm::from_parameters(weight.as_tensor().clone(), bias.as_tensor().clone(), 1e-5).forward(&xs)?;
    let grads = weighted_sum(&ours, 4)?.backward()?;
    assert!(grads.get(&xs).is_some() && grads.get(&weight).is_some() && grads.get(&bias).is_some());
    assert!(weighted_sum(&softmax_last_dim(&xs)?, 4)?.backward()?.get(&xs).is_some());
    Ok(())
}

#[test]
fn softmax_hand_cases_and_candles_values() -> Result<()> {
    let device = &Device::Cpu;
    let row = |values: &[f64]| Tensor::new(values, device);
    // [0, ln 2, ln 5] → [1, 2, 5] / 8.
    let plain = softmax_last_dim(&row(&[0.0, 2f64.ln(), 5f64.ln()])?)?;
    assert_close("exp weights", &plain, &[0.125, 0.25, 0.625], 1e-15);
    // Scores whose exp overflows or underflows: the max is subtracted first.
    assert_close("large", &softmax_last_dim(&row(&[1000.0, 1000.0, -1000.0])?)?, &[0.5, 0.5, 0.0], 0.0);
    // The masked score is left out: [1, 5] / 6, and exactly 0 where masked, even if largest.
    let masked = masked_softmax_last_dim(&row(&[0.0, 100.0, 5f64.ln()])?, &row(&[1.0, 0.0, 1.0])?)?;
    assert_close("masked", &masked, &[1.0 / 6.0, 0.0, 5.0 / 6.0], 1e-15);
    assert_eq!(values(&masked)?[1], 0.0);
    // Every position masked (a text without tokens): finite weights that sum to 1.
    let all_masked = values(&masked_softmax_last_dim(&row(&[3.0, -2.0])?, &row(&[0.0, 0.0])?)?)?;
    assert!(all_masked.iter().all(|w| w.is_finite()) && (all_masked[0] + all_masked[1] - 1.0).abs() < 1e-15);

    for dtype in [DType::F32, DType::F64] {
        let xs = (random(&[4, 3, 9], 5)? * 4.0)?.to_dtype(dtype)?;
        let theirs = candle_nn::ops::softmax_last_dim(&xs)?;
        let tolerance = if dtype == DType::F32 { 1e-6 } else { 1e-14 };
        assert_close(&format!("{dtype:?} against candle"), &softmax_last_dim(&xs)?, &values(&theirs)?, tolerance);
    }
    Ok(())
}

#[test]
fn gelu_hand_case_and_candles_rounded_gradient() -> Result<()> {
    // GELU(x) = x·Φ(x), GELU'(x) = Φ(x) + x·φ(x); at x = 1: Φ(1) = 0.8413447460685429,
    // φ(1) = e^(−1/2)/√(2π) = 0.24197072451914337 (scipy.stats.norm).
    let x = Var::new(&[1f64], &Device::Cpu)?;
    let ours = Activation::Gelu.apply(&x)?;
    assert_close("gelu(1)", &ours, &[0.8413447460685429], 1e-15);
    let exact_gradient = 0.8413447460685429 + 0.24197072451914337;
    assert_close("gelu'(1)", ours.backward()?.get(&x).expect("gradient"), &[exact_gradient], 1e-15);
    // candle's fused gelu_erf: the same value, but its backward uses 0.398942 for 1/√(2π),
    // off by about 1.7e-7 at x = 1, which the finite-difference checks would see.
    let theirs = x.gelu_erf()?;
    assert_close("candle gelu_erf(1)", &theirs, &[0.8413447460685429], 1e-15);
    let their_gradient = values(theirs.backward()?.get(&x).expect("gradient"))?[0];
    assert!(
        (their_gradient - exact_gradient).abs() > 1e-7,
        "candle's gelu_erf gradient is exact now: {their_gradient}"
    );
    let x = random_var(&[3, 7], 9)?;
    check_gradients(&[("x", &x)], usize::MAX, || weighted_sum(&Activation::Gelu.apply(&x)?, 2))
}

#[test]
fn layer_norm_and_softmax_pass_finite_differences() -> Result<()> {
    let (xs, weight, bias) = (random_var(&[3, 4, 6], 1)?, random_var(&[6], 2)?, random_var(&[6], 3)?);
    let norm = LayerNorm::from_parameters(weight.as_tensor().clone(), bias.as_tensor().clone(), 1e-5);
    let vars = [("xs", &xs), ("weight", &weight), ("bias", &bias)];
    check_gradients(&vars, usize::MAX, || weighted_sum(&norm.forward(&xs)?, 4))?;

    let scores = Var::from_tensor(&(random(&[2, 3, 5], 5)? * 3.0)?)?;
    check_gradients(&[("scores", &scores)], usize::MAX, || weighted_sum(&softmax_last_dim(&scores)?, 6))?;
    let keep = keep_mask(&[5, 3], 5, DType::F64)?.unsqueeze(1)?;
    check_gradients(&[("scores", &scores)], usize::MAX, || weighted_sum(&masked_softmax_last_dim(&scores, &keep)?, 6))
}

#[test]
fn masked_attention_passes_finite_differences_and_ignores_padded_keys() -> Result<()> {
    let (attention, parameters) =
        build(1, DType::F64, |vb| MultiHeadSelfAttention::new(6, 3, InitScheme::Framework, vb))?;
    let xs = random_var(&[3, 4, 6], 2)?;
    let keep = keep_mask(&[4, 2, 1], 4, DType::F64)?;
    check_all(&parameters, &[("xs", &xs)], usize::MAX, || weighted_sum(&attention.forward(&xs, &keep)?, 3))?;

    let (_, weights) = attention.forward_with_weights(&xs, &keep)?;
    assert_eq!(weights.dims(), &[3, 3, 4, 4]);
    for (b, length) in [4, 2, 1].into_iter().enumerate() {
        let rows = weights.get(b)?;
        assert_close("rows sum to 1", &rows.sum(D::Minus1)?, &[1.0; 12], 1e-14);
        if length < 4 {
            assert!(values(&rows.narrow(D::Minus1, length, 4 - length)?)?.iter().all(|&w| w == 0.0), "sequence {b}");
        }
    }
    // Hand case: when every token is the same vector, any weights average equal values, so
    // every output is output(value(x)).
    let same = random(&[1, 1, 6], 4)?.broadcast_as((1, 5, 6))?.contiguous()?;
    let out = attention.forward(&same, &Tensor::ones((1, 5), DType::F64, &Device::Cpu)?)?;
    let named: std::collections::HashMap<_, _> =
        parameters.named().map(|(n, v)| (n.to_string(), v.as_tensor().clone())).collect();
    let linear = |name: &str, x: &Tensor| -> Result<Tensor> {
        x.matmul(&named[&format!("{name}.weight")].t()?)?.broadcast_add(&named[&format!("{name}.bias")])
    };
    let expected = linear("output", &linear("value", &same.get(0)?.narrow(0, 0, 1)?)?)?;
    for t in 0..5 {
        assert_close("same tokens", &out.get(0)?.get(t)?, &values(&expected)?, 1e-12);
    }
    Ok(())
}

#[test]
fn encoder_layers_pass_finite_differences() -> Result<()> {
    for activation in [Activation::Gelu, Activation::Relu] {
        let config = transformer_config(Positions::Sinusoidal, Pooling::MaskedMean, activation);
        let (layer, parameters) = build(1, DType::F64, |vb| EncoderLayer::new(&config, InitScheme::Framework, vb))?;
        let xs = random_var(&[2, 5, 6], 2)?;
        let keep = keep_mask(&[5, 3], 5, DType::F64)?;
        check_all(&parameters, &[("xs", &xs)], 12, || weighted_sum(&layer.forward(&xs, &keep, None)?, 3))?;
    }
    Ok(())
}

#[test]
fn transformer_encoders_pass_finite_differences() -> Result<()> {
    let ids = token_ids(&[6, 3, 1], 6, 11, 1)?;
    for config in every_transformer_config() {
        let (encoder, parameters) =
            build(2, DType::F64, |vb| TransformerEncoder::new(&config, InitScheme::Framework, vb))?;
        let out = encoder.forward(&ids, None)?;
        assert_eq!(out.dims(), &[3, 6], "{config:?}");
        check_all(&parameters, &[], 4, || weighted_sum(&encoder.forward(&ids, None)?, 3))?;
    }
    Ok(())
}

#[test]
fn recurrent_encoders_pass_finite_differences_in_both_directions_with_padding() -> Result<()> {
    let keep = keep_mask(&[5, 3, 1], 5, DType::F64)?;
    for config in every_recurrent_config(3, 4) {
        let (encoder, parameters) =
            build(1, DType::F64, |vb| RecurrentEncoder::new(&config, InitScheme::Framework, vb))?;
        let xs = random_var(&[3, 5, 3], 2)?;
        let out = encoder.forward(&xs, &keep)?;
        assert_eq!(out.dims(), &[3, if config.bidirectional { 8 } else { 4 }], "{config:?}");
        check_all(&parameters, &[("xs", &xs)], 16, || weighted_sum(&encoder.forward(&xs, &keep)?, 3))?;
    }
    Ok(())
}

/// A one-unit cell on one input feature with only `weight_ih` non-zero (`gates`), run over
/// the inputs `xs`: the final `h`.
fn one_unit_cell(cell: CellKind, gates: &[f64], xs: &[f64]) -> Result<f64> {
    let (cell, parameters) =
        build(0, DType::F64, |vb| RecurrentCell::new(cell, 1, 1, "l0", InitScheme::Framework, vb))?;
    for (name, var) in parameters.named() {
        let value = if name == "weight_ih_l0" {
            Tensor::new(gates, &Device::Cpu)?.reshape(var.dims())?
        } else {
            var.zeros_like()?
        };
        var.set(&value)?;
    }
    let inputs = Tensor::new(xs, &Device::Cpu)?.reshape((1, xs.len(), 1))?;
    let projected = cell.project_inputs(&inputs)?;
    let mut state = cell.zero_state(1, &inputs)?;
    for t in 0..xs.len() {
        state = cell.step(&projected.get(0)?.narrow(0, t, 1)?, &state)?;
    }
    state.h.flatten_all()?.to_vec1::<f64>().map(|h| h[0])
}

#[test]
fn one_unit_cells_by_hand() -> Result<()> {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    // LSTM, gates i, f, g, o with weights a; W_hh = 0, biases 0, inputs 1 then 0.5:
    // c1 = σ(a_i)·tanh(a_g), c2 = σ(a_f/2)·c1 + σ(a_i/2)·tanh(a_g/2), h2 = σ(a_o/2)·tanh(c2).
    let a = [0.3, -0.7, 1.1, 0.9];
    let c1 = sigmoid(a[0]) * a[2].tanh();
    let c2 = sigmoid(a[1] / 2.0) * c1 + sigmoid(a[0] / 2.0) * (a[2] / 2.0).tanh();
    let lstm = one_unit_cell(CellKind::Lstm, &a, &[1.0, 0.5])?;
    assert!((lstm - sigmoid(a[3] / 2.0) * c2.tanh()).abs() < 1e-15, "lstm {lstm}");
    // GRU, gates r, z, n: with W_hh = 0 and biases 0, r multiplies 0, so
    // h1 = (1 − σ(a_z))·tanh(a_n), h2 = (1 − σ(a_z/2))·tanh(a_n/2) + σ(a_z/2)·h1.
    let a = [0.4, -0.8, 1.3];
    let h1 = (1.0 - sigmoid(a[1])) * a[2].tanh();
    let expected = (1.0 - sigmoid(a[1] / 2.0)) * (a[2] / 2.0).tanh() + sigmoid(a[1] / 2.0) * h1;
    let gru = one_unit_cell(CellKind::Gru, &a, &[1.0, 0.5])?;
    assert!((gru - expected).abs() < 1e-15, "gru {gru}");
    Ok(())
}

#[test]
fn appended_padding_leaves_the_pooled_output_unchanged() -> Result<()> {
    // f32, the training dtype: padded keys have weight exactly 0 and states hold at padding,
    // so only the order of sums over more (zero) terms may differ.
    let (lengths, len, extra) = ([5, 2, 1], 5, 4);
    let max_len = len + extra;
    let ids = token_ids(&lengths, len, 11, 3)?;
    let padded = Tensor::cat(&[&ids, &Tensor::zeros((3, extra), DType::U32, &Device::Cpu)?], 1)?;
    for config in every_transformer_config() {
        let config = TransformerConfig { max_len, ..config };
        let (encoder, _) = build(4, DType::F32, |vb| TransformerEncoder::new(&config, InitScheme::Framework, vb))?;
        let expected = values(&encoder.forward(&ids, None)?)?;
        assert_close(&format!("{config:?}"), &encoder.forward(&padded, None)?, &expected, 1e-6);
    }
    let xs = random(&[3, len, 3], 5)?.to_dtype(DType::F32)?;
    let padded_xs = Tensor::cat(&[&xs, &random(&[3, extra, 3], 6)?.to_dtype(DType::F32)?], 1)?;
    for config in every_recurrent_config(3, 4) {
        let (encoder, _) = build(4, DType::F32, |vb| RecurrentEncoder::new(&config, InitScheme::Framework, vb))?;
        let expected = values(&encoder.forward(&xs, &keep_mask(&lengths, len, DType::F32)?)?)?;
        let got = encoder.forward(&padded_xs, &keep_mask(&lengths, len + extra, DType::F32)?)?;
        assert_close(&format!("{config:?}"), &got, &expected, 1e-6);
    }
    Ok(())
}

#[test]
fn parameter_names_and_shapes_are_pytorchs() -> Result<()> {
    let shapes = |parameters: &Parameters| -> Vec<(String, Vec<usize>)> {
        parameters.named().map(|(name, var)| (name.to_string(), var.dims().to_vec())).collect()
    };
    for (cell, gates) in [(CellKind::Lstm, 4), (CellKind::Gru, 3)] {
        let config = RecurrentConfig {
            cell,
            input_size: 3,
            hidden_size: 5,
            bidirectional: true,
            pooling: RecurrentPooling::FinalStates,
        };
        let (_, parameters) = build(0, DType::F32, |vb| RecurrentEncoder::new(&config, InitScheme::Framework, vb))?;
        let mut expected = Vec::new();
        for suffix in ["l0", "l0_reverse"] {
            expected.push((format!("bias_hh_{suffix}"), vec![gates * 5]));
            expected.push((format!("bias_ih_{suffix}"), vec![gates * 5]));
            expected.push((format!("weight_hh_{suffix}"), vec![gates * 5, 5]));
            expected.push((format!("weight_ih_{suffix}"), vec![gates * 5, 3]));
        }
        expected.sort();
        assert_eq!(shapes(&parameters), expected, "{cell:?}");
        // PyTorch's default: every parameter U(±1/√H).
        let largest =
            parameters.vars().iter().flat_map(|v| values(v).expect("values")).fold(0f64, |m, x| m.max(x.abs()));
        assert!(largest <= 1.0 / 5f64.sqrt() && largest > 0.3, "{cell:?}: largest {largest}");
    }
    let config = transformer_config(Positions::Learned, Pooling::Cls, Activation::Gelu);
    let (_, parameters) = build(0, DType::F32, |vb| TransformerEncoder::new(&config, InitScheme::Framework, vb))?;
    let names: Vec<String> = shapes(&parameters).into_iter().map(|(name, _)| name).collect();
    for name in ["cls", "embedding.weight", "positions.weight", "final_norm.bias", "layers.1.attention.query.weight"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    // cls, embedding, positions, final norm weight and bias; 16 per layer.
    assert_eq!(names.len(), 5 + 2 * 16);
    Ok(())
}

#[test]
fn dropout_draws_only_from_the_given_generator() -> Result<()> {
    let ids = token_ids(&[6, 4], 6, 11, 1)?;
    let config = transformer_config(Positions::Sinusoidal, Pooling::MaskedMean, Activation::Gelu);
    let (encoder, _) = build(2, DType::F32, |vb| TransformerEncoder::new(&config, InitScheme::Framework, vb))?;
    let train = |seed| encoder.forward(&ids, Some(&mut Rng::new(seed))).and_then(|t| values(&t));
    let evaluation = values(&encoder.forward(&ids, None)?)?;
    assert_eq!(train(7)?, train(7)?);
    assert_ne!(train(7)?, train(8)?);
    assert_ne!(train(7)?, evaluation);
    let no_dropout = TransformerConfig { dropout: 0.0, ..config };
    let (encoder, _) = build(2, DType::F32, |vb| TransformerEncoder::new(&no_dropout, InitScheme::Framework, vb))?;
    assert_eq!(values(&encoder.forward(&ids, Some(&mut Rng::new(7)))?)?, evaluation);
    Ok(())
}

/// Output and gradient bits of a training step of each encoder, built from `seed`.
fn training_bits(seed: u64) -> Result<Vec<Vec<u32>>> {
    let bits = |t: &Tensor| {
        t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>().map(|v| v.iter().map(|x| x.to_bits()).collect())
    };
    let mut all = Vec::new();
    let config = TransformerConfig {
        vocab_size: 50,
        d_model: 64,
        n_heads: 4,
        d_feed_forward: 128,
        max_len: 64,
        ..transformer_config(Positions::Learned, Pooling::MaskedMean, Activation::Gelu)
    };
    let (encoder, parameters) =
        build(seed, DType::F32, |vb| TransformerEncoder::new(&config, InitScheme::Framework, vb))?;
    let ids = token_ids(&[64, 40, 17, 64, 3, 50, 64, 9], 64, 50, seed)?;
    let out = encoder.forward(&ids, Some(&mut Rng::new(seed)))?;
    let grads = weighted_sum(&out, 1)?.backward()?;
    all.push(bits(&out)?);
    for var in parameters.vars() {
        all.push(bits(grads.get(&var).expect("gradient"))?);
    }
    let config = RecurrentConfig {
        cell: CellKind::Lstm,
        input_size: 64,
        hidden_size: 64,
        bidirectional: true,
        pooling: RecurrentPooling::MaskedMean,
    };
    let (encoder, parameters) =
        build(seed, DType::F32, |vb| RecurrentEncoder::new(&config, InitScheme::Framework, vb))?;
    let xs = random(&[8, 16, 64], seed)?.to_dtype(DType::F32)?;
    let out = encoder.forward(&xs, &keep_mask(&[16, 9, 1, 16, 12, 3, 16, 7], 16, DType::F32)?)?;
    let grads = weighted_sum(&out, 1)?.backward()?;
    all.push(bits(&out)?);
    for var in parameters.vars() {
        all.push(bits(grads.get(&var).expect("gradient"))?);
    }
    Ok(all)
}

use crate::testing::THREAD_COUNT;

#[test]
fn same_seed_same_bits_whatever_the_thread_count() -> Result<()> {
    let _guard = THREAD_COUNT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = std::env::var_os("RAYON_NUM_THREADS");
    let with_threads = |threads: &str| {
        std::env::set_var("RAYON_NUM_THREADS", threads);
        assert_eq!(candle_core::utils::get_num_threads().to_string(), threads, "candle reads the setting");
        training_bits(3)
    };
    let (one, four, eight) = (with_threads("1"), with_threads("4"), with_threads("8"));
    match previous {
        Some(value) => std::env::set_var("RAYON_NUM_THREADS", value),
        None => std::env::remove_var("RAYON_NUM_THREADS"),
    }
    let one = one?;
    assert!(one == four? && one == eight?, "the thread count changed the results");
    assert!(one != training_bits(4)?, "another seed gave the same results");
    Ok(())
}
