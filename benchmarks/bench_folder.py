"""Folder throughput of `inpaint fill DIR --mask ONE_MASK`: images per second, side by side for two checkouts.

    python benchmarks/bench_folder.py --tree /path/to/old --tree . [--n 64] [--size 256] [--rounds 3]

Each round runs every tree once, alternating (old, new, old, new, ...) so the machine's load hits them
alike; each run is a fresh process running the CLI's `fill` command in-process with `--model deepfill_v2
--device cpu` on the same folder (64 crops of the example photo at 256², one shared mask). Time is the
command's wall time after the model is loaded once as a warm-up (imports and the first load excluded),
so it counts decoding, filling, encoding and writing. Prints one JSON line per run and the median
images/s per tree (per wall second and per CPU second of the process, the steadier one on a loaded
machine), and the ratios of the last tree to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "meadow.png"

# Runs inside the tree under test: load once (warm-up), then time one `inpaint fill` of the folder.
RUN = r"""
import json, sys, time
import inpaint_cli
from inpaint_cli import cli
from inpaint_cli.weights import load_model
load_model("deepfill_v2", device="cpu")
folder, mask, out = sys.argv[1:4]
start, cpu = time.perf_counter(), time.process_time()
try:
    cli.main(["fill", folder, "--mask", mask, "--out", out, "--model", "deepfill_v2", "--device", "cpu"])
except SystemExit as exit:
    assert not exit.code, exit.code
timing = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
print(json.dumps({**timing, "package": inpaint_cli.__file__}))
"""


def make_folder(folder: Path, n: int, size: int) -> Path:
    """n different crops of the example photo at size², and one mask (a centred box, ~12 % hole)."""
    photo = cv2.imread(str(EXAMPLE))
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    height, width = photo.shape[:2]
    crop = min(height, width) // 2
    for index in range(n):
        top, left = int(rng.integers(0, height - crop)), int(rng.integers(0, width - crop))
        tile = cv2.resize(photo[top : top + crop, left : left + crop], (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"photo_{index:03d}.png"), tile)
    mask = np.zeros((size, size), np.uint8)
    mask[size * 3 // 8 : size * 5 // 8, size // 4 : size * 3 // 4] = 255
    mask_path = folder.parent / "mask.png"
    cv2.imwrite(str(mask_path), mask)
    return mask_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", required=True, help="checkout to run (repeat; first = baseline)")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "photos"
        mask = make_folder(folder, args.n, args.size)
        rates: dict[str, list[float]] = {tree: [] for tree in args.tree}
        cpu_rates: dict[str, list[float]] = {tree: [] for tree in args.tree}
        for round_index in range(args.rounds):
            for tree in args.tree:
                root = Path(tree).resolve()
                env = {**os.environ, "PYTHONPATH": str(root)}
                out = Path(scratch) / f"out_{round_index}_{len(rates[tree])}_{Path(tree).name}"
                done = subprocess.run(
                    [sys.executable, "-c", RUN, str(folder), str(mask), str(out)],
                    env=env,
                    cwd=scratch,  # not a tree: `python -c` puts the cwd first on sys.path, ahead of PYTHONPATH
                    capture_output=True,
                    text=True,
                    check=True,
                )
                timing = json.loads(done.stdout.strip().splitlines()[-1])
                assert Path(timing["package"]).is_relative_to(root), f"{tree}: ran {timing['package']}"
                rates[tree].append(args.n / timing["seconds"])
                cpu_rates[tree].append(args.n / timing["cpu_seconds"])
                record = {"tree": tree, "round": round_index, "images_per_s": round(args.n / timing["seconds"], 3)}
                print(json.dumps({**record, "images_per_cpu_s": round(args.n / timing["cpu_seconds"], 3)}))
        medians = {tree: statistics.median(values) for tree, values in rates.items()}
        cpu_medians = {tree: statistics.median(values) for tree, values in cpu_rates.items()}
        first, last = args.tree[0], args.tree[-1]
        summary = {"median_images_per_s": medians, "ratio_last_to_first": medians[last] / medians[first]}
        summary["median_images_per_cpu_s"] = cpu_medians
        summary["cpu_ratio_last_to_first"] = cpu_medians[last] / cpu_medians[first]
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
