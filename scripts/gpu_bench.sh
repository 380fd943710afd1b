#!/usr/bin/env bash
# The real-GPU measurement, one script: every kernel checked on the GPU
# (both tiling variants), `octconv bench`, the seed recipe's 3 epochs timed
# (training only; target ≤ 3 s on an H200-class GPU), and PyTorch CUDA's
# step time on the same GPU when a CUDA build of torch is installed.
#
#   scripts/gpu_bench.sh [MNIST-DIR]          # default ../shared/data/mnist, else data/mnist
#
# OCTCONV_BIN names a built binary (a machine without cargo or the
# registry); otherwise it is built here. Everything goes to runs/gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${1:-../shared/data/mnist}"
[ -d "$data" ] || data=data/mnist
out=runs/gpu
mkdir -p "$out"

if [ -n "${OCTCONV_BIN:-}" ]; then
    bin="$OCTCONV_BIN"
else
    cargo build --release --quiet
    bin=target/release/octconv
fi
export OCTCONV_REQUIRE_GPU=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/octconv-xdg}"
mkdir -p "$XDG_RUNTIME_DIR"

{
    echo "== $(date -u +%FT%TZ) $(uname -m)"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$bin" info | tail -n 2
    echo
    echo "== octconv check (every kernel vs its CPU twin, both tiling variants)"
    "$bin" check | tail -n 1
    echo
    echo "== octconv bench"
    "$bin" bench --device gpu --repeats 5 --json "$out/bench.json" --data "$data" | grep -v '^\(conv\|relu\|avg\|max\|upsample\|add\|accumulate\|adam\|channel\|cross\|batch\|gather\)'
    echo
    echo "== the seed recipe, 3 epochs (the per-epoch times are training only)"
    "$bin" train --device gpu --offline --data "$data" --out "$out/mnist.safetensors"
    echo
    if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null; then
        echo "== PyTorch CUDA on the same GPU"
        python3 scripts/pytorch_bench.py --device cuda --octconv-bin "$bin" --data "$data"
    else
        echo "== PyTorch CUDA: not measured (no CUDA build of torch here)"
    fi
} 2>&1 | tee "$out/report.txt"
