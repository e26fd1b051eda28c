#!/bin/sh
# The width choice of the bundled DeepFill v2: DeepFill v2 at cnum 48, 32 and 24 for the same wall time (25 minutes), side by
# side, one CPU thread each, with its first-phase recipe (reconstruction only, hole-weighted L1,
# EMA). Compare with `python training/curves.py runs/width_48 runs/width_32 runs/width_24`; the winner's run
# continues with --resume.
#
#   sh training/width_probe.sh ../shared/data        (from the repository root; runs go to runs/)
set -eu
data_src=${1:?usage: width_probe.sh SHARED_DATA_DIR}
data=runs/data
sh "$(dirname "$0")/make_data.sh" "$data_src" "$data" > /dev/null
export OMP_NUM_THREADS=1
common="--model deepfill_v2 --data $data --val-list $data/val.txt --size 128 --short-side 256 --batch 8
        --masks mixed --lr 3e-4 --val-every 100 --save-every 100 --preview-every 500 --val-count 32
        --steps 1000000 --seed 0 --workers 1 --no-progress
        --recipe recon_steps=1000000 --recipe hole_weight=6 --recipe ema=0.999"
for cnum in 48 32 24; do
    timeout -s INT 1500 inpaint train $common --set cnum=$cnum --out runs/width_$cnum > runs/width_$cnum.log 2>&1 &
done
wait
