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


# ------------------------------------------------------------------------------- balance and synthetic


def _two_folders(root: Path, small: int, large: int) -> list[Path]:
    files = []
    for name, count in (("photos", small), ("textures", large)):
        (root / name).mkdir(parents=True)
        files += write_folder(root / name, count)
    return sorted(files)


def test_balance_draws_each_top_level_folder_equally_and_each_file_once_per_epoch(tmp_path) -> None:
    files = _two_folders(tmp_path, small=3, large=12)
    groups = train_data.folder_groups(files, tmp_path)
    assert groups == [0] * 3 + [1] * 12
    folder = train_data.ImageFolder(files)
    sampler = train_data.make_mask_sampler("box")
    plain = train_data.TrainBatches(folder, sampler, size=24, batch=4, seed=0)
    balanced = train_data.TrainBatches(folder, sampler, size=24, batch=4, seed=0, groups=groups)
    drawn_plain = [plain.file_index(step, i) for step in range(6) for i in range(4)]
    drawn = [balanced.file_index(step, i) for step in range(6) for i in range(4)]
    assert sum(groups[j] == 0 for j in drawn_plain) < 8  # 3 of 15 files: a fifth of the draws
    assert sum(groups[j] == 0 for j in drawn) == 12  # half of the 24 draws
    # Within a folder, every file once per (folder) epoch: the first 3 photo draws are the 3 photos.
    photos = [j for j in drawn if groups[j] == 0]
    assert sorted(photos[:3]) == [0, 1, 2] and sorted(photos[3:6]) == [0, 1, 2]
    assert sorted(j for j in drawn if groups[j] == 1) == list(range(3, 15))
    # A pure function of the step: a fresh instance (a resumed run) draws the same.
    again = train_data.TrainBatches(folder, sampler, size=24, batch=4, seed=0, groups=groups)
    assert [again.file_index(step, i) for step in (5, 2) for i in range(4)] == drawn[20:24] + drawn[8:12]


def test_one_folder_or_files_at_the_top_are_groups_too(tmp_path) -> None:
    files = write_folder(tmp_path, 2)
    (tmp_path / "sub").mkdir()
    files += write_folder(tmp_path / "sub", 1)
    assert train_data.folder_groups(files, tmp_path) == [0, 0, 1]


def test_synthetic_samples_are_smooth_and_take_their_share(tmp_path) -> None:
    folder = train_data.ImageFolder(write_folder(tmp_path, 4))
    batches = train_data.TrainBatches(
        folder, train_data.make_mask_sampler("box"), size=32, batch=8, seed=3, synthetic=0.25
    )
    images = torch_free_batch(batches, steps=25)
    smooth_flags = [is_synthetic(image) for image in images]
    assert 0.15 < np.mean(smooth_flags) < 0.35  # 200 samples at p = 0.25
    plain = train_data.TrainBatches(folder, train_data.make_mask_sampler("box"), size=32, batch=8, seed=3)
    assert not any(is_synthetic(image) for image in torch_free_batch(plain, steps=5))
    with pytest.raises(train_data.UsageError, match=r"--synthetic 1\.0"):
        train_data.TrainBatches(folder, train_data.make_mask_sampler("box"), size=32, batch=8, seed=3, synthetic=1.0)


def torch_free_batch(batches: train_data.TrainBatches, steps: int) -> list[np.ndarray]:
    return [batches.sample(step, i)[0] for step in range(steps) for i in range(batches.batch_size)]


def is_synthetic(image: np.ndarray) -> bool:
    """Flat or an exact linear ramp: the second differences along both axes vanish (up to 8-bit rounding)."""
    levels = image * 255
    return bool(np.abs(np.diff(levels, 2, axis=0)).max() <= 2 and np.abs(np.diff(levels, 2, axis=1)).max() <= 2)


def test_synthetic_images_are_flats_and_ramps() -> None:
    rng = np.random.default_rng(0)
    images = [train_data.synthetic_image(16, rng) for _ in range(40)]
    flats = [image for image in images if (image == image[0, 0]).all()]
    assert 10 < len(flats) < 30 and all(image.dtype == np.uint8 and image.shape == (16, 16, 3) for image in images)
    ramps = [image for image in images if not (image == image[0, 0]).all()]
    assert all(is_synthetic(image.astype(np.float32) / 255) for image in ramps)
