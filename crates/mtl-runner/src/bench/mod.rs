//! Training throughput of the reference workloads: the real training loop
//! ([`crate::train::train`]) on random data of each workload's shapes, timed
//! step by step (evaluation excluded).
//!
//! | workload | model | batch | loss, optimiser |
//! |---|---|---|---|
//! | `w1` | MultiLeNet, two 10-class heads on the same 1×28×28 images | 256 | CE_left + 0.5·CE_right, AdamW lr 5e-4, no weight decay |
//! | `w2` | w1 with PCGrad: one backward per task, projection, one step | 256 | as w1 |
//! | `w3` | TextCNN (Kim 2014): embedding 20,000×128, convolutions of widths 3/4/5 × 100 maps, relu, max over time, dropout 0.5; two 2-class heads on the same texts of length 256 | 64 | CE_1 + CE_2, AdamW lr 1e-3 |
//! | `w4` | the image+text model of `experiments/mnist-imdb.toml` (conv stem, width 64, hidden 128, dropout 0.5; IMDb-sized vocabulary 20,000, length 400) | 64 per task | CE_digits + CE_sentiment, AdamW lr 1e-3 |
//! | `w5` | ResNet-18 (He et al. 2016) with the CIFAR stem on 3×32×32, width 1; a 10-class and a 100-class head on the same images | 128 | CE_10 + CE_100, SGD lr 0.1, momentum 0.9 |
//! | `w6` | the encoder–decoder (`mtl_model::dense`) on 3×96×128 (NYUv2 at a third of its resolution), a 13-class segmentation and a depth head; trained by [`dense`], as dense task kinds do not exist yet | 8 | per-pixel CE + L1, Adam lr 1e-4 |

pub mod dense;

use std::time::Instant;

use mtl_data::{Inputs, Rng, Split, TaskData};
use mtl_store::MetricPoint;

use mtl_data::synthetic::{ReviewsConfig, ShapesConfig};
use mtl_data::SamplingPolicy;
use mtl_model::{ImageStem, InitScheme, ResNetDepth, ResNetStem, Sharing, TrunkSpec};

use crate::data::{DataSource, TaskSet};
use crate::diagnostics::DiagnosticsSettings;
use crate::optim::{OptimizerKind, OptimizerSpec, ScheduleSpec};
use crate::plan::{Plan, SweepAxes, TaskSource, TrainingSettings, WeightSpace};
use crate::train::{train, TrainError, TrainObserver};
use crate::weighting::Method;

/// A reference workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// MultiLeNet, static weights.
    W1,
    /// MultiLeNet, PCGrad.
    W2,
    /// TextCNN, two tasks on the same texts.
    W3,
    /// The MNIST + IMDb model.
    W4,
    /// ResNet-18, CIFAR stem, two heads on the same images.
    W5,
    /// The encoder–decoder with a segmentation and a depth head.
    W6,
}

impl Workload {
    /// Every workload this build runs.
    pub const ALL: [Workload; 6] = [Workload::W1, Workload::W2, Workload::W3, Workload::W4, Workload::W5, Workload::W6];

    /// `w1`, `w2`, `w4`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
            Workload::W3 => "w3",
            Workload::W4 => "w4",
            Workload::W5 => "w5",
            Workload::W6 => "w6",
        }
    }

    /// Parses a name given by [`Workload::name`].
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The plan of one trial that sets the workload's model and optimiser (its tasks' data are
    /// placeholders: the benchmark trains on random inputs of the same shapes); `None` for w6,
    /// which no experiment file can describe yet.
    pub(crate) fn plan(self) -> Option<Plan> {
        let (batch_size, tasks, model, dropout, lambda, lr) = match self {
            Workload::W1 | Workload::W2 => {
                (256, [("left", shapes()), ("right", shapes())], TrunkSpec::LeNet, 0.0, 0.5, 0.0005)
            }
            Workload::W3 => (
                64,
                [("topic", reviews()), ("tone", reviews())],
                TrunkSpec::TextCnn { width: 128, filters: 100 },
                0.5,
                1.0,
                0.001,
            ),
            Workload::W4 => {
                let model = TrunkSpec::Sequence { width: 64, hidden: 128, image_stem: ImageStem::Conv };
                (64, [("digits", shapes()), ("sentiment", reviews())], model, 0.5, 1.0, 0.001)
            }
            Workload::W5 => {
                let model = TrunkSpec::ResNet { depth: ResNetDepth::R18, width: 1.0, stem: Some(ResNetStem::Cifar) };
                (128, [("cifar10", shapes()), ("cifar100", shapes())], model, 0.0, 1.0, 0.1)
            }
            Workload::W6 => return None,
        };
        let optimizer = match self {
            Workload::W5 => OptimizerSpec { momentum: 0.9, ..OptimizerSpec::default_for(OptimizerKind::Sgd) },
            _ => OptimizerSpec { weight_decay: 0.0, ..OptimizerSpec::default_for(OptimizerKind::AdamW) },
        };
        let weighting = if self == Workload::W2 { Method::PcGrad } else { Method::Static };
        let tasks = tasks
            .into_iter()
            .map(|(name, data)| TaskSource { name: name.into(), data, objective: Default::default() })
            .collect();
        let settings = TrainingSettings {
            epochs: 1,
            batch_size,
            optimizer,
            clip_norm: None,
            schedule: ScheduleSpec::Constant,
            early_stopping: None,
            pretrained: None,
            freeze: Vec::new(),
            sampling: SamplingPolicy::EveryTask,
            model,
            dropout,
            augment: Default::default(),
            diagnostics: DiagnosticsSettings { measure_every: 0, ..DiagnosticsSettings::default() },
            rep_grad: false,
            trainer: None,
        };
        let axes = SweepAxes {
            sharings: vec![Sharing::Hard],
            weightings: vec![weighting],
            static_weights: WeightSpace::Lambdas(vec![lambda]),
            lrs: vec![lr],
            inits: vec![InitScheme::Framework],
            seeds: vec![0],
        };
        Some(Plan::new("bench".into(), String::new(), tasks, settings, axes))
    }
}

/// Placeholder data of an image task (the built-in generator's defaults).
fn shapes() -> DataSource {
    DataSource::SyntheticShapes { config: ShapesConfig::default(), seed: 0 }
}

/// Placeholder data of a text task.
fn reviews() -> DataSource {
    DataSource::SyntheticReviews { config: ReviewsConfig::default(), seed: 0 }
}

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Untimed steps first (allocation, thread pools, caches).
    pub warmup_steps: usize,
    /// Timed repeats; the median is reported.
    pub repeats: usize,
    /// Steps per repeat.
    pub steps_per_repeat: usize,
    /// Where the workload trains.
    pub device: crate::device::DeviceSpec,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { warmup_steps: 3, repeats: 5, steps_per_repeat: 10, device: Default::default() }
    }
}

/// What a benchmark measured.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Training examples per step, all tasks together (w1: 256 images feed both heads).
    pub samples_per_step: usize,
    /// Samples per second of each repeat.
    pub repeats: Vec<f64>,
    /// The median of `repeats`.
    pub median_samples_per_second: f64,
    /// Peak resident memory of the process (Linux `VmHWM`), if known.
    pub peak_rss_bytes: Option<u64>,
}

/// Random inputs of the workload's shapes: `n` training examples per task.
pub(crate) fn random_task_set(workload: Workload, n: usize) -> TaskSet {
    let mut rng = Rng::derive(0, "bench");
    let mut images = |n: usize| Inputs::Images {
        pixels: (0..n * 784).map(|_| rng.range(0.0, 1.0) as f32).collect(),
        channels: 1,
        height: 28,
        width: 28,
    };
    let mut rng_labels = Rng::derive(1, "bench");
    let mut split = |inputs: Inputs, classes: usize| {
        let n = inputs.len();
        Split::classified(inputs, (0..n).map(|_| rng_labels.below(classes) as u32).collect())
    };
    let task = |name: &str, classes: usize, train: Split, held_out: Split| TaskData {
        name: name.into(),
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        train,
        val: held_out.clone(),
        test: held_out,
        vocabulary: None,
    };
    match workload {
        Workload::W1 | Workload::W2 => {
            let (train_images, test_images) = (images(n), images(1));
            let left = task("left", 10, split(train_images.clone(), 10), split(test_images.clone(), 10));
            let right = task("right", 10, split(train_images, 10), split(test_images, 10));
            TaskSet::new(vec![left, right], vec![vec![0, 1]])
        }
        Workload::W3 => {
            let mut token_rng = Rng::derive(3, "bench");
            let mut tokens = |n: usize| Inputs::Tokens {
                ids: (0..n * 256).map(|_| token_rng.below(20_000) as u32).collect(),
                seq_len: 256,
                vocab_size: 20_000,
            };
            let (train_tokens, test_tokens) = (tokens(n), tokens(1));
            let topic = task("topic", 2, split(train_tokens.clone(), 2), split(test_tokens.clone(), 2));
            let tone = task("tone", 2, split(train_tokens, 2), split(test_tokens, 2));
            TaskSet::new(vec![topic, tone], vec![vec![0, 1]])
        }
        Workload::W4 => {
            let digits = task("digits", 10, split(images(n), 10), split(images(1), 10));
            let tokens = |n: usize| {
                let mut token_rng = Rng::derive(2, "bench");
                Inputs::Tokens {
                    ids: (0..n * 400).map(|_| token_rng.below(20_000) as u32).collect(),
                    seq_len: 400,
                    vocab_size: 20_000,
                }
            };
            let sentiment = task("sentiment", 2, split(tokens(n), 2), split(tokens(1), 2));
            TaskSet::new(vec![digits, sentiment], vec![vec![0], vec![1]])
        }
        Workload::W5 => {
            let mut pixel_rng = Rng::derive(4, "bench");
            let mut colour = |n: usize| Inputs::Images {
                pixels: (0..n * 3 * 32 * 32).map(|_| pixel_rng.range(0.0, 1.0) as f32).collect(),
                channels: 3,
                height: 32,
                width: 32,
            };
            let (train_images, test_images) = (colour(n), colour(2));
            let ten = task("cifar10", 10, split(train_images.clone(), 10), split(test_images.clone(), 10));
            let hundred = task("cifar100", 100, split(train_images, 100), split(test_images, 100));
            TaskSet::new(vec![ten, hundred], vec![vec![0, 1]])
        }
        Workload::W6 => unreachable!("w6 has no plan: run() hands it to bench::dense"),
    }
}

/// Records when each step ended.
struct StepClock {
    step_ends: Vec<Instant>,
}

impl TrainObserver for StepClock {
    fn started(&mut self, _n_parameters: usize) {
        self.step_ends.push(Instant::now());
    }
    fn step(&mut self, _epoch: u32, _step: usize, _steps_per_epoch: usize) {
        self.step_ends.push(Instant::now());
    }
    fn epoch(&mut self, _epoch: u32, _points: &[MetricPoint]) -> Result<(), String> {
        Ok(())
    }
}

/// Trains the workload for `warmup + repeats × steps` steps (one epoch) and measures throughput.
pub fn run(workload: Workload, options: BenchOptions) -> Result<BenchResult, TrainError> {
    let Some(mut plan) = workload.plan() else {
        return dense::run_w6(options).map_err(TrainError::Model);
    };
    let trial = plan.trials.swap_remove(0);
    let steps = options.warmup_steps + options.repeats * options.steps_per_repeat;
    let batch = trial.settings.batch_size;
    let task_set = random_task_set(workload, batch * steps);
    let mut clock = StepClock { step_ends: Vec::new() };
    let device = options.device.open().map_err(|e| TrainError::Model(candle_core::Error::Msg(e.to_string())))?;
    train(&trial, &task_set, &device, &mut clock)?;
    let samples_per_step = batch * task_set.input_groups.len();
    let durations: Vec<f64> = clock.step_ends.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    let repeats: Vec<f64> = durations[options.warmup_steps..]
        .chunks(options.steps_per_repeat)
        .map(|chunk| (chunk.len() * samples_per_step) as f64 / chunk.iter().sum::<f64>())
        .collect();
    Ok(BenchResult::of(samples_per_step, repeats))
}

impl BenchResult {
    /// The result of timed `repeats` (samples/s each, at least one): their median, and
    /// the process's peak memory so far.
    pub(crate) fn of(samples_per_step: usize, repeats: Vec<f64>) -> BenchResult {
        let mut sorted = repeats.clone();
        sorted.sort_by(f64::total_cmp);
        let median_samples_per_second = sorted[sorted.len() / 2];
        BenchResult { samples_per_step, repeats, median_samples_per_second, peak_rss_bytes: peak_rss_bytes() }
    }
}

/// `VmHWM` of `/proc/self/status`, in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_trains_on_inputs_of_its_shapes_and_reports_throughput() {
        let options = BenchOptions { warmup_steps: 1, repeats: 3, steps_per_repeat: 1, ..BenchOptions::default() };
        for workload in [Workload::W1, Workload::W2] {
            let result = run(workload, options).expect("runs");
            assert_eq!(result.samples_per_step, 256, "{workload:?}: one batch of images feeds both heads");
            assert_eq!(result.repeats.len(), 3);
            assert!(result.repeats.iter().all(|r| r.is_finite() && *r > 0.0));
            assert!(result.repeats.contains(&result.median_samples_per_second));
        }
        for workload in Workload::ALL {
            let Some(plan) = workload.plan() else {
                assert_eq!(workload, Workload::W6, "only w6 trains outside the training loop");
                continue;
            };
            // The experiment file the plan was written as before it was built in code: the same trial.
            let parsed = crate::config::parse_str(&experiment_file(workload), "bench.toml".as_ref()).expect("valid");
            assert_eq!(plan.trials, parsed.trials, "{workload:?}");
            assert_eq!(plan.trials.len(), 1, "{workload:?}");
            let pcgrad = plan.trials[0].weighting == crate::weighting::Method::PcGrad;
            assert_eq!(pcgrad, workload == Workload::W2, "{workload:?}");
        }
        let texts = random_task_set(Workload::W3, 2);
        assert_eq!(texts.input_groups, [vec![0, 1]], "both tasks read the same texts");
        assert_eq!(texts.tasks[0].train.inputs.example_size(), 256);
        let task_set = random_task_set(Workload::W4, 2);
        assert_eq!(task_set.input_groups, [vec![0], vec![1]], "images and text are separate batches");
        assert_eq!(task_set.tasks[1].train.inputs.example_size(), 400);
    }

    /// The workload as an experiment file (how the benchmark was set up before `Plan::new`).
    fn experiment_file(workload: Workload) -> String {
        let (batch, tasks, model, lambda, lr) = match workload {
            Workload::W6 => unreachable!("w6 has no experiment file"),
            Workload::W1 | Workload::W2 => {
                (256, [("left", "shapes"), ("right", "shapes")], "trunk = \"lenet\"", 0.5, 0.0005)
            }
            Workload::W3 => (
                64,
                [("topic", "reviews"), ("tone", "reviews")],
                "trunk = \"textcnn\"\nwidth = 128\nfilters = 100\ndropout = 0.5",
                1.0,
                0.001,
            ),
            Workload::W4 => (
                64,
                [("digits", "shapes"), ("sentiment", "reviews")],
                "trunk = \"sequence\"\nwidth = 64\nhidden = 128\ndropout = 0.5",
                1.0,
                0.001,
            ),
            Workload::W5 => (
                128,
                [("cifar10", "shapes"), ("cifar100", "shapes")],
                "trunk = \"resnet18\"\nwidth = 1.0\nstem = \"cifar\"",
                1.0,
                0.1,
            ),
        };
        let optimizer = match workload {
            Workload::W5 => "[optimizer]\nname = \"sgd\"\nmomentum = 0.9\n",
            _ => "",
        };
        let weighting = if workload == Workload::W2 { "pcgrad" } else { "static" };
        let tasks: String = tasks
            .iter()
            .map(|(name, kind)| format!("[[tasks]]\nname = \"{name}\"\ndata = {{ format = \"synthetic-{kind}\" }}\n"))
            .collect();
        format!(
            "name = \"bench\"\nepochs = 1\nbatch_size = {batch}\n{tasks}[model]\n{model}\n{optimizer}[diagnostics]\nmeasure_every = 0\n\
             [sweep]\nstrategy = [\"hard\"]\nweighting = [\"{weighting}\"]\nlambda = [{lambda:?}]\nlr = [{lr:?}]\n"
        )
    }
}
