"""The machine a benchmark runs on: what the report records about it (`environment`), torch's thread
count and device sync for honest timings, and the memory probe of the speed run.

Memory
    CPU: peak resident set size of the worker process, from /proc/self/status (VmHWM). The high-water
    mark is reset (/proc/self/clear_refs ← 5) after the model and inputs are loaded, so `memory_peak_mb` is
    the peak during the single-image fills and `memory_peak_batch_mb` during the batched ones, both
    including the loaded model (`memory_loaded_mb`). Without /proc (macOS) the peak since process start
    (ru_maxrss) is reported. Only a fresh process gives honest numbers (memory freed earlier would be
    reused unseen), so with `isolate=False` CPU memory is not reported. CUDA:
    torch.cuda.max_memory_allocated after reset_peak_memory_stats.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InpaintError
from .config import BenchmarkConfig


def environment(device: str, config: BenchmarkConfig) -> dict[str, Any]:
    """The report's `environment`: date, CPU (and GPU), threads, versions, device, memory method."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    if device.startswith("cuda"):
        cpu = f"{cpu}; GPU {torch.cuda.get_device_name(device)}"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": config.threads or torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "memory_method": MemoryProbe(device, enabled=config.isolate or device.startswith("cuda")).method,
    }


def sync_device(device: str) -> None:
    """Wait for queued GPU work, so a timer stops when the work is done (a no-op on CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Temporarily use `threads` intra-op threads (None: leave torch's setting alone)."""
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class MemoryProbe:
    """Peak memory of this process: VmHWM with a resettable high-water mark on Linux, ru_maxrss
    elsewhere (not resettable: the peak since the process started), max_memory_allocated on CUDA."""

    def __init__(self, device: str, *, enabled: bool) -> None:
        self.device = device
        self.enabled = enabled
        self.cuda = device.startswith("cuda")
        self.proc = Path("/proc/self/status").is_file() and os.access("/proc/self/clear_refs", os.W_OK)
        if not enabled:
            self.method = "not measured (in-process run; use isolate)"
        elif self.cuda:
            self.method = "torch.cuda.max_memory_allocated"
        elif self.proc:
            self.method = "peak RSS (VmHWM, reset after loading), fresh process"
        else:
            self.method = "peak RSS since process start (ru_maxrss), fresh process"

    def current_mb(self) -> float | None:
        if not self.enabled:
            return None
        if self.cuda:
            import torch

            return torch.cuda.memory_allocated(self.device) / 2**20
        if self.proc:
            return _proc_status_kb("VmRSS") / 1024
        return _ru_maxrss_mb()

    def reset_peak(self) -> None:
        if not self.enabled:
            return
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.proc:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # "5" resets the peak RSS to the current RSS (Linux >= 4.0)

    def peak_mb(self) -> float | None:
        if not self.enabled:
            return None
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.proc:
            return _proc_status_kb("VmHWM") / 1024
        return _ru_maxrss_mb()


def _proc_status_kb(key: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise InpaintError(f"/proc/self/status has no {key} line")


def _ru_maxrss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux
