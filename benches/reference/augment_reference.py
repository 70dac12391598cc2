"""Reference numbers for `channel_statistics` in crates/mtl-data/src/augment.rs: the
per-channel mean and population standard deviation (numpy's default ddof=0, as
torchvision recipes compute them) of a training split's images, over every image and
pixel of the channel.

The input is x[n, c, h, w] = ((7 * i) % 13) / 13 as float32, with i the row-major index,
shape [5, 3, 4, 6]; the script prints the mean and std of each channel (float64 sums).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy
    /tmp/venv/bin/python benches/reference/augment_reference.py
"""
import numpy as np

shape = (5, 3, 4, 6)
i = np.arange(np.prod(shape))
x = (((7 * i) % 13) / np.float32(13)).astype(np.float32).reshape(shape)
values = x.astype(np.float64)
print("mean", [repr(float(m)) for m in values.mean(axis=(0, 2, 3))])
print("std ", [repr(float(s)) for s in values.std(axis=(0, 2, 3))])
