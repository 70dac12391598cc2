"""Writes the image/mask fixtures of the bad-inputs corpus (cases 93-98 and 106-108): the
`format = "image-masks"` layout, train/ (3 examples) and test/ (1) each holding images/
(RGB), masks/ (8-bit palette, classes 0..2 and 255 unlabelled) and depth/ (16-bit
grayscale, millimetres, 0 unmeasured) of 8x8 <name>.png files, one defect per folder; the
masks-normals-* folders also hold normals/ (8-bit RGB, each channel 2*v/255 - 1, a normal
per class, (0, 0, 0) where unlabelled: no ground truth).
Rerun from anywhere: python make_mask_fixtures.py (the standard library only; seed 93).
Each folder is removed and written again; normals/ draws nothing from the seed, so the
other folders are the same whether or not a folder has it."""

import random
import shutil
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
H, W = 8, 8


def write_png(path, rows, color, bits, palette=None):
    """A PNG of `rows` (lists of samples; a pixel of RGB is 3 samples): color type 0
    (grayscale), 2 (RGB) or 3 (palette), 8 or 16 bits per sample."""

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    samples = 3 if color == 2 else 1
    width = len(rows[0]) // samples
    pack = (lambda row: bytes(row)) if bits == 8 else (lambda row: struct.pack(f">{len(row)}H", *row))
    raw = b"".join(b"\x00" + pack(row) for row in rows)  # filter 0 (none) on every row
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), bits, color, 0, 0, 0))
    if palette is not None:
        png += chunk(b"PLTE", bytes(palette))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


# Class 0 red, 1 green, 2 blue, the rest gray (255: unlabelled).
PALETTE = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [v for v in range(3, 256) for _ in range(3)]


def mask_png(path, mask):
    write_png(path, mask, color=3, bits=8, palette=PALETTE)


def example(rng, root, split, name):
    mask = [[rng.choice([0, 1, 2, 255]) for _ in range(W)] for _ in range(H)]
    colour = {0: (220, 30, 30), 1: (30, 220, 30), 2: (30, 30, 220), 255: (128, 128, 128)}
    image = [[s for v in row for s in colour[v]] for row in mask]
    depth = [[0 if v == 255 else rng.randint(500, 9000) for v in row] for row in mask]
    write_png(root / split / "images" / name, image, color=2, bits=8)
    mask_png(root / split / "masks" / name, mask)
    write_png(root / split / "depth" / name, depth, color=0, bits=16)
    return mask


# Per class, a unit normal as an 8-bit RGB pixel: 0 facing the camera (0, 0, 1), 1 and 2
# tilted 45 degrees to +x and -x; 255 (unlabelled) unknown.
NORMAL = {0: (128, 128, 255), 1: (218, 128, 218), 2: (37, 128, 218), 255: (0, 0, 0)}


def layout(name, spoil, normals=False):
    root = HERE / name
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(93)
    for split, n in [("train", 3), ("test", 1)]:
        for i in range(n):
            mask = example(rng, root, split, f"p{i}.png")
            if normals:
                rows = [[s for v in row for s in NORMAL[v]] for row in mask]
                write_png(root / split / "normals" / f"p{i}.png", rows, color=2, bits=8)
    spoil(root)


def mask_size(root):
    mask_png(root / "train/masks/p1.png", [[0] * (W - 1) for _ in range(H)])


def mask_value(root):
    mask = [[1] * W for _ in range(H)]
    mask[2][5] = 3  # classes = 3: values are 0..2 or 255
    mask_png(root / "train/masks/p2.png", mask)


def mask_missing(root):
    (root / "train/masks/p1.png").unlink()


def mask_16bit(root):
    write_png(root / "train/masks/p0.png", [[1] * W for _ in range(H)], color=0, bits=16)


def mask_rgb(root):
    write_png(root / "train/masks/p2.png", [[0, 0, 255] * W for _ in range(H)], color=2, bits=8)


def depth_8bit(root):
    write_png(root / "train/depth/p1.png", [[40] * W for _ in range(H)], color=0, bits=8)


def normals_gray(root):
    write_png(root / "train/normals/p1.png", [[128] * W for _ in range(H)], color=0, bits=8)


def normals_size(root):
    write_png(root / "train/normals/p1.png", [[128, 128, 255] * (W - 1) for _ in range(H)], color=2, bits=8)


def normals_missing(root):
    (root / "train/normals/p1.png").unlink()


for name, spoil, normals in [
    ("masks-size", mask_size, False),
    ("masks-value", mask_value, False),
    ("masks-missing", mask_missing, False),
    ("masks-16bit", mask_16bit, False),
    ("masks-rgb", mask_rgb, False),
    ("masks-depth-8bit", depth_8bit, False),
    ("masks-normals-gray", normals_gray, True),
    ("masks-normals-size", normals_size, True),
    ("masks-normals-missing", normals_missing, True),
]:
    layout(name, spoil, normals)
    print("wrote", HERE / name)
