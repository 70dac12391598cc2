//! [`Conv1d`] and [`Conv2d`]: zero-padded convolutions with a fused bias (stride 1,
//! or any stride for [`Conv2d`]), as candle custom ops over the kernels of
//! `super::kernels`.
//!
//! One op serves both: a 1-D convolution is a 2-D one over a single row
//! (`[B, C, T]` is read as `[B, C, 1, T]`, the kernel `[O, C, k]` as `[O, C, 1, k]`).

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Module, Result, Shape, Storage, Tensor, WithDType};
use candle_nn::VarBuilder;

use super::bilinear::{upsample_backward, upsample_bilinear_fused, upsample_storage};
use super::kernels::{conv_backward, conv_forward, Geometry, Output, OutputGrad};
use super::parallel::Element;
use super::pool::Winner;
use super::relu::relu_backward;
use crate::init::{Fan, InitScheme};

/// 1-D convolution, stride 1, zero padding on both sides, bias fused.
#[derive(Clone, Debug)]
pub struct Conv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    padding: usize,
}

impl Conv1d {
    /// A convolution with `weight` `[out, in, k]` and optional `bias` `[out]`.
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>, padding: usize) -> Conv1d {
        Conv1d { weight, bias, padding }
    }

    /// Creates the parameters `weight` `[out, in, k]` and `bias` `[out]` under `vb` as
    /// `init` says (fan_in = in·k), in candle-nn 0.11.1's `conv1d` order (weight first);
    /// under [`InitScheme::Candle`] exactly as `conv1d` draws them.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Conv1d> {
        let fan = Fan { inputs: in_channels, outputs: out_channels, receptive_field: kernel };
        let weight = vb.get_with_hints((out_channels, in_channels, kernel), "weight", init.weight(fan))?;
        let bias = vb.get_with_hints(out_channels, "bias", init.bias(fan))?;
        Ok(Conv1d { weight, bias: Some(bias), padding })
    }

    /// `[B, in, T]` → `[B, out, T + 2·padding − k + 1]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        convolve(xs, &self.weight, self.bias.as_ref(), ((0, self.padding), 1), Output::Full)
    }

    /// `relu(forward(xs))` maxed over time in one op: `[B, in, T]` → `[B, out]`. The
    /// gradient goes whole to the first maximum of each row, as PyTorch's `max(dim)`
    /// routes it (candle's `max` gives it to every tied position: on padded text, to
    /// each all-padding window). The full-size output stays in per-chunk scratch memory.
    pub fn forward_relu_max_over_time(&self, xs: &Tensor) -> Result<Tensor> {
        convolve(xs, &self.weight, self.bias.as_ref(), ((0, self.padding), 1), Output::MaxReluOverTime)
    }
}

impl Module for Conv1d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Conv1d::forward(self, xs)
    }
}

/// 2-D convolution, the same zero padding on every side and the same stride along
/// both axes (1 unless [`Conv2d::with_stride`] says otherwise), bias fused.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    padding: usize,
    stride: usize,
}

impl Conv2d {
    /// A stride-1 convolution with `weight` `[out, in, kh, kw]` and optional `bias` `[out]`.
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>, padding: usize) -> Conv2d {
        Conv2d { weight, bias, padding, stride: 1 }
    }

    /// The same convolution with `stride` (≥ 1; 0 is refused by `forward`) along both
    /// axes, as PyTorch's `Conv2d(stride=…)`: output row `oy` reads input rows from
    /// `oy·stride − padding`.
    pub fn with_stride(self, stride: usize) -> Conv2d {
        Conv2d { stride, ..self }
    }

    /// The stride along both axes.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Creates the parameters `weight` `[out, in, k, k]` and `bias` `[out]` under `vb` as
    /// `init` says (fan_in = in·k·k), in candle-nn 0.11.1's `conv2d` order (weight first);
    /// under [`InitScheme::Candle`] exactly as `conv2d` draws them (its bias bound uses
    /// the input channels only).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Conv2d> {
        let conv = Conv2d::new_without_bias(in_channels, out_channels, kernel, padding, init, vb.clone())?;
        let fan = Fan { inputs: in_channels, outputs: out_channels, receptive_field: kernel * kernel };
        let bias = vb.get_with_hints(out_channels, "bias", init.bias(fan))?;
        Ok(Conv2d { bias: Some(bias), ..conv })
    }

    /// As [`Conv2d::new`] without a bias (PyTorch's `bias=False`, as in ResNet, where a
    /// batch norm follows): only `weight` is created under `vb`, drawn as `init` says.
    pub fn new_without_bias(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        padding: usize,
        init: InitScheme,
        vb: VarBuilder,
    ) -> Result<Conv2d> {
        let fan = Fan { inputs: in_channels, outputs: out_channels, receptive_field: kernel * kernel };
        let shape = (out_channels, in_channels, kernel, kernel);
        let weight = vb.get_with_hints(shape, "weight", init.weight(fan))?;
        Ok(Conv2d { weight, bias: None, padding, stride: 1 })
    }

    /// `[B, in, H, W]` → `[B, out, Ho, Wo]` with `Ho = ⌊(H + 2·padding − kh) / stride⌋ + 1`
    /// (likewise `Wo`).
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let geometry = ((self.padding, self.padding), self.stride);
        convolve(xs, &self.weight, self.bias.as_ref(), geometry, Output::Full)
    }

    /// `relu(forward(xs))` in one op: the output is clamped as it is written, and the
    /// backward pass masks the output gradient once, where candle's relu makes another
    /// tensor forward and a comparison, a cast and a product backward.
    pub fn forward_relu(&self, xs: &Tensor) -> Result<Tensor> {
        let geometry = ((self.padding, self.padding), self.stride);
        convolve(xs, &self.weight, self.bias.as_ref(), geometry, Output::FullRelu)
    }

    /// `relu(max_pool2x2(forward(xs)))` in one op: `[B, in, H, W]` →
    /// `[B, out, Ho/2, Wo/2]`. The same values and gradients as the three ops in a
    /// row, but the full-size output and its gradient stay in per-chunk scratch
    /// memory instead of becoming tensors (the largest ones of a LeNet step).
    pub fn forward_pool_relu(&self, xs: &Tensor) -> Result<Tensor> {
        let geometry = ((self.padding, self.padding), self.stride);
        convolve(xs, &self.weight, self.bias.as_ref(), geometry, Output::PooledRelu)
    }

    /// `forward(upsample_bilinear_fused(xs, scale))` in one op: `[B, in, H, W]` →
    /// the convolution of `[B, in, scale·H, scale·W]`. The same values and gradients, but
    /// the up-sampled input is kept inside the op for its backward pass instead of
    /// becoming a node of the graph, whose gradient candle would allocate zeroed and add
    /// to (at the last step of `w6`'s decoder, 6.3 M values).
    pub fn forward_upsampled(&self, xs: &Tensor, scale: usize) -> Result<Tensor> {
        let geometry = ((self.padding, self.padding), self.stride);
        convolve_upsampled((xs, scale), &self.weight, self.bias.as_ref(), geometry, Output::Full)
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Conv2d::forward(self, xs)
    }
}

/// Padding (rows, columns) and stride.
type Spacing = ((usize, usize), usize);

fn convolve(xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>, spacing: Spacing, output: Output) -> Result<Tensor> {
    convolve_upsampled((xs, 1), weight, bias, spacing, output)
}

/// [`convolve`] of `xs` up-sampled bilinearly by `scale` (1: as it is).
fn convolve_upsampled(
    (xs, scale): (&Tensor, usize),
    weight: &Tensor,
    bias: Option<&Tensor>,
    spacing: Spacing,
    output: Output,
) -> Result<Tensor> {
    if !super::composed::kernels_apply(xs) {
        let xs = if scale > 1 { upsample_bilinear_fused(xs, scale)? } else { xs.clone() };
        return super::composed::convolve(&xs, weight, bias, spacing, output);
    }
    // The kernels read contiguous memory; `contiguous` is free when it already is.
    let bias = match bias {
        Some(bias) => bias.contiguous()?,
        // A constant zero bias keeps one op for both cases; it needs no gradient.
        None => Tensor::zeros(weight.dim(0)?, weight.dtype(), weight.device())?,
    };
    let upsample = (scale > 1).then(|| Upsample { scale, input: Mutex::new(None) });
    let op = ConvOp { spacing, output, winners: Mutex::new(None), upsample };
    xs.contiguous()?.apply_op3(&weight.contiguous()?, &bias, op)
}

/// `(x, weight, bias)` → the convolution (pooled if `output` says so).
struct ConvOp {
    spacing: Spacing,
    output: Output,
    /// A pooled output's winners, recorded by the forward pass for the backward pass
    /// (one op value per application, so it holds one forward's record).
    winners: Mutex<Option<Arc<Vec<Winner>>>>,
    /// Where the op up-samples its input first.
    upsample: Option<Upsample>,
}

/// The factor of an op's bilinear up-sampling of its input, and the up-sampled input
/// that the forward pass keeps for the backward pass.
struct Upsample {
    scale: usize,
    input: Mutex<Option<Tensor>>,
}

/// `(x, weight, output gradient)` → dW, db and (if `with_input`) dX, flattened
/// and concatenated in that order, so that one pass computes all three.
struct ConvBackwardOp {
    spacing: Spacing,
    with_input: bool,
    output: Output,
    /// The forward pass's winners when its output was pooled.
    winners: Option<Arc<Vec<Winner>>>,
}

fn geometry(input: &Layout, weight: &Layout, ((pad_height, pad_width), stride): Spacing) -> Result<Geometry> {
    let (batch, in_channels, in_height, in_width, out_channels, weight_channels, kernel_height, kernel_width) =
        match (input.dims(), weight.dims()) {
            (&[b, c, t], &[o, wc, k]) => (b, c, 1, t, o, wc, 1, k),
            (&[b, c, h, w], &[o, wc, kh, kw]) => (b, c, h, w, o, wc, kh, kw),
            (x, w) => candle_core::bail!(
                "conv: input {x:?} and kernel {w:?} must be [B, C, T] and [O, C, k] or [B, C, H, W] and [O, C, kh, kw]"
            ),
        };
    if weight_channels != in_channels {
        candle_core::bail!("conv: the input has {in_channels} channels, the kernel {weight_channels}");
    }
    if stride == 0 {
        candle_core::bail!("conv: stride 0");
    }
    if [in_channels, in_height, in_width, out_channels, kernel_height, kernel_width].contains(&0) {
        candle_core::bail!("conv: empty input {:?} or kernel {:?}", input.dims(), weight.dims());
    }
    if in_height + 2 * pad_height < kernel_height || in_width + 2 * pad_width < kernel_width {
        candle_core::bail!("conv: kernel {:?} larger than the padded input {:?}", weight.dims(), input.dims());
    }
    Ok(Geometry {
        batch,
        in_channels,
        in_height,
        in_width,
        out_channels,
        kernel_height,
        kernel_width,
        pad_height,
        pad_width,
        stride,
    })
}

/// The contiguous data of a tensor as a slice of `T`.
fn slice<'a, T: WithDType>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("conv: the {what} must be contiguous"),
    }
}

fn output_shape(input: &Layout, geometry: &Geometry, output: Output) -> Shape {
    let (batch, channels) = (geometry.batch, geometry.out_channels);
    match (input.dims().len(), output) {
        (_, Output::MaxReluOverTime) => Shape::from((batch, channels)),
        (3, _) => Shape::from((batch, channels, geometry.out_width())),
        (_, Output::Full | Output::FullRelu) => {
            Shape::from((batch, channels, geometry.out_height(), geometry.out_width()))
        }
        (_, Output::PooledRelu) => Shape::from((batch, channels, geometry.out_height() / 2, geometry.out_width() / 2)),
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "mtl-conv"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Some(upsample) = &self.upsample else {
            return self.convolve((input, input_layout), (weight, weight_layout), (bias, bias_layout));
        };
        let upsampled = upsample_storage(input, input_layout, upsample.scale)?;
        let result = {
            let (storage, input_layout) = upsampled.storage_and_layout();
            match &*storage {
                Storage::Cpu(input) => {
                    self.convolve((input, input_layout), (weight, weight_layout), (bias, bias_layout))
                }
                _ => candle_core::bail!("conv: the up-sampled input left the CPU"),
            }
        };
        *upsample.input.lock().expect("conv up-sampled input") = Some(upsampled);
        result
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        output: &Tensor,
        output_grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The network's first convolution reads the images, which need no gradient:
        // skipping dX there saves the costliest part of its backward.
        let with_input = input.track_op();
        let winners = self.winners.lock().expect("conv pool record").clone();
        if self.output.pools() && winners.is_none() {
            candle_core::bail!("conv: backward before forward");
        }
        let convolved = match &self.upsample {
            None => input.clone(),
            Some(upsample) => match upsample.input.lock().expect("conv up-sampled input").clone() {
                Some(upsampled) => upsampled,
                None => candle_core::bail!("conv: backward before forward"),
            },
        };
        let output_grad = match self.output {
            Output::FullRelu => relu_backward(output_grad, output)?,
            _ => output_grad.contiguous()?,
        };
        let backward = ConvBackwardOp { spacing: self.spacing, with_input, output: self.output, winners };
        // No backward of the backward: gradients of gradients are not needed.
        let packed = convolved.apply_op3_no_bwd(weight, &output_grad, &backward)?;
        let (n_weight, n_bias) = (weight.elem_count(), bias.elem_count());
        let weight_grad = packed.narrow(0, 0, n_weight)?.reshape(weight.shape())?;
        let bias_grad = packed.narrow(0, n_weight, n_bias)?;
        let input_grad = match with_input {
            true => {
                let grad = packed.narrow(0, n_weight + n_bias, convolved.elem_count())?.reshape(convolved.shape())?;
                Some(match &self.upsample {
                    Some(upsample) => upsample_backward(&grad, input.dims(), upsample.scale)?,
                    None => grad,
                })
            }
            false => None,
        };
        Ok((input_grad, weight.track_op().then_some(weight_grad), bias.track_op().then_some(bias_grad)))
    }
}

impl ConvOp {
    /// The forward pass on the op's (up-sampled) input.
    fn convolve(
        &self,
        (input, input_layout): Argument,
        (weight, weight_layout): Argument,
        (bias, bias_layout): Argument,
    ) -> Result<(CpuStorage, Shape)> {
        let geometry = geometry(input_layout, weight_layout, self.spacing)?;
        if bias_layout.dims() != [geometry.out_channels] {
            candle_core::bail!("conv: bias {:?} for {} output channels", bias_layout.dims(), geometry.out_channels);
        }
        match (self.output, input_layout.dims().len()) {
            (Output::PooledRelu, 3) => candle_core::bail!("conv: only a 2-D convolution can pool its output"),
            (Output::MaxReluOverTime, 4) => candle_core::bail!("conv: only a 1-D convolution can max over time"),
            _ => {}
        }
        let (input, weight, bias) = ((input, input_layout), (weight, weight_layout), (bias, bias_layout));
        let (output, winners) = match same_dtype(&[input.0, weight.0, bias.0])? {
            DType::F32 => forward::<f32>(&geometry, input, weight, bias, self.output)?,
            _ => forward::<f64>(&geometry, input, weight, bias, self.output)?,
        };
        if self.output.pools() {
            *self.winners.lock().expect("conv pool record") = Some(Arc::new(winners));
        }
        Ok((output, output_shape(input_layout, &geometry, self.output)))
    }
}

impl CustomOp3 for ConvBackwardOp {
    fn name(&self) -> &'static str {
        "mtl-conv-backward"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        output_grad: &CpuStorage,
        output_grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let geometry = geometry(input_layout, weight_layout, self.spacing)?;
        if output_grad_layout.shape() != &output_shape(input_layout, &geometry, self.output) {
            candle_core::bail!("conv backward: output gradient {:?}", output_grad_layout.dims());
        }
        let with_input = self.with_input;
        let (input, weight, output_grad) =
            ((input, input_layout), (weight, weight_layout), (output_grad, output_grad_layout));
        let pooled = self.winners.as_deref().map(|winners| (self.output, winners.as_slice()));
        let packed = match same_dtype(&[input.0, weight.0, output_grad.0])? {
            DType::F32 => backward::<f32>(&geometry, input, weight, (output_grad, pooled), with_input)?,
            _ => backward::<f64>(&geometry, input, weight, (output_grad, pooled), with_input)?,
        };
        let len = weight_layout.shape().elem_count()
            + geometry.out_channels
            + if with_input { input_layout.shape().elem_count() } else { 0 };
        Ok((packed, Shape::from(len)))
    }
}

type Argument<'a> = (&'a CpuStorage, &'a Layout);

fn forward<T: Element>(
    geometry: &Geometry,
    input: Argument,
    weight: Argument,
    bias: Argument,
    output: Output,
) -> Result<(CpuStorage, Vec<Winner>)> {
    let (output, winners) = conv_forward::<T>(
        geometry,
        slice(input.0, input.1, "input")?,
        slice(weight.0, weight.1, "kernel")?,
        slice(bias.0, bias.1, "bias")?,
        output,
    );
    Ok((T::to_cpu_storage_owned(output), winners))
}

fn backward<T: Element>(
    geometry: &Geometry,
    input: Argument,
    weight: Argument,
    (output_grad, pooled): (Argument, Option<(Output, &[Winner])>),
    with_input: bool,
) -> Result<CpuStorage> {
    let grad = slice(output_grad.0, output_grad.1, "output gradient")?;
    let output_grad = match pooled {
        Some((output, winners)) => OutputGrad::Pooled { output, grad, winners },
        None => OutputGrad::Full(grad),
    };
    let packed = conv_backward::<T>(
        geometry,
        slice(input.0, input.1, "input")?,
        slice(weight.0, weight.1, "kernel")?,
        output_grad,
        with_input,
    );
    Ok(T::to_cpu_storage_owned(packed))
}

/// The common dtype of the arguments, which must be f32 or f64.
fn same_dtype(storages: &[&CpuStorage]) -> Result<DType> {
    let dtype = storages[0].dtype();
    if storages.iter().any(|s| s.dtype() != dtype) || !matches!(dtype, DType::F32 | DType::F64) {
        let dtypes: Vec<DType> = storages.iter().map(|s| s.dtype()).collect();
        candle_core::bail!("conv: f32 or f64 tensors of one dtype expected, got {dtypes:?}");
    }
    Ok(dtype)
}
