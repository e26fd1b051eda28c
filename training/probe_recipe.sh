#!/bin/sh
# The training issue's probe: DeepFill v2 (cnum 24) for 30 minutes, one CPU thread each, side by side, same
# seed and data: the paper's recipe against recon_steps + hole_weight + ema. Ctrl-C (SIGINT) after 30 minutes
# saves each run; compare them with `python training/curves.py runs/probe_paper runs/probe_small`.
#
#   sh training/probe_recipe.sh ../shared/data        (from the repository root; runs go to runs/)
set -eu
data_src=${1:?usage: probe_recipe.sh SHARED_DATA_DIR}
data=runs/data
sh "$(dirname "$0")/make_data.sh" "$data_src" "$data" > /dev/null
export OMP_NUM_THREADS=1
common="--model deepfill_v2 --data $data --val-list $data/val.txt --size 128 --short-side 256 --batch 8
        --masks mixed --lr 3e-4 --set cnum=24 --val-every 50 --save-every 50 --preview-every 200 --val-count 32
        --steps 100000 --seed 0 --no-progress"
timeout -s INT 1800 inpaint train $common --out runs/probe_paper &
timeout -s INT 1800 inpaint train $common --recipe recon_steps=400 --recipe hole_weight=6 --recipe ema=0.999 \
    --out runs/probe_small &
wait
