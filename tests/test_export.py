"""`inpaint models export`: a trained checkpoint cast to fp16/bf16 with its metadata, and its catalog entry."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_live_pickle

from inpaint_cli.io import read_image
from inpaint_cli.masks import read_mask
from inpaint_cli.registry import create_model
from inpaint_cli.weights import (
    entry_to_toml,
    format_duration,
    load_catalog,
    read_checkpoint,
    read_toml,
    save_checkpoint,
)

# What `inpaint train` writes into a generator checkpoint (see train/loop.py `_provenance`), trimmed.
PROVENANCE = {
    "trained_by": "inpaint train",
    "arch": "deepfill_v2",
    "steps": 40,
    "data": "/data/photos",
    "images": 12,
    "seed": 0,
    "wall_seconds": 6731.4,
    "world_size": 1,
    "val": {"l1": 0.0456789, "psnr": 21.23456, "ssim": 0.61234},
    "config": {"model": "deepfill_v2", "size": 64, "batch": 2, "steps": 50, "model_config": {"cnum": 8}},
    "torch": torch.__version__,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny DeepFill v2 checkpoint as `inpaint train` writes it, plus an integer extra tensor."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("run") / "best.safetensors"
    extra = {"train.step": torch.tensor([40], dtype=torch.int64)}
    save_checkpoint(path, create_model("deepfill_v2", cnum=8), provenance=PROVENANCE, extra_tensors=extra)
    return path


@pytest.fixture(autouse=True)
def _no_user_catalog(monkeypatch, tmp_path):
    monkeypatch.delenv("INPAINT_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    load_catalog.cache_clear()
    yield
    load_catalog.cache_clear()


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error:"), captured
    return lines[0]


def test_fp16_export_keeps_metadata_and_prints_an_entry_fill_loads(
    trained, tmp_path, monkeypatch, capsys, run_cli, example
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(["models", "export", str(trained), "--out", "exported.safetensors"]) == 0
    printed = capsys.readouterr().out

    # The tensors: fp16, each exactly the fp32 value rounded to fp16; the integer tensor untouched.
    source, exported = read_checkpoint(trained), read_checkpoint(tmp_path / "exported.safetensors")
    assert sorted(exported.state_dict) == sorted(source.state_dict)
    for key, value in source.state_dict.items():
        assert value.dtype == torch.float32 and exported.state_dict[key].dtype == torch.float16, key
        assert torch.equal(exported.state_dict[key], value.half()), key
    assert exported.extra_tensors["train.step"].dtype == torch.int64
    assert torch.equal(exported.extra_tensors["train.step"], torch.tensor([40]))
    # The metadata: arch, config and the training provenance, with a record of the export.
    defaults = {"tf_padding": False, "tf_resize": False, "channel_order": "rgb"}
    assert (exported.arch, exported.config) == ("deepfill_v2", {"cnum": 8, **defaults})
    export = exported.provenance.pop("export")
    assert exported.provenance == json.loads(json.dumps(PROVENANCE))
    assert export == {"dtype": "fp16", "source_sha256": hashlib.sha256(trained.read_bytes()).hexdigest()}

    # The entry: ready to paste into a catalog in another folder (its source is absolute: a catalog resolves
    # relative sources against its own folder), with the file's real hash and size.
    catalog = tmp_path / "config" / "weights.toml"
    catalog.parent.mkdir()
    catalog.write_text(printed)
    entry = read_toml(catalog, "the catalog", "")["models"]["deepfill_v2.exported"]
    data = (tmp_path / "exported.safetensors").read_bytes()
    assert Path(entry["source"]).is_absolute()
    assert os.path.samefile(entry["source"], tmp_path / "exported.safetensors")
    assert entry == {
        "arch": "deepfill_v2",
        "source": os.path.join(os.getcwd(), "exported.safetensors"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "resolution": 64,
        "steps": 40,
        "wall_time": "1 h 52 min",
        "val_hole_psnr": 21.23,
        "val_hole_ssim": 0.612,
        "val_hole_l1": 0.0457,
        "data": "/data/photos (12 images)",
    }
    assert len(data) < trained.stat().st_size * 0.6  # half the bytes, plus the header

    # `fill` finds it through a user catalog, verifies it and fills the example photo.
    monkeypatch.setenv("INPAINT_WEIGHTS", str(catalog))
    photo, mask = example
    out = tmp_path / "filled.png"
    argv = ["fill", str(photo), "--mask", str(mask), "--model", "deepfill_v2.exported", "--out", str(out), "--json"]
    assert run_cli(argv) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "deepfill_v2.exported"
    before, after, hole = read_image(photo).pixels, read_image(out).pixels, read_mask(mask)
    assert np.array_equal(after[~hole], before[~hole])
    assert not np.array_equal(after[hole], before[hole])


def test_json_has_the_same_fields_and_name_overrides_the_tag(trained, tmp_path, capsys, run_cli) -> None:
    dst = tmp_path / "out" / "small.safetensors"
    assert run_cli(["models", "export", str(trained), "--out", str(dst), "--name", "deepfill_v2.mine", "--json"]) == 0
    captured = capsys.readouterr()
    entry = json.loads(captured.out)
    assert entry["name"] == "deepfill_v2.mine" and entry["source"] == str(dst)
    assert entry["sha256"] == hashlib.sha256(dst.read_bytes()).hexdigest() and entry["size"] == dst.stat().st_size
    assert "wrote" in captured.err  # the log line goes to stderr, stdout is the JSON alone

    path = tmp_path / "round.toml"
    path.write_text(entry_to_toml(entry))
    table = read_toml(path, "the catalog", "")["models"]["deepfill_v2.mine"]
    assert table == {key: value for key, value in entry.items() if key != "name"}


def test_bf16_and_fp32(trained, tmp_path, run_cli) -> None:
    source = read_checkpoint(trained)
    for dtype, torch_dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        dst = tmp_path / f"{dtype}.safetensors"
        assert run_cli(["models", "export", str(trained), "--out", str(dst), "--dtype", dtype, "--json"]) == 0
        exported = read_checkpoint(dst)
        for key, value in source.state_dict.items():
            assert torch.equal(exported.state_dict[key], value.to(torch_dtype)), (dtype, key)
        assert exported.extra_tensors["train.step"].dtype == torch.int64
        assert exported.provenance["export"]["dtype"] == dtype


def test_exporting_onto_the_source_is_refused(trained, tmp_path, monkeypatch, capsys, run_cli) -> None:
    before = (trained.read_bytes(), trained.stat().st_mtime_ns)
    link = tmp_path / "link.safetensors"
    link.symlink_to(trained)
    hard = tmp_path / "hard.safetensors"
    os.link(trained, hard)
    monkeypatch.chdir(trained.parent)
    for dst in (str(trained), "./best.safetensors", str(link), str(hard)):
        assert run_cli(["models", "export", str(trained), "--out", dst]) == 2
        assert "source checkpoint itself" in one_line_error(capsys)
    assert (trained.read_bytes(), trained.stat().st_mtime_ns) == before
    assert sorted(p.name for p in trained.parent.iterdir()) == ["best.safetensors"]  # no temp file left


def test_bad_sources_names_and_dtypes(trained, tmp_path, capsys, run_cli) -> None:
    marker = tmp_path / "pwned"
    evil = write_live_pickle(tmp_path / "model.pth", marker)
    dst = tmp_path / "out.safetensors"
    assert run_cli(["models", "export", str(evil), "--out", str(dst)]) == 1
    assert "model.pth" in one_line_error(capsys) and not marker.exists()

    cases = [
        (["--out", str(tmp_path / "out.pt")], "out.pt"),
        (["--out", str(dst), "--dtype", "int8"], "--dtype int8"),
        (["--out", str(dst), "--name", "glcic.x"], "deepfill_v2.TAG"),
        (["--out", str(tmp_path / "a b.safetensors")], "pass --name"),
    ]
    for args, expected in cases:
        assert run_cli(["models", "export", str(trained), *args]) == 2
        assert expected in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]  # nothing written


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.4, 45, 59.6, 323.4, 3570, 3600, 6731.4)] == [
        "0 s",
        "45 s",
        "1 min",
        "5 min",
        "1 h",
        "1 h",
        "1 h 52 min",
    ]
