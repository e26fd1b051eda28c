"""What a learned checkpoint must do before it is worth shipping: reproduce a flat colour and a linear
gradient in a hole within 2 grey levels, and a 1-px scratch within 4 (mean absolute error over the hole,
8-bit levels). OpenCV's Telea meets all three (under 1 level); every bundled checkpoint is held to them.

The checkpoints bundled before the campaign's retraining miss them (10-14 levels on flat colours); they are
listed in SHORT_OF_THE_BAR as strict expected failures, so a retrained one that passes makes this file fail
until its entry is removed, and a new checkpoint that misses the bar fails at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inpaint_cli import Inpainter, load_model
from inpaint_cli.weights import read_toml  # tomllib from Python 3.11 on, tomli before

CATALOG = Path(__file__).resolve().parents[1] / "weights.toml"
SHORT_OF_THE_BAR = {  # remove an entry when its checkpoint is replaced by one that passes
    "context_encoder.campaign-128",
    "glcic.campaign-128",
    "piigan.campaign-128",
}
SIDE = 128


def bundled() -> list[str]:
    entries = read_toml(CATALOG, "the catalog", "")["models"]
    return sorted(name for name, entry in entries.items() if str(entry.get("source", "")).startswith("bundled:"))


def cases() -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(name, image, hole, allowed mean error in grey levels). Telea's own errors (8-bit quantisation
    included): flat ~0.9, gradient ~1.1, scratch ~1.0; its error on a gradient grows with the hole's width
    (6.6 levels in a 40² box on a 0.1-0.9 ramp), so the gradient is a slow sky-like ramp in a 24² box."""
    box = np.zeros((SIDE, SIDE), bool)
    box[44:84, 44:84] = True
    small_box = np.zeros((SIDE, SIDE), bool)
    small_box[52:76, 52:76] = True
    scratch = np.zeros((SIDE, SIDE), bool)
    scratch[20:108, 70] = True  # a vertical 1-px scratch across a steep ramp

    def ramp(low: float, high: float) -> np.ndarray:
        values = np.linspace(low, high, SIDE, dtype=np.float32)
        return np.broadcast_to(values[None, :, None], (SIDE, SIDE, 3)).copy()

    found = [(f"flat {grey}", np.full((SIDE, SIDE, 3), grey, np.float32), box, 2.0) for grey in (0.2, 0.5, 0.8)]
    found.append(("gradient", ramp(0.4, 0.6), small_box, 2.0))
    found.append(("scratch", ramp(0.1, 0.9), scratch, 4.0))
    return found


def hole_error_levels(name: str, image: np.ndarray, hole: np.ndarray) -> float:
    filled = Inpainter(load_model(name)).fill(image, hole, seed=0).rgb
    return float(np.abs(filled[hole] - image[hole]).mean() * 255.0)


def test_telea_meets_the_bar() -> None:
    for case, image, hole, allowed in cases():
        assert hole_error_levels("telea", image, hole) < min(allowed, 1.5), case


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="short of the bar: see SHORT_OF_THE_BAR"))
        if n in SHORT_OF_THE_BAR
        else n
        for n in bundled()
    ],
)
def test_bundled_checkpoint_meets_the_bar(name: str) -> None:
    errors = {case: hole_error_levels(name, image, hole) for case, image, hole, _ in cases()}
    allowed = {case: limit for case, _, _, limit in cases()}
    misses = {case: round(error, 2) for case, error in errors.items() if error > allowed[case]}
    assert not misses, f"{name}: mean hole error in grey levels above the bar: {misses}"
