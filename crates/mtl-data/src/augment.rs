//! Image augmentation for training batches: random crop with zero padding, horizontal
//! flip, and per-channel normalisation, as torchvision's `RandomCrop(size, padding=p)`,
//! `RandomHorizontalFlip()` and `Normalize(mean, std)` do them, drawing from [`Rng`].
//!
//! [`Augmentation`] is the setting; [`Augmentation::for_images`] resolves it against a
//! task's training split (its shape and, for [`Normalization::TrainStatistics`], its
//! per-channel statistics) into an [`ImageAugmenter`], which transforms batches:
//! training batches with [`ImageAugmenter::augment_batch`], evaluation batches with
//! [`ImageAugmenter::normalize_batch`] (normalisation only).
//!
//! ```
//! use mtl_data::augment::{Augmentation, Normalization};
//! use mtl_data::{synthetic, Rng};
//! let shapes = synthetic::shapes("shapes", &synthetic::ShapesConfig::default(), 0);
//! let settings = Augmentation { crop_padding: 2, flip: true, normalize: Normalization::TrainStatistics };
//! let augmenter = settings.for_images(&shapes.train.inputs).unwrap().expect("an image task");
//! let mut pixels = vec![0.5f32; shapes.train.inputs.example_size() * 4]; // four images
//! augmenter.augment_batch(&mut pixels, &mut Rng::derive(0, "augment"));
//! assert!(pixels.iter().all(|x| x.is_finite()));
//! ```

use crate::{Inputs, Rng};

/// How images are normalised: `(x − mean_c) / std_c` for channel `c`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Normalization {
    /// Images are left as they are (the default).
    #[default]
    None,
    /// Mean and population standard deviation of each channel over the training split.
    TrainStatistics,
    /// Given per-channel values (e.g. ImageNet's).
    Given {
        /// One mean per channel.
        mean: Vec<f32>,
        /// One standard deviation per channel, each > 0.
        std: Vec<f32>,
    },
}

/// The augmentation of an experiment's image tasks; the default does nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Augmentation {
    /// Zeros added on each side before a random crop back to the image's size (0 = no crop).
    pub crop_padding: usize,
    /// Mirror each training image left to right with probability 1/2.
    pub flip: bool,
    /// Normalisation, applied to training and evaluation batches alike.
    pub normalize: Normalization,
}

impl Augmentation {
    /// Whether this is the default: nothing changes any image.
    pub fn is_off(&self) -> bool {
        *self == Augmentation::default()
    }

    /// Whether given normalisation values are usable: as many means as standard deviations,
    /// at least one, all finite, every standard deviation > 0. The message names `mean` or `std`.
    pub fn validate(&self) -> Result<(), String> {
        let Normalization::Given { mean, std } = &self.normalize else { return Ok(()) };
        if mean.is_empty() {
            return Err("mean is empty; give one value per channel".into());
        }
        if mean.len() != std.len() {
            return Err(format!("mean has {} values and std {}; give one of each per channel", mean.len(), std.len()));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(format!("mean {m} must be a finite number"));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(format!("std {s} must be a finite number > 0"));
        }
        Ok(())
    }

    /// Whether given normalisation values have one value per channel of images with `channels`.
    pub fn check_channels(&self, channels: usize) -> Result<(), String> {
        match &self.normalize {
            Normalization::Given { mean, .. } if mean.len() != channels => Err(format!(
                "normalize gives {} means and standard deviations, but the images have {channels} channel{}",
                mean.len(),
                if channels == 1 { "" } else { "s" }
            )),
            _ => Ok(()),
        }
    }

    /// The augmenter for a task whose training inputs are `train`: `None` for text, or when
    /// the augmentation is off. An error when given values do not match the channel count.
    pub fn for_images(&self, train: &Inputs) -> Result<Option<ImageAugmenter>, String> {
        let Inputs::Images { pixels, channels, height, width } = train else { return Ok(None) };
        if self.is_off() {
            return Ok(None);
        }
        self.validate()?;
        let (channels, height, width) = (*channels, *height, *width);
        let normalize = match &self.normalize {
            Normalization::None => None,
            Normalization::TrainStatistics => {
                let statistics = channel_statistics(pixels, channels, height, width);
                // A constant channel would divide by zero: scaled by 1 instead (as
                // scikit-learn's StandardScaler does), so it is only centred.
                let std = statistics.std.iter().map(|&s| if s > 0.0 { s as f32 } else { 1.0 }).collect();
                Some((statistics.mean.iter().map(|&m| m as f32).collect(), std))
            }
            Normalization::Given { mean, std } => {
                self.check_channels(channels)?;
                Some((mean.clone(), std.clone()))
            }
        };
        Ok(Some(ImageAugmenter {
            crop_padding: self.crop_padding,
            flip: self.flip,
            channels,
            height,
            width,
            normalize,
        }))
    }
}

/// Per-channel statistics of a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelStatistics {
    /// Mean of each channel over every image and pixel.
    pub mean: Vec<f64>,
    /// Population standard deviation (divided by the count, numpy's default) of each channel.
    pub std: Vec<f64>,
}

/// The mean and population standard deviation of each channel of `pixels`
/// (`n × channels × height × width`), summed in f64 image by image, pixel by pixel, in two
/// passes (the mean, then squared deviations from it): the same numbers on every platform.
/// Zeros when there are no images.
pub fn channel_statistics(pixels: &[f32], channels: usize, height: usize, width: usize) -> ChannelStatistics {
    let plane = height * width;
    let image = channels * plane;
    let n_images = pixels.len().checked_div(image).unwrap_or(0);
    let count = (n_images * plane).max(1) as f64;
    let plane_of = |i: usize, c: usize| &pixels[i * image + c * plane..i * image + (c + 1) * plane];
    let mut mean = vec![0f64; channels];
    let mut std = vec![0f64; channels];
    for c in 0..channels {
        let sum: f64 = (0..n_images).flat_map(|i| plane_of(i, c)).map(|&x| x as f64).sum();
        mean[c] = sum / count;
        let squares: f64 = (0..n_images).flat_map(|i| plane_of(i, c)).map(|&x| (x as f64 - mean[c]).powi(2)).sum();
        std[c] = (squares / count).sqrt();
    }
    ChannelStatistics { mean, std }
}

/// An [`Augmentation`] resolved for one task's images: their shape and the normalisation's
/// per-channel values.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageAugmenter {
    crop_padding: usize,
    flip: bool,
    channels: usize,
    height: usize,
    width: usize,
    /// Per-channel (mean, std).
    normalize: Option<(Vec<f32>, Vec<f32>)>,
}

/// Where one output image reads its pixels: crop offsets into the padded image and the flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placement {
    top: usize,
    left: usize,
    flipped: bool,
}

impl ImageAugmenter {
    /// The per-channel (mean, std) images are normalised with, if any.
    pub fn normalization(&self) -> Option<(&[f32], &[f32])> {
        self.normalize.as_ref().map(|(mean, std)| (mean.as_slice(), std.as_slice()))
    }

    /// Transforms a training batch (`pixels` holds whole images, `channels × height × width`
    /// each) image by image, in order: a random crop of the image padded with `crop_padding`
    /// zeros on each side (top and left offsets uniform in `[0, 2p]`), a horizontal flip
    /// with probability 1/2, then the normalisation. Each image draws the same number of
    /// values from `rng` (top, left when cropping; the flip when flipping), whatever the pixels.
    pub fn augment_batch(&self, pixels: &mut [f32], rng: &mut Rng) {
        let size = self.image_size();
        assert_eq!(pixels.len() % size.max(1), 0, "the batch holds whole images");
        if self.crop_padding > 0 || self.flip {
            let mut source = vec![0f32; size];
            let offsets = 2 * self.crop_padding + 1;
            for image in pixels.chunks_exact_mut(size) {
                let (top, left) = if self.crop_padding > 0 {
                    let top = rng.below(offsets);
                    (top, rng.below(offsets))
                } else {
                    (0, 0)
                };
                let flipped = self.flip && rng.chance(0.5);
                source.copy_from_slice(image);
                self.place(&source, image, Placement { top, left, flipped });
            }
        }
        self.normalize_batch(pixels);
    }

    /// Normalises a batch in place, `(x − mean_c) / std_c` (evaluation batches: no crop, no flip).
    pub fn normalize_batch(&self, pixels: &mut [f32]) {
        let Some((mean, std)) = &self.normalize else { return };
        let plane = self.height * self.width;
        for image in pixels.chunks_exact_mut(self.image_size().max(1)) {
            for ((channel, &m), &s) in image.chunks_exact_mut(plane.max(1)).zip(mean).zip(std) {
                for x in channel {
                    *x = (*x - m) / s;
                }
            }
        }
    }

    fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Writes into `out` the crop at `placement` of `source` padded with zeros, mirrored if
    /// `placement.flipped`: `out[c][y][x] = padded[c][y + top][x' + left]` with
    /// `x' = width − 1 − x` when flipped, `x` otherwise.
    fn place(&self, source: &[f32], out: &mut [f32], placement: Placement) {
        let (height, width, padding) = (self.height, self.width, self.crop_padding);
        let plane = height * width;
        for c in 0..self.channels {
            for y in 0..height {
                // Row of the source image, if the padded row is inside it.
                let row = (y + placement.top).checked_sub(padding).filter(|&r| r < height);
                for x in 0..width {
                    let column = if placement.flipped { width - 1 - x } else { x };
                    let column = (column + placement.left).checked_sub(padding).filter(|&col| col < width);
                    out[c * plane + y * width + x] = match (row, column) {
                        (Some(row), Some(column)) => source[c * plane + row * width + column],
                        _ => 0.0,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn augmenter(crop_padding: usize, flip: bool, channels: usize, height: usize, width: usize) -> ImageAugmenter {
        ImageAugmenter { crop_padding, flip, channels, height, width, normalize: None }
    }

    /// The 1×3×3 image 1..9 padded by 1, cropped at (top, left), not flipped.
    fn cropped(top: usize, left: usize) -> Vec<f32> {
        let source: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut out = vec![f32::NAN; 9];
        augmenter(1, false, 1, 3, 3).place(&source, &mut out, Placement { top, left, flipped: false });
        out
    }

    #[test]
    fn each_crop_offset_of_a_padded_image_by_hand() {
        // Padded by 1:      0 0 0 0 0
        //                   0 1 2 3 0
        //                   0 4 5 6 0
        //                   0 7 8 9 0
        //                   0 0 0 0 0   (top, left) picks the 3×3 window at that corner.
        let expected: [((usize, usize), [f32; 9]); 9] = [
            ((0, 0), [0., 0., 0., 0., 1., 2., 0., 4., 5.]),
            ((0, 1), [0., 0., 0., 1., 2., 3., 4., 5., 6.]),
            ((0, 2), [0., 0., 0., 2., 3., 0., 5., 6., 0.]),
            ((1, 0), [0., 1., 2., 0., 4., 5., 0., 7., 8.]),
            ((1, 1), [1., 2., 3., 4., 5., 6., 7., 8., 9.]),
            ((1, 2), [2., 3., 0., 5., 6., 0., 8., 9., 0.]),
            ((2, 0), [0., 4., 5., 0., 7., 8., 0., 0., 0.]),
            ((2, 1), [4., 5., 6., 7., 8., 9., 0., 0., 0.]),
            ((2, 2), [5., 6., 0., 8., 9., 0., 0., 0., 0.]),
        ];
        for ((top, left), want) in expected {
            assert_eq!(cropped(top, left), want, "top {top}, left {left}");
        }
    }

    #[test]
    fn random_crops_are_the_hand_cases_and_reach_every_offset() {
        // PyTorch's RandomCrop(3, padding=1): top and left uniform in {0, 1, 2}.
        let windows: Vec<Vec<f32>> = (0..9).map(|k| cropped(k / 3, k % 3)).collect();
        let mut seen = [0usize; 9];
        let mut rng = Rng::new(5);
        for _ in 0..900 {
            let mut image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
            augmenter(1, false, 1, 3, 3).augment_batch(&mut image, &mut rng);
            let k = windows.iter().position(|w| *w == image).expect("one of the nine crops");
            seen[k] += 1;
        }
        assert!(seen.iter().all(|&count| (70..130).contains(&count)), "{seen:?}");
    }

    #[test]
    fn flip_mirrors_each_row_of_each_channel_and_comes_after_the_crop() {
        // Two channels of 2×3: [1 2 3; 4 5 6] and [7 8 9; 10 11 12].
        let source: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let mut out = vec![f32::NAN; 12];
        augmenter(0, true, 2, 2, 3).place(&source, &mut out, Placement { top: 0, left: 0, flipped: true });
        assert_eq!(out, [3., 2., 1., 6., 5., 4., 9., 8., 7., 12., 11., 10.]);
        // Padding 1, crop at (1, 2) gives [2 3 0; 5 6 0]; mirrored: [0 3 2; 0 6 5].
        let one_channel = &source[..6];
        let mut out = vec![f32::NAN; 6];
        augmenter(1, true, 1, 2, 3).place(one_channel, &mut out, Placement { top: 1, left: 2, flipped: true });
        assert_eq!(out, [0., 3., 2., 0., 6., 5.]);
        // Drawn: about half the images are mirrored.
        let mut rng = Rng::new(2);
        let mut mirrored = 0;
        for _ in 0..1000 {
            let mut image = source.clone();
            augmenter(0, true, 2, 2, 3).augment_batch(&mut image, &mut rng);
            mirrored += usize::from(image[0] == 3.0);
        }
        assert!((450..550).contains(&mirrored), "{mirrored}");
    }

    /// The images of benches/reference/augment_reference.py: x[i] = ((7 i) mod 13) / 13, shape [5, 3, 4, 6].
    fn reference_images() -> Vec<f32> {
        (0..5 * 3 * 4 * 6).map(|i| ((7 * i) % 13) as f32 / 13.0).collect()
    }

    #[test]
    fn channel_statistics_match_numpy() {
        let statistics = channel_statistics(&reference_images(), 3, 4, 6);
        // benches/reference/augment_reference.py (numpy, float64, ddof = 0).
        let mean = [0.4641025740653276, 0.45384616367518904, 0.46025641982754073];
        let std = [0.2867785700191328, 0.2873740224637217, 0.2886722915566662];
        for c in 0..3 {
            assert!((statistics.mean[c] - mean[c]).abs() < 1e-12, "{statistics:?}");
            assert!((statistics.std[c] - std[c]).abs() < 1e-12, "{statistics:?}");
        }
    }

    #[test]
    fn normalisation_uses_the_train_statistics_or_the_given_values() {
        let train = Inputs::Images { pixels: reference_images().into(), channels: 3, height: 4, width: 6 };
        let settings = Augmentation { normalize: Normalization::TrainStatistics, ..Augmentation::default() };
        let resolved = settings.for_images(&train).unwrap().unwrap();
        // Normalising the training split gives each channel mean 0 and standard deviation 1.
        let Inputs::Images { pixels, .. } = &train else { unreachable!() };
        let mut pixels = pixels.to_vec();
        resolved.normalize_batch(&mut pixels);
        let after = channel_statistics(&pixels, 3, 4, 6);
        assert!(after.mean.iter().all(|m| m.abs() < 1e-6) && after.std.iter().all(|s| (s - 1.0).abs() < 1e-6));
        // Given values, by hand: (x − mean_c) / std_c.
        let given = Normalization::Given { mean: vec![0.5, 0.25], std: vec![0.5, 2.0] };
        let settings = Augmentation { normalize: given, ..Augmentation::default() };
        let two_channels =
            Inputs::Images { pixels: vec![1.0, 0.0, 0.25, 4.25].into(), channels: 2, height: 1, width: 2 };
        let resolved = settings.for_images(&two_channels).unwrap().unwrap();
        let mut pixels = vec![1.0, 0.0, 0.25, 4.25];
        resolved.augment_batch(&mut pixels, &mut Rng::new(0));
        assert_eq!(pixels, [1.0, -1.0, 0.0, 2.0]);
        // Training and evaluation batches are normalised alike.
        let mut evaluation = vec![1.0, 0.0, 0.25, 4.25];
        resolved.normalize_batch(&mut evaluation);
        assert_eq!(evaluation, pixels);
    }

    #[test]
    fn a_constant_channel_is_centred_not_divided_by_zero() {
        let train = Inputs::Images { pixels: vec![0.5, 0.5, 0.25, 0.75].into(), channels: 2, height: 1, width: 2 };
        let settings = Augmentation { normalize: Normalization::TrainStatistics, ..Augmentation::default() };
        let mut pixels = vec![0.5, 0.5, 0.25, 0.75];
        settings.for_images(&train).unwrap().unwrap().normalize_batch(&mut pixels);
        assert_eq!(pixels, [0.0, 0.0, -1.0, 1.0]);
    }

    #[test]
    fn the_same_seed_gives_the_same_bits_and_another_seed_other_crops() {
        let settings = Augmentation { crop_padding: 2, flip: true, normalize: Normalization::TrainStatistics };
        let train = Inputs::Images { pixels: reference_images().into(), channels: 3, height: 4, width: 6 };
        let resolved = settings.for_images(&train).unwrap().unwrap();
        let run = |seed: u64| {
            let mut pixels = reference_images();
            resolved.augment_batch(&mut pixels, &mut Rng::derive(seed, "augment"));
            pixels.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn each_image_draws_the_same_values_whatever_its_pixels() {
        let resolved = augmenter(2, true, 3, 4, 6);
        let after = |mut pixels: Vec<f32>| {
            let mut rng = Rng::new(9);
            resolved.augment_batch(&mut pixels, &mut rng);
            rng.next_u64()
        };
        // Three draws per image (top, left, flip), for any contents.
        let mut expected = Rng::new(9);
        for _ in 0..5 {
            expected.below(5);
            expected.below(5);
            expected.chance(0.5);
        }
        let expected = expected.next_u64();
        assert_eq!(after(reference_images()), expected);
        assert_eq!(after(vec![0.0; 5 * 72]), expected);
        assert_eq!(after(vec![f32::NAN; 5 * 72]), expected);
        // Normalisation alone draws nothing.
        let mut rng = Rng::new(9);
        let normalize_only = ImageAugmenter { normalize: Some((vec![0.0], vec![1.0])), ..augmenter(0, false, 1, 2, 2) };
        normalize_only.augment_batch(&mut [1.0, 2.0, 3.0, 4.0], &mut rng);
        assert_eq!(rng.next_u64(), Rng::new(9).next_u64());
    }

    #[test]
    fn bad_given_values_and_channel_counts_are_refused_and_text_is_left_alone() {
        let given = |mean: Vec<f32>, std: Vec<f32>| Augmentation {
            normalize: Normalization::Given { mean, std },
            ..Augmentation::default()
        };
        let message = |a: Augmentation| a.validate().unwrap_err();
        assert!(message(given(vec![], vec![])).contains("mean is empty"));
        assert!(message(given(vec![0.5], vec![0.5, 0.5])).contains("mean has 1 values and std 2"));
        assert!(message(given(vec![f32::NAN], vec![1.0])).contains("mean NaN"));
        assert!(message(given(vec![0.5], vec![0.0])).contains("std 0 must be"));
        let rgb = Inputs::Images { pixels: vec![0.0; 12].into(), channels: 3, height: 2, width: 2 };
        let error = given(vec![0.5], vec![0.5]).for_images(&rgb).unwrap_err();
        assert!(error.contains("1 means and standard deviations, but the images have 3 channels"), "{error}");
        let text = Inputs::Tokens { ids: vec![1, 2], seq_len: 2, vocab_size: 3 };
        let flip = Augmentation { flip: true, ..Augmentation::default() };
        assert_eq!(flip.for_images(&text), Ok(None));
        assert_eq!(Augmentation::default().for_images(&rgb), Ok(None));
        assert!(Augmentation::default().is_off() && !flip.is_off());
    }
}
