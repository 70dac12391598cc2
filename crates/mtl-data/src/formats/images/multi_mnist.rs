//! MultiMNIST (Sener & Koltun, "Multi-Task Learning as Multi-Objective
//! Optimization", 2018): two overlapping digits per image, one task per digit.

use crate::{DataError, LabeledImages, Rng};

/// MultiMNIST images with both digits' labels.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiDigits {
    /// 1×28×28 images in [0, 1]; `labels` are those of the left (upper-left) digit.
    pub images: LabeledImages,
    /// The label of the right (lower-right) digit of each image.
    pub right_labels: Vec<u32>,
}

const SIDE: usize = 28;
const CANVAS: usize = 36;
/// Row and column offset of the right digit on the canvas.
const OFFSET: usize = 6;

/// Builds one MultiMNIST image per digit of `digits` (which must be 1×28×28).
///
/// Image i puts digit i (the left digit) at rows and columns 0–27 of a 36×36
/// zero canvas and digit j at rows and columns 6–33, combining them by
/// pixel-wise maximum, as the authors' loader does. j is drawn uniformly
/// from all n digits with `Rng::derive(seed, "multimnist")`, so it may be i
/// itself (the original draws the same way, `np.random.permutation(n)[:1]`).
///
/// The canvas is resized to 28×28 bilinearly with half-pixel centres
/// (OpenCV's `INTER_LINEAR`, PyTorch's `align_corners=False` without
/// antialiasing): output pixel k samples the canvas at
/// `(k + 0.5) · 36/28 − 0.5`, interpolating the two nearest canvas pixels,
/// first along rows then along columns, in f32. The authors' loader used
/// nearest-neighbour resizing (`scipy.misc.imresize(…, interp='nearest')`),
/// which drops 8 of the 36 rows and columns; bilinear keeps every stroke.
pub fn multi_mnist(digits: &LabeledImages, seed: u64) -> Result<MultiDigits, DataError> {
    let n = digits.labels.len();
    let shape = (digits.channels, digits.height, digits.width);
    if shape != (1, SIDE, SIDE) || digits.pixels.len() != n * SIDE * SIDE {
        let message = format!(
            "MultiMNIST needs 1×{SIDE}×{SIDE} digits, got {} labels and {} values of {}×{}×{} images",
            n,
            digits.pixels.len(),
            shape.0,
            shape.1,
            shape.2
        );
        // The digits come from memory, not a file; name what was given.
        return Err(DataError::invalid("<MultiMNIST source digits>", message));
    }
    let digit = |idx: usize| &digits.pixels[idx * SIDE * SIDE..(idx + 1) * SIDE * SIDE];
    let taps = bilinear_taps();
    let mut rng = Rng::derive(seed, "multimnist");
    let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
    let mut right_labels = Vec::with_capacity(n);
    for left_idx in 0..n {
        let right_idx = rng.below(n);
        compose(digit(left_idx), digit(right_idx), &taps, &mut pixels);
        right_labels.push(digits.labels[right_idx]);
    }
    let images = LabeledImages { pixels, channels: 1, height: SIDE, width: SIDE, labels: digits.labels.clone() };
    Ok(MultiDigits { images, right_labels })
}

/// Where output row (or column) k samples the canvas: `low + weight` lies
/// between the canvas pixels `low` and `high`.
struct Tap {
    low: usize,
    high: usize,
    weight: f32,
}

fn bilinear_taps() -> Vec<Tap> {
    let scale = CANVAS as f64 / SIDE as f64;
    (0..SIDE)
        .map(|k| {
            // Clamped at the borders as OpenCV does (never reached when shrinking 36 → 28).
            let source = ((k as f64 + 0.5) * scale - 0.5).clamp(0.0, (CANVAS - 1) as f64);
            let low = source.floor() as usize;
            Tap { low, high: (low + 1).min(CANVAS - 1), weight: (source - low as f64) as f32 }
        })
        .collect()
}

/// Overlays `left` and `right` on the canvas and appends the resized image to `out`.
fn compose(left: &[f32], right: &[f32], taps: &[Tap], out: &mut Vec<f32>) {
    let mut canvas = [0f32; CANVAS * CANVAS];
    for row in 0..SIDE {
        canvas[row * CANVAS..row * CANVAS + SIDE].copy_from_slice(&left[row * SIDE..(row + 1) * SIDE]);
    }
    // Only once the whole left digit is down: its lower rows share canvas rows with the right digit.
    for row in 0..SIDE {
        let shifted = (row + OFFSET) * CANVAS + OFFSET;
        for (canvas_value, &right_value) in canvas[shifted..shifted + SIDE].iter_mut().zip(&right[row * SIDE..]) {
            *canvas_value = canvas_value.max(right_value);
        }
    }
    // a + (b − a)·w rather than a·(1 − w) + b·w: exact when w is 0 or a = b.
    let lerp = |a: f32, b: f32, weight: f32| a + (b - a) * weight;
    for row_tap in taps {
        let (upper, lower) = (&canvas[row_tap.low * CANVAS..], &canvas[row_tap.high * CANVAS..]);
        for col_tap in taps {
            let along_row = |line: &[f32]| lerp(line[col_tap.low], line[col_tap.high], col_tap.weight);
            out.push(lerp(along_row(upper), along_row(lower), row_tap.weight));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::images::test_support::assert_error;

    /// A 28×28 digit, black but for `(row, col, value)`.
    fn digit(bright: &[(usize, usize, f32)]) -> Vec<f32> {
        let mut pixels = vec![0.0; SIDE * SIDE];
        for &(row, col, value) in bright {
            pixels[row * SIDE + col] = value;
        }
        pixels
    }

    #[test]
    fn digits_land_where_offset_and_resize_put_them() {
        // Output k samples canvas (k + 0.5)·36/28 − 0.5 = (9k + 1)/7: exactly canvas 4, 13, 22, 31
        // for k = 3, 10, 17, 24; canvas 6 lies 2/7 past 5 (k = 4, weight 2/7) and
        // 4/7 before 7 (k = 5, weight 1 − 4/7 = 3/7).
        type Pixels<'a> = &'a [(usize, usize, f32)];
        let cases: [(Pixels, Pixels, Pixels, f32); 2] = [
            (
                &[(4, 4, 1.0)],                // left: canvas (4, 4)
                &[(16, 25, 1.0), (0, 0, 0.6)], // right: canvas (22, 31) and (6, 6)
                &[
                    (3, 3, 1.0),
                    (17, 24, 1.0),
                    (4, 4, 0.6 * 4.0 / 49.0),
                    (5, 5, 0.6 * 9.0 / 49.0),
                    (4, 5, 0.6 * 6.0 / 49.0),
                ],
                // The canvas (6, 6) pixel spreads (2/7 + 3/7)² = 25/49 of its value.
                2.0 + 0.6 * 25.0 / 49.0,
            ),
            // Overlap: left (13, 13) and right (7, 7) both hit canvas (13, 13); the max wins.
            (&[(13, 13, 0.3)], &[(7, 7, 0.8)], &[(10, 10, 0.8)], 0.8),
        ];
        let taps = bilinear_taps();
        for (left, right, expected, total) in cases {
            let mut out = Vec::new();
            compose(&digit(left), &digit(right), &taps, &mut out);
            for &(row, col, value) in expected {
                let got = out[row * SIDE + col];
                assert!((got - value).abs() < 1e-6, "({row}, {col}): {got} vs {value}");
            }
            let sum: f32 = out.iter().sum();
            assert!((sum - total).abs() < 1e-5, "sum {sum} vs {total}: something else is lit");
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let mut exact = Vec::new();
        compose(&digit(&[(4, 4, 1.0)]), &digit(&[]), &taps, &mut exact);
        assert_eq!(exact[3 * SIDE + 3], 1.0, "a sample on a canvas pixel is that pixel, exactly");
    }

    #[test]
    fn pairs_are_drawn_from_the_seed_and_labelled_left_and_right() {
        let digits = LabeledImages {
            pixels: (0..5).flat_map(|idx| digit(&[(idx, idx, 1.0)])).collect(),
            channels: 1,
            height: SIDE,
            width: SIDE,
            labels: vec![10, 11, 12, 13, 14],
        };
        let multi = multi_mnist(&digits, 7).unwrap();
        assert_eq!(multi, multi_mnist(&digits, 7).unwrap());
        assert_ne!(multi.right_labels, multi_mnist(&digits, 8).unwrap().right_labels);
        assert_eq!(multi.images.labels, digits.labels);
        for (left_idx, &right_label) in multi.right_labels.iter().enumerate() {
            let right_idx = right_label as usize - 10;
            let mut expected = Vec::new();
            compose(
                &digits.pixels[left_idx * 784..][..784],
                &digits.pixels[right_idx * 784..][..784],
                &bilinear_taps(),
                &mut expected,
            );
            assert_eq!(multi.images.pixels[left_idx * 784..][..784], expected[..]);
        }

        let cifar_like = LabeledImages { channels: 3, height: 32, width: 32, pixels: vec![0.0; 3072], labels: vec![0] };
        assert_error(multi_mnist(&cifar_like, 0), &["MultiMNIST source digits", "needs 1×28×28", "3×32×32"]);
    }
}
