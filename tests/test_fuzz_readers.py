"""Fuzzing the readers: truncated, bit-flipped and random files of every image format, and damaged
safetensors headers. 10,000 seeded cases, most through the library readers in-process (fast), a sample
through the CLI. The contract: a file decodes, or fails with one line (InpaintError) naming it; never
another exception, never a traceback, never a partial output file; the CLI exits 1."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint_cli import io, masks
from inpaint_cli.errors import InpaintError
from inpaint_cli.weights import read_checkpoint, read_checkpoint_metadata

REPO = Path(__file__).resolve().parents[1]
CASES = 10_000
IMAGE_CASES = 9_000  # the rest damage safetensors files
CLI_SAMPLE = 150  # of the image cases, also run through `inpaint fill` in-process
SUBPROCESS_SAMPLE = 2  # and a few as a real process, to see that no traceback escapes
MAX_PIXELS = 1_000_000  # a flipped size field must not make a case slow


def _seed_images() -> dict[str, bytes]:
    """One small encoded image per format and layout the readers take."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:12, 0:16]
    rgb8 = (np.stack([x * 15, y * 20, (x + y) * 9], -1) + rng.integers(0, 9, (12, 16, 3))).astype(np.uint8)
    rgba8 = np.dstack([rgb8, np.full((12, 16), 200, np.uint8)])
    rgb16 = rgb8.astype(np.uint16) * 257 + 3
    gray8 = rgb8[..., 0]
    encoded = {}
    for name, ext, pixels in (
        ("rgb8.png", ".png", rgb8),
        ("rgba8.png", ".png", rgba8),
        ("rgb16.png", ".png", rgb16),
        ("gray8.png", ".png", gray8),
        ("rgb8.jpg", ".jpg", rgb8),
        ("gray8.jpg", ".jpg", gray8),
        ("rgb8.webp", ".webp", rgb8),
        ("rgba8.webp", ".webp", rgba8),
        ("rgb8.bmp", ".bmp", rgb8),
        ("rgb8.tif", ".tif", rgb8),
        ("rgb16.tif", ".tif", rgb16),
        ("rgba8.tif", ".tif", rgba8),
    ):
        ok, buffer = cv2.imencode(ext, pixels)
        assert ok, name
        encoded[name] = buffer.tobytes()
    return encoded


def _seed_safetensors() -> bytes:
    """A small safetensors file with the metadata our checkpoints carry (built by hand: no torch)."""
    tensor = np.arange(12, dtype=np.float32).tobytes()
    header = {
        "weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, len(tensor)]},
        "__metadata__": {"format": "inpaint-cli/1", "arch": "telea", "config": "{}"},
    }
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + tensor


def _mutate(data: bytes, rng: np.random.Generator, header_bytes: int) -> bytes:
    """Truncation, bit flips (mostly in the header, where parsers branch), byte runs, or random bytes."""
    kind = rng.integers(0, 4)
    if kind == 0:  # truncated anywhere, including to nothing but a signature
        return data[: int(rng.integers(0, len(data)))]
    buffer = bytearray(data)
    if kind == 1:  # 1-8 bit flips
        span = min(len(buffer), header_bytes) if rng.random() < 0.7 else len(buffer)
        for _ in range(int(rng.integers(1, 9))):
            at = int(rng.integers(0, span))
            buffer[at] ^= 1 << int(rng.integers(0, 8))
        return bytes(buffer)
    if kind == 2:  # a run of random bytes overwritten somewhere
        at = int(rng.integers(0, len(buffer)))
        run = rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
        buffer[at : at + len(run)] = run
        return bytes(buffer)
    # random bytes, half of them behind the real signature
    noise = rng.integers(0, 256, int(rng.integers(1, 512)), dtype=np.uint8).tobytes()
    return data[:8] + noise if rng.random() < 0.5 else noise


def _assert_one_line(message: str, name: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message, message
    assert name in message, message


def _read_image_case(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    for read in (
        lambda: io.read_image(path, max_pixels=MAX_PIXELS),
        lambda: masks.read_mask(path, max_pixels=MAX_PIXELS),
    ):
        try:
            result = read()
        except InpaintError as error:
            _assert_one_line(error.message, str(path))
        else:  # damage the decoder tolerates: still a well-formed result
            pixels = getattr(result, "pixels", result)  # an Image, or a mask array
            assert pixels.ndim in (2, 3) and pixels.size > 0


def test_fuzz_readers(tmp_path, run_cli, capfd):
    rng = np.random.default_rng(20240601)
    seeds = _seed_images()
    names = sorted(seeds)
    target = tmp_path / "case.bin"
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), np.pad(np.full((4, 4), 255, np.uint8), ((4, 4), (6, 6))))  # 12 x 16
    outs = tmp_path / "outs"
    outs.mkdir()
    cli_cases: list[bytes] = []
    for index in range(IMAGE_CASES):
        name = names[index % len(names)]
        data = _mutate(seeds[name], rng, header_bytes=64)
        _read_image_case(target.with_suffix(Path(name).suffix), data)
        if index % (IMAGE_CASES // CLI_SAMPLE) == 0:
            cli_cases.append((name, data))

    safetensors = _seed_safetensors()
    for _ in range(CASES - IMAGE_CASES):
        path = tmp_path / "case.safetensors"
        path.write_bytes(_mutate(safetensors, rng, header_bytes=len(safetensors) - 48))
        for read in (read_checkpoint_metadata, read_checkpoint):
            try:
                read(path)
            except InpaintError as error:
                _assert_one_line(error.message, str(path))

    # Nothing reached stderr from the library readers: not even libpng's or libjpeg's own complaints.
    assert capfd.readouterr().err == ""
    # Through the CLI: exit 1 with one line, or 0 with a whole file; never a partial or temp file.
    for index, (name, data) in enumerate(cli_cases):
        source = tmp_path / f"cli_{index}{Path(name).suffix}"
        source.write_bytes(data)
        out = outs / f"cli_{index}.png"
        code = run_cli(["fill", str(source), "--mask", str(mask), "--out", str(out), "--max-pixels", str(MAX_PIXELS)])
        err = capfd.readouterr().err.strip().splitlines()  # fd level: a codec's own logging counts too
        if code == 0:
            assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED) is not None
        else:
            assert code == 1 and len(err) == 1 and err[0].startswith("error: "), (code, err)
            assert not out.exists()
    assert not [p.name for p in outs.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_fuzzed_files_through_a_real_process(tmp_path):
    rng = np.random.default_rng(7)
    seeds = _seed_images()
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), np.pad(np.full((4, 4), 255, np.uint8), ((4, 4), (6, 6))))
    for index, name in enumerate(("rgb8.png", "rgb16.tif")[:SUBPROCESS_SAMPLE]):
        source = tmp_path / f"bad{Path(name).suffix}"
        source.write_bytes(_mutate(seeds[name], rng, header_bytes=64)[: len(seeds[name]) // 2])  # truncated
        out = tmp_path / f"out_{index}.png"
        done = subprocess.run(
            [sys.executable, "-m", "inpaint_cli", "fill", str(source), "--mask", str(mask), "--out", str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and str(source) in lines[0], done.stderr
        left = [name for name in os.listdir(tmp_path) if name.startswith(("out_", "."))]
        assert left == [], "no output, whole or partial, and no temporary file"


@pytest.mark.parametrize("name", sorted(_seed_images()))
def test_every_seed_image_reads(tmp_path, name):
    """The fuzz starts from files the readers take whole (so it damages real formats, not noise)."""
    path = tmp_path / name
    path.write_bytes(_seed_images()[name])
    assert io.read_image(path).width == 16
