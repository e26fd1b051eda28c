"""The exit-code rule (inpaint_cli.errors), case by case: 2 = the command line is wrong, found before any
work; 1 = a failure once the work started; 130 = Ctrl-C; 0 = done, also when stdout's reader left early."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    y, x = np.mgrid[0:32, 0:40]
    image = np.stack([x * 6, y * 7, (x + y) * 3], -1).astype(np.uint8)
    hole = np.zeros((32, 40), np.uint8)
    hole[8:16, 10:20] = 255
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    cv2.imwrite(str(tmp_path / "mask.png"), hole)
    return tmp_path / "photo.png", tmp_path / "mask.png"


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_missing_image_is_a_runtime_failure(pair, tmp_path, capsys, run_cli):
    _, mask = pair
    assert run_cli(["fill", str(tmp_path / "nope.png"), "--mask", str(mask)]) == EXIT_FAILURE
    assert _error_line(capsys) == f"error: {tmp_path / 'nope.png'}: no such file; check the path"


def test_mask_of_another_size_is_a_runtime_failure_like_a_missing_file(pair, tmp_path, capsys, run_cli):
    photo, _ = pair
    cv2.imwrite(str(tmp_path / "small.png"), np.full((8, 8), 255, np.uint8))
    out = tmp_path / "o.png"
    assert run_cli(["fill", str(photo), "--mask", str(tmp_path / "small.png"), "--out", str(out)]) == EXIT_FAILURE
    assert "8x8 does not match" in _error_line(capsys) and not out.exists()


def test_unknown_model_name_is_a_usage_error(pair, capsys, run_cli):
    photo, mask = pair
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", "no_such_model"]) == EXIT_USAGE
    assert _error_line(capsys).startswith("error: unknown model 'no_such_model'")
    assert not photo.with_name("photo_filled.png").exists()


def test_missing_safetensors_file_is_a_runtime_failure_like_a_missing_image(pair, tmp_path, capsys, run_cli):
    photo, mask = pair
    missing = tmp_path / "gone.safetensors"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", str(missing)]) == EXIT_FAILURE
    assert "gone.safetensors" in _error_line(capsys)


def test_click_usage_errors_exit_2(pair, run_cli):
    photo, mask = pair
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--no-such-option"]) == EXIT_USAGE
    assert run_cli(["fill"]) == EXIT_USAGE  # missing argument


def test_conflicting_options_are_a_usage_error(pair, capsys, run_cli):
    photo, mask = pair
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--out", "-", "--json"]) == EXIT_USAGE
    assert "--json and PNG on stdout would mix" in _error_line(capsys)


def test_folder_fill_that_wrote_one_of_five_exits_1(pair, tmp_path, capsys, run_cli):
    photo, mask = pair
    folder, outs = tmp_path / "batch", tmp_path / "outs"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo.read_bytes())
    for name in "bcde":  # four of another size than the mask: each a runtime failure
        cv2.imwrite(str(folder / f"{name}.png"), np.zeros((20, 20, 3), np.uint8))
    assert run_cli(["fill", str(folder), "--mask", str(mask), "--out", str(outs)]) == EXIT_FAILURE
    assert sorted(p.name for p in outs.iterdir()) == ["a.png"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == "4 of 5 images failed; the other was written"


def test_ctrl_c_exits_130(pair, monkeypatch, capsys, run_cli):
    import inpaint_cli.fill as fill_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    photo, mask = pair
    monkeypatch.setattr(fill_module, "fill_files", interrupted)
    assert run_cli(["fill", str(photo), "--mask", str(mask)]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


def test_plural_with_an_empty_mask_is_a_runtime_failure(pair, tmp_path, capsys, run_cli):
    photo, _ = pair
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((32, 40), np.uint8))
    code = run_cli(["plural", str(photo), "--mask", str(tmp_path / "empty.png"), "--n", "2", "--seed", "0"])
    assert code == EXIT_FAILURE
    assert "the mask has no hole pixels" in capsys.readouterr().err


# -- a closed stdout ---------------------------------------------------------------------------------


def _run_with_closed_stdout(*args: str) -> subprocess.CompletedProcess:
    """Run `inpaint ARGS` with a stdout pipe whose reader has already gone: every write to it fails
    with EPIPE, which is what `| head -3` does to the lines after the third, deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "inpaint_cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=300,
        )
    finally:
        os.close(write_end)


def test_plural_json_into_a_closed_pipe_ends_cleanly(pair, tmp_path):
    photo, mask = pair
    samples = tmp_path / "samples"
    done = _run_with_closed_stdout(
        "plural", str(photo), "--mask", str(mask), "--n", "3", "--seed", "0", "--json", "--out-dir", str(samples)
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert len(list(samples.glob("*.png"))) == 3  # the work is done even though nobody reads the report


def test_models_list_into_a_closed_pipe_ends_cleanly():
    for args in (("models", "list"), ("models", "list", "--json")):
        done = _run_with_closed_stdout(*args)
        assert (done.returncode, done.stderr) == (0, ""), args


def test_folder_fill_into_a_closed_pipe_still_fills_every_image(pair, tmp_path):
    photo, mask = pair
    folder, outs = tmp_path / "batch", tmp_path / "outs"
    folder.mkdir()
    for name in "abc":
        (folder / f"{name}.png").write_bytes(photo.read_bytes())
    done = _run_with_closed_stdout("fill", str(folder), "--mask", str(mask), "--out", str(outs))
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(p.name for p in outs.iterdir()) == ["a.png", "b.png", "c.png"]


# -- global options --------------------------------------------------------------------------------------


def test_verbose_works_after_the_subcommand_and_an_option_value_stays_put(pair, run_cli, capsys):
    from inpaint_cli.cli.root import _hoist_verbose

    photo, mask = pair
    assert _hoist_verbose(["fill", str(photo), "-v", "--mask", str(mask)]) == [
        "--verbose",
        "fill",
        str(photo),
        "--mask",
        str(mask),
    ]
    assert _hoist_verbose(["models", "list", "--verbose"]) == ["--verbose", "models", "list"]
    assert _hoist_verbose(["fill", str(photo), "--mask", "-v"]) == ["fill", str(photo), "--mask", "-v"]
    assert _hoist_verbose(["fill", "--", "-v"]) == ["fill", "--", "-v"]  # after --, a file named -v
    # End to end: a subcommand's -v is accepted (it was "No such option: -v").
    assert run_cli(["models", "list", "telea", "-v"]) == 0
    assert "telea" in capsys.readouterr().out


def test_help_is_fast_and_offers_completion():
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "inpaint_cli", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0
    assert "--install-completion" in done.stdout and "--show-completion" in done.stdout
    # 0.5 s on an idle machine; the bound leaves room for a shared CI runner (it measures interpreter start too).
    assert elapsed < 1.5, elapsed
