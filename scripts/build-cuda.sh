#!/usr/bin/env bash
# Builds mtl-lab with the `cuda` feature on a machine without a GPU or a CUDA toolkit:
# installs CUDA 13.0's compiler and headers from the Python package index into a folder
# outside the repository (no root), then runs `cargo build --release --features cuda`.
#
#   scripts/build-cuda.sh [--check] [--tests]
#
# Leaves target/cuda/release/mtl, and in target/cuda/gpu-bin/ what a GPU machine needs
# (mtl.gz and, with --tests, gpu_ops.gz: stripped and gzipped, under the 64 MiB carried).
#
#   --check   `cargo clippy --features cuda` only, every target (what CI runs; nothing is linked)
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
# that 13.0's ptxas refuses. The binary needs the NVIDIA driver (libcuda) and CUDA 13's
# cudart, cuBLAS, cuRAND and NVRTC at run time; see docs/gpu.md.
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

# cudarc (candle's CUDA bindings) links against the driver's libcuda and the toolkit's
# cuBLAS, cuBLASLt, cuRAND and NVRTC. A machine without the driver has no libcuda, and
# those libraries come as wheels of 600 MB. So the build links against stubs: a library
# of each name and soname that defines every function cudarc declares for it (generated
# from its bindings); at run time the real libraries are loaded by the same sonames
# (see docs/gpu.md).
cd "$repo"
cargo fetch --quiet
cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/ | tail -1)
stubs="$tools/stubs-$(basename "$cudarc")"
if [[ ! -e "$stubs/done" ]]; then
    mkdir -p "$stubs"
    # cudart is the wheel's own (small): candle's MoE kernels call its internals too.
    ln -sf "$cuda/lib/libcudart.so.13" "$stubs/libcudart.so"
    # Each stub function fails: the driver's with CUDA_ERROR_NO_DEVICE (100), so that the
    # binary run on this machine says "no CUDA-capable device" rather than misbehave.
    for entry in driver:cuda:1:100 cublas:cublas:13:1 cublaslt:cublasLt:13:1 curand:curand:10:1 nvrtc:nvrtc:13:1; do
        IFS=: read -r module name major code <<<"$entry"
        "$tools/bin/python" - "$cudarc/src/$module/sys/mod.rs" "$code" >"$stubs/$name.c" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
names = sorted(set(re.findall(r'extern "C" \{\s*(?:pub )?fn ([A-Za-z0-9_]+)\(', text)))
print("\n".join(f"int {name}(void) {{ return {sys.argv[2]}; }}" for name in names))
PY
        cc -shared -fPIC -o "$stubs/lib$name.so.$major" -Wl,-soname,"lib$name.so.$major" "$stubs/$name.c"
        ln -sf "lib$name.so.$major" "$stubs/lib$name.so"
    done
    touch "$stubs/done"
fi

export PATH="$cuda/bin:$PATH"
export CUDA_ROOT="$cuda" CUDA_PATH="$cuda"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH="$stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/cuda}
nvcc --version | tail -1 >&2
if $check; then
    cargo clippy --workspace --all-targets --features mtl-cli/cuda,mtl-model/cuda,mtl-runner/cuda -- -D warnings
    exit 0
fi
cargo build --release --features cuda -p mtl-cli
# What travels to a GPU machine (scripts/gpu-check.sh), stripped and gzipped: the binary
# holds candle's compiled kernels (about 73 MB stripped, 20 MB gzipped).
bundle="$CARGO_TARGET_DIR/gpu-bin"
mkdir -p "$bundle"
pack() { strip -o "$bundle/$2" "$1" && gzip -f "$bundle/$2"; }
pack "$CARGO_TARGET_DIR/release/mtl" mtl
if $tests; then
    log=$(cargo test --release --no-run --features cuda -p mtl-model --test gpu_ops 2>&1 | tee /dev/stderr)
    test_binary=$(echo "$log" | sed -n 's/.*Executable tests\/gpu_ops.rs (\(.*\))/\1/p' | tail -1)
    pack "$test_binary" gpu_ops
fi
echo "build-cuda.sh: $bundle: $(ls "$bundle" | tr '\n' ' ')" >&2
