"""Readers of the released file formats, each returning plain name -> numpy array dicts.

- TF1 checkpoints (name-based, `tf.train.Saver`): through TensorFlow's own checkpoint reader.
- PyTorch state dicts: `torch.load(weights_only=True)` only, which unpickles tensors and plain
  containers and refuses any other object.
- Lua Torch `.t7` files (binary `torch.save`): through `torchfile`, which parses the typed objects and
  never runs the Lua functions a file may hold. Its tensor and storage readers are replaced by ones that
  check every storage lies inside the file and every tensor inside its storage (torchfile's own view
  a tensor with `as_strided` unchecked, so a short or crafted file would read past the array).
"""

from __future__ import annotations

import glob
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InpaintError

_MAX_TENSOR_DIMS = 8
# torchfile's tensor and storage class names -> element type (Cuda ones are written as their CPU data).
_T7_DTYPES = {
    "Byte": np.uint8, "Char": np.int8, "Short": np.int16, "Int": np.int32, "Long": np.int64,
    "Float": np.float32, "Double": np.float64, "Cuda": np.float32, "CudaByte": np.uint8, "CudaChar": np.int8,
    "CudaShort": np.int16, "CudaInt": np.int32, "CudaLong": np.int64, "CudaDouble": np.float64,
}  # fmt: skip


def tf_checkpoint_prefix(src: Path) -> Path:
    """The checkpoint prefix of a directory (its `checkpoint` file, else its only *.index) or of a file
    of the checkpoint (.index, .meta, .data-*)."""
    if src.is_dir():
        index = sorted(src.glob("*.index"))
        marker = src / "checkpoint"
        if marker.is_file():
            for line in marker.read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "model_checkpoint_path":
                    prefix = Path(value.strip().strip('"'))
                    return prefix if prefix.is_absolute() else src / prefix.name
        if len(index) == 1:
            return index[0].with_suffix("")
        raise InpaintError(f"{src}: no TensorFlow checkpoint in it (no `checkpoint` file, {len(index)} .index files)")
    if src.suffix in (".index", ".meta"):
        return src.with_suffix("")
    if ".data-" in src.name:
        return src.with_name(src.name.split(".data-")[0])
    return src


def tf_checkpoint_files(prefix: Path) -> list[Path]:
    """The files of the checkpoint `prefix` that hold its variables: the .index, then its data shards."""
    return [Path(f"{prefix}.index"), *sorted(prefix.parent.glob(f"{glob.escape(prefix.name)}.data-*"))]


def read_tf_checkpoint(src: Path) -> tuple[dict[str, Any], list[Path]]:
    """Every variable of a TF1 checkpoint as numpy arrays, and the files read (for their sha256)."""
    from . import optional_import

    tf = optional_import("tensorflow")
    prefix = tf_checkpoint_prefix(src)
    index = Path(f"{prefix}.index")
    if not index.is_file():
        raise InpaintError(f"{prefix}: no {index.name}; pass the checkpoint directory or its prefix")
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        names = reader.get_variable_to_shape_map()
        variables = {name: reader.get_tensor(name) for name in names}
    except Exception as e:  # TF raises its own error types (DataLossError, NotFoundError, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InpaintError(f"{prefix}: not a readable TensorFlow checkpoint ({first})") from None
    return variables, tf_checkpoint_files(prefix)


def read_torch_state_dict(src: Path) -> dict[str, Any]:
    """A PyTorch state dict (name -> tensor) read with weights_only=True; anything else is refused."""
    import pickle

    import torch

    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InpaintError(f"{src}: not a plain PyTorch state dict ({first[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InpaintError(f"{src}: expected a state dict (name -> tensor), got {type(state).__name__}")
    return state


def _read_t7_storage(dtype: Any) -> Any:
    def read(reader: Any, version: Any) -> np.ndarray:
        size = reader.read_long()
        itemsize = np.dtype(dtype).itemsize
        left = os.fstat(reader.f.fileno()).st_size - reader.f.tell()
        if not 0 <= size <= left // itemsize:
            raise ValueError(f"a storage of {size} elements, past the end of the file")
        return np.frombuffer(reader.f.read(size * itemsize), dtype=dtype)

    return read


def _read_t7_tensor(dtype: Any) -> Any:
    def read(reader: Any, version: Any) -> np.ndarray:
        ndim = reader.read_int()
        if not 0 <= ndim <= _MAX_TENSOR_DIMS:
            raise ValueError(f"a tensor with {ndim} dimensions")
        size = reader.read_long_array(ndim)
        stride = reader.read_long_array(ndim)
        offset = reader.read_long() - 1  # 1-based in the file
        storage = reader.read_obj()
        if storage is None or ndim == 0:
            return np.empty(0, dtype=dtype)
        if not isinstance(storage, np.ndarray) or storage.dtype != np.dtype(dtype):
            raise ValueError(f"a {np.dtype(dtype).name} tensor on a storage of another type")
        if min(size) < 0 or min(stride) < 0 or offset < 0:
            raise ValueError(f"a tensor of size {size}, stride {stride}, offset {offset + 1}")
        if 0 in size:
            return np.empty(size, dtype=dtype)
        last = offset + sum((n - 1) * step for n, step in zip(size, stride, strict=True))
        if last >= storage.size:
            raise ValueError(f"a tensor of size {size} reaching past its storage of {storage.size}")
        itemsize = storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage[offset:], shape=size, strides=[step * itemsize for step in stride], writeable=False
        )
        return np.array(view)  # a copy: tensors sharing a storage must not alias

    return read


def read_t7(src: Path) -> Any:
    """The object a Lua Torch `torch.save` wrote (binary, little-endian, 8-byte longs): tables as dicts
    (lists when keyed 1..n), torch classes as `torchfile.TorchObject`, tensors as numpy arrays."""
    from . import optional_import

    torchfile = optional_import("torchfile")
    for name, dtype in _T7_DTYPES.items():
        torchfile.type_handlers[f"torch.{name}Storage".encode()] = _read_t7_storage(dtype)
        torchfile.type_handlers[f"torch.{name}Tensor".encode()] = _read_t7_tensor(dtype)

    class Reader(torchfile.T7Reader):  # type: ignore[misc,name-defined]
        # Longs are 8 bytes in the files Torch wrote on 64-bit Linux and macOS, whatever this platform's C long.
        def read_long(self) -> int:
            return int(struct.unpack("<q", self.f.read(8))[0])

        def read_long_array(self, n: int) -> list[int]:
            return [self.read_long() for _ in range(n)]

    try:
        with open(src, "rb") as f:
            return Reader(f, utf8_decode_strings=True).read_obj()
    except OSError as e:
        raise InpaintError(f"{src}: cannot read it ({e.strerror or e})") from None
    except (struct.error, ValueError, TypeError, KeyError, NotImplementedError, RecursionError, MemoryError,
            torchfile.T7ReaderException) as e:  # fmt: skip
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        if isinstance(e, struct.error):
            reason = "it ends early"
        raise InpaintError(f"{src}: not a readable Lua Torch (.t7) file ({reason})") from None
