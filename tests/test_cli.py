"""`inpaint fill` and friends end to end: files, directories, pipes, JSON, every bad input, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import write_live_pickle

from inpaint_cli.registry import create_model, shipped_archs
from inpaint_cli.weights import load_catalog, save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, pixels: np.ndarray) -> Path:
    """Write RGB(A) pixels with OpenCV (which wants BGR)."""
    if pixels.ndim == 3 and pixels.shape[2] >= 3:
        pixels = pixels[..., [2, 1, 0, *range(3, pixels.shape[2])]]
    assert cv2.imwrite(str(path), pixels)
    return path


def read(path: Path) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels.ndim == 3 and pixels.shape[2] >= 3:
        pixels = pixels[..., [2, 1, 0, *range(3, pixels.shape[2])]]
    return pixels


@pytest.fixture
def photo(tmp_path, rng) -> Path:
    y, x = np.mgrid[0:48, 0:64]
    image = np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8)
    image = (image.astype(int) + rng.integers(0, 20, image.shape)).clip(0, 255).astype(np.uint8)
    return write(tmp_path / "photo.png", image)


@pytest.fixture
def mask(tmp_path) -> Path:
    hole = np.zeros((48, 64), np.uint8)
    hole[10:22, 20:36] = 255
    return write(tmp_path / "mask.png", hole)


def hole_of(mask_path: Path) -> np.ndarray:
    return cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127


@pytest.mark.parametrize("model", ["telea", "ns"])
def test_fill_writes_output_known_pixels_bit_exact(photo, mask, tmp_path, capsys, model, run_cli):
    out = tmp_path / "out.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--out", str(out), "--model", model]) == 0
    assert capsys.readouterr().out.strip() == str(out)  # the path on stdout, nothing else
    before, after, hole = read(photo), read(out), hole_of(mask)
    assert np.array_equal(after[~hole], before[~hole])
    assert not np.array_equal(after[hole], before[hole])  # the noise under the hole was replaced


def test_fill_defaults_beside_input_and_the_bundled_deepfill_v1_is_the_default(photo, mask, capsys, run_cli):
    assert run_cli(["fill", str(photo), "--mask", str(mask)]) == 0
    expected = photo.with_name("photo_filled.png")
    assert capsys.readouterr().out.strip() == str(expected) and expected.is_file()
    assert load_catalog().global_default == "deepfill_v1.campaign-128"


def test_fill_json_lines(photo, mask, tmp_path, capsys, run_cli):
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--out", str(out), "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["input"] == str(photo) and record["output"] == str(out)
    assert record["model"] == "deepfill_v1.campaign-128"
    assert record["seconds"] >= 0 and abs(record["hole_fraction"] - 12 * 16 / (48 * 64)) < 1e-6


def test_fill_directories_pair_by_stem(tmp_path, rng, capsys, run_cli):
    images, masks, outs = tmp_path / "images", tmp_path / "masks", tmp_path / "outs"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b"):
        write(images / f"{name}.png", rng.integers(0, 255, (32, 40, 3), dtype=np.uint8))
    hole_a = np.zeros((32, 40), np.uint8)
    hole_a[2:8, 2:8] = 255
    hole_b = np.zeros((32, 40), np.uint8)
    hole_b[20:30, 30:38] = 255
    write(masks / "a.png", hole_a)
    write(masks / "b_mask.png", hole_b)
    assert run_cli(["fill", str(images), "--mask", str(masks), "--out", str(outs)]) == 0
    assert sorted(capsys.readouterr().out.split()) == [str(outs / "a.png"), str(outs / "b.png")]
    for name, hole in (("a", hole_a > 0), ("b", hole_b > 0)):
        before, after = read(images / f"{name}.png"), read(outs / f"{name}.png")
        assert np.array_equal(after[~hole], before[~hole])
        assert not np.array_equal(after[hole], before[hole])


def test_missing_mask_in_directory_is_a_runtime_failure(tmp_path, photo, capsys, run_cli):
    (tmp_path / "masks").mkdir()
    assert run_cli(["fill", str(photo), "--mask", str(tmp_path / "masks")]) == 1  # a missing file: 1
    assert "no mask named photo" in capsys.readouterr().err


def test_stdin_to_stdout_pipeline(photo, mask):
    """A real process: PNG in on stdin, PNG out on stdout, composable in a shell pipeline."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "inpaint_cli", "fill", "-", "--mask", str(mask), "--out", "-"],
        input=photo.read_bytes(),
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    after = cv2.imdecode(np.frombuffer(done.stdout, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    hole = hole_of(mask)
    assert np.array_equal(after[~hole], read(photo)[~hole])


def test_sixteen_bit_rgba_keeps_depth_and_alpha(tmp_path, rng, mask, run_cli):
    image = rng.integers(0, 65535, (48, 64, 4), dtype=np.uint16)
    src = write(tmp_path / "deep.png", image)
    out = tmp_path / "deep_out.png"
    assert run_cli(["fill", str(src), "--mask", str(mask), "--out", str(out)]) == 0
    after, hole = read(out), hole_of(mask)
    assert after.dtype == np.uint16 and after.shape == (48, 64, 4)
    assert np.array_equal(after[..., 3], image[..., 3])  # alpha untouched, even under the hole
    assert np.array_equal(after[~hole], image[~hole])


# -- bad input: one line on stderr naming the file, the right exit code, no output file ---------------


def _assert_one_line_error(capsys, *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err[0]


def test_missing_image(tmp_path, mask, capsys, run_cli):
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(tmp_path / "nope.png"), "--mask", str(mask), "--out", str(out)]) == 1
    _assert_one_line_error(capsys, "nope.png")
    assert not out.exists()


def test_not_an_image(tmp_path, mask, capsys, run_cli):
    text = tmp_path / "notes.png"
    text.write_text("hello, I am not a PNG")
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(text), "--mask", str(mask), "--out", str(out)]) == 1
    _assert_one_line_error(capsys, "notes.png")
    assert not out.exists()


def test_truncated_image(tmp_path, photo, mask, capsys, run_cli):
    data = photo.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(cut), "--mask", str(mask), "--out", str(out)]) == 1
    _assert_one_line_error(capsys, "cut.png", "truncated")
    assert not out.exists()


def test_empty_mask_copies_input_with_warning(tmp_path, photo, capsys, run_cli):
    empty = write(tmp_path / "empty.png", np.zeros((48, 64), np.uint8))
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(empty), "--out", str(out)]) == 0
    assert "no hole pixels" in capsys.readouterr().err
    assert np.array_equal(read(out), read(photo))


def test_fully_masked_image(tmp_path, photo, capsys, run_cli):
    full = write(tmp_path / "full.png", np.full((48, 64), 255, np.uint8))
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(full), "--out", str(out)]) == 1
    _assert_one_line_error(capsys, "photo.png", "covers the whole image")
    assert not out.exists()


def test_mask_size_mismatch_and_resize_mask(tmp_path, photo, capsys, run_cli):
    small = write(tmp_path / "small.png", np.pad(np.full((4, 4), 255, np.uint8), 10))
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(small), "--out", str(out)]) == 1  # found by reading
    _assert_one_line_error(capsys, "small.png", "photo.png", "--resize-mask")
    assert not out.exists()
    assert run_cli(["fill", str(photo), "--mask", str(small), "--out", str(out), "--resize-mask"]) == 0
    assert out.is_file()


def test_decompression_bomb_guard(tmp_path, photo, mask, capsys, run_cli):
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--out", str(out), "--max-pixels", "1000"]) == 1
    _assert_one_line_error(capsys, "photo.png", "--max-pixels")
    assert not out.exists()


def test_output_that_is_an_input_is_refused(photo, mask, capsys, run_cli):
    before = photo.read_bytes()
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--out", str(photo)]) == 2
    _assert_one_line_error(capsys, str(photo), "input")
    assert photo.read_bytes() == before


def test_pickle_checkpoint_is_refused_without_unpickling(tmp_path, photo, mask, capsys, run_cli):
    marker = tmp_path / "pwned"
    evil = write_live_pickle(tmp_path / "model.pth", marker)
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", str(evil), "--out", str(out)]) == 1
    _assert_one_line_error(capsys, "model.pth", "safetensors")
    assert not marker.exists() and not out.exists()


def test_checkpoint_for_another_arch(tmp_path, photo, mask, capsys, monkeypatch, run_cli):
    probe_file = tmp_path / "probe.safetensors"
    save_checkpoint(probe_file, create_model("test_probe"))
    catalog = tmp_path / "weights.toml"
    from inpaint_cli.weights import sha256_file

    catalog.write_text(
        f'[models."deepfill_v2.wrong"]\narch = "deepfill_v2"\nsource = "probe.safetensors"\n'
        f'sha256 = "{sha256_file(probe_file)}"\n'
    )
    monkeypatch.setenv("INPAINT_WEIGHTS", str(catalog))
    out = tmp_path / "o.png"
    code = run_cli(["fill", str(photo), "--mask", str(mask), "--model", "deepfill_v2.wrong", "--out", str(out)])
    assert code == 1
    _assert_one_line_error(capsys, "probe.safetensors", "test_probe", "deepfill_v2")
    assert not out.exists()


def test_safetensors_path_loads_through_its_metadata(tmp_path, photo, mask, run_cli):
    probe_file = tmp_path / "probe.safetensors"
    save_checkpoint(probe_file, create_model("test_probe", value=0.5))
    out = tmp_path / "o.png"
    command = ["fill", str(photo), "--mask", str(mask), "--model", str(probe_file), "--out", str(out)]
    assert run_cli([*command, "--blend", "none"]) == 0
    hole = hole_of(mask)
    assert np.all(read(out)[hole] == 128)  # 0.5 -> 127.5 rounds half up to 128


def test_batch_with_one_bad_file_writes_the_rest_and_exits_1(tmp_path, photo, mask, capsys, run_cli):
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo.read_bytes())
    (folder / "b.png").write_bytes(b"garbage")
    outs = tmp_path / "outs"
    assert run_cli(["fill", str(folder), "--mask", str(mask), "--out", str(outs)]) == 1
    assert (outs / "a.png").is_file() and not (outs / "b.png").exists()
    assert "1 of 2 images failed; the other was written" in capsys.readouterr().err


def test_ctrl_c_exits_130_without_partial_output(tmp_path, photo, mask, monkeypatch, capsys, run_cli):
    import inpaint_cli.fill as fill_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fill_module, "fill_files", interrupted)
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--out", str(out)]) == 130
    assert not out.exists() and "interrupted" in capsys.readouterr().err


def test_usage_errors_exit_2(photo, mask, capsys, run_cli):
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--strategy", "tiles"]) == 2
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", "no_such_model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert run_cli(["fill"]) == 2  # the image missing: click's own usage error


def test_models_list_and_info_json(capsys, run_cli):
    assert run_cli(["models", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {row["name"]: row for row in rows}
    assert by_name["deepfill_v1.campaign-128"]["global_default"] and not by_name["telea"]["global_default"]
    assert not by_name["telea"]["needs_weights"]
    (deepfill_v2,) = [row for row in rows if row["arch"] == "deepfill_v2"]
    assert deepfill_v2["pad_multiple"] == 8 and deepfill_v2["status"] == "bundled" and deepfill_v2["default"]
    bundled = {row["arch"]: row for row in rows if row["status"] == "bundled" and row["default"]}
    learned = {spec.name for spec in shipped_archs() if spec.contract.needs_weights}
    assert set(bundled) <= learned  # bundled defaults are of learned models, and every paper ships one
    assert {"context_encoder", "glcic", "deepfill_v1", "deepfill_v2", "piigan"} <= set(bundled)
    assert bundled["context_encoder"]["fixed_size"] == 128
    assert bundled["piigan"]["can_sample"] and not bundled["glcic"]["can_sample"]
    assert run_cli(["models", "list", "t*", "--json"]) == 0
    assert {json.loads(line)["name"] for line in capsys.readouterr().out.splitlines()} == {"telea"} | {
        name for name in by_name if name.startswith("t")
    }
    assert run_cli(["models", "info", "ns", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == "ns"


def test_doctor_reports_versions_and_defaults(capsys, run_cli):
    assert run_cli(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["versions"]["torch"] == torch.__version__.split("+")[0] or info["versions"]["torch"].startswith(
        torch.__version__.split("+")[0]
    )
    assert info["threads"]["torch threads"] == torch.get_num_threads()
    assert info["checkpoints"]["global default"] == "deepfill_v1.campaign-128"


def test_help_does_not_import_torch():
    code = "import sys; from inpaint_cli.cli import app; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.strip() == "False"


def test_several_inputs_with_a_file_out_is_a_usage_error(tmp_path, run_cli, capsys) -> None:
    images = []
    for name in ("a.png", "b.png"):
        path = tmp_path / name
        cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
        images.append(str(path))
    out = tmp_path / "one.png"
    assert run_cli(["fill", *images, "--mask", images[0], "--out", str(out)]) == 2
    assert "2 inputs need a directory, not a file" in capsys.readouterr().err
    assert not out.exists()  # no directory named one.png either


def test_version(run_cli, capsys) -> None:
    from inpaint_cli import __version__

    assert run_cli(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"inpaint {__version__}"


def test_models_list_matches_substrings_and_says_when_nothing_matches(run_cli, capsys) -> None:
    assert run_cli(["models", "list", "v2", "--json"]) == 0
    names = [json.loads(line)["name"] for line in capsys.readouterr().out.splitlines()]
    assert names and all("v2" in name for name in names)
    assert run_cli(["models", "list", "mine"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no model matches 'mine'" in captured.err
