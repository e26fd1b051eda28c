"""Readers of the released file formats, each returning plain name -> numpy array dicts.

- TF1 checkpoints (name-based, `tf.train.Saver`): through TensorFlow's own checkpoint reader.
- PyTorch state dicts: `torch.load(weights_only=True)` only, which unpickles tensors and plain
  containers and refuses any other object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InpaintError


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
    files = [index, *sorted(prefix.parent.glob(f"{prefix.name}.data-*"))]
    return variables, files


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
