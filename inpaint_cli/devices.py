"""Device policy, shared by inference, training, benchmarks and `inpaint doctor`: which device `--device`
means, which dtype `--half` means there, and whether the CPU computes that dtype natively.

torch is imported inside the functions that need it, so the CLI can import this at start-up for free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    import torch


def pick_device(device: str = "auto") -> str:
    """'auto' -> cuda, else mps, else cpu; explicit names are checked so a typo fails early."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is available; use --device cpu")
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) exist")
        return device
    if device == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise UsageError("--device mps: MPS is not available on this machine; use --device cpu")
        return device
    if device == "cpu":
        return device
    raise UsageError(f"--device {device}: expected auto, cpu, cuda, cuda:N or mps")


def half_dtype(device: str) -> torch.dtype:
    """`--half` means fp16 on GPUs and bf16 on CPUs (CPU fp16 convs are slow; bf16 has fp32's range)."""
    import torch

    return torch.bfloat16 if device == "cpu" else torch.float16


def cpu_has_native_bf16() -> bool | None:
    """Whether the CPU computes bf16 in hardware (AVX512-BF16 or AMX); None when it cannot be told.

    Without it oneDNN emulates bf16 and `--half` is slower than fp32 (measured 5x slower convs on an
    AVX-512 Xeon without AVX512-BF16), so the engine warns."""
    import platform

    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision_name(dtype: torch.dtype) -> str:
    """The short name reports and --json lines use for a compute dtype: fp32, bf16 or fp16."""
    return {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}[str(dtype)]
