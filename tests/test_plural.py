"""`inpaint plural`: N reproducible samples, per-sample seeds, grid, diversity; refusal for non-samplers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from inpaint_cli.grid import contact_sheet
from inpaint_cli.models.base import InpaintModel, standard_normal
from inpaint_cli.plural import hole_diversity
from inpaint_cli.registry import InputContract, register


@register(
    "test_sampler",
    contract=InputContract(pad_multiple=8, can_sample=True, trainable=False, needs_weights=False),
    summary="test-only: fills holes with seeded noise",
)
class NoiseSampler(InpaintModel):
    def inpaint(self, image, mask, *, generator=None):
        # standard_normal takes the engine's one generator per sample of a batched call
        return standard_normal(tuple(image.shape), generator, like=image).sigmoid()


@pytest.fixture
def scene(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    hole = np.zeros((40, 56), np.uint8)
    hole[10:25, 15:40] = 255
    cv2.imwrite(str(tmp_path / "scene.png"), image)
    cv2.imwrite(str(tmp_path / "hole.png"), hole)
    return tmp_path / "scene.png", tmp_path / "hole.png", hole > 0


def test_samples_are_different_reproducible_and_seeded_per_sample(tmp_path, scene, run_cli, capsys):
    image, mask, hole = scene
    args = ["plural", str(image), "--mask", str(mask), "--model", "test_sampler", "--n", "4", "--seed", "3"]
    assert run_cli([*args, "--out-dir", str(tmp_path / "a"), "--grid", str(tmp_path / "grid.png"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["seed"] for line in lines[:4]] == [3, 4, 5, 6]
    summary = lines[4]
    assert summary["n"] == 4 and summary["diversity"] > 0.2  # uniform noise: mean |a-b| is 1/3
    files = [tmp_path / "a" / f"scene_{seed}.png" for seed in range(3, 7)]  # named by seed
    samples = [cv2.imread(str(f)) for f in files]
    assert all(not np.array_equal(samples[0][hole], s[hole]) for s in samples[1:])
    original = cv2.imread(str(image))
    assert all(np.array_equal(s[~hole], original[~hole]) for s in samples)

    # Same seed, byte-identical files; `--n 1 --seed 5` reproduces sample 2 alone.
    assert run_cli([*args, "--out-dir", str(tmp_path / "b")]) == 0
    assert all(f.read_bytes() == (tmp_path / "b" / f.name).read_bytes() for f in files)
    single = ["plural", str(image), "--mask", str(mask), "--model", "test_sampler", "--n", "1", "--seed", "5"]
    assert run_cli([*single, "--out-dir", str(tmp_path / "c"), "--json"]) == 0
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["scene_5.png"]
    assert (tmp_path / "c" / "scene_5.png").read_bytes() == files[2].read_bytes()
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["diversity"] is None  # n/a, not 0

    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert grid.shape[0] > 2 * 192  # header row + one row of samples


def test_grid_to_stdout(scene, run_cli, capsysbinary):
    image, mask, _ = scene
    args = ["plural", str(image), "--mask", str(mask), "--model", "test_sampler", "--n", "2", "--seed", "0"]
    assert run_cli([*args, "--grid", "-"]) == 0
    assert capsysbinary.readouterr().out[:8] == b"\x89PNG\r\n\x1a\n"


def test_models_that_cannot_sample_are_refused(scene, run_cli, capsys):
    image, mask, _ = scene
    assert run_cli(["plural", str(image), "--mask", str(mask), "--model", "telea", "--n", "2"]) == 2
    assert "cannot sample" in capsys.readouterr().err


def test_hole_diversity_known_values():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    zeros, ones, half = np.zeros((4, 4, 3)), np.ones((4, 4, 3)), np.full((4, 4, 3), 0.5)
    assert hole_diversity([zeros, zeros], mask) == 0.0
    assert hole_diversity([zeros, ones], mask) == 1.0
    assert hole_diversity([zeros, ones, half], mask) == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert hole_diversity([zeros], mask) is None  # one sample: not applicable


def test_contact_sheet_layout():
    red = np.zeros((10, 20, 3), np.float32)
    red[..., 0] = 1
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    sheet = contact_sheet([[red, mask], [red]], labels=["image", "mask"], cell=10, gap=2)
    assert sheet.shape == (22 + 2 * 12 + 2, 2 + 20 + 2 + 10 + 2, 3)
    assert tuple(sheet[22 + 2 + 5, 2 + 5]) == (255, 0, 0)  # the red cell
    assert tuple(sheet[22 + 2 + 1, 2 + 20 + 2 + 5]) == (255, 255, 255)  # the hole of the mask, white
    assert tuple(sheet[22 + 2 + 8, 2 + 20 + 2 + 5]) == (0, 0, 0)  # its known part, black


def test_piigan_checkpoint_samples_through_plural(tmp_path, scene, run_cli, capsys):
    from inpaint_cli.registry import create_model
    from inpaint_cli.weights import save_checkpoint

    torch.manual_seed(0)
    checkpoint = tmp_path / "piigan_small.safetensors"
    save_checkpoint(checkpoint, create_model("piigan", cnum=8))
    image, mask, _ = scene
    args = ["plural", str(image), "--mask", str(mask), "--model", str(checkpoint), "--n", "3", "--seed", "11"]
    assert run_cli([*args, "--out-dir", str(tmp_path / "p"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["diversity"] > 0  # z changes the fill even with untrained weights
    first = (tmp_path / "p" / "scene_11.png").read_bytes()
    assert run_cli([*args, "--out-dir", str(tmp_path / "q")]) == 0
    assert (tmp_path / "q" / "scene_11.png").read_bytes() == first
