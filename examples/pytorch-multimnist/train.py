"""MultiMNIST in PyTorch, run by mtl-lab's [trainer] (multimnist-torch.toml): two digits
per image, the "left" and the "right" one, learned by the MultiLeNet of the MTL literature
(Sener & Koltun 2018: conv 10 -> conv 20 -> fc 50 shared, each head fc 50 -> 50 -> 10),
with Adam on L = L(left) + lambda * L(right). Under strategy "hard" one network shares
its trunk; under "single-task" each digit gets a network of its own. CUDA when available.

The images are composed as experiments/multimnist.toml composes them: each MNIST t10k
digit at the top-left of a 36x36 canvas, a partner drawn at random from the same split at
the bottom-right (6 pixels down and right), their pixel-wise maximum, shrunk to 28x28 by
nearest neighbour; the last 2,000 digits test, the 1,000 before them validate, the rest
train. The composition draws from a fixed seed (0), the network and the batches from the
trial's seed.

    python3 train.py --data ../../data/mnist --lambda 1.0 --seed 0    # alone, without mtl-lab
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import mtl_client  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, help="folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
parser.add_argument("--lambda", dest="lam", type=float, default=1.0)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--epochs", type=int, default=int(os.environ.get("MTL_EPOCHS", "10")))
parser.add_argument("--batch-size", type=int, default=int(os.environ.get("MTL_BATCH_SIZE", "256")))
parser.add_argument("--strategy", default=os.environ.get("MTL_STRATEGY", "hard"))
args = parser.parse_args()


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


images = idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
labels = idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
n = len(labels)
splits = {"train": np.arange(0, n - 3000), "val": np.arange(n - 3000, n - 2000), "test": np.arange(n - 2000, n)}
rows = (np.arange(28) * 36 // 28)  # nearest neighbour, 36 -> 28
compose_rng = np.random.default_rng(0)


def compose(indices):
    partners = compose_rng.choice(indices, size=len(indices))
    canvas = np.zeros((len(indices), 36, 36), dtype=np.float32)
    canvas[:, :28, :28] = images[indices]
    canvas[:, 6:34, 6:34] = np.maximum(canvas[:, 6:34, 6:34], images[partners])
    small = canvas[:, rows][:, :, rows]
    return torch.from_numpy(small).unsqueeze(1), torch.from_numpy(labels[indices]), torch.from_numpy(labels[partners])


data = {name: compose(indices) for name, indices in splits.items()}
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(args.seed)


class Trunk(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5), nn.Linear(320, 50)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return F.relu(self.fc(x.flatten(1)))


def head():
    return nn.Sequential(nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 10))


if args.strategy == "single-task":
    trunks = nn.ModuleList([Trunk(), Trunk()])
else:
    shared = Trunk()
    trunks = nn.ModuleList([shared, shared])
heads = nn.ModuleList([head(), head()])
model = nn.ModuleList([trunks, heads]).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)


def outputs(x):
    if trunks[0] is trunks[1]:
        z = trunks[0](x)
        return heads[0](z), heads[1](z)
    return heads[0](trunks[0](x)), heads[1](trunks[1](x))


generator = torch.Generator().manual_seed(args.seed)
started = time.time()
for epoch in range(1, args.epochs + 1):
    model.train()
    x_all, left_all, right_all = data["train"]
    for batch in torch.randperm(len(x_all), generator=generator).split(args.batch_size):
        x, yl, yr = x_all[batch].to(device), left_all[batch].to(device), right_all[batch].to(device)
        out_l, out_r = outputs(x)
        loss = F.cross_entropy(out_l, yl) + args.lam * F.cross_entropy(out_r, yr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for split in ("val", "test"):
            x, yl, yr = (t.to(device) for t in data[split])
            out_l, out_r = outputs(x)
            for task, out, y in (("left", out_l, yl), ("right", out_r, yr)):
                accuracy = (out.argmax(1) == y).float().mean().item()
                mtl_client.log(epoch=epoch, task=task, split=split, accuracy=accuracy,
                               loss=F.cross_entropy(out, y).item())
    mtl_client.end_epoch(epoch)
    print(f"epoch {epoch}: {time.time() - started:.1f}s", flush=True)
