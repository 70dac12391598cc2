//! The encoders against numbers printed by `benches/reference/sequence_reference.py`
//! (float64 numpy from PyTorch's documented equations; padded LSTM/GRU sequences run
//! over their own lengths only, as packed sequences). Parameters and inputs are
//! `fixed(shape, salt)` = 0.5·sin(0.7·k + salt), parameters with salt = index in name order.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::*;
use crate::init::{InitScheme, SeededBackend};

fn fixed(shape: &[usize], salt: f64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|k| 0.5 * (0.7 * k as f64 + salt).sin()).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// Builds a module in f64 and sets its parameters to the script's fixed values.
fn with_fixed_parameters<M>(build: impl FnOnce(VarBuilder) -> Result<M>) -> Result<M> {
    let backend = Arc::new(SeededBackend::new(0));
    let module = build(backend.builder(DType::F64, &Device::Cpu))?;
    for (salt, (_, var)) in backend.parameters().named().enumerate() {
        var.set(&fixed(var.dims(), salt as f64)?)?;
    }
    Ok(module)
}

/// `[B, T]` keep mask of sequences of `lengths` real tokens.
fn keep_mask(lengths: &[usize], len: usize) -> Result<Tensor> {
    let values: Vec<f64> = lengths.iter().flat_map(|&n| (0..len).map(move |t| if t < n { 1.0 } else { 0.0 })).collect();
    Tensor::from_vec(values, (lengths.len(), len), &Device::Cpu)
}

#[track_caller]
fn check(what: &str, got: &Tensor, expected: &[f64]) {
    let got = got.flatten_all().and_then(|t| t.to_vec1::<f64>()).expect("f64 values");
    assert_eq!(got.len(), expected.len(), "{what}: size");
    for (i, (a, b)) in got.iter().zip(expected).enumerate() {
        assert!((a - b).abs() < 1e-10, "{what}[{i}]: ours {a}, reference {b}");
    }
}

fn config(positions: Positions, pooling: Pooling, activation: Activation) -> TransformerConfig {
    TransformerConfig {
        vocab_size: 7,
        d_model: 4,
        n_heads: 2,
        d_feed_forward: 6,
        n_layers: 2,
        max_len: 4,
        positions,
        pooling,
        activation,
        dropout: 0.5,
    }
}

#[test]
fn layer_norm_matches_the_reference() -> Result<()> {
    let norm = with_fixed_parameters(|vb| LayerNorm::new(5, vb))?;
    check("layer norm", &norm.forward(&(fixed(&[2, 5], 100.0)? * 3.0)?)?, &LAYER_NORM);
    Ok(())
}

#[test]
fn masked_attention_and_an_encoder_layer_match_the_reference() -> Result<()> {
    let (xs, keep) = (fixed(&[2, 3, 4], 100.0)?, keep_mask(&[3, 2], 3)?);
    let attention =
        with_fixed_parameters(|vb| MultiHeadSelfAttention::new(4, 2, InitScheme::Framework, vb.pp("attention")))?;
    check("attention", &attention.forward(&xs, &keep)?, &ATTENTION);
    let layer_config = config(Positions::Sinusoidal, Pooling::MaskedMean, Activation::Gelu);
    let layer = with_fixed_parameters(|vb| EncoderLayer::new(&layer_config, InitScheme::Framework, vb))?;
    check("encoder layer", &layer.forward(&xs, &keep, None)?, &ENCODER_LAYER_GELU);
    Ok(())
}

#[test]
fn transformer_encoders_match_the_reference() -> Result<()> {
    let ids = Tensor::new(&[[3u32, 5, 2, 0], [6, 1, 0, 0]], &Device::Cpu)?;
    let cases = [
        (config(Positions::Sinusoidal, Pooling::MaskedMean, Activation::Gelu), &TRANSFORMER_SINUSOIDAL_MEAN_GELU),
        (config(Positions::Learned, Pooling::Cls, Activation::Relu), &TRANSFORMER_LEARNED_CLS_RELU),
    ];
    for (config, expected) in cases {
        let encoder = with_fixed_parameters(|vb| TransformerEncoder::new(&config, InitScheme::Framework, vb))?;
        check(&format!("{config:?}"), &encoder.forward(&ids, None)?, expected);
    }
    Ok(())
}

#[test]
fn bidirectional_lstm_and_gru_match_the_reference() -> Result<()> {
    let (xs, keep) = (fixed(&[2, 4, 3], 100.0)?, keep_mask(&[3, 2], 4)?);
    let cases = [
        (CellKind::Lstm, RecurrentPooling::FinalStates, &LSTM_FINAL_STATES),
        (CellKind::Lstm, RecurrentPooling::MaskedMean, &LSTM_MASKED_MEAN),
        (CellKind::Gru, RecurrentPooling::FinalStates, &GRU_FINAL_STATES),
        (CellKind::Gru, RecurrentPooling::MaskedMean, &GRU_MASKED_MEAN),
    ];
    for (cell, pooling, expected) in cases {
        let config = RecurrentConfig { cell, input_size: 3, hidden_size: 2, bidirectional: true, pooling };
        let encoder = with_fixed_parameters(|vb| RecurrentEncoder::new(&config, InitScheme::Framework, vb))?;
        check(&format!("{cell:?} {pooling:?}"), &encoder.forward(&xs, &keep)?, expected);
    }
    Ok(())
}

const LAYER_NORM: [f64; 10] = [
    -0.7270830444364776,
    0.07713678811088359,
    0.693762774247359,
    0.4529670821627775,
    -0.01588298327948326,
    0.735742413436318,
    0.3672798786276766,
    0.15998944523252268,
    0.41135460097385634,
    0.1309617792026982,
];
const ATTENTION: [f64; 24] = [
    -0.0195742992851905,
    0.6597062414921671,
    -0.49404058523171995,
    -0.16493923899153715,
    -0.02422708541409979,
    0.6654140275818516,
    -0.500143806241728,
    -0.15914584270988602,
    -0.014665097589467935,
    0.6501087167059457,
    -0.4808637823900447,
    -0.1801726702373413,
    -0.08325720180709117,
    0.7392945630777334,
    -0.5803374720183039,
    -0.0819058512561569,
    -0.04816823272528237,
    0.6913304824682213,
    -0.5250407845002831,
    -0.13814531933555052,
    -0.07470207447805166,
    0.7298868806470834,
    -0.5711643422271943,
    -0.08978442447158025,
];
const ENCODER_LAYER_GELU: [f64; 24] = [
    0.0683748074572999,
    0.8673176913348501,
    0.41568632008696305,
    0.13738621681717034,
    0.7310184259985733,
    0.9476417212183756,
    -0.32407508759255055,
    -0.7999842386167159,
    -0.12968291023588208,
    0.5381910847770004,
    0.10553466294811387,
    0.047031240365115023,
    0.8724692473918907,
    1.1904465518680352,
    0.07283302966971206,
    -0.6563002827252449,
    -0.08639066936966439,
    0.2924770343292938,
    -0.2044244262148085,
    -0.2829441420242594,
    0.7525839516127668,
    1.2964619847221126,
    0.4001366243302664,
    -0.3504313079158082,
];
const TRANSFORMER_SINUSOIDAL_MEAN_GELU: [f64; 8] = [
    0.08175518739772382,
    0.5820906109139717,
    0.4560900998966428,
    -0.498104998807454,
    0.07830663425934067,
    0.5972295201967439,
    0.47014620387831096,
    -0.5172323878554911,
];
const TRANSFORMER_LEARNED_CLS_RELU: [f64; 8] = [
    0.3660326658275048,
    0.28263434261291726,
    -0.11904615643060852,
    -1.1194608603570644,
    0.36804437453761846,
    0.2869489742401629,
    -0.10400184616507384,
    -1.1284389320221435,
];
const LSTM_FINAL_STATES: [f64; 8] = [
    -0.08824621925077883,
    -0.07316448551432918,
    -0.22772439558181698,
    -0.13006844208754084,
    -0.07391060346176576,
    -0.06129520040030643,
    -0.2147232911666335,
    -0.20233825477890527,
];
const LSTM_MASKED_MEAN: [f64; 8] = [
    -0.07911382716645163,
    -0.16698907801353843,
    -0.16420860242365862,
    -0.12762603131587613,
    -0.035101815139575734,
    -0.15752136808593106,
    -0.13167393957698315,
    -0.1254322686765525,
];
const GRU_FINAL_STATES: [f64; 8] = [
    -0.21428102029411505,
    -0.06928678733201911,
    -0.39179726031286627,
    -0.08647536613318853,
    -0.1830400071092332,
    -0.05576212308615129,
    -0.2988105817872837,
    -0.2211451049786674,
];
const GRU_MASKED_MEAN: [f64; 8] = [
    -0.16418267046788163,
    -0.2437119074039423,
    -0.2501545795563904,
    -0.08881921376981015,
    -0.10377398644950651,
    -0.197553119264215,
    -0.1786100786034916,
    -0.08772734392270592,
];
