"""Reference numbers for the tests of crates/mtl-runner/src/weighting (solvers.rs, nash.rs).

Where no closed form exists, this recomputes the answer the way the original authors' code
does (or, for MGDA and the Nash fixed point, by an independent exact method), in float64, for
the three gradients below. Run with numpy, scipy, and cvxpy with ECOS (for Nash-MTL; no torch
needed):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy cvxpy ecos
    /tmp/venv/bin/python benches/reference/weighting_reference.py

Nash-MTL follows AvivNavon/nash-mtl at commit cce18403ef5557a6b30f4ba43b896117107d6902
(methods/weight_methods.py, `NashMTL`, unchanged since 8748f1ae of 2023-09-05; LibMTL's
`Nash_MTL` at 4336804 is the same procedure). Printed with numpy 2.4.6, scipy 1.17.1,
cvxpy 1.9.3 and ECOS 2.0.14.
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
    sol = root(lambda a: K @ a - 1 / a, np.ones(len(K)) / np.sqrt(np.diag(K)), method="hybr", tol=1e-15)
    assert sol.success and (sol.x > 0).all()
    assert np.abs(K @ sol.x - 1 / sol.x).max() < 1e-12
    return sol.x


def nash_mtl_official(G, start=None, optim_niter=20):
    """The weights the official Nash-MTL step computes (update_weights_every = 1), as one
    function: K = G G^T is divided by its Frobenius norm s, then from alpha_t = the previous
    step's alpha (ones at the start) up to `optim_niter` convex problems are solved with ECOS
    (max_iters=100):

        min_a  1^T (K/s) a + phi'(alpha_t)^T (a - alpha_t) / s
        s.t.   -log(a_i s) - log(((K/s) a)_i) <= 0,  a >= 0,
        phi'(alpha_t) = 1/alpha_t + (K/s)^T (1 / ((K/s) alpha_t)),

    stopping (and keeping alpha_t, not the new solution) when the problem has no solution,
    when ||(K/s) alpha_t - 1/(alpha_t + 1e-10)|| < 1e-3, or when the new solution moved by less
    than 1e-6; a solver exception keeps alpha_t too. Returns the weights and how many problems
    were solved."""
    import warnings

    import cvxpy as cp

    # The problem is rebuilt from its parameters at every solve, as in the official code.
    warnings.filterwarnings("ignore", message="You are solving a parameterized problem that is not DPP")
    K = G @ G.T
    m = len(K)
    s = np.linalg.norm(K)
    K_hat = K / s
    a = cp.Variable(m, nonneg=True)
    previous = cp.Parameter(m)
    gram = cp.Parameter((m, m), value=K_hat)
    norm = cp.Parameter(1, value=np.array([s]))
    gram_a = gram @ a
    slope = 1 / previous + (1 / (gram @ previous)) @ gram
    problem = cp.Problem(
        cp.Minimize(cp.sum(gram_a) + slope @ (a - previous) / norm),
        [-cp.log(a[i] * norm) - cp.log(gram_a[i]) <= 0 for i in range(m)],
    )
    alpha_t = np.ones(m) if start is None else np.asarray(start, dtype=float)
    for solved in range(1, optim_niter + 1):
        a.value = alpha_t
        previous.value = alpha_t
        try:
            problem.solve(solver=cp.ECOS, max_iters=100)
        except Exception:  # as broad as the official bare `except`
            a.value = alpha_t
        if (a.value is None
                or np.linalg.norm(K_hat @ alpha_t - 1 / (alpha_t + 1e-10)) < 1e-3
                or np.linalg.norm(a.value - alpha_t) < 1e-6):
            break
        alpha_t = a.value
    return alpha_t, solved


show("mgda", mgda(K))
show("cagrad c=0.5", cagrad(K, 0.5))
show("aligned-mtl", aligned_mtl(K))
show("nash fixed point", nash(K))

# Nash-MTL's first step, the official way, on four gradient sets.
NASH_CASES = {
    # Orthogonal, norms 2 and 0.5: alpha_i (K alpha)_i = 1 gives (1/2, 2).
    "orthogonal": np.array([[2.0, 0.0], [0.0, 0.5]]),
    # The three gradients above: the official procedure reaches the fixed point.
    "three": G,
    # Norms 0.92, 11.7 and 0.5: after its 20 problems it is where task 1's constraint is
    # slack, alpha_1 (K alpha)_1 = 6.47, far from the fixed point (1.39, 0.097, 1.31).
    "slack": np.array([[0.0, -0.2, -0.9], [3.0, -8.0, 8.0], [0.4, -0.3, 0.0]]),
    # K 1 has a negative entry, so the first problem (from ones) is unbounded: ones are kept.
    "unbounded": np.array([[-0.8, -0.1, 0.7], [-0.4, -0.3, -0.5], [0.5, -0.5, 1.0]]),
}
for name, grads in NASH_CASES.items():
    weights, solved = nash_mtl_official(grads)
    show(f"nash-mtl official, {name} ({solved} problems)", weights)
# A second step starts where the first ended: after "three", the "unbounded" gradients' first
# problem is bounded and the procedure reaches their fixed point.
first, _ = nash_mtl_official(NASH_CASES["three"])
weights, solved = nash_mtl_official(NASH_CASES["unbounded"], start=first)
show(f"nash-mtl official, unbounded after three ({solved} problems)", weights)


# UPGrad, DualProj and ConFIG (dual_cone.rs), as torchjd at 098255d computes them: the Gram
# matrix divided by its trace plus 1e-4 I, each projection the v >= u minimising v'Kv (solved
# here exactly, by trying every set of active bounds: an independent method), and ConFIG with
# torch.linalg.pinv's default tolerance max(m, n) * eps_f32.
def regularised(K):
    return K / np.trace(K) + 1e-4 * np.eye(len(K))


def project(K, u):
    """The v >= u minimising v'Kv (K positive definite): the active set B (v_B = u_B) whose free
    part solves (K v)_F = 0 with v_F >= u_F and multipliers (K v)_B >= 0."""
    m = len(K)
    for size in range(m + 1):
        for B in itertools.combinations(range(m), size):
            F = [i for i in range(m) if i not in B]
            v = u.copy()
            if F:
                rhs = -K[np.ix_(F, list(B))] @ u[list(B)] if B else np.zeros(len(F))
                v[F] = np.linalg.solve(K[np.ix_(F, F)], rhs)
            if np.all(v[F] >= u[F] - 1e-15) and np.all((K @ v)[list(B)] >= -1e-15):
                return v
    raise ValueError("no active set satisfies the KKT conditions")


def upgrad(K):
    m = len(K)
    return sum(project(regularised(K), np.eye(m)[i] / m) for i in range(m))


def dualproj(K):
    return project(regularised(K), np.full(len(K), 1.0 / len(K)))


def config(G):
    units = G / np.linalg.norm(G, axis=1, keepdims=True)
    rtol = max(G.shape) * np.finfo(np.float32).eps
    d = np.linalg.pinv(units, rcond=rtol) @ np.ones(len(G))
    d_hat = d / np.linalg.norm(d)
    update = np.sum(G @ d_hat) * d_hat
    # The weights alpha with update = G' alpha (G has full row rank here).
    return np.linalg.solve(G @ G.T, G @ update)


show("upgrad", upgrad(K))
show("dualproj", dualproj(K))
show("config", config(G))


# FairGrad (solvers.rs) as LibMTL's FairGrad.py at 2ab0216 computes it: scipy's least_squares
# from 1/n, bounded below by 0, on (K w)_i - w_i^(-1/alpha); tightened tolerances so that the
# printed digits are the root's, not the default stopping point's.
def fairgrad(K, alpha):
    from scipy.optimize import least_squares

    def residual(x):
        return K @ x - np.power(1 / x, 1 / alpha)

    res = least_squares(residual, np.ones(len(K)) / len(K), bounds=(0, np.inf), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    return res.x, np.max(np.abs(residual(res.x)))


for alpha in (0.5, 1.0, 2.0):
    weights, worst = fairgrad(K, alpha)
    show(f"fairgrad alpha={alpha} (largest residual {worst:.1e})", weights)


# SDMGrad (sampled.rs) as LibMTL's SDMGrad.py at 8bc7605 computes it, one step from w = 1/n with
# its defaults (lambda 0.3, 20 iterations of torch.optim.SGD(lr=5, momentum=0.5) on w, each
# projected onto the simplex), for three samples of the gradients above.
def simplex(v):
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    rho = np.nonzero(u * np.arange(1, len(v) + 1) > (css - 1))[0][-1]
    return np.maximum(v - (css[rho] - 1) / (rho + 1), 0)


def sdmgrad(zeta, xi1, xi2, lam=0.3, niter=20):
    M = xi1 @ xi2.T
    s = np.mean(np.sqrt(np.maximum(np.diag(M), 0)))
    M = M / (s**2 + 1e-8)
    m = M.mean(axis=1)
    w = np.full(len(M), 1 / len(M))
    buf = None
    for _ in range(niter):
        g = M @ w + lam * m
        buf = g if buf is None else 0.5 * buf + g
        w = simplex(w - 5 * buf)
    return (w + lam / len(w)) / (1 + lam)


SAMPLES = (
    G,
    np.array([[1.0, 0.3, -0.2], [-0.3, 0.9, 0.6], [0.8, 1.0, 0.0]]),
    np.array([[0.9, 0.1, -0.4], [-0.5, 1.1, 0.4], [1.0, 0.8, 0.2]]),
)
# Twenty iterations reach a vertex of the simplex here; one and three stop inside it.
for niter in (1, 3, 20):
    show(f"sdmgrad weights on zeta, niter={niter}", sdmgrad(*SAMPLES, niter=niter))
