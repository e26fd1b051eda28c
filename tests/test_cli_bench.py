"""`inpaint masks generate` and `inpaint benchmark` through the command line."""

from __future__ import annotations

import json

import cv2
import numpy as np


def test_masks_generate_is_reproducible(tmp_path, run_cli, capsys):
    args = ["masks", "generate", "--kind", "mixed", "--ratio", "15-30", "--n", "3", "--size", "96x64", "--seed", "4"]
    assert run_cli([*args[:2], str(tmp_path / "a"), *args[2:]]) == 0
    assert run_cli([*args[:2], str(tmp_path / "b"), *args[2:]]) == 0
    for name in ("mask_0000.png", "mask_0002.png", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    mask = cv2.imread(str(tmp_path / "a" / "mask_0001.png"), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (64, 96) and 0.15 <= (mask > 127).mean() < 0.30
    assert run_cli(["masks", "generate", str(tmp_path / "c"), "--ratio", "30"]) == 2
    assert "--ratio" in capsys.readouterr().err


def test_benchmark_writes_reports_and_reports_failures(tmp_path, run_cli, capsys):
    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        y, x = np.mgrid[0:80, 0:80]
        image = np.stack([x * 3, y * 3, (x + y)], -1) + rng.integers(0, 30, (80, 80, 3))
        cv2.imwrite(str(data / f"im{index}.png"), image.clip(0, 255).astype(np.uint8))
    out = tmp_path / "report.json"
    damaged = tmp_path / "damaged.safetensors"  # a named file that cannot be loaded: that model's failure
    damaged.write_bytes(b"not a checkpoint")
    args = ["benchmark", "--models", f"telea,{damaged}", "--data", str(data), "--size", "64"]
    args += [
        "--buckets",
        "15-30",
        "--kinds",
        "box",
        "--no-speed",
        "--json",
        str(out),
        "--grid",
        str(tmp_path / "g.png"),
    ]
    assert run_cli(args) == 1  # one model failed ...
    assert "damaged.safetensors" in capsys.readouterr().err
    report = json.loads(out.read_text())  # ... and the other was still measured and written
    rows = [row for row in report["quality"] if row["model"] == "telea"]
    assert rows and all(row["n"] == 2 for row in rows)
    assert cv2.imread(str(tmp_path / "g.png")) is not None


def test_masks_generate_refuses_a_used_folder_and_overwrite_replaces_the_whole_set(tmp_path, run_cli, capsys):
    folder = tmp_path / "gm"
    generate = ["masks", "generate", str(folder), "--kind", "box", "--size", "32x32"]
    assert run_cli([*generate, "--n", "6"]) == 0
    six = sorted(path.name for path in folder.iterdir())
    assert six == ["manifest.json", *(f"mask_{i:04d}.png" for i in range(6))]
    capsys.readouterr()

    # A smaller set into the same folder: refused before any work, nothing touched.
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert run_cli([*generate, "--n", "2", "--seed", "3"]) == 2
    assert capsys.readouterr().err == (
        f"error: {folder} already holds a mask set (6 masks and manifest.json); pass --overwrite to replace it, "
        f"or choose another folder\n"
    )
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before

    # --overwrite: the old set goes entirely, so the manifest and the folder agree.
    assert run_cli([*generate, "--n", "2", "--seed", "3", "--overwrite"]) == 0
    assert sorted(path.name for path in folder.iterdir()) == ["manifest.json", "mask_0000.png", "mask_0001.png"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["n"], manifest["seed"], [r["file"] for r in manifest["masks"]]) == (
        2,
        3,
        ["mask_0000.png", "mask_0001.png"],
    )
    capsys.readouterr()

    # A file the tool did not write is never deleted, even with --overwrite; a bad --kind deletes nothing.
    (folder / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert run_cli([*generate, "--n", "2", *extra]) == 2
        assert "holds files that are not a mask set written by `inpaint masks generate` (notes.txt)" in (
            capsys.readouterr().err
        )
    (folder / "notes.txt").unlink()
    assert run_cli([*generate[:4], "--kind", "blobs", "--n", "2", "--overwrite"]) == 2
    assert sorted(path.name for path in folder.iterdir()) == ["manifest.json", "mask_0000.png", "mask_0001.png"]


def test_benchmark_unknown_model_names_are_usage_errors_before_any_work(tmp_path, run_cli, capsys):
    out = tmp_path / "report.json"
    args = ["benchmark", "--models", "telea,nz", "--data", str(tmp_path), "--no-speed", "--json", str(out)]
    assert run_cli(args) == 2
    captured = capsys.readouterr()
    # Telea did not run first (no progress, no table, no report); "ns" is suggested once, not once per place
    # it is known (the arch and its catalog entry).
    assert captured.err == (
        "error: --models nz: unknown model 'nz'; did you mean ns? (`inpaint models list` shows every model)\n"
    )
    assert not out.exists()


def test_a_bad_inpaint_max_pixels_is_a_usage_error(tmp_path, run_cli, capsys, monkeypatch, example):
    photo, mask = example
    monkeypatch.setenv("INPAINT_MAX_PIXELS", "abc")
    out = tmp_path / "filled.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", "telea", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "error: INPAINT_MAX_PIXELS='abc' is not a positive whole number; unset it or set e.g. "
        "INPAINT_MAX_PIXELS=200000000\n"
    )
    assert not out.exists()
    assert run_cli(["fill", "--help"]) == 0  # help is still there to read
