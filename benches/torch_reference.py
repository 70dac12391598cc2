#!/usr/bin/env python3
"""The reference workloads of `mtl bench` in PyTorch, for side-by-side speed figures.

Same models, shapes, batch, optimiser and thread count as mtl-lab's
`crates/mtl-runner/src/bench.rs`; random inputs; the median training
throughput over repeats after warm-up, and peak resident memory.

    python3 -m venv ~/torch-venv && ~/torch-venv/bin/pip install torch
    ~/torch-venv/bin/python benches/torch_reference.py --workload w1 --threads 2

mtl-lab never needs torch otherwise.
"""

import argparse
import random
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiLeNet(nn.Module):
    """w1/w2: the MultiMNIST LeNet (Sener & Koltun 2018) with two heads."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.fc = nn.Linear(320, 50)
        self.heads = nn.ModuleList([nn.Sequential(nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 10)) for _ in range(2)])

    def shared(self):
        return list(self.conv1.parameters()) + list(self.conv2.parameters()) + list(self.fc.parameters())

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        z = F.relu(self.fc(x.flatten(1)))
        return [head(z) for head in self.heads]


class TextCnn(nn.Module):
    """w3: TextCNN (Kim 2014), two 2-class heads sharing the text trunk."""

    def __init__(self, vocab=20_000, width=128, filters=100):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        self.convs = nn.ModuleList([nn.Conv1d(width, filters, k) for k in (3, 4, 5)])
        self.heads = nn.ModuleList([nn.Linear(3 * filters, 2) for _ in range(2)])

    def forward(self, tokens):
        x = self.embedding(tokens).transpose(1, 2)
        z = torch.cat([F.relu(conv(x)).max(dim=2).values for conv in self.convs], dim=1)
        z = F.dropout(z, 0.5, self.training)
        return [head(z) for head in self.heads]


class ImageText(nn.Module):
    """w4: the image+text model of experiments/mnist-imdb.toml (conv stem, width 64, hidden 128)."""

    def __init__(self, vocab=20_000, width=64, hidden=128):
        super().__init__()
        self.local = nn.Conv2d(1, 16, 5, padding=2)
        self.rows = nn.Conv1d(16 * 14, width, 3, padding=1)
        self.embedding = nn.Embedding(vocab, width)
        self.conv1 = nn.Conv1d(width, hidden, 3, padding=1)
        self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.fc = nn.Linear(hidden, hidden)
        self.digits = nn.Linear(hidden, 10)
        self.sentiment = nn.Linear(hidden, 2)

    def trunk(self, seq):
        x = F.relu(self.conv2(F.relu(self.conv1(seq)))).max(dim=2).values
        return F.relu(self.fc(F.dropout(x, 0.5, self.training)))

    def forward(self, images, tokens):
        maps = F.max_pool2d(F.relu(self.local(images)), 2)  # [B, 16, 14, 14]
        b, c, h, w = maps.shape
        rows = maps.permute(0, 1, 3, 2).reshape(b, c * w, h)  # the rows as a sequence
        image_seq = F.relu(self.rows(rows))
        text_seq = self.embedding(tokens).transpose(1, 2)
        return self.digits(self.trunk(image_seq)), self.sentiment(self.trunk(text_seq))


class BasicBlock(nn.Module):
    """A ResNet basic block (He et al. 2016): two 3×3 convs without bias, batch norms, a projection shortcut when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18Cifar(nn.Module):
    """w5: ResNet-18 with the CIFAR stem (3×3/1 conv, no pool), two heads (10 and 100 classes)."""

    def __init__(self, width=1.0, classes=(10, 100)):
        super().__init__()
        channels = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU())
        stages, cin = [], channels[0]
        for index, cout in enumerate(channels):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.heads = nn.ModuleList([nn.Linear(cin, n) for n in classes])

    def forward(self, x):
        z = self.stages(self.stem(x)).mean(dim=(2, 3))
        return [head(z) for head in self.heads]


class ConvNorm(nn.Module):
    """A bias-free convolution → batch norm (padding kernel // 2)."""

    def __init__(self, cin, cout, kernel, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class DenseBasicBlock(nn.Module):
    """BasicBlock with mtl-lab's names (`downsample.conv`, `downsample.bn`)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = ConvNorm(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class DenseHead(nn.Module):
    def __init__(self, channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x):
        return self.conv2(F.relu(self.conv1(x)))


class EncoderDecoder(nn.Module):
    """w6: mtl-lab's `dense::EncoderDecoder` with the same parameter names: a ResNet-18
    encoder (ImageNet stem: stride 32; CIFAR stem: stride 8), a decoder of bilinear ×2 →
    conv 3×3 → bn → relu steps plus the encoder's map of that stride (LinkNet's additive
    skips), and per-task heads conv 3×3 → relu → conv 1×1. Inputs are zero-padded at the
    bottom and right to a multiple of the stride, the decoder's output cropped back."""

    def __init__(self, in_channels=3, width=1.0, imagenet_stem=True, heads=(("segmentation", 13), ("depth", 1))):
        super().__init__()
        channels = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.imagenet_stem = imagenet_stem
        self.stride = 32 if imagenet_stem else 8
        self.encoder = nn.Module()
        self.encoder.stem = ConvNorm(in_channels, channels[0], 7 if imagenet_stem else 3, 2 if imagenet_stem else 1)
        cin = channels[0]
        for index, cout in enumerate(channels):
            stage = nn.Module()
            stage.blocks = nn.ModuleList([DenseBasicBlock(cin, cout, 1 if index == 0 else 2), DenseBasicBlock(cout, cout, 1)])
            setattr(self.encoder, f"stage{index + 1}", stage)
            cin = cout
        skips = ([channels[0]] if imagenet_stem else []) + channels
        targets = list(reversed(skips[:-1])) + ([max(1, channels[0] // 2)] if imagenet_stem else [])
        self.decoder = nn.Module()
        for k, cout in enumerate(targets):
            setattr(self.decoder, f"up{k + 1}", ConvNorm(cin, cout, 3))
            cin = cout
        self.n_up = len(targets)
        self.heads = nn.ModuleDict({name: DenseHead(cin, n) for name, n in heads})

    def forward(self, x):
        h, w = x.shape[2:]
        x = F.pad(x, (0, -w % self.stride, 0, -h % self.stride))
        skips = []
        x = F.relu(self.encoder.stem(x))
        if self.imagenet_stem:
            skips.append(x)
            x = F.max_pool2d(x, 3, 2, 1)
        for index in range(4):
            for block in getattr(self.encoder, f"stage{index + 1}").blocks:
                x = block(x)
            skips.append(x)
        skips.pop()
        for k in range(self.n_up):
            up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.relu(getattr(self.decoder, f"up{k + 1}")(up))
            if skips:
                x = x + skips.pop()
        x = x[:, :, :h, :w]
        return [head(x) for head in self.heads.values()]


def pcgrad(grads, rng):
    """Yu et al. 2020, Alg. 1: project each task gradient off the others it conflicts with; sum."""
    projected = []
    for i, g in enumerate(grads):
        g = g.clone()
        others = [j for j in range(len(grads)) if j != i]
        rng.shuffle(others)
        for j in others:
            dot = torch.dot(g, grads[j])
            if dot < 0:
                g -= dot / grads[j].norm() ** 2 * grads[j]
        projected.append(g)
    return torch.stack(projected).sum(0)


def make_step(workload):
    torch.manual_seed(0)
    if workload in ("w1", "w2"):
        model = MultiLeNet()
        batch = 256
        x = torch.rand(batch, 1, 28, 28)
        y = [torch.randint(0, 10, (batch,)) for _ in range(2)]
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.0)
        rng = random.Random(0)
        shared = model.shared()

        def step():
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            losses = [F.cross_entropy(logits[0], y[0]), 0.5 * F.cross_entropy(logits[1], y[1])]
            if workload == "w1":
                sum(losses).backward()
            else:
                # One backward per task (shared + own head), projection, one step.
                flat = []
                for t, loss in enumerate(losses):
                    params = shared + list(model.heads[t].parameters())
                    grads = torch.autograd.grad(loss, params, retain_graph=t == 0)
                    for p, g in zip(params[len(shared):], grads[len(shared):]):
                        p.grad = g
                    flat.append(torch.cat([g.flatten() for g in grads[: len(shared)]]))
                combined = pcgrad(flat, rng)
                offset = 0
                for p in shared:
                    p.grad = combined[offset : offset + p.numel()].view_as(p)
                    offset += p.numel()
            optimizer.step()

        return step, batch
    if workload == "w3":
        model = TextCnn()
        batch = 64
        tokens = torch.randint(0, 20_000, (batch, 256))
        y = [torch.randint(0, 2, (batch,)) for _ in range(2)]
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

        def step():
            optimizer.zero_grad(set_to_none=True)
            logits = model(tokens)
            (F.cross_entropy(logits[0], y[0]) + F.cross_entropy(logits[1], y[1])).backward()
            optimizer.step()

        return step, batch
    if workload == "w4":
        model = ImageText()
        batch = 64
        images = torch.rand(batch, 1, 28, 28)
        tokens = torch.randint(0, 20_000, (batch, 400))
        y_digits = torch.randint(0, 10, (batch,))
        y_sentiment = torch.randint(0, 2, (batch,))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

        def step():
            optimizer.zero_grad(set_to_none=True)
            digits, sentiment = model(images, tokens)
            (F.cross_entropy(digits, y_digits) + F.cross_entropy(sentiment, y_sentiment)).backward()
            optimizer.step()

        return step, 2 * batch
    if workload == "w5":
        model = ResNet18Cifar()
        batch = 128
        images = torch.rand(batch, 3, 32, 32)
        y = [torch.randint(0, 10, (batch,)), torch.randint(0, 100, (batch,))]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step():
            optimizer.zero_grad(set_to_none=True)
            logits = model(images)
            (F.cross_entropy(logits[0], y[0]) + F.cross_entropy(logits[1], y[1])).backward()
            optimizer.step()

        return step, batch
    if workload == "w6":
        model = EncoderDecoder()
        batch = 8
        images = torch.rand(batch, 3, 96, 128)
        classes = torch.randint(0, 13, (batch, 96, 128))
        depth = torch.rand(batch, 1, 96, 128)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            optimizer.zero_grad(set_to_none=True)
            segmentation, predicted_depth = model(images)
            (F.cross_entropy(segmentation, classes) + (predicted_depth - depth).abs().mean()).backward()
            optimizer.step()

        return step, batch
    raise SystemExit(f"unknown workload {workload}")


# The w6 step's convolutions: (count, in, out, kernel, stride, input height, input width), as
# `CONVOLUTIONS` in crates/mtl-runner/examples/w6.rs.
W6_CONVOLUTIONS = [
    (1, 3, 64, 7, 2, 96, 128), (4, 64, 64, 3, 1, 24, 32), (1, 64, 128, 3, 2, 24, 32), (1, 64, 128, 1, 2, 24, 32),
    (3, 128, 128, 3, 1, 12, 16), (1, 128, 256, 3, 2, 12, 16), (1, 128, 256, 1, 2, 12, 16), (3, 256, 256, 3, 1, 6, 8),
    (1, 256, 512, 3, 2, 6, 8), (1, 256, 512, 1, 2, 6, 8), (3, 512, 512, 3, 1, 3, 4), (1, 512, 256, 3, 1, 6, 8),
    (1, 256, 128, 3, 1, 12, 16), (1, 128, 64, 3, 1, 24, 32), (1, 64, 64, 3, 1, 48, 64), (1, 64, 32, 3, 1, 96, 128),
    (2, 32, 32, 3, 1, 96, 128), (1, 32, 13, 1, 1, 96, 128), (1, 32, 1, 1, 1, 96, 128),
]


def time_convs():
    """Per w6 convolution shape (bias-free, batch 8, input gradient kept): the median ms of its
    forward and of the backward of its sum over 9 runs, and the totals weighted by each count."""
    forward_total = backward_total = 0.0
    for count, cin, cout, k, s, h, w in W6_CONVOLUTIONS:
        x = torch.rand(8, cin, h, w, requires_grad=True)
        weight = torch.rand(cout, cin, k, k, requires_grad=True)
        forward, backward = [], []
        for _ in range(9):
            started = time.perf_counter()
            y = F.conv2d(x, weight, stride=s, padding=k // 2)
            forward.append((time.perf_counter() - started) * 1000)
            total = y.sum()
            started = time.perf_counter()
            total.backward()
            backward.append((time.perf_counter() - started) * 1000)
        f, b = sorted(forward)[4], sorted(backward)[4]
        forward_total += count * f
        backward_total += count * b
        print(f"{count} × {cin:>3}→{cout:<3} {k}×{k}/{s} @{h}×{w}: forward {f:6.1f} backward {b:6.1f}")
    print(f"step total (each shape × its count): forward {forward_total:.1f} ms, backward {backward_total:.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="w1", choices=["w1", "w2", "w3", "w4", "w5", "w6"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: the number of cores]")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--convs", action="store_true", help="w6 only: time each convolution shape of its step")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N (every tensor is made there)")
    args = parser.parse_args()
    import os

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    if args.convs:
        if args.workload != "w6":
            parser.error("--convs times w6's convolutions: add --workload w6")
        time_convs()
        return
    torch.set_default_device(args.device)
    # A GPU runs kernels asynchronously: each timed repeat ends when they have.
    synchronize = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    step, samples_per_step = make_step(args.workload)
    for _ in range(3):
        step()
    repeats = []
    for _ in range(args.repeats):
        synchronize()
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        synchronize()
        repeats.append(args.steps * samples_per_step / (time.perf_counter() - started))
    median = sorted(repeats)[len(repeats) // 2]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    decimals = 1 if median < 100 else 0
    shown = " ".join(f"{r:.{decimals}f}" for r in repeats)
    print(
        f"{args.workload}: {median:.{decimals}f} samples/s (median of {args.repeats} × {args.steps} steps, "
        f"{samples_per_step} samples/step, {threads} threads, {args.device}; repeats {shown}), peak RSS {peak_mib:.0f} MiB "
        f"[torch {torch.__version__}]"
    )


if __name__ == "__main__":
    main()
