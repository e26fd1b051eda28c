"""Context Encoder from the authors' Lua Torch generators (pathak22/context-encoder).

The released `inpaintCenter` models (paris_inpaintCenter.t7, imagenet_inpaintCenter.t7) are train.lua's
netG saved whole: nn.Sequential(netE, SpatialBatchNormalization, LeakyReLU, SpatialFullConvolution, ...,
Tanh), with netE a nested nn.Sequential of five 4/2/1 SpatialConvolutions (LeakyReLU 0.2, batch norm from
the second) and the 4×4 valid conv into the nBottleneck-wide code (4000 for the release). The decoder is
five SpatialFullConvolutions (4/1/0, then 4/2/1) with batch norm and ReLU, and a Tanh: the 64² centre of a
128² input. A train_random.lua generator has the one more 4/2/1 stage of our "random" variant.

Read from the file: `width` (the first conv's outputs, nef = ngf), `bottleneck` (the code's width),
`variant` (5 deconvs: "centre", 6: "random"), and `conv_bias`: the Lua convs all have biases, which
train.lua zeroes before each step and the step then moves, so the saved ones are small but not zero and
the converted model keeps them. Everything else is as our model: input in [-1, 1] with the hole set to
2·(117, 104, 123)/255 − 1 on R, G, B, and for "centre" the inner 56² hole (overlapPred 4, as the README's
demo runs it) with only that part of the 64² prediction pasted (test.lua/demo.lua).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InpaintError
from .readers import read_t7
from .torch7 import any_bias, describe, expected_layers, lua_class, lua_layers, map_layers

_VARIANTS = {5: "centre", 6: "random"}  # number of SpatialFullConvolutions -> our variant


def convert_pathak(src: Path) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
    from .. import registry

    net = read_t7(src)
    if lua_class(net) != "nn.Sequential":
        raise InpaintError(f"{src}: not a Context Encoder generator (an nn.Sequential netG; found {describe(net)})")
    layers = lua_layers(net, src)
    convs = [layer for layer in layers if layer.kind == "conv"]
    deconvs = sum(layer.kind == "deconv" for layer in layers)
    if len(convs) != 6 or deconvs not in _VARIANTS:
        raise InpaintError(
            f"{src}: not a 128² Context Encoder generator ({len(convs)} convs and {deconvs} deconvs; the centre "
            f"model has 6 and 5, the random-region one 6 and 6; a fineSize=64 one, 5 and 5, is not supported)"
        )
    config = {
        "bottleneck": convs[-1].params["out"],
        "variant": _VARIANTS[deconvs],
        "width": convs[0].params["out"],
        "conv_bias": any_bias(layers),
    }
    model = registry.create_model("context_encoder", **config)
    return config, map_layers(layers, expected_layers(model), src, "context_encoder"), [src]
