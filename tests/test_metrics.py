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
