//! Shared helpers of the weighting methods' tests, and the tests of `Method` itself.

use super::*;

pub(crate) fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "{what}: got {got:?}, want {want:?} (±{tol})");
    }
}

pub(crate) fn loss_weights(decision: Decision) -> Vec<f64> {
    match decision {
        Decision::LossWeights(weights) => weights,
        other => panic!("expected loss weights, got {other:?}"),
    }
}

/// Runs `method` through `steps` (per step, per task: its loss and shared gradient) and
/// compares the last step's shared gradient and weights.
pub(crate) fn check_shared(method: Method, steps: &[&[(f64, &[f32])]], gradient: &[f64], weights: &[f64], tol: f64) {
    let mut weighter = method.start(steps[0].len(), 5);
    let mut last = None;
    for step in steps {
        let losses: Vec<f64> = step.iter().map(|(loss, _)| *loss).collect();
        let grads: Vec<Vec<f32>> = step.iter().map(|(_, grad)| grad.to_vec()).collect();
        let input = StepInput { losses: &losses, static_weights: &[], shared_gradients: Some(&grads) };
        last = Some(weighter.step(&input));
    }
    match last {
        Some(Decision::SharedGradient { gradient: got, weights: got_weights }) => {
            let got: Vec<f64> = got.iter().map(|&g| f64::from(g)).collect();
            // The gradient is f32: allow its rounding on top of `tol`.
            assert_close(&got, gradient, tol + 1e-6, &format!("{} gradient", method.name()));
            assert_close(&got_weights, weights, tol, &format!("{} weights", method.name()));
        }
        other => panic!("{}: expected a shared gradient, got {other:?}", method.name()),
    }
}

#[test]
fn names_round_trip_with_defaults() {
    for name in Method::NAMES {
        let method = Method::default_for(name).unwrap_or_else(|| panic!("{name} has no default"));
        assert_eq!(method.name(), name);
        // Every hyperparameter is stored under the method's prefix.
        let prefix = name.replace('-', "_");
        assert!(method.hyperparameters().iter().all(|(key, _)| key.starts_with(&prefix)), "{name}");
        assert!(!method.cost().is_empty());
    }
    assert_eq!(Method::default_for("mean"), None);
    assert_eq!(Method::default_for("cagrad").unwrap().hyperparameters(), vec![("cagrad_c", 0.5)]);
    assert_eq!(Method::default_for("dwa").unwrap().hyperparameters(), vec![("dwa_temperature", 2.0)]);
}

#[test]
fn with_replaces_and_validates_hyperparameters() {
    let cagrad = Method::default_for("cagrad").unwrap();
    assert_eq!(cagrad.with(&[("cagrad_c", 0.2)]), Ok(Method::Cagrad { c: 0.2 }));
    assert_eq!(cagrad.with(&[("cagrad_c", 1.0)]), Err("c must be a finite number in [0, 1), got 1".to_string()));
    assert_eq!(cagrad.with(&[("cagrad_beta", 0.1)]), Err("cagrad has no hyperparameter \"beta\"".to_string()));
    let nash = Method::default_for("nash-mtl").unwrap();
    assert_eq!(nash.hyperparameters(), vec![("nash_mtl_max_norm", 1.0)]);
    assert_eq!(nash.with(&[("nash_mtl_max_norm", 0.0)]), Ok(Method::NashMtl { max_norm: 0.0 }));
    assert_eq!(
        nash.with(&[("nash_mtl_max_norm", -1.0)]),
        Err("max_norm must be a finite number ≥ 0 (0: no clipping), got -1".to_string())
    );
    let famo = Method::default_for("famo").unwrap();
    assert_eq!(famo.with(&[("famo_lr", 0.1), ("famo_gamma", 0.0)]), Ok(Method::Famo { gamma: 0.0, lr: 0.1 }));
    assert!(famo.with(&[("famo_lr", f64::NAN)]).is_err());
    // Every default passes its own validation.
    for name in Method::NAMES {
        let method = Method::default_for(name).unwrap();
        assert_eq!(method.with(&method.hyperparameters()), Ok(method), "{name}");
    }
}

#[test]
fn gradient_methods_are_the_ones_that_need_gradients() {
    let needing: Vec<&str> =
        Method::NAMES.into_iter().filter(|name| Method::default_for(name).unwrap().needs_gradients()).collect();
    assert_eq!(
        needing,
        [
            "db-mtl",
            "gradnorm",
            "pcgrad",
            "mgda",
            "cagrad",
            "imtl",
            "imtl-g",
            "gradvac",
            "aligned-mtl",
            "nash-mtl",
            "mgda-ub",
            "upgrad",
            "dualproj",
            "config",
            "fairgrad",
            "graddrop",
            "moco",
            "excess-mtl",
            "sdmgrad",
            "modo"
        ]
    );
    let on_representation: Vec<&str> =
        Method::NAMES.into_iter().filter(|name| Method::default_for(name).unwrap().on_representation()).collect();
    assert_eq!(on_representation, ["mgda-ub"]);
}

#[test]
#[should_panic(expected = "mgda needs the shared gradients")]
fn a_gradient_method_without_gradients_names_itself() {
    let mut weighter = Method::Mgda.start(2, 0);
    weighter.step(&StepInput { losses: &[1.0, 1.0], static_weights: &[], shared_gradients: None });
}

#[test]
fn every_method_handles_zero_and_equal_gradients() {
    // Degenerate inputs a real run can produce (a task whose gradient vanishes; identical
    // tasks) must give finite decisions.
    let cases = [vec![vec![0.0f32, 0.0], vec![1.0, 2.0]], vec![vec![1.0, 2.0], vec![1.0, 2.0]]];
    for name in Method::NAMES {
        let method = Method::default_for(name).unwrap();
        for grads in &cases {
            let mut weighter = method.start(2, 3);
            for _ in 0..3 {
                let input = StepInput {
                    losses: &[0.5, 2.0],
                    static_weights: &[1.0, 1.0],
                    shared_gradients: method.needs_gradients().then_some(grads.as_slice()),
                };
                let finite = match weighter.step(&input) {
                    Decision::LossWeights(w) => w.iter().all(|x| x.is_finite()),
                    Decision::ClippedLossWeights { weights, shared_scale } => {
                        weights.iter().all(|x| x.is_finite()) && shared_scale > 0.0 && shared_scale <= 1.0
                    }
                    Decision::SharedGradient { gradient, weights } => {
                        gradient.iter().all(|x| x.is_finite()) && weights.iter().all(|x| x.is_finite())
                    }
                };
                assert!(finite, "{name} on {grads:?}");
                weighter.end_epoch(&[0.5, 2.0]);
            }
        }
    }
}
