//! Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", CVPR 2016) for the 3×3 convolutions with stride 1
//! and padding 1 that make up most of a ResNet's or a decoder's work: the forward pass
//! and the input gradient (itself such a convolution, of the output gradient by the
//! flipped kernel). Each 2×2 block of outputs reads a 4×4 input tile `d`:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, 16 products per tile and channel pair instead
//! of 36, as 16 matrix products `M_ξ[O×P] = U_ξ[O×C] · V_ξ[C×P]` over P tiles.
//! The kernel gradient is the same algorithm's adjoint: `dW = Gᵀ [Σ_tiles (A dY Aᵀ) ⊙
//! (Bᵀ d B)] G`, 16 products `[C×P]·[P×O]`.
//!
//! Like the im2col kernels, a batch is cut into chunks by its size alone and each
//! value is computed by one thread in a fixed order: results do not depend on the
//! number of threads.

use std::ops::Range;
use std::sync::Mutex;

use super::fresh::Part;
use super::kernels::{add_partials, lane_sum, matmul, odd_lines, samples_per_chunk, Geometry, PartialSums, View};
use super::parallel::{parallel_for, Element};

/// Input and output channels below this go through im2col: with few channels the
/// transforms cost more than the products they save.
const MIN_CHANNELS: usize = 16;

/// Aim for blocks whose transformed tiles and products (`16·(C + O)·P` values) take
/// about this many elements (2 MB of f32: the size of a core's L2 cache).
const BLOCK_VALUES: usize = 1 << 19;

/// Planes smaller than this on either side go through im2col: a tile row holds few tiles,
/// and the tiles past the edge (of a 3×3 or 5×5 plane) are wasted work.
const MIN_SIDE: usize = 8;

/// Batches with fewer 2×2 tiles than this go through im2col: the kernels' transforms
/// (`16·O·C` values, once per call) then cost more than the products save.
const MIN_TILES: usize = 1024;

/// Whether a convolution of `geometry` runs here: a 2-D 3×3 kernel, stride 1, padding 1,
/// with enough channels on both sides and a large enough batch of large enough planes.
/// (Measured on a 2-core AVX-512 Xeon: `docs/performance.md`.)
pub(super) fn applies(geometry: &Geometry) -> bool {
    let tiles = geometry.batch * geometry.in_height.div_ceil(2) * geometry.in_width.div_ceil(2);
    #[cfg(test)]
    let any_size = ANY_SIZE.with(std::cell::Cell::get);
    #[cfg(not(test))]
    let any_size = false;
    (geometry.kernel_height, geometry.kernel_width, geometry.stride) == (3, 3, 1)
        && (geometry.pad_height, geometry.pad_width) == (1, 1)
        && geometry.in_channels >= MIN_CHANNELS
        && geometry.out_channels >= MIN_CHANNELS
        && (any_size || (geometry.in_height.min(geometry.in_width) >= MIN_SIDE && tiles >= MIN_TILES))
}

#[cfg(test)]
thread_local! {
    static ANY_SIZE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with this thread's convolutions taking the Winograd path whatever their
/// plane and batch sizes, so that tests reach its edge cases on small inputs.
#[cfg(test)]
pub(super) fn at_any_size<R>(work: impl FnOnce() -> R) -> R {
    ANY_SIZE.with(|any| any.set(true));
    let result = work();
    ANY_SIZE.with(|any| any.set(false));
    result
}

/// `output[B, O, H, W]` = `input[B, C, H, W]` ⋆ `weight[O, C, 3, 3]` (+ `bias[O]`), then
/// the ReLU if `relu`, for a geometry [`applies`] accepts: `output` holds the `B·O`
/// planes, each written row by row.
pub(super) fn convolve<T: Element>(
    geometry: &Geometry,
    input: &[T],
    weight: &[T],
    (bias, relu): (Option<&[T]>, bool),
    output: &[Mutex<Part<'_, T>>],
) {
    debug_assert!(applies(geometry));
    let (channels, out_channels) = (geometry.in_channels, geometry.out_channels);
    let (height, width) = (geometry.in_height, geometry.in_width);
    let input_len = channels * height * width;
    assert_eq!(input.len(), geometry.batch * input_len, "winograd input");
    assert_eq!(output.len(), geometry.batch * out_channels, "winograd output planes");
    let transformed = transform_kernels(weight, out_channels, channels);
    let (tile_rows, tile_cols) = (height.div_ceil(2), width.div_ceil(2));
    let rows_per_block = (BLOCK_VALUES / (16 * (channels + out_channels) * tile_cols)).max(1);
    let per_chunk = samples_per_chunk(geometry.batch);
    let cost = geometry.batch * tile_rows * tile_cols * 16 * channels * out_channels;
    parallel_for(geometry.batch.div_ceil(per_chunk), cost, |chunk_idx| {
        let first = chunk_idx * per_chunk;
        let samples = (first + per_chunk).min(geometry.batch) - first;
        let mut planes: Vec<_> = output[first * out_channels..][..samples * out_channels]
            .iter()
            .map(|plane| plane.lock().expect("output plane"))
            .collect();
        let x = &input[chunk_idx * per_chunk * input_len..][..samples * input_len];
        // The chunk's rows of tiles, (sample, tile row), a block at a time.
        let rows: Vec<(usize, usize)> = (0..samples).flat_map(|s| (0..tile_rows).map(move |r| (s, r))).collect();
        let most = rows_per_block.min(rows.len()) * tile_cols;
        T::with_scratch(16 * (channels + out_channels) * most, |scratch| {
            let mut padded = Padded::new(rows_per_block.min(tile_rows), tile_cols);
            let run_tiles = rows_per_block.min(tile_rows) * tile_cols;
            let mut sums: [Vec<T>; 12] = std::array::from_fn(|_| vec![T::from_f64(0.0); run_tiles]);
            for block in rows.chunks(rows_per_block) {
                let tiles = block.len() * tile_cols;
                let (v, m) = scratch.split_at_mut(16 * channels * tiles);
                let m = &mut m[..16 * out_channels * tiles];
                transform_block(x, geometry, block, &mut padded, v);
                for xi in 0..16 {
                    let lhs = View {
                        data: &transformed[xi * out_channels * channels..],
                        row_stride: channels,
                        col_stride: 1,
                    };
                    let rhs = View { data: &v[xi * channels * tiles..], row_stride: tiles, col_stride: 1 };
                    let product = &mut m[xi * out_channels * tiles..][..out_channels * tiles];
                    matmul(product, (out_channels, tiles, channels), false, lhs, rhs);
                }
                for (start, sample, tile_rows) in runs(block) {
                    for o in 0..out_channels {
                        let plane = &mut planes[sample * out_channels + o];
                        let at = (o * tiles + start * tile_cols, out_channels * tiles);
                        let b = bias.map_or(T::from_f64(0.0), |bias| bias[o]);
                        untransform_rows(m, at, (b, relu), (height, width), tile_rows.clone(), &mut sums, plane);
                    }
                }
            }
        })
    });
}

/// dW `[O, C, 3, 3]` and db `[O]` of a convolution of `geometry` ([`applies`]) from its
/// input and its output gradient `[B, O, H, W]`: the adjoint of [`convolve`]'s algorithm,
/// `dU_ξ = Σ_tiles (A dY Aᵀ)_ξ ⊙ (Bᵀ d B)_ξ` as 16 matrix products `[C×P]·[P×O]`, then
/// `dW = Gᵀ dU G`. Each chunk sums its own partial, and the partials are added in chunk
/// order, so that the result does not depend on the number of threads.
pub(super) fn kernel_gradient<T: Element>(geometry: &Geometry, input: &[T], output_grad: &[T]) -> (Vec<T>, Vec<T>) {
    debug_assert!(applies(geometry));
    let zero = T::from_f64(0.0);
    let (channels, out_channels, batch) = (geometry.in_channels, geometry.out_channels, geometry.batch);
    let (height, width) = (geometry.in_height, geometry.in_width);
    let plane_len = height * width;
    let (input_len, output_len) = (channels * plane_len, out_channels * plane_len);
    assert_eq!(input.len(), batch * input_len, "winograd input");
    assert_eq!(output_grad.len(), batch * output_len, "winograd output gradient");
    let (tile_rows, tile_cols) = (height.div_ceil(2), width.div_ceil(2));
    let rows_per_block = (BLOCK_VALUES / (16 * (channels + out_channels) * tile_cols)).max(1);
    let per_chunk = samples_per_chunk(batch);
    let n_chunks = batch.div_ceil(per_chunk);
    let partials: Vec<Mutex<Option<PartialSums<T>>>> = (0..n_chunks).map(|_| Mutex::new(None)).collect();
    let cost = batch * tile_rows * tile_cols * 16 * channels * out_channels;
    parallel_for(n_chunks, cost, |chunk_idx| {
        let first = chunk_idx * per_chunk;
        let samples = (first + per_chunk).min(batch) - first;
        let x = &input[first * input_len..][..samples * input_len];
        let dy = &output_grad[first * output_len..][..samples * output_len];
        let bias_grad: Vec<T> = (0..out_channels)
            .map(|o| {
                (0..samples).fold(zero, |sum, s| sum + lane_sum(&dy[s * output_len + o * plane_len..][..plane_len]))
            })
            .collect();
        // dUᵀ: 16 matrices [C, O].
        let mut grad_t = vec![zero; 16 * channels * out_channels];
        let rows: Vec<(usize, usize)> = (0..samples).flat_map(|s| (0..tile_rows).map(move |r| (s, r))).collect();
        let most = rows_per_block.min(rows.len()) * tile_cols;
        // Ŷ's rows an odd number of cache lines apart ([`odd_lines`]).
        T::with_scratch(16 * channels * most + 16 * out_channels * odd_lines::<T>(most), |scratch| {
            let mut padded = Padded::new(rows_per_block.min(tile_rows), tile_cols);
            let mut halves = Halves::new(tile_cols);
            for (block_idx, block) in rows.chunks(rows_per_block).enumerate() {
                let tiles = block.len() * tile_cols;
                let g_stride = odd_lines::<T>(tiles);
                let (v, g) = scratch.split_at_mut(16 * channels * tiles);
                let g = &mut g[..16 * out_channels * g_stride];
                transform_block(x, geometry, block, &mut padded, v);
                for (row_idx, &(sample, tile_row)) in block.iter().enumerate() {
                    for o in 0..out_channels {
                        let plane = &dy[sample * output_len + o * plane_len..][..plane_len];
                        let at = (o * g_stride + row_idx * tile_cols, out_channels * g_stride);
                        transform_gradient_tile_row(plane, (height, width), tile_row, &mut halves, g, at);
                    }
                }
                for xi in 0..16 {
                    // dUᵀ_ξ[C×O] += V_ξ[C×P] · Ŷ_ξᵀ[P×O] (the orientation gemm runs fastest for few O).
                    let lhs = View { data: &v[xi * channels * tiles..], row_stride: tiles, col_stride: 1 };
                    let rhs = View { data: &g[xi * out_channels * g_stride..], row_stride: 1, col_stride: g_stride };
                    let target = &mut grad_t[xi * channels * out_channels..][..channels * out_channels];
                    matmul(target, (channels, out_channels, tiles), block_idx > 0, lhs, rhs);
                }
            }
        });
        *partials[chunk_idx].lock().expect("partial sums") = Some((grad_t, bias_grad));
    });
    let partials = partials.into_iter().map(|p| p.into_inner().expect("partial sums").expect("every chunk ran"));
    let (grad_t, bias_grad) = add_partials(partials.collect());
    (untransform_kernels(&grad_t, out_channels, channels), bias_grad)
}

/// `dW[o, c]` = `Gᵀ dU G` from the 16 matrices `dUᵀ_ξ[c, o]`; Gᵀ = [[1, ½, ½, 0],
/// [0, ½, −½, 0], [0, ½, ½, 1]].
fn untransform_kernels<T: Element>(grad_t: &[T], out_channels: usize, channels: usize) -> Vec<T> {
    let half = T::from_f64(0.5);
    let g_t = |x: [T; 4]| [x[0] + (x[1] + x[2]) * half, (x[1] - x[2]) * half, (x[1] + x[2]) * half + x[3]];
    let plane = channels * out_channels;
    let mut weight_grad = vec![T::from_f64(0.0); 9 * plane];
    // c outer and o inner, so that each of the 16 matrices is read in order.
    for c in 0..channels {
        let du: [&[T]; 16] = std::array::from_fn(|xi| &grad_t[xi * plane + c * out_channels..][..out_channels]);
        for o in 0..out_channels {
            // Gᵀ applied down each column, then along each row.
            let columns: [[T; 3]; 4] = std::array::from_fn(|j| g_t(std::array::from_fn(|i| du[4 * i + j][o])));
            let target = &mut weight_grad[(o * channels + c) * 9..][..9];
            for i in 0..3 {
                target[3 * i..3 * i + 3].copy_from_slice(&g_t(std::array::from_fn(|j| columns[j][i])));
            }
        }
    }
    weight_grad
}

/// `V` for a block of tile rows `(sample, tile row)` of the chunk's input `x`: 16 planes
/// `[C, P]` one after the other in `v`, P the block's tiles. Each sample's run of
/// consecutive tile rows is transformed in one go per channel.
fn transform_block<T: Element>(
    x: &[T],
    geometry: &Geometry,
    block: &[(usize, usize)],
    padded: &mut Padded<T>,
    v: &mut [T],
) {
    let (channels, height, width) = (geometry.in_channels, geometry.in_height, geometry.in_width);
    let tile_cols = width.div_ceil(2);
    let tiles = block.len() * tile_cols;
    let input_len = channels * height * width;
    for (start, sample, tile_rows) in runs(block) {
        let sample_input = &x[sample * input_len..][..input_len];
        for c in 0..channels {
            let plane = &sample_input[c * height * width..][..height * width];
            let column = c * tiles + start * tile_cols;
            transform_rows(plane, (height, width), tile_rows.clone(), padded, v, (column, channels * tiles));
        }
    }
}

/// A block's runs of consecutive tile rows of one sample: (index of the run's first row in
/// the block, sample, tile rows).
fn runs(block: &[(usize, usize)]) -> Vec<(usize, usize, Range<usize>)> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < block.len() {
        let (sample, first_row) = block[start];
        let run = block[start..].iter().take_while(|&&(s, _)| s == sample).count();
        runs.push((start, sample, first_row..first_row + run));
        start += run;
    }
    runs
}

/// Per-thread rows for [`transform_gradient_tile_row`]: the two output-gradient rows of a
/// tile row split into even and odd columns (zeros outside the image), then the four rows
/// of `A dY`, `tile_cols` values each.
struct Halves<T> {
    even: [Vec<T>; 2],
    odd: [Vec<T>; 2],
    even_rows: [Vec<T>; 4],
    odd_rows: [Vec<T>; 4],
}

impl<T: Element> Halves<T> {
    fn new(tile_cols: usize) -> Halves<T> {
        let zeros = || vec![T::from_f64(0.0); tile_cols];
        Halves {
            even: std::array::from_fn(|_| zeros()),
            odd: std::array::from_fn(|_| zeros()),
            even_rows: std::array::from_fn(|_| zeros()),
            odd_rows: std::array::from_fn(|_| zeros()),
        }
    }
}

/// `Ŷ_ξ[o, column + t]` = `(A dY Aᵀ)[ξ]` for the tiles t of tile row `tile_row` of one
/// output channel's gradient `plane` (outputs `2·tile_row ..= 2·tile_row + 1`,
/// `2t ..= 2t + 1`, zeros outside the image); A = [[1, 0], [1, 1], [1, −1], [0, −1]].
fn transform_gradient_tile_row<T: Element>(
    plane: &[T],
    (height, width): (usize, usize),
    tile_row: usize,
    halves: &mut Halves<T>,
    g: &mut [T],
    (column, xi_stride): (usize, usize),
) {
    let zero = T::from_f64(0.0);
    let tile_cols = width.div_ceil(2);
    for r in 0..2 {
        let (even, odd) = (&mut halves.even[r], &mut halves.odd[r]);
        let y = 2 * tile_row + r;
        if y >= height {
            even.fill(zero);
            odd.fill(zero);
            continue;
        }
        deinterleave(&plane[y * width..][..width], even, odd);
    }
    // Rows of A dY: [y0, y0 + y1, y0 − y1, −y1], on the even and odd columns.
    for (parts, rows) in [(&halves.even, &mut halves.even_rows), (&halves.odd, &mut halves.odd_rows)] {
        let (top, bottom) = (&parts[0][..tile_cols], &parts[1][..tile_cols]);
        rows[0].copy_from_slice(top);
        combine(&mut rows[1], top, bottom, true);
        combine(&mut rows[2], top, bottom, false);
        rows[3].iter_mut().zip(bottom).for_each(|(t, &b)| *t = zero - b);
    }
    // Then along the columns: each row [p, q] → [p, p + q, p − q, −q].
    for r in 0..4 {
        let (p, q) = (&halves.even_rows[r][..tile_cols], &halves.odd_rows[r][..tile_cols]);
        let target = |j: usize| (4 * r + j) * xi_stride + column;
        g[target(0)..][..tile_cols].copy_from_slice(p);
        combine(&mut g[target(1)..][..tile_cols], p, q, true);
        combine(&mut g[target(2)..][..tile_cols], p, q, false);
        g[target(3)..][..tile_cols].iter_mut().zip(q).for_each(|(t, &b)| *t = zero - b);
    }
}

/// `weight[O, C, 3, 3]` → `w[C, O, 3, 3]` with `w[c, o, i, j] = weight[o, c, 2 − i, 2 − j]`:
/// the kernel whose convolution of the output gradient (padding 1) is the input gradient.
pub(super) fn flipped_kernels<T: Element>(weight: &[T], out_channels: usize, channels: usize) -> Vec<T> {
    let mut flipped = vec![T::from_f64(0.0); weight.len()];
    for o in 0..out_channels {
        for c in 0..channels {
            let source = &weight[(o * channels + c) * 9..][..9];
            let target = &mut flipped[(c * out_channels + o) * 9..][..9];
            target.iter_mut().zip(source.iter().rev()).for_each(|(t, &s)| *t = s);
        }
    }
    flipped
}

/// `U_ξ[o, c]` = `(G g Gᵀ)[ξ]` of every 3×3 kernel `g = weight[o, c]`, as 16 matrices
/// `[O, C]` one after the other; G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
fn transform_kernels<T: Element>(weight: &[T], out_channels: usize, channels: usize) -> Vec<T> {
    let half = T::from_f64(0.5);
    let g_times = |a: T, b: T, c: T| [a, (a + b + c) * half, (a - b + c) * half, c];
    let plane = out_channels * channels;
    let mut transformed = vec![T::from_f64(0.0); 16 * plane];
    for (oc, g) in weight.chunks_exact(9).enumerate() {
        // Columns of G g (4 rows × 3), then rows of (G g) Gᵀ.
        let columns: [[T; 4]; 3] = std::array::from_fn(|j| g_times(g[j], g[3 + j], g[6 + j]));
        for i in 0..4 {
            let row = g_times(columns[0][i], columns[1][i], columns[2][i]);
            for (j, &value) in row.iter().enumerate() {
                transformed[(4 * i + j) * plane + oc] = value;
            }
        }
    }
    transformed
}

/// Per-thread scratch for [`transform_rows`]: `columns[parity][j]` holds, for each input
/// row `2m − 1 + parity` of a run (m = 0 ..= its tile rows), the values `x[2t − 1 + j]`
/// of its tiles t (zeros outside the image), `tile_cols` a row; `rows[j]` one row of
/// `Bᵀ d` over the run's tiles.
struct Padded<T> {
    columns: [[Vec<T>; 4]; 2],
    rows: [Vec<T>; 4],
}

impl<T: Element> Padded<T> {
    /// For runs of up to `tile_rows` tile rows.
    fn new(tile_rows: usize, tile_cols: usize) -> Padded<T> {
        let zeros = |len: usize| vec![T::from_f64(0.0); len];
        Padded {
            columns: std::array::from_fn(|_| std::array::from_fn(|_| zeros((tile_rows + 1) * tile_cols))),
            rows: std::array::from_fn(|_| zeros(tile_rows * tile_cols)),
        }
    }
}

/// `target[i] = a[i] ± b[i]`, over slices of one length (so that it vectorises).
fn combine<T: Element>(target: &mut [T], a: &[T], b: &[T], add: bool) {
    let n = target.len();
    let (a, b) = (&a[..n], &b[..n]);
    if add {
        (0..n).for_each(|i| target[i] = a[i] + b[i]);
    } else {
        (0..n).for_each(|i| target[i] = a[i] - b[i]);
    }
}

/// `even[q] = row[2q]` and `odd[q] = row[2q + 1]`, a zero past the end of an odd-width row.
fn deinterleave<T: Element>(row: &[T], even: &mut [T], odd: &mut [T]) {
    let pairs = row.len() / 2;
    let (paired, even_pairs, odd_pairs) = (&row[..2 * pairs], &mut even[..pairs], &mut odd[..pairs]);
    for q in 0..pairs {
        even_pairs[q] = paired[2 * q];
        odd_pairs[q] = paired[2 * q + 1];
    }
    if row.len() % 2 == 1 {
        (even[pairs], odd[pairs]) = (row[row.len() - 1], T::from_f64(0.0));
    }
}

/// The four columns `x[2t − 1 + j]` (j = 0..4) of the tiles t of one input row, zeros
/// outside it.
fn split_columns<T: Element>(row: &[T], [c0, c1, c2, c3]: [&mut [T]; 4]) {
    let zero = T::from_f64(0.0);
    let tile_cols = c0.len();
    deinterleave(row, c1, c2);
    c0[0] = zero;
    c0[1..].copy_from_slice(&c2[..tile_cols - 1]);
    c3[..tile_cols - 1].copy_from_slice(&c1[1..]);
    c3[tile_cols - 1] = zero;
}

/// `V_ξ[c, column + n]` = `(Bᵀ d B)[ξ]` for the tiles n of tile rows `tile_rows` of one
/// channel's `plane` (row by row), where tile (r, t) reads rows `2r − 1 ..= 2r + 2` and
/// columns `2t − 1 ..= 2t + 2` (zeros outside the image). `v` holds 16 planes of
/// `xi_stride` values; Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
fn transform_rows<T: Element>(
    plane: &[T],
    (height, width): (usize, usize),
    tile_rows: Range<usize>,
    padded: &mut Padded<T>,
    v: &mut [T],
    (column, xi_stride): (usize, usize),
) {
    let zero = T::from_f64(0.0);
    let tile_cols = width.div_ceil(2);
    let n = tile_rows.len() * tile_cols;
    for m in 0..=tile_rows.len() {
        for (parity, columns) in padded.columns.iter_mut().enumerate() {
            let [c0, c1, c2, c3] = columns.each_mut().map(|c| &mut c[m * tile_cols..][..tile_cols]);
            match (2 * (tile_rows.start + m) + parity).checked_sub(1).filter(|&y| y < height) {
                Some(y) => split_columns(&plane[y * width..][..width], [c0, c1, c2, c3]),
                None => [c0, c1, c2, c3].into_iter().for_each(|c| c.fill(zero)),
            }
        }
    }
    // Input rows 2r − 1 + k of the run's tile rows r: k = 0 and 2 are the odd-numbered
    // rows (parity 0) at m = r and r + 1, k = 1 and 3 the even ones (parity 1).
    let [odd_rows, even_rows] = &padded.columns;
    let d = |k: usize, j: usize| -> &[T] {
        let rows = if k % 2 == 0 { &odd_rows[j] } else { &even_rows[j] };
        &rows[(k / 2) * tile_cols..][..n]
    };
    // Rows of Bᵀ d: [d0 − d2, d1 + d2, d2 − d1, d1 − d3]; then along the columns of each:
    // [x0 − x2, x1 + x2, x2 − x1, x1 − x3].
    const TERMS: [(usize, usize, bool); 4] = [(0, 2, false), (1, 2, true), (2, 1, false), (1, 3, false)];
    for (r, &(a, b, add)) in TERMS.iter().enumerate() {
        for (j, row) in padded.rows.iter_mut().enumerate() {
            combine(&mut row[..n], d(a, j), d(b, j), add);
        }
        for (j, &(a, b, add)) in TERMS.iter().enumerate() {
            combine(&mut v[(4 * r + j) * xi_stride + column..][..n], &padded.rows[a], &padded.rows[b], add);
        }
    }
}

/// Writes output rows `2r` and `2r + 1` for the tile rows r of `tile_rows` of one channel's
/// `plane` (after its rows above) from the products `m` (16 planes of `xi_stride` values;
/// these rows' tiles side by side at `column..`): `Y = Aᵀ M A + bias` with
/// Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]], clipped to the image, then the ReLU if `relu`.
/// `sums` is scratch: 12 arrays of the run's tiles.
fn untransform_rows<T: Element>(
    m: &[T],
    (column, xi_stride): (usize, usize),
    (bias, relu): (T, bool),
    (height, width): (usize, usize),
    tile_rows: Range<usize>,
    sums: &mut [Vec<T>; 12],
    plane: &mut Part<'_, T>,
) {
    let tile_cols = width.div_ceil(2);
    let n = tile_rows.len() * tile_cols;
    let p = |xi: usize| &m[xi * xi_stride + column..][..n];
    let (row_sums, outputs) = sums.split_at_mut(8);
    // Rows of Aᵀ M: s0_j = m0j + m1j + m2j and s1_j = m1j − m2j − m3j, in row_sums[j] and [4 + j].
    for j in 0..4 {
        let (a, b, c, d) = (p(j), p(4 + j), p(8 + j), p(12 + j));
        let (top, rest) = row_sums.split_at_mut(4);
        let (s0, s1) = (&mut top[j][..n], &mut rest[j][..n]);
        (0..n).for_each(|t| s0[t] = a[t] + b[t] + c[t]);
        (0..n).for_each(|t| s1[t] = b[t] - c[t] - d[t]);
    }
    // Then along the columns: y_r0 = s_r0 + s_r1 + s_r2 + bias, y_r1 = s_r1 − s_r2 − s_r3 + bias.
    for r in 0..2 {
        let s = &row_sums[4 * r..4 * r + 4];
        let (s0, s1, s2, s3) = (&s[0][..n], &s[1][..n], &s[2][..n], &s[3][..n]);
        let (left, right) = outputs.split_at_mut(2);
        let (left, right) = (&mut left[r][..n], &mut right[r][..n]);
        (0..n).for_each(|t| left[t] = s0[t] + s1[t] + s2[t] + bias);
        (0..n).for_each(|t| right[t] = s1[t] - s2[t] - s3[t] + bias);
    }
    // Interleaved into the image's rows (a last column of an odd width from `left` alone).
    for (run_row, tile_row) in tile_rows.enumerate() {
        for r in 0..2 {
            if 2 * tile_row + r >= height {
                break;
            }
            let left = &outputs[r][run_row * tile_cols..][..tile_cols];
            let right = &outputs[2 + r][run_row * tile_cols..][..tile_cols];
            match relu {
                true => plane.extend_interleaved((left, right), width, |v| if v < T::zero() { T::zero() } else { v }),
                false => plane.extend_interleaved((left, right), width, |v| v),
            }
        }
    }
}
