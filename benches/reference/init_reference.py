"""Reference numbers for the initialisation schemes of crates/mtl-model/src/init.rs
(`init = "framework" | "kaiming-normal" | "xavier-uniform"`), from PyTorch's own nn.init.

For nn.Linear(3, 2), nn.Conv2d(3, 7, 5) and nn.Conv1d(4, 6, 3) it prints fan_in and fan_out
as PyTorch counts them, the bound of the weight and of the bias that the layer's own
reset_parameters uses (kaiming_uniform_ with a = √5, and U(±1/√fan_in) for the bias), the
std of kaiming_normal_(nonlinearity="relu") and the bound of xavier_uniform_; then it checks
those numbers against 10^6 draws of each function, and nn.Embedding's default std.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy torch
    /tmp/venv/bin/python benches/reference/init_reference.py
"""
import math

import torch
from torch import nn

torch.manual_seed(0)
for layer in [nn.Linear(3, 2), nn.Conv2d(3, 7, 5), nn.Conv1d(4, 6, 3)]:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    # reset_parameters: kaiming_uniform_(w, a=√5): gain √(2/(1+a²)), bound gain·√(3/fan_in).
    gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    framework = gain * math.sqrt(3.0 / fan_in)
    bias_bound = 1.0 / math.sqrt(fan_in)
    kaiming = nn.init.calculate_gain("relu") / math.sqrt(fan_in)
    xavier = math.sqrt(6.0 / (fan_in + fan_out))
    print(f"{layer}: fan_in {fan_in}, fan_out {fan_out}")
    print(f"  framework weight bound {framework!r}, bias bound {bias_bound!r}")
    print(f"  kaiming-normal std {kaiming!r}, xavier-uniform bound {xavier!r}")

    # The layer's own reset_parameters draws inside those bounds, and reaches them.
    weights, biases = [], []
    for _ in range(5000):
        layer.reset_parameters()
        weights.append(layer.weight.detach().flatten().clone())
        biases.append(layer.bias.detach().flatten().clone())
    weights, biases = torch.cat(weights), torch.cat(biases)
    print(f"  reset_parameters: largest |weight| {weights.abs().max().item():.5f}, |bias| {biases.abs().max().item():.5f}")
    assert 0.99 * framework < weights.abs().max().item() <= framework
    assert 0.99 * bias_bound < biases.abs().max().item() <= bias_bound
    for name, fill, want_std in [
        ("kaiming_uniform_(a=√5)", lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)), framework / math.sqrt(3)),
        ("kaiming_normal_(relu)", lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), kaiming),
        ("xavier_uniform_", nn.init.xavier_uniform_, xavier / math.sqrt(3)),
    ]:
        # Many draws on the layer's own shape (a larger tensor would have other fans).
        samples = torch.cat([fill(torch.empty_like(layer.weight)).flatten() for _ in range(20000)])
        print(f"  {name}: empirical std {samples.std().item():.5f}, formula {want_std:.5f}")
        assert abs(samples.std().item() / want_std - 1) < 0.01

emb = nn.Embedding(1000, 100)
print(f"nn.Embedding default std {emb.weight.std().item():.4f} (N(0, 1))")
