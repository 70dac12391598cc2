//! Examples as a file format gives them, before splitting and tokenising,
//! and the errors and counts of reading them.

use std::path::PathBuf;

/// A problem with a data file or folder; always names the path.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file or folder could not be read (the cause follows in the error chain).
    #[error("{path}")]
    Io {
        /// The offending path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The content is not what the format requires.
    #[error("{path}: {message}")]
    Invalid {
        /// The offending path.
        path: PathBuf,
        /// What is wrong, e.g. "truncated: header promises 10000 images of 784 bytes, file has 1200 bytes of data".
        message: String,
    },
}

impl DataError {
    /// An [`DataError::Invalid`] for `path`.
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> DataError {
        DataError::Invalid { path: path.into(), message: message.into() }
    }

    /// An [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> DataError {
        DataError::Io { path: path.into(), source }
    }
}

/// Labelled images, `n × channels × height × width` values in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledImages {
    /// Pixel values in [0, 1], row-major per image, channels first.
    pub pixels: Vec<f32>,
    /// Channels per image (1 = grayscale, 3 = RGB).
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// One class index per image.
    pub labels: Vec<u32>,
}

/// Labelled texts, as decoded (not yet tokenised).
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledTexts {
    /// The texts.
    pub texts: Vec<String>,
    /// One class index per text.
    pub labels: Vec<u32>,
}

/// What reading a data set found besides the examples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Files read.
    pub files_read: usize,
    /// Files skipped (unreadable images when skipping is allowed), with why.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files that were not valid UTF-8 and were decoded as Windows-1252.
    pub decoded_as_windows_1252: usize,
    /// Bytes in those files that Windows-1252 leaves undefined, replaced by U+FFFD.
    pub replacements: usize,
}

impl LoadReport {
    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: LoadReport) {
        self.files_read += other.files_read;
        self.skipped.extend(other.skipped);
        self.decoded_as_windows_1252 += other.decoded_as_windows_1252;
        self.replacements += other.replacements;
    }
}

/// A data set as its format gives it: with its own splits where it has them.
#[derive(Clone, Debug, PartialEq)]
pub struct Sourced<T> {
    /// Class names, indexed by label.
    pub class_names: Vec<String>,
    /// The training examples (all examples when the format has no splits).
    pub train: T,
    /// The format's own validation split, if it has one.
    pub val: Option<T>,
    /// The format's own test split, if it has one.
    pub test: Option<T>,
    /// Counts and problems met while reading.
    pub report: LoadReport,
}

/// Table rows as read: numeric columns as written, categorical ones as names, and the targets.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRows {
    /// `n × n_numeric` values, row by row.
    pub numeric: Vec<f32>,
    /// Numeric columns.
    pub n_numeric: usize,
    /// `n × categorical.len()` category names, row by row.
    pub categories: Vec<String>,
    /// The categorical columns, as the options name them (for errors): the one-hot ones,
    /// then the `n_embedded` embedded ones.
    pub categorical: Vec<String>,
    /// The last columns of `categorical`, given to the network as ids into an embedding.
    pub n_embedded: usize,
    /// What each row is labelled with.
    pub targets: crate::Targets,
}
