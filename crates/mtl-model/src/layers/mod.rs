//! Convolutions, pooling, batch norm and up-sampling that mtl-model implements itself
//! rather than take from candle: candle custom ops with their own CPU kernels and
//! backward passes, and a few layers composed of candle tensor ops.
//!
//! ```
//! use candle_core::{DType, Device, Tensor, Var};
//! use mtl_model::layers::{max_pool2x2_relu, Conv2d};
//! let weight = Var::ones((4, 1, 3, 3), DType::F32, &Device::Cpu)?;
//! let conv = Conv2d::from_parts(weight.as_tensor().clone(), None, 1);
//! let images = Tensor::ones((2, 1, 6, 6), DType::F32, &Device::Cpu)?;
//! let maps = max_pool2x2_relu(&conv.forward(&images)?)?;
//! assert_eq!(maps.dims(), &[2, 4, 3, 3]);
//! let grads = maps.sum_all()?.backward()?;
//! assert_eq!(grads.get(&weight).expect("kernel gradient").dims(), &[4, 1, 3, 3]);
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! Why not candle's own (0.11.1):
//! - **Speed.** Its conv backward is a direct transposed convolution plus an
//!   element-wise im2col gather and a strided sum for the bias; training spent most
//!   of its time there. Here [`Conv1d`] and [`Conv2d`] are im2col + one `gemm` call
//!   per chunk of up to 8 samples (their patches side by side; a small batch makes one
//!   chunk per core of the machine, 2 to 4, so that batch 8 still spreads), the chunks
//!   spread over candle's own CPU thread pool (a second pool, e.g. rayon's, would
//!   compete with its spinning workers for the cores), the bias fused into the same op
//!   (and its gradient into the same backward pass), and the input gradient skipped
//!   when the input needs none (the first layer reads the images).
//! - **Fusion.** [`Conv2d::forward_pool_relu`] is conv → [`max_pool2x2_relu`] in one op, and
//!   [`Conv1d::forward_relu_max_over_time`] conv → relu → max over time: the full-size
//!   output and its gradient stay in each chunk's scratch buffer.
//! - **Correctness.** Its conv1d backward returns a wrong kernel gradient whenever
//!   batch > 1 and out_channels > 1 (the test
//!   `candle_conv1d_weight_gradient_is_wrong_for_batches_with_several_output_channels`
//!   pins it), and its `max_pool2d` backward gives the arg-max a quarter of the
//!   gradient. [`max_pool2x2`] records each window's arg-max and routes the whole
//!   gradient there; [`max_pool2x2_relu`] fuses the relu that follows every pool. Its
//!   `max` backward gives the whole gradient to every tied maximum (over padded text,
//!   to each all-padding window); the max over time here gives it to the first.
//!
//! The ResNet building blocks (He et al. 2016), for the ResNet-18/-34 backbones and the
//! encoder–decoder of dense tasks:
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use mtl_model::layers::{global_avg_pool2d, max_pool2d, upsample_bilinear, BatchNorm2d, Conv2d};
//! let (weight, bias) = (Tensor::ones(8, DType::F32, &Device::Cpu)?, Tensor::zeros(8, DType::F32, &Device::Cpu)?);
//! let stem = Conv2d::from_parts(Tensor::ones((8, 3, 7, 7), DType::F32, &Device::Cpu)?, None, 3).with_stride(2);
//! let norm = BatchNorm2d::from_parts(weight, bias)?;
//! let images = Tensor::ones((2, 3, 32, 32), DType::F32, &Device::Cpu)?;
//! let maps = max_pool2d(&norm.forward_t(&stem.forward(&images)?, true)?.relu()?, 3, 2, 1)?;
//! assert_eq!(maps.dims(), &[2, 8, 8, 8]);
//! assert_eq!(global_avg_pool2d(&maps)?.dims(), &[2, 8]);
//! assert_eq!(upsample_bilinear(&maps, 2)?.dims(), &[2, 8, 16, 16]);
//! # Ok::<(), candle_core::Error>(())
//! ```
//!
//! - [`Conv2d::with_stride`]: the down-sampling 3×3 and 1×1 convolutions and the 7×7/2
//!   stem, in the same im2col kernels.
//! - Winograd F(2×2, 3×3) (Lavin & Gray 2016) for the 3×3, stride-1, padding-1
//!   convolutions with at least 16 channels each side, planes of at least 8×8 and 1,024
//!   tiles a batch (most of a ResNet's or a decoder's work): forward, dX and dW as 16
//!   matrix products over transformed tiles, 2.25× fewer multiply-adds than im2col. candle's conv2d backward refuses strided shapes
//!   whose height and width leave different remainders (it sizes the input gradient
//!   from the height alone; a test pins it).
//! - [`BatchNorm2d`]: PyTorch's `nn.BatchNorm2d` semantics, running statistics as plain
//!   tensors for checkpoints. On the CPU one fused op, forward and backward (about 6×
//!   faster than the composed ops on [128, 64, 32, 32] f32: the `resnet_stage_time`
//!   example); elsewhere candle tensor ops.
//! - [`max_pool2d`] with any window, stride and padding (the stem's 3×3/2, padding 1),
//!   the whole gradient at each window's first arg-max (candle's has no padding, and
//!   no backward for overlapping windows); [`global_avg_pool2d`].
//! - [`upsample_nearest`] and [`upsample_bilinear`] (PyTorch's `align_corners=False`),
//!   composed of tensor ops: candle's `upsample_bilinear2d` has no backward, and its
//!   `upsample_nearest2d` backward overwrites the gradient of an input used elsewhere.
//!
//! Results do not depend on the number of threads: the batch sums of the backward
//! pass run over fixed chunks of samples (batch norm: per channel, in sample order),
//! added in order.
//!
//! Supported: the custom ops take CPU tensors of f32 (training) or f64 (the gradient
//! checks). Off the CPU (CUDA) every layer here is composed of candle tensor ops instead
//! (`composed`, and [`BatchNorm2d`]'s own composed path), with the same function and
//! gradients: candle's conv2d, and arg-max + gather for the pools.

mod batchnorm;
mod bilinear;
pub(crate) mod composed;
mod conv;
mod fresh;
mod kernels;
mod parallel;
mod pixel_nll;
mod pool;
mod relu;
mod upsample;
mod window_pool;
mod winograd;

pub use batchnorm::{BatchNorm2d, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM};
pub use bilinear::upsample_bilinear_fused;
#[doc(hidden)]
pub use composed::compose_on_the_cpu;
pub use conv::{Conv1d, Conv2d};
pub use parallel::{
    choose_threads_by_work, parallel_for, run_on_one_thread, set_min_parallel_cost, take_parallel_work,
    threads_by_work, MIN_PARALLEL_COST,
};
pub use pixel_nll::pixel_nll;
pub use pool::{max_pool2x2, max_pool2x2_relu};
pub use upsample::{upsample_bilinear, upsample_nearest};
pub use window_pool::{global_avg_pool2d, max_pool2d};

#[cfg(test)]
mod composed_tests;
#[cfg(test)]
mod pixel_nll_tests;
#[cfg(test)]
mod resnet_ops_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod winograd_tests;
