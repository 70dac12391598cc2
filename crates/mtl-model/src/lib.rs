//! The candle models of mtl-lab: modality stems, the shared trunk, task heads,
//! the sharing strategies, and seeded parameter initialisation.
//!
//! This crate computes only: it writes no files and knows nothing of SQLite
//! or the terminal.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use mtl_model::{ImageStem, InitScheme, InputSpec, ModelSpec, MultiTaskNet, Sharing, TaskSpec, TrunkSpec};
//! let spec = ModelSpec {
//!     tasks: vec![TaskSpec { name: "digits".into(), input: InputSpec::Image { channels: 1, height: 28, width: 28 }, n_classes: 10 }],
//!     sharing: Sharing::Hard,
//!     trunk: TrunkSpec::Sequence { width: 16, hidden: 32, image_stem: ImageStem::Conv },
//!     dropout: 0.0,
//!     init: InitScheme::Framework,
//! };
//! let (net, params) = MultiTaskNet::new(&spec, 0, DType::F32, &Device::Cpu)?;
//! let logits = net.forward(0, &Tensor::zeros((4, 1, 28, 28), DType::F32, &Device::Cpu)?)?;
//! assert_eq!(logits.dims(), &[4, 10]);
//! assert!(params.n_parameters() > 0);
//! # Ok::<(), candle_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod dense;
mod init;
pub mod layers;
mod network;
mod pass;
pub mod pretrained;
pub mod sequence;
#[cfg(test)]
mod testing;

pub use init::{InitScheme, Parameters, RunningStatistics};
pub use network::{
    ImageStem, InputSpec, ModelSpec, MultiTaskNet, ResNetDepth, ResNetStem, Sharing, Strategy, TaskSpec, TrunkSpec,
};
pub use pretrained::{PretrainedLoad, WeightNames};
