//! Times one forward + backward of a ResNet-18 CIFAR stage's first layer: conv 3×3,
//! 64 → 64, padding 1, no bias, on [128, 64, 32, 32] f32, then batch norm (training),
//! then relu; with mtl-model's ops and with candle's built-in `conv2d` and
//! `candle_nn::BatchNorm`, and each op alone (and the stage transition's 3×3 / 2
//! convolution, 64 → 128). Prints the median ms of 5 runs after 2
//! warm-up runs, at candle's default thread count.
//!
//! `cargo run --release -p mtl-model --example resnet_stage_time`

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, Var};
use mtl_data::Rng;
use mtl_model::layers::{BatchNorm2d, Conv2d, BATCH_NORM_EPS};

const WARM_UP: usize = 2;
const TIMED: usize = 5;

fn random(shape: &[usize], scale: f64, rng: &mut Rng) -> Result<Tensor> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (scale * rng.normal()) as f32).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// Median ms of one forward + backward (`forward` gives the output; its sum is the loss).
fn time(name: &str, forward: impl Fn() -> Result<Tensor>) -> Result<()> {
    let mut ms = Vec::new();
    for run in 0..WARM_UP + TIMED {
        let start = std::time::Instant::now();
        let grads = forward()?.sum_all()?.backward()?;
        drop(grads);
        if run >= WARM_UP {
            ms.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(f64::total_cmp);
    println!("| {name:<44} | {:>8.1} |", ms[TIMED / 2]);
    Ok(())
}

/// The batch norm's training pass as candle tensor ops (the composed path of
/// `layers::batchnorm`, which runs on devices other than the CPU).
fn composed_batch_norm(xs: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let per_channel = |t: &Tensor| t.reshape((1, xs.dim(1)?, 1, 1));
    let mean = xs.mean_keepdim((0, 2, 3))?;
    let centered = xs.broadcast_sub(&mean)?;
    let inv_std = (centered.sqr()?.mean_keepdim((0, 2, 3))? + BATCH_NORM_EPS)?.sqrt()?.recip()?;
    centered.broadcast_mul(&(inv_std * per_channel(weight)?)?)?.broadcast_add(&per_channel(bias)?)
}

fn main() -> Result<()> {
    let mut rng = Rng::new(1);
    let input = Var::from_tensor(&random(&[128, 64, 32, 32], 1.0, &mut rng)?)?;
    let kernel = Var::from_tensor(&random(&[64, 64, 3, 3], (2.0f64 / 576.0).sqrt(), &mut rng)?)?;
    let (weight, bias) = (Var::ones(64, DType::F32, &Device::Cpu)?, Var::zeros(64, DType::F32, &Device::Cpu)?);
    let ours = Conv2d::from_parts(kernel.as_tensor().clone(), None, 1);
    let norm = BatchNorm2d::from_parts(weight.as_tensor().clone(), bias.as_tensor().clone())?;
    let config = candle_nn::Conv2dConfig { padding: 1, ..Default::default() };
    let candle_conv = candle_nn::Conv2d::new(kernel.as_tensor().clone(), None, config);
    let zeros = Tensor::zeros(64, DType::F32, &Device::Cpu)?;
    let ones = Tensor::ones(64, DType::F32, &Device::Cpu)?;
    let candle_norm = candle_nn::BatchNorm::new(
        64,
        zeros,
        ones,
        weight.as_tensor().clone(),
        bias.as_tensor().clone(),
        BATCH_NORM_EPS,
    )?;
    let (w, b) = (weight.as_tensor(), bias.as_tensor());
    let wide_kernel = random(&[128, 64, 3, 3], (2.0f64 / 576.0).sqrt(), &mut rng)?;
    let ours_strided = Conv2d::from_parts(wide_kernel.clone(), None, 1).with_stride(2);
    let config = candle_nn::Conv2dConfig { padding: 1, stride: 2, ..Default::default() };
    let candle_strided = candle_nn::Conv2d::new(wide_kernel, None, config);

    println!("threads: {}", candle_core::utils::get_num_threads());
    println!("| forward + backward, [128, 64, 32, 32] f32       |   ms     |");
    println!("|----------------------------------------------|----------|");
    time("conv3x3 → BatchNorm2d → relu (mtl-model)", || norm.forward_t(&ours.forward(&input)?, true)?.relu())?;
    time("conv3x3 → composed batch norm → relu", || composed_batch_norm(&ours.forward(&input)?, w, b)?.relu())?;
    time("candle conv2d → candle_nn::BatchNorm → relu", || {
        candle_norm.forward_t(&candle_conv.forward(&input)?, true)?.relu()
    })?;
    time("conv3x3 alone (mtl-model)", || ours.forward(&input))?;
    time("conv3x3 alone (candle conv2d)", || candle_conv.forward(&input))?;
    time("conv3x3/2 64→128 (mtl-model)", || ours_strided.forward(&input))?;
    time("conv3x3/2 64→128 (candle conv2d)", || candle_strided.forward(&input))?;
    time("BatchNorm2d alone (fused CPU op)", || norm.forward_t(&input, true))?;
    time("batch norm alone (composed tensor ops)", || composed_batch_norm(&input, w, b))?;
    time("batch norm alone (candle_nn::BatchNorm)", || candle_norm.forward_t(&input, true))?;
    // What every row spends on the loss (sum, its gradient of ones) and one element-wise op.
    time("harness: x·2 → sum, and its backward", || input.affine(2.0, 0.0))?;
    Ok(())
}
