"""What a learned checkpoint must do before it is worth shipping: fill a hole in a flat colour (grey, sky
blue, grass green, skin, a saturated red) and in a sky-like colour gradient within 2 levels, and a 1-px
scratch within 4 (mean absolute error over the hole, 8-bit levels, 256² images, an 80² box for the flats),
filled as `inpaint fill` fills them (with its default border matching).
OpenCV's Telea meets all of them (0.9 levels on the flats, 1.4 on the sky gradient); every bundled
checkpoint is held to them.

SHORT_OF_THE_BAR lists, per checkpoint, the cases it is known to miss (its errors measured when the list
was written are in the comments). The test asserts that a checkpoint misses exactly those: a retrained
one that passes a listed case makes this file fail until the entry is trimmed, and a new miss fails at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inpaint_cli import Inpainter, load_model
from inpaint_cli.weights import read_toml  # tomllib from Python 3.11 on, tomli before

CATALOG = Path(__file__).resolve().parents[1] / "weights.toml"
# Measured 2026-12-07 (mean hole error in levels) with the engine's default border matching (`--blend
# harmonic`); without it, every checkpoint missed sky, grass, red and the sky gradient, by up to 43 levels.
# What is left is inside the hole: a blotch or texture the network puts on a flat, which the border does not pin.
SHORT_OF_THE_BAR: dict[str, set[str]] = {
    # grey 2.3 / 1.2 / 1.7, sky 7.6, grass 1.4, skin 1.2, red 2.8, sky gradient 2.4, scratch 0.2
    "context_encoder.campaign-128": {"grey 0.2", "sky", "red", "sky gradient"},
    # deepfill_v1: grey 0.8 / 1.0 / 1.1, sky 0.9, grass 1.3, skin 1.3, red 0.9, sky gradient 1.0, scratch 0.0
    # deepfill_v2: grey 0.5 / 0.6 / 0.2, sky 1.5, grass 1.6, skin 0.6, red 1.6, sky gradient 1.4, scratch 0.0
    # grey 5.3 / 2.4 / 2.1, sky 6.1, grass 5.2, skin 3.2, red 4.5, sky gradient 5.1, scratch 0.7
    "glcic.campaign-128": {"grey 0.2", "grey 0.5", "grey 0.8", "sky", "grass", "skin", "red", "sky gradient"},
    # grey 1.4 / 1.5 / 1.4, sky 2.6, grass 2.0, skin 2.1, red 3.2, sky gradient 1.6, scratch 0.2
    "piigan.campaign-128": {"sky", "skin", "red"},
}
SIDE = 256
MARGIN = 0.1  # grey levels either side of a bar where a case counts neither as a new miss nor as a pass
# 8-bit sRGB values of colours users' photos are full of.
COLOURS = {"sky": (135, 206, 235), "grass": (88, 138, 60), "skin": (226, 180, 150), "red": (200, 30, 40)}


def bundled() -> list[str]:
    entries = read_toml(CATALOG, "the catalog", "")["models"]
    return sorted(name for name, entry in entries.items() if str(entry.get("source", "")).startswith("bundled:"))


def _square(side: int) -> np.ndarray:
    hole = np.zeros((SIDE, SIDE), bool)
    start = (SIDE - side) // 2
    hole[start : start + side, start : start + side] = True
    return hole


def cases() -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(name, image, hole, allowed mean error in grey levels). Telea's error on a gradient grows with the
    hole's width (2.9 levels in an 80² box on the sky ramp below, 1.4 in a 32² one), so the gradient gets
    the 32² box."""
    box = _square(80)
    scratch = np.zeros((SIDE, SIDE), bool)
    scratch[40:216, 140] = True  # a vertical 1-px scratch across a steep ramp

    def ramp(low: float, high: float) -> np.ndarray:
        values = np.linspace(low, high, SIDE, dtype=np.float32)
        return np.broadcast_to(values[None, :, None], (SIDE, SIDE, 3)).copy()

    def flat(rgb: tuple[int, int, int]) -> np.ndarray:
        return np.broadcast_to(np.array(rgb, np.float32) / 255, (SIDE, SIDE, 3)).copy()

    found = [(f"grey {grey}", np.full((SIDE, SIDE, 3), grey, np.float32), box, 2.0) for grey in (0.2, 0.5, 0.8)]
    found += [(name, flat(rgb), box, 2.0) for name, rgb in COLOURS.items()]
    height = np.linspace(0, 1, SIDE, dtype=np.float32)[:, None, None]
    zenith, horizon = np.array([60, 120, 200], np.float32) / 255, np.array([190, 220, 240], np.float32) / 255
    sky = np.broadcast_to(zenith + (horizon - zenith) * height, (SIDE, SIDE, 3)).copy()
    found.append(("sky gradient", sky, _square(32), 2.0))
    found.append(("scratch", ramp(0.1, 0.9), scratch, 4.0))
    return found


def hole_error_levels(name: str, image: np.ndarray, hole: np.ndarray) -> float:
    filled = Inpainter(load_model(name)).fill(image, hole, seed=0).rgb
    return float(np.abs(filled[hole] - image[hole]).mean() * 255.0)


def test_telea_meets_the_bar() -> None:
    for case, image, hole, allowed in cases():
        assert hole_error_levels("telea", image, hole) < allowed, case


@pytest.mark.parametrize("name", bundled())
def test_bundled_checkpoint_meets_the_bar(name: str) -> None:
    errors = {case: hole_error_levels(name, image, hole) for case, image, hole, _ in cases()}
    allowed = {case: limit for case, _, _, limit in cases()}
    # Within MARGIN of the bar a case may fall either way (PiiGAN's grass is 1.99 here): another CPU's
    # float rounding must not flip it.
    misses = {case for case, error in errors.items() if error > allowed[case] + MARGIN}
    passes = {case for case, error in errors.items() if error <= allowed[case] - MARGIN}
    measured = {case: round(error, 2) for case, error in errors.items()}
    known = SHORT_OF_THE_BAR.get(name, set())
    assert not misses - known, f"{name}: mean hole error in grey levels above the bar: {measured}"
    assert not known & passes, f"{name} now passes {sorted(known & passes)}: trim SHORT_OF_THE_BAR ({measured})"
