#!/usr/bin/env bash
# Builds mtl-lab with the `cuda` feature on a machine without a GPU or a CUDA toolkit:
# installs CUDA 13.0's compiler and headers from the Python package index into a folder
# outside the repository (no root), then runs `cargo build --release --features cuda`.
#
#   scripts/build-cuda.sh [--check] [--tests]
#
#   --check   `cargo check --features cuda` only (what CI runs; no PTX is linked)
#   --tests   also build the GPU test binaries (`cargo test --no-run --features cuda`)
#
# Environment:
#   MTL_CUDA_TOOLS    where the toolkit goes (default ~/.cache/mtl-lab/cuda-13.0)
#   CUDA_COMPUTE_CAP  the GPU's compute capability (default 90: H100, H200)
#   CARGO_TARGET_DIR  default target/cuda, so that the CPU build in target/ is kept
#
# CUDA 13.0 because the GPU machine's driver (580) supports CUDA 13.0: PTX from a newer
# nvcc is refused by an older driver. Every component is pinned: the nvcc wheel depends
# on nvidia-nvvm and nvidia-cuda-crt without a version, and their newest (13.5) emit PTX
# that 13.0's ptxas refuses. The binary needs the NVIDIA driver (libcuda) and cuBLAS and
# cuRAND at run time; see docs/gpu.md.
set -euo pipefail

check=false
tests=false
for arg in "$@"; do
    case "$arg" in
        --check) check=true ;;
        --tests) tests=true ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "build-cuda.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
tools=${MTL_CUDA_TOOLS:-$HOME/.cache/mtl-lab/cuda-13.0}
wheels=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96
)
if [[ ! -x "$tools/bin/python" ]]; then
    echo "build-cuda.sh: installing the CUDA 13.0 compiler into $tools" >&2
    python3 -m venv "$tools"
fi
# pip is quick when everything is installed already.
"$tools/bin/pip" install --quiet --disable-pip-version-check "${wheels[@]}"
cuda=$(echo "$tools"/lib/python3*/site-packages/nvidia/cu13)
if [[ ! -x "$cuda/bin/nvcc" ]]; then
    echo "build-cuda.sh: no nvcc under $cuda" >&2
    exit 1
fi

# cudarc links against libcuda, the driver's library, which a machine without the driver
# lacks: a stub that defines no symbol satisfies the linker (cudarc resolves every CUDA
# function at run time), and the real library is found at run time.
stubs="$tools/stubs"
if [[ ! -e "$stubs/libcuda.so" ]]; then
    mkdir -p "$stubs"
    echo '' | cc -shared -x c - -o "$stubs/libcuda.so.1" -Wl,-soname,libcuda.so.1
    ln -sf libcuda.so.1 "$stubs/libcuda.so"
fi

export PATH="$cuda/bin:$PATH"
export CUDA_ROOT="$cuda" CUDA_PATH="$cuda"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH="$stubs:$cuda/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/cuda}
nvcc --version | tail -1 >&2
cd "$repo"
if $check; then
    cargo check --workspace --all-targets --features mtl-cli/cuda,mtl-model/cuda,mtl-runner/cuda
    exit 0
fi
cargo build --release --features cuda -p mtl-cli
# What travels to a GPU machine (scripts/gpu-check.sh): stripped, the binary is about 14 MB.
bundle="$CARGO_TARGET_DIR/gpu-bin"
mkdir -p "$bundle"
strip -o "$bundle/mtl" "$CARGO_TARGET_DIR/release/mtl"
if $tests; then
    log=$(cargo test --release --no-run --features cuda -p mtl-model --test gpu_ops 2>&1 | tee /dev/stderr)
    test_binary=$(echo "$log" | sed -n 's/.*Executable tests\/gpu_ops.rs (\(.*\))/\1/p' | tail -1)
    strip -o "$bundle/gpu_ops" "$test_binary"
fi
echo "build-cuda.sh: $bundle: $(ls "$bundle" | tr '\n' ' ')" >&2
