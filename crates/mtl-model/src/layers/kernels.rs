//! CPU kernels of the convolutions: im2col, col2im and the `gemm` calls,
//! generic over f32 and f64, with the batch split over candle's own CPU thread pool.
//!
//! Everything here works on contiguous row-major slices; the candle ops in
//! `conv` check layouts and dtypes before calling in.

use std::ops::Range;
use std::sync::Mutex;

use super::fresh::{all_written, Fresh};
use super::parallel::{lockable_chunks, parallel_for, zeroed, Element};
use super::pool::{max_relu_row, pool_plane, unmax_row, unpool_plane, Winner};
use super::relu::clamp_slice;
use super::winograd;

/// A row stride for rows of `values` elements that gemm packs by gathering one value per
/// row (dY in the kernel gradients): the row rounded up to an odd number of 64-byte lines.
/// Rows a power-of-two number of lines apart (768 positions: 48 lines) fall into a few of
/// L1's 64 sets, and the rows gemm packs together evict each other; an odd stride spreads
/// them over every set. Only the stride changes, so results keep their bits (64 → 64 at
/// 24×32 backward about 10% faster, 256 → 128 at 12×16 about 10%: `docs/performance.md`).
pub(super) fn odd_lines<T>(values: usize) -> usize {
    let per_line = (64 / std::mem::size_of::<T>()).max(1);
    per_line * (values.div_ceil(per_line) | 1)
}

/// The most samples in one unit of work (one matrix product over their patches).
const MAX_SAMPLES_PER_CHUNK: usize = 8;

/// The fewest units a batch is cut into where it can be: one per core of the machine,
/// from 2 to 4. At batch 8 (the dense workloads) a single unit would leave every other
/// core idle, and units beyond the cores only add each unit's own costs (its products'
/// packing of the weights, its scratch): on 2 cores, w6's convolutions took 288 ms a step
/// in 2 units against 328 in 4 (`docs/performance.md`). The machine's cores, not the
/// threads a run is given, so that results do not depend on the thread count.
fn min_chunks() -> usize {
    static CHUNKS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CHUNKS.get_or_init(|| std::thread::available_parallelism().map_or(4, |cores| cores.get()).clamp(2, 4))
}

/// Samples per unit of work for a batch of `batch`: up to [`MAX_SAMPLES_PER_CHUNK`], fewer
/// for small batches so that there are [`min_chunks`] units. It depends on the batch and
/// the machine alone, never on the number of threads, so that the batch sums of the
/// weight and bias gradients are added in the same order however many threads run:
/// results are bit-identical with `RAYON_NUM_THREADS=1` and `=2`.
pub(super) fn samples_per_chunk(batch: usize) -> usize {
    batch.div_ceil(min_chunks()).clamp(1, MAX_SAMPLES_PER_CHUNK)
}

/// The most output positions in one matrix product. A chunk's patches are built and
/// multiplied a tile at a time, so that the patches (`C·kh·kw` rows of this many values:
/// 2.3 MB for 3×3 over 64 channels) are still in the core's cache when the product reads
/// them; one product over a whole chunk at 96×128 px made 57 MB of patches per call.
const TILE_POSITIONS: usize = 1024;

/// Output rows `rows` of a chunk's sample `sample`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    sample: usize,
    rows: Range<usize>,
}

/// A chunk of `samples` samples cut into tiles of at most [`TILE_POSITIONS`] positions
/// (at least one sample's row): whole samples side by side while they fit, or blocks of
/// one sample's rows. Pooled outputs need whole planes, so their tiles hold whole
/// samples. The cut depends on the shapes alone, so sums keep their order.
fn tiles(geometry: &Geometry, samples: usize, kind: Output) -> Vec<Vec<Segment>> {
    let (out_height, out_width) = (geometry.out_height(), geometry.out_width());
    let positions = out_height * out_width;
    if positions > TILE_POSITIONS && !kind.pools() {
        let rows_per_tile = (TILE_POSITIONS / out_width.max(1)).max(1);
        let blocks = |sample| {
            (0..out_height)
                .step_by(rows_per_tile)
                .map(move |start| vec![Segment { sample, rows: start..(start + rows_per_tile).min(out_height) }])
        };
        return (0..samples).flat_map(blocks).collect();
    }
    let per_tile = (TILE_POSITIONS / positions.max(1)).max(1);
    let whole = |sample| Segment { sample, rows: 0..out_height };
    (0..samples).step_by(per_tile).map(|first| (first..(first + per_tile).min(samples)).map(whole).collect()).collect()
}

/// Output positions of a tile.
fn tile_width(tile: &[Segment], out_width: usize) -> usize {
    tile.iter().map(|segment| segment.rows.len() * out_width).sum()
}

/// Shapes of a zero-padded convolution of `[B, C, H, W]` by `[O, C, kh, kw]` with
/// the same stride along both axes (a 1-D convolution is the case `H = kh = 1`, no
/// row padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) in_channels: usize,
    pub(super) in_height: usize,
    pub(super) in_width: usize,
    pub(super) out_channels: usize,
    pub(super) kernel_height: usize,
    pub(super) kernel_width: usize,
    pub(super) pad_height: usize,
    pub(super) pad_width: usize,
    /// At least 1.
    pub(super) stride: usize,
}

impl Geometry {
    pub(super) fn out_height(&self) -> usize {
        (self.in_height + 2 * self.pad_height - self.kernel_height) / self.stride + 1
    }

    pub(super) fn out_width(&self) -> usize {
        (self.in_width + 2 * self.pad_width - self.kernel_width) / self.stride + 1
    }

    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel_height * self.kernel_width
    }

    /// Columns of the im2col matrix: one per output position.
    fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    fn input_len(&self) -> usize {
        self.in_channels * self.in_height * self.in_width
    }

    fn output_len(&self) -> usize {
        self.out_channels * self.positions()
    }

    /// The output columns `lo..hi` whose input column (`ox·stride + j − pad`) lies inside
    /// the image; output column `lo` reads input column [`Self::first_input_column`].
    fn valid_columns(&self, j: usize) -> (usize, usize) {
        let out_width = self.out_width();
        let lo = self.pad_width.saturating_sub(j).div_ceil(self.stride).min(out_width);
        let hi = (self.in_width + self.pad_width).saturating_sub(j).div_ceil(self.stride).min(out_width).max(lo);
        (lo, hi)
    }

    /// The input column that output column `lo` (from [`Self::valid_columns`]) reads
    /// through kernel column `j`.
    fn first_input_column(&self, lo: usize, j: usize) -> usize {
        lo * self.stride + j - self.pad_width
    }

    /// The input row read by output row `oy` through kernel row `i`, if inside the image.
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride + i).checked_sub(self.pad_height).filter(|&row| row < self.in_height)
    }
}

/// Output rows `rows` of one sample `[C, H, W]` → their patches `[C·kh·kw, rows·Wo]`,
/// zeros where the window reads padding. Row r of the patches starts at
/// `columns[r·row_stride]`, so that the patches of several samples can sit side by side
/// in one matrix.
fn im2col<T: Element>(geometry: &Geometry, input: &[T], rows: Range<usize>, columns: &mut [T], row_stride: usize) {
    let (width, out_width) = (geometry.in_width, geometry.out_width());
    let positions = rows.len() * out_width;
    let stride = geometry.stride;
    let zero = T::from_f64(0.0);
    let mut row_idx = 0;
    for channel in 0..geometry.in_channels {
        for i in 0..geometry.kernel_height {
            for j in 0..geometry.kernel_width {
                let row = &mut columns[row_idx * row_stride..][..positions];
                row_idx += 1;
                let (lo, hi) = geometry.valid_columns(j);
                for (oy, out) in rows.clone().zip(row.chunks_exact_mut(out_width)) {
                    let Some(input_row) = geometry.input_row(oy, i) else {
                        out.fill(zero);
                        continue;
                    };
                    let source = &input[(channel * geometry.in_height + input_row) * width..][..width];
                    out[..lo].fill(zero);
                    out[hi..].fill(zero);
                    if lo < hi {
                        let source = &source[geometry.first_input_column(lo, j)..];
                        if stride == 1 {
                            out[lo..hi].copy_from_slice(&source[..hi - lo]);
                        } else {
                            out[lo..hi].iter_mut().zip(source.iter().step_by(stride)).for_each(|(o, &v)| *o = v);
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds the patch gradients of output rows `rows` back onto
/// the input positions they were read from.
fn col2im<T: Element>(geometry: &Geometry, rows: Range<usize>, columns: &[T], row_stride: usize, input_grad: &mut [T]) {
    let (width, out_width) = (geometry.in_width, geometry.out_width());
    let positions = rows.len() * out_width;
    let stride = geometry.stride;
    let mut row_idx = 0;
    for channel in 0..geometry.in_channels {
        for i in 0..geometry.kernel_height {
            for j in 0..geometry.kernel_width {
                let row = &columns[row_idx * row_stride..][..positions];
                row_idx += 1;
                let (lo, hi) = geometry.valid_columns(j);
                if lo == hi {
                    continue;
                }
                for (oy, out) in rows.clone().zip(row.chunks_exact(out_width)) {
                    let Some(input_row) = geometry.input_row(oy, i) else { continue };
                    let target = &mut input_grad[(channel * geometry.in_height + input_row) * width..][..width];
                    let target = &mut target[geometry.first_input_column(lo, j)..];
                    if stride == 1 {
                        target.iter_mut().zip(&out[lo..hi]).for_each(|(t, &g)| *t += g);
                    } else {
                        target.iter_mut().step_by(stride).zip(&out[lo..hi]).for_each(|(t, &g)| *t += g);
                    }
                }
            }
        }
    }
}

/// [`col2im`] for patch gradients stored position by position (`[rows·Wo, C·kh·kw]`,
/// the layout gemm writes fastest when there are fewer positions than patch values).
fn col2im_by_position<T: Element>(geometry: &Geometry, rows: Range<usize>, grads: &[T], input_grad: &mut [T]) {
    let (height, width, out_width) = (geometry.in_height, geometry.in_width, geometry.out_width());
    let (kernel_height, kernel_width) = (geometry.kernel_height, geometry.kernel_width);
    let patch_len = geometry.patch_len();
    let positions = rows.flat_map(|oy| (0..out_width).map(move |ox| (oy, ox)));
    for ((oy, ox), patch) in positions.zip(grads.chunks_exact(patch_len)) {
        // Kernel rows i and columns j inside the image: y = oy·stride + i − pad.
        let (y0, x0) = (oy * geometry.stride, ox * geometry.stride);
        let i_range = geometry.pad_height.saturating_sub(y0)..(height + geometry.pad_height - y0).min(kernel_height);
        let j_range = geometry.pad_width.saturating_sub(x0)..(width + geometry.pad_width - x0).min(kernel_width);
        for (channel, kernel) in patch.chunks_exact(kernel_height * kernel_width).enumerate() {
            let plane = &mut input_grad[channel * height * width..][..height * width];
            for i in i_range.clone() {
                let row = &mut plane[(y0 + i - geometry.pad_height) * width..][..width];
                let kernel_row = &kernel[i * kernel_width..][..kernel_width];
                for j in j_range.clone() {
                    row[x0 + j - geometry.pad_width] += kernel_row[j];
                }
            }
        }
    }
}

/// `Σ values` in 8 interleaved partial sums (added in a fixed order), so that the adds
/// do not wait on each other.
pub(super) fn lane_sum<T: Element>(values: &[T]) -> T {
    const LANES: usize = 8;
    let zero = T::from_f64(0.0);
    let mut lanes = [zero; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(zero, |sum, &v| sum + v);
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(lane, &v)| *lane += v);
    }
    lanes.iter().fold(zero, |sum, &v| sum + v) + tail
}

/// Side of the blocks [`transpose`] moves at a time.
const TRANSPOSE_BLOCK: usize = 16;

/// `dst[cols×rows]` = `src[rows×cols]`ᵀ (both row-major), a block at a time so that
/// both sides stay in the cache.
fn transpose<T: Element>(src: &[T], (rows, cols): (usize, usize), dst: &mut [T]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose");
    // A strip of destination rows (source columns) per unit of parallel work.
    let strips = lockable_chunks(&mut dst[..rows * cols], TRANSPOSE_BLOCK * rows.max(1));
    parallel_for(strips.len(), rows * cols, |strip| {
        let columns = strip * TRANSPOSE_BLOCK..((strip + 1) * TRANSPOSE_BLOCK).min(cols);
        transpose_strip(src, (rows, cols), columns, &mut strips[strip].lock().expect("transpose strip"));
    });
}

/// Rows `columns` of [`transpose`]'s destination (source columns), into `out`, on this thread.
fn transpose_strip<T: Copy>(src: &[T], (rows, cols): (usize, usize), columns: Range<usize>, out: &mut [T]) {
    for row_block in (0..rows).step_by(TRANSPOSE_BLOCK) {
        for r in row_block..(row_block + TRANSPOSE_BLOCK).min(rows) {
            for c in columns.clone() {
                out[(c - columns.start) * rows + r] = src[r * cols + c];
            }
        }
    }
}

/// A read-only matrix view for [`matmul`]: element (r, c) is `data[r·row_stride + c·col_stride]`.
pub(super) struct View<'a, T> {
    pub(super) data: &'a [T],
    pub(super) row_stride: usize,
    pub(super) col_stride: usize,
}

/// `dst[m×n]` (row-major, contiguous) = (`accumulate` ? `dst` : 0) + `lhs[m×k]` · `rhs[k×n]`,
/// single-threaded (the callers parallelise over samples).
pub(super) fn matmul<T: Element>(
    dst: &mut [T],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    lhs: View<T>,
    rhs: View<T>,
) {
    assert_eq!(dst.len(), m * n, "matmul destination");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(T::from_f64(0.0));
        }
        return;
    }
    // gemm reads through raw pointers: the last element of each operand must be in bounds.
    assert!((m - 1) * lhs.row_stride + (k - 1) * lhs.col_stride < lhs.data.len(), "matmul lhs");
    assert!((k - 1) * rhs.row_stride + (n - 1) * rhs.col_stride < rhs.data.len(), "matmul rhs");
    // SAFETY: the asserts above keep every access in bounds; `dst` is borrowed mutably and
    // does not alias the operands; T is f32 or f64 (the `Element` impls), which gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            T::from_f64(1.0),
            T::from_f64(1.0),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Whether the convolution's output is pooled inside the op: the full-size output
/// then never leaves the chunk's scratch buffer, and neither does its gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Output {
    /// `[B, O, Ho, Wo]`.
    Full,
    /// `relu(·)`: `[B, O, Ho, Wo]`, clamped as it is written.
    FullRelu,
    /// `relu(max_pool2x2(·))`: `[B, O, Ho/2, Wo/2]`, plus each window's winner.
    PooledRelu,
    /// `relu(max over the row)` of a 1-D convolution: `[B, O]`, plus each row's winner.
    MaxReluOverTime,
}

impl Output {
    /// Whether the op's output is pooled (and records winners).
    pub(super) fn pools(self) -> bool {
        matches!(self, Output::PooledRelu | Output::MaxReluOverTime)
    }
}

impl Geometry {
    /// Elements of one sample's op output.
    pub(super) fn op_output_len(&self, output: Output) -> usize {
        match output {
            Output::Full | Output::FullRelu => self.output_len(),
            Output::PooledRelu => self.out_channels * (self.out_height() / 2) * (self.out_width() / 2),
            Output::MaxReluOverTime => self.out_channels,
        }
    }
}

/// `y[b] = bias + weight · im2col(x[b])` for every sample, pooled if asked:
/// `[B, C, H, W]`, `[O, C·kh·kw]`, `[O]` → `[B, O, Ho·Wo]` (or the pooled
/// `[B, O, Ho/2·Wo/2]` or `[B, O]` and its winners; no winners otherwise). Chunks of
/// [`samples_per_chunk`] samples run in parallel, each as one matrix product over
/// the patches of all its samples side by side (bigger products run faster than
/// one small product per sample).
pub(super) fn conv_forward<T: Element>(
    geometry: &Geometry,
    input: &[T],
    weight: &[T],
    bias: &[T],
    kind: Output,
) -> (Vec<T>, Vec<Winner>) {
    let (patch_len, positions, out_channels) = (geometry.patch_len(), geometry.positions(), geometry.out_channels);
    let (input_len, output_len) = (geometry.input_len(), geometry.op_output_len(kind));
    let out_width = geometry.out_width();
    let (pooled_width, pooled_len) = (out_width / 2, output_len / out_channels.max(1));
    if !kind.pools() && winograd::applies(geometry) {
        // Each output plane written once, row by row (no zeroing pass first).
        let mut output = Fresh::new(geometry.batch * output_len);
        let planes = output.parts(std::iter::repeat_n(positions, geometry.batch * out_channels));
        winograd::convolve(geometry, input, weight, (Some(bias), kind == Output::FullRelu), &planes);
        let written = all_written(planes);
        return (output.finish(written), Vec::new());
    }
    let mut output = zeroed(geometry.batch * output_len);
    let mut winners = vec![0; if kind.pools() { output.len() } else { 0 }];
    let per_chunk = samples_per_chunk(geometry.batch);
    let chunks = lockable_chunks(&mut output, per_chunk * output_len);
    let winner_chunks = lockable_chunks(&mut winners, per_chunk * output_len);
    let cost = geometry.batch * positions * patch_len * out_channels;
    parallel_for(chunks.len(), cost, |chunk_idx| {
        let mut out = chunks[chunk_idx].lock().expect("output chunk");
        // None for a full output, which records no winners.
        let mut winners = winner_chunks.get(chunk_idx).map(|chunk| chunk.lock().expect("winner chunk"));
        let samples = out.len() / output_len.max(1);
        let x = &input[chunk_idx * per_chunk * input_len..][..samples * input_len];
        let tiles = tiles(geometry, samples, kind);
        let most = tiles.iter().map(|tile| tile_width(tile, out_width)).max().unwrap_or(0);
        T::with_scratch((patch_len + out_channels) * most, |scratch| {
            for tile in &tiles {
                let width = tile_width(tile, out_width);
                let (columns, product) = scratch.split_at_mut(patch_len * width);
                let product = &mut product[..out_channels * width];
                let mut offset = 0;
                for Segment { sample, rows } in tile {
                    let len = rows.len() * out_width;
                    im2col(
                        geometry,
                        &x[sample * input_len..][..input_len],
                        rows.clone(),
                        &mut columns[offset..],
                        width,
                    );
                    offset += len;
                }
                // The bias is fused: the product is accumulated onto it.
                for (row, &b) in product.chunks_exact_mut(width).zip(bias) {
                    row.fill(b);
                }
                let lhs = View { data: weight, row_stride: patch_len, col_stride: 1 };
                let rhs = View { data: &*columns, row_stride: width, col_stride: 1 };
                matmul(product, (out_channels, width, patch_len), true, lhs, rhs);
                // [O, tile] → [samples, O, N], pooled on the way if asked.
                for (o, row) in product.chunks_exact(width).enumerate() {
                    let mut offset = 0;
                    for Segment { sample, rows } in tile {
                        let values = &row[offset..][..rows.len() * out_width];
                        offset += values.len();
                        let target = sample * output_len + o * pooled_len;
                        match (kind, winners.as_deref_mut()) {
                            (Output::PooledRelu, Some(winners)) => {
                                let (out, winners) =
                                    (&mut out[target..][..pooled_len], &mut winners[target..][..pooled_len]);
                                pool_plane(values, out_width, out, winners, pooled_width, true);
                            }
                            (Output::MaxReluOverTime, Some(winners)) => {
                                (out[target], winners[target]) = max_relu_row(values);
                            }
                            (Output::FullRelu, _) => {
                                let out = &mut out[target + rows.start * out_width..][..values.len()];
                                out.copy_from_slice(values);
                                clamp_slice(out);
                            }
                            _ => out[target + rows.start * out_width..][..values.len()].copy_from_slice(values),
                        }
                    }
                }
            }
        })
    });
    drop((chunks, winner_chunks));
    (output, winners)
}

/// One chunk's sums of (dWᵀ, db).
pub(super) type PartialSums<T> = (Vec<T>, Vec<T>);

/// Elements of the partial kernel gradients added as one unit of parallel work.
const SUM_SLICE: usize = 1 << 16;

/// The chunks' partial sums (at least one) added in chunk order, a slice of the kernel
/// gradient per unit of parallel work: each element's sum has the same order however
/// many threads run.
pub(super) fn add_partials<T: Element>(mut partials: Vec<PartialSums<T>>) -> PartialSums<T> {
    let (mut weight_grad, mut bias_grad) = partials.remove(0);
    let weight_len = weight_grad.len();
    let slices = lockable_chunks(&mut weight_grad, SUM_SLICE);
    parallel_for(slices.len(), partials.len() * weight_len, |slice_idx| {
        let mut sums = slices[slice_idx].lock().expect("partial sums");
        for (part, _) in &partials {
            let part = &part[slice_idx * SUM_SLICE..][..sums.len()];
            sums.iter_mut().zip(part).for_each(|(sum, &v)| *sum += v);
        }
    });
    drop(slices);
    for (_, bias_part) in &partials {
        bias_grad.iter_mut().zip(bias_part).for_each(|(sum, &v)| *sum += v);
    }
    (weight_grad, bias_grad)
}

/// The gradient arriving at a convolution op: of its full output `[B, O, Ho·Wo]`, or of
/// its pooled output (`output` says which) with the winners its forward pass recorded.
#[derive(Clone, Copy)]
pub(super) enum OutputGrad<'a, T> {
    Full(&'a [T]),
    Pooled { output: Output, grad: &'a [T], winners: &'a [Winner] },
}

/// dW `[O, C·kh·kw]`, db `[O]` and (if `with_input`) dX `[B, C, H, W]`, one after the
/// other in one vector, in one pass over the batch (a pooled output's
/// gradient is routed back to the full output in the chunk's scratch). Chunks of
/// [`samples_per_chunk`] samples run in parallel, each summing its own partial
/// dW and db; the partials are then added in chunk order (see the constant).
pub(super) fn conv_backward<T: Element>(
    geometry: &Geometry,
    input: &[T],
    weight: &[T],
    output_grad: OutputGrad<T>,
    with_input: bool,
) -> Vec<T> {
    let (patch_len, positions, out_channels) = (geometry.patch_len(), geometry.positions(), geometry.out_channels);
    let input_len = geometry.input_len();
    let kind = match output_grad {
        OutputGrad::Full(_) => Output::Full,
        OutputGrad::Pooled { output, .. } => output,
    };
    let out_width = geometry.out_width();
    let (output_len, pooled_width) = (geometry.op_output_len(kind), out_width / 2);
    let pooled_len = output_len / out_channels.max(1);
    let zero = T::from_f64(0.0);
    if let (true, OutputGrad::Full(grad)) = (winograd::applies(geometry), output_grad) {
        // dW and db, then dX = dY ⋆ the flipped kernels (padding 1).
        let (weight_grad, bias_grad) = winograd::kernel_gradient(geometry, input, grad);
        let weight_and_bias = weight_grad.len() + bias_grad.len();
        let input_planes = if with_input { geometry.batch * geometry.in_channels } else { 0 };
        let plane = geometry.in_height * geometry.in_width;
        let mut packed = Fresh::new(weight_and_bias + input_planes * plane);
        let parts = packed.parts(std::iter::once(weight_and_bias).chain(std::iter::repeat_n(plane, input_planes)));
        parts[0].lock().expect("kernel gradient").write(weight_grad.into_iter().chain(bias_grad));
        if with_input {
            let transposed = Geometry { in_channels: out_channels, out_channels: geometry.in_channels, ..*geometry };
            let flipped = winograd::flipped_kernels(weight, out_channels, geometry.in_channels);
            winograd::convolve(&transposed, grad, &flipped, (None, false), &parts[1..]);
        }
        let written = all_written(parts);
        return packed.finish(written);
    }
    let per_chunk = samples_per_chunk(geometry.batch);
    let n_chunks = geometry.batch.div_ceil(per_chunk);
    let whole_batch = match output_grad {
        OutputGrad::Full(grad) => whole_batch_kernel_gradient(geometry, n_chunks).then_some(grad),
        OutputGrad::Pooled { .. } => None,
    };
    let chunk = |chunk_idx: usize, input_grad: Option<&mut [T]>| -> Option<PartialSums<T>> {
        let first = chunk_idx * per_chunk;
        let samples = (first + per_chunk).min(geometry.batch) - first;
        let with_weight = whole_batch.is_none();
        let mut weight_grad_t = vec![zero; if with_weight { patch_len * out_channels } else { 0 }];
        let mut bias_grad = vec![zero; out_channels];
        let mut input_grad = input_grad;
        let tiles = tiles(geometry, samples, kind);
        let most = tiles.iter().map(|tile| tile_width(tile, out_width)).max().unwrap_or(0);
        // Patches, dY, and with dX the patch gradients.
        let grad_buffers = usize::from(with_input);
        let scratch_len = (1 + grad_buffers) * patch_len * most + out_channels * odd_lines::<T>(most);
        T::with_scratch(scratch_len, |scratch| {
            for (tile_idx, tile) in tiles.iter().enumerate() {
                let width = tile_width(tile, out_width);
                let (columns, rest) = scratch.split_at_mut(patch_len * width);
                let dy_stride = odd_lines::<T>(width);
                let (dy, column_grads) = rest.split_at_mut(out_channels * dy_stride);
                let dy = &mut dy[..out_channels * dy_stride];
                let column_grads = &mut column_grads[..grad_buffers * patch_len * width];
                // The tile's patches side by side [K, tile] (only dW reads them), and dY as
                // [O, tile].
                let mut offset = 0;
                for Segment { sample, rows } in tile {
                    let (sample, len) = (first + sample, rows.len() * out_width);
                    if with_weight {
                        let x = &input[sample * input_len..][..input_len];
                        im2col(geometry, x, rows.clone(), &mut columns[offset..], width);
                    }
                    for o in 0..out_channels {
                        let target = &mut dy[o * dy_stride + offset..][..len];
                        let source = sample * output_len + o * pooled_len;
                        match output_grad {
                            OutputGrad::Full(grad) => {
                                target.copy_from_slice(&grad[source + rows.start * out_width..][..len]);
                            }
                            OutputGrad::Pooled { output: Output::MaxReluOverTime, grad, winners } => {
                                unmax_row(grad[source], winners[source], target);
                            }
                            OutputGrad::Pooled { grad, winners, .. } => {
                                let (grad, winners) = (&grad[source..][..pooled_len], &winners[source..][..pooled_len]);
                                unpool_plane(grad, winners, pooled_width, target, out_width);
                            }
                        }
                    }
                    offset += len;
                }
                // dWᵀ += columns[K×M] · dYᵀ[M×O], with M the tile's positions (gemm runs this
                // orientation about 3× faster than dY · columnsᵀ when O is small).
                if with_weight {
                    let lhs = View { data: &*columns, row_stride: width, col_stride: 1 };
                    let rhs = View { data: &*dy, row_stride: 1, col_stride: dy_stride };
                    matmul(&mut weight_grad_t, (patch_len, out_channels, width), tile_idx > 0, lhs, rhs);
                    for (b, row) in bias_grad.iter_mut().zip(dy.chunks_exact(dy_stride)) {
                        *b += lane_sum(&row[..width]);
                    }
                }
                if let Some(input_grad) = input_grad.as_deref_mut() {
                    // dcolumns[K×M] = Wᵀ[K×O] · dY[O×M], then back onto each image. Where
                    // M < K (deep stages), gemm runs dYᵀ[M×O] · W[O×K] about 2× faster; its
                    // [M×K] result is read back position by position.
                    let by_position = width < patch_len;
                    if by_position {
                        let lhs = View { data: &*dy, row_stride: 1, col_stride: dy_stride };
                        let rhs = View { data: weight, row_stride: patch_len, col_stride: 1 };
                        matmul(column_grads, (width, patch_len, out_channels), false, lhs, rhs);
                    } else {
                        let lhs = View { data: weight, row_stride: 1, col_stride: patch_len };
                        let rhs = View { data: &*dy, row_stride: dy_stride, col_stride: 1 };
                        matmul(column_grads, (patch_len, width, out_channels), false, lhs, rhs);
                    }
                    let mut offset = 0;
                    for Segment { sample, rows } in tile {
                        let target = &mut input_grad[sample * input_len..][..input_len];
                        if by_position {
                            let grads = &column_grads[offset * patch_len..][..rows.len() * out_width * patch_len];
                            col2im_by_position(geometry, rows.clone(), grads, target);
                        } else {
                            col2im(geometry, rows.clone(), &column_grads[offset..], width, target);
                        }
                        offset += rows.len() * out_width;
                    }
                }
            }
        });
        with_weight.then_some((weight_grad_t, bias_grad))
    };

    let (weight_len, input_grad_len) =
        (out_channels * patch_len, if with_input { geometry.batch * input_len } else { 0 });
    let mut packed = zeroed(weight_len + out_channels + input_grad_len);
    let (weight_and_bias, input_grad) = packed.split_at_mut(weight_len + out_channels);
    // Each chunk's partial (dW, db), filled in by whichever thread runs it.
    let partials: Vec<Mutex<Option<PartialSums<T>>>> = (0..n_chunks).map(|_| Mutex::new(None)).collect();
    // Without dX, a whole-batch dW leaves the chunks nothing to do.
    if with_input || whole_batch.is_none() {
        let grad_chunks = with_input.then(|| lockable_chunks(input_grad, per_chunk * input_len));
        // dW and, where wanted, dX: one or two products the size of the forward one.
        let cost = geometry.batch * positions * patch_len * out_channels * if with_input { 2 } else { 1 };
        parallel_for(n_chunks, cost, |chunk_idx| {
            let result = match &grad_chunks {
                Some(chunks) => chunk(chunk_idx, Some(&mut chunks[chunk_idx].lock().expect("input gradient chunk"))),
                None => chunk(chunk_idx, None),
            };
            *partials[chunk_idx].lock().expect("partial sums") = result;
        });
    }
    let (weight_grad, bias) = weight_and_bias.split_at_mut(weight_len);
    if let Some(grad) = whole_batch {
        kernel_gradient_by_channels(geometry, input, grad, weight_grad, bias);
        return packed;
    }
    let partials = partials.into_iter().map(|p| p.into_inner().expect("partial sums").expect("every chunk ran"));
    let (weight_grad_t, bias_grad) = match n_chunks {
        0 => (vec![zero; out_channels * patch_len], vec![zero; out_channels]),
        _ => add_partials(partials.collect()),
    };
    // [K, O] → [O, K].
    transpose(&weight_grad_t, (patch_len, out_channels), weight_grad);
    bias.copy_from_slice(&bias_grad);
    packed
}

/// The most patch values (`C·kh·kw` × the batch's output positions) that
/// [`kernel_gradient_by_channels`] builds at once.
const WHOLE_BATCH_PATCHES: usize = 1 << 22;

/// Whether dW is one product over the whole batch's patches, split by output channels
/// ([`kernel_gradient_by_channels`]), rather than a partial sum per chunk of samples: where
/// the partials (`C·kh·kw·O` values per chunk) would be more than 4× the batch's patches,
/// as in deep layers on small planes (512 → 512 on 3×4 at batch 8: 2.4 M values per
/// partial against 0.44 M patch values). It depends on the shapes alone.
fn whole_batch_kernel_gradient(geometry: &Geometry, n_chunks: usize) -> bool {
    let batch_positions = geometry.batch * geometry.positions();
    n_chunks * geometry.out_channels >= 4 * batch_positions
        && geometry.patch_len() * batch_positions <= WHOLE_BATCH_PATCHES
}

/// dW `[O, C·kh·kw]` = dY `[O, B·Ho·Wo]` · patchesᵀ and db `[O]` = the rows' sums, from the
/// full output gradient `grad` `[B, O, Ho·Wo]`: the batch's patches are built once, and
/// each unit of parallel work computes a block of output channels' rows.
fn kernel_gradient_by_channels<T: Element>(
    geometry: &Geometry,
    input: &[T],
    grad: &[T],
    weight_grad: &mut [T],
    bias_grad: &mut [T],
) {
    const ROWS: usize = 32;
    let (patch_len, positions, out_channels) = (geometry.patch_len(), geometry.positions(), geometry.out_channels);
    let (input_len, batch_positions) = (geometry.input_len(), geometry.batch * positions);
    let zero = T::from_f64(0.0);
    // The patches position by position [B·Ho·Wo, K], a sample per unit of parallel work
    // (im2col in the thread's scratch, then transposed): gemm reads them as the packed side
    // of each block's product without gathering one value per row (8% of a 512 → 512
    // backward at 3×4, same bits).
    let mut patches = vec![zero; patch_len * batch_positions];
    let sample_patches = lockable_chunks(&mut patches, positions * patch_len);
    parallel_for(sample_patches.len(), batch_positions * patch_len, |sample| {
        let x = &input[sample * input_len..][..input_len];
        T::with_scratch(patch_len * positions, |columns| {
            im2col(geometry, x, 0..geometry.out_height(), columns, positions);
            let mut out = sample_patches[sample].lock().expect("sample patches");
            transpose_strip(columns, (patch_len, positions), 0..positions, &mut out);
        });
    });
    drop(sample_patches);
    let mut dy = vec![zero; out_channels * batch_positions];
    for sample in 0..geometry.batch {
        for o in 0..out_channels {
            let source = &grad[(sample * out_channels + o) * positions..][..positions];
            dy[o * batch_positions + sample * positions..][..positions].copy_from_slice(source);
        }
    }
    for (b, row) in bias_grad.iter_mut().zip(dy.chunks_exact(batch_positions.max(1))) {
        *b = lane_sum(row);
    }
    let blocks = lockable_chunks(weight_grad, ROWS * patch_len);
    parallel_for(blocks.len(), batch_positions * patch_len * out_channels, |block| {
        let mut rows = blocks[block].lock().expect("kernel gradient rows");
        let n_rows = rows.len() / patch_len.max(1);
        let lhs = View { data: &dy[block * ROWS * batch_positions..], row_stride: batch_positions, col_stride: 1 };
        let rhs = View { data: &patches, row_stride: patch_len, col_stride: 1 };
        matmul(&mut rows, (n_rows, patch_len, batch_positions), false, lhs, rhs);
    });
}
