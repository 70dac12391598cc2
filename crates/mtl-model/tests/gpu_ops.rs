//! mtl-model's layers on the GPU against the same layers on the CPU: values and the
//! gradients of a weighted sum, on random shapes and values, within a stated tolerance.
//! Built only with the `cuda` feature and run by `scripts/gpu-check.sh` on a machine
//! with an NVIDIA GPU (`cargo test --features cuda -p mtl-model --test gpu_ops`); it
//! fails where no GPU opens.
//!
//! Tolerance: |gpu − cpu| ≤ 1e-4·(1 + |cpu|) in f32. The CPU ops sum in a fixed order;
//! the GPU's conv2d, matmul and reductions sum in another (cuBLAS picks its algorithm), so
//! the two agree to rounding, not bit for bit.

use candle_core::{DType, Device, Result, Tensor, Var};
use mtl_data::Rng;
use mtl_model::layers::upsample_bilinear_fused;
use mtl_model::layers::{
    global_avg_pool2d, max_pool2d, max_pool2x2, max_pool2x2_relu, pixel_nll, upsample_bilinear, BatchNorm2d, Conv1d,
    Conv2d,
};

const TOLERANCE: f64 = 1e-4;

fn gpu() -> Device {
    Device::new_cuda(0).expect("a CUDA GPU (this test runs on the GPU machine: scripts/gpu-check.sh)")
}

fn random(shape: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..shape.iter().product()).map(|_| rng.normal() as f32).collect()
}

/// `shape` of random values as a variable on each device (the same values).
fn pair(shape: &[usize], seed: u64, gpu: &Device) -> Result<(Var, Var)> {
    let values = random(shape, seed);
    let cpu = Var::from_tensor(&Tensor::from_vec(values.clone(), shape, &Device::Cpu)?)?;
    let on_gpu = Var::from_tensor(&Tensor::from_vec(values, shape, gpu)?)?;
    Ok((cpu, on_gpu))
}

/// The output and the gradients of `Σ out·r` (r random) with respect to `vars`, on the CPU.
fn output_and_gradients(out: &Tensor, vars: &[&Var]) -> Result<Vec<Vec<f32>>> {
    let weights = Tensor::from_vec(random(out.dims(), 7), out.dims(), out.device())?;
    let grads = (out * weights)?.sum_all()?.backward()?;
    let mut all = vec![out.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?];
    for var in vars {
        let grad = grads.get(var).expect("a gradient");
        all.push(grad.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?);
    }
    Ok(all)
}

fn assert_agree(what: &str, gpu: &[Vec<f32>], cpu: &[Vec<f32>]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}");
    for (part, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert_eq!(g.len(), c.len(), "{what}, part {part}: length");
        let worst = g
            .iter()
            .zip(c)
            .map(|(&g, &c)| (f64::from(g) - f64::from(c)).abs() / (1.0 + f64::from(c).abs()))
            .fold(0.0, f64::max);
        assert!(worst <= TOLERANCE, "{what}, part {part} (0 = output, then gradients): off by {worst:e}");
        eprintln!("{what}, part {part}: largest relative difference {worst:.1e}");
    }
}

#[test]
fn convolutions_agree_with_the_cpu() -> Result<()> {
    let gpu = gpu();
    // (input, kernel, padding, stride): ResNet's stem, 3×3, strided 3×3 and 1×1, odd sizes.
    let cases: [(&[usize], &[usize], usize, usize); 5] = [
        (&[4, 3, 33, 30], &[8, 3, 7, 7], 3, 2),
        (&[8, 16, 12, 13], &[16, 16, 3, 3], 1, 1),
        (&[4, 16, 24, 32], &[32, 16, 3, 3], 1, 1),
        (&[4, 8, 11, 9], &[16, 8, 3, 3], 1, 2),
        (&[4, 8, 10, 10], &[16, 8, 1, 1], 0, 2),
    ];
    for (i, (input, kernel, padding, stride)) in cases.into_iter().enumerate() {
        let seed = 100 * i as u64;
        let (x, xg) = pair(input, seed, &gpu)?;
        let (w, wg) = pair(kernel, seed + 1, &gpu)?;
        let (b, bg) = pair(&[kernel[0]], seed + 2, &gpu)?;
        let conv = |w: &Var, b: &Var| Conv2d::from_parts(w.as_tensor().clone(), Some(b.as_tensor().clone()), padding);
        let cpu = output_and_gradients(&conv(&w, &b).with_stride(stride).forward(x.as_tensor())?, &[&x, &w, &b])?;
        let on_gpu =
            output_and_gradients(&conv(&wg, &bg).with_stride(stride).forward(xg.as_tensor())?, &[&xg, &wg, &bg])?;
        assert_agree(&format!("conv2d {input:?} * {kernel:?} /{stride}"), &on_gpu, &cpu);
        let relu = |w: &Var, b: &Var, x: &Var| conv(w, b).with_stride(stride).forward_relu(x.as_tensor());
        let cpu = output_and_gradients(&relu(&w, &b, &x)?, &[&x, &w, &b])?;
        let on_gpu = output_and_gradients(&relu(&wg, &bg, &xg)?, &[&xg, &wg, &bg])?;
        assert_agree(&format!("conv2d → relu {input:?} * {kernel:?} /{stride}"), &on_gpu, &cpu);
        if stride == 1 {
            let cpu = output_and_gradients(&conv(&w, &b).forward_pool_relu(x.as_tensor())?, &[&x, &w, &b])?;
            let on_gpu = output_and_gradients(&conv(&wg, &bg).forward_pool_relu(xg.as_tensor())?, &[&xg, &wg, &bg])?;
            assert_agree(&format!("conv2d → pool → relu {input:?}"), &on_gpu, &cpu);
        }
        let up = |w: &Var, b: &Var, x: &Var| conv(w, b).with_stride(stride).forward_upsampled(x.as_tensor(), 2);
        let cpu = output_and_gradients(&up(&w, &b, &x)?, &[&x, &w, &b])?;
        let on_gpu = output_and_gradients(&up(&wg, &bg, &xg)?, &[&xg, &wg, &bg])?;
        assert_agree(&format!("upsample ×2 → conv2d {input:?} * {kernel:?} /{stride}"), &on_gpu, &cpu);
    }
    // Text: batch 8, 16 channels, 40 steps, kernel 5 padded 2.
    let (x, xg) = pair(&[8, 16, 40], 900, &gpu)?;
    let (w, wg) = pair(&[12, 16, 5], 901, &gpu)?;
    let (b, bg) = pair(&[12], 902, &gpu)?;
    let conv = |w: &Var, b: &Var| Conv1d::from_parts(w.as_tensor().clone(), Some(b.as_tensor().clone()), 2);
    let cpu = output_and_gradients(&conv(&w, &b).forward(x.as_tensor())?, &[&x, &w, &b])?;
    let on_gpu = output_and_gradients(&conv(&wg, &bg).forward(xg.as_tensor())?, &[&xg, &wg, &bg])?;
    assert_agree("conv1d", &on_gpu, &cpu);
    let cpu = output_and_gradients(&conv(&w, &b).forward_relu_max_over_time(x.as_tensor())?, &[&x, &w, &b])?;
    let on_gpu = output_and_gradients(&conv(&wg, &bg).forward_relu_max_over_time(xg.as_tensor())?, &[&xg, &wg, &bg])?;
    assert_agree("conv1d → relu → max over time", &on_gpu, &cpu);
    Ok(())
}

#[test]
fn pooling_up_sampling_batch_norm_and_the_pixel_loss_agree_with_the_cpu() -> Result<()> {
    let gpu = gpu();
    let (x, xg) = pair(&[4, 6, 17, 20], 1000, &gpu)?;
    type Op = fn(&Tensor) -> Result<Tensor>;
    let ops: [(&str, Op); 7] = [
        ("max_pool2x2", max_pool2x2),
        ("max_pool2x2_relu", max_pool2x2_relu),
        ("max_pool2d 3/2/1", |t| max_pool2d(t, 3, 2, 1)),
        ("max_pool2d 2/2/0", |t| max_pool2d(t, 2, 2, 0)),
        ("global_avg_pool2d", global_avg_pool2d),
        ("upsample_bilinear ×2", |t| upsample_bilinear(t, 2)),
        ("upsample_bilinear_fused ×2", |t| upsample_bilinear_fused(t, 2)),
    ];
    for (name, op) in ops {
        let cpu = output_and_gradients(&op(x.as_tensor())?, &[&x])?;
        let on_gpu = output_and_gradients(&op(xg.as_tensor())?, &[&xg])?;
        assert_agree(name, &on_gpu, &cpu);
    }
    let (weight, weight_gpu) = pair(&[6], 1001, &gpu)?;
    let (bias, bias_gpu) = pair(&[6], 1002, &gpu)?;
    let norm = BatchNorm2d::from_parts(weight.as_tensor().clone(), bias.as_tensor().clone())?;
    let norm_gpu = BatchNorm2d::from_parts(weight_gpu.as_tensor().clone(), bias_gpu.as_tensor().clone())?;
    for train in [true, false] {
        let cpu = output_and_gradients(&norm.forward_t(x.as_tensor(), train)?, &[&x, &weight, &bias])?;
        let on_gpu = output_and_gradients(&norm_gpu.forward_t(xg.as_tensor(), train)?, &[&xg, &weight_gpu, &bias_gpu])?;
        assert_agree(&format!("batch norm (training: {train})"), &on_gpu, &cpu);
    }
    // The segmentation loss: 5 classes, labels in −1..5 (−1 unlabelled).
    let (scores, scores_gpu) = pair(&[4, 5, 6, 7], 1003, &gpu)?;
    let mut rng = Rng::new(1004);
    let labels: Vec<f32> = (0..4 * 6 * 7).map(|_| rng.below(6) as f32 - 1.0).collect();
    let labels_on = |device: &Device| Tensor::from_vec(labels.clone(), (4, 6, 7), device);
    let cpu = output_and_gradients(&pixel_nll(&scores, &labels_on(&Device::Cpu)?)?, &[&scores])?;
    let on_gpu = output_and_gradients(&pixel_nll(&scores_gpu, &labels_on(&gpu)?)?, &[&scores_gpu])?;
    assert_agree("pixel_nll", &on_gpu, &cpu);
    let (mean, var) = norm.running_stats();
    let (mean_gpu, var_gpu) = norm_gpu.running_stats();
    let stats = |t: &Tensor| t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.to_vec1::<f32>();
    assert_agree(
        "batch norm running statistics",
        &[stats(&mean_gpu)?, stats(&var_gpu)?],
        &[stats(&mean)?, stats(&var)?],
    );
    Ok(())
}
