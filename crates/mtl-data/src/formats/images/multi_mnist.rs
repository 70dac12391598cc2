//! MultiMNIST (Sabour et al. 2017, "Dynamic Routing Between Capsules"; the two-task
//! version of Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective
//! Optimization"): two overlapping digits per image, one task per digit.
//!
//! Each split is composed from its own digits only ([`multi_mnist_splits`]), so
//! that no digit of a test image was seen in training.

use crate::{DataError, LabeledImages, Rng, Sourced};

/// MultiMNIST images with both digits' labels.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiDigits {
    /// 1×28×28 images in [0, 1]; `labels` are those of the left (upper-left) digit.
    pub images: LabeledImages,
    /// The label of the right (lower-right) digit of each image.
    pub right_labels: Vec<u32>,
}

/// How the 36×36 canvas is shrunk to 28×28.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resize {
    /// Bilinear with half-pixel centres (OpenCV's `INTER_LINEAR`, PyTorch's
    /// `interpolate(mode="bilinear", align_corners=False)` without antialiasing): output
    /// pixel k samples the canvas at `(k + 0.5)·36/28 − 0.5`, interpolating the two nearest
    /// canvas pixels, first along rows then along columns, in f32. Keeps every stroke.
    #[default]
    Bilinear,
    /// Nearest neighbour: output pixel k is canvas pixel `⌊(k + 0.5)·36/28⌋` (PIL's
    /// `NEAREST`, which the authors' `scipy.misc.imresize(…, interp='nearest')` called;
    /// PyTorch's `mode="nearest-exact"`). Drops canvas rows and columns 2, 6, 11, 15, 20,
    /// 24, 29 and 33.
    Nearest,
}

impl Resize {
    /// Both filters, in documentation order.
    pub const ALL: [Resize; 2] = [Resize::Bilinear, Resize::Nearest];

    /// The name used in experiment files and trial keys.
    pub fn name(self) -> &'static str {
        match self {
            Resize::Bilinear => "bilinear",
            Resize::Nearest => "nearest",
        }
    }

    /// Parses a name given by [`Resize::name`].
    pub fn from_name(name: &str) -> Option<Resize> {
        Resize::ALL.into_iter().find(|resize| resize.name() == name)
    }

    fn taps(self) -> Vec<Tap> {
        match self {
            Resize::Bilinear => bilinear_taps(),
            Resize::Nearest => nearest_taps(),
        }
    }
}

const SIDE: usize = 28;
const CANVAS: usize = 36;
/// Row and column offset of the right digit on the canvas.
const OFFSET: usize = 6;

/// Builds one MultiMNIST image per digit of `digits` (which must be 1×28×28), drawing
/// each partner from `rng`.
///
/// Image i puts digit i (the left digit) at rows and columns 0–27 of a 36×36
/// zero canvas and digit j at rows and columns 6–33, combining them by
/// pixel-wise maximum, then shrinks the canvas to 28×28 with `resize`, as the authors'
/// loader does (Sener & Koltun's `multi_mnist_loader.py`). j is drawn uniformly from all
/// n digits, with replacement and independently for each i, so it may be i itself, as
/// in the original (`np.random.permutation(n)[:1]`); about n/e digits are nobody's partner.
pub fn multi_mnist(digits: &LabeledImages, rng: &mut Rng, resize: Resize) -> Result<MultiDigits, DataError> {
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
    let taps = resize.taps();
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

/// Composes each split of `digits` from that split's digits alone (so no digit appears
/// in two splits), its partners drawn from `Rng::derive(seed, "multimnist/<split>")`.
/// Give it digits already carved into their splits (`prepare::carve_images`): a split
/// the source lacks stays missing.
pub fn multi_mnist_splits(
    digits: &Sourced<LabeledImages>,
    seed: u64,
    resize: Resize,
) -> Result<Sourced<MultiDigits>, DataError> {
    let compose = |split: &LabeledImages, name: &str| {
        multi_mnist(split, &mut Rng::derive(seed, &format!("multimnist/{name}")), resize)
    };
    Ok(Sourced {
        class_names: digits.class_names.clone(),
        train: compose(&digits.train, "train")?,
        val: digits.val.as_ref().map(|val| compose(val, "val")).transpose()?,
        test: digits.test.as_ref().map(|test| compose(test, "test")).transpose()?,
        report: digits.report.clone(),
    })
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

/// Nearest neighbour as a tap of weight 0: `a + (b − a)·0` is `a` exactly.
fn nearest_taps() -> Vec<Tap> {
    let scale = CANVAS as f64 / SIDE as f64;
    // (k + 0.5)·36/28 = (2k + 1)·9/14 is never a whole number, so floor has no ties.
    (0..SIDE)
        .map(|k| ((k as f64 + 0.5) * scale).floor() as usize)
        .map(|at| Tap { low: at, high: at, weight: 0.0 })
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
        // 4/7 before 7 (k = 5, weight 1 − 4/7 = 3/7). PyTorch's interpolate(mode="bilinear",
        // align_corners=False) gives the same first case: 1, 1, 0.048979547, 0.11020423,
        // 0.0734694, sum 2.3061225 (benches/reference/multimnist_reference.py).
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
    fn nearest_keeps_the_canvas_pixels_pil_keeps() {
        // Rows and columns PIL's NEAREST (the authors' imresize) and PyTorch's nearest-exact
        // keep (benches/reference/multimnist_reference.py).
        let kept =
            [0, 1, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 25, 26, 27, 28, 30, 31, 32, 34, 35];
        let taps = nearest_taps();
        assert_eq!(taps.iter().map(|tap| tap.low).collect::<Vec<_>>(), kept);
        // Each canvas pixel of the left digit (rows, columns 0–27) holds its own index / 1000:
        // the output copies exactly the kept ones.
        let left: Vec<f32> = (0..SIDE * SIDE).map(|i| ((i / SIDE) * CANVAS + i % SIDE) as f32 / 1000.0).collect();
        let mut out = Vec::new();
        compose(&left, &digit(&[]), &taps, &mut out);
        for (k, &row) in kept.iter().enumerate().filter(|(_, &row)| row < SIDE) {
            for (m, &col) in kept.iter().enumerate().filter(|(_, &col)| col < SIDE) {
                assert_eq!(out[k * SIDE + m], (row * CANVAS + col) as f32 / 1000.0, "output ({k}, {m})");
            }
        }
        assert_eq!(Resize::from_name("nearest"), Some(Resize::Nearest));
        assert_eq!(Resize::default(), Resize::Bilinear);
    }

    /// `n` one-pixel digits labelled `first`, `first + 1`, …: a label names its digit.
    fn numbered(first: u32, n: usize) -> LabeledImages {
        LabeledImages {
            pixels: (0..n).flat_map(|idx| digit(&[(idx % SIDE, idx / SIDE, 1.0)])).collect(),
            channels: 1,
            height: SIDE,
            width: SIDE,
            labels: (first..first + n as u32).collect(),
        }
    }

    #[test]
    fn pairs_are_drawn_from_the_seed_and_labelled_left_and_right() {
        let digits = numbered(10, 5);
        let compose_with = |seed| multi_mnist(&digits, &mut Rng::new(seed), Resize::Bilinear).unwrap();
        let multi = compose_with(7);
        assert_eq!(multi, compose_with(7));
        assert_ne!(multi.right_labels, compose_with(8).right_labels);
        assert_eq!(multi.images.labels, digits.labels);
        for resize in Resize::ALL {
            let multi = multi_mnist(&digits, &mut Rng::new(7), resize).unwrap();
            for (left_idx, &right_label) in multi.right_labels.iter().enumerate() {
                let right_idx = right_label as usize - 10;
                let mut expected = Vec::new();
                compose(
                    &digits.pixels[left_idx * 784..][..784],
                    &digits.pixels[right_idx * 784..][..784],
                    &resize.taps(),
                    &mut expected,
                );
                assert_eq!(multi.images.pixels[left_idx * 784..][..784], expected[..], "{resize:?}");
            }
        }

        let cifar_like = LabeledImages { channels: 3, height: 32, width: 32, pixels: vec![0.0; 3072], labels: vec![0] };
        let error = multi_mnist(&cifar_like, &mut Rng::new(0), Resize::Bilinear);
        assert_error(error, &["MultiMNIST source digits", "needs 1×28×28", "3×32×32"]);
    }

    #[test]
    fn each_split_pairs_its_own_digits_from_its_own_stream() {
        // Labels 0–59 train, 100–119 val, 200–219 test: a label tells the split of its digit.
        let digits = Sourced {
            class_names: vec![],
            train: numbered(0, 60),
            val: Some(numbered(100, 20)),
            test: Some(numbered(200, 20)),
            report: Default::default(),
        };
        let multi = multi_mnist_splits(&digits, 3, Resize::Bilinear).unwrap();
        let splits =
            [(&multi.train, 0..60), (multi.val.as_ref().unwrap(), 100..120), (multi.test.as_ref().unwrap(), 200..220)];
        for (split, own) in splits {
            let used: Vec<u32> = split.images.labels.iter().chain(&split.right_labels).copied().collect();
            assert!(used.iter().all(|label| own.contains(label)), "{own:?}: {used:?}");
        }
        assert_eq!(multi, multi_mnist_splits(&digits, 3, Resize::Bilinear).unwrap());
        let other = multi_mnist_splits(&digits, 4, Resize::Bilinear).unwrap();
        assert_ne!(other.train.right_labels, multi.train.right_labels);
        assert_ne!(other.test.unwrap().right_labels, multi.test.as_ref().unwrap().right_labels);
        // Val and test have as many digits but draw from streams of their own.
        let offset = |labels: &[u32], first: u32| labels.iter().map(|l| l - first).collect::<Vec<_>>();
        let val = multi.val.as_ref().unwrap();
        let test = multi.test.as_ref().unwrap();
        assert_ne!(offset(&val.right_labels, 100), offset(&test.right_labels, 200));
    }
}
