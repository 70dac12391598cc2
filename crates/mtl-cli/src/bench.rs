//! `mtl bench`: training throughput of the reference workloads.

use std::process::ExitCode;

use mtl_runner::bench::{BenchOptions, Workload};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The workload: w1 (MultiLeNet, batch 256, static weights), w2 (w1 with PCGrad),
    /// w3 (TextCNN, two tasks on texts of length 256, batch 64), w4 (the MNIST + IMDb model,
    /// batch 64 per task), w5 (ResNet-18 with the CIFAR stem on 3×32×32, a 10- and a 100-class
    /// head, batch 128, SGD with momentum; about 4 s a step on 2 cores), w6 (the encoder–decoder
    /// on 3×96×128 with a segmentation and a depth head, batch 8, Adam). Default: all of them.
    #[arg(long, value_parser = ["w1", "w2", "w3", "w4", "w5", "w6"])]
    workload: Option<String>,
    /// Threads for candle's ops [default: the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    threads: Option<u32>,
    /// Timed repeats (the median is printed).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeats: u32,
    /// Steps per repeat, after 3 warm-up steps.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    steps: u32,
    /// Where the workloads train: cpu, cuda or cuda:N (a build with the cuda feature).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: mtl_runner::device::DeviceSpec,
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.map_or(cores, |t| t as usize);
    // Read by rayon and candle when their thread pools start, which is after this point.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    // A benchmark runs on the threads it is given, whatever the work.
    mtl_runner::train::choose_threads_by_work(false);
    let workloads: Vec<Workload> = match &args.workload {
        Some(name) => vec![Workload::from_name(name).expect("clap checked the name")],
        None => Workload::ALL.to_vec(),
    };
    args.device.open().map_err(|e| crate::BadInput(e.to_string()))?;
    let options = BenchOptions {
        warmup_steps: 3,
        repeats: args.repeats as usize,
        steps_per_repeat: args.steps as usize,
        device: args.device,
    };
    for workload in workloads {
        let result = mtl_runner::bench::run(workload, options)?;
        // One decimal below 100 samples/s (the ResNet workloads), as the PyTorch script prints.
        let decimals = if result.median_samples_per_second < 100.0 { 1 } else { 0 };
        let repeats: Vec<String> = result.repeats.iter().map(|r| format!("{r:.decimals$}")).collect();
        let memory = result.peak_rss_bytes.map_or("?".into(), |b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64));
        outln!(
            "{}: {:.decimals$} samples/s (median of {} × {} steps, {} samples/step, {threads} threads, {}; repeats {}), peak RSS {memory}",
            workload.name(),
            result.median_samples_per_second,
            args.repeats,
            args.steps,
            result.samples_per_step,
            args.device,
            repeats.join(" "),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
