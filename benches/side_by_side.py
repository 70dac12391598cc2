#!/usr/bin/env python3
"""mtl-lab against PyTorch on the reference workloads, in one sitting.

Alternates `mtl bench` and benches/torch_reference.py (so that both see the
same machine state), `--rounds` times per workload, and prints each side's
median samples/s and the ratio mtl / torch.

    just bench-vs-torch                      # TORCH_PYTHON=~/torch-venv/bin/python by default
    python3 benches/side_by_side.py --mtl target/release/mtl --python ~/torch-venv/bin/python
"""

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def samples_per_second(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = re.search(r"(\w+): (\d+) samples/s", out)
    if not match:
        sys.exit(f"no figure in the output of {' '.join(command)}:\n{out}")
    print("   ", out.strip())
    return float(match.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mtl", default=str(ROOT / "target/release/mtl"))
    parser.add_argument("--python", default=sys.executable, help="a Python that has torch")
    parser.add_argument("--workloads", default="w1,w2,w3,w4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="both sides [default: the number of cores]")
    args = parser.parse_args()
    threads = ["--threads", str(args.threads)] if args.threads else []
    rows = []
    for workload in args.workloads.split(","):
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(samples_per_second([args.mtl, "bench", "--workload", workload, *threads]))
            torch = [args.python, str(ROOT / "benches/torch_reference.py"), "--workload", workload, *threads]
            theirs.append(samples_per_second(torch))
        mtl_median, torch_median = statistics.median(ours), statistics.median(theirs)
        rows.append((workload, mtl_median, torch_median, mtl_median / torch_median))
    print(f"\n{'workload':8}  {'mtl samples/s':>13}  {'torch samples/s':>15}  {'mtl/torch':>9}")
    for workload, ours, theirs, ratio in rows:
        print(f"{workload:8}  {ours:13.0f}  {theirs:15.0f}  {ratio:8.2f}×")


if __name__ == "__main__":
    main()
