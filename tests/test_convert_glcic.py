"""GLCIC from otenim/GLCIC-PyTorch's pretrained completion network: `inpaint models convert`.

otenim's CompletionNetwork is rebuilt here from its published structure (conv1–conv17 with bn1–bn16,
each layer conv → ReLU → BN, sigmoid output; input [x with holes = mpv, mask]) with random weights and
batch-norm statistics, saved with torch.save as its train.py does, next to a config.json holding `mpv`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import fill_random_image
from torch import nn

from inpaint_cli.convert import convert_checkpoint
from inpaint_cli.errors import InpaintError, UsageError
from inpaint_cli.weights import load_model, read_checkpoint

MPV = [0.5062, 0.4255, 0.3830]  # a CelebA-like mean pixel value

# (name, in, out, kernel, stride, dilation) of otenim's CompletionNetwork; "deconv" = ConvTranspose 4/2/1.
OTENIM_LAYERS = [
    ("conv1", 4, 64, 5, 1, 1), ("conv2", 64, 128, 3, 2, 1), ("conv3", 128, 128, 3, 1, 1),
    ("conv4", 128, 256, 3, 2, 1), ("conv5", 256, 256, 3, 1, 1), ("conv6", 256, 256, 3, 1, 1),
    ("conv7", 256, 256, 3, 1, 2), ("conv8", 256, 256, 3, 1, 4), ("conv9", 256, 256, 3, 1, 8),
    ("conv10", 256, 256, 3, 1, 16), ("conv11", 256, 256, 3, 1, 1), ("conv12", 256, 256, 3, 1, 1),
    ("deconv13", 256, 128, 4, 2, 1), ("conv14", 128, 128, 3, 1, 1), ("deconv15", 128, 64, 4, 2, 1),
    ("conv16", 64, 32, 3, 1, 1), ("conv17", 32, 3, 3, 1, 1),
]  # fmt: skip


class OtenimCompletionNetwork(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for index, (name, cin, cout, k, stride, dilation) in enumerate(OTENIM_LAYERS, start=1):
            if name.startswith("deconv"):
                layer = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
            else:
                layer = nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k - 1) // 2, dilation=dilation)
            setattr(self, name, layer)
            if index < 17:
                setattr(self, f"bn{index}", nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, (name, *_) in enumerate(OTENIM_LAYERS, start=1):
            x = getattr(self, name)(x)
            x = getattr(self, f"bn{index}")(torch.relu(x)) if index < 17 else torch.sigmoid(x)
        return x


def _random_network(seed: int = 0) -> OtenimCompletionNetwork:
    torch.manual_seed(seed)
    network = OtenimCompletionNetwork()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(0.0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.num_batches_tracked.fill_(1234)
    return network.eval()


def _release(directory: Path, network: nn.Module, *, data_parallel: bool = False) -> Path:
    state = network.state_dict()
    if data_parallel:
        state = {f"module.{k}": v for k, v in state.items()}
    path = directory / "model_cn"
    torch.save(state, path)
    (directory / "config.json").write_text(json.dumps({"mpv": MPV, "data_parallel": data_parallel}))
    return path


@pytest.mark.parametrize("data_parallel", [False, True])
def test_otenim_model_converts_and_matches_its_network(tmp_path, data_parallel) -> None:
    network = _random_network()
    src = _release(tmp_path, network, data_parallel=data_parallel)
    out = tmp_path / "glcic_celeba.safetensors"
    entry = convert_checkpoint(src, arch="glcic", out=out)
    assert entry["licence"] == "MIT" and entry["name"] == "glcic.glcic_celeba"
    ckpt = read_checkpoint(out)
    assert ckpt.config["layer_order"] == "conv-relu-bn" and ckpt.config["mean"] == MPV
    assert set(ckpt.provenance["converted_from"]["files"]) == {"model_cn", "config.json"}

    model = load_model(out)
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 3, 64, 96), dtype=np.float32))
    mask = torch.zeros(1, 1, 64, 96)
    mask[..., 16:40, 24:60] = 1.0
    mpv = torch.tensor(MPV).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = network(torch.cat([image - image * mask + mpv * mask, mask], dim=1))  # otenim's predict.py
        got = model.inpaint(image, mask)
    assert (got - expected).abs().max() <= 1e-5
    assert expected.std() > 0.01


def test_cli_prints_a_catalog_entry_fill_can_use(tmp_path, run_cli, capsys, monkeypatch) -> None:
    src = _release(tmp_path, _random_network())
    monkeypatch.chdir(tmp_path)
    argv = ["models", "convert", str(src), "--arch", "glcic", "--out", "g.safetensors", "--name", "glcic.celeba"]
    assert run_cli(argv) == 0
    printed = capsys.readouterr()
    assert '[models."glcic.celeba"]' in printed.out and 'licence = "MIT"' in printed.out
    assert fill_random_image(run_cli, "g.safetensors") == 0
    assert "non-commercial" not in capsys.readouterr().err


def test_a_pickle_with_objects_is_refused(tmp_path) -> None:
    """weights_only=True: a pickle that would build an arbitrary object is refused, never run."""
    path = tmp_path / "model_cn"
    torch.save({"conv1.weight": torch.zeros(1), "extra": _Payload()}, path)
    (tmp_path / "config.json").write_text(json.dumps({"mpv": MPV}))
    with pytest.raises(InpaintError, match="not a plain PyTorch state dict"):
        convert_checkpoint(path, arch="glcic", out=tmp_path / "x.safetensors")


class _Payload:
    pass


def test_unknown_keys_missing_config_and_wrong_arch_are_one_line_errors(tmp_path) -> None:
    state = _random_network().state_dict()
    path = tmp_path / "model_cn"
    torch.save({**state, "conv99.weight": torch.zeros(1)}, path)
    with pytest.raises(InpaintError, match=r"unknown keys conv99\.weight"):
        convert_checkpoint(path, arch="glcic", out=tmp_path / "x.safetensors")
    torch.save(state, path)
    with pytest.raises(InpaintError, match=r"config\.json not found"):
        convert_checkpoint(path, arch="glcic", out=tmp_path / "x.safetensors")
    with pytest.raises(UsageError, match="no converter for context_encoder from state-dict"):
        convert_checkpoint(path, arch="context_encoder", out=tmp_path / "x.safetensors")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UsageError, match="cannot tell its format"):
        convert_checkpoint(tmp_path / "notes.txt", arch="glcic", out=tmp_path / "x.safetensors")
