#!/usr/bin/env bash
# The results database at scale: logs 10,000 runs × 100 epochs × 16 metrics through
# mtl-store's API as a sweep does (the logging throughput), then times `mtl ls --where`
# and `mtl compare` and `mtl report` on that database (3 runs each) and prints its size.
#
#   benches/store_scale.sh [RUNS] [EPOCHS]      (also: just bench-store)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000}
epochs=${2:-100}
db=$PWD/target/store-bench.db

cargo build --release -q -p mtl-cli
cargo bench -q -p mtl-store --bench logging -- --runs "$runs" --epochs "$epochs" --db "$db"

TIMEFORMAT='%R s'
time_it() {
    local label=$1; shift
    for _ in 1 2 3; do
        printf '%-58s ' "$label"
        { time "$@" > /dev/null; } 2>&1
    done
}
time_it "mtl ls --where \"strategy = 'hard' and (lambda >= 0.5 or …)\"" \
    target/release/mtl ls --db "$db" --where "strategy = 'hard' and (lambda >= 0.5 or right.test.accuracy > 0.85)"
time_it "mtl compare (strategy, weighting, lambda; Δm%, Pareto)" target/release/mtl compare --db "$db"
time_it "mtl compare --where \"lr = 0.001\" --group-by strategy" \
    target/release/mtl compare --db "$db" --where "lr = 0.001" --group-by strategy
time_it "mtl report (every chart, index.html, runs CSV)" \
    target/release/mtl report --db "$db" --out "$PWD/target/store-bench-report"
ls -l "$db" | awk '{printf "database size: %.0f MiB\n", $5 / 1048576}'
