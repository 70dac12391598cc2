#!/usr/bin/env bash
# The dashboard at scale, measured in headless Chromium: the runs view of 10,000 runs
# (navigation start → table drawn), three filters (Enter → new table), a run's page
# (click → curves drawn). The database is benches/store_scale.sh's (built if missing).
#
#   benches/ui_scale.sh [REPEAT]      (also: just bench-ui)
set -euo pipefail
cd "$(dirname "$0")/.."
db=$PWD/target/store-bench.db
if [ ! -f "$db" ]; then
    cargo bench -q -p mtl-store --bench logging -- --runs 10000 --epochs 100 --db "$db"
fi
cargo bench -q -p mtl-cli --bench ui_scale -- --db "$db" --repeat "${1:-5}"
