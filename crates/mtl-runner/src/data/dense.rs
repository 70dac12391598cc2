//! Dense tasks on LibMTL's NYUv2 and Cityscapes layout (`mtl_data::formats::images::nyuv2`)
//! or the image/mask layout (`masks`): each task predicts one of segmentation, depth or
//! surface normals of the same images. Every task of one input (the same folder, size,
//! classes and splits) reads the images once, and they share batches.

use std::path::Path;
use std::sync::Arc;

use mtl_data::formats::images::masks::{self, MaskOptions};
use mtl_data::formats::images::nyuv2::{self, DenseExamples, DenseOptions, DenseParts};
use mtl_data::prepare::SplitPolicy;
use mtl_data::{DataError, Inputs, Split, Targets, TaskData};

/// What a dense task predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseTarget {
    /// `label/`: one class per pixel.
    Segmentation,
    /// `depth/`.
    Depth,
    /// `normal/`.
    Normals,
}

impl DenseTarget {
    /// Every target, by the name experiment files use (`task = "…"`).
    pub const NAMES: [&'static str; 3] = ["segmentation", "depth", "normals"];

    /// The name experiment files use.
    pub fn name(self) -> &'static str {
        match self {
            DenseTarget::Segmentation => "segmentation",
            DenseTarget::Depth => "depth",
            DenseTarget::Normals => "normals",
        }
    }

    /// Parses [`DenseTarget::name`].
    pub fn from_name(name: &str) -> Option<DenseTarget> {
        [DenseTarget::Segmentation, DenseTarget::Depth, DenseTarget::Normals].into_iter().find(|t| t.name() == name)
    }

    /// The folder it needs read.
    pub(super) fn parts(self) -> DenseParts {
        DenseParts {
            label: self == DenseTarget::Segmentation,
            depth: self == DenseTarget::Depth,
            normal: self == DenseTarget::Normals,
        }
    }
}

/// One NYUv2 input: its images (shared by its tasks) and the targets read, per split.
pub(super) struct Input {
    splits: [(Inputs, DenseExamples); 3],
}

/// A dense layout and how to read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Layout {
    /// LibMTL's `.npy` folders.
    Npy { classes: usize, size: Option<(usize, usize)> },
    /// `images/`, `masks/`, `depth/` (its `parts` set by [`load`]).
    Masks(MaskOptions),
}

impl Layout {
    /// Segmentation classes.
    pub(super) fn classes(self) -> usize {
        match self {
            Layout::Npy { classes, .. } => classes,
            Layout::Masks(options) => options.classes,
        }
    }
}

/// How the tasks of one input (`layouts`, each with its target) read it together: the
/// folders they need, the most classes a segmentation task asks for, and the mask's
/// `ignore` and depth's `depth_scale` they must agree on (an error naming `path` if not).
pub(super) fn merged(layouts: &[(DenseTarget, Layout)], path: &Path) -> Result<(Layout, DenseParts), DataError> {
    let mut parts = DenseParts::default();
    for (target, _) in layouts {
        let more = target.parts();
        parts.label |= more.label;
        parts.depth |= more.depth;
        parts.normal |= more.normal;
    }
    let of = |target: DenseTarget| layouts.iter().filter(move |(t, _)| *t == target).map(|(_, l)| *l);
    let classes = of(DenseTarget::Segmentation).map(Layout::classes).max();
    let disagree = |what: &str| {
        let message = format!("the tasks of this folder give different values of {what}: give them one");
        Err(DataError::invalid(path, message))
    };
    let merged = match layouts[0].1 {
        Layout::Npy { size, .. } => Layout::Npy { classes: classes.unwrap_or(layouts[0].1.classes()), size },
        Layout::Masks(first) => {
            let masks = |target: DenseTarget| {
                of(target).filter_map(|l| match l {
                    Layout::Masks(options) => Some(options),
                    Layout::Npy { .. } => None,
                })
            };
            let mut options = first;
            options.classes = classes.unwrap_or(first.classes);
            let ignores: Vec<u8> = masks(DenseTarget::Segmentation).map(|o| o.ignore).collect();
            if let Some(&ignore) = ignores.first() {
                if ignores.iter().any(|&i| i != ignore) {
                    return disagree("ignore");
                }
                options.ignore = ignore;
            }
            let scales: Vec<f64> = masks(DenseTarget::Depth).map(|o| o.depth_scale).collect();
            if let Some(&scale) = scales.first() {
                if scales.iter().any(|&s| s != scale) {
                    return disagree("depth_scale");
                }
                options.depth_scale = scale;
            }
            Layout::Masks(options)
        }
    };
    Ok((merged, parts))
}

/// Reads the layout at `path`: the folders `parts` names, split by `split`.
pub(super) fn load(path: &Path, layout: Layout, parts: DenseParts, split: &SplitPolicy) -> Result<Input, DataError> {
    let sourced = match layout {
        Layout::Npy { classes, size } => nyuv2::nyuv2(path, &DenseOptions { parts, classes, size }, split)?,
        Layout::Masks(options) => masks::image_masks(path, &MaskOptions { parts, ..options }, split)?,
    };
    let (val, test) = (sourced.val.expect("nyuv2 has val"), sourced.test.expect("nyuv2 has test"));
    let inputs = |mut examples: DenseExamples| {
        let pixels = std::mem::take(&mut examples.pixels);
        let (height, width) = (examples.height, examples.width);
        (Inputs::Images { pixels: Arc::from(pixels), channels: 3, height, width }, examples)
    };
    Ok(Input { splits: [inputs(sourced.train), inputs(val), inputs(test)] })
}

/// The task `name` predicting `target` of `input`'s images (read from `path`), with
/// `classes` segmentation classes: a label at or above them (read for a task of the same
/// folder that has more) is an error.
pub(super) fn task(
    name: &str,
    path: &Path,
    target: DenseTarget,
    classes: usize,
    input: &Input,
) -> Result<TaskData, DataError> {
    if target == DenseTarget::Segmentation {
        let labels = input.splits.iter().flat_map(|(_, examples)| &examples.labels);
        if let Some(label) = labels.copied().find(|&l| l != mtl_data::IGNORED_PIXEL && usize::from(l) >= classes) {
            let message = format!("task {name}: label {label} is not one of its classes 0 … {}", classes - 1);
            return Err(DataError::invalid(path, message));
        }
    }
    let class_names = match target {
        DenseTarget::Segmentation => (0..classes).map(|c| c.to_string()).collect(),
        DenseTarget::Depth => vec!["depth".to_string()],
        DenseTarget::Normals => ["x", "y", "z"].map(String::from).to_vec(),
    };
    let split = |(inputs, examples): &(Inputs, DenseExamples)| {
        let (height, width) = (examples.height, examples.width);
        let targets = match target {
            DenseTarget::Segmentation => Targets::Segments { labels: examples.labels.clone(), height, width },
            DenseTarget::Depth => Targets::Maps { values: examples.depth.clone(), channels: 1, height, width },
            DenseTarget::Normals => Targets::Maps { values: examples.normals.clone(), channels: 3, height, width },
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
