"""How much memory a whole-image model call takes (`--strategy full`), and how much the device has left.

Contextual attention (DeepFill v1/v2, PiiGAN) compares every location of its grid (1/8 of the image per
side) with every other: two float32 score maps of (grid pixels)² each, which grows with the square of the
pixel count (3000×2000: a 375×250 grid, 2 × 35.2 GB). The convolutions' feature maps grow with the pixel
count. Both are measured per image pixel on one small probe call of the model, and scaled.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import numpy as np

# `full_memory_bytes`: contextual attention keeps two score maps (`fast_attention.ScoreMaps`); besides them, the
# live feature maps, in multiples of the largest layer output. Measured peak RSS over a warm process, full
# fills on a CPU, minus the score maps: 2.1-2.7x the largest layer output for DeepFill v2, 4-6x for DeepFill
# v1 and PiiGAN, 4.6-6.6x for GLCIC (512² and 1024×768; e.g. GLCIC 1024×768: 1333 MB). 7x errs on the safe
# side, and the score maps dominate where it matters (DeepFill v2 1024×768: 1208 MB of 1424 MB).
_SCORE_MAPS = 2
_LIVE_FEATURE_MAPS = 7
_PROBE_SIZE = 64


def available_memory_bytes(device: str) -> int | None:
    """Memory a fill can still take on `device`: free GPU memory, or the host's MemAvailable (Linux); None
    where it cannot be told (then nothing is refused)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    if device != "cpu":
        return None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def probe_per_pixel(model: Any, forward: Callable[[Any, np.ndarray, np.ndarray], object]) -> tuple[float, float]:
    """(attention grid side per image pixel, 0 without contextual attention; bytes of the largest layer
    output per image pixel), measured on one `_PROBE_SIZE`² call `forward(model, rgbs, masks)` of a copy of
    `model` (a model may keep state across calls; this one is not a fill)."""
    import torch

    from .models.attention import ContextualAttention

    side = _PROBE_SIZE
    found = {"grid": 0.0, "layer": 0.0}

    def attention_grid(module, args) -> None:
        found["grid"] = max(found["grid"], args[0].shape[-1] / module.rate / side)

    def layer_output(_module, _args, output) -> None:
        if isinstance(output, torch.Tensor):
            found["layer"] = max(found["layer"], output.numel() * output.element_size() / (side * side))

    probe = copy.deepcopy(model)
    for module in probe.modules():
        if isinstance(module, ContextualAttention):
            module.register_forward_pre_hook(attention_grid)
        module.register_forward_hook(layer_output)
    rgb = np.full((1, side, side, 3), 0.5, np.float32)
    mask = np.zeros((1, side, side), bool)
    mask[:, side // 4 : side // 2, side // 4 : side // 2] = True
    forward(probe, rgb, mask)
    return found["grid"], found["layer"]


def full_call_bytes(per_pixel: tuple[float, float], batch: int, padded_h: int, padded_w: int) -> int:
    """The estimate for one call on a (batch, padded_h, padded_w) stack, from `probe_per_pixel`'s numbers."""
    attention_side, layer_bytes = per_pixel
    grid = int(padded_h * attention_side) * int(padded_w * attention_side)
    return int(_SCORE_MAPS * batch * grid * grid * 4 + _LIVE_FEATURE_MAPS * layer_bytes * batch * padded_h * padded_w)
