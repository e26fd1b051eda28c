"""DeepFill v1 and v2 from the authors' TensorFlow 1 checkpoints (JiahuiYu/generative_inpainting).

Both generators' variables live under `inpaint_net/` with the same names: one `kernel` (kh, kw, in, out)
and `bias` per layer, named as below; the "deconvs" nest their conv one scope deeper
(`conv13_upsample/conv13_upsample_conv`). v1 (tag v1.0.0) has plain conv + ELU layers, cnum 32 and a
5-channel refine input; v2 (v2.0.0) has gated convs, cnum 48 and a 3-channel refine input. A v2 gated conv
is one kernel with 2·C outputs, features first and gates second, exactly `GatedConv2d`'s layout, so in
both versions kernels only change axis order. Our modules list the layers in the same order as the official
graphs build them (coarse, conv branch, attention branch, merge), so the mapping is positional and every
shape is checked (a v1 file given as v2, or the reverse, fails on the first layer whose shape differs).

What the released graphs compute differently from our defaults, set in the converted config (the same
three keys on `DeepFillV1` and `DeepFillV2`): TF's SAME padding at stride 2 (`tf_padding`), TF's
align_corners nearest resizes around contextual attention (`tf_resize`), and BGR input (`channel_order`:
the training data was read with OpenCV).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InpaintError
from .readers import read_tf_checkpoint

SCOPE = "inpaint_net/"


def _up(name: str) -> str:
    return f"{name}/{name}_conv"


_DILATED = ["7_atrous", "8_atrous", "9_atrous", "10_atrous"]
COARSE = [
    "conv1", "conv2_downsample", "conv3", "conv4_downsample", "conv5", "conv6",
    *[f"conv{d}" for d in _DILATED], "conv11", "conv12",
    _up("conv13_upsample"), "conv14", _up("conv15_upsample"), "conv16", "conv17",
]  # fmt: skip
CONV_BRANCH = [
    "xconv1", "xconv2_downsample", "xconv3", "xconv4_downsample", "xconv5", "xconv6",
    *[f"xconv{d}" for d in _DILATED],
]  # fmt: skip
ATTENTION_BRANCH = ["pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample", "pmconv5", "pmconv6",
                    "pmconv9", "pmconv10"]  # fmt: skip
MERGE = ["allconv11", "allconv12", _up("allconv13_upsample"), "allconv14", _up("allconv15_upsample"),
         "allconv16", "allconv17"]  # fmt: skip
LAYERS = [*COARSE, *CONV_BRANCH, *ATTENTION_BRANCH, *MERGE]  # the official build order, 42 convs

# The config keys the released graphs need (module docstring); the converted checkpoint adds its cnum.
RELEASE_CONFIG = {"tf_padding": True, "tf_resize": True, "channel_order": "bgr"}

# Optimiser slots and moving averages that a training snapshot may keep beside the weights.
_SLOT_SUFFIXES = ("/Adam", "/Adam_1", "/ExponentialMovingAverage", "/Momentum", "/RMSProp", "/RMSProp_1")


def tf_layer_names() -> list[str]:
    """The generator's TF variable names, kernel and bias per layer, in build order."""
    return [f"{SCOPE}{layer}/{part}" for layer in LAYERS for part in ("kernel", "bias")]


def _generator_variables(variables: dict[str, Any], src: Path) -> dict[str, Any]:
    """The inpaint_net weights; other scopes (discriminator, global step) and optimiser slots are skipped,
    anything else under inpaint_net/ is refused."""
    expected = set(tf_layer_names())
    mine = {k: v for k, v in variables.items() if k.startswith(SCOPE) and not k.endswith(_SLOT_SUFFIXES)}
    missing = sorted(expected - set(mine))
    unknown = sorted(set(mine) - expected)
    if missing or unknown:
        problems = [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unknown {', '.join(unknown[:3])}" if unknown else "",
        ]
        raise InpaintError(f"{src}: not a DeepFill inpaint_net checkpoint ({'; '.join(p for p in problems if p)})")
    return mine


def _state_dict(arch: str, config: dict[str, Any], variables: dict[str, Any], src: Path) -> dict[str, Any]:
    """Map the TF layers onto the model's convs in module order: (kh, kw, in, out) -> (out, in, kh, kw)."""
    import torch
    from torch import nn

    from .. import registry

    try:
        model = registry.create_model(arch, **config)
    except ValueError as e:  # e.g. an odd conv1 width: no checkpoint of this architecture
        raise InpaintError(f"{src}: conv1 has {config['cnum']} outputs, not a {arch} layout ({e})") from None
    names = {id(m): n for n, m in model.named_modules()}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(LAYERS):  # a model change this converter has not followed
        raise InpaintError(
            f"{arch} has {len(convs)} convs, the official graph {len(LAYERS)}; update convert/deepfill.py"
        )
    state: dict[str, Any] = {}
    for layer, conv in zip(LAYERS, convs, strict=True):
        kernel = variables[f"{SCOPE}{layer}/kernel"]
        bias = variables[f"{SCOPE}{layer}/bias"]
        weight = np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))
        if weight.shape != tuple(conv.weight.shape) or bias.shape != tuple(conv.bias.shape):
            raise InpaintError(
                f"{src}: {layer}: kernel {kernel.shape} does not fit {arch} cnum={config['cnum']} "
                f"({tuple(conv.weight.shape)} in our layout); is this a {arch} checkpoint?"
            )
        prefix = names[id(conv)]
        state[f"{prefix}.weight"] = torch.from_numpy(weight.astype(np.float32))
        state[f"{prefix}.bias"] = torch.from_numpy(np.asarray(bias, dtype=np.float32))
    return state


def _convert(arch: str, src: Path) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    variables, files = read_tf_checkpoint(src)
    variables = _generator_variables(variables, src)
    # cnum is conv1's output width in both (in v2 the raw width, 2× the gated conv's effective width).
    cnum = int(variables[f"{SCOPE}conv1/kernel"].shape[-1])
    config = {"cnum": cnum, **RELEASE_CONFIG}
    return config, _state_dict(arch, config, variables, src), files


def convert_deepfill_v1(src: Path) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    return _convert("deepfill_v1", src)


def convert_deepfill_v2(src: Path) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    return _convert("deepfill_v2", src)
