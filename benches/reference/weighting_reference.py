"""Reference numbers for the tests of crates/mtl-runner/src/weighting (solvers.rs).

Where no closed form exists, this recomputes the answer the way the original authors' code
does (or, for MGDA and Nash-MTL, by an independent exact method), in float64, for the three
gradients below. Run with numpy and scipy (no torch needed):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
    /tmp/venv/bin/python benches/reference/weighting_reference.py
"""
import itertools

import numpy as np
from scipy.optimize import minimize, root

# One gradient per row; the same three in every Rust test that uses a reference.
G = np.array([[1.0, 0.2, -0.3], [-0.4, 1.0, 0.5], [0.9, 0.9, 0.1]])
K = G @ G.T
n = len(K)


def show(name, values):
    print(f"{name}: [{', '.join(repr(float(v)) for v in values)}]")


def mgda(K):
    """Exact min-norm point of the convex hull: try every support S and keep the one whose
    KKT conditions hold (K_SS a = mu 1, sum a = 1, a >= 0, (K a)_j >= mu off S)."""
    best = None
    for size in range(1, n + 1):
        for S in itertools.combinations(range(n), size):
            S = list(S)
            A = np.zeros((size + 1, size + 1))
            A[:size, :size] = K[np.ix_(S, S)]
            A[:size, size] = -1.0
            A[size, :size] = 1.0
            b = np.zeros(size + 1)
            b[size] = 1.0
            try:
                x = np.linalg.solve(A, b)
            except np.linalg.LinAlgError:
                continue
            a = np.zeros(n)
            a[S] = x[:size]
            mu = x[size]
            if (a >= -1e-12).all() and (K @ a >= mu - 1e-12).all():
                if best is None or a @ K @ a < best @ K @ best:
                    best = a
    return best


def cagrad(K, c):
    """The official Cranial-XIX/CAGrad `cagrad(grads, alpha=c, rescale=1)` in numpy, with a
    tighter SLSQP tolerance; returns the effective weights of d = sum_i weights_i g_i."""
    g0_norm = np.sqrt(K.mean() + 1e-8)
    x_start = np.ones(n) / n
    b = x_start.copy()
    cc = c * g0_norm + 1e-8

    def objfn(x):
        return x @ K @ b + cc * np.sqrt(x @ K @ x + 1e-8)

    res = minimize(objfn, x_start, bounds=[(0, 1)] * n, constraints={"type": "eq", "fun": lambda x: 1 - sum(x)},
                   method="SLSQP", options={"ftol": 1e-16, "maxiter": 1000})
    w = res.x
    gw_norm = np.sqrt(w @ K @ w)
    lmbda = cc / (gw_norm + 1e-8)
    return (np.ones(n) / n + lmbda * w) / (1 + c ** 2)


def aligned_mtl(K):
    """SamsungLabs/MTL `ProcrustesSolver.apply(..., scale_mode='min')`, then `weights.sum(-1)`."""
    singulars, basis = np.linalg.eigh(K)
    tol = singulars.max() * n * np.finfo(np.float32).eps
    rank = int((singulars > tol).sum())
    order = np.argsort(-singulars)
    singulars, basis = singulars[order][:rank], basis[:, order][:, :rank]
    weights = basis * np.sqrt(singulars[-1]) / np.sqrt(singulars)
    return (weights @ basis.T).sum(-1)


def nash(K):
    """The alpha > 0 with K alpha = 1/alpha (Navon et al. 2022), by scipy's root finder."""
    sol = root(lambda a: K @ a - 1 / a, np.ones(n) / np.sqrt(np.diag(K)), method="hybr", tol=1e-15)
    assert sol.success and (sol.x > 0).all()
    assert np.abs(K @ sol.x - 1 / sol.x).max() < 1e-12
    return sol.x


show("mgda", mgda(K))
show("cagrad c=0.5", cagrad(K, 0.5))
show("aligned-mtl", aligned_mtl(K))
show("nash-mtl", nash(K))
