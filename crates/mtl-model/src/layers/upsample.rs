//! Up-sampling of `[B, C, H, W]` maps by an integer factor, for the decoders of dense
//! tasks: nearest neighbour, and bilinear as PyTorch's
//! `F.interpolate(mode="bilinear", align_corners=False)`.
//!
//! Both are composed of candle tensor ops (narrow, cat, scale, stack, broadcast,
//! reshape), so they run on any device and their backward passes are candle's own.
//! Not candle's `upsample_nearest2d` (its backward overwrites, rather than adds to, the
//! gradient of an input used elsewhere too) nor `upsample_bilinear2d` (no backward).

use candle_core::{Result, Tensor};

/// Nearest-neighbour up-sampling: `[B, C, H, W]` → `[B, C, scale·H, scale·W]`, each
/// cell repeated in a `scale × scale` block (PyTorch's `mode="nearest"` for an integer
/// `scale_factor`). The gradient of a cell is the sum over its block.
pub fn upsample_nearest(xs: &Tensor, scale: usize) -> Result<Tensor> {
    let (batch, channels, height, width) = xs.dims4()?;
    if scale == 0 {
        candle_core::bail!("upsample_nearest: scale 0");
    }
    xs.reshape((batch, channels, height, 1, width, 1))?
        .broadcast_as((batch, channels, height, scale, width, scale))?
        .reshape((batch, channels, height * scale, width * scale))
}

/// Bilinear up-sampling: `[B, C, H, W]` → `[B, C, scale·H, scale·W]` as PyTorch's
/// `F.interpolate(xs, scale_factor=scale, mode="bilinear", align_corners=False)`.
///
/// Along each axis, output `d` reads source coordinate `s = (d + 0.5) / scale − 0.5`,
/// clamped at 0, as `(1 − λ)·x[⌊s⌋] + λ·x[⌊s⌋ + 1]` with `λ = s − ⌊s⌋` and the last
/// index repeated past the edge (PyTorch's documented formula). With `d = i·scale + r`
/// that is `s = i + δ_r`, `δ_r = (r + 0.5) / scale − 0.5 ∈ (−½, ½)`: each phase `r` is
/// a fixed blend of `x[i]` with its neighbour `x[i − 1]` (δ < 0) or `x[i + 1]` (δ > 0).
pub fn upsample_bilinear(xs: &Tensor, scale: usize) -> Result<Tensor> {
    xs.dims4()?;
    if scale == 0 {
        candle_core::bail!("upsample_bilinear: scale 0");
    }
    bilinear_along(&bilinear_along(xs, 2, scale)?, 3, scale)
}

/// Linear interpolation along `dim` (2 or 3) of a `[B, C, H, W]` tensor, `scale` times finer.
fn bilinear_along(xs: &Tensor, dim: usize, scale: usize) -> Result<Tensor> {
    let size = xs.dim(dim)?;
    if scale == 1 {
        return Ok(xs.clone());
    }
    // x[i − 1] and x[i + 1], the edge cell repeated where they fall outside (which is the
    // clamp at 0 at the start, and PyTorch's repeated last index at the end).
    let (previous, next) = match size {
        0 | 1 => (xs.clone(), xs.clone()),
        _ => {
            let (first, last) = (xs.narrow(dim, 0, 1)?, xs.narrow(dim, size - 1, 1)?);
            let previous = Tensor::cat(&[&first, &xs.narrow(dim, 0, size - 1)?], dim)?;
            let next = Tensor::cat(&[&xs.narrow(dim, 1, size - 1)?, &last], dim)?;
            (previous, next)
        }
    };
    let phases = (0..scale)
        .map(|r| {
            let offset = (r as f64 + 0.5) / scale as f64 - 0.5;
            if offset < 0.0 {
                previous.affine(-offset, 0.0)? + xs.affine(1.0 + offset, 0.0)?
            } else if offset > 0.0 {
                xs.affine(1.0 - offset, 0.0)? + next.affine(offset, 0.0)?
            } else {
                Ok(xs.clone())
            }
        })
        .collect::<Result<Vec<_>>>()?;
    // [.., size, scale, ..] → [.., size·scale, ..]: output i·scale + r is phase r of cell i.
    let mut dims = xs.dims().to_vec();
    dims[dim] *= scale;
    Tensor::stack(&phases, dim + 1)?.reshape(dims)
}
