//! The dense kinds' targets, losses and tallies (LibMTL's NYUv2 definitions, Liu et al. 2019):
//!
//! | kind | head output | loss | valid pixels |
//! |---|---|---|---|
//! | segmentation | `[n, C, H, W]` class scores | cross-entropy, mean over labelled pixels | label ≠ unlabelled (−1 in the files) |
//! | depth | `[n, 1, H, W]` depth in the data's units | L1, mean over valid pixels | target ≠ 0 |
//! | normals | `[n, 3, H, W]`, normalised per pixel | 1 − cosine, mean over valid pixels | target not all 0 |
//!
//! A batch without valid pixels has loss 0. Metrics: [`crate::metrics::dense`].

use candle_core::{DType, Device, Tensor};
use mtl_data::{Targets, IGNORED_PIXEL};

use crate::metrics::dense::{DepthAccumulator, NormalAccumulator, SegmentationAccumulator};

/// Added under the square root of the normals' length, so that a zero output has a gradient.
const NORM_EPSILON: f64 = 1e-12;

/// The dense kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dense {
    Segmentation { classes: usize },
    Depth,
    Normals,
}

impl Dense {
    /// The kind of `targets`, if dense.
    pub(super) fn of(targets: &Targets, classes: usize) -> Option<Dense> {
        match targets {
            Targets::Segments { .. } => Some(Dense::Segmentation { classes }),
            Targets::Maps { channels: 1, .. } => Some(Dense::Depth),
            Targets::Maps { .. } => Some(Dense::Normals),
            _ => None,
        }
    }

    /// The loss reads: segmentation `[n, H, W]` classes as f32 (−1 unlabelled); depth and
    /// normals `[n, C, H, W]` as stored.
    pub(super) fn batch_targets(
        targets: &Targets,
        indices: &[usize],
        device: &Device,
    ) -> candle_core::Result<Option<Tensor>> {
        let n = indices.len();
        Ok(Some(match targets {
            Targets::Segments { labels, height, width } => {
                let size = height * width;
                let data = indices.iter().flat_map(|&i| &labels[i * size..(i + 1) * size]).map(|&l| {
                    if l == IGNORED_PIXEL {
                        -1.0
                    } else {
                        f32::from(l)
                    }
                });
                Tensor::from_vec(data.collect::<Vec<f32>>(), (n, *height, *width), device)?
            }
            Targets::Maps { values, channels, height, width } => {
                let size = channels * height * width;
                let data = indices.iter().flat_map(|&i| &values[i * size..(i + 1) * size]).copied();
                Tensor::from_vec(data.collect::<Vec<f32>>(), (n, *channels, *height, *width), device)?
            }
            _ => return Ok(None),
        }))
    }

    /// The mean loss of `outputs` against [`Dense::batch_targets`].
    pub(super) fn loss(self, outputs: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Dense::Segmentation { classes } => {
                let (_, c, _, _) = outputs.dims4()?;
                if c != classes {
                    candle_core::bail!("segmentation output has {c} channels for {classes} classes");
                }
                let labels = targets.to_dtype(outputs.dtype())?;
                let valid = labels.ge(0.0)?.to_dtype(outputs.dtype())?;
                mean_over(&mtl_model::layers::pixel_nll(outputs, &labels)?, &valid)
            }
            Dense::Depth => {
                let valid = targets.ne(0.0)?.to_dtype(outputs.dtype())?;
                mean_over(&((outputs - targets)?.abs()? * &valid)?, &valid)
            }
            Dense::Normals => {
                let length = (outputs.sqr()?.sum_keepdim(1)? + NORM_EPSILON)?.sqrt()?;
                let unit = outputs.broadcast_div(&length)?;
                let cosine = (unit * targets)?.sum_keepdim(1)?;
                let valid = targets.abs()?.sum_keepdim(1)?.gt(0.0)?.to_dtype(outputs.dtype())?;
                mean_over(&(cosine.affine(-1.0, 1.0)? * &valid)?, &valid)
            }
        }
    }

    /// A fresh tally of a split.
    pub(super) fn tally(self) -> DenseTally {
        match self {
            Dense::Segmentation { classes } => {
                DenseTally::Segments(SegmentationAccumulator::new(classes, Some(u32::from(IGNORED_PIXEL))))
            }
            Dense::Depth => DenseTally::Depth(DepthAccumulator::new(0.0)),
            Dense::Normals => DenseTally::Normals(NormalAccumulator::default()),
        }
    }
}

/// `Σ terms / Σ valid`, 0 where nothing is valid.
fn mean_over(terms: &Tensor, valid: &Tensor) -> candle_core::Result<Tensor> {
    let count = valid.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    terms.sum_all()? / count.max(1.0)
}

/// A split's dense predictions, accumulated batch by batch.
pub(super) enum DenseTally {
    Segments(SegmentationAccumulator),
    Depth(DepthAccumulator),
    Normals(NormalAccumulator),
}

impl DenseTally {
    /// Adds the outputs for the examples `indices` of `targets`.
    pub(super) fn add(&mut self, outputs: &Tensor, targets: &Targets, indices: &[usize]) -> candle_core::Result<()> {
        match (self, targets) {
            (DenseTally::Segments(acc), Targets::Segments { labels, height, width }) => {
                let predicted = outputs.argmax(1)?.flatten_all()?.to_vec1::<u32>()?;
                let size = height * width;
                let truth: Vec<u32> =
                    indices.iter().flat_map(|&i| &labels[i * size..(i + 1) * size]).map(|&l| u32::from(l)).collect();
                acc.add(&predicted, &truth).map_err(candle_core::Error::msg)
            }
            (DenseTally::Depth(acc), Targets::Maps { values, height, width, .. }) => {
                let size = height * width;
                let truth: Vec<f32> =
                    indices.iter().flat_map(|&i| &values[i * size..(i + 1) * size]).copied().collect();
                acc.add(&outputs.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?, &truth);
                Ok(())
            }
            (DenseTally::Normals(acc), Targets::Maps { values, height, width, .. }) => {
                // Channel-last triples, as the accumulator reads them.
                let size = 3 * height * width;
                let predicted = outputs.to_dtype(DType::F32)?.permute((0, 2, 3, 1))?.flatten_all()?.to_vec1::<f32>()?;
                let plane = height * width;
                let truth: Vec<f32> = indices
                    .iter()
                    .flat_map(|&i| {
                        let example = &values[i * size..(i + 1) * size];
                        (0..plane).flat_map(move |p| (0..3).map(move |c| example[c * plane + p]))
                    })
                    .collect();
                acc.add(&predicted, &truth);
                Ok(())
            }
            _ => candle_core::bail!("targets of another kind than the task's"),
        }
    }

    /// The split's metrics under their stored names (none before any valid pixel).
    pub(super) fn metrics(&self) -> Vec<(&'static str, f64)> {
        match self {
            DenseTally::Segments(acc) => acc.scores().map_or_else(Vec::new, |s| s.named()),
            DenseTally::Depth(acc) => acc.scores().map_or_else(Vec::new, |s| s.named()),
            DenseTally::Normals(acc) => acc.scores().map_or_else(Vec::new, |s| s.named()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: &[f64], shape: &[usize]) -> Tensor {
        Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap()
    }

    fn value(loss: Tensor) -> f64 {
        loss.to_scalar::<f64>().unwrap()
    }

    /// Central differences of `f` at `x` against the autograd gradient, every coordinate.
    fn check_gradient(f: impl Fn(&Tensor) -> Tensor, x: &[f64], shape: &[usize]) {
        let var = candle_core::Var::from_tensor(&tensor(x, shape)).unwrap();
        let grads = f(var.as_tensor()).backward().unwrap();
        let analytic = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for i in 0..x.len() {
            let h = 1e-6;
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[i] += h;
            down[i] -= h;
            let numeric = (value(f(&tensor(&up, shape))) - value(f(&tensor(&down, shape)))) / (2.0 * h);
            assert!(
                (numeric - analytic[i]).abs() < 1e-6,
                "coordinate {i}: numeric {numeric}, autograd {}",
                analytic[i]
            );
        }
    }

    #[test]
    fn segmentation_loss_is_cross_entropy_over_labelled_pixels() {
        // 1 image, 2 classes, 1×3 pixels; labels 0, 1, unlabelled.
        let scores = [0.0, 1.0, 5.0, 2.0, 0.0, -7.0];
        let targets = tensor(&[0.0, 1.0, -1.0], &[1, 1, 3]);
        let kind = Dense::Segmentation { classes: 2 };
        let loss = value(kind.loss(&tensor(&scores, &[1, 2, 1, 3]), &targets).unwrap());
        // Pixel 0: scores (0, 2), label 0 → ln(1 + e²); pixel 1: (1, 0), label 1 → ln(1 + e).
        let expected = ((1.0 + 2f64.exp()).ln() + (1.0 + 1f64.exp()).ln()) / 2.0;
        assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
        check_gradient(|x| kind.loss(x, &targets).unwrap(), &scores, &[1, 2, 1, 3]);
    }

    #[test]
    fn depth_loss_is_l1_over_valid_pixels() {
        let outputs = [1.0, 2.0, 3.0, 4.5];
        let targets = tensor(&[1.5, 0.0, 1.0, 4.0], &[1, 1, 2, 2]);
        let loss = value(Dense::Depth.loss(&tensor(&outputs, &[1, 1, 2, 2]), &targets).unwrap());
        assert!((loss - (0.5 + 2.0 + 0.5) / 3.0).abs() < 1e-12, "{loss}");
        check_gradient(|x| Dense::Depth.loss(x, &targets).unwrap(), &outputs, &[1, 1, 2, 2]);
    }

    #[test]
    fn normals_loss_is_one_minus_cosine_over_valid_pixels() {
        // Pixel 0: prediction (2, 0, 0) against (1, 0, 0): cosine 1; pixel 1: (0, 3, 4)
        // against (0, 0, 1): cosine 0.8; pixel 2: target all 0, left out.
        let outputs = [2.0, 0.0, 0.3, 0.0, 3.0, 0.2, 0.0, 4.0, 0.1];
        let targets = tensor(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], &[1, 3, 1, 3]);
        let loss = value(Dense::Normals.loss(&tensor(&outputs, &[1, 3, 1, 3]), &targets).unwrap());
        assert!((loss - (1.0 - (1.0 + 0.8) / 2.0)).abs() < 1e-9, "{loss}");
        check_gradient(|x| Dense::Normals.loss(x, &targets).unwrap(), &outputs, &[1, 3, 1, 3]);
        // Nothing valid: 0.
        let none = tensor(&[0.0; 9], &[1, 3, 1, 3]);
        assert_eq!(value(Dense::Normals.loss(&tensor(&outputs, &[1, 3, 1, 3]), &none).unwrap()), 0.0);
    }

    #[test]
    fn tallies_read_channel_first_outputs() {
        // Normals: 2 pixels, prediction (0, 0, 1) at both; targets (0, 0, 1) and (1, 0, 0): 0° and 90°.
        let targets = Targets::Maps { values: vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0], channels: 3, height: 1, width: 2 };
        let mut tally = Dense::Normals.tally();
        let outputs = Tensor::from_vec(vec![0f32, 0.0, 0.0, 0.0, 1.0, 1.0], (1, 3, 1, 2), &Device::Cpu).unwrap();
        tally.add(&outputs, &targets, &[0]).unwrap();
        let metrics = tally.metrics();
        assert_eq!(metrics[0].0, "mean_angle");
        assert!((metrics[0].1 - 45.0).abs() < 1e-9, "{metrics:?}");
        // Segmentation: argmax over channels; the unlabelled pixel counts nowhere.
        let targets = Targets::Segments { labels: vec![1, IGNORED_PIXEL, 1], height: 1, width: 3 };
        let mut tally = Dense::Segmentation { classes: 2 }.tally();
        let outputs = Tensor::from_vec(vec![0f32, 0.0, 1.0, 1.0, 1.0, 0.0], (1, 2, 1, 3), &Device::Cpu).unwrap();
        tally.add(&outputs, &targets, &[0]).unwrap();
        // Class 0: TP 0, FP 1 → IoU 0; class 1: TP 1, FN 1 → 0.5.
        assert_eq!(tally.metrics(), vec![("miou", 0.25), ("pixel_accuracy", 0.5)]);
    }
}
