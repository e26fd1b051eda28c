"""Small helpers shared by the model tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def box_mask(batch: int, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) with one off-centre rectangular hole: a quarter-ish of the image."""
    mask = torch.zeros(batch, 1, height, width)
    mask[..., height // 4 : height // 2 + 4, width // 4 : width // 2 + 8] = 1.0
    return mask


class TouchOnUnpickle:
    """Unpickling this creates `marker`: proof that a loader ran the pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def write_live_pickle(path: Path, marker: Path) -> Path:
    """A .pth-style pickle at `path` that creates `marker` if anything ever unpickles it."""
    path.write_bytes(pickle.dumps(TouchOnUnpickle(marker)))
    return path
