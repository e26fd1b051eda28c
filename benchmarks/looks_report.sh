#!/bin/sh
# The looks report (issue 23): every shipped checkpoint beside telea and patchmatch on the held-out test
# images at 256² (strokes and boxes, 5-60 % holes), filled as `inpaint fill` fills them (border matching on,
# the default), with its contact sheet; then the learned checkpoints once more with `--blend none`, so the
# checkpoints' own share of the change is visible; the coloured-flat check; PiiGAN's plural sheet.
#
#     sh benchmarks/looks_report.sh runs/data benchmarks/after_adversarial
#
# DATA is a folder made by training/make_data.sh (its test.txt is scored); OUT a path prefix for the reports.
# Needs the patchmatch extra (pip install 'inpaint-cli[patchmatch]'). About 30 min on 2 cores.
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
inpaint benchmark --models "$learned" $common --blend none \
    --json "${out}_no_blend.json" --markdown "${out}_no_blend.md"
# PiiGAN's samples: a 40 % box in the first test image, 8 seeds, one sheet.
first=$(head -n 1 "$data/test.txt")
inpaint plural "$data/$first" --box 64,48,128,160 --model piigan --n 8 --seed 0 --grid "${out}_plural.jpg" --overwrite
