"""The licence of converted weights: recorded in the file, shown by `models info`, warned about by `fill`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from inpaint_cli.convert.licence import is_non_commercial
from inpaint_cli.registry import create_model
from inpaint_cli.weights import save_checkpoint


@pytest.mark.parametrize(
    ("licence", "expected"),
    [("CC BY-NC 4.0", True), ("CC BY-NC-SA 4.0", True), ("non-commercial research only", True), ("MIT", False),
     ("CC BY 4.0", False), ("", False)],
)  # fmt: skip
def test_non_commercial_licences_are_recognised(licence, expected) -> None:
    assert is_non_commercial(licence) is expected


def _converted_like(path, licence: str) -> None:
    torch.manual_seed(0)
    model = create_model("deepfill_v2", cnum=8, tf_padding=True, tf_resize=True, channel_order="bgr")
    provenance = {"licence": licence, "data": "Places2", "converted_from": {"format": "tf", "origin": "x", "files": {}}}
    save_checkpoint(path, model, provenance=provenance)


def test_fill_warns_once_for_non_commercial_weights(tmp_path, run_cli, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _converted_like(tmp_path / "nc.safetensors", "CC BY-NC 4.0")
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        cv2.imwrite(name, (rng.random((32, 32, 3)) * 255).astype(np.uint8))
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    cv2.imwrite("mask.png", mask)
    capsys.readouterr()
    argv = ["fill", "a.png", "b.png", "--mask", "mask.png", "--model", "nc.safetensors", "--out", "out"]
    assert run_cli(argv) == 0
    err = capsys.readouterr().err
    assert err.count("non-commercial") == 1 and "CC BY-NC 4.0" in err


def test_models_info_shows_a_converted_files_licence(tmp_path, run_cli, capsys) -> None:
    path = tmp_path / "nc.safetensors"
    _converted_like(path, "CC BY-NC 4.0")
    assert run_cli(["models", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["licence"] == "CC BY-NC 4.0" and info["arch"] == "deepfill_v2" and info["origin"] == "x"
    assert info["config"]["channel_order"] == "bgr"
