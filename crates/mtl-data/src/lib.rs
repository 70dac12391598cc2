//! Datasets for mtl-lab: each task's examples, the built-in synthetic tasks,
//! and the joint sampler that draws multi-task batches.
//!
//! This crate computes only: it writes no files and knows nothing of SQLite
//! or the terminal.
//!
//! ```
//! use mtl_data::{synthetic, JointSampler, Rng};
//! let shapes = synthetic::shapes("shapes", &synthetic::ShapesConfig::default(), 0);
//! let reviews = synthetic::reviews("reviews", &synthetic::ReviewsConfig::default(), 0);
//! let mut sampler = JointSampler::new(&[shapes.train.len(), reviews.train.len()], 64, Rng::new(0));
//! let batch = sampler.next_step(); // one index list per task
//! assert_eq!(batch.len(), 2);
//! ```
#![warn(missing_docs)]

pub mod augment;
mod dataset;
pub mod files;
pub mod formats;
pub mod graphs;
pub mod inspect;
pub mod prepare;
mod raw;
mod rng;
mod sampler;
pub mod synthetic;

pub use dataset::{kind_name, Embedded, Inputs, Modality, Split, Targets, TaskData, IGNORED_PIXEL};
pub use raw::{DataError, LabeledImages, LabeledTexts, LoadReport, Sourced, TableRows};
pub use rng::Rng;
pub use sampler::{JointSampler, SamplingPolicy};
