//! Experiment file → plan of trials → training → the results database.
//!
//! - [`config`]: the experiment file's serde types and their validation;
//! - [`data`]: where each task's examples come from, and loading them;
//! - [`plan`]: the validated plan, its trials and their stable keys;
//! - [`stems`]: whether the tasks fit the stems a strategy shares (checked before any trial trains);
//! - [`train`]: the training loop of one trial;
//! - [`sweep`]: runs a plan against the store, resumably; [`prune`]: its `[prune]` rule; [`search`]: its `[search]`;
//! - [`shard`] and [`cluster_state`]: the contract with cluster schedulers, and where a plan's trials stand;
//! - [`provenance`]: what each run records about how it was made.
//!
//! ```no_run
//! use mtl_runner::{config, sweep};
//! let plan = config::parse_file("experiments/quickstart.toml".as_ref())?;
//! let tasks = mtl_runner::data::load_task_set(&plan.tasks)?;
//! struct Quiet;
//! impl sweep::SweepEvents for Quiet {}
//! let provenance = mtl_runner::provenance::collect("experiments/quickstart.toml".as_ref());
//! let options = sweep::SweepOptions {
//!     db: "mtl.db".into(),
//!     jobs: 1,
//!     checkpoint_dir: None,
//!     stop: None,
//!     provenance,
//!     gpus: vec![],
//!     peers: None,
//!     device: Default::default(),
//! };
//! let report = sweep::run_sweep(&plan, &tasks, &options, &Quiet)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod bench;
pub mod cluster_state;
pub mod command;
pub mod config;
pub mod data;
pub mod device;
pub mod diagnostics;
#[cfg(test)]
mod gpu_path_tests;
mod gradients;
pub mod import;
pub mod metrics;
pub mod objective;
pub mod optim;
pub mod plan;
pub mod provenance;
pub mod prune;
pub mod search;
pub mod shard;
pub mod stems;
mod step;
pub mod sweep;
pub mod threads;
pub mod train;
pub mod weighting;
