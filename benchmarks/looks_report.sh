#!/bin/sh
# The looks report (issue 23): every shipped checkpoint beside telea and patchmatch on the held-out test
# images at 256² (strokes and boxes, 5-60 % holes), filled as `inpaint fill` fills them (border matching on,
# the default), with its contact sheet, and PiiGAN's plural sheet on a 30 % box. (The networks' own fills:
# add --blend none; benchmarks/before_adversarial.md is that report for the same checkpoints.)
#
#     sh benchmarks/looks_report.sh runs/data benchmarks/after_adversarial
#
# DATA is a folder made by training/make_data.sh (its test.txt is scored); OUT a path prefix for the reports.
# Needs the patchmatch extra (pip install 'inpaint-cli[patchmatch]'). About 25 min on one core.
set -eu
data=${1:?usage: looks_report.sh DATA OUT_PREFIX}
out=${2:?usage: looks_report.sh DATA OUT_PREFIX}
learned=$(inpaint models list --json | python -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin]
print(",".join(r["name"] for r in rows if r["status"] == "bundled"))')
common="--data $data --buckets 5-15,15-30,30-45,45-60 --kinds strokes,box --size 256 --seed 0 --no-speed"
inpaint benchmark --models "telea,patchmatch,$learned" $common \
    --json "$out.json" --markdown "$out.md" --grid "${out}_grid.jpg"
# PiiGAN's samples: a 30 % box in the first test photograph (640×480), 8 seeds, one sheet; the samples go
# to a folder beside the report, not into the data.
first=$(head -n 1 "$data/test.txt")
inpaint plural "$data/$first" --box 160,96,320,288 --model piigan --n 8 --seed 0 \
    --out-dir "${out}_plural_samples" --grid "${out}_plural.jpg" --overwrite
