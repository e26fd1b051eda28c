"""GLCIC from otenim/GLCIC-PyTorch's completion-network state dict (`model_cn`, MIT licence).

The file is a `torch.save`d state dict of `CompletionNetwork`: conv1–conv12, deconv13, conv14, deconv15,
conv16 each with a bn1–bn16, and conv17 (sigmoid output), optionally prefixed `module.` (trained with
DataParallel). Its `config.json`, saved beside it by train.py, holds the training set's mean pixel value
`mpv` (RGB in [0, 1]) that fills the holes of the input. otenim orders each layer conv → ReLU → BN, which
the converted config records (`layer_order`); images are RGB in [0, 1] with zero padding, as ours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InpaintError
from . import Source
from .readers import read_torch_state_dict

_BN_PARTS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def otenim_key_map() -> dict[str, str]:
    """otenim's state-dict keys -> ours (GLCIC.net: block i holds conv i+1 at .0 and its BN at .1)."""
    mapping: dict[str, str] = {}
    for layer in range(1, 17):
        conv = f"deconv{layer}" if layer in (13, 15) else f"conv{layer}"
        for part in ("weight", "bias"):
            mapping[f"{conv}.{part}"] = f"net.{layer - 1}.0.{part}"
        for part in _BN_PARTS:
            mapping[f"bn{layer}.{part}"] = f"net.{layer - 1}.1.{part}"
    mapping["conv17.weight"], mapping["conv17.bias"] = "net.16.weight", "net.16.bias"
    return mapping


def read_mean_pixel(src: Path) -> tuple[float, float, float]:
    """`mpv` from the config.json beside the model file."""
    path = src.parent / "config.json"
    if not path.is_file():
        raise InpaintError(
            f"{path} not found: otenim's config.json (with the training mean `mpv`) must sit beside {src.name}"
        )
    try:
        mpv = json.loads(path.read_text())["mpv"]
        values = tuple(float(v) for v in mpv)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InpaintError(f"{path}: no readable `mpv` (3 numbers) in it ({e})") from None
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise InpaintError(f"{path}: `mpv` must be three values in [0, 1], got {mpv!r}")
    return values  # type: ignore[return-value]


def convert_otenim(src: Path) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    state = read_torch_state_dict(src)
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    mapping = otenim_key_map()
    unknown = sorted(set(state) - set(mapping))
    if unknown:
        raise InpaintError(f"{src}: not otenim's CompletionNetwork state dict (unknown keys {', '.join(unknown[:3])})")
    converted = {mapping[k]: v for k, v in state.items()}  # missing keys: the strict load names them
    config = {"mean": read_mean_pixel(src), "padding": "zeros", "layer_order": "conv-relu-bn"}
    return config, converted, [src, src.parent / "config.json"]


SOURCES = [
    Source(
        arch="glcic",
        format="state-dict",
        licence="MIT",
        origin="otenim/GLCIC-PyTorch (pretrained completion network model_cn + config.json)",
        data="CelebA, 160x160 crops (otenim's pretrained model)",
        convert=convert_otenim,
    ),
]
