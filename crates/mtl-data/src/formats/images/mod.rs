//! Image formats: IDX (MNIST, Fashion-MNIST, EMNIST), CIFAR binary batches,
//! folders of image files, and MultiMNIST built from MNIST digits.
//!
//! Every reader gives pixels in [0, 1], channels first, and a
//! [`crate::DataError`] naming the file and the problem when the data is not
//! what the format promises.
//!
//! ```no_run
//! use mtl_data::formats::images::{idx_dir, multi_mnist_splits, Resize};
//! use mtl_data::prepare::{carve_images, Amount, Carve, Keep, SplitPolicy};
//! let mnist = idx_dir("data/mnist".as_ref())?; // train + t10k, 1×28×28
//! // Carve the digits into splits first, then pair digits within each split.
//! let (val, test) = (Amount::Fraction(0.1), Amount::Fraction(0.2));
//! let policy = SplitPolicy { val, test, carve: Carve::Random, seed: 0, keep: Keep::ALL };
//! let digits = carve_images("data/mnist".as_ref(), mnist, &policy)?;
//! let multi = multi_mnist_splits(&digits, 0, Resize::Bilinear)?; // labels: left digit; right_labels: right digit
//! assert_eq!(multi.train.images.labels.len(), multi.train.right_labels.len());
//! # Ok::<(), mtl_data::DataError>(())
//! ```

pub mod celeba;
mod cifar;
mod folder;
mod idx;
pub mod masks;
mod multi_mnist;
pub mod nyuv2;

use std::path::{Path, PathBuf};

use crate::files::{self, Expected};
use crate::DataError;

pub use celeba::{attribute_table, celeba, AttributeImages, AttributeTable};
pub use cifar::{cifar, CifarLabels};
pub use folder::{image_folder, Fit, ImageFolderOptions, Unreadable};
pub use idx::{idx_dir, idx_dir_with_prefix, mnist_pair, read_idx, IdxArray};
pub use multi_mnist::{multi_mnist, multi_mnist_splits, MultiDigits, Resize};

/// The entries of `dir`, sorted by path so that reading is deterministic.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    files::check_kind(dir, Expected::Folder)?;
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        paths.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// The file name of `path` as text ("" when it has none or it is not UTF-8).
fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|name| name.to_str()).unwrap_or("")
}

/// Class names "0", "1", … for formats that only give label numbers.
fn numbered_class_names(n_classes: usize) -> Vec<String> {
    (0..n_classes).map(|label| label.to_string()).collect()
}

/// Test helpers shared by the readers' tests.
#[cfg(test)]
mod test_support {
    use crate::DataError;

    /// Asserts that `result` is an error whose message contains every one of `needles`.
    #[track_caller]
    pub fn assert_error<T: std::fmt::Debug>(result: Result<T, DataError>, needles: &[&str]) {
        let message = result.expect_err("expected an error").to_string();
        for needle in needles {
            assert!(message.contains(needle), "error {message:?} does not contain {needle:?}");
        }
    }
}
