#!/usr/bin/env python3
"""Builds an ImageNet-style photo folder from MNIST digits, for runs at photo size.

    python3 scripts/make-photo-folder.py data/mnist /tmp/digit-photos \
        --classes 5 --train 300 --val 50 --test 100 --size 224

Writes OUT/{train,val,test}/<digit name>/<n>.jpg: each photo is one MNIST digit (from the
t10k IDX files, each digit used once), scaled to 55-85 % of the photo, in a random colour,
at a random place, on a random two-colour gradient with pixel noise, saved as RGB JPEG
(quality 90). The splits draw from disjoint digits. Needs numpy and Pillow
(`pip install numpy pillow`); seeded, so the same arguments give the same files.
"""

import argparse
import gzip
import pathlib

import numpy as np
from PIL import Image

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def read_idx(path: pathlib.Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder: pathlib.Path, stem: str) -> pathlib.Path:
    for name in (stem + ".gz", stem):
        if (folder / name).exists():
            return folder / name
    raise SystemExit(f"{folder}: no {stem}[.gz]")


def photo(digit: np.ndarray, size: int, rng: np.random.Generator) -> Image.Image:
    top, bottom = rng.integers(0, 256, size=(2, 3))
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    if rng.random() < 0.5:
        t = t.transpose(1, 0, 2)
    background = top * (1 - t) + bottom * t + rng.normal(0, 12, size=(size, size, 3))
    side = int(size * rng.uniform(0.55, 0.85))
    mask = np.asarray(Image.fromarray(digit).resize((side, side), Image.BILINEAR), dtype=np.float64) / 255.0
    colour = rng.integers(0, 256, size=3)
    # Keep the digit visible: far from the background's mean colour.
    if np.abs(colour - (top + bottom) / 2).sum() < 200:
        colour = 255 - colour
    y, x = rng.integers(0, size - side + 1, size=2)
    region = background[y : y + side, x : x + side]
    background[y : y + side, x : x + side] = region * (1 - mask[..., None]) + colour * mask[..., None]
    return Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mnist", type=pathlib.Path, help="folder with t10k-images-idx3-ubyte[.gz] and labels")
    parser.add_argument("out", type=pathlib.Path, help="the folder to create (must not exist)")
    parser.add_argument("--classes", type=int, default=5, help="digits 0 … N-1 (default 5)")
    parser.add_argument("--train", type=int, default=300, help="photos per class in train/")
    parser.add_argument("--val", type=int, default=50, help="photos per class in val/")
    parser.add_argument("--test", type=int, default=100, help="photos per class in test/")
    parser.add_argument("--size", type=int, default=224, help="side of the square photos in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; give a new folder")
    images = read_idx(find(args.mnist, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(args.mnist, "t10k-labels-idx1-ubyte"))
    rng = np.random.default_rng(args.seed)
    splits = [("train", args.train), ("val", args.val), ("test", args.test)]
    for label in range(args.classes):
        indices = rng.permutation(np.flatnonzero(labels == label))
        needed = sum(n for _, n in splits)
        if len(indices) < needed:
            raise SystemExit(f"digit {label}: {len(indices)} images, {needed} needed")
        start = 0
        for split, n in splits:
            folder = args.out / split / NAMES[label]
            folder.mkdir(parents=True)
            for k, index in enumerate(indices[start : start + n]):
                photo(images[index], args.size, rng).save(folder / f"{k:04d}.jpg", quality=90)
            start += n
    total = args.classes * sum(n for _, n in splits)
    print(f"{args.out}: {total} photos of {args.size}×{args.size} px, {args.classes} classes")


if __name__ == "__main__":
    main()
