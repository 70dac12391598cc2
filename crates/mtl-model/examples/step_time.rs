//! Times one training step (forward + backward + AdamW) of the LeNet
//! MultiTaskNet on MultiMNIST-shaped batches: 2 tasks, 1×28×28, batch 256,
//! loss = CE_left + 0.5·CE_right. Prints the mean ms/step over 20 steps after
//! 3 warm-up steps.
//!
//! `cargo run --release -p mtl-model --example step_time`

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::Optimizer;
use mtl_data::Rng;
use mtl_model::{InitScheme, InputSpec, ModelSpec, MultiTaskNet, Sharing, TaskSpec, TrunkSpec};

const BATCH: usize = 256;
const WARM_UP_STEPS: usize = 3;
const TIMED_STEPS: usize = 20;

fn main() -> Result<()> {
    let input = InputSpec::Image { channels: 1, height: 28, width: 28 };
    let spec = ModelSpec {
        tasks: vec![
            TaskSpec { name: "left".into(), input, n_classes: 10 },
            TaskSpec { name: "right".into(), input, n_classes: 10 },
        ],
        sharing: Sharing::Hard,
        trunk: TrunkSpec::LeNet,
        dropout: 0.0,
        init: InitScheme::Framework,
    };
    let device = Device::Cpu;
    let (net, params) = MultiTaskNet::new(&spec, 0, DType::F32, &device)?;
    let params_adamw = candle_nn::ParamsAdamW { lr: 5e-4, weight_decay: 0.0, ..Default::default() };
    let mut optimizer = candle_nn::AdamW::new(params.vars(), params_adamw)?;

    let mut rng = Rng::new(1);
    let pixels: Vec<f32> = (0..BATCH * 28 * 28).map(|_| rng.range(0.0, 1.0) as f32).collect();
    let images = Tensor::from_vec(pixels, (BATCH, 1, 28, 28), &device)?;
    let labels = |rng: &mut Rng| -> Result<Tensor> {
        let values: Vec<u32> = (0..BATCH).map(|_| (rng.range(0.0, 10.0) as u32).min(9)).collect();
        Tensor::from_vec(values, BATCH, &device)
    };
    let (left_labels, right_labels) = (labels(&mut rng)?, labels(&mut rng)?);

    let mut step = || -> Result<()> {
        let representations = net.representations(&[0, 1], &images)?;
        let left = candle_nn::loss::cross_entropy(&net.head(0, &representations[0])?, &left_labels)?;
        let right = candle_nn::loss::cross_entropy(&net.head(1, &representations[1])?, &right_labels)?;
        optimizer.backward_step(&(left + (right * 0.5)?)?)
    };
    for _ in 0..WARM_UP_STEPS {
        step()?;
    }
    let start = std::time::Instant::now();
    for _ in 0..TIMED_STEPS {
        step()?;
    }
    let ms_per_step = start.elapsed().as_secs_f64() * 1000.0 / TIMED_STEPS as f64;
    println!("lenet, batch {BATCH}: {ms_per_step:.1} ms/step (mean of {TIMED_STEPS} after {WARM_UP_STEPS} warm-up)");
    Ok(())
}
