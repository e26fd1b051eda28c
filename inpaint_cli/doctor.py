"""`inpaint doctor`: what a bug report needs — versions, devices, threads, caches, default checkpoints."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def report() -> dict[str, dict[str, Any]]:
    import torch

    from .devices import cpu_has_native_bf16
    from .weights import hub_settings, load_catalog, user_catalog_path, verify

    versions = {"inpaint-cli": _version("inpaint-cli"), "python": sys.version.split()[0]}
    for package in (
        "torch",
        "numpy",
        "opencv-python-headless",
        "safetensors",
        "huggingface-hub",
        "typer",
        "rich",
    ):
        versions[package] = _version(package)
    devices: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "native bf16": {True: "yes", False: "no (--half is emulated, slower)", None: "unknown"}[cpu_has_native_bf16()],
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        devices["cuda devices"] = ", ".join(
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        )
    devices["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    threads = {
        "cpu cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "torch interop threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
    }
    catalog = load_catalog()
    user_file = user_catalog_path()
    hub = hub_settings()
    paths = {
        "hf cache": hub["cache"],
        "hf endpoint": hub["endpoint"],
        "hf offline": hub["offline"],
        "user catalog": str(user_file)
        if user_file
        else "none (INPAINT_WEIGHTS unset, ~/.config/inpaint/weights.toml absent)",
    }
    checkpoints: dict[str, Any] = {"global default": catalog.global_default}
    for entry in catalog.find("*"):
        if entry.default or entry.name == catalog.global_default:
            checkpoints[entry.name] = verify(entry).status
    return {
        "versions": versions,
        "devices": devices,
        "threads": threads,
        "paths": paths,
        "checkpoints": checkpoints,
    }
