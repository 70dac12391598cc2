"""Reference numbers for `dense::EncoderDecoder` in crates/mtl-model/src/dense.rs: the w6
model of benches/torch_reference.py (`EncoderDecoder`, the same parameter names), in
PyTorch.

Prints
- the parameter counts of the w6 model (width 1, ImageNet stem, 3 input channels, heads of
  13 and 1 channels) and of a width-1/16 CIFAR-stem one with the same heads;
- the outputs of a tiny model in training mode (batch statistics) with every parameter set
  to a formula, so that the Rust test can set the same values by name: the tensor called
  `name` with n elements holds 0.5·sin(0.37·i + 0.11·len(name)), i = 0…n−1 row-major
  (running statistics are not read in training mode). The model: width 1/16, CIFAR stem,
  2 input channels, heads "segmentation" (3) and "depth" (1); the input [2, 2, 9, 13]
  holds cos(0.1·i) row-major (9×13 is padded to 16×16 inside). Printed: the sum of each
  head's output, and its values at the flat indices 0, 29, 101, 233 (f64).

    /tmp/venv/bin/python benches/reference/dense_reference.py
"""
import math
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from torch_reference import EncoderDecoder  # noqa: E402


def count(model):
    return sum(p.numel() for p in model.parameters())


def main():
    heads = (("segmentation", 13), ("depth", 1))
    print("w6 parameters:", count(EncoderDecoder(3, 1.0, True, heads)))
    print("width 1/16 cifar parameters:", count(EncoderDecoder(3, 1.0 / 16.0, False, heads)))
    torch.set_default_dtype(torch.float64)
    model = EncoderDecoder(2, 1.0 / 16.0, False, (("segmentation", 3), ("depth", 1)))
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            n = tensor.numel()
            values = [0.5 * math.sin(0.37 * i + 0.11 * len(name)) for i in range(n)]
            tensor.copy_(torch.tensor(values).reshape(tensor.shape))
    model.train()
    x = torch.tensor([math.cos(0.1 * i) for i in range(2 * 2 * 9 * 13)]).reshape(2, 2, 9, 13)
    with torch.no_grad():
        outputs = model(x)
    for name, output in zip(("segmentation", "depth"), outputs):
        flat = output.flatten()
        picked = ", ".join(f"{flat[i].item():.15e}" for i in (0, 29, 101, 233))
        print(f"{name} {list(output.shape)}: sum {flat.sum().item():.15e}; at 0, 29, 101, 233: {picked}")


if __name__ == "__main__":
    main()
