"""Lua Torch `nn` networks read from a `.t7` file: flattened into layers and mapped onto our modules.

`lua_layers` walks an `nn.Sequential` (nested ones included) and turns each module it knows into a
`LuaLayer` with its hyper-parameters and numpy tensors, every field checked against the weight shapes;
any other class is refused. `map_layers` then pairs those layers one by one with the layers our model
runs (`Expected`), checks kind, shape, stride, padding, dilation and slope, and returns the state dict.

Field names are nn's (torch/nn, 2016–2017): SpatialConvolution `weight` (nOutputPlane, nInputPlane, kH, kW)
(or flattened to (nOutputPlane, nInputPlane·kH·kW) by older versions), `bias`, `dW`/`dH`, `padW`/`padH`;
SpatialDilatedConvolution adds `dilationW`/`dilationH`; SpatialFullConvolution `weight` (nInputPlane,
nOutputPlane, kH, kW) as PyTorch's ConvTranspose2d, `adjW`/`adjH` (output padding); SpatialBatchNormalization
`running_mean`, `running_var` (or, before nn's BN version 2, `running_std` = 1/sqrt(var + eps)), `weight`
and `bias` (absent when not affine), `eps`; LeakyReLU `negval`; ReLU (a Threshold) `threshold` and `val`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InpaintError

_CONVS = {"nn.SpatialConvolution", "nn.SpatialConvolutionMM", "nn.SpatialDilatedConvolution"}
_KINDS = {
    **{name: "conv" for name in _CONVS},
    "nn.SpatialFullConvolution": "deconv",
    "nn.SpatialBatchNormalization": "bn",
    "nn.ReLU": "relu",
    "nn.LeakyReLU": "lrelu",
    "nn.Sigmoid": "sigmoid",
    "nn.Tanh": "tanh",
}
_CONTAINERS = {"nn.Sequential"}
_MAX_DEPTH = 16


@dataclass
class LuaLayer:
    """One module of the network: kind (conv, deconv, bn, relu, lrelu, sigmoid, tanh), its Lua class, its
    1-based position among the layers, and its parameters (numpy arrays and hyper-parameters)."""

    kind: str
    lua_class: str
    index: int
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"layer {self.index} ({self.lua_class})"


def lua_class(obj: Any) -> str | None:
    """The Torch class name of a torchfile object, or None for anything else (tables, numbers, arrays)."""
    typename = getattr(type(obj), "torch_typename", None)
    if typename is None:
        return None
    name = obj.torch_typename()
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def describe(obj: Any) -> str:
    """What a value read from a .t7 file is, for messages: its Torch class, or the kind of Lua value."""
    name = lua_class(obj)
    if name is not None:
        return name
    for kinds, what in (((dict, list), "a Lua table"), ((np.ndarray,), "a tensor"), ((bool,), "a boolean"),
                        ((int, float), "a number"), ((str, bytes), "a string")):  # fmt: skip
        if isinstance(obj, kinds):
            return what
    return "nil" if obj is None else f"a Lua {type(obj).__name__}"


def _fields(obj: Any) -> dict[str, Any]:
    """A torch object's fields by name (torchfile lists them in `__dir__` and gives them by item access)."""
    try:
        return {key: obj[key] for key in obj.__dir__() if isinstance(key, str) and key != "torch_typename"}
    except (AttributeError, TypeError):  # the object's body was not a table
        raise ValueError(f"a {lua_class(obj)} whose fields are not a table") from None


def _number(fields: dict[str, Any], name: str, layer: str, default: float | None = None) -> float:
    value = fields.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{layer}: `{name}` is {value!r}, not a number")
    return float(value)


def _int(fields: dict[str, Any], name: str, layer: str, default: int | None = None) -> int:
    value = _number(fields, name, layer, default)
    if not value.is_integer():
        raise ValueError(f"{layer}: `{name}` is {value}, not a whole number")
    return int(value)


def _array(fields: dict[str, Any], name: str, layer: str, shape: tuple[int, ...], optional: bool = False) -> Any:
    """A float tensor of exactly `shape` (as float32), or None where `optional` and the field is absent."""
    value = fields.get(name)
    if value is None or (isinstance(value, np.ndarray) and value.size == 0 and optional):
        if optional:
            return None
        raise ValueError(f"{layer}: no `{name}` tensor")
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise ValueError(f"{layer}: `{name}` is not a float tensor")
    if value.size == math.prod(shape) and value.shape != shape and value.ndim < len(shape):
        value = value.reshape(shape)  # older nn versions keep conv weights as (out, in·kH·kW)
    if value.shape != shape:
        raise ValueError(f"{layer}: `{name}` has shape {value.shape}, its fields say {shape}")
    return np.ascontiguousarray(value, dtype=np.float32)


def _conv(fields: dict[str, Any], name: str, transposed: bool) -> dict[str, Any]:
    n_in, n_out = _int(fields, "nInputPlane", name), _int(fields, "nOutputPlane", name)
    kh, kw = _int(fields, "kH", name), _int(fields, "kW", name)
    shape = (n_in, n_out, kh, kw) if transposed else (n_out, n_in, kh, kw)
    pad = _int(fields, "padding", name, 0)  # the oldest SpatialConvolutionMM's single padding
    params = {
        "weight": _array(fields, "weight", name, shape),
        "bias": _array(fields, "bias", name, (n_out,), optional=True),
        "in": n_in,
        "out": n_out,
        "stride": (_int(fields, "dH", name, 1), _int(fields, "dW", name, 1)),
        "padding": (_int(fields, "padH", name, pad), _int(fields, "padW", name, pad)),
    }
    if transposed:
        params["output_padding"] = (_int(fields, "adjH", name, 0), _int(fields, "adjW", name, 0))
    else:
        params["dilation"] = (_int(fields, "dilationH", name, 1), _int(fields, "dilationW", name, 1))
    return params


def _batch_norm(fields: dict[str, Any], name: str) -> dict[str, Any]:
    mean = fields.get("running_mean")
    if not isinstance(mean, np.ndarray) or mean.ndim != 1:
        raise ValueError(f"{name}: no `running_mean` vector")
    channels = mean.shape[0]
    eps = _number(fields, "eps", name, 1e-5)
    if fields.get("running_var") is not None:
        var = _array(fields, "running_var", name, (channels,))
    else:
        # nn before BN version 2 kept 1/sqrt(var + eps); its reader turns it back the same way.
        std = _array(fields, "running_std", name, (channels,)).astype(np.float64)
        if not (std > 0).all():
            raise ValueError(f"{name}: `running_std` has values <= 0")
        var = (std**-2 - eps).astype(np.float32)
    weight = _array(fields, "weight", name, (channels,), optional=True)
    bias = _array(fields, "bias", name, (channels,), optional=True)
    return {
        "channels": channels,
        "eps": eps,
        "running_mean": _array(fields, "running_mean", name, (channels,)),
        "running_var": var,
        "weight": np.ones(channels, np.float32) if weight is None else weight,  # not affine: γ = 1, β = 0
        "bias": np.zeros(channels, np.float32) if bias is None else bias,
    }


def _layer(cls: str, kind: str, fields: dict[str, Any], index: int) -> LuaLayer:
    layer = LuaLayer(kind, cls, index)
    name = str(layer)
    if kind in ("conv", "deconv"):
        layer.params = _conv(fields, name, transposed=kind == "deconv")
    elif kind == "bn":
        layer.params = _batch_norm(fields, name)
    elif kind == "lrelu":
        layer.params = {"slope": _number(fields, "negval", name, 0.01)}
    elif kind == "relu":
        threshold, value = _number(fields, "threshold", name, 0.0), _number(fields, "val", name, 0.0)
        if threshold != 0.0 or value != 0.0:
            raise ValueError(f"{name}: a Threshold({threshold}, {value}), not a ReLU")
    return layer


def lua_layers(net: Any, src: Path) -> list[LuaLayer]:
    """The layers of the `nn.Sequential` `net`, nested containers flattened, in the order they run."""
    layers: list[LuaLayer] = []

    def walk(obj: Any, depth: int) -> None:
        cls = lua_class(obj)
        if cls in _CONTAINERS:
            modules = _fields(obj).get("modules")
            if not isinstance(modules, list) or depth >= _MAX_DEPTH:
                raise ValueError(f"an {cls} without a list of modules, or nested over {_MAX_DEPTH} deep")
            for module in modules:
                walk(module, depth + 1)
        elif cls in _KINDS:
            layers.append(_layer(cls, _KINDS[cls], _fields(obj), len(layers) + 1))
        else:
            known = ", ".join(sorted({*_KINDS, *_CONTAINERS}))
            raise ValueError(
                f"layer {len(layers) + 1} is {describe(obj)}, which this converter does not map (it knows {known})"
            )

    try:
        walk(net, 0)
    except ValueError as e:
        raise InpaintError(f"{src}: {e}") from None
    return layers


@dataclass(frozen=True)
class Expected:
    """A layer our model runs: kind, the state-dict prefix of its module ("" for activations), the module
    itself (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d) and, for LeakyReLU, the slope."""

    kind: str
    prefix: str = ""
    module: Any = None
    slope: float | None = None


def expected_layers(model: Any) -> list[Expected]:
    """Every leaf module of `model` in registration order (which must be the order it runs)."""
    from torch import nn

    kinds = [
        (nn.ConvTranspose2d, "deconv"), (nn.Conv2d, "conv"), (nn.BatchNorm2d, "bn"), (nn.LeakyReLU, "lrelu"),
        (nn.ReLU, "relu"), (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"),
    ]  # fmt: skip
    layers = []
    for prefix, module in model.named_modules():
        if any(True for _ in module.children()):
            continue
        kind = next((k for cls, k in kinds if isinstance(module, cls)), None)
        if kind is None:
            raise InpaintError(f"{type(model).__name__} has a {type(module).__name__}; update convert/torch7.py")
        slope = module.negative_slope if kind == "lrelu" else None
        layers.append(Expected(kind, prefix if kind in ("conv", "deconv", "bn") else "", module, slope))
    return layers


def _check_conv(lua: LuaLayer, ours: Any) -> list[str]:
    p = lua.params
    wanted = {
        "weight shape": (tuple(p["weight"].shape), tuple(ours.weight.shape)),
        "stride": (p["stride"], tuple(ours.stride)),
        "padding": (p["padding"], tuple(ours.padding)),
    }
    if lua.kind == "conv":
        wanted["dilation"] = (p["dilation"], tuple(ours.dilation))
    else:
        wanted["output padding (adj)"] = (p["output_padding"], tuple(ours.output_padding))
    return [f"{what} {got} (ours {want})" for what, (got, want) in wanted.items() if got != want]


def map_layers(lua: list[LuaLayer], expected: list[Expected], src: Path, arch: str) -> dict[str, Any]:
    """The state dict of our model from the Lua layers, paired by position with every hyper-parameter and
    shape checked; a Lua bias that our conv lacks must be all zeros (dropped), a missing one becomes 0."""
    import torch

    if [layer.kind for layer in lua] != [e.kind for e in expected]:
        first = next(
            (i for i, (a, b) in enumerate(zip(lua, expected, strict=False)) if a.kind != b.kind),
            min(len(lua), len(expected)),
        )
        got = str(lua[first]) if first < len(lua) else "the end"
        want = expected[first].kind if first < len(expected) else "the end"
        raise InpaintError(
            f"{src}: not the {arch} network: {len(lua)} layers where ours has {len(expected)}, "
            f"first difference at layer {first + 1}: {got} where ours has {want}"
        )
    state: dict[str, Any] = {}
    for layer, want in zip(lua, expected, strict=True):
        p = layer.params
        if layer.kind in ("conv", "deconv"):
            problems = _check_conv(layer, want.module)
            if problems:
                raise InpaintError(f"{src}: {layer} does not fit {arch}: {'; '.join(problems)}")
            state[f"{want.prefix}.weight"] = torch.from_numpy(p["weight"])
            bias = p["bias"]
            if want.module.bias is not None:
                shape = (want.module.bias.shape[0],)
                state[f"{want.prefix}.bias"] = torch.zeros(shape) if bias is None else torch.from_numpy(bias)
            elif bias is not None and np.any(bias != 0):
                raise InpaintError(f"{src}: {layer} has a non-zero bias, which this {arch} config has no place for")
        elif layer.kind == "bn":
            bn = want.module
            if p["channels"] != bn.num_features or not math.isclose(p["eps"], bn.eps, rel_tol=1e-6):
                ours = f"ours {bn.num_features}, {bn.eps:g}"
                raise InpaintError(f"{src}: {layer} has {p['channels']} channels, eps {p['eps']:g} ({ours})")
            for part in ("weight", "bias", "running_mean", "running_var"):
                state[f"{want.prefix}.{part}"] = torch.from_numpy(p[part])
            state[f"{want.prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        elif layer.kind == "lrelu" and not math.isclose(p["slope"], want.slope or 0.0, rel_tol=1e-6):
            raise InpaintError(f"{src}: {layer} has slope {p['slope']:g} (ours {want.slope:g})")
    return state


def any_bias(layers: list[LuaLayer]) -> bool:
    """Whether a conv or deconv of the network has a bias with a value other than 0."""
    return any(
        layer.kind in ("conv", "deconv")
        and layer.params["bias"] is not None
        and bool(np.any(layer.params["bias"] != 0))
        for layer in layers
    )
