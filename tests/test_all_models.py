"""Every registry model: its size contract, and a fill through `inpaint fill` with known pixels bit-exact.

The architectures come from the registry (`shipped_archs`), each built with its own `small_config`, so a new
model file is tested here without this file changing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from inpaint_cli.registry import create_model, get_arch, list_archs, shipped_archs
from inpaint_cli.weights import save_checkpoint

SHIPPED = [spec.name for spec in shipped_archs()]
# Learned models are built with their class's `small_config` (small widths keep the suite fast; the layer
# tables are tested at paper width in each model's own tests).
LEARNED = [spec.name for spec in shipped_archs() if spec.contract.needs_weights]


def test_the_five_papers_and_three_classical_fills_are_registered():
    names = {spec.name for spec in list_archs()}
    assert names >= {"context_encoder", "glcic", "deepfill_v1", "deepfill_v2", "piigan", "telea", "ns", "patchmatch"}
    assert set(SHIPPED) == {name for name in names if not name.startswith("test_")}  # test archs never ship
    assert get_arch("context_encoder").contract.fixed_size == 128
    assert get_arch("glcic").contract.pad_multiple == 4
    assert get_arch("deepfill_v1").contract.pad_multiple == 8
    assert get_arch("deepfill_v2").contract.pad_multiple == 8
    assert get_arch("piigan").contract.pad_multiple == 8 and get_arch("piigan").contract.can_sample
    assert not any(get_arch(name).contract.can_sample for name in ("context_encoder", "glcic", "deepfill_v2"))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    y, x = np.mgrid[0:75, 0:101]  # odd sizes: every model has to pad or window
    image = np.stack([x * 2, y * 3, (x + y)], -1).astype(np.uint8)
    hole = np.zeros((75, 101), np.uint8)
    hole[20:40, 30:55] = 255
    hole[60:70, 5:12] = 255
    cv2.imwrite(str(folder / "scene.png"), image)
    cv2.imwrite(str(folder / "hole.png"), hole)
    return folder / "scene.png", folder / "hole.png", hole > 0


@pytest.mark.parametrize("arch", SHIPPED)
def test_fill_through_the_cli_keeps_known_pixels(arch, scene, tmp_path, run_cli):
    if arch == "patchmatch":
        pytest.importorskip("patchmatch", reason="pip install 'inpaint-cli[patchmatch]'")
    image, mask, hole = scene
    model_arg = arch
    if arch in LEARNED:
        torch.manual_seed(0)
        model_arg = str(tmp_path / f"{arch}.safetensors")
        save_checkpoint(model_arg, create_model(arch, **get_arch(arch).cls.small_config))
    out = tmp_path / "out.png"
    # --blend none: the network's own fill (blended, an untrained network's fill of a ramp is the ramp itself)
    command = ["fill", str(image), "--mask", str(mask), "--model", model_arg, "--out", str(out), "--seed", "0"]
    assert run_cli([*command, "--blend", "none"]) == 0
    before, after = cv2.imread(str(image)), cv2.imread(str(out))
    assert after.shape == before.shape
    assert np.array_equal(after[~hole], before[~hole])
    assert not np.array_equal(after[hole], before[hole])


def test_set_overrides_model_config_at_load(scene, tmp_path, run_cli, capsys):
    image, mask, hole = scene
    checkpoint = tmp_path / "glcic.safetensors"
    torch.manual_seed(0)
    save_checkpoint(checkpoint, create_model("glcic"))
    plain, blended = tmp_path / "plain.png", tmp_path / "blended.png"
    base = ["fill", str(image), "--mask", str(mask), "--model", str(checkpoint)]
    assert run_cli([*base, "--out", str(plain)]) == 0
    assert run_cli([*base, "--out", str(blended), "--set", "postprocess=poisson"]) == 0
    a, b = cv2.imread(str(plain)), cv2.imread(str(blended))
    assert np.array_equal(a[~hole], b[~hole]) and not np.array_equal(a[hole], b[hole])
    assert run_cli([*base, "--out", str(tmp_path / "x.png"), "--set", "widht=3"]) == 2
    assert "widht" in capsys.readouterr().err


@pytest.mark.parametrize("arch", ["deepfill_v1", "deepfill_v2", "piigan"])
def test_untrained_generators_already_see_their_input(arch):
    """`signal_preserving_init`: with the papers' init these deep unnormalised stacks output the same image
    whatever the input (mean |Δ| < 1e-4 when the input is negated), so training starts by learning a flat
    colour. With it, negating the input moves the output by a clear margin, without saturating tanh."""
    torch.manual_seed(0)
    model = create_model(arch).eval()
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    masks = torch.zeros(2, 1, 64, 64)
    masks[..., 16:40, 20:44] = 1.0
    extra = (torch.randn_like(masks) * masks,) if arch == "piigan" else ()
    with torch.no_grad():
        _, first = model(images * (1 - masks), masks, *extra)
        _, second = model(-images * (1 - masks), masks, *extra)
    change = (first - second).abs().mean().item()
    assert change > 0.05, f"{arch}: the output barely depends on the input (mean |Δ| = {change:.2g})"
    assert first.abs().mean().item() < 0.8, f"{arch}: tanh saturated at init"
