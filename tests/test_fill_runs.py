"""Folder fills and their reports: a missing mask fails one image, the closing summary, Ctrl-C,
per-image --json seconds, the seed a sampling model drew, -v, and the overwrite rule of fill and plural."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint_cli.fill import failure_summary
from inpaint_cli.models.base import InpaintModel, standard_normal
from inpaint_cli.registry import InputContract, register


@register(
    "test_seeded_noise",
    contract=InputContract(pad_multiple=8, can_sample=True, trainable=False, needs_weights=False),
    summary="test-only: samples (fills holes with seeded noise)",
)
class SeededNoise(InpaintModel):
    def inpaint(self, image, mask, *, generator=None):
        return standard_normal(tuple(image.shape), generator, like=image).sigmoid()


def _image(path: Path, height: int = 32, width: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    assert cv2.imwrite(str(path), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    return path


def _mask(path: Path, height: int = 32, width: int = 40) -> Path:
    hole = np.zeros((height, width), np.uint8)
    hole[8:16, 10:20] = 255
    assert cv2.imwrite(str(path), hole)
    return path


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# -- a missing mask fails its image, the others are filled --------------------------------------------


def test_a_missing_mask_in_a_mask_folder_fails_that_image_only(tmp_path, run_cli, capsys):
    images, masks, outs = tmp_path / "images", tmp_path / "masks", tmp_path / "outs"
    images.mkdir(), masks.mkdir()
    for index, name in enumerate("abc"):
        _image(images / f"{name}.png", seed=index)
    _mask(masks / "a.png"), _mask(masks / "c_mask.png")
    assert run_cli(["fill", str(images), "--mask", str(masks), "--out", str(outs), "--model", "telea"]) == 1
    assert sorted(p.name for p in outs.iterdir()) == ["a.png", "c.png"]
    captured = capsys.readouterr()
    assert captured.out.split() == [str(outs / "a.png"), str(outs / "c.png")]
    assert f"error: {images / 'b.png'}: no mask named b.* or b_mask.* in {masks}" in captured.err
    assert _last_line(captured.err) == "1 of 3 images failed; the other 2 were written"


def test_when_every_image_fails_the_summary_says_none_was_written(tmp_path, run_cli, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for name in "ab":
        _image(images / f"{name}.png")
    assert run_cli(["fill", str(images), "--mask", str(masks), "--out", str(tmp_path / "outs")]) == 1
    assert not (tmp_path / "outs").exists()
    assert _last_line(capsys.readouterr().err) == "2 of 2 images failed; none was written"


@pytest.mark.parametrize(
    ("failed", "total", "line"),
    [
        (1, 2, "1 of 2 images failed; the other was written"),
        (4, 5, "4 of 5 images failed; the other was written"),
        (1, 5, "1 of 5 images failed; the other 4 were written"),
        (8, 8, "8 of 8 images failed; none was written"),
        (1, 1, None),  # a single image's own error says it all
        (0, 5, None),
    ],
)
def test_failure_summary_wording(failed, total, line):
    assert failure_summary(failed, total) == line


# -- Ctrl-C: every written file is printed ------------------------------------------------------------


@pytest.mark.parametrize("filled_before", [1, 2, 3])
def test_ctrl_c_prints_every_written_file(tmp_path, run_cli, capsys, monkeypatch, filled_before):
    import inpaint_cli.io as io

    folder, masks, outs = tmp_path / "images", tmp_path / "masks", tmp_path / "outs"
    folder.mkdir(), masks.mkdir()
    for index in range(8):  # widths differ, so no two are batched: each is written before the next is read
        _image(folder / f"{index}.png", width=40 + index, seed=index)
        _mask(masks / f"{index}.png", width=40 + index)
    real_read, real_write = io.read_image, io.write_image
    reads = []

    def read_image(path, **kwargs):
        reads.append(path)
        if len(reads) == filled_before + 2:  # image k is filled when image k + 1 has been read
            raise KeyboardInterrupt
        return real_read(path, **kwargs)

    def slow_write(path, pixels, **kwargs):
        time.sleep(0.1)  # still writing when the interrupt comes
        real_write(path, pixels, **kwargs)

    monkeypatch.setattr(io, "read_image", read_image)
    monkeypatch.setattr(io, "write_image", slow_write)
    args = ["fill", str(folder), "--mask", str(masks), "--out", str(outs), "--model", "telea"]
    assert run_cli(args) == 130
    captured = capsys.readouterr()
    written = sorted(str(p) for p in outs.iterdir()) if outs.exists() else []
    assert sorted(captured.out.split()) == written  # printed == written
    assert all(not Path(p).name.startswith(".") for p in written)  # no temp file left behind
    lines = captured.err.strip().splitlines()
    assert lines[-2:] == [f"{len(written)} of 8 images written before the interrupt", "interrupted"]


# -- --json seconds are each image's own --------------------------------------------------------------


def test_json_seconds_are_per_image(tmp_path, run_cli, capsys, monkeypatch):
    import inpaint_cli.io as io

    folder = tmp_path / "images"
    folder.mkdir()
    for name in "ab":  # same size: filled in one batched model call
        _image(folder / f"{name}.png")
    real_write = io.write_image

    def write_image(path, pixels, **kwargs):
        time.sleep(0.3 if Path(path).name == "b.png" else 0.0)  # b takes 0.3 s longer to write
        real_write(path, pixels, **kwargs)

    monkeypatch.setattr(io, "write_image", write_image)
    start = time.perf_counter()
    mask = _mask(tmp_path / "mask.png")
    args = ["fill", str(folder), "--mask", str(mask), "--out", str(tmp_path / "o"), "--model", "telea", "--json"]
    assert run_cli(args) == 0
    wall = time.perf_counter() - start
    records = {Path(r["input"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records["b.png"]["seconds"] >= records["a.png"]["seconds"] + 0.25
    assert records["a.png"]["seconds"] + records["b.png"]["seconds"] <= wall


# -- a sampling model's seed ---------------------------------------------------------------------------


def test_fill_with_a_sampling_model_reports_the_seed_it_drew(tmp_path, run_cli, capsys):
    photo, mask = _image(tmp_path / "photo.png"), _mask(tmp_path / "mask.png")
    args = ["fill", str(photo), "--mask", str(mask), "--model", "test_seeded_noise"]
    assert run_cli([*args, "--out", str(tmp_path / "a.png"), "--json"]) == 0
    captured = capsys.readouterr()
    seed = json.loads(captured.out)["seed"]
    assert isinstance(seed, int) and f"seed {seed} (pass --seed {seed} to reproduce)" in captured.err
    assert run_cli([*args, "--out", str(tmp_path / "b.png"), "--seed", str(seed)]) == 0
    assert "pass --seed" not in capsys.readouterr().err  # given, not drawn
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert run_cli([*args, "--out", str(tmp_path / "c.png"), "--seed", str(seed + 1)]) == 0
    assert (tmp_path / "c.png").read_bytes() != (tmp_path / "a.png").read_bytes()
    capsys.readouterr()
    # a model that does not sample draws nothing and reports no seed
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", "telea", "--json", "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["seed"] is None and "seed" not in captured.err


# -- -v ------------------------------------------------------------------------------------------------


def test_verbose_fill_logs_model_device_precision_strategy_windows_and_stage_times(tmp_path, run_cli, capsys):
    photo, mask = _image(tmp_path / "photo.png", 48, 64), _mask(tmp_path / "mask.png", 48, 64)
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", "telea", "--out", str(out), "-v"]) == 0
    err = capsys.readouterr().err
    assert "debug: model telea (arch telea, no weights) on cpu, precision fp32; loaded in " in err
    line = next(line for line in err.splitlines() if line.startswith(f"debug: {photo} -> {out}"))
    assert "64x48, strategy full, 1 window(s) 64x48, precision fp32; read " in line
    assert " s, fill " in line and " s, write " in line
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", "telea", "--out", str(out)]) == 0
    assert "debug:" not in capsys.readouterr().err  # without -v: nothing


# -- the overwrite rule ----------------------------------------------------------------------------------


def test_fill_replaces_a_named_out_file_but_not_derived_names_in_an_out_dir(tmp_path, run_cli, capsys):
    photo, mask = _image(tmp_path / "photo.png"), _mask(tmp_path / "mask.png")
    base = ["fill", str(photo), "--mask", str(mask), "--model", "telea"]
    named = tmp_path / "named.png"
    named.write_bytes(b"old")
    assert run_cli([*base, "--out", str(named)]) == 0  # the user named it: replaced
    assert named.read_bytes() != b"old"
    outs = tmp_path / "outs"
    outs.mkdir()
    (outs / "photo.png").write_bytes(b"old")
    capsys.readouterr()
    assert run_cli([*base, "--out", f"{outs}/"]) == 2  # DIR/<stem>.png is derived: refused
    assert _last_line(capsys.readouterr().err) == (
        f"error: {outs / 'photo.png'}: already exists; pass --overwrite to replace it, or --out another path"
    )
    assert (outs / "photo.png").read_bytes() == b"old"
    assert run_cli([*base, "--out", f"{outs}/", "--overwrite"]) == 0
    assert (outs / "photo.png").read_bytes() != b"old"


def test_fill_never_replaces_an_input_even_with_overwrite(tmp_path, run_cli, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    photo, mask = _image(folder / "photo.png"), _mask(tmp_path / "mask.png")
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert run_cli(["fill", str(photo), "--mask", str(mask), "--out", f"{folder}/", *extra]) == 2
        assert "this is an input file" in capsys.readouterr().err
    assert photo.read_bytes() == before


def test_plural_refuses_a_grid_on_its_input_before_any_work(tmp_path, run_cli, capsys):
    photo, mask = _image(tmp_path / "photo.png"), _mask(tmp_path / "mask.png")
    before = photo.read_bytes(), mask.read_bytes()
    for target in (photo, mask):
        for extra in ([], ["--overwrite"]):
            # the grid is checked before the model is loaded: an unknown model is not even looked at
            args = ["plural", str(photo), "--mask", str(mask), "--grid", str(target), "--model", "no_such", *extra]
            assert run_cli(args) == 2
            assert _last_line(capsys.readouterr().err) == (
                f"error: {target}: this is an input file; choose another --grid (inputs are never overwritten)"
            )
    assert (photo.read_bytes(), mask.read_bytes()) == before
    assert not (tmp_path / "photo_samples").exists()


def test_plural_refuses_a_sample_on_its_input(tmp_path, run_cli, capsys):
    photo = _image(tmp_path / "photo.png")
    mask = _mask(tmp_path / "photo_5.png")  # sample 0 with --seed 5 in this folder would be photo_5.png
    before = mask.read_bytes()
    args = ["plural", str(photo), "--mask", str(mask), "--seed", "5", "--n", "2", "--out-dir", str(tmp_path)]
    assert run_cli([*args, "--model", "test_seeded_noise", "--overwrite"]) == 2
    assert "photo_5.png: this is an input file; choose another --out-dir" in capsys.readouterr().err
    assert mask.read_bytes() == before and not (tmp_path / "photo_6.png").exists()


def test_plural_samples_need_overwrite_and_its_grid_is_replaced(tmp_path, run_cli, capsys):
    photo, mask = _image(tmp_path / "photo.png"), _mask(tmp_path / "mask.png")
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"old grid")
    samples = tmp_path / "samples"
    args = ["plural", str(photo), "--mask", str(mask), "--model", "test_seeded_noise", "--n", "2", "--seed", "3"]
    args += ["--out-dir", str(samples)]
    assert run_cli([*args, "--grid", str(grid)]) == 0  # a grid the user named is replaced
    assert grid.read_bytes() != b"old grid"
    first = (samples / "photo_3.png").read_bytes()
    (samples / "photo_4.png").write_bytes(b"mine")
    capsys.readouterr()
    assert run_cli(args) == 2  # derived sample names: not replaced without --overwrite
    assert _last_line(capsys.readouterr().err) == (
        f"error: {samples / 'photo_3.png'}: already exists; pass --overwrite to replace it, or another --out-dir"
    )
    assert (samples / "photo_4.png").read_bytes() == b"mine"
    assert run_cli([*args, "--overwrite"]) == 0
    assert (samples / "photo_3.png").read_bytes() == first and (samples / "photo_4.png").read_bytes() != b"mine"


def test_plural_set_help_gives_no_glcic_example(run_cli, capsys):
    assert run_cli(["plural", "--help"]) == 0
    text = capsys.readouterr().out
    assert "postprocess=poisson" not in text and "piigan" in text


def test_full_strategy_that_cannot_fit_exits_2_with_the_hint(tmp_path, run_cli, capsys, monkeypatch):
    import inpaint_cli.fill_memory as fill_memory

    photo, mask = _image(tmp_path / "photo.png", 600, 800), _mask(tmp_path / "mask.png", 600, 800)
    monkeypatch.setattr(fill_memory, "available_memory_bytes", lambda device: 100_000_000)  # 0.1 GB
    out = tmp_path / "o.png"
    args = ["fill", str(photo), "--mask", str(mask), "--model", "deepfill_v2", "--out", str(out)]
    assert run_cli([*args, "--strategy", "full"]) == 2
    line = _last_line(capsys.readouterr().err)
    assert line.startswith(f"error: {photo}: --strategy full on 800x600 needs about 0.")
    assert line.endswith(
        "but only 0.1 GB of memory is available; use --strategy auto (or crop), which fills a window around each hole"
    )
    assert not out.exists()
    assert run_cli(args) == 0 and out.exists()  # auto crops around the hole: no estimate needed
