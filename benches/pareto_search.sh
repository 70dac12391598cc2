#!/usr/bin/env bash
# Multi-objective search against the full grid: the weighting sweep of
# benches/search_benchmark.sh (28 methods × λ × lr, 2 seeds, MultiMNIST from data/mnist),
# then the same file with `[search] objective = "tasks"` (left and right accuracy on
# validation) by SAMPLER (nsga2 or random) under BUDGET trials. Prints, per sweep, the
# trials and epochs trained and the hypervolume of the seed-group means' test accuracies
# (the area they dominate; higher is better) above (0, 0) and above the nadir of the
# grid's front (the worst left and worst right accuracy on it), each with its share of
# the grid's.
#
#   benches/pareto_search.sh [BUDGET] [SAMPLER] [SEED]   (defaults: 60 trials, nsga2, seed 0)
#   SKIP_GRID=1 reuses target/search-bench/grid.db from an earlier run of either script.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}
sampler=${2:-nsga2}
seed=${3:-0}
out=$PWD/target/search-bench
mkdir -p "$out"
if [ -z "${SKIP_GRID:-}" ] || [ ! -f "$out/grid.db" ]; then
    # The grid of search_benchmark.sh (its own search part reduced to one point, unpruned).
    SKIP_GRID= benches/search_benchmark.sh 2 0 none > /dev/null
fi
cargo build --release -q -p mtl-cli
mtl=$PWD/target/release/mtl
name="pareto-$sampler-$budget-$seed"
rm -f "$out/$name".db*
population=$([ "$sampler" = nsga2 ] && echo "population = 10" || true)
sed '/^\[search\]/,$d' "$out/grid.toml" > "$out/$name.toml"
cat >> "$out/$name.toml" <<TOML
[search]
sampler = "$sampler"
budget = $budget
objective = "tasks"
seed = $seed
$population
TOML
TIMEFORMAT='%R'
{ time "$mtl" run "$out/$name.toml" --db "$out/$name.db" --no-report > "$out/$name.log" 2>&1; } 2> "$out/$name.seconds"

python3 - "$out" "$mtl" "$name" <<'PY'
import json, sqlite3, subprocess, sys
out, mtl, name = sys.argv[1:]

def volume(points, ref):
    # 2-D hypervolume above `ref` of maximised points: a sweep down the first coordinate.
    total, best_y = 0.0, ref[1]
    for x, y in sorted(points, reverse=True):
        if x > ref[0] and y > best_y:
            total += (x - ref[0]) * (y - best_y)
            best_y = y
    return total

def means(db):
    groups = json.loads(subprocess.run([mtl, "compare", "--db", db, "--format", "json"], check=True,
                                       capture_output=True, text=True).stdout)
    return [(g["metrics"]["left.test.accuracy"]["mean"], g["metrics"]["right.test.accuracy"]["mean"])
            for g in groups if not g["baseline"]]

grid = means(f"{out}/grid.db")
front = [p for p in grid if not any(q != p and q[0] >= p[0] and q[1] >= p[1] for q in grid)]
nadir = (min(p[0] for p in front), min(p[1] for p in front))
rows = []
for sweep in ("grid", name):
    db = f"{out}/{sweep}.db"
    conn = sqlite3.connect(db)
    epochs = conn.execute("SELECT SUM(e) FROM (SELECT MAX(epoch) AS e FROM metrics GROUP BY run_id)").fetchone()[0]
    trials = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    points = means(db)
    seconds = float(open(f"{out}/{sweep}.seconds").read())
    rows.append((sweep, trials, epochs, volume(points, (0.0, 0.0)), volume(points, nadir), seconds))
_, _, grid_epochs, grid_zero, grid_nadir, _ = rows[0]
print(f"grid front's nadir (left, right test accuracy): ({nadir[0]:.4f}, {nadir[1]:.4f})")
print(f"{'sweep':24} {'trials':>6} {'epochs':>7} {'of grid':>8} {'HV above 0':>11} {'of grid':>8} "
      f"{'HV above nadir':>15} {'of grid':>8} {'wall s':>7}")
for sweep, trials, epochs, zero, above, seconds in rows:
    print(f"{sweep:24} {trials:6d} {epochs:7d} {100 * epochs / grid_epochs:7.1f}% {zero:11.5f} "
          f"{100 * zero / grid_zero:7.2f}% {above:15.6f} {100 * above / grid_nadir:7.1f}% {seconds:7.1f}")
PY
