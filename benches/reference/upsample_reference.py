"""Reference numbers for `upsample_bilinear` in crates/mtl-model/src/layers/upsample.rs:
PyTorch's `F.interpolate(x, scale_factor=k, mode="bilinear", align_corners=False)`
written out in numpy from its documented formula (no PyTorch needed).

Along each axis, output index d reads source coordinate s = (d + 0.5) / k - 0.5, clamped
at 0; with i0 = floor(s), i1 = min(i0 + 1, n - 1) and lam = s - i0 the value is
(1 - lam) * x[i0] + lam * x[i1]; the 2-D result applies this along H, then W.

The input is x[b, c, h, w] = ((7 * n) % 11) - 5 with n the row-major index, shape
[1, 2, 3, 4]; the script prints the output for k = 2 and k = 3, row-major.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy
    /tmp/venv/bin/python benches/reference/upsample_reference.py
"""
import numpy as np


def source_weights(n_in, k):
    """For each output index: (i0, i1, lam) as PyTorch computes them (align_corners=False)."""
    rows = []
    for d in range(n_in * k):
        s = max((d + 0.5) / k - 0.5, 0.0)
        i0 = int(np.floor(s))
        i1 = min(i0 + 1, n_in - 1)
        rows.append((i0, i1, s - i0))
    return rows


def upsample_bilinear(x, k):
    b, c, h, w = x.shape
    out = np.zeros((b, c, h * k, w * k))
    for oy, (y0, y1, ly) in enumerate(source_weights(h, k)):
        for ox, (x0, x1, lx) in enumerate(source_weights(w, k)):
            top = (1 - lx) * x[:, :, y0, x0] + lx * x[:, :, y0, x1]
            bottom = (1 - lx) * x[:, :, y1, x0] + lx * x[:, :, y1, x1]
            out[:, :, oy, ox] = (1 - ly) * top + ly * bottom
    return out


x = np.array([(7 * n) % 11 - 5 for n in range(24)], dtype=np.float64).reshape(1, 2, 3, 4)
print("input", x.flatten().tolist())
for k in (2, 3):
    print(f"scale {k}", [round(v, 12) for v in upsample_bilinear(x, k).flatten().tolist()])
