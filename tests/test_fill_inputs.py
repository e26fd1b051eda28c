"""`inpaint fill` inputs and outputs: the alpha as the mask, 16-bit precision, stdout to a terminal,
and existing results."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
HOLE = (slice(8, 16), slice(10, 20))


def _rgba(tmp_path: Path, *, transparent_hole: bool) -> Path:
    y, x = np.mgrid[0:32, 0:40]
    bgra = np.stack([x * 6, y * 7, (x + y) * 3, np.full_like(x, 255)], -1).astype(np.uint8)
    if transparent_hole:
        bgra[HOLE] = 0  # transparent, and black under it
    path = tmp_path / "cutout.png"
    cv2.imwrite(str(path), bgra)
    return path


def _hole() -> np.ndarray:
    hole = np.zeros((32, 40), bool)
    hole[HOLE] = True
    return hole


@pytest.mark.parametrize("mask_args", [[], ["--mask", "alpha"]])
def test_transparent_hole_is_the_mask_and_comes_back_opaque(tmp_path, run_cli, capsys, mask_args):
    src = _rgba(tmp_path, transparent_hole=True)
    out = tmp_path / "out.png"
    assert run_cli(["fill", str(src), *mask_args, "--out", str(out)]) == 0
    how = "--mask alpha" if mask_args else "no --mask given"
    assert capsys.readouterr().err.strip() == (
        f"info: {src}: {how}; the hole is its transparent pixels (80), filled opaque"
    )
    before, after, hole = cv2.imread(str(src), -1), cv2.imread(str(out), -1), _hole()
    assert np.array_equal(after[~hole], before[~hole])
    assert (after[..., 3] == 255).all()
    # Telea from the gradient around it, not the black under the hole.
    assert after[hole][:, :3].mean() > 40


def test_no_mask_and_no_transparency_is_one_line_and_exit_1(tmp_path, run_cli, capsys):
    src = _rgba(tmp_path, transparent_hole=False)
    assert run_cli(["fill", str(src)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {src}: no --mask given, and the image has no transparent pixels to use as the hole; "
        "pass --mask MASK, --box X,Y,W,H or --mask-color COLOUR"
    )
    assert not src.with_name("cutout_filled.png").exists()


@pytest.mark.parametrize("model", ["telea", "ns"])
def test_sixteen_bit_fill_is_quantised_at_sixteen_bits(tmp_path, run_cli, model):
    """A 16-bit file whose known pixels happen to lie on the 8-bit grid (an 8-bit image saved as 16 bit):
    its hole must not come back as multiples of 257."""
    y, x = np.mgrid[0:32, 0:40]
    image = (np.stack([x * 6, y * 7, (x + y) * 3], -1) * 257).astype(np.uint16)
    hole = _hole()
    cv2.imwrite(str(tmp_path / "deep.png"), image)
    cv2.imwrite(str(tmp_path / "mask.png"), hole.astype(np.uint8) * 255)
    out = tmp_path / "out.png"
    args = ["fill", str(tmp_path / "deep.png"), "--mask", str(tmp_path / "mask.png"), "--out", str(out)]
    assert run_cli([*args, "--model", model]) == 0
    after = cv2.imread(str(out), -1)
    assert after.dtype == np.uint16 and np.array_equal(after[~hole], image[~hole])
    assert (after[hole] % 257 != 0).mean() > 0.5


def test_default_output_that_exists_is_refused_without_overwrite(tmp_path, run_cli, capsys):
    src = _rgba(tmp_path, transparent_hole=True)
    existing = src.with_name("cutout_filled.png")
    existing.write_bytes(b"keep me")
    assert run_cli(["fill", str(src)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {existing}: already exists; pass --overwrite to replace it, or --out another path"
    )
    assert existing.read_bytes() == b"keep me"
    assert run_cli(["fill", str(src), "--overwrite"]) == 0
    assert cv2.imread(str(existing), -1).shape == (32, 40, 4)


def _run_on_a_terminal(args: list[str], stdin: bytes | None = None) -> tuple[int, str, bytes]:
    """Run `inpaint ARGS` with stdout on a pseudo-terminal; (exit code, stderr, what reached the terminal)."""
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "inpaint_cli", *args],
            input=stdin,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
        os.set_blocking(controller, False)
        try:
            shown = os.read(controller, 1 << 16)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(terminal)
        os.close(controller)
    return done.returncode, done.stderr.decode(), shown


HINT = (
    "error: <stdout>: standard output is a terminal, and a PNG there is binary noise; "
    "redirect it (> filled.png) or pass --out FILE"
)


def test_png_to_a_terminal_is_refused_with_a_hint(tmp_path):
    src = _rgba(tmp_path, transparent_hole=True)
    code, err, shown = _run_on_a_terminal(["fill", str(src), "--out", "-"])
    assert (code, err.strip(), shown) == (2, HINT, b"")
    # Stdin in and no --out means stdout out: refused the same way on a terminal.
    code, err, shown = _run_on_a_terminal(["fill", "-"], stdin=src.read_bytes())
    assert (code, err.strip(), shown) == (2, HINT, b"")
