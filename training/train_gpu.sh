#!/bin/sh
# The runs behind the bundled checkpoints, on one CUDA GPU (training/train_gpu.py): all five models at paper
# width, 256² crops (the Context Encoder: 128²), batch 16, bf16 autocast, the CPU runs' recipes, each bounded
# by --steps from its measured rate and by `timeout` to under 10 minutes; fp16 exports and runs/gpu/summary.json.
#
# NOT RUN ON A GPU YET: written and dry-run tested on a CPU-only machine; the step budgets rest on a probe
# of each run's first 100 steps, the printed plan (--dry-run) on guessed rates.
#
#   sh training/make_data.sh ../shared/data runs/data      # once, where ../shared/data exists
#   cp -rL runs/data DEST/data                              # make_data.sh links the sets: copy with -L
#   sh training/train_gpu.sh runs/data [--out runs/gpu] [--only deepfill_v2,glcic] [--budget 540] [--dry-run]
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's inpaint_cli, whatever is installed
exec python "$repo/training/train_gpu.py" "$@"
