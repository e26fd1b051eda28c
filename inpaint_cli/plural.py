"""Pluralistic filling: several plausible fills of one hole from a model that samples (PiiGAN)."""

from __future__ import annotations

import itertools

import numpy as np

from .engine import FillResult, Inpainter, Strategy
from .errors import UsageError
from .grid import contact_sheet, masked_input


def check_can_sample(inpainter: Inpainter, name: str) -> None:
    if not inpainter.contract.can_sample:
        raise UsageError(
            f"{name} gives one answer per hole and cannot sample; use a model with sample=yes in "
            "`inpaint models list` (piigan)"
        )


def sample_fills(
    inpainter: Inpainter, rgb: np.ndarray, mask: np.ndarray, n: int, seed: int, strategy: Strategy = "auto"
) -> list[FillResult]:
    """n fills; sample i is drawn with seed + i, so any one of them can be reproduced alone."""
    return [inpainter.fill(rgb, mask, strategy=strategy, seed=seed + i) for i in range(n)]


def hole_diversity(samples: list[np.ndarray], mask: np.ndarray) -> float:
    """Mean pairwise L1 distance between samples over the hole pixels, on the [0, 1] scale
    (0 = identical answers; the mean absolute difference of two unrelated images is about 0.2-0.3)."""
    if len(samples) < 2 or not mask.any():
        return 0.0
    holes = [sample[mask] for sample in samples]
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(holes, 2)]))


def plural_sheet(rgb: np.ndarray, mask: np.ndarray, samples: list[np.ndarray], seed: int) -> np.ndarray:
    """Input, mask and masked input, then the samples (captioned with their seeds), eight per row."""
    per_row = 8
    rows: list[list[np.ndarray]] = [[rgb, mask, masked_input(rgb, mask)]]
    captions: list[list[str]] = [["input", "mask", "masked input"]]
    for start in range(0, len(samples), per_row):
        rows.append(samples[start : start + per_row])
        captions.append([f"seed {seed + i}" for i in range(start, min(start + per_row, len(samples)))])
    return contact_sheet(rows, captions=captions)
