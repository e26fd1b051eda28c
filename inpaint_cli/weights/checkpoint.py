"""The checkpoint file format: a safetensors file whose metadata carries everything needed to rebuild
the network.

Metadata keys: "format" ("inpaint-cli/1"), "arch", "config" (JSON of the model's arch_config),
"provenance" (JSON, free-form) and, when there are any, "extra_tensors" (JSON list of names saved
beside the model's own, e.g. an EMA copy). Pickles are never loaded: a .pt/.pth/.ckpt file can run
arbitrary code when unpickled, so the header is sniffed and such files get a one-line refusal.

torch and safetensors.torch are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InpaintError, first_line

CHECKPOINT_FORMAT = "inpaint-cli/1"
# Suffixes that almost always mean a pickle; they are refused unless the bytes are really safetensors.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")
# A safetensors header larger than this is certainly not one (the format itself caps it at 100 MB).
_MAX_HEADER = 100_000_000


@dataclass
class Checkpoint:
    path: Path
    arch: str
    config: dict[str, Any]
    state_dict: dict[str, Any]
    metadata: dict[str, str]
    provenance: dict[str, Any]
    # Tensors saved beside the model's (EMA copies, optimiser-free extras); never fed to load_state_strict.
    extra_tensors: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any,
    *,
    provenance: dict[str, Any] | None = None,
    dtype: Any = None,
    extra_tensors: dict[str, Any] | None = None,
) -> None:
    """Write `model` (an InpaintModel, or a Checkpoint from `read_checkpoint`) as an inpaint safetensors
    checkpoint, atomically.

    dtype (e.g. torch.float16) casts floating tensors only, to ship smaller files.
    """
    from safetensors.torch import save

    path = Path(path)
    extra_tensors = dict(extra_tensors or {})
    if isinstance(model, Checkpoint):
        arch, config, state = model.arch, model.config, dict(model.state_dict)
    else:
        arch, config, state = model.arch_name, model.arch_config, dict(model.state_dict())
    clash = sorted(set(state) & set(extra_tensors))
    if clash:
        raise InpaintError(
            f"{path}: extra tensor names {clash[:5]} clash with the model's parameters; rename them"
        )

    tensors: dict[str, Any] = {}
    seen: set[int] = set()
    for name, tensor in {**state, **extra_tensors}.items():
        t = tensor.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        # safetensors refuses tensors sharing storage (tied weights, views): give each its own copy.
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen or t.numel() * t.element_size() != t.untyped_storage().nbytes():
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        tensors[name] = t.contiguous()

    try:
        metadata = {
            "format": CHECKPOINT_FORMAT,
            "arch": arch,
            "config": json.dumps(config, sort_keys=True),
            "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
        }
    except TypeError as e:
        raise InpaintError(f"{path}: the {arch} config is not JSON-serialisable ({e})") from None
    if extra_tensors:
        metadata["extra_tensors"] = json.dumps(sorted(extra_tensors))

    from ..io import write_atomic

    # Serialised in memory and written by io.write_atomic: safetensors' save_file would create a 0600
    # file in place, and checkpoints are meant to be shared and never seen half-written.
    write_atomic(path, save(tensors, metadata=metadata))


def _pickle_message(path: Path) -> str:
    return (
        f"{path} is a pickled PyTorch checkpoint; inpaint loads only safetensors (pickles can run code). "
        f"Convert it with a trusted script: torch.load + safetensors.torch.save_file"
    )


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The safetensors header's metadata, read without torch (and without unpickling anything)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a checkpoint file" if path.is_dir() else "does not exist"
        raise InpaintError(f"{path} {what}; check the path or pick a model from `inpaint models list`")
    # The safetensors header is parsed first: its first 8 bytes are a little-endian length, so about one
    # real file in 256 starts with 0x80 (or "PK") and must not be taken for a pickle by its signature.
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = path.stat().st_size
            header = None
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                if 1 < n <= min(size - 8, _MAX_HEADER):
                    header = f.read(n)
    except OSError as e:
        raise InpaintError(f"cannot read {path}: {e.strerror}") from None

    parsed: Any = None
    if header is not None and header.startswith(b"{"):
        try:
            parsed = json.loads(header)
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = None
    if not isinstance(parsed, dict):
        # Not safetensors: only now do the pickle / zip (torch.save) signatures pick the message.
        if head.startswith((b"\x80", b"PK")) or path.suffix.lower() in PICKLE_SUFFIXES:
            raise InpaintError(_pickle_message(path))
        raise InpaintError(
            f"{path} is not a safetensors file; pass a .safetensors checkpoint written by inpaint"
        )
    metadata = parsed.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise InpaintError(f"{path} has a malformed safetensors header; re-save or re-download it")
    return {str(k): str(v) for k, v in metadata.items()}


def read_checkpoint(path: str | os.PathLike[str], *, expected_arch: str | None = None) -> Checkpoint:
    """Read and validate an inpaint checkpoint (state dict + arch/config/provenance)."""
    path = Path(path)
    metadata = read_checkpoint_metadata(path)
    arch = metadata.get("arch")
    if not arch:
        raise InpaintError(
            f"{path} has no arch metadata; it was not written by inpaint (load its tensors into a model "
            f"built with registry.create_model and re-save it with inpaint_cli.weights.save_checkpoint)"
        )
    fmt = metadata.get("format", CHECKPOINT_FORMAT)
    if fmt != CHECKPOINT_FORMAT:
        raise InpaintError(
            f"{path} has checkpoint format {fmt!r}; this inpaint reads {CHECKPOINT_FORMAT}, upgrade it"
        )
    if expected_arch is not None and arch != expected_arch:
        raise InpaintError(
            f"{path} is a {arch} checkpoint, not {expected_arch}; pick a {expected_arch} checkpoint "
            f"or use --model {arch}"
        )

    def json_field(key: str, kind: type) -> Any:
        try:
            value = json.loads(metadata.get(key, "{}" if kind is dict else "[]"))
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, kind):
            raise InpaintError(
                f"{path}: metadata {key!r} is not a JSON {kind.__name__}; re-save the checkpoint"
            )
        return value

    config = json_field("config", dict)
    provenance = json_field("provenance", dict)
    extra_names = json_field("extra_tensors", list)

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise InpaintError(
            f"{path} is a damaged safetensors file ({first_line(e)}); re-download or re-save it"
        ) from None
    extra = {name: tensors.pop(name) for name in extra_names if name in tensors}
    return Checkpoint(path, arch, config, tensors, metadata, provenance, extra)


def _some(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return f"{len(names)} ({shown}{', ...' if len(names) > limit else ''})"


def load_state_strict(model: Any, state_dict: dict[str, Any], *, source: str) -> None:
    """Load every tensor, exactly: missing/unexpected keys or wrong shapes are a one-line InpaintError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected {_some(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch (file vs model) {_some(shapes, 2)}")
    if problems:
        arch = getattr(model, "arch_name", type(model).__name__)
        raise InpaintError(
            f"{source} does not fit the {arch} model: {'; '.join(problems)}; "
            f"it was saved from a different architecture or config"
        )
    # fp16 files load into fp32 models (and back): match each tensor to the model's own dtype.
    cast = {
        k: v.to(own[k].dtype) if v.is_floating_point() and own[k].is_floating_point() else v
        for k, v in state_dict.items()
    }
    model.load_state_dict(cast, strict=True)
