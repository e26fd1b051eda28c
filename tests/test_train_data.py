"""Training-data decoding: each image decoded once, and large JPEGs decoded at reduced size for --short-side."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint_cli.io import read_image
from inpaint_cli.train import data as train_data

REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """The flags of every cv2.imdecode call (io and data both decode through it)."""
    calls: list[int] = []
    real = cv2.imdecode

    def counting(buf, flags):
        calls.append(flags)
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", counting)
    return calls


def smooth(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Low-frequency BGR uint8 pixels: JPEG's DCT scaling and an area resize agree closely on them."""
    noise = np.random.default_rng(seed).uniform(0, 255, (6, 8, 3)).astype(np.float32)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def write_folder(folder: Path, count: int) -> list[Path]:
    """Tiny PNGs and JPEGs of slightly different sizes."""
    paths = []
    for i in range(count):
        path = folder / f"image_{i}.{'png' if i % 2 else 'jpg'}"
        cv2.imwrite(str(path), smooth(40 + 2 * i, 44 + 4 * i, seed=i))
        paths.append(path)
    return paths


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """`jpeg` with an EXIF APP1 segment (little-endian TIFF, one IFD0 entry: Orientation) after SOI."""
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def full_then_area(path: Path, short_side: int) -> np.ndarray:
    """The reference: full decode (read_image) then the area resize."""
    pixels = read_image(path).pixels
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return train_data.scale_short_side(np.ascontiguousarray(pixels[:, :, :3]), short_side)


@pytest.mark.parametrize("short_side", [None, 32])
def test_each_image_is_decoded_once_while_it_fits_the_cache(tmp_path, decodes, short_side) -> None:
    paths = write_folder(tmp_path, 4)
    folder = train_data.ImageFolder(paths, short_side=short_side)
    batches = train_data.TrainBatches(folder, train_data.make_mask_sampler("box"), size=24, batch=3, seed=1)
    for step in range(5):  # 15 samples: every image drawn several times
        batches.batch(step)
    assert len(decodes) == len(paths)
    assert {batches.file_index(s, i) for s in range(5) for i in range(3)} == set(range(len(paths)))
    assert len(decodes) == len(paths)  # picking a file is no reason to decode it again either


def test_an_uncached_image_is_decoded_once_per_draw(tmp_path, decodes) -> None:
    paths = write_folder(tmp_path, 3)
    folder = train_data.ImageFolder(paths, cache_bytes=0)
    batches = train_data.TrainBatches(folder, train_data.make_mask_sampler("box"), size=24, batch=2, seed=0)
    batches.batch(0)
    batches.batch(1)
    assert len(decodes) == 4  # the readability check and the crop share one decode


def test_threads_drawing_the_same_image_share_one_decode(tmp_path, monkeypatch) -> None:
    (path,) = write_folder(tmp_path, 1)
    folder = train_data.ImageFolder([path])
    started, release = threading.Event(), threading.Event()
    calls = []
    real = cv2.imdecode

    def slow(buf, flags):
        calls.append(flags)
        if len(calls) == 1:  # hold the first decode until the second thread has asked for the image
            started.set()
            release.wait(5)
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", slow)
    results: dict[str, np.ndarray | None] = {}

    def load(name: str) -> None:
        results[name] = folder.load(0)

    first = threading.Thread(target=load, args=("first",))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=load, args=("second",))
    second.start()
    second.join(0.2)  # it must wait for the first decode, not start its own
    release.set()
    first.join(5)
    second.join(5)
    assert len(calls) == 1
    assert results["first"] is not None and results["second"] is results["first"]


@pytest.mark.parametrize(
    ("short_side", "factor"),
    [(60, 8), (100, 4), (200, 2), (300, None)],
)
def test_large_jpegs_are_decoded_at_reduced_size(tmp_path, decodes, short_side, factor) -> None:
    path = tmp_path / "big.jpg"
    # Sizes not divisible by 8: the reduced decode rounds up, the target must still be the full image's.
    cv2.imwrite(str(path), smooth(482, 643), [cv2.IMWRITE_JPEG_QUALITY, 95])
    expected = full_then_area(path, short_side)
    decodes.clear()

    folder = train_data.ImageFolder([path], short_side=short_side)
    got = folder.load(0)
    assert len(decodes) == 1
    if factor is None:  # no reduction leaves the short side >= 300: the full decode, bit-exact
        assert decodes[0] == cv2.IMREAD_UNCHANGED
        assert np.array_equal(got, expected)
        return
    assert decodes[0] & ~cv2.IMREAD_IGNORE_ORIENTATION == REDUCED[factor]
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.abs(got.astype(np.float32) - expected).mean() < 2.0  # < 2/255 in [0, 1]


@pytest.mark.parametrize("orientation", [3, 6])  # upside down (the part-filled edge moves), rotated left
def test_reduced_jpeg_decodes_keep_exif_orientation_and_the_val_path(tmp_path, decodes, orientation) -> None:
    plain = tmp_path / "plain.jpg"
    cv2.imwrite(str(plain), smooth(203, 331, seed=3), [cv2.IMWRITE_JPEG_QUALITY, 95])
    path = tmp_path / "turned.jpg"
    path.write_bytes(with_orientation(plain.read_bytes(), orientation))
    expected = full_then_area(path, 40)
    upright = (40, round(331 * 40 / 203)) if orientation == 3 else (round(331 * 40 / 203), 40)
    assert expected.shape == (*upright, 3)
    decodes.clear()

    got = train_data.ImageFolder([path], short_side=40).load(0)
    assert decodes[0] & ~cv2.IMREAD_IGNORE_ORIENTATION == REDUCED[4]
    assert got.shape == expected.shape
    assert np.abs(got.astype(np.float32) - expected).mean() < 2.0

    cases = train_data.make_val_cases([path], 32, train_data.make_mask_sampler("box"), count=1, short_side=40)
    assert np.array_equal(cases[0].image, train_data.to_float(train_data.centre_crop(got, 32)))
    assert len(decodes) == 2  # the val case: one (reduced) decode too
