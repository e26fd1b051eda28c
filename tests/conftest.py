"""Shared fixtures: small synthetic images and a probe model that records what the engine feeds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_cli.models.base import InpaintModel
from inpaint_cli.registry import InputContract, register


@register(
    "test_probe",
    contract=InputContract(pad_multiple=8, comfortable_size=64, trainable=False, needs_weights=False),
    summary="test-only: fills holes with a constant and records its inputs",
)
class ProbeModel(InpaintModel):
    """Returns `value` everywhere and remembers every (image, mask) it was called with."""

    def __init__(self, value: float = 0.25) -> None:
        super().__init__(value=value)
        self.scale = torch.nn.Parameter(torch.ones(()))  # one parameter so half precision applies
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def inpaint(self, image, mask, *, generator=None):
        self.calls.append((image.detach().clone(), mask.detach().clone()))
        return torch.full_like(image, self.arch_config["value"]) * self.scale


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def example() -> tuple[Path, Path]:
    """The example photo and mask that ship in the repository."""
    return REPO / "examples" / "meadow.png", REPO / "examples" / "meadow_mask.png"


@pytest.fixture
def run_cli():
    """Run `inpaint ARGS...` in-process and return its exit code."""
    from inpaint_cli import cli

    def run(argv: list[str]) -> int:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        return exit_info.value.code

    return run


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def smooth_rgb(rng) -> np.ndarray:
    """A 64×96 smooth colour image (gradients + a low-frequency pattern), float32 in [0, 1]."""
    y, x = np.mgrid[0:64, 0:96].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / 13.0)
    g = 0.3 + 0.5 * (y / 63.0)
    b = 0.5 + 0.3 * np.cos((x + y) / 17.0)
    return np.stack([r, g, b], axis=-1).astype(np.float32)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Test tensors are tiny: extra intra-op threads only add synchronisation, and thrash when the
    machine is shared (CI, a training run in the background)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
