//! The optimisers, clipping and schedules against `benches/reference/optim_reference.py`
//! (numpy, float64, cross-checked there with torch 2.15.0), and hand cases.

use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor, Var};

use super::*;

// Printed by benches/reference/optim_reference.py: θ after each of five steps from THETA0
// on GRADS (below), for the settings named in `reference_optimizers`.
const THETA0: [f32; 6] = [0.5, -1.0, 2.0, 0.25, 0.0, -3.0];
const GRADS: [[f32; 6]; 5] = [
    [0.1, -0.2, 0.3, 0.0, 1.0, -0.5],
    [0.2, 0.1, -0.4, 0.5, -1.0, 0.25],
    [-0.3, 0.0, 0.5, 0.1, 0.5, 0.0],
    [0.05, -0.6, 0.2, -0.2, 0.0, 1.5],
    [0.4, 0.3, -0.1, 0.25, -0.5, -0.75],
];
const SGD_PLAIN: [[f64; 6]; 5] = [
    [0.49, -0.98, 1.97, 0.25, -0.1, -2.95],
    [0.47, -0.99, 2.01, 0.2, 0.0, -2.975],
    [0.5, -0.99, 1.9599999999999997, 0.19, -0.05, -2.975],
    [0.495, -0.9299999999999999, 1.9399999999999997, 0.21000000000000002, -0.05, -3.125],
    [0.45499999999999996, -0.96, 1.9499999999999997, 0.18500000000000003, 0.0, -3.05],
];
const SGD_MOMENTUM: [[f64; 6]; 5] = [
    [0.4895, -0.979, 1.968, 0.24975, -0.1, -2.947],
    [0.46160945, -0.9682189, 1.9734288, 0.204300225, -0.09991000000000001, -2.9191477],
    [0.463092506495, -0.95764451299, 1.93153863408, 0.1542115572975, -0.14473908100000002, -2.89145339707],
    [
        0.4595104740846545,
        -0.893265684619309,
        1.874099099981328,
        0.12699296596368223,
        -0.18495498872710003,
        -2.998926216375637,
    ],
    [
        0.41987308548866736,
        -0.8615207999695297,
        1.8297168301025402,
        0.07988194009387893,
        -0.17598284619163565,
        -3.025452720155972,
    ],
];
const SGD_NESTEROV: [[f64; 6]; 5] = [
    [0.48005, -0.9601, 1.9392, 0.249525, -0.19, -2.8993],
    [0.43263290499999996, -0.96026581, 1.98559552, 0.15384840249999998, -0.080639, -2.89836133],
    [0.4645675619805, -0.950454623961, 1.894324136512, 0.09367172528524997, -0.16723188590000002, -2.8721190104730003],
    [
        0.45631544450968703,
        -0.826682931969374,
        1.8173677114814273,
        0.086473203076183,
        -0.19992031772679003,
        -3.1306524219758014,
    ],
    [
        0.3769396502471694,
        -0.8255731207677338,
        1.7833588220249579,
        0.0144145385549347,
        -0.13411056646453012,
        -3.0824691598359943,
    ],
];
const SGD_MOMENTUM_LR_CHANGES: [[f64; 6]; 5] = [
    [0.49, -0.98, 1.97, 0.25, -0.1, -2.95],
    [0.46099999999999997, -0.972, 1.9829999999999999, 0.2, -0.09000000000000001, -2.93],
    [0.46295, -0.9683999999999999, 1.9638499999999999, 0.17250000000000001, -0.11050000000000001, -2.9210000000000003],
    [0.462205, -0.9351599999999999, 1.936615, 0.15775, -0.12895, -2.9879000000000002],
    [0.45186974999999996, -0.9277019999999999, 1.92685925, 0.1448625, -0.12475250000000002, -2.9992550000000002],
];
const ADAM: [[f64; 6]; 5] = [
    [0.4900000006666666, -0.9900000003333334, 1.9900000002, 0.2400000039999984, -0.009999999900000002, -2.990000000125],
    [
        0.48016870171550835,
        -0.983324272202689,
        1.9865601455181707,
        0.23224792053543253,
        -0.009468686813813408,
        -2.9828568057565317,
    ],
    [
        0.47861359730619996,
        -0.9764295851305482,
        1.9798770677832858,
        0.22495299145313313,
        -0.011207664096624262,
        -2.9754524167021787,
    ],
    [
        0.4759453161874833,
        -0.9688081792638905,
        1.9724964711402235,
        0.22109768966358095,
        -0.012627781960110778,
        -2.9766782377380734,
    ],
    [
        0.47036648810136633,
        -0.9639815159610328,
        1.9657435479728367,
        0.21579870092446193,
        -0.012034919452219465,
        -2.974362755967678,
    ],
];
const ADAMW: [[f64; 6]; 5] = [
    [0.4895000009999999, -0.9890000004999999, 1.9880000003333334, 0.24975, -0.009999999900000002, -2.9870000001999997],
    [
        0.4793586813511253,
        -0.9853476302713676,
        1.9879471043696357,
        0.24205888197475123,
        -0.00946368411588948,
        -2.9813496298705844,
    ],
    [
        0.4795453127947439,
        -0.9823034897647808,
        1.9824978864105531,
        0.2349230172196603,
        -0.011201475753511879,
        -2.976309487268676,
    ],
    [
        0.4788362288650599,
        -0.9752866315183404,
        1.9762044638950127,
        0.23155551018508172,
        -0.01262151951758883,
        -2.978191321232468,
    ],
    [
        0.47425487673537026,
        -0.9720087240683597,
        1.9713543669459879,
        0.2266482600095729,
        -0.012028777117679636,
        -2.976615450098391,
    ],
];
const STEP: [f64; 12] = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125, 0.0125];
const MULTI_STEP: [f64; 12] = [
    0.1,
    0.1,
    0.010000000000000002,
    0.010000000000000002,
    0.010000000000000002,
    0.0010000000000000002,
    0.0010000000000000002,
    0.0010000000000000002,
    0.0010000000000000002,
    0.00010000000000000003,
    0.00010000000000000003,
    0.00010000000000000003,
];
const COSINE: [f64; 12] = [
    0.1,
    0.09757729755661011,
    0.0905463412215599,
    0.07959536998847742,
    0.0657963412215599,
    0.0505,
    0.03520365877844011,
    0.021404630011522586,
    0.010453658778440109,
    0.0034227024433899004,
    0.001,
    0.003422702443389889,
];
const COSINE_WARMUP: [f64; 12] = [
    0.025,
    0.05,
    0.07500000000000001,
    0.1,
    0.09619397662556434,
    0.08535533905932738,
    0.0691341716182545,
    0.05,
    0.030865828381745515,
    0.014644660940672627,
    0.0038060233744356634,
    0.0,
];
const PLATEAU_MIN: [f64; 12] = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02, 0.02];
const PLATEAU_MAX: [f64; 12] = [
    0.1,
    0.010000000000000002,
    0.0010000000000000002,
    0.00010000000000000003,
    1.0000000000000004e-05,
    1.0000000000000004e-06,
    1.0000000000000005e-07,
    1.0000000000000005e-08,
    1.0000000000000005e-08,
    1.0000000000000005e-08,
    1.0000000000000005e-08,
    1.0000000000000005e-08,
];
const CLIPPED: [f64; 3] = [1.4999998846153937, -1.9999998461538582, 5.999999538461575];

fn spec(name: &str, lr: f64, weight_decay: f64) -> OptimizerSpec {
    OptimizerSpec { lr, weight_decay, ..OptimizerSpec::from_name(name).expect(name) }
}

fn sgd(momentum: f64, dampening: f64, nesterov: bool, weight_decay: f64) -> OptimizerSpec {
    OptimizerSpec { momentum, dampening, nesterov, ..spec("sgd", 0.1, weight_decay) }
}

fn gradient_store(var: &Var, grad: &[f32]) -> Result<GradStore> {
    let mut grads = GradStore::default();
    grads.insert(var, Tensor::from_slice(grad, var.shape(), var.device())?);
    Ok(grads)
}

/// Five steps of `spec` on the reference problem (with the step's rate from `lrs` when
/// given) match `expected` within f32 rounding.
fn check(label: &str, spec: &OptimizerSpec, lrs: Option<[f64; 5]>, expected: &[[f64; 6]; 5]) -> Result<()> {
    let var = Var::from_tensor(&Tensor::from_slice(&THETA0, (2, 3), &Device::Cpu)?)?;
    let mut optimizer = Optimizer::new(vec![var.clone()], spec)?;
    for (step, grad) in GRADS.iter().enumerate() {
        if let Some(lrs) = lrs {
            optimizer.set_learning_rate(lrs[step]);
            assert_eq!(optimizer.learning_rate(), lrs[step]);
        }
        optimizer.step(&gradient_store(&var, grad)?)?;
        let got = var.flatten_all()?.to_vec1::<f32>()?;
        for (g, e) in got.iter().zip(&expected[step]) {
            assert!(
                (f64::from(*g) - e).abs() <= 2e-6 * (1.0 + e.abs()),
                "{label} step {}: {got:?} vs {:?}",
                step + 1,
                expected[step]
            );
        }
    }
    assert_eq!(optimizer.non_finite_gradient(), None);
    Ok(())
}

/// Runs `test` with the variables updated on the host, then with the tensor ops a GPU's
/// variables take (`fused::TENSOR_PATH`).
fn on_both_paths(test: impl Fn() -> Result<()>) -> Result<()> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            fused::TENSOR_PATH.with(|t| t.set(false));
        }
    }
    let _reset = Reset;
    for tensor_path in [false, true] {
        fused::TENSOR_PATH.with(|t| t.set(tensor_path));
        test().map_err(|e| candle_core::Error::Msg(format!("tensor path {tensor_path}: {e}")))?;
    }
    Ok(())
}

#[test]
fn reference_optimizers() -> Result<()> {
    on_both_paths(reference_optimizers_on_one_path)
}

fn reference_optimizers_on_one_path() -> Result<()> {
    check("sgd plain", &sgd(0.0, 0.0, false, 0.0), None, &SGD_PLAIN)?;
    check("sgd momentum", &sgd(0.9, 0.1, false, 0.01), None, &SGD_MOMENTUM)?;
    check("sgd nesterov", &sgd(0.9, 0.0, true, 0.01), None, &SGD_NESTEROV)?;
    check("sgd lr changes", &sgd(0.9, 0.0, false, 0.0), Some([0.1, 0.1, 0.05, 0.05, 0.025]), &SGD_MOMENTUM_LR_CHANGES)?;
    check("adam", &spec("adam", 0.01, 0.1), None, &ADAM)?;
    check("adamw", &spec("adamw", 0.01, 0.1), None, &ADAMW)
}

#[test]
fn each_optimizer_reports_a_non_finite_gradient_and_leaves_its_variable() -> Result<()> {
    on_both_paths(non_finite_on_one_path)
}

fn non_finite_on_one_path() -> Result<()> {
    for spec in [sgd(0.9, 0.0, true, 0.01), spec("adam", 0.01, 0.1), spec("adamw", 0.01, 0.1)] {
        let first = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu)?)?;
        let second = Var::from_tensor(&Tensor::new(&[3f32, 4.0], &Device::Cpu)?)?;
        let mut optimizer = Optimizer::new(vec![first.clone(), second.clone()], &spec)?;
        let mut grads = gradient_store(&first, &[1.0, 1.0])?;
        grads.insert(&second, Tensor::new(&[1f32, f32::NAN], &Device::Cpu)?);
        optimizer.step(&grads)?;
        let found = optimizer.non_finite_gradient().map(|(i, g)| (i, g.is_nan()));
        assert_eq!(found, Some((1, true)), "{}", spec.name());
        assert_ne!(first.to_vec1::<f32>()?, [1.0, 2.0], "{}: the finite one was applied", spec.name());
        assert_eq!(second.to_vec1::<f32>()?, [3.0, 4.0], "{}: the bad one was not", spec.name());
    }
    Ok(())
}

#[test]
fn a_non_finite_value_deep_in_a_large_gradient_is_found() -> Result<()> {
    // Several of the update's units of parallel work; the infinity in a later one.
    let n = 5 * (1 << 15) + 7;
    let start: Vec<f32> = (0..n).map(|i| i as f32).collect();
    for (bad_at, one_thread) in [(3 * (1 << 15) + 11, false), (n - 1, false), (3 * (1 << 15) + 11, true)] {
        mtl_model::layers::run_on_one_thread(one_thread);
        let var = Var::from_vec(start.clone(), n, &Device::Cpu)?;
        let mut optimizer = Optimizer::new(vec![var.clone()], &spec("adam", 0.01, 0.0))?;
        let mut grad = vec![0.5f32; n];
        grad[bad_at] = f32::NEG_INFINITY;
        optimizer.step(&gradient_store(&var, &grad)?)?;
        mtl_model::layers::run_on_one_thread(false);
        assert_eq!(optimizer.non_finite_gradient(), Some((0, f32::NEG_INFINITY)), "at {bad_at}");
        assert_eq!(var.to_vec1::<f32>()?, start, "the variable is left as it was");
    }
    Ok(())
}

#[test]
fn a_variable_without_a_gradient_keeps_its_value_and_state() -> Result<()> {
    on_both_paths(without_a_gradient_on_one_path)
}

fn without_a_gradient_on_one_path() -> Result<()> {
    // SGD's momentum buffer starts at a variable's first gradient, however late (PyTorch).
    let (idle, busy) = (Var::new(&[1f32], &Device::Cpu)?, Var::new(&[1f32], &Device::Cpu)?);
    let mut optimizer = Optimizer::new(vec![idle.clone(), busy.clone()], &sgd(0.5, 0.5, false, 0.0))?;
    optimizer.step(&gradient_store(&busy, &[1.0])?)?;
    assert_eq!((idle.to_vec1::<f32>()?, busy.to_vec1::<f32>()?), (vec![1.0], vec![0.9]));
    optimizer.step(&gradient_store(&idle, &[1.0])?)?;
    assert_eq!(idle.to_vec1::<f32>()?, [0.9], "b = g at its first step, not μ·0 + (1−τ)·g");
    Ok(())
}

#[test]
fn the_tensor_ops_of_a_gpu_give_the_host_updates_bit_for_bit() -> Result<()> {
    // The same f32 operations in the same order, element by element.
    for spec in [sgd(0.0, 0.0, false, 0.01), sgd(0.9, 0.1, false, 0.01), sgd(0.9, 0.0, true, 0.01)]
        .into_iter()
        .chain([spec("adam", 0.01, 0.1), spec("adamw", 0.01, 0.1)])
    {
        let mut finals = Vec::new();
        for tensor_path in [false, true] {
            fused::TENSOR_PATH.with(|t| t.set(tensor_path));
            let var = Var::from_tensor(&Tensor::from_slice(&THETA0, (2, 3), &Device::Cpu)?)?;
            let mut optimizer = Optimizer::new(vec![var.clone()], &spec);
            fused::TENSOR_PATH.with(|t| t.set(false));
            let optimizer = optimizer.as_mut().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            for grad in GRADS {
                optimizer.step(&gradient_store(&var, &grad)?)?;
            }
            finals.push(var.flatten_all()?.to_vec1::<f32>()?.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        }
        assert_eq!(finals[0], finals[1], "{}", spec.name());
    }
    Ok(())
}

#[test]
fn results_do_not_depend_on_the_thread_count() -> Result<()> {
    // Large enough that the update runs on candle's pool unless kept to one thread.
    let n = (mtl_model::layers::MIN_PARALLEL_COST / 4) + 12_345;
    let start: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    let run = |spec: &OptimizerSpec, one_thread: bool| -> Result<Vec<f32>> {
        mtl_model::layers::run_on_one_thread(one_thread);
        let var = Var::from_vec(start.clone(), n, &Device::Cpu)?;
        let mut optimizer = Optimizer::new(vec![var.clone()], spec)?;
        for step in 0..3 {
            let grad: Vec<f32> = (0..n).map(|i| ((i * 7 + step) as f32 * 0.011).cos()).collect();
            optimizer.step(&gradient_store(&var, &grad)?)?;
        }
        mtl_model::layers::run_on_one_thread(false);
        var.to_vec1::<f32>()
    };
    for spec in [sgd(0.9, 0.0, true, 0.01), spec("adam", 0.01, 0.1), spec("adamw", 0.01, 0.1)] {
        let (one, pooled) = (run(&spec, true)?, run(&spec, false)?);
        assert!(one.iter().zip(&pooled).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", spec.name());
        assert_ne!(one, start);
    }
    Ok(())
}

#[test]
fn clip_grad_norm_scales_every_gradient_by_one_factor() -> Result<()> {
    let a = Var::new(&[0f32, 0.0], &Device::Cpu)?;
    let b = Var::new(&[0f32], &Device::Cpu)?;
    let unrelated = Var::new(&[0f32], &Device::Cpu)?;
    let grads_of = |ga: &[f32], gb: &[f32]| -> Result<GradStore> {
        let mut grads = gradient_store(&a, ga)?;
        grads.insert(&b, Tensor::new(gb, &Device::Cpu)?);
        Ok(grads)
    };
    let gradient = |grads: &GradStore, var: &Var| grads.get(var).expect("gradient").to_vec1::<f32>();
    // √(3² + 4² + 12²) = 13 > 6.5: factor 6.5/(13 + 1e-6) (reference script: CLIPPED).
    let mut grads = grads_of(&[3.0, -4.0], &[12.0])?;
    let total = clip_grad_norm(&mut grads, &[a.clone(), b.clone(), unrelated.clone()], 6.5)?;
    assert_eq!(total, 13.0);
    let clipped: Vec<f32> = [gradient(&grads, &a)?, gradient(&grads, &b)?].concat();
    for (got, expected) in clipped.iter().zip(CLIPPED) {
        assert!((f64::from(*got) - expected).abs() < 1e-6, "{clipped:?} vs {CLIPPED:?}");
    }
    // Within the bound: untouched.
    let mut grads = grads_of(&[3.0, -4.0], &[12.0])?;
    assert_eq!(clip_grad_norm(&mut grads, &[a.clone(), b.clone()], 13.5)?, 13.0);
    assert_eq!(gradient(&grads, &a)?, [3.0, -4.0]);
    // Non-finite: reported, untouched, so the optimiser names the variable.
    let mut grads = grads_of(&[3.0, f32::INFINITY], &[12.0])?;
    assert_eq!(clip_grad_norm(&mut grads, &[a.clone(), b.clone()], 1.0)?, f64::INFINITY);
    assert_eq!(gradient(&grads, &b)?, [12.0]);
    Ok(())
}

fn lrs(spec: &ScheduleSpec) -> Vec<f64> {
    let schedule = Schedule::new(spec.clone(), 0.1);
    (1..=12).map(|epoch| schedule.lr_at(epoch)).collect()
}

fn assert_close(label: &str, got: &[f64], expected: &[f64]) {
    let close =
        got.len() == expected.len() && got.iter().zip(expected).all(|(g, e)| (g - e).abs() <= 1e-12 * (1.0 + e.abs()));
    assert!(close, "{label}: {got:?} vs {expected:?}");
}

#[test]
fn reference_schedules() {
    assert_close("constant", &lrs(&ScheduleSpec::Constant), &[0.1; 12]);
    assert_close("step", &lrs(&ScheduleSpec::Step { step_size: 3, gamma: 0.5 }), &STEP);
    assert_close("multi-step", &lrs(&ScheduleSpec::MultiStep { milestones: vec![2, 5, 9], gamma: 0.1 }), &MULTI_STEP);
    assert_close("cosine", &lrs(&ScheduleSpec::Cosine { t_max: 10, eta_min: 0.001, warmup_epochs: 0 }), &COSINE);
    let warm = ScheduleSpec::Cosine { t_max: 8, eta_min: 0.0, warmup_epochs: 3 };
    assert_close("cosine with warm-up", &lrs(&warm), &COSINE_WARMUP);
    assert_eq!(ScheduleSpec::ReduceOnPlateau(PlateauSpec::default()).lr_at(0.1, 3), None);
}

const PLATEAU_METRICS: [f64; 12] = [1.0, 0.9, 0.95, 0.9, 0.89995, 0.91, 0.92, 0.93, 0.5, 0.6, 0.7, 0.8];

#[test]
fn reference_reduce_on_plateau() {
    let min = PlateauSpec { mode: Mode::Min, factor: 0.5, patience: 1, threshold: 1e-4, cooldown: 1, min_lr: 0.02 };
    let max = PlateauSpec { mode: Mode::Max, factor: 0.1, patience: 0, threshold: 0.0, cooldown: 0, min_lr: 0.0 };
    for (label, spec, expected) in [("min", min, PLATEAU_MIN), ("max", max, PLATEAU_MAX)] {
        let mut plateau = Plateau::new(spec, 0.1);
        let got: Vec<f64> = PLATEAU_METRICS.iter().map(|&metric| plateau.observe(metric)).collect();
        assert_close(label, &got, &expected);
        // Through a Schedule: observing epoch e gives epoch e + 1's rate.
        let mut schedule = Schedule::new(ScheduleSpec::ReduceOnPlateau(spec), 0.1);
        assert_eq!(schedule.lr_at(1), 0.1);
        let got: Vec<f64> = PLATEAU_METRICS.iter().zip(1..).map(|(&m, epoch)| schedule.observe(epoch, m)).collect();
        assert_close(label, &got, &expected);
    }
}

#[test]
fn plateau_hand_case() {
    // Patience 2: the third bad epoch in a row halves the rate; a NaN is a bad epoch.
    let spec = PlateauSpec { factor: 0.5, patience: 2, threshold: 0.0, ..PlateauSpec::default() };
    let mut plateau = Plateau::new(spec, 1.0);
    let got: Vec<f64> = [3.0, 3.0, f64::NAN, 2.0, 2.5, 2.5, 2.5, 2.5].iter().map(|&m| plateau.observe(m)).collect();
    assert_eq!(got, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]);
}

#[test]
fn plateau_needs_a_relative_gain_of_a_negative_score_too() {
    // Max, threshold 10%: from −1.0 a score must rise above −0.9 (−1 + 0.1·|−1|); −0.95 is a
    // bad epoch, as is −1.05 (a fall).
    let spec = PlateauSpec { mode: Mode::Max, factor: 0.5, patience: 1, threshold: 0.1, ..PlateauSpec::default() };
    let mut plateau = Plateau::new(spec, 1.0);
    let got: Vec<f64> = [-1.0, -0.95, -1.05, -0.85, -0.8].iter().map(|&m| plateau.observe(m)).collect();
    assert_eq!(got, [1.0, 1.0, 0.5, 0.5, 0.5]);
}

/// Each epoch's (improved, stop), and the best epoch with its metric.
type Stops = (Vec<(bool, bool)>, Option<(u32, f64)>);

fn stops(settings: EarlyStopping, metrics: &[f64]) -> Stops {
    let mut stopper = settings.start();
    let decisions = metrics.iter().zip(1..).map(|(&m, epoch)| stopper.observe(epoch, m)).map(|d| (d.improved, d.stop));
    (decisions.collect(), stopper.best())
}

#[test]
fn early_stopping_hand_cases() {
    let (t, f) = (true, false);
    // Min, min_delta 0.05: 0.97 is not enough of an improvement on 1.0; two in a row stop.
    let min = EarlyStopping { patience: 2, mode: Mode::Min, min_delta: 0.05 };
    assert_eq!(
        stops(min, &[1.0, 0.97, 0.9, 0.88, 0.86]),
        (vec![(t, f), (f, f), (t, f), (f, f), (f, t)], Some((3, 0.9)))
    );
    // Max, patience 1: the first non-improving epoch stops; NaN never improves, even first.
    let max = EarlyStopping { patience: 1, mode: Mode::Max, min_delta: 0.0 };
    assert_eq!(stops(max, &[f64::NAN, 0.5, 0.6, 0.6]), (vec![(f, t), (t, f), (t, f), (f, t)], Some((3, 0.6))));
    assert_eq!(min.hyperparameters()[1], ("early_stopping_maximize", 0.0));
}

#[test]
fn validation_messages_name_the_setting() -> Result<()> {
    let cases: Vec<(std::result::Result<(), String>, &str)> = vec![
        (spec("sgd", 0.0, 0.0).validate(), "sgd: the learning rate must be a finite number > 0, got 0"),
        (spec("adam", 0.1, -1.0).validate(), "adam: weight_decay must be a finite number ≥ 0, got -1"),
        (sgd(1.0, 0.0, false, 0.0).validate(), "sgd: momentum must be in [0, 1), got 1"),
        (sgd(0.5, 1.5, false, 0.0).validate(), "sgd: dampening must be in [0, 1], got 1.5"),
        (
            sgd(0.0, 0.0, true, 0.0).validate(),
            "sgd: nesterov needs momentum > 0 and dampening 0, got momentum 0 and dampening 0",
        ),
        (
            OptimizerSpec { betas: (0.9, 1.0), ..spec("adamw", 0.1, 0.0) }.validate(),
            "adamw: beta2 must be in [0, 1), got 1",
        ),
        (
            OptimizerSpec { eps: 0.0, ..spec("adam", 0.1, 0.0) }.validate(),
            "adam: eps must be a finite number > 0, got 0",
        ),
        (ScheduleSpec::Step { step_size: 0, gamma: 0.1 }.validate(), "step: step_size must be ≥ 1, got 0"),
        (ScheduleSpec::Step { step_size: 2, gamma: 1.5 }.validate(), "step: gamma must be in (0, 1], got 1.5"),
        (
            ScheduleSpec::from_name("multi-step").unwrap().validate(),
            "multi-step: milestones must list 1 to 16 epochs, got 0",
        ),
        (
            ScheduleSpec::MultiStep { milestones: vec![3, 3], gamma: 0.1 }.validate(),
            "multi-step: milestones must be strictly increasing epochs ≥ 1, got [3, 3]",
        ),
        (
            ScheduleSpec::from_name("cosine").unwrap().validate(),
            "cosine: t_max must be ≥ 1 (e.g. the epochs after the warm-up), got 0",
        ),
        (
            ScheduleSpec::Cosine { t_max: 5, eta_min: -0.1, warmup_epochs: 0 }.validate(),
            "cosine: eta_min must be a finite number ≥ 0, got -0.1",
        ),
        (
            ScheduleSpec::ReduceOnPlateau(PlateauSpec { factor: 1.0, ..PlateauSpec::default() }).validate(),
            "reduce-on-plateau: factor must be in (0, 1), got 1",
        ),
        (
            ScheduleSpec::ReduceOnPlateau(PlateauSpec { min_lr: f64::NAN, ..PlateauSpec::default() }).validate(),
            "reduce-on-plateau: min_lr must be a finite number ≥ 0, got NaN",
        ),
        (
            EarlyStopping { patience: 0, mode: Mode::Min, min_delta: 0.0 }.validate(),
            "early stopping: patience must be ≥ 1, got 0",
        ),
        (
            EarlyStopping { patience: 3, mode: Mode::Max, min_delta: -0.5 }.validate(),
            "early stopping: min_delta must be a finite number ≥ 0, got -0.5",
        ),
    ];
    for (got, expected) in cases {
        assert_eq!(got, Err(expected.to_string()));
    }
    let bad = Var::new(&[0f32], &Device::Cpu)?;
    let error = Optimizer::new(vec![bad], &sgd(1.0, 0.0, false, 0.0)).err().map(|e| e.to_string());
    assert_eq!(error.as_deref(), Some("sgd: momentum must be in [0, 1), got 1"));
    Ok(())
}

#[test]
fn names_round_trip_and_defaults_are_valid() {
    for kind in OptimizerKind::ALL {
        let spec = OptimizerSpec::from_name(kind.name()).unwrap_or_else(|| panic!("{kind:?}"));
        assert_eq!((spec.kind, spec.name()), (kind, kind.name()));
        assert_eq!(spec.validate(), Ok(()));
        let prefix = format!("{}_", kind.name());
        assert!(spec.hyperparameters().iter().all(|(key, _)| key.starts_with(&prefix)), "{}", kind.name());
    }
    assert_eq!(OptimizerSpec::from_name("rmsprop"), None);
    assert_eq!(OptimizerSpec::from_name("adamw").unwrap().adam_params().weight_decay, 0.01);
    for name in ScheduleSpec::NAMES {
        let schedule = ScheduleSpec::from_name(name).expect(name);
        assert_eq!(schedule.name(), name);
        let prefix = format!("{}_", name.replace('-', "_"));
        assert!(schedule.hyperparameters().iter().all(|(key, _)| key.starts_with(&prefix)), "{name}");
    }
    assert_eq!(ScheduleSpec::from_name("linear"), None);
    let milestones = ScheduleSpec::MultiStep { milestones: vec![2, 5], gamma: 0.5 };
    assert_eq!(
        milestones.hyperparameters(),
        [("multi_step_gamma", 0.5), ("multi_step_milestone_1", 2.0), ("multi_step_milestone_2", 5.0)]
    );
    assert_eq!((Mode::from_name("max"), Mode::from_name("up")), (Some(Mode::Max), None));
}

#[test]
fn a_gradient_sharing_its_variables_storage_is_refused_not_waited_on() -> Result<()> {
    // The update writes the variable in place while it reads the gradient: the same
    // storage for both must be an error (candle's in-place op checks), not a deadlock.
    let var = Var::new(&[1f32, 2.0, 3.0], &Device::Cpu)?;
    let mut grads = GradStore::default();
    grads.insert(var.as_tensor(), var.as_tensor().clone());
    let spec = OptimizerSpec::default_for(OptimizerKind::Sgd);
    let mut optimizer = Optimizer::new(vec![var.clone()], &spec)?;
    let error = optimizer.step(&grads).expect_err("refused").to_string();
    assert!(error.contains("shares storage"), "{error}");
    assert_eq!(var.to_vec1::<f32>()?, [1.0, 2.0, 3.0]);
    Ok(())
}
