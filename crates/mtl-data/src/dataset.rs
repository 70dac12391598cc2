//! The examples of one task: inputs plus targets (class indices, real values or 0/1
//! labels), split three ways.

use std::sync::Arc;

/// The kind of input a task reads; decides which model stem it goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Modality {
    /// Dense images, `channels × height × width`, values in [0, 1].
    Image,
    /// Token id sequences, padded to a fixed length.
    Text,
    /// Numeric feature vectors (table rows).
    Features,
    /// Molecular graphs (atoms, positions, bonds).
    Graph,
}

impl Modality {
    /// Stable lower-case name (used in parameter names).
    pub fn name(self) -> &'static str {
        match self {
            Modality::Image => "image",
            Modality::Text => "text",
            Modality::Features => "features",
            Modality::Graph => "graph",
        }
    }
}

/// The inputs of a split, stored flat and row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Inputs {
    /// `n × channels × height × width` pixels.
    Images {
        /// Pixel values in [0, 1], shared by the tasks that read the same images.
        pixels: Arc<[f32]>,
        /// Channels per image (1 = grayscale).
        channels: usize,
        /// Rows per image.
        height: usize,
        /// Columns per image.
        width: usize,
    },
    /// `n × seq_len` token ids; id 0 is padding.
    Tokens {
        /// Token ids, each below `vocab_size`.
        ids: Vec<u32>,
        /// Length every sequence is padded or truncated to.
        seq_len: usize,
        /// Number of distinct ids, padding included.
        vocab_size: usize,
    },
    /// `n × width` numeric features (standardised table columns, one-hot categories), the
    /// last `embedded.columns` of each row category ids for an embedding.
    Features {
        /// Feature values, row by row, shared by the tasks that read the same rows.
        values: Arc<[f32]>,
        /// Values per example, the ids included.
        width: usize,
        /// The embedded categorical columns at the end of each row.
        embedded: Embedded,
    },
    /// Molecular graphs, shared by the tasks that read the same molecules.
    Graphs(Arc<crate::graphs::GraphSet>),
}

/// Categorical columns given to the network as ids into one embedding table (each column
/// its own rows of it), instead of one-hot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Embedded {
    /// Id columns at the end of each row (0: none).
    pub columns: usize,
    /// Rows of the embedding table: every column's categories, plus one "unseen" row each.
    pub rows: usize,
    /// Width of each column's embedding.
    pub dim: usize,
}

impl Inputs {
    /// Which stem these inputs go through.
    pub fn modality(&self) -> Modality {
        match self {
            Inputs::Images { .. } => Modality::Image,
            Inputs::Tokens { .. } => Modality::Text,
            Inputs::Features { .. } => Modality::Features,
            Inputs::Graphs(_) => Modality::Graph,
        }
    }

    /// Number of values one example occupies.
    pub fn example_size(&self) -> usize {
        match self {
            Inputs::Images { channels, height, width, .. } => channels * height * width,
            Inputs::Tokens { seq_len, .. } => *seq_len,
            Inputs::Features { width, .. } => *width,
            Inputs::Graphs(graphs) => graphs.example_size(),
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        let size = self.example_size().max(1);
        match self {
            Inputs::Images { pixels, .. } => pixels.len() / size,
            Inputs::Tokens { ids, .. } => ids.len() / size,
            Inputs::Features { values, .. } => values.len() / size,
            Inputs::Graphs(graphs) => graphs.len(),
        }
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a task predicts of each example; the variant decides the task's kind (its loss,
/// metrics and head width).
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Classification: one class index per example.
    Classes(Vec<u32>),
    /// Regression: `n × width` real values, in the data's own units.
    Values {
        /// Target values, row by row (finite).
        values: Vec<f32>,
        /// Targets per example.
        width: usize,
    },
    /// Multi-label: `n × width` labels, each 0 or 1.
    Binary {
        /// Labels, row by row.
        labels: Vec<u8>,
        /// Labels per example.
        width: usize,
    },
    /// Segmentation: one class per pixel, `height × width` per example, row by row;
    /// [`IGNORED_PIXEL`] where the pixel is unlabelled.
    Segments {
        /// Classes, example by example.
        labels: Vec<u8>,
        /// Rows per example.
        height: usize,
        /// Columns per example.
        width: usize,
    },
    /// Depth (`channels` 1) or surface normals (`channels` 3): `channels × height × width`
    /// values per example; a pixel whose values are all 0 is invalid (no ground truth).
    Maps {
        /// Values, example by example, channel-first.
        values: Vec<f32>,
        /// 1 (depth) or 3 (normals).
        channels: usize,
        /// Rows per example.
        height: usize,
        /// Columns per example.
        width: usize,
    },
}

/// The label of a segmentation pixel without ground truth (LibMTL's NYUv2 files write −1).
pub const IGNORED_PIXEL: u8 = u8::MAX;

impl Targets {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(classes) => classes.len(),
            Targets::Values { values, width } => values.len() / (*width).max(1),
            Targets::Binary { labels, width } => labels.len() / (*width).max(1),
            Targets::Segments { labels, height, width } => labels.len() / (height * width).max(1),
            Targets::Maps { values, channels, height, width } => values.len() / (channels * height * width).max(1),
        }
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets of the examples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Targets {
        fn rows<T: Copy>(all: &[T], width: usize, indices: &[usize]) -> Vec<T> {
            indices.iter().flat_map(|&i| &all[i * width..(i + 1) * width]).copied().collect()
        }
        match self {
            Targets::Classes(classes) => Targets::Classes(indices.iter().map(|&i| classes[i]).collect()),
            Targets::Values { values, width } => {
                Targets::Values { values: rows(values, *width, indices), width: *width }
            }
            Targets::Binary { labels, width } => {
                Targets::Binary { labels: rows(labels, *width, indices), width: *width }
            }
            Targets::Segments { labels, height, width } => {
                Targets::Segments { labels: rows(labels, height * width, indices), height: *height, width: *width }
            }
            Targets::Maps { values, channels, height, width } => Targets::Maps {
                values: rows(values, channels * height * width, indices),
                channels: *channels,
                height: *height,
                width: *width,
            },
        }
    }

    /// The class indices of a classification task.
    pub fn classes(&self) -> Option<&[u32]> {
        match self {
            Targets::Classes(classes) => Some(classes),
            _ => None,
        }
    }
}

/// One split (train, val or test) of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The inputs.
    pub inputs: Inputs,
    /// What the task predicts of each example.
    pub targets: Targets,
}

impl Split {
    /// Examples labelled by class index.
    pub fn classified(inputs: Inputs, labels: Vec<u32>) -> Split {
        Split { inputs, targets: Targets::Classes(labels) }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The class indices of a classification task's split (empty for other kinds).
    pub fn labels(&self) -> &[u32] {
        self.targets.classes().unwrap_or(&[])
    }
}

/// What kind of task the targets make, by name: the name experiment files use for
/// `kind`, with the modality for classification.
pub fn kind_name(targets: &Targets, modality: Modality) -> &'static str {
    match (targets, modality) {
        (Targets::Classes(_), Modality::Image) => "image-classification",
        (Targets::Classes(_), Modality::Text) => "text-classification",
        (Targets::Classes(_), Modality::Features | Modality::Graph) => "classification",
        (Targets::Values { .. }, _) => "regression",
        (Targets::Binary { .. }, _) => "multi-label",
        (Targets::Segments { .. }, _) => "segmentation",
        (Targets::Maps { channels: 1, .. }, _) => "depth",
        (Targets::Maps { .. }, _) => "normals",
    }
}

/// Everything a task needs for training and evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskData {
    /// The task's name in the experiment.
    pub name: String,
    /// The names of the head's outputs: classes (indexed by label) for classification,
    /// target columns for regression, labels for multi-label.
    pub class_names: Vec<String>,
    /// Training examples.
    pub train: Split,
    /// Validation examples (model selection).
    pub val: Split,
    /// Test examples (reported).
    pub test: Split,
    /// The vocabulary token ids refer to (text tasks read from files).
    pub vocabulary: Option<crate::formats::text::Vocabulary>,
}

impl TaskData {
    /// Number of classes (targets for regression, labels for multi-label): the head's width.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The task's kind, e.g. `"image-classification"` or `"regression"` ([`kind_name`]).
    pub fn kind(&self) -> &'static str {
        kind_name(&self.train.targets, self.modality())
    }

    /// The input modality (the same for every split).
    pub fn modality(&self) -> Modality {
        self.train.inputs.modality()
    }
}
