"""Reference numbers for MultiMNIST's resizing (crates/mtl-data/src/formats/images/multi_mnist.rs):
which canvas rows and columns the 36×36 → 28×28 nearest-neighbour resize keeps, as PIL's
NEAREST does it (what the authors' scipy.misc.imresize(..., interp='nearest') called) and as
PyTorch's interpolate(mode="nearest-exact") does it; and the bilinear values of the tests'
hand-computed case from PyTorch's interpolate(mode="bilinear", align_corners=False).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy pillow torch
    /tmp/venv/bin/python benches/reference/multimnist_reference.py
"""
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# Every canvas pixel holds its own index, so the output names the pixel it copied.
canvas = np.arange(36 * 36, dtype=np.float32).reshape(36, 36)
pil = np.asarray(Image.fromarray(canvas, mode="F").resize((28, 28), Image.NEAREST))
exact = F.interpolate(torch.from_numpy(canvas)[None, None], size=(28, 28), mode="nearest-exact")[0, 0].numpy()
assert (pil == exact).all()
rows = [int(v) // 36 for v in pil[:, 0]]
cols = [int(v) % 36 for v in pil[0, :]]
assert rows == cols
print("nearest keeps canvas rows/columns", rows)
print("dropped", sorted(set(range(36)) - set(rows)))

# The bilinear case of digits_land_where_offset_and_resize_put_them: left digit (4, 4) = 1,
# right digit (16, 25) = 1 and (0, 0) = 0.6, placed at offset 6, combined by maximum.
left = np.zeros((28, 28), np.float32)
right = np.zeros((28, 28), np.float32)
left[4, 4] = 1.0
right[16, 25] = 1.0
right[0, 0] = 0.6
canvas = np.zeros((36, 36), np.float32)
canvas[0:28, 0:28] = left
canvas[6:34, 6:34] = np.maximum(canvas[6:34, 6:34], right)
out = F.interpolate(torch.from_numpy(canvas)[None, None], size=(28, 28), mode="bilinear",
                    align_corners=False, antialias=False)[0, 0].numpy()
for r, c in [(3, 3), (17, 24), (4, 4), (5, 5), (4, 5)]:
    print(f"bilinear out[{r}, {c}] = {out[r, c]!r}")
print(f"bilinear sum = {out.sum()!r}")
