//! Times the `w6` workload ([`mtl_runner::bench::dense::run_w6`]) at candle's default
//! thread count, as `mtl bench --workload w6` does but with the warm-up, repeats and
//! steps given; compare with `python benches/torch_reference.py --workload w6`.
//!
//! `cargo run --release -p mtl-runner --example w6 [warmup repeats steps]`
//!
//! `... --example w6 parts` instead prints the median ms of each part of a step (5 runs
//! after 2 warm-up runs): the shared encoder–decoder forward, the heads, the losses, the
//! backward pass, the Adam step, and the decoder's five bilinear up-samplings alone
//! (forward and backward, each plus a sum), composed of tensor ops and fused.
//!
//! `... --example w6 convs` prints, for each convolution shape of the step (bias-free,
//! batch 8, input gradient kept), the median ms of its forward and of the backward of its
//! sum (9 runs), and the totals weighted by how often the step has each shape; compare with
//! `python benches/torch_reference.py --workload w6 --convs`. `... w6 convs 32→32` times
//! only the shapes whose label contains the text given.
//!
//! `... --example w6 abstep 21 17` times whole steps (forward, losses, backward, Adam) with
//! the least work handed to other threads (`layers::set_min_parallel_cost`) alternating
//! between 1 << 21 and 1 << 17 step by step, 15 steps each after 4 warm-up steps, and
//! prints each side's median: alternating in one process compares them at the same
//! speed of a machine whose speed drifts between runs.

use std::time::Instant;

// The allocator and option of the `mtl` binary (`crates/mtl-cli/src/main.rs`), so that these
// timings are those `mtl bench --workload w6` would see: glibc's malloc returns large freed
// buffers to the kernel, and their pages fault again on every step.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, as in `mtl`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

use candle_core::{DType, Device, Result, Tensor, Var};
use mtl_data::Rng;
use mtl_model::dense::EncoderDecoder;
use mtl_model::layers::{upsample_bilinear, upsample_bilinear_fused};
use mtl_runner::bench::dense::{l1_loss, pixel_cross_entropy, run_w6, w6_spec, W6_BATCH, W6_CLASSES, W6_SIZE};
use mtl_runner::bench::BenchOptions;
use mtl_runner::optim::{Optimizer, OptimizerKind, OptimizerSpec};

fn main() -> Result<()> {
    // SAFETY: sets one of mimalloc's global options, first thing in main (as `mtl` does).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("parts") => return time_parts(),
        Some("convs") => return time_convs(args.get(1).map(String::as_str)),
        Some("abstep") => {
            let shift =
                |i: usize| args.get(i).and_then(|a| a.parse::<u32>().ok()).expect("abstep A B: two powers of 2");
            return alternate_thresholds(shift(1), shift(2));
        }
        _ => {}
    }
    let numbers: Vec<usize> = args.iter().map(|a| a.parse().expect("a number")).collect();
    let mut options = BenchOptions::default();
    if let [warmup_steps, repeats, steps_per_repeat] = numbers[..] {
        options = BenchOptions { warmup_steps, repeats, steps_per_repeat, ..options };
    }
    let result = run_w6(options)?;
    let shown: Vec<String> = result.repeats.iter().map(|r| format!("{r:.1}")).collect();
    let peak = result.peak_rss_bytes.map_or("unknown".into(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64));
    println!(
        "w6: {:.2} samples/s (median of {} × {} steps, {} samples/step; repeats {}), peak RSS {peak}",
        result.median_samples_per_second,
        options.repeats,
        options.steps_per_repeat,
        result.samples_per_step,
        shown.join(" ")
    );
    Ok(())
}

fn random(shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
    let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.range(0.0, 1.0) as f32).collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// Median ms of 5 runs of `part` after 2 warm-up runs.
fn median_ms(mut part: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut ms = Vec::new();
    for run in 0..7 {
        let started = Instant::now();
        part()?;
        if run >= 2 {
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[2])
}

/// w6's network, its Adam optimiser, and a batch: images, depths and classes.
fn w6_setup() -> Result<(EncoderDecoder, Optimizer, [Tensor; 3])> {
    let (net, params) = EncoderDecoder::new(&w6_spec(), 0, DType::F32, &Device::Cpu)?;
    let optimizer =
        Optimizer::new(params.vars(), &OptimizerSpec { lr: 1e-4, ..OptimizerSpec::default_for(OptimizerKind::Adam) })?;
    let mut rng = Rng::new(0);
    let (height, width) = W6_SIZE;
    let images = random(&[W6_BATCH, 3, height, width], &mut rng)?;
    let depth = random(&[W6_BATCH, 1, height, width], &mut rng)?;
    let classes: Vec<f32> = (0..W6_BATCH * height * width).map(|_| rng.below(W6_CLASSES) as f32).collect();
    let classes = Tensor::from_vec(classes, (W6_BATCH, height, width), &Device::Cpu)?;
    Ok((net, optimizer, [images, depth, classes]))
}

/// Whole steps alternating the parallel threshold between `1 << a` and `1 << b`.
fn alternate_thresholds(a: u32, b: u32) -> Result<()> {
    let (net, mut optimizer, [images, depth, classes]) = w6_setup()?;
    let mut ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for step in 0..34 {
        let side = step % 2;
        mtl_model::layers::set_min_parallel_cost(1 << [a, b][side]);
        let started = Instant::now();
        let features = net.features_t(&images, true)?;
        let outputs = [net.head(0, &features)?, net.head(1, &features)?];
        let loss = (pixel_cross_entropy(&outputs[0], &classes)? + l1_loss(&outputs[1], &depth)?)?;
        optimizer.backward_step(&loss)?;
        if step >= 4 {
            ms[side].push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    mtl_model::layers::set_min_parallel_cost(mtl_model::layers::MIN_PARALLEL_COST);
    let [first, second] = ms.map(|mut side| {
        side.sort_by(f64::total_cmp);
        side[side.len() / 2]
    });
    println!(
        "1 << {a}: {first:.1} ms a step, 1 << {b}: {second:.1} ms (median of 15 each; ratio {:.3})",
        second / first
    );
    Ok(())
}

fn time_parts() -> Result<()> {
    let (net, mut optimizer, [images, depth, classes]) = w6_setup()?;
    let mut rng = Rng::new(1);
    let (height, width) = W6_SIZE;
    let features = net.features_t(&images, true)?;
    let outputs = [net.head(0, &features)?, net.head(1, &features)?];
    let loss = (pixel_cross_entropy(&outputs[0], &classes)? + l1_loss(&outputs[1], &depth)?)?;
    let grads = loss.backward()?;
    let rows = [
        ("encoder-decoder forward", median_ms(|| net.features_t(&images, true).map(drop))?),
        ("heads forward", median_ms(|| (0..2).try_for_each(|h| net.head(h, &features).map(drop)))?),
        (
            "losses forward",
            median_ms(|| (pixel_cross_entropy(&outputs[0], &classes)? + l1_loss(&outputs[1], &depth)?).map(drop))?,
        ),
        ("backward", median_ms(|| loss.backward().map(drop))?),
        ("adam step", median_ms(|| optimizer.step(&grads))?),
    ];
    for (part, ms) in rows {
        println!("| {part:<40} | {ms:>8.1} |");
    }
    // The decoder's up-sampling inputs: 512 → 256 → 128 → 64 → 64 channels, strides 32 → 2.
    let (mut composed, mut fused) = (0.0, 0.0);
    for (channels, stride) in [(512, 32), (256, 16), (128, 8), (64, 4), (64, 2)] {
        let xs = Var::from_tensor(&random(&[W6_BATCH, channels, height / stride, width / stride], &mut rng)?)?;
        composed += median_ms(|| upsample_bilinear(&xs, 2)?.sum_all()?.backward().map(drop))?;
        fused += median_ms(|| upsample_bilinear_fused(&xs, 2)?.sum_all()?.backward().map(drop))?;
    }
    println!("| {:<40} | {composed:>8.1} |", "5 upsamplings ×2 fwd+bwd, composed ops");
    println!("| {:<40} | {fused:>8.1} |", "5 upsamplings ×2 fwd+bwd, fused op");
    // Convolutions of the step at their shapes (bias-free, input gradient kept), batch 8.
    // (name, in, out, kernel, stride, input height) with width = 4/3 height.
    let convs = [
        ("stem 7×7/2 3→64 @96", 3, 64, 7, 2, 96),
        ("stage1 3×3 64→64 @24", 64, 64, 3, 1, 24),
        ("stage4 3×3 512→512 @3", 512, 512, 3, 1, 3),
        ("up4 3×3 128→64 @48", 128, 64, 3, 1, 48),
        ("up5 3×3 64→32 @96", 64, 32, 3, 1, 96),
        ("head 3×3 32→32 @96", 32, 32, 3, 1, 96),
    ];
    for (name, inputs, outputs, kernel, stride, size) in convs {
        let xs = Var::from_tensor(&random(&[W6_BATCH, inputs, size, size * 4 / 3], &mut rng)?)?;
        let weight = Var::from_tensor(&random(&[outputs, inputs, kernel, kernel], &mut rng)?)?;
        let conv =
            mtl_model::layers::Conv2d::from_parts(weight.as_tensor().clone(), None, kernel / 2).with_stride(stride);
        let ms = median_ms(|| conv.forward(&xs)?.sum_all()?.backward().map(drop))?;
        println!("| {:<40} | {ms:>8.1} |", format!("conv {name} fwd+bwd"));
    }
    Ok(())
}

/// The step's convolutions: (count, in, out, kernel, stride, input height, input width), as
/// `W6_CONVOLUTIONS` in `benches/torch_reference.py`.
const CONVOLUTIONS: [(usize, usize, usize, usize, usize, usize, usize); 19] = [
    (1, 3, 64, 7, 2, 96, 128),
    (4, 64, 64, 3, 1, 24, 32),
    (1, 64, 128, 3, 2, 24, 32),
    (1, 64, 128, 1, 2, 24, 32),
    (3, 128, 128, 3, 1, 12, 16),
    (1, 128, 256, 3, 2, 12, 16),
    (1, 128, 256, 1, 2, 12, 16),
    (3, 256, 256, 3, 1, 6, 8),
    (1, 256, 512, 3, 2, 6, 8),
    (1, 256, 512, 1, 2, 6, 8),
    (3, 512, 512, 3, 1, 3, 4),
    (1, 512, 256, 3, 1, 6, 8),
    (1, 256, 128, 3, 1, 12, 16),
    (1, 128, 64, 3, 1, 24, 32),
    (1, 64, 64, 3, 1, 48, 64),
    (1, 64, 32, 3, 1, 96, 128),
    (2, 32, 32, 3, 1, 96, 128),
    (1, 32, 13, 1, 1, 96, 128),
    (1, 32, 1, 1, 1, 96, 128),
];

fn time_convs(filter: Option<&str>) -> Result<()> {
    let mut rng = Rng::new(0);
    let (mut forward_total, mut backward_total) = (0.0, 0.0);
    for (count, inputs, outputs, kernel, stride, height, width) in CONVOLUTIONS {
        let shape = format!("{inputs:>3}→{outputs:<3} {kernel}×{kernel}/{stride} @{height}×{width}");
        if filter.is_some_and(|filter| !shape.contains(filter)) {
            continue;
        }
        let xs = Var::from_tensor(&random(&[W6_BATCH, inputs, height, width], &mut rng)?)?;
        let weight = random(&[outputs, inputs, kernel, kernel], &mut rng)?;
        let conv = mtl_model::layers::Conv2d::from_parts(weight, None, kernel / 2).with_stride(stride);
        let (mut forward, mut backward) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            let started = Instant::now();
            let ys = conv.forward(&xs)?;
            forward.push(started.elapsed().as_secs_f64() * 1000.0);
            let sum = ys.sum_all()?;
            let started = Instant::now();
            sum.backward()?;
            backward.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        forward.sort_by(f64::total_cmp);
        backward.sort_by(f64::total_cmp);
        let (f, b) = (forward[4], backward[4]);
        (forward_total, backward_total) = (forward_total + count as f64 * f, backward_total + count as f64 * b);
        println!("{count} × {shape}: forward {f:6.1} backward {b:6.1}");
    }
    println!("step total (each shape × its count): forward {forward_total:.1} ms, backward {backward_total:.1} ms");
    Ok(())
}
