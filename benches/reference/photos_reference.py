"""The photo task of experiments/photos-polarity.toml alone, in PyTorch: how many epochs a
ResNet-18 of width 0.25 (ImageNet stem) needs on an image folder at 224 px from scratch.

    python benches/reference/photos_reference.py data/digit-photos --epochs 12

Same set-up as the experiment's single-task photo network: photos normalised by the
training split's per-channel mean and std, Adam lr 1e-3, batch 32, constant rate, linear
head on the globally averaged stage-4 maps. Prints train and validation accuracy per epoch.
"""

import argparse
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from torch_reference import BasicBlock  # noqa: E402


def load(root: pathlib.Path, split: str, classes: list, size: int):
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / split / name).iterdir()):
            image = Image.open(path).convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            images.append(np.asarray(image, dtype=np.float32) / 255.0)
            labels.append(label)
    return torch.tensor(np.stack(images)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)


class ResNet18(nn.Module):
    def __init__(self, width: float, classes: int):
        super().__init__()
        channels = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 7, 2, 3, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        stages, cin = [], channels[0]
        for index, cout in enumerate(channels):
            stages.append(nn.Sequential(BasicBlock(cin, cout, 1 if index == 0 else 2), BasicBlock(cout, cout, 1)))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=pathlib.Path, help="a folder {train,val}/<class>/*.jpg")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    classes = sorted(p.name for p in (args.root / "train").iterdir())
    train_x, train_y = load(args.root, "train", classes, args.size)
    val_x, val_y = load(args.root, "val", classes, args.size)
    mean, std = train_x.mean(dim=(0, 2, 3), keepdim=True), train_x.std(dim=(0, 2, 3), keepdim=True)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    net = ResNet18(args.width, len(classes))
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(1, args.epochs + 1):
        start, correct = time.time(), 0
        net.train()
        order = torch.randperm(len(train_y))
        for i in range(0, len(train_y), 32):
            batch = order[i : i + 32]
            logits = net(train_x[batch])
            loss = F.cross_entropy(logits, train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += (logits.argmax(1) == train_y[batch]).sum().item()
        net.eval()
        with torch.no_grad():
            val_accuracy = (net(val_x).argmax(1) == val_y).float().mean().item()
        seconds = time.time() - start
        print(f"epoch {epoch}: train accuracy {correct / len(train_y):.3f}, val accuracy {val_accuracy:.3f} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
