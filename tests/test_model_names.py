"""Every command that takes a model takes the same names: a checkpoint, an architecture (its default
checkpoint) or a glob (Catalog.select)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from inpaint_cli.weights import load_catalog


def _json_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_verify_takes_an_architecture_for_its_default_checkpoint(run_cli, capsys):
    assert run_cli(["models", "verify", "glcic", "--json"]) == 0
    (row,) = _json_lines(capsys)
    assert row["name"] == load_catalog().default_for("glcic").name and row["status"] == "ok"


def test_verify_takes_a_glob(run_cli, capsys):
    assert run_cli(["models", "verify", "deepfill*", "--json"]) == 0
    names = [row["name"] for row in _json_lines(capsys)]
    expected = sorted(name for name in load_catalog().entries if name.startswith("deepfill"))
    assert names == expected and len(names) >= 2


def test_download_takes_an_architecture_and_skips_builtin_models(run_cli, capsys):
    assert run_cli(["models", "download", "deepfill_v2", "telea"]) == 0
    captured = capsys.readouterr()
    entry = load_catalog().default_for("deepfill_v2")
    assert captured.out.strip().endswith(entry.source.removeprefix("bundled:"))
    assert captured.err.strip() == "telea: no weights to download (built in)"


@pytest.mark.parametrize("command", [["models", "verify"], ["models", "download"], ["models", "info"]])
def test_unknown_names_and_empty_globs_are_usage_errors(run_cli, capsys, command):
    assert run_cli([*command, "nosuch"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown model 'nosuch'")
    assert run_cli([*command, "zz*"]) == 2
    assert capsys.readouterr().err.strip() == "error: no model matches 'zz*'; `inpaint models list` shows them all"


def test_info_takes_a_glob_and_shows_one_object_per_model(run_cli, capsys):
    assert run_cli(["models", "info", "deepfill*", "--json"]) == 0
    assert [row["arch"] for row in _json_lines(capsys)] == ["deepfill_v1", "deepfill_v2"]


def test_info_says_telea_is_its_architectures_default(run_cli, capsys):
    assert run_cli(["models", "info", "telea", "--json"]) == 0
    (info,) = _json_lines(capsys)
    assert (info["default"], info["global_default"]) == (True, False)  # the global default is DeepFill v1


def test_fill_takes_a_glob_that_matches_one_model(tmp_path, run_cli, capsys):
    image = np.full((16, 16, 3), 90, np.uint8)
    hole = np.zeros((16, 16), np.uint8)
    hole[4:8, 4:8] = 255
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "m.png"), hole)
    base = ["fill", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png"), "--json", "--overwrite"]
    assert run_cli([*base, "--model", "tel*"]) == 0
    assert _json_lines(capsys)[0]["model"] == "telea"
    assert run_cli([*base, "--model", "deepfill*"]) == 2
    assert "'deepfill*' matches 2 models" in capsys.readouterr().err
