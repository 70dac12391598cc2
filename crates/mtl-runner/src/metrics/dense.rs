//! Per-pixel metrics of the dense task kinds, accumulated batch by batch over a split in
//! memory bounded by the classes (segmentation) or a fixed histogram (normals):
//! - **segmentation** (higher is better): mIoU, the mean over classes of
//!   `TP / (TP + FP + FN)` from the split's confusion matrix, over the classes present in
//!   the labels or the predictions (a class absent from both has no IoU, as numpy's
//!   `nanmean` of LibMTL-style IoUs); pixel accuracy. Pixels labelled `ignore` count in
//!   neither.
//! - **depth**, on valid pixels (target ≠ the invalid value, 0 by default as in LibMTL's
//!   NYUv2 code): absolute error `mean |d̂ − d|` and relative error `mean |d̂ − d| / d`
//!   (lower is better); δ₁, δ₂, δ₃, the fractions with `max(d̂/d, d/d̂) < 1.25^k` (higher;
//!   a prediction ≤ 0 is never within).
//! - **surface normals**, on valid pixels (target not all zeros): the angle between the
//!   normalised prediction and the target in degrees, its mean and median (lower), and the
//!   fractions within 11.25°, 22.5° and 30° (higher). The median comes from a histogram of
//!   0.001° bins (the middle bin's centre), so it is within 0.0005° of the exact median.

/// mIoU and pixel accuracy of a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentationScores {
    /// Mean over the present classes of TP / (TP + FP + FN).
    pub mean_iou: f64,
    /// Correct labelled pixels over all labelled pixels.
    pub pixel_accuracy: f64,
}

impl SegmentationScores {
    /// The scores under their stored metric names.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        vec![("miou", self.mean_iou), ("pixel_accuracy", self.pixel_accuracy)]
    }
}

/// A confusion matrix over the split's labelled pixels.
#[derive(Clone, Debug)]
pub struct SegmentationAccumulator {
    classes: usize,
    ignore: Option<u32>,
    /// `[label][prediction]`.
    confusion: Vec<u64>,
}

impl SegmentationAccumulator {
    /// For `classes` classes; pixels labelled `ignore` are left out.
    pub fn new(classes: usize, ignore: Option<u32>) -> Self {
        SegmentationAccumulator { classes, ignore, confusion: vec![0; classes * classes] }
    }

    /// Adds pixels: predicted classes and labels, same length. A label that is neither a
    /// class nor `ignore` is an error naming it (the readers check labels first).
    pub fn add(&mut self, predictions: &[u32], labels: &[u32]) -> Result<(), String> {
        assert_eq!(predictions.len(), labels.len(), "segmentation: predictions and labels differ in length");
        for (&prediction, &label) in predictions.iter().zip(labels) {
            if Some(label) == self.ignore {
                continue;
            }
            let (l, p) = (label as usize, prediction as usize);
            if l >= self.classes || p >= self.classes {
                return Err(format!(
                    "segmentation: label {label} or prediction {prediction} outside 0..{}",
                    self.classes
                ));
            }
            self.confusion[l * self.classes + p] += 1;
        }
        Ok(())
    }

    /// The scores; `None` before any labelled pixel.
    pub fn scores(&self) -> Option<SegmentationScores> {
        let c = self.classes;
        let total: u64 = self.confusion.iter().sum();
        if total == 0 {
            return None;
        }
        let correct: u64 = (0..c).map(|k| self.confusion[k * c + k]).sum();
        let ious: Vec<f64> = (0..c)
            .filter_map(|k| {
                let actual: u64 = self.confusion[k * c..][..c].iter().sum();
                let predicted: u64 = (0..c).map(|l| self.confusion[l * c + k]).sum();
                let union = actual + predicted - self.confusion[k * c + k];
                (union > 0).then(|| self.confusion[k * c + k] as f64 / union as f64)
            })
            .collect();
        Some(SegmentationScores {
            mean_iou: ious.iter().sum::<f64>() / ious.len() as f64,
            pixel_accuracy: correct as f64 / total as f64,
        })
    }
}

/// Depth errors and δ fractions of a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthScores {
    /// Mean |d̂ − d|.
    pub abs_error: f64,
    /// Mean |d̂ − d| / d.
    pub rel_error: f64,
    /// Fractions within 1.25, 1.25², 1.25³.
    pub deltas: [f64; 3],
}

impl DepthScores {
    /// The scores under their stored metric names.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        let [d1, d2, d3] = self.deltas;
        vec![("abs_err", self.abs_error), ("rel_err", self.rel_error), ("delta1", d1), ("delta2", d2), ("delta3", d3)]
    }
}

/// Sums over the split's valid depth pixels.
#[derive(Clone, Debug)]
pub struct DepthAccumulator {
    invalid: f32,
    count: u64,
    abs_error: f64,
    rel_error: f64,
    within: [u64; 3],
}

impl DepthAccumulator {
    /// Pixels whose target equals `invalid` (0 for NYUv2) are left out.
    pub fn new(invalid: f32) -> Self {
        DepthAccumulator { invalid, count: 0, abs_error: 0.0, rel_error: 0.0, within: [0; 3] }
    }

    /// Adds pixels: predicted and target depths, same length.
    pub fn add(&mut self, predictions: &[f32], targets: &[f32]) {
        assert_eq!(predictions.len(), targets.len(), "depth: predictions and targets differ in length");
        for (&prediction, &target) in predictions.iter().zip(targets) {
            if target == self.invalid || !target.is_finite() {
                continue;
            }
            let (p, d) = (prediction as f64, target as f64);
            self.count += 1;
            self.abs_error += (p - d).abs();
            self.rel_error += (p - d).abs() / d;
            if p > 0.0 {
                let ratio = (p / d).max(d / p);
                for (k, within) in self.within.iter_mut().enumerate() {
                    *within += u64::from(ratio < 1.25f64.powi(k as i32 + 1));
                }
            }
        }
    }

    /// The scores; `None` before any valid pixel.
    pub fn scores(&self) -> Option<DepthScores> {
        (self.count > 0).then(|| {
            let n = self.count as f64;
            DepthScores {
                abs_error: self.abs_error / n,
                rel_error: self.rel_error / n,
                deltas: self.within.map(|w| w as f64 / n),
            }
        })
    }
}

/// Angle errors of a split's normals, in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalScores {
    /// Mean angle error.
    pub mean_angle: f64,
    /// Median angle error (to half a histogram bin).
    pub median_angle: f64,
    /// Fractions within 11.25°, 22.5°, 30°.
    pub within: [f64; 3],
}

impl NormalScores {
    /// The scores under their stored metric names.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        let [a, b, c] = self.within;
        vec![
            ("mean_angle", self.mean_angle),
            ("median_angle", self.median_angle),
            ("within_11_25", a),
            ("within_22_5", b),
            ("within_30", c),
        ]
    }
}

const BINS_PER_DEGREE: usize = 1000;
const THRESHOLDS: [f64; 3] = [11.25, 22.5, 30.0];

/// Sums and an angle histogram over the split's valid normal pixels.
#[derive(Clone, Debug)]
pub struct NormalAccumulator {
    count: u64,
    angle_sum: f64,
    within: [u64; 3],
    histogram: Vec<u64>,
}

impl Default for NormalAccumulator {
    fn default() -> Self {
        NormalAccumulator { count: 0, angle_sum: 0.0, within: [0; 3], histogram: vec![0; 180 * BINS_PER_DEGREE + 1] }
    }
}

impl NormalAccumulator {
    /// Adds pixels given as `[x, y, z]` triples, pixel by pixel (the channel-last order;
    /// the caller gathers them from `[3, H, W]`). Targets that are all zeros are invalid.
    pub fn add(&mut self, predictions: &[f32], targets: &[f32]) {
        assert_eq!(predictions.len(), targets.len(), "normals: predictions and targets differ in length");
        for (p, t) in predictions.chunks_exact(3).zip(targets.chunks_exact(3)) {
            if t.iter().all(|&v| v == 0.0) {
                continue;
            }
            let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let dot: f64 = p.iter().zip(t).map(|(&a, &b)| a as f64 * b as f64).sum();
            let (p_norm, t_norm) = (norm(p), norm(t));
            let cosine = if p_norm == 0.0 { 0.0 } else { dot / (p_norm * t_norm) };
            let angle = cosine.clamp(-1.0, 1.0).acos().to_degrees();
            self.count += 1;
            self.angle_sum += angle;
            for (within, threshold) in self.within.iter_mut().zip(THRESHOLDS) {
                *within += u64::from(angle < threshold);
            }
            self.histogram[(angle * BINS_PER_DEGREE as f64) as usize] += 1;
        }
    }

    /// The scores; `None` before any valid pixel.
    pub fn scores(&self) -> Option<NormalScores> {
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        // The bin of the middle angle (numpy's median averages the two middle ones for an
        // even count: the midpoint of their bins' centres).
        let bin_of = |rank: u64| {
            let mut seen = 0;
            self.histogram.iter().position(|&c| {
                seen += c;
                seen > rank
            })
        };
        let centre = |bin: Option<usize>| (bin.unwrap_or(0) as f64 + 0.5) / BINS_PER_DEGREE as f64;
        let median = (centre(bin_of((self.count - 1) / 2)) + centre(bin_of(self.count / 2))) / 2.0;
        Some(NormalScores {
            mean_angle: self.angle_sum / n,
            median_angle: median,
            within: self.within.map(|w| w as f64 / n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) {
        assert!((a - b).abs() <= tolerance, "{a} vs {b}");
    }

    #[test]
    fn segmentation_with_an_absent_class_and_ignored_pixels() {
        // 4 classes; class 3 appears nowhere; label 255 is ignored.
        // labels      0 0 1 1 2 255
        // predictions 0 1 1 1 2 3
        // class 0: TP 1, FN 1 → ½; class 1: TP 2, FP 1 → ⅔; class 2: TP 1 → 1; class 3: no union.
        let mut acc = SegmentationAccumulator::new(4, Some(255));
        acc.add(&[0, 1, 1], &[0, 0, 1]).expect("in range");
        acc.add(&[1, 2, 3], &[1, 2, 255]).expect("in range");
        let s = acc.scores().expect("pixels");
        close(s.mean_iou, (0.5 + 2.0 / 3.0 + 1.0) / 3.0, 1e-12);
        close(s.pixel_accuracy, 4.0 / 5.0, 1e-12);
        let refused = acc.add(&[0], &[7]).expect_err("label 7 of 4 classes");
        assert!(refused.contains("label 7"), "{refused}");
        assert_eq!(SegmentationAccumulator::new(3, None).scores(), None);
    }

    #[test]
    fn depth_with_invalid_pixels() {
        // Valid: (2 vs 1), (1 vs 1), (3 vs 4), (−1 vs 2); invalid targets 0 are left out.
        // abs: 1, 0, 1, 3 → 5/4; rel: 1, 0, ¼, 3/2 → 2.75/4. Ratios 2, 1, 4/3, — (prediction ≤ 0).
        let mut acc = DepthAccumulator::new(0.0);
        acc.add(&[2.0, 9.0, 1.0], &[1.0, 0.0, 1.0]);
        acc.add(&[3.0, -1.0, 5.0], &[4.0, 2.0, 0.0]);
        let s = acc.scores().expect("pixels");
        close(s.abs_error, 5.0 / 4.0, 1e-12);
        close(s.rel_error, 2.75 / 4.0, 1e-12);
        // δ < 1.25: the 1; < 1.5625: also 4/3; < 1.953: not 2.
        assert_eq!(s.deltas, [0.25, 0.5, 0.5]);
        assert_eq!(DepthAccumulator::new(0.0).scores(), None);
    }

    #[test]
    fn normals_angles_by_hand() {
        // Against target z: prediction z (0°), x+z unnormalised (45°), x (90°), and −z
        // (180°); an all-zero target is invalid. Mean 78.75; median (45 + 90)/2 = 67.5.
        let target = [0.0, 0.0, 1.0];
        let mut acc = NormalAccumulator::default();
        let predictions = [0.0, 0.0, 2.0, 3.0, 0.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 1.0, 1.0, 1.0];
        let targets: Vec<f32> = target.iter().cycle().take(12).copied().chain([0.0; 3]).collect();
        acc.add(&predictions, &targets);
        let s = acc.scores().expect("pixels");
        close(s.mean_angle, (0.0 + 45.0 + 90.0 + 180.0) / 4.0, 1e-9);
        close(s.median_angle, 67.5, 5e-4 + 1e-9);
        assert_eq!(s.within, [0.25, 0.25, 0.25]);
    }

    #[test]
    fn normals_match_numpy_reference() {
        // metrics_reference.py, "normals": 5 pixels, LibMTL's formula with numpy.
        let predictions = [0.1, 0.2, 0.97, 0.5, -0.1, 0.86, -0.3, 0.3, 0.9, 0.0, 1.0, 0.2, 0.05, 0.0, 1.0];
        let targets = [0.0, 0.0, 1.0, 0.6, 0.0, 0.8, 0.0, 0.6, 0.8, 0.0, 0.8, 0.6, 0.0, 0.0, 1.0];
        let mut acc = NormalAccumulator::default();
        acc.add(&predictions, &targets);
        let s = acc.scores().expect("pixels");
        close(s.mean_angle, 15.09089299269798, 1e-9);
        close(s.median_angle, 12.981192496903617, 5e-4 + 1e-9);
        assert_eq!(s.within, [0.4, 0.6, 1.0]);
    }
}
