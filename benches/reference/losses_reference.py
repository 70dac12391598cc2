"""Reference values for mtl-lab's task losses (crates/mtl-runner/src/objective.rs), printed
by PyTorch: cross-entropy with label smoothing and class weights, and binary cross-entropy
with logits and positive weights. The tests hold the printed numbers.

    python benches/reference/losses_reference.py
"""
import torch
import torch.nn.functional as F

torch.set_printoptions(precision=17)
logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [-2.0, 1.5, 0.0], [0.3, 0.3, -0.7]], dtype=torch.float64, requires_grad=True)
labels = torch.tensor([0, 2, 1, 1])
weights = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
for name, kwargs in [
    ("smoothing 0.1", dict(label_smoothing=0.1)),
    ("weights", dict(weight=weights)),
    ("smoothing 0.2 and weights", dict(label_smoothing=0.2, weight=weights)),
]:
    loss = F.cross_entropy(logits, labels, **kwargs)
    (grad,) = torch.autograd.grad(loss, logits)
    print(f"cross_entropy {name}: {loss.item()!r}")
    print(f"  grad {grad.flatten().tolist()!r}")

x = torch.tensor([[-3.0, 0.5, 2.0], [1.0, -0.2, 0.0]], dtype=torch.float64, requires_grad=True)
y = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], dtype=torch.float64)
pos_weight = torch.tensor([2.0, 0.5, 4.0], dtype=torch.float64)
loss = F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight)
(grad,) = torch.autograd.grad(loss, x)
print(f"bce pos_weight: {loss.item()!r}")
print(f"  grad {grad.flatten().tolist()!r}")
