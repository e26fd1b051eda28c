"""The classical architectures (OpenCV's telea / ns, PatchMatch): registry entries, 8-bit and high-bit-depth
paths, the torch-free fill."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from inpaint_cli.models.classical import NavierStokes, Telea
from inpaint_cli.registry import create_model, get_arch


def _mask(height: int = 32, width: int = 48) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width)
    mask[..., 10:20, 14:30] = 1.0
    return mask


def _eight_bit_image(height: int = 32, width: int = 48, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    # a smooth gradient plus texture, quantised to 8 bit
    ys = torch.linspace(0, 1, height)[:, None]
    xs = torch.linspace(0, 1, width)[None, :]
    base = torch.stack([ys * xs, ys.expand(height, width), (1 - xs).expand(height, width)])
    noisy = base + 0.1 * torch.rand(3, height, width, generator=generator)
    return (noisy.clamp(0, 1) * 255).round()[None] / 255


@pytest.mark.parametrize("name, cls", [("telea", Telea), ("ns", NavierStokes)])
def test_registered(name: str, cls: type) -> None:
    spec = get_arch(name)
    assert spec.cls is cls
    assert spec.default_config == {"radius": 5}
    contract = spec.contract
    assert contract.pad_multiple == 1 and contract.comfortable_size is None
    assert not contract.trainable and not contract.needs_weights
    model = create_model(name, radius=3)
    assert model.radius == 3.0 and model.arch_config == {"radius": 3}
    assert model.state_dict() == {}


@pytest.mark.parametrize("name", ["telea", "ns"])
def test_eight_bit_path_keeps_known_pixels(name: str) -> None:
    image, mask = _eight_bit_image(), _mask()
    out = create_model(name).inpaint(image, mask)
    assert out.shape == image.shape and out.dtype == image.dtype
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    assert not torch.equal(out, image)


def _flat_image_with_hole() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    colour = torch.tensor([200.0, 30.0, 90.0]) / 255
    image = colour[None, :, None, None].expand(1, 3, 32, 48).clone()
    mask = _mask()
    image[mask.expand_as(image) == 1] = 0.0  # what is under the hole must not matter
    return image, mask, colour[None, :, None, None].expand_as(image)


def test_ns_fills_flat_colour_exactly() -> None:
    image, mask, expected = _flat_image_with_hole()
    # Exact up to float32 arithmetic (the fill runs in float): far below half a 16-bit step (7.6e-6).
    torch.testing.assert_close(create_model("ns").inpaint(image, mask), expected, atol=2e-6, rtol=0)


def test_telea_fills_flat_colour_within_two_levels() -> None:
    # OpenCV's Telea is not exact on a flat image: its gradient term adds ±2 levels inside the hole
    # (measured with OpenCV 5.0, independent of the values under the hole).
    image, mask, expected = _flat_image_with_hole()
    out = create_model("telea").inpaint(image, mask)
    assert (out - expected).abs().max() <= 2.0 / 255 + 1e-6
    assert (out - expected).abs().mean() < 0.5 / 255


@pytest.mark.parametrize("name", ["telea", "ns"])
def test_fill_is_not_rounded_to_eight_bits(name: str) -> None:
    """A 16-bit image made from an 8-bit one lies on the 8-bit grid; its fill must not be rounded to it
    (quantising is compose_output's job, at the source's depth)."""
    image, mask = _eight_bit_image(seed=1), _mask()
    out = create_model(name).inpaint(image, mask)
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    scaled = out[~known].double() * 255
    off_grid = (scaled - scaled.round()).abs() > 1e-3
    assert off_grid.float().mean() > 0.5


def test_telea_and_ns_differ() -> None:
    image, mask = _eight_bit_image(seed=2), _mask()
    telea = create_model("telea").inpaint(image, mask)
    ns = create_model("ns").inpaint(image, mask)
    assert (telea - ns).abs().max() > 1.0 / 255


def test_batch_per_item_masks_device_and_dtype() -> None:
    images = torch.cat([_eight_bit_image(seed=3), _eight_bit_image(seed=4)]).double()
    masks = torch.cat([_mask(), _mask().flip(-1)])
    model = create_model("telea")
    out = model.inpaint(images, masks)
    assert out.dtype == torch.float64 and out.device == images.device
    for i in range(2):
        torch.testing.assert_close(out[i : i + 1], model.inpaint(images[i : i + 1], masks[i : i + 1]))


def test_single_channel_image() -> None:
    image, mask = _eight_bit_image()[:, :1], _mask()
    out = create_model("ns").inpaint(image, mask)
    assert out.shape == image.shape
    assert torch.equal(out[mask == 0], image[mask == 0])


_NO_TORCH_RUNNER = """
import sys
from inpaint_cli.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
loaded = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
print("exit", code, "torch modules", len(loaded), file=sys.stderr)
sys.exit(3 if loaded else code)
"""


@pytest.mark.parametrize("model", ["telea", "ns", "patchmatch"])
def test_classical_fill_never_imports_torch(tmp_path, model):
    """`inpaint fill --model telea` on the numpy/OpenCV path end to end: reading, masks (file and --box),
    the fill, compositing and writing, --json and -v included, without importing torch (1.6 s)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "in.png"), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    hole = np.zeros((64, 80), np.uint8)
    hole[20:30, 30:50] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), hole)
    runner = tmp_path / "runner.py"
    runner.write_text(_NO_TORCH_RUNNER)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    args = ["fill", "in.png", "--mask", "mask.png", "--box", "2,2,5,5", "--model", model, "--out", "o.png", "--json"]
    done = subprocess.run(
        [sys.executable, str(runner), "-v", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "torch modules 0" in done.stderr
    record = json.loads(done.stdout)
    assert record["model"] == model and record["precision"] == "fp32"
    # the same pixels as the registry's torch module through the engine
    from inpaint_cli.engine import Inpainter
    from inpaint_cli.io import read_image

    image = read_image(tmp_path / "in.png")
    holes = hole > 0
    holes[2:7, 2:7] = True
    expected = Inpainter(create_model(model), device="cpu").fill(image.pixels, holes).rgb
    assert np.array_equal(read_image(tmp_path / "o.png").pixels, expected)


# ------------------------------------------------------------------------------------------ PatchMatch


def _stripes(size: int = 96) -> np.ndarray:
    """Diagonal two-colour stripes, 8-bit: a texture the border colours cannot propagate into a hole."""
    y, x = np.mgrid[0:size, 0:size]
    light = ((x + y) // 6) % 2 == 0
    colours = np.where(light[..., None], [230, 190, 60], [40, 90, 160]).astype(np.float64)
    return colours / 255.0


def test_patchmatch_copies_texture_that_telea_smooths_away() -> None:
    from inpaint_cli.engine import Inpainter
    from inpaint_cli.metrics import psnr, texture_distance

    image = _stripes()
    hole = np.zeros((96, 96), bool)
    hole[30:66, 30:66] = True
    patchmatch = Inpainter(create_model("patchmatch"), device="cpu").fill(image, hole).rgb
    telea = Inpainter(create_model("telea"), device="cpu").fill(image, hole).rgb
    assert np.array_equal(patchmatch[~hole].astype(np.float32), image[~hole].astype(np.float32))
    # The stripes go on through the hole (texture 47 against Telea's 509, hole PSNR 32 against 11 dB).
    assert texture_distance(patchmatch, image, hole) < 0.5 * texture_distance(telea, image, hole)
    assert psnr(patchmatch, image, hole) > psnr(telea, image, hole)
    again = Inpainter(create_model("patchmatch"), device="cpu").fill(image, hole).rgb
    assert np.array_equal(again, patchmatch)  # seeded: the same fill every time


def test_patchmatch_config_is_checked_and_a_missing_package_is_one_line(monkeypatch) -> None:
    from inpaint_cli import classical_fill
    from inpaint_cli.errors import InpaintError, UsageError

    assert get_arch("patchmatch").default_config == {"patch_size": 3, "seed": 0}
    assert create_model("patchmatch", patch_size=5).arch_config == {"patch_size": 5, "seed": 0}
    with pytest.raises(ValueError, match="patch_size=abc: patch_size of patchmatch takes an integer"):
        create_model("patchmatch", patch_size="abc")
    with pytest.raises(UsageError, match="--set radius: not a config key of patchmatch"):
        classical_fill.ClassicalFill("patchmatch", radius=3)
    monkeypatch.setitem(sys.modules, "patchmatch", None)  # `import patchmatch` raises ImportError
    with pytest.raises(InpaintError, match=r"pip install 'inpaint-cli\[patchmatch\]'"):
        classical_fill.ClassicalFill("patchmatch")
