"""Reference numbers for the tests of crates/mtl-runner/src/optim (tests.rs).

numpy re-implementation, in float64, of PyTorch's documented updates
(https://pytorch.org/docs/stable/optim.html): SGD (momentum, dampening, Nesterov, weight
decay), Adam (L2 weight decay), AdamW, clip_grad_norm_, StepLR, MultiStepLR,
CosineAnnealingLR (closed form) after a LinearLR warm-up, and ReduceLROnPlateau, on a fixed
small problem: six parameters, five steps on fixed gradients. When torch is installed it
also runs torch itself on the same problem and asserts that the two agree:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy   # (+ torch for the cross-check)
    /tmp/venv/bin/python benches/reference/optim_reference.py

Printed with numpy 2.4.6, cross-checked with torch 2.15.0 (CPU).
"""
import math

import numpy as np

THETA0 = np.array([0.5, -1.0, 2.0, 0.25, 0.0, -3.0])
GRADS = np.array([
    [0.1, -0.2, 0.3, 0.0, 1.0, -0.5],
    [0.2, 0.1, -0.4, 0.5, -1.0, 0.25],
    [-0.3, 0.0, 0.5, 0.1, 0.5, 0.0],
    [0.05, -0.6, 0.2, -0.2, 0.0, 1.5],
    [0.4, 0.3, -0.1, 0.25, -0.5, -0.75],
])
# The rate of each step for the run that changes it (SGD with momentum, below).
LR_CHANGES = [0.1, 0.1, 0.05, 0.05, 0.025]

# name -> (kind, settings, learning rate of each step)
OPTIMIZERS = {
    "sgd_plain": ("sgd", dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0), None),
    "sgd_momentum": ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=False, weight_decay=0.01), None),
    "sgd_nesterov": ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01), None),
    "sgd_momentum_lr_changes": (
        "sgd", dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0), LR_CHANGES),
    "adam": ("adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1), None),
    "adamw": ("adamw", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1), None),
}


def sgd(theta, grads, lr, momentum, dampening, nesterov, weight_decay, lrs=None):
    theta, buf, out = theta.copy(), None, []
    for t, g in enumerate(grads):
        lr_t = lrs[t] if lrs else lr
        g = g + weight_decay * theta
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        theta = theta - lr_t * g
        out.append(theta)
    return out


def adam(theta, grads, lr, betas, eps, weight_decay, decoupled):
    theta, out = theta.copy(), []
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            theta = theta * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta)
    return out


def run_optimizer(kind, settings, lrs):
    if kind == "sgd":
        return sgd(THETA0, GRADS, lrs=lrs, **settings)
    return adam(THETA0, GRADS, decoupled=kind == "adamw", **settings)


# clip_grad_norm_: two gradients, global norm sqrt(9+16+144) = 13.
CLIP_GRADS = [np.array([3.0, -4.0]), np.array([12.0])]
CLIP_MAX_NORM = 6.5


def clip(grads, max_norm):
    total = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    coef = max_norm / (total + 1e-6)
    return total, [g * min(coef, 1.0) for g in grads]


BASE_LR = 0.1
EPOCHS = 12
# name -> closed-form settings; epoch e is 0-based here (the Rust side's epoch e + 1)
SCHEDULES = {
    "step": dict(step_size=3, gamma=0.5),
    "multi_step": dict(milestones=[2, 5, 9], gamma=0.1),
    "cosine": dict(t_max=10, eta_min=0.001, warmup=0),
    "cosine_warmup": dict(t_max=8, eta_min=0.0, warmup=3),
}


def closed_form(name, e):
    s = SCHEDULES[name]
    if name == "step":
        return BASE_LR * s["gamma"] ** (e // s["step_size"])
    if name == "multi_step":
        return BASE_LR * s["gamma"] ** sum(m <= e for m in s["milestones"])
    w = s["warmup"]
    if e < w:
        return BASE_LR * (e + 1) / (w + 1)
    return s["eta_min"] + (BASE_LR - s["eta_min"]) * (1 + math.cos(math.pi * (e - w) / s["t_max"])) / 2


PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.9, 0.89995, 0.91, 0.92, 0.93, 0.5, 0.6, 0.7, 0.8]
PLATEAUS = {
    "plateau_min": dict(mode="min", factor=0.5, patience=1, threshold=1e-4, cooldown=1, min_lr=0.02),
    "plateau_max": dict(mode="max", factor=0.1, patience=0, threshold=0.0, cooldown=0, min_lr=0.0),
}


def plateau(metrics, mode, factor, patience, threshold, cooldown, min_lr):
    """ReduceLROnPlateau, threshold_mode='rel': the rate after each step(metric)."""
    lr, best = BASE_LR, math.inf if mode == "min" else -math.inf
    bad, cooldown_left, out = 0, 0, []
    for x in metrics:
        better = x < best * (1 - threshold) if mode == "min" else x > best * (1 + threshold)
        if better:
            best, bad = x, 0
        else:
            bad += 1
        if cooldown_left > 0:
            cooldown_left, bad = cooldown_left - 1, 0
        if bad > patience:
            new_lr = max(lr * factor, min_lr)
            if lr - new_lr > 1e-8:
                lr = new_lr
            cooldown_left, bad = cooldown, 0
        out.append(lr)
    return out


def show(name, values):
    print(f"{name}: [{', '.join(repr(float(v)) for v in values)}]")


def main():
    results = {}
    for name, (kind, settings, lrs) in OPTIMIZERS.items():
        results[name] = run_optimizer(kind, settings, lrs)
        for step, theta in enumerate(results[name], start=1):
            show(f"{name} step {step}", theta)
    total, clipped = clip(CLIP_GRADS, CLIP_MAX_NORM)
    print(f"clip total norm: {total!r}")
    show("clip clipped", np.concatenate(clipped))
    for name in SCHEDULES:
        show(f"{name} epochs 1..{EPOCHS}", [closed_form(name, e) for e in range(EPOCHS)])
    for name, settings in PLATEAUS.items():
        show(f"{name} after each epoch", plateau(PLATEAU_METRICS, **settings))
    cross_check_with_torch(results, total, clipped)


def cross_check_with_torch(results, total, clipped):
    try:
        import torch
    except ImportError:
        print("torch not installed: cross-check skipped")
        return
    torch.set_default_dtype(torch.float64)
    for name, (kind, settings, lrs) in OPTIMIZERS.items():
        p = torch.nn.Parameter(torch.tensor(THETA0))
        if kind == "sgd":
            opt = torch.optim.SGD([p], **settings)
        else:
            opt = (torch.optim.Adam if kind == "adam" else torch.optim.AdamW)([p], **settings)
        for t, g in enumerate(GRADS):
            if lrs:
                for group in opt.param_groups:
                    group["lr"] = lrs[t]
            p.grad = torch.tensor(g)
            opt.step()
            assert np.allclose(p.detach().numpy(), results[name][t], rtol=1e-12, atol=1e-12), (name, t)
    params = [torch.nn.Parameter(torch.zeros(len(g))) for g in CLIP_GRADS]
    for p, g in zip(params, CLIP_GRADS):
        p.grad = torch.tensor(g)
    torch_total = torch.nn.utils.clip_grad_norm_(params, CLIP_MAX_NORM)
    assert math.isclose(float(torch_total), total, rel_tol=1e-12)
    for p, g in zip(params, clipped):
        assert np.allclose(p.grad.numpy(), g, rtol=1e-12, atol=0)
    for name, s in SCHEDULES.items():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
        if name == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, s["step_size"], s["gamma"])
        elif name == "multi_step":
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, s["milestones"], s["gamma"])
        else:
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s["t_max"], s["eta_min"])
            if s["warmup"]:
                warmup = torch.optim.lr_scheduler.LinearLR(
                    opt, start_factor=1 / (s["warmup"] + 1), end_factor=1.0, total_iters=s["warmup"])
                sched = torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[s["warmup"]])
            else:
                sched = cosine
        torch_lrs = []
        for _ in range(EPOCHS):
            torch_lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        ours = [closed_form(name, e) for e in range(EPOCHS)]
        assert np.allclose(torch_lrs, ours, rtol=1e-9, atol=1e-12), (name, torch_lrs, ours)
    for name, settings in PLATEAUS.items():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="rel", eps=1e-8, **settings)
        torch_lrs = []
        for x in PLATEAU_METRICS:
            opt.step()
            sched.step(x)
            torch_lrs.append(opt.param_groups[0]["lr"])
        assert np.allclose(torch_lrs, plateau(PLATEAU_METRICS, **settings), rtol=1e-12), (name, torch_lrs)
    print(f"torch {torch.__version__}: every number above agrees")


if __name__ == "__main__":
    main()
