"""DeepFill v2 fill time of two checkouts, side by side in one run: `Inpainter.fill` at each size, fp32.

    python benchmarks/bench_side_by_side.py --tree /path/to/old --tree . [--sizes 256,512] [--rounds 5] [--fresh]

Each checkout runs in its own worker process (PYTHONPATH = the tree), both load the same random-weight
network, and the rounds alternate old, new, old, new, ... so the machine's load (other processes on
shared cores) hits both alike. Per size it prints each tree's median wall and CPU seconds per fill and
the ratio new/old. CPU time (process_time) is the steadier figure on a loaded machine.

--fresh starts a new worker for every (round, size, tree) instead, which times three fills after its
warm-up and exits (the median of the three counts): on this project's loaded VM the persistent workers and
fresh processes disagreed (benchmarks/README.md), so both are kept.
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

# The worker: reads a size per line on stdin, answers one JSON line with the seconds of one fill.
WORKER = r"""
import json, sys, time
import numpy as np, torch
import inpaint_cli
print(json.dumps({"package": inpaint_cli.__file__}), flush=True)
from inpaint_cli.engine import Inpainter
from inpaint_cli.masks import box_mask, brush_stroke_mask
from inpaint_cli.registry import create_model
torch.manual_seed(0)
inpainter = Inpainter(create_model("deepfill_v2"), device="cpu")
cases = {}
for line in sys.stdin:
    size = int(line)
    if size not in cases:
        rng = np.random.default_rng(size)
        mask = brush_stroke_mask(size, size, rng) | box_mask(size, size, rng)[0]
        cases[size] = (rng.random((size, size, 3), dtype=np.float32), mask)
        inpainter.fill(*cases[size], strategy="full")  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    inpainter.fill(*cases[size], strategy="full")
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", required=True, help="checkout (repeat; first = baseline)")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="a new process per measurement")
    args = parser.parse_args()

    def start(tree: str) -> subprocess.Popen:
        root = Path(tree).resolve()
        # cwd outside every tree: `python -c` puts the cwd first on sys.path, ahead of PYTHONPATH.
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env={**os.environ, "PYTHONPATH": str(root)},
            cwd=tempfile.gettempdir(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        package = Path(json.loads(worker.stdout.readline())["package"])
        assert package.is_relative_to(root), f"{tree}: the worker imported {package}"
        return worker

    def ask(worker: subprocess.Popen, size: int) -> dict:
        worker.stdin.write(f"{size}\n")
        worker.stdin.flush()
        return json.loads(worker.stdout.readline())

    workers = {} if args.fresh else {tree: start(tree) for tree in args.tree}
    times: dict[tuple[str, int], list[dict]] = {}
    sizes = [int(s) for s in args.sizes.split(",")]
    for _ in range(args.rounds):
        for size in sizes:
            for tree in args.tree:
                if args.fresh:
                    worker = start(tree)
                    three = [ask(worker, size) for _ in range(3)]
                    worker.stdin.close()
                    worker.wait()
                    timing = {key: statistics.median(t[key] for t in three) for key in ("wall", "cpu")}
                else:
                    timing = ask(workers[tree], size)
                times.setdefault((tree, size), []).append(timing)
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    base = args.tree[0]
    for size in sizes:
        row = {"size": size}
        for tree in args.tree:
            for key in ("wall", "cpu"):
                row[f"{key}_s[{tree}]"] = round(statistics.median(t[key] for t in times[(tree, size)]), 3)
        for tree in args.tree[1:]:
            row[f"cpu_ratio[{tree}/{base}]"] = round(row[f"cpu_s[{tree}]"] / row[f"cpu_s[{base}]"], 3)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
