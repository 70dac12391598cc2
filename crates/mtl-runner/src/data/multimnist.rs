//! MultiMNIST tasks: the source digits are carved into train, val and test first, then
//! each split's images are composed from that split's digits only, so that no digit is
//! seen in two splits (Sener & Koltun 2018's construction, which composes MNIST's
//! training and test files each on its own; see `mtl_data::formats::images::multi_mnist`).
//!
//! The pairing seed is fixed (the task's data `seed` by default, or a number), so every
//! trial sees the same images, or follows the trial seed (`compose_seed = "trial"`), so
//! that each seed of a sweep sees its own pairs of the same split digits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mtl_data::formats::images::{self, multi_mnist_splits, MultiDigits, Resize};
use mtl_data::prepare::{carve_images, image_task, SplitPolicy};
use mtl_data::{DataError, LabeledImages, Sourced, Targets, TaskData};
use serde_json::{json, Value};

use super::{DataSource, Digit, ImageFormat, TaskSet};

/// Which seed pairs the digits of a MultiMNIST task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComposeSeed {
    /// This seed for every trial (default: the task's data `seed`).
    Fixed(u64),
    /// Each trial's own seed; the digits of each split stay those of the data `seed`.
    Trial,
}

/// How a MultiMNIST task's images are composed from its digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Composition {
    /// The seed that draws each image's partner.
    pub seed: ComposeSeed,
    /// How the 36×36 canvas becomes 28×28.
    pub resize: Resize,
}

impl Composition {
    /// The settings that decide the images, for the trial key.
    pub(super) fn settings(&self) -> Value {
        let seed = match self.seed {
            ComposeSeed::Fixed(seed) => json!(seed),
            ComposeSeed::Trial => json!("trial"),
        };
        json!({ "compose_seed": seed, "resize": self.resize.name() })
    }

    /// The fixed seed, or the one the load composes with to check the digits (trials recompose).
    fn load_seed(&self) -> u64 {
        match self.seed {
            ComposeSeed::Fixed(seed) => seed,
            ComposeSeed::Trial => 0,
        }
    }
}

/// One MultiMNIST input (what its tasks share): the images composed from the split digits.
pub(super) struct Input {
    composed: Sourced<MultiDigits>,
}

/// Reads the IDX digits at `path`, carves the splits they lack by `split`, and composes
/// each split's images from its own digits.
pub(super) fn load(path: &Path, split: &SplitPolicy, composition: &Composition) -> Result<Input, DataError> {
    let digits = carve_images(path, images::idx_dir(path)?, split)?;
    let composed = multi_mnist_splits(&digits, composition.load_seed(), composition.resize)?;
    Ok(Input { composed })
}

/// The task that predicts `digit` of `composed`'s images (every split is there: nothing is carved).
fn task(
    name: &str,
    path: &Path,
    split: &SplitPolicy,
    digit: Digit,
    composed: &Sourced<MultiDigits>,
) -> Result<TaskData, DataError> {
    let pick = |m: &MultiDigits| -> LabeledImages {
        let mut images = m.images.clone();
        match digit {
            Digit::Left => {}
            Digit::Right => images.labels = m.right_labels.clone(),
            // Carried as a class index through the carving, targets after it.
            Digit::Sum => images.labels.iter_mut().zip(&m.right_labels).for_each(|(left, right)| *left += right),
            Digit::Present => {
                images.labels.iter_mut().zip(&m.right_labels).for_each(|(left, right)| *left = *left * 10 + right)
            }
        }
        images
    };
    let class_names = match digit {
        Digit::Sum => vec!["sum".to_owned()],
        _ => composed.class_names.clone(),
    };
    let sourced = Sourced {
        class_names,
        train: pick(&composed.train),
        val: composed.val.as_ref().map(pick),
        test: composed.test.as_ref().map(pick),
        report: composed.report.clone(),
    };
    let mut task = image_task(name, path, sourced, split)?;
    for split in [&mut task.train, &mut task.val, &mut task.test] {
        match digit {
            Digit::Sum => {
                let values = split.labels().iter().map(|&sum| sum as f32).collect();
                split.targets = Targets::Values { values, width: 1 };
            }
            Digit::Present => {
                let labels = split
                    .labels()
                    .iter()
                    .flat_map(|&pair| (0..10).map(move |d| u8::from(pair / 10 == d || pair % 10 == d)));
                split.targets = Targets::Binary { labels: labels.collect(), width: 10 };
            }
            Digit::Left | Digit::Right => {}
        }
    }
    Ok(task)
}

/// The task `name` predicting `digit` of `input`'s images.
pub(super) fn input_task(
    name: &str,
    path: &Path,
    split: &SplitPolicy,
    digit: Digit,
    input: &Input,
) -> Result<TaskData, DataError> {
    task(name, path, split, digit, &input.composed)
}

/// The MultiMNIST tasks of a task set whose images follow the trial seed, by input.
#[derive(Clone, Debug, Default)]
pub(super) struct PerSeed {
    inputs: Vec<SeededInput>,
}

#[derive(Clone, Debug)]
struct SeededInput {
    digits: Arc<Sourced<LabeledImages>>,
    resize: Resize,
    path: PathBuf,
    split: SplitPolicy,
    /// (task index, name, digit)
    tasks: Vec<(usize, String, Digit)>,
}

impl PerSeed {
    /// The tasks of `sources` that follow the trial seed, their digits read and carved once.
    pub(super) fn new(sources: &[crate::data::TaskSource]) -> Result<PerSeed, DataError> {
        let mut inputs: BTreeMap<String, SeededInput> = BTreeMap::new();
        for (index, source) in sources.iter().enumerate() {
            let DataSource::Images { path, format: ImageFormat::MultiMnist { digit, composition }, split } =
                &source.data
            else {
                continue;
            };
            if composition.seed != ComposeSeed::Trial {
                continue;
            }
            let key = source.data.shared_input_key().expect("a MultiMNIST input has a key");
            if !inputs.contains_key(&key) {
                let digits = Arc::new(carve_images(path, images::idx_dir(path)?, split)?);
                let input = SeededInput {
                    digits,
                    resize: composition.resize,
                    path: path.clone(),
                    split: *split,
                    tasks: Vec::new(),
                };
                inputs.insert(key.clone(), input);
            }
            inputs.get_mut(&key).expect("inserted").tasks.push((index, source.name.clone(), *digit));
        }
        Ok(PerSeed { inputs: inputs.into_values().collect() })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// `set` with the tasks that follow the trial seed composed for `seed`.
    pub(super) fn compose(&self, set: &TaskSet, seed: u64) -> Result<TaskSet, DataError> {
        let mut recomposed: BTreeMap<usize, TaskData> = BTreeMap::new();
        for input in &self.inputs {
            let composed = multi_mnist_splits(&input.digits, seed, input.resize)?;
            // The tasks of one input hold its images once (see `share_inputs`).
            let mut first: Option<[mtl_data::Inputs; 3]> = None;
            for (index, name, digit) in &input.tasks {
                let mut data = task(name, &input.path, &input.split, *digit, &composed)?;
                let splits = [&mut data.train, &mut data.val, &mut data.test];
                match &first {
                    Some(inputs) => {
                        splits.into_iter().zip(inputs).for_each(|(split, inputs)| split.inputs = inputs.clone())
                    }
                    None => first = Some(splits.map(|split| split.inputs.clone())),
                }
                recomposed.insert(*index, data);
            }
        }
        let tasks = (set.tasks.iter().enumerate())
            .map(|(index, data)| recomposed.remove(&index).unwrap_or_else(|| data.clone()))
            .collect();
        let (input_groups, objectives) = (set.input_groups.clone(), set.objectives.clone());
        Ok(TaskSet { tasks, input_groups, objectives, per_seed: PerSeed::default() })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::data::load_task_set;

    /// A folder with `n` t10k digits whose labels are 0, 1, …, n − 1: a label names its digit.
    fn numbered_digits(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut images = vec![0, 0, 8, 3];
        for size in [n as u32, 28, 28] {
            images.extend(size.to_be_bytes());
        }
        images.extend((0..n * 784).map(|i| ((i / 784 + i % 784) % 256) as u8));
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((n as u32).to_be_bytes());
        labels.extend((0..n).map(|i| i as u8));
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), images).expect("images");
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), labels).expect("labels");
        dir
    }

    /// The plan's task set for the left and right digits of the folder, with `keys` in both data tables.
    fn task_set(dir: &Path, keys: &str) -> TaskSet {
        let task = |name: &str| {
            format!(
                "[[tasks]]\nname = \"{name}\"\ndata = {{ format = \"multimnist\", path = {:?}, digit = \"{name}\", \
                 test_size = 40, val_size = 20, {keys} }}\n",
                dir.display()
            )
        };
        let source = format!("name = \"m\"\n{}{}[model]\ntrunk = \"lenet\"\n", task("left"), task("right"));
        let plan = crate::config::parse_str(&source, Path::new("m.toml")).expect("valid");
        load_task_set(&plan.tasks).expect("loads")
    }

    /// Per split (train, val, test): the digits its images use, left and right.
    fn digits_by_split(set: &TaskSet) -> [BTreeSet<u32>; 3] {
        let [left, right] = [&set.tasks[0], &set.tasks[1]];
        let used = |l: &mtl_data::Split, r: &mtl_data::Split| l.labels().iter().chain(r.labels()).copied().collect();
        [used(&left.train, &right.train), used(&left.val, &right.val), used(&left.test, &right.test)]
    }

    #[test]
    fn no_source_digit_appears_in_two_splits() {
        // Before, the whole folder was composed and then carved: test images had training
        // digits as partners.
        let dir = numbered_digits(200);
        for carve in ["tail", "random"] {
            let set = task_set(dir.path(), &format!("carve = \"{carve}\""));
            assert_eq!(set.input_groups, [vec![0, 1]], "both digits read one input");
            let [train, val, test] = digits_by_split(&set);
            assert!(train.is_disjoint(&val) && train.is_disjoint(&test) && val.is_disjoint(&test), "{carve}");
            assert!(train.len() <= 140, "train uses its own 140 digits, got {}", train.len());
            assert_eq!(set.tasks[0].test.len(), 40);
            assert_eq!(set.tasks[0].val.len(), 20);
            // Every split's left digits are its own digits, each once.
            let left: BTreeSet<u32> = set.tasks[0].test.labels().iter().copied().collect();
            assert_eq!(left.len(), 40);
            assert!(test.is_superset(&left));
        }
    }

    #[test]
    fn pairs_follow_the_trial_seed_when_asked_and_the_data_seed_otherwise() {
        let dir = numbered_digits(200);
        let right = |set: &TaskSet| set.tasks[1].train.labels().to_vec();

        let fixed = task_set(dir.path(), "seed = 3");
        assert!(matches!(fixed.for_seed(1).unwrap(), std::borrow::Cow::Borrowed(_)), "one composition for all");
        assert_eq!(right(&fixed.for_seed(1).unwrap()), right(&fixed.for_seed(2).unwrap()));

        let per_trial = task_set(dir.path(), "seed = 3, compose_seed = \"trial\"");
        let (one, two) = (per_trial.for_seed(1).unwrap(), per_trial.for_seed(2).unwrap());
        assert_ne!(right(&one), right(&two), "another seed, other partners");
        assert_eq!(right(&one), right(&per_trial.for_seed(1).unwrap()), "the same seed, the same images");
        assert_eq!(one.tasks[1].train.inputs, per_trial.for_seed(1).unwrap().tasks[1].train.inputs);
        // The digits of each split are the data seed's whatever the trial seed.
        assert_eq!(one.tasks[0].train.labels(), two.tasks[0].train.labels());
        assert_eq!(digits_by_split(&one)[2].iter().min(), digits_by_split(&two)[2].iter().min());
        let [train, val, test] = digits_by_split(&two);
        assert!(train.is_disjoint(&val) && train.is_disjoint(&test) && val.is_disjoint(&test));
        // compose_seed = "trial" at trial seed 1 is compose_seed = 1.
        let one_fixed = task_set(dir.path(), "seed = 3, compose_seed = 1");
        assert_eq!(one.tasks, one_fixed.tasks);
    }

    #[test]
    fn the_tasks_of_one_input_hold_its_images_once() {
        let dir = numbered_digits(100);
        let same = |set: &TaskSet| {
            let pixels = |t: usize| match &set.tasks[t].train.inputs {
                mtl_data::Inputs::Images { pixels, .. } => pixels.clone(),
                _ => unreachable!("images"),
            };
            std::sync::Arc::ptr_eq(&pixels(0), &pixels(1))
        };
        let fixed = task_set(dir.path(), "seed = 3");
        assert!(same(&fixed));
        let per_trial = task_set(dir.path(), "seed = 3, compose_seed = \"trial\"");
        assert!(same(&per_trial.for_seed(5).unwrap()));
    }
}
