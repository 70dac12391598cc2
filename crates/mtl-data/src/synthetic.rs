//! The built-in tasks: generated deterministically from a seed, so the
//! quickstart needs no files.
//!
//! - [`shapes`]: 28×28 grayscale outlines of six shapes (ring, square,
//!   diamond, triangle, plus, cross) with random position, size, stroke,
//!   rotation, contrast, pixel noise and a distracting stroke. Square/diamond
//!   and plus/cross differ only by a 45° turn, and rotations of ±20° make them
//!   harder to tell apart.
//! - [`reviews`]: review-like word sequences whose label (negative/positive)
//!   is the sign of the summed polarity of their sentiment words, where a
//!   preceding negator ("not", "never", …) flips a word's polarity. Deciding it
//!   needs word choice, negation and a rough count.

use crate::{Inputs, Rng, Split, TaskData};

/// Sizes and difficulty of the shapes task.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapesConfig {
    /// Training examples.
    pub n_train: usize,
    /// Validation examples.
    pub n_val: usize,
    /// Test examples.
    pub n_test: usize,
    /// Standard deviation of the Gaussian pixel noise.
    pub noise: f64,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        ShapesConfig { n_train: 3000, n_val: 500, n_test: 1000, noise: 0.35 }
    }
}

/// Sizes and difficulty of the reviews task.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewsConfig {
    /// Training examples.
    pub n_train: usize,
    /// Validation examples.
    pub n_val: usize,
    /// Test examples.
    pub n_test: usize,
    /// Tokens per review (padded).
    pub seq_len: usize,
    /// Fraction of labels flipped at random.
    pub label_noise: f64,
}

impl Default for ReviewsConfig {
    fn default() -> Self {
        ReviewsConfig { n_train: 3000, n_val: 500, n_test: 1000, seq_len: 32, label_noise: 0.03 }
    }
}

/// Class names of [`shapes`], in label order.
pub const SHAPE_NAMES: [&str; 6] = ["ring", "square", "diamond", "triangle", "plus", "cross"];

const SIDE: usize = 28;

/// The shapes task, generated from `seed`.
pub fn shapes(name: &str, config: &ShapesConfig, seed: u64) -> TaskData {
    // One stream per split: changing n_train leaves val and test as they were.
    let split = |n: usize, part: &str| {
        let mut rng = Rng::derive(seed, &format!("synthetic-shapes/{part}"));
        let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let label = rng.below(SHAPE_NAMES.len());
            pixels.extend(draw_shape(label, config.noise, &mut rng));
            labels.push(label as u32);
        }
        Split::classified(Inputs::Images { pixels: pixels.into(), channels: 1, height: SIDE, width: SIDE }, labels)
    };
    let (train, val, test) = (split(config.n_train, "train"), split(config.n_val, "val"), split(config.n_test, "test"));
    TaskData {
        name: name.into(),
        class_names: SHAPE_NAMES.map(String::from).to_vec(),
        train,
        val,
        test,
        vocabulary: None,
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// Distance from a point (in the shape's own frame, radius `r`) to the outline of shape `label`.
fn outline_distance(label: usize, (x, y): (f64, f64), r: f64) -> f64 {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    match label {
        0 => ((x * x + y * y).sqrt() - r).abs(),
        1 => (x.abs().max(y.abs()) - r * 0.8).abs(),
        2 => (x.abs() + y.abs() - r * 1.1).abs() * s,
        3 => {
            let corners: Vec<(f64, f64)> = (0..3)
                .map(|k| {
                    let a = -std::f64::consts::FRAC_PI_2 + k as f64 * 2.0 * std::f64::consts::PI / 3.0;
                    (r * a.cos(), r * a.sin())
                })
                .collect();
            (0..3).map(|k| segment_distance((x, y), corners[k], corners[(k + 1) % 3])).fold(f64::INFINITY, f64::min)
        }
        4 => segment_distance((x, y), (-r, 0.0), (r, 0.0)).min(segment_distance((x, y), (0.0, -r), (0.0, r))),
        _ => {
            let d = r * s;
            segment_distance((x, y), (-d, -d), (d, d)).min(segment_distance((x, y), (-d, d), (d, -d)))
        }
    }
}

fn draw_shape(label: usize, noise: f64, rng: &mut Rng) -> Vec<f32> {
    let radius = rng.range(5.0, 10.0);
    let margin = radius + 2.0;
    let centre = (rng.range(margin, SIDE as f64 - margin), rng.range(margin, SIDE as f64 - margin));
    let angle = rng.range(-20.0, 20.0).to_radians();
    let half_stroke = rng.range(0.6, 1.4);
    let contrast = rng.range(0.5, 1.0);
    // A short distracting stroke somewhere in the image.
    let stroke_start = (rng.range(0.0, SIDE as f64), rng.range(0.0, SIDE as f64));
    let stroke_angle = rng.range(0.0, std::f64::consts::PI);
    let stroke_len = rng.range(3.0, 8.0);
    let stroke_end =
        (stroke_start.0 + stroke_len * stroke_angle.cos(), stroke_start.1 + stroke_len * stroke_angle.sin());
    let (sin, cos) = angle.sin_cos();
    let mut pixels = Vec::with_capacity(SIDE * SIDE);
    for row in 0..SIDE {
        for col in 0..SIDE {
            let (px, py) = (col as f64 + 0.5, row as f64 + 0.5);
            let (dx, dy) = (px - centre.0, py - centre.1);
            let local = (cos * dx + sin * dy, -sin * dx + cos * dy);
            let ink = (half_stroke + 0.5 - outline_distance(label, local, radius)).clamp(0.0, 1.0);
            let clutter = (1.0 - segment_distance((px, py), stroke_start, stroke_end)).clamp(0.0, 1.0) * 0.8;
            let value = contrast * ink.max(clutter) + noise * rng.normal();
            pixels.push(value.clamp(0.0, 1.0) as f32);
        }
    }
    pixels
}

/// Vocabulary of [`reviews`]: id 0 is padding, then the words below in order.
pub fn review_vocabulary() -> Vec<&'static str> {
    let mut vocab = vec!["<pad>"];
    vocab.extend(NEUTRAL);
    vocab.extend(POSITIVE);
    vocab.extend(NEGATIVE);
    vocab.extend(NEGATORS);
    vocab.extend(INTENSIFIERS);
    vocab
}

const NEUTRAL: [&str; 40] = [
    "the",
    "a",
    "movie",
    "film",
    "plot",
    "story",
    "actor",
    "actors",
    "cast",
    "scene",
    "scenes",
    "ending",
    "script",
    "director",
    "was",
    "is",
    "and",
    "with",
    "of",
    "it",
    "this",
    "that",
    "music",
    "camera",
    "dialogue",
    "characters",
    "pacing",
    "sequel",
    "i",
    "we",
    "saw",
    "watched",
    "felt",
    "seemed",
    "overall",
    "again",
    "some",
    "parts",
    "also",
    "then",
];
const POSITIVE: [&str; 12] = [
    "good",
    "great",
    "excellent",
    "wonderful",
    "brilliant",
    "moving",
    "funny",
    "superb",
    "charming",
    "solid",
    "gripping",
    "beautiful",
];
const NEGATIVE: [&str; 12] =
    ["bad", "awful", "terrible", "boring", "dull", "weak", "clumsy", "tedious", "poor", "bland", "messy", "painful"];
const NEGATORS: [&str; 4] = ["not", "never", "hardly", "no"];
const INTENSIFIERS: [&str; 3] = ["very", "really", "quite"];

/// The reviews task, generated from `seed`. Labels: 0 = negative, 1 = positive.
pub fn reviews(name: &str, config: &ReviewsConfig, seed: u64) -> TaskData {
    let vocab_size = review_vocabulary().len();
    let id_of = |offset: usize, i: usize| (1 + offset + i) as u32;
    let (pos_at, neg_at) = (NEUTRAL.len(), NEUTRAL.len() + POSITIVE.len());
    let negator_at = neg_at + NEGATIVE.len();
    let intensifier_at = negator_at + NEGATORS.len();

    let split = |n: usize, part: &str| {
        let mut rng = Rng::derive(seed, &format!("synthetic-reviews/{part}"));
        let mut ids = Vec::with_capacity(n * config.seq_len);
        let mut labels = Vec::with_capacity(n);
        while labels.len() < n {
            // Phrases stay contiguous: fillers and phrases are segments, shuffled as wholes.
            let n_phrases = 1 + rng.below(3);
            let n_fillers = rng.range(config.seq_len as f64 / 3.0, (config.seq_len - 3 * n_phrases) as f64) as usize;
            let mut segments: Vec<Vec<u32>> =
                (0..n_fillers).map(|_| vec![id_of(0, rng.below(NEUTRAL.len()))]).collect();
            let mut polarity = 0i32;
            for _ in 0..n_phrases {
                let positive = rng.chance(0.5);
                let negated = rng.chance(0.35);
                let mut phrase = Vec::new();
                if negated {
                    phrase.push(id_of(negator_at, rng.below(NEGATORS.len())));
                }
                if rng.chance(0.3) {
                    phrase.push(id_of(intensifier_at, rng.below(INTENSIFIERS.len())));
                }
                let word = if positive { (pos_at, POSITIVE.len()) } else { (neg_at, NEGATIVE.len()) };
                phrase.push(id_of(word.0, rng.below(word.1)));
                polarity += if positive != negated { 1 } else { -1 };
                let at = rng.below(segments.len() + 1);
                segments.insert(at, phrase);
            }
            let mut words: Vec<u32> = segments.concat();
            if polarity == 0 {
                continue; // ambiguous: draw another review
            }
            let mut label = (polarity > 0) as u32;
            if rng.chance(config.label_noise) {
                label = 1 - label;
            }
            words.resize(config.seq_len, 0);
            ids.extend(words);
            labels.push(label);
        }
        Split::classified(Inputs::Tokens { ids, seq_len: config.seq_len, vocab_size }, labels)
    };
    let (train, val, test) = (split(config.n_train, "train"), split(config.n_val, "val"), split(config.n_test, "test"));
    TaskData {
        name: name.into(),
        class_names: vec!["negative".into(), "positive".into()],
        train,
        val,
        test,
        vocabulary: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_shapes(seed: u64) -> TaskData {
        shapes("s", &ShapesConfig { n_train: 60, n_val: 6, n_test: 12, noise: 0.3 }, seed)
    }

    #[test]
    fn shapes_have_the_documented_layout_and_are_deterministic() {
        let a = small_shapes(1);
        assert_eq!(a, small_shapes(1));
        assert_ne!(a.train, small_shapes(2).train);
        let more = shapes("s", &ShapesConfig { n_train: 90, n_val: 6, n_test: 12, noise: 0.3 }, 1);
        assert_eq!((&more.val, &more.test), (&a.val, &a.test), "val and test do not depend on n_train");
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (60, 6, 12));
        let Inputs::Images { pixels, channels, height, width } = &a.train.inputs else { panic!("not images") };
        assert_eq!((*channels, *height, *width), (1, 28, 28));
        assert_eq!(pixels.len(), 60 * 28 * 28);
        assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!(a.train.labels().iter().all(|&l| l < 6));
    }

    #[test]
    fn a_noiseless_ring_has_its_ink_on_the_circle() {
        // Ink is full within half a stroke of the outline and zero far from it.
        assert_eq!(outline_distance(0, (3.0, 4.0), 5.0), 0.0);
        assert!((outline_distance(0, (0.0, 0.0), 5.0) - 5.0).abs() < 1e-12);
        // Plus and cross: the centre lies on both; (r, 0) lies on the plus only.
        assert_eq!(outline_distance(4, (0.0, 0.0), 6.0), 0.0);
        assert_eq!(outline_distance(5, (0.0, 0.0), 6.0), 0.0);
        assert_eq!(outline_distance(4, (6.0, 0.0), 6.0), 0.0);
        assert!(outline_distance(5, (6.0, 0.0), 6.0) > 2.0);
    }

    #[test]
    fn review_labels_follow_polarity_with_negation() {
        let config = ReviewsConfig { n_train: 400, n_val: 0, n_test: 0, seq_len: 24, label_noise: 0.0 };
        let data = reviews("r", &config, 3);
        let vocab = review_vocabulary();
        let Inputs::Tokens { ids, seq_len, vocab_size } = &data.train.inputs else { panic!("not tokens") };
        assert_eq!((*seq_len, *vocab_size), (24, vocab.len()));
        for (example, &label) in ids.chunks(24).zip(data.train.labels()) {
            // Recompute the label from the words, as the documentation defines it.
            let words: Vec<&str> = example.iter().map(|&i| vocab[i as usize]).collect();
            let mut polarity = 0;
            for (i, word) in words.iter().enumerate() {
                let sign = if POSITIVE.contains(word) {
                    1
                } else if NEGATIVE.contains(word) {
                    -1
                } else {
                    continue;
                };
                let before: Vec<&str> = words[i.saturating_sub(2)..i].to_vec();
                let negated = match before.as_slice() {
                    [.., n] if NEGATORS.contains(n) => true,
                    [n, m] if NEGATORS.contains(n) && INTENSIFIERS.contains(m) => true,
                    _ => false,
                };
                polarity += if negated { -sign } else { sign };
            }
            assert_ne!(polarity, 0);
            assert_eq!(label, (polarity > 0) as u32, "{words:?}");
        }
        let positives = data.train.labels().iter().filter(|&&l| l == 1).count();
        assert!((150..250).contains(&positives), "{positives}");
    }
}
