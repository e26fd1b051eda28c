"""Benchmark mask sets: bucket sampling per kind, seeded byte-identical sets, manifests, parsing."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from inpaint_cli.errors import InpaintError, UsageError
from inpaint_cli.masks import hole_ratio, read_mask
from inpaint_cli.masks.sets import (
    MASK_KINDS,
    generate_mask_set,
    load_mask_set,
    parse_ratio,
    parse_size,
    ratio_label,
    sample_in_bucket,
)


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("bucket", [(0.05, 0.15), (0.45, 0.60)])
@pytest.mark.parametrize("shape", [(64, 64), (48, 80)])
def test_sample_in_bucket_hits_the_bucket(kind: str, bucket: tuple[float, float], shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    low, high = bucket
    for _ in range(4):
        mask = sample_in_bucket(kind, *shape, low, high, rng)
        assert mask.shape == shape and mask.dtype == bool
        assert low <= hole_ratio(mask) < high


def test_sample_in_bucket_is_seeded() -> None:
    first = sample_in_bucket("strokes", 64, 64, 0.3, 0.45, np.random.default_rng(9))
    again = sample_in_bucket("strokes", 64, 64, 0.3, 0.45, np.random.default_rng(9))
    other = sample_in_bucket("strokes", 64, 64, 0.3, 0.45, np.random.default_rng(10))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_sample_in_bucket_errors() -> None:
    with pytest.raises(UsageError, match="--kind blob"):
        sample_in_bucket("blob", 64, 64, 0.1, 0.2, np.random.default_rng(0))
    # 8×8 = 64 px: no whole number of pixels is 50.1-50.2 % of it.
    with pytest.raises(InpaintError, match="could not draw a box mask"):
        sample_in_bucket("box", 8, 8, 0.501, 0.502, np.random.default_rng(0), max_tries=20)


def _set_bytes(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_mask_sets_are_byte_identical_for_a_seed(tmp_path) -> None:
    records = generate_mask_set(tmp_path / "a", "mixed", 0.15, 0.30, 3, 48, 40, seed=5)
    generate_mask_set(tmp_path / "b", "mixed", 0.15, 0.30, 3, 48, 40, seed=5)
    generate_mask_set(tmp_path / "c", "mixed", 0.15, 0.30, 3, 48, 40, seed=6)
    a, b, c = (_set_bytes(tmp_path / name) for name in "abc")
    assert sorted(a) == ["manifest.json", "mask_0000.png", "mask_0001.png", "mask_0002.png"]
    assert a == b
    assert all(a[name] != c[name] for name in a)
    assert len(records) == 3


def test_mask_i_does_not_depend_on_n(tmp_path) -> None:
    generate_mask_set(tmp_path / "two", "strokes", 0.05, 0.15, 2, 64, 64, seed=1)
    generate_mask_set(tmp_path / "four", "strokes", 0.05, 0.15, 4, 64, 64, seed=1)
    for name in ("mask_0000.png", "mask_0001.png"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "four" / name).read_bytes()


def test_manifest_and_png_contents(tmp_path) -> None:
    folder = tmp_path / "set"
    generate_mask_set(folder, "box", 0.30, 0.45, 2, 40, 32, seed=11)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "box" and manifest["bucket"] == "30-45" and manifest["seed"] == 11
    assert manifest["size"] == "40x32" and (manifest["width"], manifest["height"]) == (40, 32)
    assert [record["file"] for record in manifest["masks"]] == ["mask_0000.png", "mask_0001.png"]
    for record in manifest["masks"]:
        data = (folder / record["file"]).read_bytes()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        mask = read_mask(folder / record["file"])  # white = hole
        assert mask.shape == (32, 40)
        assert record["hole_ratio"] == pytest.approx(hole_ratio(mask), abs=1e-6)
        assert 0.30 <= record["hole_ratio"] < 0.45
    loaded = load_mask_set(folder)
    assert (loaded.kind, loaded.bucket, loaded.names) == ("box", "30-45", ["mask_0000.png", "mask_0001.png"])


def test_load_mask_set_without_manifest(tmp_path) -> None:
    generate_mask_set(tmp_path, "box", 0.1, 0.2, 1, 32, 32, seed=0)
    (tmp_path / "manifest.json").unlink()
    loaded = load_mask_set(tmp_path)
    assert (loaded.kind, loaded.bucket, loaded.names) == ("file", None, ["mask_0000.png"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InpaintError, match="no mask images"):
        load_mask_set(empty)


def test_parse_ratio_and_size() -> None:
    assert parse_ratio("5-15") == (0.05, 0.15)
    assert parse_ratio("45%-60%") == (0.45, 0.60)
    assert ratio_label(*parse_ratio("12.5-30")) == "12.5-30"
    for bad in ("5", "15-5", "5-150", "a-b", "1-2-3"):
        with pytest.raises(UsageError, match="--ratio"):
            parse_ratio(bad)
    assert parse_size("320x256") == (320, 256)
    assert parse_size("128") == (128, 128)
    for bad in ("256x", "x", "4x4", "axb"):
        with pytest.raises(UsageError, match="--size"):
            parse_size(bad)
