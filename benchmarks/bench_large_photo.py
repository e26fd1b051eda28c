"""A 4000×3000 photo with a hole of about 5 % of it, filled by DeepFill v2 with the crop strategy.

    python benchmarks/bench_large_photo.py [--model deepfill_v2] [--repeats 3] [--system-malloc]

Reports wall time per fill (median after a warm-up, reading and writing excluded: the same
`Inpainter.fill` call `inpaint fill` makes) and the process's peak resident memory (VmHWM, reset after
the model is loaded and the image is in memory, so it counts what the fill itself needs). The photo is
an example image scaled up to 4000×3000; weights do not change the timing, so without a checkpoint the
network is built with random weights.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from inpaint_cli.engine import Inpainter
from inpaint_cli.host_memory import keep_freed_memory
from inpaint_cli.io import read_image
from inpaint_cli.masks import brush_stroke_mask
from inpaint_cli.registry import create_model
from inpaint_cli.weights import load_model

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "meadow.png"


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)


def large_hole(height: int, width: int, target: float, rng: np.random.Generator) -> np.ndarray:
    """Two separate regions (a box and a brush stroke) summing to about `target` of the image."""
    mask = np.zeros((height, width), bool)
    side = int((target / 2 * height * width) ** 0.5)
    mask[600 : 600 + side, 800 : 800 + side] = True
    stroke = brush_stroke_mask(1000, 1000, rng)
    while stroke.mean() < target / 2 * height * width / 1e6:
        stroke |= brush_stroke_mask(1000, 1000, rng)
    mask[1800:2800, 2600:3600] |= stroke
    return mask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="deepfill_v2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strategy", default="crop")
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="glibc's default allocation (freed large blocks unmapped), not `inpaint fill`'s (host_memory.py)",
    )
    args = parser.parse_args()
    if not args.system_malloc:
        keep_freed_memory()
    try:
        model = load_model(args.model)
    except Exception as error:  # no checkpoint: time the architecture with random weights
        print(f"{args.model}: {error}; timing random weights", file=sys.stderr)
        model = create_model(args.model)
    # The 8-bit RGB planes, as `inpaint fill` hands a colour photo to the engine (filled in uint8; only the
    # windows around the holes are converted to float32).
    image = cv2.resize(read_image(EXAMPLE).pixels[:, :, :3], (4000, 3000), interpolation=cv2.INTER_CUBIC)
    mask = large_hole(3000, 4000, 0.05, np.random.default_rng(0))
    inpainter = Inpainter(model, device="cpu")
    inpainter.fill(image, mask, strategy=args.strategy)  # warm-up
    loaded = rss_mb("VmRSS")
    reset_peak_rss()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = inpainter.fill(image, mask, strategy=args.strategy)
        times.append(time.perf_counter() - start)
    record = {
        "model": args.model, "size": "4000x3000", "hole_fraction": round(float(mask.mean()), 4),
        "strategy": result.strategy, "windows": result.windows, "median_s": round(statistics.median(times), 3),
        "rss_before_mb": round(loaded), "peak_rss_mb": round(rss_mb("VmHWM")),
    }  # fmt: skip
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
