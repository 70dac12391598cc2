"""Reference numbers for the statistics of mtl-report (crates/mtl-report/src/stats.rs and
the Δm% interval of compare.rs): Student's t quantiles and CDF, Welch's and the paired
t-test, and the worked Δm% case of the tests, computed with scipy in float64.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
    /tmp/venv/bin/python benches/reference/stats_reference.py
"""
import numpy as np
from scipy import stats

for p, df in [(0.975, 1), (0.975, 2), (0.975, 4), (0.975, 9), (0.975, 2.5), (0.95, 30)]:
    print(f"t.ppf({p}, {df}) = {stats.t.ppf(p, df)!r}")
for t, df in [(1.5, 3), (-0.7, 7.5)]:
    print(f"t.cdf({t}, {df}) = {stats.t.cdf(t, df)!r}")

a = np.array([0.91, 0.93, 0.90, 0.94])
b = np.array([0.89, 0.90, 0.91])
w = stats.ttest_ind(a, b, equal_var=False)
va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
print(f"welch: t = {w.statistic!r}, df = {df!r}, p = {w.pvalue!r}")
r = stats.ttest_rel(a[:3], b)
print(f"paired: t = {r.statistic!r}, p = {r.pvalue!r}")

# Δm% of one multi-task group against single-task baselines, two tasks, accuracy only.
# Per run r: D_r = 100/T Σ_t (x_rt − B_t)/B_t with B_t the baseline mean; Δm = mean_r D_r.
# Variance: s²(D)/n from the runs, plus per task the baseline mean's variance times
# (∂Δm/∂B_t)² = (100/T · x̄_t/B_t²)²; degrees of freedom by Welch–Satterthwaite.
group = np.array([[0.92, 0.81], [0.94, 0.80], [0.93, 0.83]])  # runs × tasks
base = [np.array([0.90, 0.91, 0.89]), np.array([0.82, 0.80])]  # per task: single-task runs
T = 2
B = np.array([b.mean() for b in base])
D = 100 / T * ((group - B) / B).sum(axis=1)
dm = D.mean()
parts = [(D.var(ddof=1) / len(D), len(D) - 1)]
for t in range(T):
    g = 100 / T * group[:, t].mean() / B[t] ** 2
    parts.append((g**2 * base[t].var(ddof=1) / len(base[t]), len(base[t]) - 1))
V = sum(v for v, _ in parts)
dof = V**2 / sum(v**2 / d for v, d in parts)
half = stats.t.ppf(0.975, dof) * np.sqrt(V)
print(f"delta_m = {dm!r}, se = {np.sqrt(V)!r}, df = {dof!r}, ci95 = ({dm - half!r}, {dm + half!r})")
