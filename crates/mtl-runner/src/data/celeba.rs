//! CelebA tasks: one multi-label task over some or all of the 40 attributes, or one
//! binary classification task per attribute. Every task of one CelebA input (the same
//! folder, image size and subsets) reads the images once, and they share batches.

use std::path::Path;
use std::sync::Arc;

use mtl_data::formats::images::{self, AttributeImages, ImageFolderOptions};
use mtl_data::prepare::SplitPolicy;
use mtl_data::{DataError, Inputs, Sourced, Split, Targets, TaskData};

/// What a CelebA task predicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CelebaTarget {
    /// These attributes as one multi-label task (every attribute when empty).
    Attributes(Vec<String>),
    /// One attribute as a two-class task (`absent`, `present`).
    Attribute(String),
}

/// One CelebA input: its images as inputs (shared by its tasks) and every attribute.
pub(super) struct Input {
    names: Vec<String>,
    splits: [(Inputs, Vec<u8>); 3],
}

/// Reads the layout at `path`, keeping `split.keep` of each partition split.
pub(super) fn load(path: &Path, options: &ImageFolderOptions, split: &SplitPolicy) -> Result<Input, DataError> {
    let Sourced { class_names, train, val, test, .. } = images::celeba(path, options, split.keep, split.seed)?;
    let inputs = |split: AttributeImages| {
        let images = split.images;
        let (channels, height, width) = (images.channels, images.height, images.width);
        (Inputs::Images { pixels: Arc::from(images.pixels), channels, height, width }, split.attributes)
    };
    let (val, test) = (val.expect("celeba has val"), test.expect("celeba has test"));
    Ok(Input { names: class_names, splits: [inputs(train), inputs(val), inputs(test)] })
}

/// The task `name` predicting `target` of `input`'s images.
pub(super) fn task(name: &str, path: &Path, target: &CelebaTarget, input: &Input) -> Result<TaskData, DataError> {
    let k = input.names.len();
    let column = |attribute: &String| {
        input.names.iter().position(|n| n == attribute).ok_or_else(|| {
            let message = format!("no attribute {attribute:?}; the table has {}", input.names.join(", "));
            DataError::invalid(path.join(images::celeba::ATTRIBUTES), message)
        })
    };
    let (class_names, columns): (Vec<String>, Vec<usize>) = match target {
        CelebaTarget::Attributes(names) if names.is_empty() => (input.names.clone(), (0..k).collect()),
        CelebaTarget::Attributes(names) => (names.clone(), names.iter().map(column).collect::<Result<_, _>>()?),
        CelebaTarget::Attribute(attribute) => (vec!["absent".into(), "present".into()], vec![column(attribute)?]),
    };
    let split = |(inputs, attributes): &(Inputs, Vec<u8>)| {
        let rows = attributes.chunks_exact(k.max(1));
        let targets = match target {
            CelebaTarget::Attribute(_) => Targets::Classes(rows.map(|row| u32::from(row[columns[0]])).collect()),
            CelebaTarget::Attributes(_) => Targets::Binary {
                labels: rows.flat_map(|row| columns.iter().map(|&c| row[c])).collect(),
                width: columns.len(),
            },
        };
        Split { inputs: inputs.clone(), targets }
    };
    let [train, val, test] = &input.splits;
    Ok(TaskData {
        name: name.into(),
        class_names,
        train: split(train),
        val: split(val),
        test: split(test),
        vocabulary: None,
    })
}
