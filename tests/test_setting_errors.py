"""`--set` and `--recipe` values that an architecture or recipe cannot take: one line on stderr, exit 2, naming
the flag, the key, the value and what the key takes, before any image is read or any output written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inpaint_cli.io import write_image


@pytest.fixture
def unreadable_image(tmp_path) -> Path:
    """An image file that cannot be decoded: reading it would be a different error (exit 1)."""
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return path


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        write_image(folder / f"p{index}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return folder


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    return lines[0]


@pytest.mark.parametrize(
    ("model", "setting", "expected"),
    [
        (
            "glcic",
            "postprocess=banana",
            "error: --set postprocess=banana: glcic refuses it: postprocess must be one of ('none', 'poisson'), "
            "got 'banana'",
        ),
        ("deepfill_v2", "cnum=abc", "error: --set cnum=abc: cnum of deepfill_v2 takes an integer (default 48)"),
        ("telea", "radius=wide", "error: --set radius=wide: radius of telea takes a number (default 5)"),
        (
            "glcic",
            "mean=[0.5,0.5]",
            "error: --set mean=[0.5, 0.5]: mean of glcic takes a list of 3 numbers (default [0.485, 0.456, 0.406])",
        ),
        (
            "glcic",
            "nope=1",
            "error: --set nope=1: not a setting of glcic; known: mean, postprocess, padding, layer_order, "
            "subtract_mean",
        ),
    ],
)
def test_fill_set_errors_are_one_line_exit_2_before_reading(
    run_cli, capsys, tmp_path, unreadable_image, model, setting, expected
) -> None:
    out = tmp_path / "out.png"
    code = run_cli(["fill", str(unreadable_image), "--model", model, "--set", setting, "--out", str(out)])
    assert (code, _one_line(capsys)) == (2, expected)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--model", "deepfill_v2", "--set", "cnum=-5"],
            "error: --set cnum=-5: deepfill_v2 refuses it: cnum must be a multiple of 4, got -5",
        ),
        (
            ["--model", "deepfill_v2", "--set", "cnum=abc"],
            "error: --set cnum=abc: cnum of deepfill_v2 takes an integer (default 48)",
        ),
        (
            ["--model", "glcic", "--recipe", "phase_steps=banana"],
            "error: --recipe phase_steps=banana: phase_steps of the glcic recipe takes a list of 2 integers, or null "
            "(default null)",
        ),
        (
            ["--model", "glcic", "--recipe", "ema=2"],
            "error: --recipe ema=2: the glcic recipe refuses it: ema must be a decay in [0, 1), e.g. 0.999 (got 2)",
        ),
        (
            ["--model", "piigan", "--set", "extractor_activation=tanh"],
            "error: --set extractor_activation=tanh: extractor_activation of piigan takes one of elu, relu, lrelu, "
            "none (default elu)",
        ),
    ],
)
def test_train_set_and_recipe_errors_are_one_line_exit_2(run_cli, capsys, tmp_path, photos, args, expected) -> None:
    run = tmp_path / "run"
    code = run_cli(["train", *args, "--data", str(photos), "--out", str(run), "--steps", "1", "--no-progress"])
    assert (code, _one_line(capsys)) == (2, expected)
    assert not run.exists()


def test_a_negative_width_that_passes_the_models_own_check_is_still_a_usage_error(run_cli, capsys, tmp_path, photos):
    run = tmp_path / "run"
    code = run_cli(["train", "--model", "deepfill_v2", "--set", "cnum=-8", "--data", str(photos), "--out", str(run)])
    line = _one_line(capsys)
    assert code == 2
    assert line.startswith("error: --set cnum=-8: deepfill_v2 refuses it: ")


def test_check_settings_judges_by_the_annotation_then_by_the_default() -> None:
    from inpaint_cli.config_values import check_settings, constructor_hints

    class Recipe:
        def __init__(self, steps: tuple[int, int] | None = None, weight: float = 1.0, name="a", flag: bool = False):
            pass

    known = {"steps": None, "weight": 1.0, "name": "a", "flag": False}
    hints = constructor_hints(Recipe)
    ok = {"steps": [3, 4], "weight": 2, "name": "b", "flag": True}
    assert check_settings(ok, known, hints, flag="--recipe", owner="r") == ok
    assert check_settings({"steps": None}, known, hints, flag="--recipe", owner="r") == {"steps": None}
    for bad in ({"steps": [3.5, 4]}, {"weight": True}, {"name": 3}, {"flag": 1}, {"weight": "x"}):
        with pytest.raises(Exception, match=r"^--recipe \w+=.* takes "):
            check_settings(bad, known, hints, flag="--recipe", owner="r")


@pytest.mark.parametrize("arch", ["glcic", "context_encoder"])
def test_a_batch_too_small_for_batch_norm_is_a_usage_error(run_cli, capsys, tmp_path, arch) -> None:
    """`train --batch 1` on a batch-norm recipe ended in a traceback from inside the first step."""
    out = tmp_path / "run"
    code = run_cli(["train", "--model", arch, "--data", str(tmp_path), "--out", str(out), "--batch", "1"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err == (
        f"error: --batch 1: the {arch} recipe needs at least 2 images per batch (its batch-norm layers compute "
        "statistics over the batch)\n"
    )


@pytest.mark.parametrize("command", ["fill", "benchmark"])
def test_an_unknown_blend_is_one_line_exit_2_before_any_work(run_cli, capsys, tmp_path, unreadable_image, command):
    out = tmp_path / "out.png"
    if command == "fill":
        args = ["fill", str(unreadable_image), "--blend", "poisson", "--out", str(out)]
    else:
        args = ["benchmark", "--models", "telea", "--data", str(tmp_path), "--no-speed", "--blend", "poisson"]
        args += ["--json", str(out)]
    code = run_cli(args)
    expected = "error: --blend poisson: blend must be one of harmonic, none (got 'poisson')"
    assert (code, _one_line(capsys)) == (2, expected)
    assert not out.exists()
