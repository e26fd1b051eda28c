"""Where DeepFill v2's time goes: torch.profiler over a few fills, grouped by operator.

    python benchmarks/profile_deepfill_v2.py [--size 512] [--runs 3] [--half]

Prints the operators with the most self CPU time (convolutions, the attention matmuls, element-wise
work, copies) and their share of the total, averaged over `runs` fills after a warm-up.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from inpaint_cli.engine import Inpainter
from inpaint_cli.masks import mixed_mask
from inpaint_cli.registry import create_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rgb = rng.random((args.size, args.size, 3), dtype=np.float32)
    mask = mixed_mask(args.size, args.size, rng)
    inpainter = Inpainter(create_model("deepfill_v2"), device="cpu", half=args.half)
    inpainter.fill(rgb, mask, strategy="full")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.runs):
            inpainter.fill(rgb, mask, strategy="full")
    events = prof.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    print(f"DeepFill v2 {args.size}² {inpainter.precision}: {total / args.runs / 1e6:.3f} s self CPU time per fill")
    for event in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]:
        share = event.self_cpu_time_total / total
        per_fill = event.self_cpu_time_total / args.runs / 1e3
        print(f"{share:6.1%}  {per_fill:8.1f} ms  {event.count // args.runs:5d} calls  {event.key}")
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    raise SystemExit(main())
