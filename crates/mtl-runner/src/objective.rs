//! What a task's kind decides: the targets a batch carries, the loss, the metrics of
//! a split and the validation metric that selects the best epoch.
//!
//! | kind | loss | metrics (direction) | selects the best epoch |
//! |---|---|---|---|
//! | classification | cross-entropy (optional label smoothing and class weights, as PyTorch's) | accuracy, macro-F1, top-5 accuracy from 10 classes (higher) | accuracy |
//! | regression | MSE, L1 or Huber (δ = 1) on targets standardised on the training split | MAE, RMSE (lower), R² (higher), in the data's units | R² |
//! | multi-label | binary cross-entropy with logits (optional positive weights), mean over labels | mAP, micro-/macro-F1, subset accuracy (higher) | mAP |
//! | segmentation | per-pixel cross-entropy over labelled pixels | mIoU, pixel accuracy (higher) | mIoU |
//! | depth | L1 over valid pixels | absolute and relative error (lower), δ₁, δ₂, δ₃ (higher) | δ₁ |
//! | normals | 1 − cosine over valid pixels | mean and median angle (lower), within 11.25°, 22.5°, 30° (higher) | within 11.25° |
//!
//! The dense kinds' details are in `dense`.
//!
//! The selecting metric is higher-is-better and unitless for every kind, so that the mean
//! over tasks that picks a run's best epoch ([`mtl_store::Selection`]) weighs each task alike;
//! the experiment file may name another of the kind's higher-is-better metrics
//! (`select = "macro_f1"`). It is also the task's headline metric in `ls`, `compare`'s
//! first columns and the report's charts, whose Pareto fronts take higher as better.

use candle_core::{DType, Device, Tensor, D};
use mtl_data::{Split, Targets, TaskData};

use crate::metrics::multi_label::multi_label_scores;
use dense::{Dense, DenseTally};

mod dense;
use crate::metrics::regression::RegressionAccumulator;
use crate::metrics::scores;

/// Classification tasks with at least this many classes also store `top5_accuracy`: the
/// share of examples whose label is among the 5 highest outputs (fewer than 5 classes
/// score strictly above it, so a tie counts for the label).
pub const TOP5_CLASSES: usize = 10;

/// The loss of a regression task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegressionLoss {
    /// Mean squared error (the default).
    #[default]
    Mse,
    /// Mean absolute error.
    L1,
    /// Huber with δ = 1: quadratic within 1 standard deviation, linear beyond.
    Huber,
}

impl RegressionLoss {
    /// Every loss, by name.
    pub const NAMES: [&'static str; 3] = ["mse", "l1", "huber"];

    /// The name experiment files use.
    pub fn name(self) -> &'static str {
        match self {
            RegressionLoss::Mse => "mse",
            RegressionLoss::L1 => "l1",
            RegressionLoss::Huber => "huber",
        }
    }

    /// Parses [`RegressionLoss::name`].
    pub fn from_name(name: &str) -> Option<RegressionLoss> {
        [RegressionLoss::Mse, RegressionLoss::L1, RegressionLoss::Huber].into_iter().find(|l| l.name() == name)
    }
}

/// A task's training choices from the experiment file (defaults: MSE, the kind's metric,
/// plain cross-entropy and BCE).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectiveSpec {
    /// The regression loss (regression tasks only).
    pub loss: RegressionLoss,
    /// The validation metric that selects the best epoch, if not the kind's.
    pub select: Option<String>,
    /// Classification: the share ε of each target spread evenly over the classes.
    pub label_smoothing: f64,
    /// Classification: one weight per class (PyTorch's `weight`: a weighted mean over examples).
    pub class_weights: Option<Vec<f64>>,
    /// Multi-label: the weight of the positive term, one per label or one for all.
    pub pos_weight: Option<Vec<f64>>,
}

impl ObjectiveSpec {
    /// Why these options cannot go with `task`, if they cannot (a class weight per class,
    /// a positive weight per label or one).
    pub fn problem(&self, task: &TaskData) -> Option<String> {
        let n = task.n_classes();
        match (&self.class_weights, &self.pos_weight) {
            (Some(weights), _) if weights.len() != n => Some(format!(
                "class_weights has {} values, but task {} has {n} classes ({})",
                weights.len(),
                task.name,
                task.class_names.join(", ")
            )),
            (_, Some(weights)) if weights.len() != 1 && weights.len() != n => Some(format!(
                "pos_weight has {} values, but task {} has {n} labels: give one per label or one for all",
                weights.len(),
                task.name
            )),
            _ => None,
        }
    }
}

/// The higher-is-better validation metrics of each kind: those `select` may name.
pub fn metric_names(kind: &str) -> &'static [&'static str] {
    match kind {
        "regression" => &["r2"],
        "multi-label" => &["map", "micro_f1", "macro_f1", "subset_accuracy"],
        "segmentation" => &["miou", "pixel_accuracy"],
        "depth" => &["delta1", "delta2", "delta3"],
        "normals" => &["within_11_25", "within_22_5", "within_30"],
        _ => &["accuracy", "macro_f1"],
    }
}

/// The metric that selects the best epoch for a task of `kind` unless the file names one.
pub fn default_selection(kind: &str) -> &'static str {
    match kind {
        "regression" => "r2",
        "multi-label" => "map",
        "segmentation" => "miou",
        "depth" => "delta1",
        "normals" => "within_11_25",
        _ => "accuracy",
    }
}

/// How one task is trained and scored.
#[derive(Clone, Debug)]
pub struct Objective {
    kind: Kind,
    /// The validation metric that selects the best epoch.
    pub select: String,
}

#[derive(Clone, Debug)]
enum Kind {
    /// `weights`: one per class, where given.
    Classification { n_classes: usize, smoothing: f64, weights: Option<Vec<f64>> },
    /// Targets standardised as `(y − mean) / scale`, per target, with the training split's statistics.
    Regression { loss: RegressionLoss, mean: Vec<f64>, scale: Vec<f64> },
    /// `pos_weight`: one per label, where given.
    MultiLabel { width: usize, pos_weight: Option<Vec<f64>> },
    /// Segmentation, depth or normals.
    Dense(Dense),
}

impl Objective {
    /// The objective of `task` (statistics from its training split) under `spec`.
    pub fn new(task: &TaskData, spec: &ObjectiveSpec) -> Objective {
        let kind = match &task.train.targets {
            targets @ (Targets::Segments { .. } | Targets::Maps { .. }) => {
                Kind::Dense(Dense::of(targets, task.n_classes()).expect("dense targets"))
            }
            Targets::Classes(_) => Kind::Classification {
                n_classes: task.n_classes(),
                smoothing: spec.label_smoothing,
                weights: spec.class_weights.clone(),
            },
            Targets::Values { values, width } => {
                let rows: Vec<&[f32]> = values.chunks_exact(*width).collect();
                let n = rows.len().max(1) as f64;
                let mean: Vec<f64> = (0..*width).map(|t| rows.iter().map(|r| r[t] as f64).sum::<f64>() / n).collect();
                let scale = (0..*width)
                    .map(|t| {
                        let variance = rows.iter().map(|r| (r[t] as f64 - mean[t]).powi(2)).sum::<f64>() / n;
                        if variance > 0.0 {
                            variance.sqrt()
                        } else {
                            1.0
                        }
                    })
                    .collect();
                Kind::Regression { loss: spec.loss, mean, scale }
            }
            Targets::Binary { width, .. } => Kind::MultiLabel {
                width: *width,
                pos_weight: spec.pos_weight.as_ref().map(|w| if w.len() == 1 { vec![w[0]; *width] } else { w.clone() }),
            },
        };
        let select = spec.select.clone().unwrap_or_else(|| default_selection(task.kind()).to_owned());
        Objective { kind, select }
    }

    /// Whether training counts correct predictions (the train split's accuracy).
    pub fn counts_correct(&self) -> bool {
        matches!(self.kind, Kind::Classification { .. })
    }

    /// The targets of the examples at `indices`, as the loss reads them: class indices
    /// `[n]` (u32), standardised values `[n, k]` or 0/1 labels `[n, k]` (f32).
    pub fn batch_targets(&self, split: &Split, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let n = indices.len();
        if let Some(targets) = Dense::batch_targets(&split.targets, indices, device)? {
            return Ok(targets);
        }
        match (&split.targets, &self.kind) {
            (Targets::Classes(classes), _) => {
                Tensor::from_vec(indices.iter().map(|&i| classes[i]).collect::<Vec<u32>>(), n, device)
            }
            (Targets::Values { values, width }, Kind::Regression { mean, scale, .. }) => {
                let mut data = Vec::with_capacity(n * width);
                for &i in indices {
                    let row = &values[i * width..(i + 1) * width];
                    data.extend(row.iter().enumerate().map(|(t, &y)| ((y as f64 - mean[t]) / scale[t]) as f32));
                }
                Tensor::from_vec(data, (n, *width), device)
            }
            (Targets::Binary { labels, width }, _) => {
                let data = indices.iter().flat_map(|&i| &labels[i * width..(i + 1) * width]).map(|&l| f32::from(l));
                Tensor::from_vec(data.collect::<Vec<f32>>(), (n, *width), device)
            }
            (Targets::Values { .. }, _) => candle_core::bail!("regression targets on a task of another kind"),
            (Targets::Segments { .. } | Targets::Maps { .. }, _) => unreachable!("dense targets returned above"),
        }
    }

    /// The mean loss of `outputs` (the head's `[n, k]`) against `targets` ([`Objective::batch_targets`]).
    pub fn loss(&self, outputs: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
        match &self.kind {
            Kind::Classification { smoothing, weights: None, .. } if *smoothing == 0.0 => {
                candle_nn::loss::cross_entropy(outputs, targets)
            }
            Kind::Classification { smoothing, weights, .. } => {
                cross_entropy(outputs, targets, *smoothing, weights.as_deref())
            }
            Kind::Regression { loss, .. } => regression_loss(*loss, outputs, targets),
            Kind::MultiLabel { pos_weight: None, .. } => bce_with_logits(outputs, targets),
            Kind::MultiLabel { pos_weight: Some(weights), .. } => weighted_bce_with_logits(outputs, targets, weights),
            Kind::Dense(dense) => dense.loss(outputs, targets),
        }
    }

    /// How many of a training batch's predictions are right (classification only).
    pub fn correct(&self, outputs: &Tensor, split: &Split, indices: &[usize]) -> candle_core::Result<usize> {
        let predicted = outputs.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let labels = split.labels();
        Ok(predicted.iter().zip(indices).filter(|(p, &i)| labels.get(i) == Some(*p)).count())
    }

    /// A fresh tally of a split's predictions.
    pub fn scorer(&self) -> Scorer<'_> {
        let tally = match &self.kind {
            Kind::Classification { .. } => Tally::Classes(Vec::new(), 0),
            Kind::Regression { mean, .. } => Tally::Values(RegressionAccumulator::new(mean.len())),
            Kind::MultiLabel { .. } => Tally::Logits(Vec::new()),
            Kind::Dense(dense) => Tally::Dense(dense.tally()),
        };
        Scorer { objective: self, tally }
    }
}

/// A split's predictions, batch by batch, then its metrics.
pub struct Scorer<'a> {
    objective: &'a Objective,
    tally: Tally,
}

enum Tally {
    /// The predicted classes, and how many labels were among the 5 highest outputs.
    Classes(Vec<u32>, usize),
    Values(RegressionAccumulator),
    Logits(Vec<f32>),
    Dense(DenseTally),
}

impl Scorer<'_> {
    /// Adds the outputs for the examples `indices` of `split`.
    pub fn add(&mut self, outputs: &Tensor, split: &Split, indices: &[usize]) -> candle_core::Result<()> {
        match (&mut self.tally, &self.objective.kind, &split.targets) {
            (Tally::Classes(predictions, top5), Kind::Classification { n_classes, .. }, _) => {
                predictions.extend(outputs.argmax(D::Minus1)?.to_vec1::<u32>()?);
                if *n_classes >= TOP5_CLASSES {
                    let labels = split.labels();
                    for (row, &i) in outputs.to_dtype(DType::F32)?.to_vec2::<f32>()?.iter().zip(indices) {
                        let own = row[labels[i] as usize];
                        *top5 += usize::from(row.iter().filter(|&&v| v > own).count() < 5);
                    }
                }
            }
            (Tally::Values(acc), Kind::Regression { mean, scale, .. }, Targets::Values { values, width }) => {
                // Back to the data's units before scoring.
                let standardised = outputs.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let predictions: Vec<f32> = standardised
                    .iter()
                    .enumerate()
                    .map(|(j, &p)| (p as f64 * scale[j % width] + mean[j % width]) as f32)
                    .collect();
                let targets: Vec<f32> =
                    indices.iter().flat_map(|&i| &values[i * width..(i + 1) * width]).copied().collect();
                acc.add(&predictions, &targets);
            }
            (Tally::Logits(logits), ..) => {
                logits.extend(outputs.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
            }
            (Tally::Dense(tally), _, targets) => tally.add(outputs, targets, indices)?,
            _ => candle_core::bail!("targets of another kind than the task's"),
        }
        Ok(())
    }

    /// The metrics of the split under their stored names (loss not included).
    pub fn metrics(self, split: &Split) -> Vec<(&'static str, f64)> {
        match (self.tally, &self.objective.kind, &split.targets) {
            (Tally::Classes(predictions, top5), Kind::Classification { n_classes, .. }, _) => {
                let s = scores(&predictions, split.labels(), *n_classes);
                let mut metrics = vec![("accuracy", s.accuracy), ("macro_f1", s.macro_f1)];
                if *n_classes >= TOP5_CLASSES && !predictions.is_empty() {
                    metrics.push(("top5_accuracy", top5 as f64 / predictions.len() as f64));
                }
                metrics
            }
            (Tally::Values(acc), ..) => acc.scores().map_or_else(Vec::new, |s| s.named()),
            (Tally::Dense(tally), ..) => tally.metrics(),
            (Tally::Logits(logits), Kind::MultiLabel { width, .. }, Targets::Binary { labels, .. }) => {
                multi_label_scores(&logits, labels, *width).map_or_else(Vec::new, |s| s.named())
            }
            _ => Vec::new(),
        }
    }
}

/// The mean over `[n, k]` of the regression loss between `outputs` and `targets`.
pub fn regression_loss(loss: RegressionLoss, outputs: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let diff = outputs.sub(targets)?;
    match loss {
        RegressionLoss::Mse => diff.sqr()?.mean_all(),
        RegressionLoss::L1 => diff.abs()?.mean_all(),
        RegressionLoss::Huber => {
            // With δ = 1: 0.5·d² where |d| ≤ 1, |d| − 0.5 beyond; as min(|d|, 1)·(|d| − 0.5·min(|d|, 1)).
            let abs = diff.abs()?;
            let clipped = abs.clamp(0f32, 1f32)?;
            (&clipped * (&abs - (&clipped * 0.5)?)?)?.mean_all()
        }
    }
}

/// Cross-entropy of `logits` `[n, C]` against class indices `targets` `[n]`, as PyTorch's
/// `cross_entropy(weight, label_smoothing)`: with log-probabilities `l`,
/// `Σ_i [(1 − ε)·w_{y_i}·(−l_{i,y_i}) + (ε/C)·Σ_c w_c·(−l_{i,c})] / Σ_i w_{y_i}` (w = 1 without weights).
pub fn cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    smoothing: f64,
    weights: Option<&[f64]>,
) -> candle_core::Result<Tensor> {
    let classes = logits.dims2()?.1;
    let log_probabilities = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = log_probabilities.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    let weights = weights.map_or_else(|| vec![1.0; classes], <[f64]>::to_vec);
    let weights = Tensor::from_vec(weights, classes, logits.device())?.to_dtype(logits.dtype())?;
    let example_weights = weights.gather(targets, 0)?;
    let smooth = log_probabilities.broadcast_mul(&weights.unsqueeze(0)?)?.sum(D::Minus1)?.neg()?;
    let per_example =
        ((nll * &example_weights)? * (1.0 - smoothing))?.add(&(smooth * (smoothing / classes as f64))?)?;
    per_example.sum_all()?.div(&example_weights.sum_all()?)
}

/// [`bce_with_logits`] with a weight per label on the positive term, as PyTorch's
/// `pos_weight`: `(1 − y)·x + (1 + (p − 1)·y)·log(1 + e^(−x))`, averaged over every element.
pub fn weighted_bce_with_logits(logits: &Tensor, targets: &Tensor, pos_weight: &[f64]) -> candle_core::Result<Tensor> {
    let width = pos_weight.len();
    let weights = Tensor::from_vec(pos_weight.to_vec(), (1, width), logits.device())?.to_dtype(logits.dtype())?;
    // log(1 + e^(−x)) = max(x, 0) + log(1 + e^(−|x|)) − x, finite at any x; written with max(x, 0)
    // (not max(−x, 0)) so that at x = 0 relu's and abs's subgradients (both those of x > 0)
    // add up to the true derivative −σ(0).
    let softplus = (logits.relu()? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let softplus_negative = (softplus - logits)?;
    let positive_factor = (targets.broadcast_mul(&(weights - 1.0)?)? + 1.0)?;
    let negative_part = ((targets.neg()? + 1.0)? * logits)?;
    (negative_part + (positive_factor * softplus_negative)?)?.mean_all()
}

/// Binary cross-entropy of `logits` against 0/1 `targets`, averaged over every element,
/// in the stable form `max(x, 0) − x·y + log(1 + e^(−|x|))`.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (logits.relu()? - (logits * targets)?)?.add(&softplus)?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: &[f64], shape: (usize, usize)) -> Tensor {
        Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).expect("tensor")
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn regression_losses_by_hand() {
        // d = output − target = [0.5, −2, 0, 3]
        let outputs = tensor(&[1.5, -1.0, 2.0, 3.0], (2, 2));
        let targets = tensor(&[1.0, 1.0, 2.0, 0.0], (2, 2));
        let value = |loss| regression_loss(loss, &outputs, &targets).and_then(|t| t.to_scalar::<f64>()).expect("loss");
        close(value(RegressionLoss::Mse), (0.25 + 4.0 + 0.0 + 9.0) / 4.0);
        close(value(RegressionLoss::L1), (0.5 + 2.0 + 0.0 + 3.0) / 4.0);
        // Huber δ=1: 0.5·0.25, 2 − 0.5, 0, 3 − 0.5 (torch.nn.functional.huber_loss gives 1.03125).
        close(value(RegressionLoss::Huber), (0.125 + 1.5 + 0.0 + 2.5) / 4.0);
    }

    #[test]
    fn bce_matches_its_closed_form_and_gradient() {
        let x = [-30.0, -1.5, 0.0, 0.7, 2.0, 40.0];
        let y = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let logits = candle_core::Var::from_tensor(&tensor(&x, (2, 3))).expect("var");
        let targets = tensor(&y, (2, 3));
        let loss = bce_with_logits(logits.as_tensor(), &targets).expect("loss");
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        // −[y·log σ(x) + (1−y)·log(1−σ(x))], written with ln(1 + e^x) to stay finite at ±40.
        let expected: f64 = x.iter().zip(&y).map(|(&x, &y)| (1.0 + x.exp()).ln() - x * y).sum::<f64>() / 6.0;
        close(loss.to_scalar::<f64>().expect("scalar"), expected);
        // d/dx = (σ(x) − y) / n, and a central finite difference of the loss agrees.
        let grads = loss.backward().expect("backward");
        let grad = grads.get(&logits).expect("grad").flatten_all().and_then(|g| g.to_vec1::<f64>()).expect("vec");
        for (i, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
            close(grad[i], (sigmoid(xi) - yi) / 6.0);
            let at = |h: f64| {
                let mut shifted = x;
                shifted[i] += h;
                bce_with_logits(&tensor(&shifted, (2, 3)), &targets).and_then(|t| t.to_scalar::<f64>()).expect("loss")
            };
            let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
            assert!((numeric - grad[i]).abs() < 1e-7, "element {i}: {numeric} vs {}", grad[i]);
        }
    }

    /// `loss` at `x` and its gradient, by backprop and by central differences.
    fn value_and_gradients(
        x: &[f64],
        shape: (usize, usize),
        loss: impl Fn(&Tensor) -> Tensor,
    ) -> (f64, Vec<f64>, Vec<f64>) {
        let var = candle_core::Var::from_tensor(&tensor(x, shape)).expect("var");
        let value = loss(var.as_tensor());
        let grads = value.backward().expect("backward");
        let grad = grads.get(&var).expect("grad").flatten_all().and_then(|g| g.to_vec1::<f64>()).expect("vec");
        let numeric = (0..x.len())
            .map(|i| {
                let at = |h: f64| {
                    let mut shifted = x.to_vec();
                    shifted[i] += h;
                    loss(&tensor(&shifted, shape)).to_scalar::<f64>().expect("scalar")
                };
                (at(1e-6) - at(-1e-6)) / 2e-6
            })
            .collect();
        (value.to_scalar::<f64>().expect("scalar"), grad, numeric)
    }

    fn close_all(got: &[f64], expected: &[f64], tolerance: f64) {
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < tolerance, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn smoothed_and_weighted_cross_entropy_match_pytorch() {
        // benches/reference/losses_reference.py (PyTorch 2.15, float64).
        let logits = [2.0, -1.0, 0.5, 0.1, 0.2, 3.0, -2.0, 1.5, 0.0, 0.3, 0.3, -0.7];
        let labels = Tensor::from_vec(vec![0u32, 2, 1, 1], 4, &Device::Cpu).expect("labels");
        let weights = [1.0, 3.0, 0.5];
        // (ε, class weights, loss, the gradient's first row)
        type Case<'a> = (f64, Option<&'a [f64]>, f64, [f64; 3]);
        let cases: [Case; 3] = [
            (0.1, None, 0.4946774036171183, [-0.03693407468601437, 0.0014448099843385291, 0.03548926470167584]),
            (
                0.0,
                Some(&weights),
                0.4746003451716589,
                [-0.028587062054763215, 0.005215009769424993, 0.023372052285338226],
            ),
            (
                0.2,
                Some(&weights),
                0.6665619940493994,
                [-0.00033465714912843484, -0.020930155920299173, 0.021264813069427603],
            ),
        ];
        for (smoothing, weights, expected, first_row) in cases {
            let loss = |x: &Tensor| cross_entropy(x, &labels, smoothing, weights).expect("loss");
            let (value, grad, numeric) = value_and_gradients(&logits, (4, 3), loss);
            assert!((value - expected).abs() < 1e-12, "ε {smoothing}: {value} vs {expected}");
            close_all(&grad[..3], &first_row, 1e-12);
            close_all(&grad, &numeric, 1e-7);
        }
        // Without smoothing or weights it is candle's cross-entropy.
        let plain = cross_entropy(&tensor(&logits, (4, 3)), &labels, 0.0, None).and_then(|t| t.to_scalar::<f64>());
        let candle =
            candle_nn::loss::cross_entropy(&tensor(&logits, (4, 3)), &labels).and_then(|t| t.to_scalar::<f64>());
        assert!((plain.expect("ours") - candle.expect("candle")).abs() < 1e-12);
    }

    #[test]
    fn positive_weights_match_pytorch() {
        let x = [-3.0, 0.5, 2.0, 1.0, -0.2, 0.0];
        let y = tensor(&[0.0, 1.0, 1.0, 1.0, 0.0, 1.0], (2, 3));
        let loss = |x: &Tensor| weighted_bce_with_logits(x, &y, &[2.0, 0.5, 4.0]).expect("loss");
        let (value, grad, numeric) = value_and_gradients(&x, (2, 3), loss);
        assert!((value - 0.7984314757489174).abs() < 1e-12, "{value}");
        let expected = [
            0.00790431219626113,
            -0.03146172239984545,
            -0.0794686146814118,
            -0.08964714045666504,
            0.07502766711458703,
            -0.3333333333333333,
        ];
        close_all(&grad, &expected, 1e-12);
        close_all(&grad, &numeric, 1e-7);
        // Weights of 1 are the unweighted loss.
        let ones = weighted_bce_with_logits(&tensor(&x, (2, 3)), &y, &[1.0; 3]).and_then(|t| t.to_scalar::<f64>());
        let plain = bce_with_logits(&tensor(&x, (2, 3)), &y).and_then(|t| t.to_scalar::<f64>());
        assert!((ones.expect("ones") - plain.expect("plain")).abs() < 1e-12);
    }

    #[test]
    fn huber_gradient_matches_finite_differences() {
        let x = [0.3, -0.8, 2.5, -4.0];
        let targets = tensor(&[0.0, 0.0, 0.0, 0.0], (2, 2));
        let outputs = candle_core::Var::from_tensor(&tensor(&x, (2, 2))).expect("var");
        let loss = regression_loss(RegressionLoss::Huber, outputs.as_tensor(), &targets).expect("loss");
        let grads = loss.backward().expect("backward");
        let grad = grads.get(&outputs).expect("grad").flatten_all().and_then(|g| g.to_vec1::<f64>()).expect("vec");
        // Closed form: d/4 inside [−1, 1], sign(d)/4 beyond.
        assert_eq!(grad, [0.3 / 4.0, -0.8 / 4.0, 0.25, -0.25]);
        for (i, &g) in grad.iter().enumerate() {
            let at = |h: f64| {
                let mut shifted = x;
                shifted[i] += h;
                regression_loss(RegressionLoss::Huber, &tensor(&shifted, (2, 2)), &targets)
                    .and_then(|t| t.to_scalar::<f64>())
                    .expect("loss")
            };
            assert!(((at(1e-6) - at(-1e-6)) / 2e-6 - g).abs() < 1e-7);
        }
    }

    #[test]
    fn top5_accuracy_counts_labels_among_the_five_highest_outputs_from_ten_classes() {
        use mtl_data::Inputs;
        let split = |labels: Vec<u32>| {
            let inputs =
                Inputs::Features { values: vec![0.0; labels.len()].into(), width: 1, embedded: Default::default() };
            Split::classified(inputs, labels)
        };
        let task = |classes: usize| TaskData {
            name: "d".into(),
            class_names: (0..classes).map(|c| c.to_string()).collect(),
            train: split(vec![0, 1]),
            val: split(vec![3, 0, 7]),
            test: split(vec![]),
            vocabulary: None,
        };
        // Row 0: label 3 scores 0.5, four classes above it → in the top 5. Row 1: label 0 at
        // 0.0, five above → out. Row 2: label 7 at 1.0, tied with five others and none above → in.
        let mut rows = vec![vec![0f32; 12]; 3];
        rows[0][3] = 0.5;
        (4..8).for_each(|c| rows[0][c] = 1.0);
        (1..6).for_each(|c| rows[1][c] = 1.0);
        (2..8).for_each(|c| rows[2][c] = 1.0);
        let outputs = Tensor::from_vec(rows.concat(), (3, 12), &Device::Cpu).expect("outputs");
        let objective = Objective::new(&task(12), &ObjectiveSpec::default());
        let mut scorer = objective.scorer();
        scorer.add(&outputs, &task(12).val, &[0, 1, 2]).expect("add");
        let metrics = scorer.metrics(&task(12).val);
        assert_eq!(metrics.last(), Some(&("top5_accuracy", 2.0 / 3.0)));
        // Fewer than 10 classes: no top-5.
        let objective = Objective::new(&task(9), &ObjectiveSpec::default());
        let mut scorer = objective.scorer();
        scorer.add(&outputs.narrow(1, 0, 9).expect("narrow"), &task(9).val, &[0, 1, 2]).expect("add");
        assert!(scorer.metrics(&task(9).val).iter().all(|(name, _)| *name != "top5_accuracy"));
    }

    #[test]
    fn regression_scores_are_in_the_data_s_units() {
        use mtl_data::Inputs;
        let split = |values: Vec<f32>| Split {
            inputs: Inputs::Features { values: vec![0.0; values.len()].into(), width: 1, embedded: Default::default() },
            targets: Targets::Values { values, width: 1 },
        };
        let task = TaskData {
            name: "y".into(),
            class_names: vec!["y".into()],
            train: split(vec![10.0, 20.0, 30.0]),
            val: split(vec![15.0, 25.0]),
            test: split(vec![]),
            vocabulary: None,
        };
        let objective = Objective::new(&task, &ObjectiveSpec::default());
        assert_eq!(objective.select, "r2");
        // Train mean 20, scale √(200/3); standardised targets of val are ∓5/scale.
        let targets = objective.batch_targets(&task.val, &[0, 1], &Device::Cpu).expect("targets");
        let scale = (200.0f64 / 3.0).sqrt();
        let standardised: Vec<f32> = targets.flatten_all().and_then(|t| t.to_vec1()).expect("vec");
        assert_eq!(standardised, [(-5.0 / scale) as f32, (5.0 / scale) as f32]);
        // A prediction of 0 (the mean, 20) is 5 off on each: MAE 5 in the data's units.
        let mut scorer = objective.scorer();
        scorer.add(&Tensor::zeros((2, 1), DType::F32, &Device::Cpu).expect("zeros"), &task.val, &[0, 1]).expect("add");
        let metrics = scorer.metrics(&task.val);
        assert_eq!(metrics[0], ("mae", 5.0));
    }
}
