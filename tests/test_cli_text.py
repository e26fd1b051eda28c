"""What the user wrote reaches the screen as written: file names and values in errors and warnings are not
read as rich markup, and `--help` shows its texts (brackets included) with click-style value names."""

from __future__ import annotations

import logging
import re

import pytest

from inpaint_cli.cli.output import setup_logging

COMMANDS = [
    [],
    ["fill"],
    ["plural"],
    ["train"],
    ["benchmark"],
    ["doctor"],
    ["models"],
    ["models", "list"],
    ["models", "info"],
    ["models", "download"],
    ["models", "verify"],
    ["models", "export"],
    ["models", "convert"],
    ["masks"],
    ["masks", "generate"],
]


@pytest.mark.parametrize("name", ["photo[draft].safetensors", "a[/x]b.safetensors", "c[bold]d[/].safetensors"])
def test_errors_print_file_names_verbatim(run_cli, capsys, tmp_path, name) -> None:
    source = tmp_path / name
    code = run_cli(["models", "export", str(source), "--out", str(tmp_path / "out.safetensors")])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"error: {source} does not exist; check the path or pick a model from `inpaint models list`\n"


def test_log_records_print_verbatim(capsys) -> None:
    setup_logging()
    logging.getLogger("inpaint_cli").warning("skipped %s", "a[/x] photo[draft].png")
    assert capsys.readouterr().err == "warning: skipped a[/x] photo[draft].png\n"


@pytest.fixture(autouse=True)
def _wide(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # help lines unwrapped, so that the assertions can find them


def _help(run_cli, capsys, command: list[str]) -> str:
    assert run_cli([*command, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [["models"], ["models", "convert"]])
def test_help_keeps_brackets(run_cli, capsys, command) -> None:
    assert "'inpaint-cli[convert]'" in _help(run_cli, capsys, command)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "inpaint")
def test_help_names_values_as_click_does(run_cli, capsys, command) -> None:
    text = _help(run_cli, capsys, command)
    assert not re.search(r"<(bool|str|int|float|list\[\w+\])", text)  # Typer 0.2x's Python types
    assert not re.search(r"\{\w+\}", text)  # Typer 0.2x's {images}... for a required argument
    assert "Show this message and exit." in text


def test_help_usage_and_value_names(run_cli, capsys) -> None:
    text = _help(run_cli, capsys, ["fill"])
    assert re.search(r"Usage: .* fill \[OPTIONS\] IMAGES\.\.\.", text)
    assert re.search(r"--seed +INTEGER +Seed for models that sample", text)
    assert re.search(r"--dilate +INTEGER \[x>=0\] +Grow the hole", text)
    assert re.search(r"--half +fp16 on GPUs", text)  # a switch takes no value
    assert re.search(r"Usage: .* models list \[OPTIONS\] \[PATTERN\]", _help(run_cli, capsys, ["models", "list"]))


def test_help_describes_every_option(run_cli, capsys) -> None:
    models = _help(run_cli, capsys, ["models"])
    assert "List, inspect, download, verify, export and convert checkpoints." in models
    assert re.search(r"--json +Everything as one JSON object\.", _help(run_cli, capsys, ["doctor"]))
    assert re.search(r"--json +One JSON object per checkpoint\.", _help(run_cli, capsys, ["models", "verify"]))


def test_a_failed_image_of_a_folder_fill_is_named_verbatim(run_cli, capsys, tmp_path) -> None:
    """The per-image error line of a folder fill (one unreadable image among good ones)."""
    import cv2
    import numpy as np

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.png"), np.full((16, 16, 3), 128, np.uint8))
    (folder / "bad[bold] photo[draft].png").write_bytes(b"not a png")
    code = run_cli(["fill", str(folder), "--box", "4,4,4,4", "--model", "telea", "--out", str(tmp_path / "out/")])
    err = capsys.readouterr().err
    assert code == 1
    assert "bad[bold] photo[draft].png" in err and (tmp_path / "out" / "good.png").exists()
