"""Adding a model is one file: an architecture and its recipe, defined here and registered by the decorators
alone, fill, train and benchmark through the CLI, and distributed training wraps what its recipe names.

Nothing else in the repository knows `test_sixth`: no weights.toml entry, no archs.json entry, no table in
another test or module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inpaint_cli.models.base import InpaintModel, TrainingRecipe, composite, frozen
from inpaint_cli.registry import InputContract, create_model, register, register_recipe


@register(
    "test_sixth",
    contract=InputContract(pad_multiple=4, comfortable_size=256),
    summary="test-only: a sixth architecture, two convs around a downsampling",
)
class SixthModel(InpaintModel):
    small_config: ClassVar[dict[str, Any]] = {"width": 4}

    def __init__(self, width: int = 16) -> None:
        super().__init__(width=width)
        self.encode = nn.Conv2d(4, width, 3, stride=2, padding=1)
        self.decode = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x_in: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.encode(torch.cat([x_in, mask], dim=1)))
        return torch.tanh(self.decode(F.interpolate(features, scale_factor=2.0, mode="nearest")))

    def inpaint(self, image, mask, *, generator=None):
        return (self(image * 2.0 - 1.0, mask) + 1.0) / 2.0


class Refiner(nn.Module):
    """A second network the generator's optimiser trains (as PiiGAN's style extractor is)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * self.conv(x)


@register_recipe("test_sixth")
class SixthRecipe(TrainingRecipe):
    """L1 on the refined fill + a hinge loss against a patch critic, one critic step per generator step."""

    generator_networks = ("generator", "refiner")
    small_size = 32

    def __init__(self, generator: SixthModel, **settings: Any) -> None:
        super().__init__(generator, **settings)
        self.networks["refiner"] = Refiner()
        self.networks["critic"] = nn.Conv2d(3, 1, 4, stride=2)
        trained_with_g = [*generator.parameters(), *self.networks["refiner"].parameters()]
        self.optimizers = {
            "generator": torch.optim.Adam(trained_with_g, lr=self.lr),
            "critic": torch.optim.Adam(self.networks["critic"].parameters(), lr=self.lr),
        }

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        generator, refiner, critic = (self.networks[name] for name in ("generator", "refiner", "critic"))
        real = images * 2.0 - 1.0
        fill = refiner(generator(real * (1.0 - masks), masks))
        d_loss = F.relu(1.0 - critic(real)).mean() + F.relu(1.0 + critic(composite(fill.detach(), real, masks))).mean()
        self.optimizers["critic"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["critic"].step()
        with frozen(critic):
            g_adv = -critic(composite(fill, real, masks)).mean()
        l1 = (fill - real).abs().mean()
        g_loss = l1 + 0.01 * g_adv
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"g": g_loss.item(), "l1": l1.item(), "g_adv": g_adv.item(), "d": d_loss.item()}

    @staticmethod
    def paper_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        mask = np.zeros((height, width), bool)
        top, left = (int(v) for v in rng.integers(0, [height // 2, width // 2]))
        mask[top : top + height // 2, left : left + width // 2] = True
        return mask


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        small = rng.uniform(0, 255, (6, 8, 3)).astype(np.float32)
        cv2.imwrite(str(folder / f"{index}.png"), cv2.resize(small, (72, 64), interpolation=cv2.INTER_CUBIC))
    return folder


def test_a_sixth_model_file_fills_trains_and_benchmarks_through_the_cli(photos, tmp_path, run_cli, capsys):
    assert run_cli(["models", "list", "test_*", "--json"]) == 0
    rows = {row["arch"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["test_sixth"]["pad_multiple"] == 4  # `models list` describes it

    run = tmp_path / "run"
    train = ["train", "--model", "test_sixth", "--data", str(photos), "--out", str(run), "--size", "32"]
    train += ["--batch", "2", "--steps", "2", "--log-every", "1", "--val-count", "2", "--no-progress"]
    assert run_cli([*train, "--set", "width=4"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [record for record in records if record["kind"] == "train"]
    assert [record["step"] for record in steps] == [1, 2] and all(np.isfinite(r["g"]) for r in steps)
    checkpoint = run / "last.safetensors"
    assert checkpoint.is_file()

    image, hole = photos / "0.png", tmp_path / "hole.png"
    mask = np.zeros((64, 72), np.uint8)
    mask[20:40, 25:50] = 255
    cv2.imwrite(str(hole), mask)
    filled = tmp_path / "filled.png"
    assert run_cli(["fill", str(image), "--mask", str(hole), "--model", str(checkpoint), "--out", str(filled)]) == 0
    before, after = cv2.imread(str(image)), cv2.imread(str(filled))
    assert np.array_equal(after[mask == 0], before[mask == 0]) and not np.array_equal(after[mask > 0], before[mask > 0])

    report, grid = tmp_path / "report.json", tmp_path / "sheet.jpg"
    benchmark = ["benchmark", "--models", f"telea,{checkpoint}", "--data", str(photos), "--size", "64"]
    benchmark += ["--buckets", "15-30", "--kinds", "box", "--no-speed", "--json", str(report), "--grid", str(grid)]
    assert run_cli(benchmark) == 0
    quality = json.loads(report.read_text())["quality"]
    measured = {row["model"] for row in quality}
    assert len(measured) == 2 and "telea" in measured  # the sixth model's checkpoint was scored beside telea
    assert all(row["n"] > 0 for row in quality)
    assert grid.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG contact sheet


def test_distributed_training_wraps_the_networks_the_recipe_names(tmp_path):
    """`generator_networks` decides DDP: the sixth recipe's "refiner" trains with the generator and is wrapped;
    its critic has its gradients averaged before its optimiser steps. (One process: a world of size 1.)"""
    import torch.distributed as dist

    from inpaint_cli.train.distributed import Distributed, distribute

    torch.manual_seed(0)
    recipe = SixthRecipe(create_model("test_sixth", width=4), image_size=32)
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        plan = distribute(recipe, dict(recipe.networks), Distributed(torch.device("cpu")))
        logs = recipe.train_step(torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32), step=0)
    finally:
        dist.destroy_process_group()
    assert plan == {
        "generator": "DistributedDataParallel",
        "refiner": "DistributedDataParallel",
        "critic": "all_reduce before optimizer step",
    }
    assert isinstance(recipe.networks["refiner"], nn.parallel.DistributedDataParallel) and np.isfinite(logs["g"])
