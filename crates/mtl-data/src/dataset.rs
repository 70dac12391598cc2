//! The examples of one task: inputs plus integer labels, split three ways.

/// The kind of input a task reads; decides which model stem it goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Modality {
    /// Dense images, `channels × height × width`, values in [0, 1].
    Image,
    /// Token id sequences, padded to a fixed length.
    Text,
}

impl Modality {
    /// Stable lower-case name (used in parameter names).
    pub fn name(self) -> &'static str {
        match self {
            Modality::Image => "image",
            Modality::Text => "text",
        }
    }
}

/// The inputs of a split, stored flat and row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Inputs {
    /// `n × channels × height × width` pixels.
    Images {
        /// Pixel values in [0, 1].
        pixels: Vec<f32>,
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
}

impl Inputs {
    /// Which stem these inputs go through.
    pub fn modality(&self) -> Modality {
        match self {
            Inputs::Images { .. } => Modality::Image,
            Inputs::Tokens { .. } => Modality::Text,
        }
    }

    /// Number of values one example occupies.
    pub fn example_size(&self) -> usize {
        match self {
            Inputs::Images { channels, height, width, .. } => channels * height * width,
            Inputs::Tokens { seq_len, .. } => *seq_len,
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        let size = self.example_size().max(1);
        match self {
            Inputs::Images { pixels, .. } => pixels.len() / size,
            Inputs::Tokens { ids, .. } => ids.len() / size,
        }
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One split (train, val or test) of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The inputs.
    pub inputs: Inputs,
    /// One class index per example.
    pub labels: Vec<u32>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Everything a task needs for training and evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskData {
    /// The task's name in the experiment.
    pub name: String,
    /// Class names, indexed by label.
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
    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The input modality (the same for every split).
    pub fn modality(&self) -> Modality {
        self.train.inputs.modality()
    }
}
