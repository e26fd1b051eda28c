"""DeepFill v2 through the catalog and `inpaint fill`: bundled checkpoint, bit-exact known pixels, bf16."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_cli.engine import Inpainter
from inpaint_cli.io import read_image
from inpaint_cli.masks import read_mask
from inpaint_cli.weights import load_catalog, load_model, verify


@pytest.fixture(scope="module")
def demo():
    entry = load_catalog().default_for("deepfill_v2")
    assert entry is not None and entry.kind == "bundled"
    assert verify(entry).status == "ok"
    return load_model("deepfill_v2")


def test_catalog_checkpoint_loads_with_its_metadata(demo):
    # The bundled checkpoints' width (cnum 32, training/README.md); the architecture's default stays the paper's 48.
    # The file's config is {"cnum": 32}; keys added since (the TF-conversion switches) take their defaults.
    assert demo.arch_name == "deepfill_v2"
    assert demo.arch_config == {"cnum": 32, "tf_padding": False, "tf_resize": False, "channel_order": "rgb"}
    assert sum(p.numel() for p in demo.parameters()) == 1_805_398


def test_fill_cli_with_deepfill_v2_keeps_known_pixels(tmp_path, example, run_cli):
    photo, mask = example
    out = tmp_path / "filled.png"
    assert run_cli(["fill", str(photo), "--mask", str(mask), "--model", "deepfill_v2", "--out", str(out)]) == 0
    before, after = read_image(photo).pixels, read_image(out).pixels
    hole = read_mask(mask)
    assert np.array_equal(after[~hole], before[~hole])
    # A learned fill of a meadow: closer to the truth than a flat grey hole would be.
    error = np.abs(after[hole].astype(float) - before[hole]).mean()
    grey = np.abs(128.0 - before[hole]).mean()
    assert error < grey


def test_bf16_matches_fp32(demo, example):
    image, hole = read_image(example[0]).rgb(), read_mask(example[1])
    fp32 = Inpainter(demo, device="cpu").fill(image, hole, strategy="full")
    bf16 = Inpainter(demo, device="cpu", half=True).fill(image, hole, strategy="full")
    assert bf16.precision == "bf16"
    difference = np.abs(fp32.rgb[hole] - bf16.rgb[hole])
    psnr = 10 * np.log10(1.0 / np.mean(difference**2))
    assert psnr > 35, psnr  # bf16 has 8 mantissa bits: close, not identical
    assert np.array_equal(fp32.rgb[~hole], bf16.rgb[~hole])


def test_crop_strategy_on_a_large_image_pastes_only_holes(demo, example):
    # 700 px > comfortable size 512: auto crops around the two holes.
    base = read_image(example[0]).rgb()
    large = np.tile(base, (3, 2, 1))[:700, :900]
    hole = np.zeros(large.shape[:2], bool)
    hole[100:140, 100:150] = True
    hole[600:650, 800:860] = True
    result = Inpainter(demo, device="cpu").fill(large, hole)
    assert result.strategy == "crop" and result.windows == 2
    assert np.array_equal(result.rgb[~hole], large[~hole])
    assert np.isfinite(result.rgb).all()
