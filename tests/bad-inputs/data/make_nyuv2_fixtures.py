"""Writes the NYUv2 fixtures of the bad-inputs corpus (cases 87-92): LibMTL's layout,
train/ (3 examples) and val/ (1) each holding image/, label/ and depth/ of 8x8 <i>.npy
files, one defect per folder. Rerun from anywhere: python make_nyuv2_fixtures.py
(numpy; seed 87). Each folder is removed and written again."""

import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
H, W = 8, 8


def example(rng):
    image = rng.random((H, W, 3), dtype=np.float32)
    label = rng.integers(-1, 3, size=(H, W)).astype(np.float32)  # -1 unlabelled, classes 0..2
    depth = np.where(label[..., None] < 0, 0.0, 1.0 + rng.random((H, W, 1))).astype(np.float32)
    return {"image": image, "label": label, "depth": depth}


def layout(name, spoil):
    root = HERE / name
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(87)
    for split, n in [("train", 3), ("val", 1)]:
        for i in range(n):
            for part, array in example(rng).items():
                folder = root / split / part
                folder.mkdir(parents=True, exist_ok=True)
                np.save(folder / f"{i}.npy", array)
    spoil(root)


def rewrite(path, change):
    np.save(path, change(np.load(path)))


def label_shape(root):
    rewrite(root / "train/label/1.npy", lambda a: a[:, :7])


def label_range(root):
    def three(a):
        a[2, 5] = 3  # classes = 3: labels are 0..2 or -1
        return a

    rewrite(root / "train/label/2.npy", three)


def depth_nan(root):
    def nan(a):
        a[4, 4, 0] = np.nan
        return a

    rewrite(root / "train/depth/1.npy", nan)


def depth_missing(root):
    (root / "val/depth/0.npy").unlink()


def fortran(root):
    path = root / "train/image/2.npy"
    np.save(path, np.asfortranarray(np.load(path)))


def big_endian(root):
    path = root / "val/depth/0.npy"
    np.save(path, np.load(path).astype(">f4"))


for name, spoil in [
    ("nyuv2-label-shape", label_shape),
    ("nyuv2-label-range", label_range),
    ("nyuv2-depth-nan", depth_nan),
    ("nyuv2-depth-missing", depth_missing),
    ("nyuv2-fortran", fortran),
    ("nyuv2-big-endian", big_endian),
]:
    layout(name, spoil)
