#!/usr/bin/env python3
"""Builds an image/mask data set (`format = "image-masks"`) from real MNIST digits.

    python3 scripts/make-mnist-masks.py data/mnist data/mnist-masks

Writes OUT/{train,test}/{images,masks,depth}/dNNNNN.png: each image is two t10k digits
side by side on a 28×56 canvas (train from digits 0–3,999 with a partner drawn among them,
test from 8,000–8,999 likewise), saved as RGB PNG; its mask gives each pixel its class
(0 background, 1 + the digit where the ink is at least 0.5, 255 = unlabelled where it is
faint, 0.1–0.5); its depth is a 16-bit PNG of 1000·(1 + digit) on the ink and 0 (unmeasured)
elsewhere, i.e. metres with depth_scale = 1000. Needs numpy and Pillow; seeded.
"""

import argparse
import gzip
import pathlib

import numpy as np
from PIL import Image


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mnist", type=pathlib.Path, help="folder with t10k-{images,labels}-idx*-ubyte.gz")
    parser.add_argument("out", type=pathlib.Path)
    args = parser.parse_args()
    images = idx(args.mnist / "t10k-images-idx3-ubyte.gz")
    labels = idx(args.mnist / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    for split, lo, hi in [("train", 0, 4000), ("test", 8000, 9000)]:
        for folder in ["images", "masks", "depth"]:
            (args.out / split / folder).mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(range(lo, hi)):
            j = lo + rng.integers(0, hi - lo)
            canvas = np.concatenate([images[i], images[j]], axis=1).astype(np.float32) / 255
            digit = np.concatenate(
                [np.full((28, 28), int(labels[i])), np.full((28, 28), int(labels[j]))], axis=1
            ).astype(np.int32)
            mask = np.where(canvas >= 0.5, digit + 1, 0).astype(np.uint8)
            mask[(canvas > 0.1) & (canvas < 0.5)] = 255
            depth = np.where(canvas >= 0.5, 1000 * (1 + digit), 0).astype(np.uint16)
            name = f"d{k:05d}.png"
            Image.fromarray((canvas * 255).astype(np.uint8)).convert("RGB").save(args.out / split / "images" / name)
            Image.fromarray(mask, mode="L").save(args.out / split / "masks" / name)
            Image.fromarray(depth).save(args.out / split / "depth" / name)


if __name__ == "__main__":
    main()
