"""What border matching (`--blend harmonic`, the default) adds to a fill's time: `Inpainter.fill` of the
default checkpoint with and without it, alternating, on a photo-like image with a box and a stroke-like
hole covering about a third of it, per size; CPU seconds (process_time, steadier than the wall clock on a
shared machine) of the fill and of `match_border` alone.

    python benchmarks/bench_border_blend.py [--sizes 256,512] [--rounds 5] [--model deepfill_v1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from inpaint_cli import Inpainter, load_model
from inpaint_cli.border_blend import match_border


def case(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(size)
    image = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), size / 64)
    image = (image - image.min()) / (image.max() - image.min())
    hole = np.zeros((size, size), bool)
    hole[size // 4 : size * 5 // 8, size // 4 : size * 5 // 8] = True  # a box, 14 % of the image
    cv2.line(hole.view(np.uint8), (size // 8, size * 7 // 8), (size * 7 // 8, size // 8), 1, size // 10)
    return image, hole


def cpu_seconds(work, *args) -> float:
    start = time.process_time()
    work(*args)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="deepfill_v1")
    args = parser.parse_args()
    model = load_model(args.model)
    plain, blended = Inpainter(model, blend="none"), Inpainter(model, blend="harmonic")
    for size in (int(s) for s in args.sizes.split(",")):
        image, hole = case(size)
        plain.fill(image, hole)  # warm-up
        times: dict[str, list[float]] = {"none": [], "harmonic": [], "match_border": []}
        for _ in range(args.rounds):
            times["none"].append(cpu_seconds(plain.fill, image, hole))
            times["harmonic"].append(cpu_seconds(blended.fill, image, hole))
            times["match_border"].append(cpu_seconds(match_border, image, image, hole))
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"{size}²  hole {hole.mean():.0%}  fill {medians['none']:.3f} s  with border matching "
            f"{medians['harmonic']:.3f} s (×{medians['harmonic'] / medians['none']:.2f})  "
            f"match_border alone {medians['match_border']:.3f} s  (CPU seconds, median of {args.rounds})"
        )


if __name__ == "__main__":
    main()
