"""The CUDA path end to end on one GPU, in under five minutes; writes one JSON file.

    benchmarks/gpu_check.sh [--out gpu_check.json]            # on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --dry          # the same checks, small, on a CPU

1. Every bundled model fills the example photo at 256² in fp32 and with `--half` (fp16 on a GPU, bf16 on
   a CPU), through `Inpainter` as `inpaint fill` does (channels-last weights and inputs): known pixels
   must be bit-exact, outputs finite; reports the strategy, windows, precision and the hole PSNR of the
   half-precision fill against the fp32 one.
2. The NaN fallback: a model that returns NaN in half precision must come back fp32 and finite.
3. Speed: median seconds per fill (after a warm-up, device synchronised) of every bundled model at 256²,
   512² and 1024², both precisions, strategy auto (what users get), and peak device memory per case.

Exit status 1 when a check failed (the JSON says which); the speed table never fails the run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from inpaint_cli.bench import sync_device
from inpaint_cli.catalog_view import model_rows
from inpaint_cli.devices import pick_device
from inpaint_cli.engine import Inpainter
from inpaint_cli.io import read_image
from inpaint_cli.masks import read_mask
from inpaint_cli.metrics import psnr
from inpaint_cli.models.base import InpaintModel
from inpaint_cli.registry import InputContract
from inpaint_cli.weights import load_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class _NanInHalf(InpaintModel):
    """0.5 everywhere in fp32, NaN in any lower precision: exercises the engine's fp32 retry."""

    contract = InputContract(pad_multiple=8, trainable=False, needs_weights=False)

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def inpaint(self, image, mask, *, generator=None):
        value = 0.5 if image.dtype == torch.float32 else float("nan")
        return torch.full_like(image, value) * self.scale


def example(size: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = cv2.resize(read_image(EXAMPLES / "meadow.png").rgb(), (size, size), interpolation=cv2.INTER_AREA)
    mask = read_mask(EXAMPLES / "meadow_mask.png").astype(np.uint8)
    return rgb, cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST) > 0


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.startswith("cuda") else None


def check_model(name: str, device: str, size: int) -> dict:
    rgb, mask = example(size)
    fills = {}
    record: dict = {"model": name, "size": size}
    for half in (False, True):
        inpainter = Inpainter(load_model(name, device=device), device=device, half=half)
        result = inpainter.fill(rgb, mask, seed=0)
        key = "half" if half else "fp32"
        weight = next((p for p in inpainter.model.parameters() if p.dim() == 4), None)
        record[key] = {
            "precision": result.precision,
            "strategy": result.strategy,
            "windows": result.windows,
            "known_bit_exact": bool(np.array_equal(result.rgb[~mask], rgb[~mask])),
            "finite": bool(np.isfinite(result.rgb).all()),
            "channels_last": None if weight is None else weight.is_contiguous(memory_format=torch.channels_last),
        }
        fills[key] = result.rgb
    record["half_vs_fp32_hole_psnr_db"] = round(psnr(fills["half"], fills["fp32"], mask), 2)
    record["ok"] = all(record[k]["known_bit_exact"] and record[k]["finite"] for k in ("fp32", "half"))
    return record


def check_fallback(device: str) -> dict:
    rgb, mask = example(64)
    result = Inpainter(_NanInHalf(), device=device, half=True, blend="none").fill(rgb, mask)
    ok = result.precision == "fp32" and bool(np.isfinite(result.rgb).all()) and np.all(result.rgb[mask] == 0.5)
    return {"precision": result.precision, "ok": bool(ok)}


def time_model(name: str, device: str, size: int, half: bool, repeats: int) -> dict:
    rgb, mask = example(size)
    inpainter = Inpainter(load_model(name, device=device), device=device, half=half)
    inpainter.fill(rgb, mask, seed=0)  # warm-up: kernel selection, allocator
    sync_device(device)
    reset_peak(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = inpainter.fill(rgb, mask, seed=0)
        sync_device(device)
        times.append(time.perf_counter() - start)
    peak = peak_mb(device)
    return {
        "model": name,
        "size": size,
        "precision": result.precision,
        "strategy": result.strategy,
        "median_s": round(statistics.median(times), 5),
        "peak_memory_mb": None if peak is None else round(peak, 1),
    }


def machine(device: str) -> dict:
    info = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dry", action="store_true", help="small sizes and one repeat (a CPU smoke test)")
    args = parser.parse_args()
    device = pick_device(args.device)
    sizes = [64, 128] if args.dry else [int(s) for s in args.sizes.split(",")]
    repeats = 1 if args.dry else args.repeats
    start = time.perf_counter()
    models = [row["name"] for row in model_rows() if row["status"] == "bundled"]
    report: dict = {"machine": machine(device), "models": [], "fallback": None, "speed": [], "errors": []}
    for name in models:
        try:
            report["models"].append(check_model(name, device, 64 if args.dry else 256))
        except Exception as error:  # a crash is a failed check, reported with the others
            report["errors"].append(f"{name}: {type(error).__name__}: {error}")
    report["fallback"] = check_fallback(device)
    for name in models:
        for size in sizes:
            for half in (False, True):
                try:
                    report["speed"].append(time_model(name, device, size, half, repeats))
                except Exception as error:
                    report["speed"].append({"model": name, "size": size, "half": half, "error": str(error)})
    report["ok"] = not report["errors"] and report["fallback"]["ok"] and all(model["ok"] for model in report["models"])
    report["seconds"] = round(time.perf_counter() - start, 1)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(args.out)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    raise SystemExit(main())
