#!/usr/bin/env bash
# Adaptive search against the full grid (issue 23's figure): experiments/weighting.toml's
# 28 methods × λ (static: 0.5, 1, 2) × lr (3e-4, 1e-3, 3e-3), seeds 0 and 1, on MultiMNIST
# from data/mnist — 180 multi-task trials plus 6 single-task ones, 5 epochs each — then
# the same file with `[search]` (TPE over those lists, BUDGET trials) and `[prune]` (ASHA
# on validation Δm%). Prints the epochs each trained, the best test Δm% each found
# (`mtl compare`'s, over the settings whose every seed finished) and the wall time.
#
#   benches/search_benchmark.sh [BUDGET] [SEED] [RULE] [GRACE]
#   (defaults: 60 trials, seed 0, rule asha, grace 1; RULE none: no [prune])
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}
seed=${2:-0}
rule=${3:-asha}
grace=${4:-1}
out=$PWD/target/search-bench
mkdir -p "$out"
# SKIP_GRID=1 keeps the grid's database of an earlier run (the grid does not change).
if [ -z "${SKIP_GRID:-}" ]; then rm -f "$out"/grid.db*; fi
rm -f "$out"/search.db*

cargo build --release -q -p mtl-cli
mtl=$PWD/target/release/mtl

python3 - "$PWD" "$out" "$budget" "$seed" "$rule" "$grace" <<'PY'
import re, sys
root, out, budget, seed, rule, grace = sys.argv[1:]
text = open(f"{root}/experiments/weighting.toml").read()
text = text.replace('path = "../data/mnist"', f'path = "{root}/data/mnist"')
text = re.sub(r"^seeds = .*$", "seeds = [0, 1]", text, flags=re.M)
text = re.sub(r"^lambda = .*$", "lambda = [0.5, 1.0, 2.0]", text, flags=re.M)
text = re.sub(r"^lr = .*$", "lr = [0.0003, 0.001, 0.003]", text, flags=re.M)
text = re.sub(r'^name = .*$', 'name = "weighting-bench"', text, count=1, flags=re.M)
open(f"{out}/grid.toml", "w").write(text)
search = text + f"""
[search]
sampler = "tpe"
budget = {budget}
startup = 10
seed = {seed}
"""
if rule != "none":
    search += f"""
[prune]
rule = "{rule}"
metric = "delta_m"
grace = {grace}
"""
open(f"{out}/search.toml", "w").write(search)
PY

TIMEFORMAT='%R'
run() {
    local name=$1
    { time "$mtl" run "$out/$name.toml" --db "$out/$name.db" --no-report > "$out/$name.log" 2>&1; } 2> "$out/$name.seconds"
}
[ -n "${SKIP_GRID:-}" ] && [ -f "$out/grid.db" ] || run grid
run search

python3 - "$out" "$mtl" <<'PY'
import json, sqlite3, subprocess, sys
out, mtl = sys.argv[1:]
rows = []
for name in ("grid", "search"):
    db = f"{out}/{name}.db"
    conn = sqlite3.connect(db)
    epochs = conn.execute("SELECT SUM(e) FROM (SELECT MAX(epoch) AS e FROM metrics GROUP BY run_id)").fetchone()[0]
    trials = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    pruned = conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'pruned'").fetchone()[0]
    groups = json.loads(subprocess.run([mtl, "compare", "--db", db, "--format", "json"], check=True,
                                       capture_output=True, text=True).stdout)
    # A setting counts as found once every seed of it finished (a group of a pruned seed is not one).
    seeds = 2
    found = [g for g in groups if g.get("delta_m") is not None and not g["baseline"] and len(g["runs"]) == seeds]
    best = max(found, key=lambda g: g["delta_m"])
    setting = " ".join(f"{k}={v}" for k, v in best["group"].items() if k != "strategy")
    seconds = float(open(f"{out}/{name}.seconds").read())
    rows.append((name, trials, pruned, epochs, best["delta_m"], setting, seconds))
grid_epochs, grid_best = rows[0][3], rows[0][4]
print(f"{'sweep':7} {'trials':>6} {'pruned':>6} {'epochs':>7} {'of grid':>8} {'best test Δm%':>14} {'gap (pp)':>9} {'wall s':>7}  best group")
for name, trials, pruned, epochs, best, setting, seconds in rows:
    print(f"{name:7} {trials:6d} {pruned:6d} {epochs:7d} {100 * epochs / grid_epochs:7.1f}% {best:+14.2f} "
          f"{grid_best - best:9.2f} {seconds:7.1f}  {setting}")
PY
