"""The speed part of a benchmark run: latency, throughput, memory and FLOPs per model, size and precision.

Protocol
    Per model, size and precision (fp32, plus bf16 on CPU / fp16 on GPU with `half` for models that have
    parameters), in a fresh Python subprocess (`isolate`, the default): load the model, build a synthetic
    8-bit noise image of size×size and DeepFill-style mixed masks with 15-30 % hole, run `warmup` fills,
    then time `repeats` fills with strategy "full" (so the whole size×size image goes through the network)
    → median and p90 latency. Throughput: one warm-up `fill_batch` call of `batch` images, then
    ceil(repeats / batch) timed calls (about as many images as the latency runs) → images/s.
    Fixed-size models (Context Encoder, 128²) are measured at their own size only: they only ever see
    windows of it. FLOPs: torch's FlopCounterMode around one whole `Inpainter.fill` (n/a for models
    without torch ops, e.g. the OpenCV fills). Reference: a well-shaped 3×3 conv timed in the same run,
    same precision and threads; `fraction_of_reference` = achieved GFLOP/s ÷ reference GFLOP/s.
    Memory: see `machine.py`.

The parent process plans the cases (`speed_specs`) and turns results into rows; `measure_speed` is what
runs in the worker (`run_isolated` starts it, `worker_main` is its entry point).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InpaintError
from ..masks import bucket_masks
from .cases import quantize
from .config import BenchmarkConfig
from .machine import MemoryProbe, sync_device, torch_threads
from .results import BenchmarkReport, SpeedRow, failure_message

if TYPE_CHECKING:
    import torch

    from ..engine import FillResult, Inpainter
    from ..registry import InputContract
    from .progress import ProgressCallback

SPEED_MASK_BUCKET = (0.15, 0.30)


# ------------------------------------------------------------------------------------- parent process


def run_speed(
    config: BenchmarkConfig,
    device: str,
    report: BenchmarkReport,
    broken: set[str],
    progress: ProgressCallback | None,
) -> None:
    """Time every model of `config` not in `broken` into `report`; a model or case that fails is recorded
    and the others still run."""
    references: dict[str, float] = {}  # precision -> reference conv GFLOP/s, timed once per precision
    for name in config.models:
        if name in broken:
            continue
        task = f"speed {name}"
        try:
            contract, has_parameters = _model_traits(name)
        except Exception as error:
            report.add_failure(name, "speed", error)
            continue
        specs = speed_specs(name, contract, has_parameters, config, device)
        notes = _model_notes(contract, has_parameters, config)
        if progress:
            progress(task, 0, len(specs))
        for done, spec in enumerate(specs, start=1):
            try:
                result = run_isolated(spec) if config.isolate else measure_speed(spec)
            except Exception as error:
                report.add_failure(name, "speed", InpaintError(f"{spec['size']}px: {failure_message(error)}"))
                continue
            finally:
                if progress:
                    progress(task, done, len(specs))
            reference = _reference_rate(result["precision"], references, config, device) if result["flops"] else None
            report.speed.append(_speed_row(name, spec, result, reference, _case_note(notes, spec, device)))
    report.environment["reference_conv_gflops"] = references


def _model_traits(name: str) -> tuple[InputContract, bool]:
    """The model's input contract and whether it has parameters (loaded here, then dropped: the cases
    load it again in their own process)."""
    from ..weights import load_model

    model = load_model(name)
    return model.contract, any(True for _ in model.parameters())


def speed_specs(
    name: str, contract: InputContract, has_parameters: bool, config: BenchmarkConfig, device: str
) -> list[dict[str, Any]]:
    """The speed cases of one model, as the JSON-able specs `measure_speed` takes: each size (a fixed-size
    model's own only) × fp32, and the half precision with `config.half` when the model has parameters."""
    sizes = [contract.fixed_size] if contract.fixed_size else list(config.speed_sizes)
    halves = [False, True] if config.half and has_parameters else [False]
    return [
        {
            "model": name,
            "size": size,
            "half": half,
            "blend": config.blend,
            "device": device,
            "repeats": config.repeats,
            "warmup": config.warmup,
            "batch": config.batch,
            "seed": config.seed,
            "threads": config.threads,
            "measure_memory": config.isolate or device.startswith("cuda"),
        }
        for size in sizes
        for half in halves
    ]


def _model_notes(contract: InputContract, has_parameters: bool, config: BenchmarkConfig) -> list[str]:
    notes = []
    if contract.fixed_size:
        notes.append(f"fixed {contract.fixed_size}² input: measured at that size only")
    if config.half and not has_parameters:
        notes.append("no parameters: fp32 only")
    return notes


def _case_note(notes: list[str], spec: dict[str, Any], device: str) -> str:
    from ..devices import cpu_has_native_bf16

    note = list(notes)
    if spec["half"] and device == "cpu" and cpu_has_native_bf16() is False:
        note.append("bf16 emulated (no AVX512-BF16/AMX)")
    return "; ".join(note)


def _reference_rate(precision: str, references: dict[str, float], config: BenchmarkConfig, device: str) -> float:
    """The reference conv's GFLOP/s at `precision`, timed the first time a precision is asked for."""
    if precision not in references:
        import torch

        from ..devices import half_dtype

        dtype = half_dtype(device) if precision != "fp32" else torch.float32
        with torch_threads(config.threads):
            references[precision] = reference_conv_gflops(device, dtype, config.reference_seconds)
    return references[precision]


def _speed_row(name: str, spec: dict[str, Any], result: dict[str, Any], reference: float | None, note: str) -> SpeedRow:
    flops = result["flops"] or None
    gflop = flops / 1e9 if flops else None
    achieved = gflop / result["median_s"] if gflop else None
    return SpeedRow(
        model=name,
        size=spec["size"],
        precision=result["precision"],
        device=spec["device"],
        threads=result["threads"],
        median_s=result["median_s"],
        p90_s=result["p90_s"],
        batch=spec["batch"],
        throughput=result["throughput"],
        memory_loaded_mb=result["memory_loaded_mb"],
        memory_peak_mb=result["memory_peak_mb"],
        memory_peak_batch_mb=result["memory_peak_batch_mb"],
        memory_method=result["memory_method"],
        calls_per_image=result["calls"],
        gflop_per_image=gflop,
        achieved_gflops=achieved,
        reference_gflops=reference if gflop else None,
        fraction_of_reference=achieved / reference if achieved and reference else None,
        note=note,
    )


def run_isolated(spec: dict[str, Any]) -> dict[str, Any]:
    """measure_speed(spec) in a fresh Python process (JSON in on stdin, out on stdout)."""
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding inpaint_cli/
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", "from inpaint_cli.bench.speed import worker_main; worker_main()"]
    completed = subprocess.run(command, input=json.dumps(spec), capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        raise InpaintError(lines[-1] if lines else f"the speed worker exited with code {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------- worker process


def worker_main() -> None:
    """Entry point of the speed subprocess: an error becomes its last stderr line and exit code 1."""
    from ..host_memory import keep_freed_memory

    keep_freed_memory()  # as `inpaint fill` does
    spec = json.loads(sys.stdin.read())
    try:
        result = measure_speed(spec)
    except Exception as error:
        print(failure_message(error), file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(result))


def measure_speed(spec: dict[str, Any]) -> dict[str, Any]:
    """One speed case (model, size, precision) in this process: latency, throughput, memory, FLOPs.

    Run in a fresh process (`run_isolated`) for honest memory figures; see `machine.py`."""
    import torch

    from ..engine import Inpainter
    from ..weights import load_model

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device, size = spec["device"], int(spec["size"])
    inpainter = Inpainter(
        load_model(spec["model"]), device=device, half=bool(spec["half"]), blend=spec.get("blend")
    )
    rng = np.random.default_rng(spec["seed"])
    rgb = quantize(rng.random((size, size, 3), dtype=np.float32))
    masks = bucket_masks("mixed", *SPEED_MASK_BUCKET, max(1, spec["batch"]), size, size, spec["seed"])
    memory = MemoryProbe(device, enabled=bool(spec["measure_memory"]))
    loaded = memory.current_mb()

    memory.reset_peak()
    times, result = _time_fills(inpainter, rgb, masks[0], spec)
    peak = memory.peak_mb()

    memory.reset_peak()
    throughput = _time_batches(inpainter, [rgb] * spec["batch"], masks, spec)
    peak_batch = memory.peak_mb()

    flops = _count_fill_flops(inpainter, rgb, masks[0])
    return {
        "median_s": statistics.median(times),
        "p90_s": float(np.percentile(times, 90)),
        "throughput": throughput,
        "precision": result.precision,
        "calls": result.windows,
        "threads": torch.get_num_threads(),
        "flops": flops,
        "memory_loaded_mb": loaded,
        "memory_peak_mb": peak,
        "memory_peak_batch_mb": peak_batch,
        "memory_method": memory.method,
    }


def _time_fills(
    inpainter: Inpainter, rgb: np.ndarray, mask: np.ndarray, spec: dict[str, Any]
) -> tuple[list[float], FillResult]:
    """Seconds of each of `repeats` single-image fills after `warmup` untimed ones, and the last result."""
    for _ in range(spec["warmup"]):
        inpainter.fill(rgb, mask, strategy="full")  # allocator, oneDNN kernel selection
    times, result = [], None
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        result = inpainter.fill(rgb, mask, strategy="full")
        sync_device(spec["device"])
        times.append(time.perf_counter() - start)
    assert result is not None  # repeats >= 1 (BenchmarkConfig.validate)
    return times, result


def _time_batches(inpainter: Inpainter, rgbs: list[np.ndarray], masks: list[np.ndarray], spec: dict[str, Any]) -> float:
    """Images per second of `fill_batch` calls of `batch` images, about `repeats` images in all."""
    inpainter.fill_batch(rgbs, masks)  # warm-up at the batch shape
    calls = max(1, math.ceil(spec["repeats"] / spec["batch"]))
    start = time.perf_counter()
    for _ in range(calls):
        inpainter.fill_batch(rgbs, masks)
    sync_device(spec["device"])
    return calls * spec["batch"] / (time.perf_counter() - start)


def _count_fill_flops(inpainter: Inpainter, rgb: np.ndarray, mask: np.ndarray) -> int:
    """FLOPs of one whole fill (0 when it runs no torch ops)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        inpainter.fill(rgb, mask, strategy="full")
    return int(counter.get_total_flops())


# ------------------------------------------------------------------------------------ FLOPs and rates


def reference_conv_gflops(device: str, dtype: torch.dtype, seconds: float = 1.5) -> float:
    """GFLOP/s of a large 3×3 conv (96→96 channels at 128², batch 4, channels-last, no autograd): the
    rate a well-shaped conv reaches here, to read a model's speed as a fraction of what the machine does."""
    import torch

    conv = torch.nn.Conv2d(96, 96, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    x = torch.randn(4, 96, 128, 128, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * 4 * 96 * 96 * 9 * 128 * 128
    with torch.inference_mode():
        for _ in range(3):
            conv(x)
        sync_device(device)
        runs, start = 0, time.perf_counter()
        while runs == 0 or time.perf_counter() - start < seconds:
            conv(x)
            runs += 1
        sync_device(device)
    return flops * runs / (time.perf_counter() - start) / 1e9


def model_flops(model: torch.nn.Module, size: int, device: str, dtype: torch.dtype) -> int:
    """FLOPs of one `model.inpaint` call on a size × size image (torch's FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    image = torch.rand(1, 3, size, size, device=device, dtype=dtype)
    mask = torch.zeros(1, 1, size, size, device=device, dtype=dtype)
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.inpaint(image, mask)
    return int(counter.get_total_flops())
