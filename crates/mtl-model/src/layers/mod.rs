//! Convolutions and pooling that mtl-model implements itself rather than take
//! from candle: candle custom ops with their own CPU kernels and backward passes.
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
//!   per chunk of 8 samples (their patches side by side), the chunks spread over
//!   candle's own CPU thread pool (a second pool, e.g. rayon's, would compete with its
//!   spinning workers for the cores), the bias fused into the same op (and its
//!   gradient into the same backward pass), and the input gradient skipped when the
//!   input needs none (the first layer reads the images).
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
//! Results do not depend on the number of threads: the batch sums of the backward
//! pass run over fixed chunks of samples, added in order.
//!
//! Supported: CPU tensors of f32 (training) or f64 (the gradient checks).

mod conv;
mod kernels;
mod parallel;
mod pool;

pub use conv::{Conv1d, Conv2d};
pub use parallel::{
    choose_threads_by_work, parallel_for, run_on_one_thread, take_parallel_work, threads_by_work, MIN_PARALLEL_COST,
};
pub use pool::{max_pool2x2, max_pool2x2_relu};

#[cfg(test)]
mod tests;
