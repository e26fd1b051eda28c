#!/usr/bin/env bash
# The CUDA path on one GPU in under five minutes (see gpu_check.py): every bundled model in fp32 and fp16
# (known pixels bit-exact, finite, fp16-vs-fp32 hole PSNR), the NaN fallback, the speed table at 256²,
# 512², 1024² in both precisions and peak GPU memory. Writes one JSON file (default gpu_check.json).
#
#     benchmarks/gpu_check.sh [--out FILE] [--device cuda:N]
#     benchmarks/gpu_check.sh --device cpu --dry        # smoke test without a GPU
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 300 python benchmarks/gpu_check.py "$@"
