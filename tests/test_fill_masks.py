"""Holes given on the command line: --box X,Y,W,H and --mask-color, with --mask and --dilate."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint_cli.errors import InpaintError, UsageError
from inpaint_cli.masks import box_hole, colour_hole, parse_box, parse_colour

MAGENTA = (255, 0, 255)


def _rgb_write(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    return path


def _rgb_read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def _gradient(height: int = 40, width: int = 60) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4, y * 5, 100 + x + y], -1).clip(0, 250).astype(np.uint8)


# -- values ------------------------------------------------------------------------------------------


def test_parse_box():
    assert parse_box("120,80,64,48") == (120, 80, 64, 48)
    assert parse_box(" -5, 3 ,10,20") == (-5, 3, 10, 20)  # partly outside: clipped later
    for bad in ("1,2,3", "1,2,3,4,5", "a,b,c,d", "1.5,2,3,4", ""):
        with pytest.raises(UsageError, match=r"expected X,Y,W,H in whole pixels"):
            parse_box(bad)
    for empty in ("1,2,0,4", "1,2,4,-1"):
        with pytest.raises(UsageError, match="width and height must be at least 1 pixel"):
            parse_box(empty)


def test_box_hole_unites_clips_and_refuses_boxes_wholly_outside():
    hole = box_hole([(2, 1, 3, 2), (4, 2, 2, 2)], 6, 8, "img.png")
    expected = np.zeros((6, 8), bool)
    expected[1:3, 2:5] = True
    expected[2:4, 4:6] = True
    assert np.array_equal(hole, expected)
    clipped = box_hole([(-2, 4, 4, 10)], 6, 8, "img.png")  # x -2..1, y 4..13: clipped to x 0..1, y 4..5
    assert np.argwhere(clipped).tolist() == [[4, 0], [4, 1], [5, 0], [5, 1]]
    with pytest.raises(InpaintError, match=r"img\.png: --box 8,0,2,2 lies wholly outside the 8x6 image"):
        box_hole([(8, 0, 2, 2)], 6, 8, "img.png")
    with pytest.raises(InpaintError, match=r"--box -3,-3,3,3 lies wholly outside"):
        box_hole([(-3, -3, 3, 3)], 6, 8, "img.png")


def test_parse_colour():
    assert parse_colour("#ff00ff") == MAGENTA
    assert parse_colour("FF00fF") == MAGENTA
    assert parse_colour("#f0f") == MAGENTA
    assert parse_colour("#102030") == (16, 32, 48)
    for bad in ("#ff00f", "magenta", "#gg00ff", "", "#ff00ff00"):
        with pytest.raises(UsageError, match=r"expected a hex colour such as '#ff00ff'"):
            parse_colour(bad)


def test_colour_hole_exact_and_with_tolerance_at_8_and_16_bits():
    pixels = np.zeros((1, 5, 3), np.uint8)
    pixels[0] = [MAGENTA, (250, 6, 255), (255, 0, 254), (200, 0, 255), (0, 0, 0)]
    assert colour_hole(pixels, MAGENTA).tolist() == [[True, False, False, False, False]]
    assert colour_hole(pixels, MAGENTA, tolerance=6).tolist() == [[True, True, True, False, False]]
    assert colour_hole(pixels, MAGENTA, tolerance=55).tolist() == [[True, True, True, True, False]]
    deep = pixels.astype(np.uint16) * 257  # 16 bits: 255 -> 65535, tolerance scaled alike
    assert colour_hole(deep, MAGENTA).tolist() == [[True, False, False, False, False]]
    assert colour_hole(deep, MAGENTA, tolerance=6).tolist() == [[True, True, True, False, False]]
    deep[0, 0, 0] -= 1  # 65534 is not 65535: exact means exact
    assert not colour_hole(deep, MAGENTA)[0, 0]
    rgba = np.dstack([pixels, np.zeros((1, 5), np.uint8)])  # alpha is ignored
    assert colour_hole(rgba, MAGENTA).tolist() == [[True, False, False, False, False]]
    gray = np.array([[[128], [255]]], np.uint8)
    assert colour_hole(gray, (255, 255, 255)).tolist() == [[False, True]]
    assert not colour_hole(gray, MAGENTA).any()  # a gray image has no magenta
    with pytest.raises(UsageError, match="--color-tolerance 300"):
        colour_hole(pixels, MAGENTA, tolerance=300)


# -- fill and plural -----------------------------------------------------------------------------------


def test_fill_with_boxes(tmp_path, run_cli, capsys):
    image = _gradient()
    photo = _rgb_write(tmp_path / "photo.png", image)
    out = tmp_path / "out.png"
    args = ["fill", str(photo), "--box", "10,5,8,6", "--box", "50,30,20,20", "--model", "telea", "--out", str(out)]
    assert run_cli([*args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    hole = np.zeros(image.shape[:2], bool)
    hole[5:11, 10:18] = True
    hole[30:40, 50:60] = True  # the second box clipped at the image's edge
    assert record["hole_fraction"] == round(hole.mean(), 6) and record["mask"] is None
    filled = _rgb_read(out)
    assert np.array_equal(filled[~hole], image[~hole])
    assert np.abs(filled[hole].astype(int) - image[hole]).mean() < 12  # a fill of the gradient, from around it


def test_fill_box_errors(tmp_path, run_cli, capsys):
    photo = _rgb_write(tmp_path / "photo.png", _gradient())
    out = tmp_path / "out.png"
    assert run_cli(["fill", str(photo), "--box", "10,5,8", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --box 10,5,8: expected X,Y,W,H in whole pixels (left, top, width, height), e.g. --box 120,80,64,48"
    )
    assert run_cli(["fill", str(photo), "--box", "60,0,5,5", "--out", str(out), "--model", "telea"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {photo}: --box 60,0,5,5 lies wholly outside the 60x40 image; give X,Y,W,H inside it"
    )
    assert not out.exists()


def test_fill_with_a_paint_colour_unites_with_the_mask_and_dilates(tmp_path, run_cli):
    image = _gradient()
    painted = image.copy()
    stroke = np.zeros(image.shape[:2], bool)
    stroke[20, 5:40] = True  # a 1-px magenta scratch painted over the photo
    stroke[21, 5:40] = True
    painted[stroke] = MAGENTA
    photo = _rgb_write(tmp_path / "photo.png", painted)
    mask_hole = np.zeros(image.shape[:2], np.uint8)
    mask_hole[2:6, 50:56] = 255
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), mask_hole)
    out = tmp_path / "out.png"
    args = ["fill", str(photo), "--mask-color", "#ff00ff", "--mask", str(mask), "--model", "telea", "--out", str(out)]
    assert run_cli(args) == 0
    filled = _rgb_read(out)
    hole = stroke | (mask_hole > 0)
    assert np.array_equal(filled[~hole], painted[~hole])  # nothing outside the union changed
    assert not (filled == MAGENTA).all(axis=2).any()  # the paint is gone
    assert np.abs(filled[stroke].astype(int) - image[stroke]).mean() < 8  # filled from the photo around it
    assert (filled[mask_hole > 0] != painted[mask_hole > 0]).any()
    dilated = tmp_path / "dilated.png"
    assert (
        run_cli(
            ["fill", str(photo), "--mask-color", "#f0f", "--dilate", "2", "--model", "telea", "--out", str(dilated)]
        )
        == 0
    )
    grown = cv2.dilate(stroke.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    after = _rgb_read(dilated)
    assert np.array_equal(after[~grown], painted[~grown]) and (after[grown & ~stroke] != painted[grown & ~stroke]).any()


def test_a_jpeg_painted_colour_needs_a_tolerance(tmp_path, run_cli, capsys):
    painted = _gradient()
    painted[10:30, 10:30] = MAGENTA
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), painted[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    base = ["fill", str(photo), "--mask-color", "#ff00ff", "--model", "telea", "--json"]
    assert run_cli([*base, "--out", str(tmp_path / "exact.png")]) == 0
    exact = json.loads(capsys.readouterr().out)["hole_fraction"]
    assert run_cli([*base, "--color-tolerance", "40", "--out", str(tmp_path / "tolerant.png")]) == 0
    tolerant = json.loads(capsys.readouterr().out)["hole_fraction"]
    assert exact < 0.9 * 400 / 2400 and abs(tolerant - 400 / 2400) < 0.03  # JPEG moves colours by a few levels


def test_bad_colour_is_a_usage_error(tmp_path, run_cli, capsys):
    photo = _rgb_write(tmp_path / "photo.png", _gradient())
    assert run_cli(["fill", str(photo), "--mask-color", "pink", "--out", str(tmp_path / "o.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --mask-color pink: expected a hex colour such as '#ff00ff' (#RRGGBB or #RGB)"
    )
    assert run_cli(["fill", str(photo), "--mask-color", "#fff", "--color-tolerance", "256"]) == 2


def test_plural_takes_boxes_and_colours(tmp_path, run_cli, capsys):
    import test_fill_runs  # noqa: F401  (registers the test_seeded_noise sampler)

    image = _gradient()
    photo = _rgb_write(tmp_path / "photo.png", image)
    args = ["plural", str(photo), "--box", "10,10,12,8", "--model", "test_seeded_noise", "--n", "2", "--seed", "1"]
    assert run_cli([*args, "--out-dir", str(tmp_path / "s"), "--json"]) == 0
    hole = np.zeros(image.shape[:2], bool)
    hole[10:18, 10:22] = True
    for seed in (1, 2):
        sample = _rgb_read(tmp_path / "s" / f"photo_{seed}.png")
        assert np.array_equal(sample[~hole], image[~hole]) and (sample[hole] != image[hole]).any()
