"""Border matching (`inpaint_cli.border_blend`): the multigrid-preconditioned solve against a dense solve of
the same equations, colour casts on flats removed exactly, known pixels untouched, and the engine's
default (harmonic for networks, none for the classical fills)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaint_cli import Inpainter, load_model
from inpaint_cli.border_blend import match_border
from inpaint_cli.registry import create_model, get_arch

# 8-bit sRGB colours users' photos are full of, as in tests/test_shipped_checkpoints.py.
FLATS = {"sky": (135, 206, 235), "grass": (88, 138, 60), "skin": (226, 180, 150), "red": (200, 30, 40)}
NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def dense_reference(image: np.ndarray, prediction: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The blended fill from the module's equations, built pixel by pixel and solved densely:
    Σ_q∈N(p) (f_p − f_q) = Σ_q∈N(p)∩hole (pred_p − pred_q) with f_q = image_q off the hole."""
    height, width = hole.shape
    pixels = list(zip(*np.nonzero(hole), strict=True))
    index = {pixel: i for i, pixel in enumerate(pixels)}
    matrix = np.zeros((len(pixels), len(pixels)))
    rhs = np.zeros((len(pixels), 3))
    for i, (y, x) in enumerate(pixels):
        for dy, dx in NEIGHBOURS:
            qy, qx = y + dy, x + dx
            if not (0 <= qy < height and 0 <= qx < width):
                continue
            matrix[i, i] += 1
            if hole[qy, qx]:
                matrix[i, index[(qy, qx)]] -= 1
                rhs[i] += prediction[y, x] - prediction[qy, qx]
            else:
                rhs[i] += image[qy, qx]
    out = prediction.astype(np.float64).copy()
    out[hole] = np.linalg.solve(matrix, rhs)
    return out.clip(0, 1)


def random_hole(rng: np.random.Generator, side: int) -> np.ndarray:
    """A box, a blob touching the image's edge and scattered single pixels."""
    hole = np.zeros((side, side), bool)
    hole[side // 5 : side // 2, side // 4 : side * 3 // 4] = True
    yy, xx = np.mgrid[:side, :side]
    hole |= (yy - side) ** 2 + (xx - side // 3) ** 2 < (side // 4) ** 2
    hole |= rng.random((side, side)) < 0.03
    return hole


@pytest.mark.parametrize("side", [20, 64])  # 64: the V-cycle goes three grids deep
def test_matches_a_dense_solve_of_the_equations(side):
    rng = np.random.default_rng(side)
    image = rng.random((side, side, 3)).astype(np.float32)
    prediction = (0.3 + 0.4 * rng.random((side, side, 3))).astype(np.float32)
    hole = random_hole(rng, side)
    blended = match_border(image, prediction, hole)
    reference = dense_reference(image, prediction, hole)
    assert np.abs(blended - reference)[hole].max() < 2e-4  # a twentieth of a grey level
    assert np.array_equal(blended[~hole], prediction[~hole])  # known pixels are never touched
    assert blended.dtype == np.float32


@pytest.mark.parametrize("colour", FLATS.values(), ids=FLATS.keys())
def test_a_colour_cast_on_a_flat_is_removed(colour):
    """A fill 12 levels too red, 20 too dark in green and with a 6-level bump comes out as the flat: the
    cast is the whole error, and the bump, a gradient of the prediction's own, is kept only where the
    flat's border does not pin it (nowhere here: it is smaller than the hole and the cast dominates)."""
    side = 96
    flat = np.broadcast_to(np.array(colour, np.float32) / 255, (side, side, 3)).copy()
    hole = np.zeros((side, side), bool)
    hole[24:72, 30:78] = True
    prediction = flat + np.array([12, -20, 0], np.float32) / 255
    error_before = np.abs(prediction - flat)[hole].mean() * 255
    blended = match_border(flat, prediction, hole)
    assert error_before > 10
    assert np.abs(blended - flat)[hole].max() * 255 < 0.05


def test_the_fill_keeps_its_own_detail():
    """Texture inside the hole (a checker the known pixels know nothing of) survives: only the offset
    the border pins down moves."""
    side = 80
    flat = np.full((side, side, 3), 0.5, np.float32)
    hole = np.zeros((side, side), bool)
    hole[20:60, 20:60] = True
    yy, xx = np.mgrid[:side, :side]
    checker = (((yy // 4) + (xx // 4)) % 2 * 0.1 - 0.05).astype(np.float32)[..., None]
    prediction = flat + 0.08 + checker
    blended = match_border(flat, prediction, hole)
    inner = np.zeros_like(hole)
    inner[30:50, 30:50] = True  # away from the border, where the harmonic correction is nearly flat
    detail_before = prediction[inner] - prediction[inner].mean(axis=0)
    detail_after = blended[inner] - blended[inner].mean(axis=0)
    assert np.abs(detail_after - detail_before).max() < 0.01
    assert abs(blended[inner].mean() - 0.5) < 0.02  # the 0.08 cast is gone


def test_nothing_to_match_returns_the_prediction():
    rng = np.random.default_rng(0)
    image, prediction = rng.random((2, 16, 16, 3)).astype(np.float32)
    assert match_border(image, prediction, np.zeros((16, 16), bool)) is prediction
    assert match_border(image, prediction, np.ones((16, 16), bool)) is prediction


def test_the_engine_blends_networks_by_default_and_not_classical_fills():
    image = np.broadcast_to(np.array(FLATS["grass"], np.float32) / 255, (64, 64, 3)).copy()
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    torch.manual_seed(0)
    network = create_model("deepfill_v1", **get_arch("deepfill_v1").cls.small_config)  # untrained
    assert Inpainter(network).blend == "harmonic"
    assert Inpainter(load_model("telea")).blend == "none"
    raw = Inpainter(network, blend="none").fill(image, hole).rgb
    blended = Inpainter(network).fill(image, hole).rgb
    # An untrained network is far off the flat; blended, only its own gradients inside the hole remain.
    raw_error = np.abs(raw - image)[hole].mean()
    assert np.abs(blended - image)[hole].mean() < raw_error / 2
    assert np.array_equal(blended[~hole], image[~hole])
    with pytest.raises(ValueError, match="blend must be one of"):
        Inpainter(network, blend="poisson")
