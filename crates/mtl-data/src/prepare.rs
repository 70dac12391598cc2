//! From what a format gives to a task's train/val/test splits: carving the
//! splits a format lacks, and tokenising texts with a vocabulary built on the
//! training split only.
//!
//! ```
//! use mtl_data::prepare::{split_indices, Amount, Carve, SplitPolicy};
//! let policy = SplitPolicy { val: Amount::Count(2), test: Amount::Fraction(0.2), carve: Carve::Tail, seed: 0 };
//! let (train, val, test) = split_indices(10, false, false, &policy).unwrap();
//! assert_eq!((train, val, test), ((0..6).collect(), vec![6, 7], vec![8, 9]));
//! ```

use std::path::Path;

use crate::formats::text::{tokenize_all, Vocabulary};
use crate::{DataError, Inputs, LabeledImages, LabeledTexts, Rng, Sourced, Split, TaskData};

/// How many examples a carved split takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// An exact count.
    Count(usize),
    /// A fraction of the examples it is carved from, rounded to the nearest count.
    Fraction(f64),
}

impl Amount {
    fn of(&self, n: usize) -> usize {
        match *self {
            Amount::Count(c) => c,
            Amount::Fraction(f) => (f * n as f64).round() as usize,
        }
    }
}

/// Which examples a carved split takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carve {
    /// A random subset, drawn from the data seed.
    Random,
    /// The last examples in file order (e.g. "test on the last 2,000 digits").
    Tail,
}

/// How to make the splits a format does not have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitPolicy {
    /// Validation examples, carved from train when the format has no validation split.
    pub val: Amount,
    /// Test examples, carved from all examples when the format has no test split.
    pub test: Amount,
    /// Random or tail.
    pub carve: Carve,
    /// Seed of random carving (the data seed, not the trial seed).
    pub seed: u64,
}

/// Tokenisation of text tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextOptions {
    /// Tokens kept per example (truncated, then padded).
    pub max_len: usize,
    /// Vocabulary size, padding and OOV included.
    pub vocab_size: usize,
    /// Minimum training-split count for a token to enter the vocabulary.
    pub min_freq: usize,
}

/// Indices of the train, val and test examples.
pub type SplitIndices = (Vec<usize>, Vec<usize>, Vec<usize>);

/// Indices of train, val and test among `n` examples, carving the splits the
/// format lacks (`has_val`, `has_test`): test first from all, then val from the rest.
/// Train keeps file order.
pub fn split_indices(n: usize, has_val: bool, has_test: bool, policy: &SplitPolicy) -> Result<SplitIndices, String> {
    let mut order: Vec<usize> = (0..n).collect();
    if policy.carve == Carve::Random {
        Rng::derive(policy.seed, "split").shuffle(&mut order);
    }
    let n_test = if has_test { 0 } else { policy.test.of(n) };
    let n_val = if has_val { 0 } else { policy.val.of(n - n_test.min(n)) };
    if n_test + n_val >= n {
        return Err(format!(
            "{n} examples cannot give {n_test} test and {n_val} validation examples and leave any to train"
        ));
    }
    let test = order.split_off(n - n_test);
    let val = order.split_off(n - n_test - n_val);
    let mut train = order;
    train.sort_unstable();
    let (mut val, mut test) = (val, test);
    val.sort_unstable();
    test.sort_unstable();
    Ok((train, val, test))
}

fn select_images(images: &LabeledImages, indices: &[usize]) -> Split {
    let size = images.channels * images.height * images.width;
    let mut pixels = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        pixels.extend_from_slice(&images.pixels[i * size..(i + 1) * size]);
    }
    let labels = indices.iter().map(|&i| images.labels[i]).collect();
    Split {
        inputs: Inputs::Images { pixels, channels: images.channels, height: images.height, width: images.width },
        labels,
    }
}

fn all_images(images: LabeledImages) -> Split {
    let LabeledImages { pixels, channels, height, width, labels } = images;
    Split { inputs: Inputs::Images { pixels, channels, height, width }, labels }
}

/// An image task from a read data set; `path` names the data in errors.
pub fn image_task(
    name: &str,
    path: &Path,
    sourced: Sourced<LabeledImages>,
    policy: &SplitPolicy,
) -> Result<TaskData, DataError> {
    let Sourced { class_names, train, val, test, .. } = sourced;
    let (train_idx, val_idx, test_idx) = split_indices(train.labels.len(), val.is_some(), test.is_some(), policy)
        .map_err(|m| DataError::invalid(path, m))?;
    let carved = |indices: &[usize], own: Option<LabeledImages>| match own {
        Some(images) => all_images(images),
        None => select_images(&train, indices),
    };
    let val = carved(&val_idx, val);
    let test = carved(&test_idx, test);
    let train = select_images(&train, &train_idx);
    Ok(TaskData { name: name.into(), class_names, train, val, test, vocabulary: None })
}

/// A text task from a read data set: the vocabulary is built on the training
/// split only, and every split is encoded with it.
pub fn text_task(
    name: &str,
    path: &Path,
    sourced: Sourced<LabeledTexts>,
    policy: &SplitPolicy,
    options: &TextOptions,
) -> Result<TaskData, DataError> {
    let Sourced { class_names, train, val, test, .. } = sourced;
    let (train_idx, val_idx, test_idx) = split_indices(train.labels.len(), val.is_some(), test.is_some(), policy)
        .map_err(|m| DataError::invalid(path, m))?;
    let tokens = tokenize_all(&train.texts);
    let vocabulary =
        Vocabulary::build(train_idx.iter().map(|&i| tokens[i].as_slice()), options.vocab_size, options.min_freq);
    let encode = |tokens: &[Vec<String>], labels: &[u32], indices: &mut dyn Iterator<Item = usize>| {
        let mut ids = Vec::new();
        let mut split_labels = Vec::new();
        for i in indices {
            ids.extend(vocabulary.encode(&tokens[i], options.max_len));
            split_labels.push(labels[i]);
        }
        Split {
            inputs: Inputs::Tokens { ids, seq_len: options.max_len, vocab_size: vocabulary.len() },
            labels: split_labels,
        }
    };
    let own_split = |own: Option<LabeledTexts>, indices: &[usize]| match own {
        Some(texts) => encode(&tokenize_all(&texts.texts), &texts.labels, &mut (0..texts.labels.len())),
        None => encode(&tokens, &train.labels, &mut indices.iter().copied()),
    };
    let val = own_split(val, &val_idx);
    let test = own_split(test, &test_idx);
    let train = encode(&tokens, &train.labels, &mut train_idx.iter().copied());
    Ok(TaskData { name: name.into(), class_names, train, val, test, vocabulary: Some(vocabulary) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(val: Amount, test: Amount, carve: Carve) -> SplitPolicy {
        SplitPolicy { val, test, carve, seed: 3 }
    }

    #[test]
    fn carving_takes_test_then_val_and_keeps_given_splits() {
        let tail = policy(Amount::Count(1), Amount::Count(2), Carve::Tail);
        assert_eq!(split_indices(6, false, false, &tail), Ok((vec![0, 1, 2], vec![3], vec![4, 5])));
        // The format has a test split: only val is carved, as 10% of the 10 training examples.
        let fraction = policy(Amount::Fraction(0.1), Amount::Fraction(0.5), Carve::Tail);
        assert_eq!(split_indices(10, false, true, &fraction), Ok(((0..9).collect(), vec![9], vec![])));
        // No validation split wanted.
        let none = policy(Amount::Count(0), Amount::Count(2), Carve::Tail);
        assert_eq!(split_indices(5, false, false, &none), Ok((vec![0, 1, 2], vec![], vec![3, 4])));
        assert!(split_indices(3, false, false, &tail).is_err(), "nothing left to train on");
    }

    #[test]
    fn random_carving_is_a_seeded_partition() {
        let random = policy(Amount::Fraction(0.2), Amount::Fraction(0.3), Carve::Random);
        let (train, val, test) = split_indices(100, false, false, &random).expect("split");
        assert_eq!((train.len(), val.len(), test.len()), (56, 14, 30));
        let mut all: Vec<usize> = train.iter().chain(&val).chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split_indices(100, false, false, &random), Ok((train.clone(), val, test)));
        let other = SplitPolicy { seed: 4, ..random };
        assert_ne!(split_indices(100, false, false, &other).expect("split").0, train);
    }

    #[test]
    fn text_vocabulary_comes_from_the_training_split_only() {
        let texts = ["good film", "bad film", "good good", "unseen words"].map(String::from).to_vec();
        let sourced = Sourced {
            class_names: vec!["neg".into(), "pos".into()],
            train: LabeledTexts { texts, labels: vec![1, 0, 1, 0] },
            val: None,
            test: None,
            report: Default::default(),
        };
        let policy = policy(Amount::Count(0), Amount::Count(1), Carve::Tail);
        let options = TextOptions { max_len: 3, vocab_size: 100, min_freq: 1 };
        let task = text_task("t", Path::new("x"), sourced, &policy, &options).expect("task");
        let vocabulary = task.vocabulary.as_ref().expect("vocabulary");
        assert_eq!(vocabulary.id("unseen"), Vocabulary::OOV, "test words are not in the vocabulary");
        let Inputs::Tokens { ids, seq_len, .. } = &task.test.inputs else { panic!("tokens") };
        assert_eq!((*seq_len, ids.as_slice()), (3, &[Vocabulary::OOV, Vocabulary::OOV, Vocabulary::PAD][..]));
        assert_eq!(task.train.labels, [1, 0, 1]);
        assert!(task.val.is_empty());
    }
}
