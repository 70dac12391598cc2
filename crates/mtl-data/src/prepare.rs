//! From what a format gives to a task's train/val/test splits: carving the
//! splits a format lacks, and tokenising texts with a vocabulary built on
//! training splits only (one task's, or several tasks' that share it).
//!
//! ```
//! use mtl_data::prepare::{split_indices, Amount, Carve, Keep, SplitPolicy};
//! let (val, test) = (Amount::Count(2), Amount::Fraction(0.2));
//! let policy = SplitPolicy { val, test, carve: Carve::Tail, seed: 0, keep: Keep::ALL };
//! let (train, val, test) = split_indices(10, false, false, &policy).unwrap();
//! assert_eq!((train, val, test), ((0..6).collect(), vec![6, 7], vec![8, 9]));
//! ```

use std::path::Path;

use crate::formats::table::Categories;
use crate::formats::text::{tokenize_all, Vocabulary};
use crate::{DataError, Inputs, LabeledImages, LabeledTexts, Rng, Sourced, Split, TableRows, TaskData};

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
    /// How many examples each split keeps, after carving.
    pub keep: Keep,
}

/// How many examples each split keeps after carving (`None`: all of them): a random
/// subset drawn from the data seed, in file order, for a quick run on a large data set.
/// Asking for more than a split has is an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    /// Training examples kept.
    pub train: Option<usize>,
    /// Validation examples kept.
    pub val: Option<usize>,
    /// Test examples kept.
    pub test: Option<usize>,
}

impl Keep {
    /// Every example of every split.
    pub const ALL: Keep = Keep { train: None, val: None, test: None };
}

/// `indices` cut to `n` of them drawn from `seed` (kept in order), or all where `n` is `None`.
pub(crate) fn subsample(indices: Vec<usize>, n: Option<usize>, seed: u64, split: &str) -> Result<Vec<usize>, String> {
    let Some(n) = n else { return Ok(indices) };
    if n > indices.len() {
        return Err(format!("n_{split} = {n}, but the {split} split has {} examples", indices.len()));
    }
    let mut order: Vec<usize> = (0..indices.len()).collect();
    Rng::derive(seed, &format!("keep-{split}")).shuffle(&mut order);
    let mut kept: Vec<usize> = order[..n].iter().map(|&i| indices[i]).collect();
    kept.sort_unstable();
    Ok(kept)
}

/// The indices of each split (of the examples it is taken from: train's for carved
/// splits, the format's own otherwise) after carving and [`Keep`]; `lengths` are those of
/// the format's train, val and test splits (`None`: not in the format).
pub fn kept_indices(lengths: [Option<usize>; 3], policy: &SplitPolicy) -> Result<SplitIndices, String> {
    let [train, val, test] = lengths;
    let (train_idx, val_idx, test_idx) = split_indices(train.unwrap_or(0), val.is_some(), test.is_some(), policy)?;
    let own = |len: Option<usize>, carved: Vec<usize>| len.map_or(carved, |len| (0..len).collect());
    let keep = policy.keep;
    Ok((
        subsample(train_idx, keep.train, policy.seed, "train")?,
        subsample(own(val, val_idx), keep.val, policy.seed, "val")?,
        subsample(own(test, test_idx), keep.test, policy.seed, "test")?,
    ))
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

fn select_images(images: &LabeledImages, indices: &[usize]) -> LabeledImages {
    let size = images.channels * images.height * images.width;
    let mut pixels = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        pixels.extend_from_slice(&images.pixels[i * size..(i + 1) * size]);
    }
    let labels = indices.iter().map(|&i| images.labels[i]).collect();
    LabeledImages { pixels, labels, ..*images }
}

fn all_images(images: LabeledImages) -> Split {
    let LabeledImages { pixels, channels, height, width, labels } = images;
    Split::classified(Inputs::Images { pixels: pixels.into(), channels, height, width }, labels)
}

/// The read images with every split: those the format lacks carved from its training
/// examples by `policy` (`val` and `test` are always there after). `path` names the data in errors.
pub fn carve_images(
    path: &Path,
    sourced: Sourced<LabeledImages>,
    policy: &SplitPolicy,
) -> Result<Sourced<LabeledImages>, DataError> {
    let Sourced { class_names, train, val, test, report } = sourced;
    let lengths =
        [Some(train.labels.len()), val.as_ref().map(|v| v.labels.len()), test.as_ref().map(|t| t.labels.len())];
    let (train_idx, val_idx, test_idx) = kept_indices(lengths, policy).map_err(|m| DataError::invalid(path, m))?;
    // A split of the format's own is copied only when it loses examples.
    let pick = |own: Option<LabeledImages>, indices: &[usize]| match own {
        Some(own) if own.labels.len() == indices.len() => own,
        Some(own) => select_images(&own, indices),
        None => select_images(&train, indices),
    };
    let (val, test) = (pick(val, &val_idx), pick(test, &test_idx));
    let train = select_images(&train, &train_idx);
    Ok(Sourced { class_names, train, val: Some(val), test: Some(test), report })
}

/// An image task from a read data set; `path` names the data in errors.
pub fn image_task(
    name: &str,
    path: &Path,
    sourced: Sourced<LabeledImages>,
    policy: &SplitPolicy,
) -> Result<TaskData, DataError> {
    let Sourced { class_names, train, val, test, .. } = carve_images(path, sourced, policy)?;
    let (val, test) = (val.expect("carved"), test.expect("carved"));
    Ok(TaskData {
        name: name.into(),
        class_names,
        train: all_images(train),
        val: all_images(val),
        test: all_images(test),
        vocabulary: None,
    })
}

/// A table task from a read table: splits carved as for images, then each numeric
/// column standardised with the training split's mean and standard deviation (a column
/// constant on train is only centred) and each categorical column one-hot over the
/// training split's categories ([`Categories`]), or, if embedded, an id for an embedding
/// `embedding_dim` wide. `path` names the data in errors.
pub fn table_task(
    name: &str,
    path: &Path,
    sourced: Sourced<TableRows>,
    policy: &SplitPolicy,
    embedding_dim: usize,
) -> Result<TaskData, DataError> {
    let Sourced { class_names, train, val, test, .. } = sourced;
    let lengths =
        [Some(train.targets.len()), val.as_ref().map(|v| v.targets.len()), test.as_ref().map(|t| t.targets.len())];
    let (train_idx, val_idx, test_idx) = kept_indices(lengths, policy).map_err(|m| DataError::invalid(path, m))?;
    let categories = Categories::of(&train, &train_idx);
    let n = train_idx.len() + val_idx.len() + test_idx.len();
    if let Some(message) = categories.too_many(&train, n) {
        return Err(DataError::invalid(path, message));
    }
    let (width, n_numeric) = (categories.width(&train), train.n_numeric);
    let embedded = categories.embedded(&train, embedding_dim);
    let numeric = |own: &TableRows, indices: &[usize]| -> Vec<f32> {
        indices.iter().flat_map(|&i| &own.numeric[i * n_numeric..(i + 1) * n_numeric]).copied().collect()
    };
    let standardize = standardizer(&numeric(&train, &train_idx), n_numeric, n_numeric);
    let split = |own: Option<&TableRows>, indices: &[usize]| {
        let own = own.unwrap_or(&train);
        let mut values = numeric(own, indices);
        standardize(&mut values);
        let values = categories.encode(own, indices, &values);
        Split {
            inputs: Inputs::Features { values: values.into(), width, embedded },
            targets: own.targets.select(indices),
        }
    };
    let (val, test) = (split(val.as_ref(), &val_idx), split(test.as_ref(), &test_idx));
    let train = split(None, &train_idx);
    Ok(TaskData { name: name.into(), class_names, train, val, test, vocabulary: None })
}

/// Standardises the first `numeric` values of each `width`-value row with the statistics
/// of `train`'s rows (in f64).
fn standardizer(train: &[f32], width: usize, numeric: usize) -> impl Fn(&mut [f32]) {
    let (mut mean, mut scale) = (vec![0f64; numeric], vec![1f64; numeric]);
    let rows: Vec<&[f32]> = train.chunks_exact(width.max(1)).collect();
    let n = rows.len().max(1) as f64;
    for c in 0..numeric {
        mean[c] = rows.iter().map(|r| r[c] as f64).sum::<f64>() / n;
        let variance = rows.iter().map(|r| (r[c] as f64 - mean[c]).powi(2)).sum::<f64>() / n;
        scale[c] = if variance > 0.0 { variance.sqrt() } else { 1.0 };
    }
    move |values: &mut [f32]| {
        for row in values.chunks_exact_mut(width.max(1)) {
            for c in 0..numeric {
                row[c] = ((row[c] as f64 - mean[c]) / scale[c]) as f32;
            }
        }
    }
}

/// A text task from a read data set, with a vocabulary of its own: built on its
/// training split only, and every split encoded with it. Tasks that share one
/// vocabulary go through [`carve_texts`], [`shared_vocabulary`] and [`encode_texts`].
pub fn text_task(
    name: &str,
    path: &Path,
    sourced: Sourced<LabeledTexts>,
    policy: &SplitPolicy,
    options: &TextOptions,
) -> Result<TaskData, DataError> {
    let carved = carve_texts(name, path, sourced, policy)?;
    let vocabulary = shared_vocabulary(&[&carved], options.vocab_size, options.min_freq);
    Ok(encode_texts(carved, &vocabulary, options.max_len))
}

/// A text task's examples in their three splits, before any vocabulary: the training
/// split tokenised (what a vocabulary counts), validation and test as text.
#[derive(Clone, Debug, PartialEq)]
pub struct CarvedTexts {
    /// The task's name.
    pub name: String,
    /// Class names, indexed by label.
    pub class_names: Vec<String>,
    /// The training examples' tokens.
    pub train_tokens: Vec<Vec<String>>,
    /// The training examples' labels.
    pub train_labels: Vec<u32>,
    /// Validation examples (the format's own, or carved from train).
    pub val: LabeledTexts,
    /// Test examples (the format's own, or carved).
    pub test: LabeledTexts,
}

/// Carves the splits `sourced` lacks and tokenises its training split; `path` names the data in errors.
pub fn carve_texts(
    name: &str,
    path: &Path,
    sourced: Sourced<LabeledTexts>,
    policy: &SplitPolicy,
) -> Result<CarvedTexts, DataError> {
    let Sourced { class_names, train, val, test, .. } = sourced;
    let lengths =
        [Some(train.labels.len()), val.as_ref().map(|v| v.labels.len()), test.as_ref().map(|t| t.labels.len())];
    let (train_idx, val_idx, test_idx) = kept_indices(lengths, policy).map_err(|m| DataError::invalid(path, m))?;
    // The index lists of one source are disjoint, so each text moves out once.
    let take = |source: &mut LabeledTexts, indices: &[usize]| LabeledTexts {
        texts: indices.iter().map(|&i| std::mem::take(&mut source.texts[i])).collect(),
        labels: indices.iter().map(|&i| source.labels[i]).collect(),
    };
    let mut train = train;
    let mut pick = |own: Option<LabeledTexts>, indices: &[usize]| match own {
        Some(own) if own.labels.len() == indices.len() => own,
        Some(mut own) => take(&mut own, indices),
        None => take(&mut train, indices),
    };
    let (val, test) = (pick(val, &val_idx), pick(test, &test_idx));
    let train = take(&mut train, &train_idx);
    Ok(CarvedTexts {
        name: name.into(),
        class_names,
        train_tokens: tokenize_all(&train.texts),
        train_labels: train.labels,
        val,
        test,
    })
}

/// One vocabulary for every task in `tasks`, from their training splits only: a token's
/// count is summed over those splits, tokens counted fewer than `min_freq` times are
/// dropped, the rest ordered by count (highest first, ties by the token's bytes), then
/// cut to `vocab_size` ids, PAD and OOV included ([`Vocabulary::build`]). The order of
/// `tasks` does not matter; id k is the same word for each of them.
pub fn shared_vocabulary(tasks: &[&CarvedTexts], vocab_size: usize, min_freq: usize) -> Vocabulary {
    let documents = tasks.iter().flat_map(|task| task.train_tokens.iter().map(Vec::as_slice));
    Vocabulary::build(documents, vocab_size, min_freq)
}

/// Encodes every split of `carved` with `vocabulary`, `max_len` ids per example.
pub fn encode_texts(carved: CarvedTexts, vocabulary: &Vocabulary, max_len: usize) -> TaskData {
    let CarvedTexts { name, class_names, train_tokens, train_labels, val, test } = carved;
    let encode = |tokens: &[Vec<String>], labels: Vec<u32>| {
        let mut ids = Vec::with_capacity(tokens.len() * max_len);
        for example in tokens {
            ids.extend(vocabulary.encode(example, max_len));
        }
        Split::classified(Inputs::Tokens { ids, seq_len: max_len, vocab_size: vocabulary.len() }, labels)
    };
    let val = encode(&tokenize_all(&val.texts), val.labels);
    let test = encode(&tokenize_all(&test.texts), test.labels);
    let train = encode(&train_tokens, train_labels);
    TaskData { name, class_names, train, val, test, vocabulary: Some(vocabulary.clone()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(val: Amount, test: Amount, carve: Carve) -> SplitPolicy {
        SplitPolicy { val, test, carve, seed: 3, keep: Keep::ALL }
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
    fn keep_takes_a_seeded_subset_of_each_split_in_file_order() {
        let keep = Keep { train: Some(3), val: Some(1), test: None };
        let policy = SplitPolicy { keep, ..policy(Amount::Count(2), Amount::Count(2), Carve::Tail) };
        // 10 examples: test 8–9, val 6–7 carved; then 3 of train's 0–5 and 1 of val's kept.
        let (train, val, test) = kept_indices([Some(10), None, None], &policy).expect("kept");
        assert_eq!((train.len(), val.len(), test), (3, 1, vec![8, 9]));
        assert!(train.windows(2).all(|w| w[0] < w[1]) && train.iter().all(|&i| i < 6), "{train:?}");
        assert!(val[0] == 6 || val[0] == 7, "{val:?}");
        assert_eq!(kept_indices([Some(10), None, None], &policy), Ok((train.clone(), val, vec![8, 9])));
        let other = SplitPolicy { seed: 11, ..policy };
        let draws: Vec<Vec<usize>> = (0..8)
            .map(|seed| kept_indices([Some(10), None, None], &SplitPolicy { seed, ..other }).expect("kept").0)
            .collect();
        assert!(draws.iter().any(|d| *d != train), "the seed draws the subset");
        // The format's own test split (5 examples) is cut too.
        let own = SplitPolicy { keep: Keep { test: Some(2), ..Keep::ALL }, ..policy };
        let (_, _, test) = kept_indices([Some(10), None, Some(5)], &own).expect("kept");
        assert!(test.len() == 2 && test.iter().all(|&i| i < 5), "{test:?}");
        let greedy = SplitPolicy { keep: Keep { train: Some(7), ..Keep::ALL }, ..policy };
        assert_eq!(
            kept_indices([Some(10), None, None], &greedy),
            Err("n_train = 7, but the train split has 6 examples".to_owned())
        );
    }

    /// A text task whose `train` and `test` texts are given (labels all 0), carved but not yet encoded.
    fn carved(name: &str, train: &[&str], test: &[&str]) -> CarvedTexts {
        let texts = |texts: &[&str]| LabeledTexts {
            texts: texts.iter().map(|t| t.to_string()).collect(),
            labels: vec![0; texts.len()],
        };
        let sourced = Sourced {
            class_names: vec!["only".into()],
            train: texts(train),
            val: None,
            test: Some(texts(test)),
            report: Default::default(),
        };
        let none = policy(Amount::Count(0), Amount::Count(0), Carve::Tail);
        carve_texts(name, Path::new(name), sourced, &none).expect("carve")
    }

    /// The words of `split`'s examples, read back through `vocabulary` (padding left out).
    fn decoded(split: &Split, vocabulary: &Vocabulary) -> Vec<Vec<String>> {
        let Inputs::Tokens { ids, seq_len, .. } = &split.inputs else { panic!("tokens") };
        ids.chunks(*seq_len)
            .map(|example| {
                let words = example.iter().filter(|&&id| id != Vocabulary::PAD);
                words.map(|&id| vocabulary.token(id).expect("id in the vocabulary").to_string()).collect()
            })
            .collect()
    }

    #[test]
    fn a_token_id_means_the_same_word_for_every_task_that_shares_the_vocabulary() {
        let films = || carved("films", &["the film was great", "great acting", "the plot was dull"], &["great film"]);
        let phones = || carved("phones", &["the battery died", "battery lasts", "the screen cracked"], &["battery"]);
        // Apart, id 2 is each task's own most frequent word (ties by bytes): "great" for
        // one, "battery" for the other. That is what sharing must not do.
        let alone = |c: CarvedTexts| shared_vocabulary(&[&c], 100, 1).token(2).map(str::to_owned);
        assert_eq!((alone(films()), alone(phones())), (Some("great".into()), Some("battery".into())));

        let (films, phones) = (films(), phones());
        let vocabulary = shared_vocabulary(&[&films, &phones], 100, 1);
        // the: 4, battery/great/was: 2 each, then the words seen once, by bytes.
        let words: Vec<&str> = (2..vocabulary.len() as u32).filter_map(|id| vocabulary.token(id)).collect();
        let expected =
            ["the", "battery", "great", "was", "acting", "cracked", "died", "dull", "film", "lasts", "plot", "screen"];
        assert_eq!(words, expected);
        let films = encode_texts(films, &vocabulary, 5);
        let phones = encode_texts(phones, &vocabulary, 5);
        assert_eq!(films.vocabulary, phones.vocabulary, "one id → word map");
        for task in [&films, &phones] {
            let map = task.vocabulary.as_ref().expect("vocabulary");
            assert_eq!(map, &vocabulary);
            for (id, word) in words.iter().enumerate() {
                assert_eq!(map.id(word), id as u32 + 2, "{word} in {}", task.name);
            }
        }
        let text = |texts: &[&str]| -> Vec<Vec<String>> {
            texts.iter().map(|t| t.split(' ').map(String::from).collect()).collect()
        };
        assert_eq!(
            decoded(&films.train, &vocabulary),
            text(&["the film was great", "great acting", "the plot was dull"])
        );
        assert_eq!(decoded(&films.test, &vocabulary), text(&["great film"]));
        assert_eq!(
            decoded(&phones.train, &vocabulary),
            text(&["the battery died", "battery lasts", "the screen cracked"])
        );
        assert_eq!(decoded(&phones.test, &vocabulary), text(&["battery"]));
        let Inputs::Tokens { ids, vocab_size, .. } = &phones.test.inputs else { panic!("tokens") };
        assert_eq!((ids.as_slice(), *vocab_size), (&[3, 0, 0, 0, 0][..], 14));
    }

    #[test]
    fn a_shared_vocabulary_sums_counts_then_applies_min_freq_then_orders_by_bytes_then_caps() {
        // a: 2 + 0, b: 1 + 1, c: 1 + 1, d: 1 + 0, e: 0 + 2; "z" is frequent only in a test split.
        let first = carved("first", &["b a c a", "d"], &["z z z z z"]);
        let second = carved("second", &["c b e", "e"], &["z z z z z"]);
        let words = |vocabulary: &Vocabulary| -> Vec<String> {
            (2..vocabulary.len() as u32).filter_map(|id| vocabulary.token(id)).map(str::to_owned).collect()
        };
        // min_freq 2 on the sums keeps b and c (once in each task), which each task alone would drop;
        // all four tie at 2 and are ordered by their bytes; d (1) is dropped; z never counts.
        assert_eq!(words(&shared_vocabulary(&[&first, &second], 100, 2)), ["a", "b", "c", "e"]);
        assert_eq!(words(&shared_vocabulary(&[&first], 100, 2)), ["a"]);
        assert_eq!(words(&shared_vocabulary(&[&second], 100, 2)), ["e"]);
        // The cap comes last: 5 ids are PAD, OOV and the first three kept.
        assert_eq!(words(&shared_vocabulary(&[&first, &second], 5, 2)), ["a", "b", "c"]);
        // Task order does not matter.
        assert_eq!(shared_vocabulary(&[&second, &first], 5, 2), shared_vocabulary(&[&first, &second], 5, 2));
        // min_freq 1: a b c e (2 each), then d.
        assert_eq!(words(&shared_vocabulary(&[&first, &second], 100, 1)), ["a", "b", "c", "e", "d"]);
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
        assert_eq!(task.train.labels(), [1, 0, 1]);
        assert!(task.val.is_empty());
    }
}
