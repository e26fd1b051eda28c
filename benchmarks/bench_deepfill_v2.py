"""Time DeepFill v2 fills on this machine: 256² and 512², fp32 and bf16 (CPU) / fp16 (GPU).

    python benchmarks/bench_deepfill_v2.py [--sizes 256,512] [--repeats 5] [--device cpu] [--json]

Per size and precision it prints the median and p90 latency of `Inpainter.fill` (the same path as
`inpaint fill`, including padding, transfer and compositing), the model's FLOPs per image counted by
torch's FlopCounterMode, the achieved GFLOP/s, and a reference 3×3 conv measured in the same run, so
the figures read as a fraction of what this machine can do. Weights do not change the timing, so the
network is built with random weights.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from inpaint_cli.engine import Inpainter, half_dtype, pick_device, precision_name
from inpaint_cli.masks import box_mask, brush_stroke_mask
from inpaint_cli.registry import create_model


def reference_conv_gflops(device: str, dtype: torch.dtype, seconds: float = 1.5) -> float:
    """GFLOP/s of a large 3×3 conv (96→96 channels at 128², channels-last, no autograd): the rate a
    well-shaped conv reaches here, to compare the model against."""
    conv = torch.nn.Conv2d(96, 96, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    x = torch.randn(4, 96, 128, 128, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * 4 * 96 * 96 * 9 * 128 * 128
    with torch.inference_mode():
        for _ in range(3):
            conv(x)
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            conv(x)
            runs += 1
        _sync(device)
    return flops * runs / (time.perf_counter() - start) / 1e9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def model_flops(model: torch.nn.Module, size: int, device: str, dtype: torch.dtype) -> int:
    image = torch.rand(1, 3, size, size, device=device, dtype=dtype)
    mask = torch.zeros(1, 1, size, size, device=device, dtype=dtype)
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.inpaint(image, mask)
    return counter.get_total_flops()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="one JSON line per measurement on stdout")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rng = np.random.default_rng(0)
    model = create_model("deepfill_v2")
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}", file=sys.stderr)
    for half in (False, True):
        inpainter = Inpainter(model, device=device, half=half)
        dtype = half_dtype(device) if half else torch.float32
        reference = reference_conv_gflops(device, dtype)
        for size in (int(s) for s in args.sizes.split(",")):
            rgb = rng.random((size, size, 3), dtype=np.float32)
            mask = brush_stroke_mask(size, size, rng) | box_mask(size, size, rng)[0]
            inpainter.fill(rgb, mask, strategy="full")  # warm-up: allocator, oneDNN kernel selection
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                inpainter.fill(rgb, mask, strategy="full")
                _sync(device)
                times.append(time.perf_counter() - start)
            flops = model_flops(inpainter.model, size, device, dtype)
            median = statistics.median(times)
            p90 = sorted(times)[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
            record = {
                "model": "deepfill_v2",
                "size": size,
                "precision": precision_name(dtype),
                "device": device,
                "median_s": round(median, 4),
                "p90_s": round(p90, 4),
                "gflop_per_image": round(flops / 1e9, 2),
                "achieved_gflops": round(flops / median / 1e9, 1),
                "reference_conv_gflops": round(reference, 1),
                "flop_bound_s": round(flops / (reference * 1e9), 4),
                "vs_flop_bound": round(median / (flops / (reference * 1e9)), 2),
            }
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                print(
                    f"{size:>5}² {record['precision']}: median {median * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms  "
                    f"{record['gflop_per_image']:7.1f} GFLOP  {record['achieved_gflops']:6.1f} GFLOP/s  "
                    f"(reference conv {record['reference_conv_gflops']:.0f} GFLOP/s, "
                    f"{record['vs_flop_bound']:.2f}x the FLOP-bound time)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
