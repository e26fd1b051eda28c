"""Time DeepFill v2 fills on this machine: 256² and 512², fp32 and bf16 (CPU) / fp16 (GPU).

    python benchmarks/bench_deepfill_v2.py [--sizes 256,512] [--repeats 5] [--device cpu] [--json] [--system-malloc]

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

# The reference conv and FLOP counting live in the benchmark library so `inpaint benchmark` and this
# script measure the same way.
from inpaint_cli.bench import model_flops, reference_conv_gflops, sync_device
from inpaint_cli.devices import half_dtype, pick_device, precision_name
from inpaint_cli.engine import Inpainter
from inpaint_cli.host_memory import keep_freed_memory
from inpaint_cli.masks import box_mask, brush_stroke_mask
from inpaint_cli.registry import create_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="one JSON line per measurement on stdout")
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="glibc's default allocation (freed large blocks unmapped), not `inpaint fill`'s (host_memory.py)",
    )
    args = parser.parse_args()
    kept = False if args.system_malloc else keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rng = np.random.default_rng(0)
    model = create_model("deepfill_v2")
    print(
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"freed memory {'kept' if kept else 'returned (glibc default)'}",
        file=sys.stderr,
    )
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
                sync_device(device)
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
