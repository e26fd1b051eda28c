"""inpaint_cli.metrics against known values and an independent brute-force SSIM."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from inpaint_cli import metrics


@pytest.fixture
def textured() -> np.ndarray:
    """A 40×48 RGB image with structure at several scales, in [0.2, 0.8] (room for a ±0.1 shift)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:40, 0:48].astype(np.float64)
    smooth = 0.5 + 0.15 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None] * np.array([1.0, 0.6, -0.8])
    noise = rng.uniform(-0.15, 0.15, size=(40, 48, 3))
    return np.clip(smooth + noise, 0.2, 0.8)


def _hole(height: int = 40, width: int = 48) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[12:28, 14:34] = True  # ≥ 5 px from every border: no window there touches the reflected padding
    return mask


def _brute_force_ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Wang et al.'s SSIM at every pixel whose 11×11 window fits, by explicit weighted sums (NaN elsewhere)."""
    radius = 5
    offsets = np.arange(-radius, radius + 1)
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    height, width, channels = x.shape
    out = np.full((height, width), np.nan)
    for i in range(radius, height - radius):
        for j in range(radius, width - radius):
            values = []
            for c in range(channels):
                px = x[i - radius : i + radius + 1, j - radius : j + radius + 1, c]
                py = y[i - radius : i + radius + 1, j - radius : j + radius + 1, c]
                mx, my = (window * px).sum(), (window * py).sum()
                vx, vy = (window * (px - mx) ** 2).sum(), (window * (py - my) ** 2).sum()
                cov = (window * (px - mx) * (py - my)).sum()
                values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
            out[i, j] = np.mean(values)
    return out


def test_identical_images(textured: np.ndarray) -> None:
    assert metrics.psnr(textured, textured) == float("inf")
    assert metrics.psnr(textured, textured, _hole()) == float("inf")
    assert metrics.ssim(textured, textured) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(textured, textured, _hole()) == pytest.approx(1.0, abs=1e-12)
    assert metrics.l1(textured, textured) == 0.0
    assert metrics.l2(textured, textured) == 0.0
    assert metrics.gradient_ratio(textured, textured, _hole()) == pytest.approx(1.0)


def test_constant_offset(textured: np.ndarray) -> None:
    shifted = textured + 0.1
    assert metrics.l1(shifted, textured) == pytest.approx(0.1, abs=1e-12)
    assert metrics.l2(shifted, textured) == pytest.approx(0.01, abs=1e-12)
    assert metrics.psnr(shifted, textured) == pytest.approx(20.0, abs=1e-9)
    assert metrics.psnr(shifted * 255, textured * 255, data_range=255.0) == pytest.approx(20.0, abs=1e-9)


def test_ssim_of_shifted_constant_is_the_luminance_term() -> None:
    # Both images flat: variances and covariance vanish, so SSIM = (2ab + C1) / (a² + b² + C1) exactly.
    a, b = 0.3, 0.45
    x = np.full((24, 24, 3), a)
    y = np.full((24, 24, 3), b)
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert metrics.ssim(x, y) == pytest.approx(expected, abs=1e-12)
    assert metrics.ssim(x, y, _hole(24, 24)) == pytest.approx(expected, abs=1e-12)
    assert expected < 0.97  # the test can tell a luminance-only difference from identity


def test_ssim_matches_brute_force(textured: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    noisy = np.clip(textured + rng.normal(0, 0.08, textured.shape), 0, 1)
    reference = _brute_force_ssim_map(noisy, textured)
    valid = reference[5:-5, 5:-5]
    assert metrics.ssim(noisy, textured) == pytest.approx(valid.mean(), abs=1e-9)
    hole = _hole()
    assert metrics.ssim(noisy, textured, hole) == pytest.approx(reference[hole].mean(), abs=1e-9)
    assert 0.2 < metrics.ssim(noisy, textured) < 0.95


def test_ssim_orders_distortions(textured: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    scores = [
        metrics.ssim(np.clip(textured + rng.normal(0, sigma, textured.shape), 0, 1), textured)
        for sigma in (0.01, 0.05, 0.2)
    ]
    assert scores[0] > scores[1] > scores[2]


def test_masked_metrics_score_only_the_hole(textured: np.ndarray) -> None:
    hole = _hole()
    damaged = textured.copy()
    damaged[hole] += 0.05
    damaged[0, 0] = 1.0  # outside the hole: must not count
    assert metrics.l1(damaged, textured, hole) == pytest.approx(0.05, abs=1e-12)
    assert metrics.l2(damaged, textured, hole) == pytest.approx(0.0025, abs=1e-12)
    assert metrics.psnr(damaged, textured, hole) == pytest.approx(10 * math.log10(1 / 0.0025), abs=1e-9)
    # The unmasked error also sees the corner pixel and the smaller hole share.
    assert metrics.l1(damaged, textured) != pytest.approx(0.05)
    outside = ~hole
    outside[0, 0] = False
    assert metrics.l1(damaged, textured, outside) == 0.0


def test_gradient_ratio_detects_blur(textured: np.ndarray) -> None:
    hole = _hole()
    blurred = textured.copy()
    blurred[hole] = cv2.GaussianBlur(textured, (0, 0), 4.0)[hole]
    assert metrics.gradient_ratio(blurred, textured, hole) < 0.5
    flat = np.full_like(textured, 0.5)
    assert metrics.gradient_ratio(flat, flat, hole) == pytest.approx(1.0)
    assert math.isfinite(metrics.gradient_ratio(textured, flat, hole))


def test_bad_inputs_are_rejected(textured: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        metrics.l1(textured, textured[:10])
    with pytest.raises(ValueError, match="no pixels"):
        metrics.psnr(textured, textured, np.zeros(textured.shape[:2], bool))
    with pytest.raises(ValueError, match="does not match"):
        metrics.ssim(textured, textured, np.ones((3, 3), bool))


# ------------------------------------------------------------------------------------ texture_distance


def _stone_texture(seed: int, size: int = 96) -> np.ndarray:
    """A stationary texture: random oriented gratings plus fine grain, the same statistics for every seed
    (a new seed is another piece of the same material)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    texture = np.zeros((size, size))
    for frequency, angle in zip((0.35, 0.6, 0.9, 1.4), (0.3, 1.2, 2.0, 2.7), strict=True):
        phase = rng.uniform(0, 2 * np.pi)
        texture += np.sin(frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase)
    texture = 0.08 * texture + rng.normal(0, 0.04, (size, size))
    return np.clip(0.5 + texture[..., None] * np.array([1.0, 0.8, 0.6]), 0, 1)


def _box(size: int = 96) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[28:68, 28:68] = True
    return mask


def test_laplacian_pyramid_rebuilds_the_image(textured: np.ndarray) -> None:
    levels = metrics.laplacian_pyramid(textured)
    assert len(levels) == metrics.TEXTURE_LEVELS
    assert [level.shape[:2] for level in levels] == [(40, 48), (20, 24), (10, 12)]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = cv2.pyrUp(rebuilt, dstsize=band.shape[1::-1], borderType=cv2.BORDER_REFLECT101) + band
    np.testing.assert_allclose(rebuilt, textured, atol=1e-12)


def test_patches_match_explicit_slicing(textured: np.ndarray) -> None:
    rows, cols = np.array([0, 5, 39]), np.array([47, 10, 0])
    patches = metrics._patches_at(textured, rows, cols)
    padded = np.pad(textured, ((3, 3), (3, 3), (0, 0)), mode="reflect")
    for patch, row, col in zip(patches, rows, cols, strict=True):
        np.testing.assert_array_equal(patch, padded[row : row + 7, col : col + 7].reshape(-1))


def test_sliced_w1_of_shifted_sets_is_the_projected_shift() -> None:
    points = np.random.default_rng(1).normal(size=(200, 147))
    shift = np.zeros(147)
    shift[0] = 0.5
    directions = metrics._texture_directions(147)
    expected = float(np.mean(np.abs(shift @ directions)))  # a translation moves every sorted projection alike
    assert metrics._sliced_w1(points + shift, points) == pytest.approx(expected, rel=1e-12)
    assert metrics._sliced_w1(points[::-1], points) == 0.0  # order of the patches does not matter


def test_texture_distance_prefers_real_texture_to_blur_and_noise() -> None:
    truth, mask = _stone_texture(0), _box()
    other_piece = truth.copy()
    other_piece[mask] = _stone_texture(1)[mask]
    blurred = truth.copy()
    blurred[mask] = cv2.GaussianBlur(truth, (0, 0), 3)[mask]
    noisy = truth.copy()
    noisy[mask] = np.clip(truth[mask].mean(axis=0) + np.random.default_rng(2).normal(0, 0.12, (mask.sum(), 3)), 0, 1)
    flat = truth.copy()
    flat[mask] = truth[mask].mean(axis=0)
    scores = {
        name: metrics.texture_distance(image, truth, mask)
        for name, image in (
            ("truth", truth),
            ("other", other_piece),
            ("blur", blurred),
            ("noise", noisy),
            ("flat", flat),
        )
    }
    assert scores["truth"] == 0.0
    assert scores["other"] < 0.5 * scores["blur"], scores
    assert scores["other"] < 0.5 * scores["noise"], scores
    assert scores["flat"] > scores["blur"] > scores["other"], scores
    # PSNR says the opposite: the other piece of stone is further from the truth, pixel for pixel, than the blur.
    assert metrics.psnr(other_piece, truth, mask) < metrics.psnr(blurred, truth, mask)


def test_texture_distance_is_seeded_and_caps_its_patches() -> None:
    truth = _stone_texture(0, size=128)
    mask = np.zeros((128, 128), bool)
    mask[16:112, 16:112] = True  # 9216 hole pixels: sampled down to 512 per level at level 0
    blurred = cv2.GaussianBlur(truth, (0, 0), 2)
    first = metrics.texture_distance(blurred, truth, mask, seed=0)
    assert metrics.texture_distance(blurred, truth, mask, seed=0) == first
    assert metrics.texture_distance(blurred, truth, mask, seed=1) != first
    assert metrics.texture_distance(blurred, truth, mask, seed=1) == pytest.approx(first, rel=0.15)


def test_texture_distance_of_a_flat_sky_is_not_inflated_by_quantisation() -> None:
    """A flat sky's band-pass levels have std 0: one-level rounding noise must stay a small distance, a
    visible blotch a large one."""
    sky = np.broadcast_to(np.array([0.53, 0.81, 0.92]), (64, 64, 3)).copy()
    mask = np.zeros((64, 64), bool)
    mask[20:44, 20:44] = True
    rounded = sky.copy()
    rounded[mask] += np.random.default_rng(3).integers(-1, 2, (mask.sum(), 3)) / 255.0
    blotch = sky.copy()
    blotch[mask] = cv2.GaussianBlur(sky + 0.1 * (np.random.default_rng(4).random((64, 64, 1)) > 0.5), (0, 0), 2)[mask]
    assert metrics.texture_distance(rounded, sky, mask) < 0.2 * metrics.texture_distance(blotch, sky, mask)


# -------------------------------------------------------------------------------------------- seam_step


def test_seam_step_measures_the_step_at_the_border() -> None:
    truth = np.full((32, 32, 3), 0.5)
    mask = np.zeros((32, 32), bool)
    mask[8:20, 10:24] = True
    brighter = truth.copy()
    brighter[mask] += 10 / 255
    assert metrics.seam_step(brighter, truth, mask) == pytest.approx(10.0)
    assert metrics.seam_step(truth, truth, mask) == 0.0
    # Only the border counts: a fill that is right at the border and wrong inside has no seam.
    inside = truth.copy()
    inside[10:18, 12:22] = 0.9
    assert metrics.seam_step(inside, truth, mask) == pytest.approx(0.0, abs=1e-12)


def test_seam_step_is_relative_to_the_truths_own_edges() -> None:
    """An edge of the truth that runs along the hole's border is not a seam; a fill that continues the wrong
    side makes one at the other border."""
    truth = np.full((32, 32, 3), 0.2)
    truth[:, 16:] = 0.6
    mask = np.zeros((32, 32), bool)
    mask[:, 16:24] = True  # the hole starts exactly at the truth's edge
    assert metrics.seam_step(truth, truth, mask) == 0.0
    wrong_side = truth.copy()
    wrong_side[mask] = 0.2  # no step at column 16 (the truth has 0.4 there), a new one at column 24
    # 64 crossing pairs: the truth steps 0.4 on 32 of them, the fill on the other 32: the same mean.
    assert metrics.seam_step(wrong_side, truth, mask) == pytest.approx(0.0, abs=1e-9)
    darker = truth.copy()
    darker[mask] = 0.4  # half a step at both borders: mean 0.2, as the truth's 0.4 on half the pairs
    assert metrics.seam_step(darker, truth, mask) == pytest.approx(0.0, abs=1e-9)
    darker[mask] = 0.3  # 0.1 and 0.3: mean 0.2 again; the seam metric is a mean, not a maximum
    assert metrics.seam_step(darker, truth, mask) == pytest.approx(0.0, abs=1e-9)
    darker[mask] = 0.0  # 0.2 and 0.6: mean 0.4, 0.2 more than the truth
    assert metrics.seam_step(darker, truth, mask) == pytest.approx(0.2 * 255, rel=1e-9)


# ---------------------------------------------------------------------------------------------- grid_artefact


def test_grid_artefact_measures_a_plaid_and_matches_the_training_loss() -> None:
    """An 8-px plaid of RMS 1.5 levels in a fill of smooth truth scores 1.5; the truth, a ramp added to
    the fill and a plaid in the known pixels score 0; it agrees with the training loss of the same name."""
    import torch

    from inpaint_cli.models import losses

    side = 96
    yy, xx = np.mgrid[:side, :side].astype(np.float64)
    truth = np.repeat((0.3 + 0.4 * xx / side)[..., None], 3, axis=2)
    hole = np.zeros((side, side), bool)
    hole[16:80, 24:88] = True
    plaid = 1.5 / 255 * (np.cos(xx * np.pi / 4) + np.cos(yy * np.pi / 4))[..., None]
    plaided = truth + plaid * hole[..., None]
    assert metrics.grid_artefact(plaided, truth, hole) == pytest.approx(1.5, abs=0.1)
    assert metrics.grid_artefact(truth, truth, hole) == 0.0
    assert metrics.grid_artefact(truth + 0.2 * yy[..., None] / side, truth, hole) == pytest.approx(0.0, abs=1e-6)
    assert metrics.grid_artefact(truth + plaid * ~hole[..., None], truth, hole) < 0.2
    as_tensor = torch.from_numpy(plaided).permute(2, 0, 1)[None].float()
    loss = losses.grid_artefact(as_tensor, torch.from_numpy(hole)[None, None].float()).item() * 255
    assert loss == pytest.approx(metrics.grid_artefact(plaided, truth, hole), abs=0.05)


def test_grid_artefact_finds_a_plaid_under_texture() -> None:
    """In a textured fill (white noise of 25 levels, whose sampling noise alone puts about 3 levels into the
    phase means) the same 1.5-level plaid still measures 1.5, and the texture alone about 0."""
    side = 128
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:side, :side].astype(np.float64)
    truth = 0.5 + rng.normal(0, 25 / 255, (side, side, 3))
    hole = np.zeros((side, side), bool)
    hole[24:104, 16:96] = True
    texture = 0.5 + rng.normal(0, 25 / 255, (side, side, 3))
    plaid = 1.5 / 255 * (np.cos(xx * np.pi / 4) + np.cos(yy * np.pi / 4))[..., None]
    assert abs(metrics.grid_artefact(texture, truth, hole)) < 0.6
    assert metrics.grid_artefact(texture + plaid, truth, hole) == pytest.approx(1.5, abs=0.4)
