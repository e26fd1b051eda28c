"""GLCIC from the authors' Lua Torch release (satoshiiizuka/siggraph2017_inpainting, CC BY-NC-SA 4.0) and
from otenim/GLCIC-PyTorch's completion-network state dict (`model_cn`, MIT licence).

The authors' `completionnet_*.t7` is a table {model = nn.Sequential, mean = the training set's mean pixel
value, RGB in [0, 1]}. The network is 16 × [SpatialConvolution / SpatialDilatedConvolution /
SpatialFullConvolution, SpatialBatchNormalization, ReLU], a last SpatialConvolution and a Sigmoid: the paper's
table, mapped by position with every shape and hyper-parameter checked. inpaint.lua feeds it
[image − mean with the hole set to 0, mask] (`subtract_mean` in the converted config) and composites its
[0, 1] output into the hole; the padding is zeros and the layer order is read from the file.

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

import numpy as np

from ..errors import InpaintError
from .readers import read_t7, read_torch_state_dict
from .torch7 import Expected, lua_class, lua_layers, map_layers

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


def _t7_mean(value: Any, src: Path) -> tuple[float, float, float]:
    """`data.mean`: a 3-element tensor or a Lua list of 3 numbers, RGB in [0, 1] (image.load's range)."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()  # (3,) or (3, 1, 1)
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, int | float) for v in value):
        raise InpaintError(f"{src}: `mean` must hold the 3 channel means, got {value!r}"[:300])
    values = tuple(float(v) for v in value)
    if not all(0.0 <= v <= 1.0 for v in values):
        raise InpaintError(f"{src}: `mean` {values} is not in [0, 1]; is this the authors' completionnet?")
    return values  # type: ignore[return-value]


def _glcic_expected(model: Any, layer_order: str) -> list[Expected]:
    """What GLCIC.net runs, in order: each [conv, BN, ReLU] block in `layer_order`, the last conv, a sigmoid."""
    from torch import nn

    layers = []
    for index, block in enumerate(model.net):
        if isinstance(block, nn.Sequential):
            (conv, bn, _relu), kinds = block, layer_order.split("-")
            parts = {"conv": Expected("conv" if isinstance(conv, nn.Conv2d) else "deconv", f"net.{index}.0", conv),
                     "bn": Expected("bn", f"net.{index}.1", bn), "relu": Expected("relu")}  # fmt: skip
            layers += [parts[kind] for kind in kinds]
        else:
            layers.append(Expected("conv", f"net.{index}", block))
    return [*layers, Expected("sigmoid")]


def convert_iizuka(src: Path) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    from .. import registry

    data = read_t7(src)
    if not isinstance(data, dict) or lua_class(data.get("model")) is None or "mean" not in data:
        raise InpaintError(f"{src}: not the authors' completionnet .t7 (a table with `model` and `mean`)")
    layers = lua_layers(data["model"], src)
    order = tuple(layer.kind for layer in layers[1:3])
    layer_order = {("bn", "relu"): "conv-bn-relu", ("relu", "bn"): "conv-relu-bn"}.get(order)
    if layer_order is None:
        raise InpaintError(f"{src}: its first layer is not conv, batch norm, ReLU (found {', '.join(order)})")
    config = {"mean": _t7_mean(data["mean"], src), "padding": "zeros", "layer_order": layer_order,
              "subtract_mean": True}  # fmt: skip
    model = registry.create_model("glcic", **config)
    return config, map_layers(layers, _glcic_expected(model, layer_order), src, "glcic"), [src]
