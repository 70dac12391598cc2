# Everyday commands. `just --list` shows them; each is a plain cargo command,
# so nothing here is needed to use mtl-lab.

# Run the quickstart: writes mtl.db and report/index.html
demo:
    cargo run --release -- run experiments/quickstart.toml

# Build the release binary (target/release/mtl)
build:
    cargo build --release

# The test suite, exactly as CI runs it (plus fmt and clippy)
test:
    cargo test --workspace

# Everything CI checks
ci:
    bash .ci/run

# List the runs of the database in the current folder
ls *ARGS:
    cargo run --release -- ls {{ARGS}}

# Training throughput of the reference workloads (samples/s, peak memory)
bench *ARGS:
    cargo run --release -- bench {{ARGS}}

# mtl-lab against PyTorch, alternating runs (needs torch: see docs/performance.md)
bench-vs-torch python="~/torch-venv/bin/python":
    cargo build --release
    python3 benches/side_by_side.py --python {{python}}

# The results database at scale: logging throughput, then ls/compare on 10,000 runs
bench-store:
    benches/store_scale.sh

# The dashboard on the 10,000-run database, timed in headless Chromium.
bench-ui:
    benches/ui_scale.sh
