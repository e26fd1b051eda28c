"""Lua Torch `.t7` files for the converter tests: a writer of torch.save's binary format, the Lua `nn`
modules the authors' networks are built from (class names, versions and field names as torch/nn keeps
them), and those networks' forward pass in plain torch.nn.functional, read from the same fields.

The format (torch7 File.lua): every value is an int32 type tag then its body. nil 0; number 1 (a
float64); string 2 (int32 length, bytes); boolean 5 (int32); table 3 and torch object 4 start with an
int32 object index, and a value written before is only that index again. A table's body is an int32
pair count and the key/value pairs; a torch object's is its version string ("V n"), its class name and
then, for tensors, ndim, sizes and strides (int64 each), the 1-based storage offset (int64) and the storage
object; for storages, the element count (int64) and the raw elements; for any other class, the table
of its fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

_NIL, _NUMBER, _STRING, _TABLE, _TORCH, _BOOLEAN = 0, 1, 2, 3, 4, 5
_TYPE_NAMES = {np.dtype(np.float32): "Float", np.dtype(np.float64): "Double", np.dtype(np.int64): "Long"}


@dataclass(eq=False)
class Storage:
    """A torch.*Storage: a flat array that tensors view."""

    data: np.ndarray


@dataclass(eq=False)
class Tensor:
    """A torch.*Tensor: a view (size, stride, 0-based offset, in elements) of a storage; None = empty."""

    storage: Storage | None
    size: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    offset: int = 0

    def numpy(self) -> np.ndarray:
        assert self.storage is not None
        item = self.storage.data.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :], self.size, [s * item for s in self.stride]
        ).copy()


@dataclass(eq=False)
class LuaObject:
    """An instance of a Torch class (an nn module): its fields are written as a Lua table."""

    cls: str
    fields: dict[str, Any] = field(default_factory=dict)
    version: int = 1


def tensor(array: np.ndarray) -> Tensor:
    """A contiguous tensor on its own storage."""
    array = np.ascontiguousarray(array)
    strides = tuple(s // array.itemsize for s in array.strides)
    return Tensor(Storage(array.reshape(-1)), array.shape, strides, 0)


def empty() -> Tensor:
    return Tensor(None)


class _Writer:
    def __init__(self, f: Any) -> None:
        self.f = f
        self.indices: dict[int, int] = {}
        self.alive: list[Any] = []  # keeps every written object alive, so id() stays unique

    def int(self, value: int) -> None:
        self.f.write(struct.pack("<i", value))

    def long(self, value: int) -> None:
        self.f.write(struct.pack("<q", value))

    def string(self, text: str) -> None:
        data = text.encode()
        self.int(len(data))
        self.f.write(data)

    def _seen(self, value: Any) -> bool:
        """Write the object index; True when the object was written before (a reference only)."""
        key = id(value)
        if key in self.indices:
            self.int(self.indices[key])
            return True
        self.indices[key] = len(self.indices) + 1
        self.alive.append(value)
        self.int(self.indices[key])
        return False

    def write(self, value: Any) -> None:
        if value is None:
            self.int(_NIL)
        elif isinstance(value, bool):
            self.int(_BOOLEAN)
            self.int(int(value))
        elif isinstance(value, int | float):
            self.int(_NUMBER)
            self.f.write(struct.pack("<d", float(value)))
        elif isinstance(value, str):
            self.int(_STRING)
            self.string(value)
        elif isinstance(value, np.ndarray):
            self.write(tensor(value))
        elif isinstance(value, Storage | Tensor | LuaObject):
            self.int(_TORCH)
            if not self._seen(value):
                self._torch(value)
        elif isinstance(value, dict | list):
            self.int(_TABLE)
            if not self._seen(value):
                items = list(enumerate(value, start=1)) if isinstance(value, list) else list(value.items())
                self.int(len(items))
                for key, item in items:
                    self.write(key)
                    self.write(item)
        else:
            raise TypeError(f"cannot write {type(value).__name__}")

    def _torch(self, value: Storage | Tensor | LuaObject) -> None:
        if isinstance(value, LuaObject):
            self.string(f"V {value.version}")
            self.string(value.cls)
            self.write(value.fields)
        elif isinstance(value, Storage):
            self.string("V 1")
            self.string(f"torch.{_TYPE_NAMES[value.data.dtype]}Storage")
            self.long(value.data.size)
            self.f.write(value.data.astype(value.data.dtype.newbyteorder("<")).tobytes())
        else:
            dtype = value.storage.data.dtype if value.storage is not None else np.dtype(np.float32)
            self.string("V 1")
            self.string(f"torch.{_TYPE_NAMES[dtype]}Tensor")
            self.int(len(value.size))
            for n in value.size:
                self.long(n)
            for s in value.stride:
                self.long(s)
            self.long(value.offset + 1)
            self.write(value.storage)


def write_t7(path: Path, value: Any) -> Path:
    """torch.save(path, value) in the binary format."""
    with open(path, "wb") as f:
        _Writer(f).write(value)
    return path


# ---- nn modules, with the fields torch/nn gives them ---------------------------------------------


def lua_module(cls: str, version: int = 1, **fields: Any) -> LuaObject:
    return LuaObject(cls, {"output": empty(), "gradInput": empty(), "_type": "torch.FloatTensor", "train": False,
                           **fields}, version)  # fmt: skip


def conv(rng: np.random.Generator, n_in: int, n_out: int, k: int, stride: int = 1, pad: int = 0,
         dilation: int = 1, bias_scale: float = 0.05) -> LuaObject:  # fmt: skip
    """nn.SpatialConvolution (or nn.SpatialDilatedConvolution when dilated), He-scaled random weights."""
    weight = rng.normal(0.0, np.sqrt(2.0 / (n_in * k * k)), (n_out, n_in, k, k)).astype(np.float32)
    fields = {"nInputPlane": n_in, "nOutputPlane": n_out, "kW": k, "kH": k, "dW": stride, "dH": stride,
              "padW": pad, "padH": pad, "weight": weight,
              "bias": rng.normal(0.0, bias_scale, n_out).astype(np.float32)}  # fmt: skip
    if dilation != 1:
        return lua_module("nn.SpatialDilatedConvolution", **fields, dilationW=dilation, dilationH=dilation)
    return lua_module("nn.SpatialConvolution", **fields)


def full_conv(rng: np.random.Generator, n_in: int, n_out: int, k: int = 4, stride: int = 2, pad: int = 1,
              bias_scale: float = 0.05) -> LuaObject:  # fmt: skip
    """nn.SpatialFullConvolution: weight (nInputPlane, nOutputPlane, kH, kW), adjW/adjH = 0."""
    weight = rng.normal(0.0, np.sqrt(2.0 / (n_in * k * k / stride**2)), (n_in, n_out, k, k)).astype(np.float32)
    return lua_module("nn.SpatialFullConvolution", nInputPlane=n_in, nOutputPlane=n_out, kW=k, kH=k, dW=stride,
                   dH=stride, padW=pad, padH=pad, adjW=0, adjH=0, weight=weight,
                   bias=rng.normal(0.0, bias_scale, n_out).astype(np.float32))  # fmt: skip


def batch_norm(rng: np.random.Generator, n: int, *, old: bool = False) -> LuaObject:
    """nn.SpatialBatchNormalization with random statistics: version 2 keeps `running_var`, version 1 (old,
    before 2016) `running_std` = 1/sqrt(var + eps)."""
    var = rng.uniform(0.5, 2.0, n).astype(np.float32)
    fields = {"eps": 1e-5, "momentum": 0.1, "affine": True, "weight": rng.uniform(0.5, 1.5, n).astype(np.float32),
              "bias": rng.uniform(-0.2, 0.2, n).astype(np.float32),
              "running_mean": rng.uniform(-0.3, 0.3, n).astype(np.float32)}  # fmt: skip
    if old:
        return lua_module("nn.SpatialBatchNormalization", 1, **fields,
                       running_std=(1.0 / np.sqrt(var.astype(np.float64) + 1e-5)).astype(np.float32))  # fmt: skip
    return lua_module("nn.SpatialBatchNormalization", 2, **fields, running_var=var)


def relu() -> LuaObject:
    return lua_module("nn.ReLU", threshold=0, val=0, inplace=True)


def leaky_relu(slope: float = 0.2) -> LuaObject:
    return lua_module("nn.LeakyReLU", negval=slope, inplace=True)


def sigmoid() -> LuaObject:
    return lua_module("nn.Sigmoid")


def tanh() -> LuaObject:
    return lua_module("nn.Tanh")


def sequential(*modules: LuaObject) -> LuaObject:
    return LuaObject("nn.Sequential", {"modules": list(modules), "output": empty(), "gradInput": empty(),
                                       "_type": "torch.FloatTensor", "train": False})  # fmt: skip


def modules_of(net: LuaObject) -> list[LuaObject]:
    """The leaf modules of a (nested) nn.Sequential, in order."""
    if net.cls != "nn.Sequential":
        return [net]
    return [leaf for module in net.fields["modules"] for leaf in modules_of(module)]


def share_storage(net: LuaObject) -> Storage:
    """Make every weight and bias a view into one flat storage, as `getParameters()` leaves them; the
    first conv weight is laid out transposed (non-contiguous strides)."""
    leaves = [m for m in modules_of(net) if isinstance(m.fields.get("weight"), np.ndarray)]
    arrays = [(m, name) for m in leaves for name in ("weight", "bias") if isinstance(m.fields.get(name), np.ndarray)]
    storage = Storage(np.concatenate([m.fields[name].reshape(-1) for m, name in arrays] + [np.zeros(7, np.float32)]))
    offset = 0
    for index, (module, name) in enumerate(arrays):
        array = module.fields[name]
        if index == 0:  # store it in Fortran order: the same values, strides reversed
            storage.data[offset : offset + array.size] = array.reshape(-1, order="F")
            strides = tuple(int(np.prod(array.shape[:i])) for i in range(array.ndim))
        else:
            strides = tuple(s // array.itemsize for s in np.ascontiguousarray(array).strides)
        module.fields[name] = Tensor(storage, array.shape, strides, offset)
        offset += array.size
    return storage


# ---- the Lua networks' forward pass, from the module fields ------------------------------------


def _value(x: Any) -> torch.Tensor:
    return torch.from_numpy(x.numpy() if isinstance(x, Tensor) else np.array(x, dtype=np.float32))


def lua_forward(net: LuaObject, x: torch.Tensor) -> torch.Tensor:
    """What nn's updateOutput computes in evaluate() mode, module by module."""
    for module in modules_of(net):
        f = module.fields
        if module.cls in ("nn.SpatialConvolution", "nn.SpatialDilatedConvolution"):
            dilation = (f.get("dilationH", 1), f.get("dilationW", 1))
            x = F.conv2d(x, _value(f["weight"]), _value(f["bias"]), (f["dH"], f["dW"]), (f["padH"], f["padW"]),
                         dilation)  # fmt: skip
        elif module.cls == "nn.SpatialFullConvolution":
            x = F.conv_transpose2d(x, _value(f["weight"]), _value(f["bias"]), (f["dH"], f["dW"]),
                                   (f["padH"], f["padW"]), (f["adjH"], f["adjW"]))  # fmt: skip
        elif module.cls == "nn.SpatialBatchNormalization":
            mean = _value(f["running_mean"]).view(1, -1, 1, 1)
            if "running_std" in f:  # version 1: y = (x − mean) · running_std · γ + β
                scale = _value(f["running_std"]).view(1, -1, 1, 1)
            else:
                scale = 1.0 / torch.sqrt(_value(f["running_var"]).view(1, -1, 1, 1) + f["eps"])
            x = (x - mean) * scale * _value(f["weight"]).view(1, -1, 1, 1) + _value(f["bias"]).view(1, -1, 1, 1)
        elif module.cls == "nn.ReLU":
            x = torch.relu(x)
        elif module.cls == "nn.LeakyReLU":
            x = F.leaky_relu(x, f["negval"])
        elif module.cls == "nn.Sigmoid":
            x = torch.sigmoid(x)
        elif module.cls == "nn.Tanh":
            x = torch.tanh(x)
        else:
            raise AssertionError(f"no forward for {module.cls}")
    return x


# ---- the authors' networks ----------------------------------------------------------------------

# GLCIC's completion network (the paper's table): (in, out, kernel, stride, dilation); "full" = deconv 4/2/1.
GLCIC_LAYERS = [
    (4, 64, 5, 1, 1), (64, 128, 3, 2, 1), (128, 128, 3, 1, 1), (128, 256, 3, 2, 1), (256, 256, 3, 1, 1),
    (256, 256, 3, 1, 1), (256, 256, 3, 1, 2), (256, 256, 3, 1, 4), (256, 256, 3, 1, 8), (256, 256, 3, 1, 16),
    (256, 256, 3, 1, 1), (256, 256, 3, 1, 1), (256, 128, "full"), (128, 128, 3, 1, 1), (128, 64, "full"),
    (64, 32, 3, 1, 1),
]  # fmt: skip


def glcic_net(seed: int = 0, *, relu_first: bool = False) -> LuaObject:
    """completionnet's nn.Sequential: 16 × [conv, BN, ReLU] ([conv, ReLU, BN] with relu_first), conv 32→3, Sigmoid."""
    rng = np.random.default_rng(seed)
    modules: list[LuaObject] = []
    for n_in, n_out, *spec in GLCIC_LAYERS:
        if spec == ["full"]:
            layer = full_conv(rng, n_in, n_out)
        else:
            k, stride, dilation = spec
            layer = conv(rng, n_in, n_out, k, stride, dilation * (k - 1) // 2, dilation)
        pair = [relu(), batch_norm(rng, n_out)] if relu_first else [batch_norm(rng, n_out), relu()]
        modules += [layer, *pair]
    return sequential(*modules, conv(rng, 32, 3, 3, 1, 1), sigmoid())


def context_encoder_net(seed: int = 0, *, width: int = 8, bottleneck: int = 32, random_variant: bool = False,
                        old_batch_norm: bool = False, bias_scale: float = 2e-3) -> LuaObject:  # fmt: skip
    """train.lua's netG (nef = ngf = width): Sequential(netE, BN, LeakyReLU, 5 full convs..., Tanh);
    train_random.lua's (fineSize 128) has one more 4/2/1 full conv. Biases: one Adam step's worth."""
    rng = np.random.default_rng(seed)
    w = width

    def bn(n: int) -> LuaObject:
        return batch_norm(rng, n, old=old_batch_norm)

    def down(n_in: int, n_out: int, norm: bool = True) -> list[LuaObject]:
        return [conv(rng, n_in, n_out, 4, 2, 1, bias_scale=bias_scale), *([bn(n_out)] if norm else []), leaky_relu()]

    def up(n_in: int, n_out: int) -> list[LuaObject]:
        return [full_conv(rng, n_in, n_out, bias_scale=bias_scale), bn(n_out), relu()]

    net_e = sequential(*down(3, w, norm=False), *down(w, w), *down(w, 2 * w), *down(2 * w, 4 * w),
                       *down(4 * w, 8 * w), conv(rng, 8 * w, bottleneck, 4, bias_scale=bias_scale))  # fmt: skip
    decoder = [full_conv(rng, bottleneck, 8 * w, 4, 1, 0, bias_scale=bias_scale), bn(8 * w), relu(),
               *up(8 * w, 4 * w), *up(4 * w, 2 * w), *up(2 * w, w), *(up(w, w) if random_variant else [])]  # fmt: skip
    return sequential(
        net_e, bn(bottleneck), leaky_relu(), *decoder, full_conv(rng, w, 3, bias_scale=bias_scale), tanh()
    )
