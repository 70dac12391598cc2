#!/usr/bin/env bash
# The GPU checks of issue 20, in one run of under 6 minutes on a machine with an NVIDIA
# GPU, PyTorch and no Rust: the layers' GPU-against-CPU tests, then mtl-lab beside
# PyTorch on the GPU and on the CPU at 16 threads, the CPU's thread scaling, and a
# sweep's throughput with 1 and 4 trials at once on the GPU. Figures go to
# $OUT/gpu-check.txt (or ./gpu-check.txt), and to stdout as they come.
#
#   scripts/gpu-check.sh [BIN_DIR]     BIN_DIR default target/cuda/gpu-bin
#
# BIN_DIR holds what `scripts/build-cuda.sh --tests` leaves there on the build machine:
# `mtl` (built with the cuda feature) and `gpu_ops` (the test binary), each gzipped. With
# MTL_GPU_CHECK_CPU_ONLY=1 only the CPU half runs (any machine, a CPU `mtl` in BIN_DIR).
set -uo pipefail

bin=${1:-target/cuda/gpu-bin}
# build-cuda.sh gzips what travels; unpack it beside a temporary copy.
if compgen -G "$bin/*.gz" >/dev/null; then
    unpacked=$(mktemp -d)
    for packed in "$bin"/*.gz; do
        gunzip -c "$packed" >"$unpacked/$(basename "$packed" .gz)" && chmod +x "$unpacked/$(basename "$packed" .gz)"
    done
    bin=$unpacked
fi
python=${PYTHON:-python3}
report=${OUT:-.}/gpu-check.txt
cpu_only=${MTL_GPU_CHECK_CPU_ONLY:-0}
: >"$report"
say() { echo "$*" | tee -a "$report"; }
# Runs a command with a deadline, its output into the report; a failure is recorded, not fatal.
step() {
    local limit=$1
    shift
    say "\$ $*"
    timeout "$limit" "$@" 2>&1 | tee -a "$report"
    local rc=${PIPESTATUS[0]}
    [[ $rc == 0 ]] || say "!! exit $rc"
}

say "# gpu-check $(date -u +%FT%TZ) on $(hostname), $(nproc) cores"
# The CUDA 13 libraries the binary loads (cudart, cuBLAS, cuRAND, NVRTC): the toolkit's,
# else those of PyTorch's CUDA wheels.
for dir in /usr/local/cuda/lib64 /usr/local/cuda-13.0/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $("$python" -c 'import nvidia, os; [print(os.path.join(p, d, "lib")) for p in nvidia.__path__ for d in os.listdir(p)]' 2>/dev/null); do
    if [[ -e "$dir/libcublas.so.13" || -e "$dir/libcurand.so.10" || -e "$dir/libnvrtc.so.13" || -e "$dir/libcudart.so.13" ]]; then
        export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
done
say "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
[[ $cpu_only == 1 ]] || step 10 bash -c "ldd '$bin/mtl' | grep -E 'cuda|cublas|curand|nvrtc'"
if [[ $cpu_only != 1 ]]; then
    step 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    say "## The layers on the GPU against the CPU"
    step 120 "$bin/gpu_ops" --test-threads 1 --nocapture
fi

workloads=(w1 w2 w3 w4)
bench() { # device threads workload repeats steps
    step 90 "$bin/mtl" bench --device "$1" --threads "$2" --workload "$3" --repeats "$4" --steps "$5"
    step 90 "$python" benches/torch_reference.py --device "$1" --threads "$2" --workload "$3" --repeats "$4" --steps "$5"
}
if [[ $cpu_only != 1 ]]; then
    say "## One trial on the GPU: mtl, then PyTorch eager"
    for w in "${workloads[@]}"; do bench cuda 16 "$w" 3 20; done
    for w in w5 w6; do bench cuda 16 "$w" 3 5; done
fi
threads=$(nproc)
say "## CPU, $threads threads: mtl, then PyTorch"
for w in "${workloads[@]}"; do bench cpu "$threads" "$w" 3 10; done
say "## mtl on the CPU by threads (w1-w4)"
for t in 2 4 8; do
    ((t < threads)) || continue
    for w in "${workloads[@]}"; do step 60 "$bin/mtl" bench --device cpu --threads "$t" --workload "$w" --repeats 3 --steps 5; done
done

if [[ $cpu_only != 1 ]]; then
    say "## A sweep on one GPU: 8 trials, 1 then 4 at once"
    sweep=$(mktemp -d)
    cat >"$sweep/gpu-sweep.toml" <<'TOML'
name = "gpu-sweep"
epochs = 2
seeds = [0, 1]
batch_size = 64
device = "cuda"

[[tasks]]
name = "shapes"
data = { format = "synthetic-shapes", n_train = 2048, n_val = 256, n_test = 256 }

[[tasks]]
name = "reviews"
data = { format = "synthetic-reviews", n_train = 2048, n_val = 256, n_test = 256 }

[sweep]
strategy = ["hard"]
lambda = [0.1, 0.5, 1.0, 2.0]
lr = [0.01]
TOML
    for jobs in 1 4; do
        started=$(date +%s)
        step 150 "$bin/mtl" run "$sweep/gpu-sweep.toml" --db "$sweep/jobs$jobs.db" --jobs "$jobs" --no-report
        seconds=$(($(date +%s) - started))
        done_runs=$("$bin/mtl" ls --db "$sweep/jobs$jobs.db" --where "status = 'done'" --format csv | tail -n +2 | wc -l)
        say "sweep --jobs $jobs: $done_runs trials done in $seconds s ($((done_runs * 3600 / (seconds > 0 ? seconds : 1))) trials/hour)"
    done
fi
say "# done $(date -u +%FT%TZ)"
