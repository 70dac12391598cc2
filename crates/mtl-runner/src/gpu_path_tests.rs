//! The code path a GPU takes — every layer composed of candle ops, the optimisers' tensor
//! ops — run whole on the CPU: training the reference workloads for a few steps gives the
//! parameters the CPU's own kernels give, to f32 rounding.

use candle_core::Device;
use mtl_model::layers::compose_on_the_cpu;
use mtl_model::{ResNetDepth, ResNetStem, TrunkSpec};

use crate::bench::{random_task_set, Workload};
use crate::optim::fused::TENSOR_PATH;
use crate::plan::Trial;
use crate::train::{train, TrainObserver};
use mtl_store::MetricPoint;

struct Quiet;

impl TrainObserver for Quiet {
    fn epoch(&mut self, _epoch: u32, _points: &[MetricPoint]) -> Result<(), String> {
        Ok(())
    }
}

/// Every parameter after training `trial` for 3 steps, on the CPU's kernels or the GPU's path.
fn trained(workload: Workload, trial: &Trial, gpu_path: bool) -> Vec<(String, Vec<f32>)> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            compose_on_the_cpu(false);
            TENSOR_PATH.with(|t| t.set(false));
        }
    }
    let _reset = Reset;
    compose_on_the_cpu(gpu_path);
    TENSOR_PATH.with(|t| t.set(gpu_path));
    let task_set = random_task_set(workload, 3 * trial.settings.batch_size);
    let params = train(trial, &task_set, &Device::Cpu, &mut Quiet).expect("training");
    let mut named: Vec<(String, Vec<f32>)> = params
        .named()
        .map(|(name, var)| (name.to_string(), var.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

fn check(workload: Workload, edit: impl Fn(&mut Trial)) {
    let mut trial = workload.plan().expect("a plan").trials.swap_remove(0);
    edit(&mut trial);
    let (kernels, composed) = (trained(workload, &trial, false), trained(workload, &trial, true));
    let start = {
        let mut untrained = trial.clone();
        untrained.settings.epochs = 0;
        trained(workload, &untrained, false)
    };
    assert_eq!(kernels.len(), composed.len());
    let mut worst = 0f64;
    for (((name, a), (_, b)), (_, s)) in kernels.iter().zip(&composed).zip(&start) {
        for (&a, &b) in a.iter().zip(b) {
            worst = worst.max((f64::from(a) - f64::from(b)).abs() / (1.0 + f64::from(a).abs()));
        }
        assert_ne!(a, s, "{}: {name} was trained", workload.name());
    }
    eprintln!("{}: largest relative difference {worst:.1e}", workload.name());
    assert!(worst <= 1e-4, "{}: the GPU's path differs by {worst:e}", workload.name());
}

#[test]
fn the_gpu_code_path_trains_the_reference_networks_as_the_cpu_kernels_do() {
    // LeNet (conv → pool → relu), with PCGrad.
    check(Workload::W2, |trial| trial.settings.batch_size = 16);
    // TextCNN (conv → relu → max over time), without dropout so that both draw nothing.
    check(Workload::W3, |trial| {
        trial.settings.batch_size = 8;
        trial.settings.dropout = 0.0;
    });
    // ResNet-18 (strided convolutions, batch norm, SGD with momentum), narrow. At its own
    // lr (0.1) one step agrees to 4e-7, but batch norm over 4 examples makes three steps
    // chaotic (rounding grows to 2e-2), so the three steps here take a smaller one.
    check(Workload::W5, |trial| {
        trial.settings.batch_size = 4;
        trial.lr = 0.001;
        trial.settings.model =
            TrunkSpec::ResNet { depth: ResNetDepth::R18, width: 0.125, stem: Some(ResNetStem::Cifar) };
    });
}
