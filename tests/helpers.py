"""Small helpers shared by the model tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
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


def fill_random_image(run_cli: Callable[[list[str]], int], model: str) -> int:
    """Write a random 64² image (in.png) and a 20² box mask (mask.png) into the working directory, fill them
    with `inpaint fill --model MODEL --out o.png` and return the exit code."""
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 255
    cv2.imwrite("in.png", image)
    cv2.imwrite("mask.png", mask)
    return run_cli(["fill", "in.png", "--mask", "mask.png", "--model", model, "--out", "o.png"])
