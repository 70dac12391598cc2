//! Times forward + backward of the text sequence encoders on the CPU in f32, on batches of
//! 32 token sequences of 128 (right-padded, lengths 32 to 128) over a 20,000-token
//! vocabulary: a 2-layer pre-norm Transformer (d_model 64, 4 heads, FFN 256, sinusoidal
//! positions, masked mean, dropout 0.1) and a bidirectional LSTM (embedding 64, hidden 64,
//! final states). Prints the mean ms of the forward pass alone and of forward + backward,
//! over 10 steps after 2 warm-up steps.
//!
//! `cargo run --release -p mtl-model --example sequence_time`

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder, VarMap};
use mtl_data::Rng;
use mtl_model::sequence::{
    padding_mask, Activation, CellKind, Pooling, Positions, RecurrentConfig, RecurrentEncoder, RecurrentPooling,
    TransformerConfig, TransformerEncoder,
};
use mtl_model::InitScheme;

const BATCH: usize = 32;
const LEN: usize = 128;
const VOCAB: usize = 20_000;
const WARM_UP_STEPS: usize = 2;
const TIMED_STEPS: usize = 10;

fn time(label: &str, mut step: impl FnMut() -> Result<()>) -> Result<()> {
    for _ in 0..WARM_UP_STEPS {
        step()?;
    }
    let start = std::time::Instant::now();
    for _ in 0..TIMED_STEPS {
        step()?;
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0 / TIMED_STEPS as f64;
    println!("{label}: {ms:.1} ms (mean of {TIMED_STEPS} after {WARM_UP_STEPS} warm-up)");
    Ok(())
}

fn main() -> Result<()> {
    let device = Device::Cpu;
    let mut rng = Rng::new(1);
    let ids: Vec<u32> = (0..BATCH)
        .flat_map(|_| {
            let length = 32 + rng.below(LEN - 31);
            (0..LEN).map(|t| if t < length { 1 + rng.below(VOCAB - 1) as u32 } else { 0 }).collect::<Vec<_>>()
        })
        .collect();
    let ids = Tensor::from_vec(ids, (BATCH, LEN), &device)?;
    println!("candle threads: {}", candle_core::utils::get_num_threads());

    // Parameters as variables, so that backward computes every gradient; their values are
    // redrawn from mtl-lab's generator below (nothing random from candle's).
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
    let config = TransformerConfig {
        vocab_size: VOCAB,
        d_model: 64,
        n_heads: 4,
        d_feed_forward: 256,
        n_layers: 2,
        max_len: LEN,
        positions: Positions::Sinusoidal,
        pooling: Pooling::MaskedMean,
        activation: Activation::Gelu,
        dropout: 0.1,
    };
    let transformer = TransformerEncoder::new(&config, InitScheme::Framework, vb.pp("transformer"))?;
    let recurrent = RecurrentConfig {
        cell: CellKind::Lstm,
        input_size: 64,
        hidden_size: 64,
        bidirectional: true,
        pooling: RecurrentPooling::FinalStates,
    };
    let lstm = RecurrentEncoder::new(&recurrent, InitScheme::Framework, vb.pp("lstm"))?;
    let embedding = Embedding::new(vb.get((VOCAB, 64), "lstm_embedding")?, 64);
    let mut named: Vec<_> = vars.data().lock().expect("variables").clone().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, var) in named {
        let values: Vec<f32> = (0..var.elem_count()).map(|_| rng.range(-0.2, 0.2) as f32).collect();
        var.set(&Tensor::from_vec(values, var.shape(), &device)?)?;
    }
    let mut dropout_rng = Rng::new(2);
    time("transformer forward only", || transformer.forward(&ids, Some(&mut dropout_rng)).map(drop))?;
    time("transformer forward + backward", || {
        let out = transformer.forward(&ids, Some(&mut dropout_rng))?;
        out.sqr()?.sum_all()?.backward().map(drop)
    })?;

    let keep = padding_mask(&ids, DType::F32)?;
    time("bidirectional LSTM forward only", || lstm.forward(&embedding.forward(&ids)?, &keep).map(drop))?;
    time("bidirectional LSTM forward + backward", || {
        let out = lstm.forward(&embedding.forward(&ids)?, &keep)?;
        out.sqr()?.sum_all()?.backward().map(drop)
    })?;
    Ok(())
}
