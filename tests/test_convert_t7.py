"""`inpaint models convert` from the authors' Lua Torch `.t7` files: GLCIC (satoshiiizuka/siggraph2017_inpainting)
and Context Encoder (pathak22/context-encoder).

The real files cannot be downloaded here, so `t7files` writes files in torch.save's binary format with the
authors' module classes, versions, field names and shapes and random weights and statistics. Each is
converted, loaded as `fill` loads it, and compared with the Lua network's forward pass rebuilt in
torch.nn.functional from the same fields, fed and composited as inpaint.lua / demo.lua / test_random.lua do.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import t7files as t7
import torch
from helpers import fill_random_image

from inpaint_cli.convert import convert_checkpoint
from inpaint_cli.engine import Inpainter
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import create_model
from inpaint_cli.weights import load_model, read_checkpoint

needs_torchfile = pytest.mark.skipif(importlib.util.find_spec("torchfile") is None, reason="needs torchfile")

MEAN = [0.4560, 0.4472, 0.4155]  # completionnet_places2.t7's mean, as published conversions print it
CE_FILL = torch.tensor([2 * 117 / 255 - 1, 2 * 104 / 255 - 1, 2 * 123 / 255 - 1]).view(1, 3, 1, 1)


def _image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((1, 3, height, width), dtype=np.float32))


def _iizuka_inpaint(net: t7.LuaObject, image: torch.Tensor, mask: torch.Tensor, mean: list[float]) -> torch.Tensor:
    """inpaint.lua: I − mean, the hole set to 0, [I, M] through the network, out = I·(1−M) + res·M."""
    shifted = (image - torch.tensor(mean).view(1, 3, 1, 1)).masked_fill(mask.bool().expand_as(image), 0.0)
    res = t7.lua_forward(net, torch.cat([shifted, mask], dim=1))
    return image * (1 - mask) + res * mask


def _glcic_file(tmp_path, net: t7.LuaObject, *, mean_as_table: bool = False, name: str = "completionnet_places2.t7"):
    mean = MEAN if mean_as_table else np.array(MEAN, np.float32)
    return t7.write_t7(tmp_path / name, {"model": net, "mean": mean})


def _box_mask(height: int, width: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width)
    top, left, bottom, right = box
    mask[..., top:bottom, left:right] = 1.0
    return mask


@needs_torchfile
@pytest.mark.parametrize(("mean_as_table", "shared"), [(False, False), (True, True)])
def test_glcic_t7_computes_what_inpaint_lua_computes(tmp_path, mean_as_table, shared) -> None:
    net = t7.glcic_net(seed=1)
    if shared:  # every weight a view into one storage, one of them non-contiguous (after getParameters())
        t7.share_storage(net)
    src = _glcic_file(tmp_path, net, mean_as_table=mean_as_table)
    out = tmp_path / "glcic_places2.safetensors"
    entry = convert_checkpoint(src, arch="glcic", out=out, name="glcic.places2")
    assert entry["licence"] == "CC BY-NC-SA 4.0" and entry["name"] == "glcic.places2"
    ckpt = read_checkpoint(out)
    assert ckpt.config["subtract_mean"] is True and ckpt.config["layer_order"] == "conv-bn-relu"
    assert ckpt.config["padding"] == "zeros" and ckpt.config["mean"] == pytest.approx(MEAN, abs=1e-7)
    assert ckpt.provenance["converted_from"]["format"] == "t7"
    assert set(ckpt.provenance["converted_from"]["files"]) == {"completionnet_places2.t7"}

    model = load_model(out)
    image, mask = _image(64, 96), _box_mask(64, 96, (12, 20, 44, 60))
    with torch.no_grad():
        expected = _iizuka_inpaint(net, image, mask, MEAN)
        prediction = model.inpaint(image, mask)
        # The default input (mean in the hole, no shift) on the same weights is another network.
        plain = create_model("glcic", **{**ckpt.config, "subtract_mean": False})
        plain.load_state_dict(model.state_dict())
        plain_prediction = plain.eval().inpaint(image, mask)
    got = image * (1 - mask) + prediction * mask
    assert (got - expected).abs().max().item() <= 1e-5
    hole = mask.bool().expand_as(image)
    assert expected[hole].std() > 0.02  # the network's output is not flat (no saturated sigmoid)
    assert (plain_prediction - prediction)[hole].abs().max().item() > 1e-2


@needs_torchfile
def test_glcic_t7_through_the_engine_and_the_relu_first_order(tmp_path) -> None:
    """The engine's full-image fill of a converted file equals inpaint.lua's output; a file whose layers
    run conv → ReLU → BN is converted with that order."""
    net = t7.glcic_net(seed=2, relu_first=True)
    out = tmp_path / "g.safetensors"
    convert_checkpoint(_glcic_file(tmp_path, net), arch="glcic", out=out)
    assert read_checkpoint(out).config["layer_order"] == "conv-relu-bn"
    image, mask = _image(48, 64, seed=3), _box_mask(48, 64, (8, 12, 30, 40))
    with torch.no_grad():
        expected = _iizuka_inpaint(net, image, mask, MEAN)[0].permute(1, 2, 0).numpy()
    rgb = image[0].permute(1, 2, 0).numpy().copy()
    result = Inpainter(load_model(out), device="cpu", blend="none").fill(rgb, mask[0, 0].numpy() > 0.5, strategy="full")
    assert result.strategy == "full"
    assert np.abs(result.rgb - expected).max() <= 1e-5


def _demo_inpaint(net: t7.LuaObject, image: torch.Tensor) -> torch.Tensor:
    """demo.lua / test.lua with overlapPred = 4: [-1, 1], the inner 56² set to the fill constants, the
    64² prediction's inner 56² pasted there, back to [0, 1]."""
    x = image * 2 - 1
    inner = slice(36, 92)
    x_in = x.clone()
    x_in[..., inner, inner] = CE_FILL.expand(1, 3, 56, 56)
    prediction = t7.lua_forward(net, x_in)
    assert prediction.shape[-2:] == (64, 64)
    out = x.clone()
    out[..., inner, inner] = prediction[..., 4:60, 4:60]
    return (out + 1) / 2


@needs_torchfile
@pytest.mark.parametrize(("old_batch_norm", "shared"), [(False, False), (True, True)])
def test_context_encoder_centre_t7_computes_what_demo_lua_computes(tmp_path, old_batch_norm, shared) -> None:
    net = t7.context_encoder_net(seed=4, old_batch_norm=old_batch_norm)
    if shared:
        t7.share_storage(net)
    src = t7.write_t7(tmp_path / "paris_inpaintCenter.t7", net)
    out = tmp_path / "ce_paris.safetensors"
    entry = convert_checkpoint(src, arch="context_encoder", out=out)
    assert "non-commercial" in entry["licence"] and entry["name"] == "context_encoder.ce_paris"
    ckpt = read_checkpoint(out)
    assert ckpt.config == {"bottleneck": 32, "variant": "centre", "width": 8, "conv_bias": True}

    model = load_model(out)
    image = _image(128, 128, seed=5)
    mask = _box_mask(128, 128, (36, 36, 92, 92))  # the centre model's hole: the inner 56² of the central 64²
    with torch.no_grad():
        expected = _demo_inpaint(net, image)
        got = image * (1 - mask) + model.inpaint(image, mask) * mask
        biasless = create_model("context_encoder", **{**ckpt.config, "conv_bias": False})
        state = {k: v for k, v in model.state_dict().items() if k in biasless.state_dict()}
        biasless.load_state_dict(state)
        without_bias = image * (1 - mask) + biasless.eval().inpaint(image, mask) * mask
    assert (got - expected).abs().max().item() <= 1e-5
    hole = mask.bool().expand_as(image)
    assert expected[hole].std() > 0.02
    assert (without_bias - expected).abs().max().item() > 1e-3  # the one-step biases count

    # The engine fills a 128² image with that hole in one window: the same pixels as demo.lua.
    rgb = image[0].permute(1, 2, 0).numpy().copy()
    result = Inpainter(model, device="cpu", blend="none").fill(rgb, mask[0, 0].numpy() > 0.5)
    assert np.abs(result.rgb - expected[0].permute(1, 2, 0).numpy()).max() <= 1e-5


@needs_torchfile
def test_context_encoder_zero_biases_keep_the_native_layout_and_random_variant(tmp_path) -> None:
    """All-zero Lua biases are dropped (conv_bias stays off); six deconvs are train_random.lua's generator,
    fed and composited as test_random.lua does."""
    net = t7.context_encoder_net(seed=6, random_variant=True, bias_scale=0.0)
    out = tmp_path / "ce_random.safetensors"
    convert_checkpoint(t7.write_t7(tmp_path / "random.t7", net), arch="context_encoder", out=out)
    assert read_checkpoint(out).config == {"bottleneck": 32, "variant": "random", "width": 8, "conv_bias": False}
    model = load_model(out)
    image = _image(128, 128, seed=7)
    mask = torch.from_numpy(np.random.default_rng(8).random((1, 1, 128, 128)) < 0.25).float()
    with torch.no_grad():
        x = image * 2 - 1
        x_in = torch.where(mask.bool(), CE_FILL, x)
        prediction = t7.lua_forward(net, x_in)
        expected = (torch.where(mask.bool(), prediction, x) + 1) / 2
        got = image * (1 - mask) + model.inpaint(image, mask) * mask
    assert (got - expected).abs().max().item() <= 1e-5
    assert expected[mask.bool().expand_as(image)].std() > 0.02


@needs_torchfile
def test_cli_converts_a_t7_and_fill_warns_about_its_licence(tmp_path, run_cli, capsys, monkeypatch) -> None:
    src = _glcic_file(tmp_path, t7.glcic_net(seed=9))
    monkeypatch.chdir(tmp_path)
    argv = ["models", "convert", str(src), "--arch", "glcic", "--out", "g.safetensors", "--name", "glcic.places2"]
    assert run_cli(argv) == 0
    printed = capsys.readouterr()
    assert '[models."glcic.places2"]' in printed.out and 'licence = "CC BY-NC-SA 4.0"' in printed.out
    assert fill_random_image(run_cli, "g.safetensors") == 0
    assert "non-commercial" in capsys.readouterr().err


@needs_torchfile
def test_unknown_modules_and_misfits_are_one_line_errors_naming_the_file(tmp_path) -> None:
    rng = np.random.default_rng(0)
    net = t7.context_encoder_net(seed=0)
    net.fields["modules"].insert(3, t7.lua_module("nn.SpatialMaxPooling", kW=2, kH=2))
    src = t7.write_t7(tmp_path / "pool.t7", net)
    with pytest.raises(InpaintError, match=r"pool\.t7: layer 18 is nn\.SpatialMaxPooling, which this converter"):
        convert_checkpoint(src, arch="context_encoder", out=tmp_path / "x.safetensors")

    net = t7.glcic_net(seed=0)
    modules = net.fields["modules"]
    modules[3] = t7.conv(rng, 64, 120, 3, 2, 1)  # layer 2 with 120 outputs instead of 128
    modules[4] = t7.batch_norm(rng, 120)
    modules[6] = t7.conv(rng, 120, 128, 3, 1, 1)
    src = _glcic_file(tmp_path, net, name="narrow.t7")
    with pytest.raises(
        InpaintError, match=r"narrow\.t7: layer 4 \(nn\.SpatialConvolution\) does not fit glcic: weight"
    ):
        convert_checkpoint(src, arch="glcic", out=tmp_path / "x.safetensors")

    net = t7.glcic_net(seed=0)
    net.fields["modules"][0].fields["padW"] = 0  # unpadded: not the "same" convolution of the paper
    with pytest.raises(InpaintError, match=r"layer 1 \(nn\.SpatialConvolution\) does not fit glcic: padding \(2, 0\)"):
        convert_checkpoint(_glcic_file(tmp_path, net, name="p.t7"), arch="glcic", out=tmp_path / "x.safetensors")

    ce = t7.write_t7(tmp_path / "ce.t7", t7.context_encoder_net(seed=0))
    with pytest.raises(InpaintError, match=r"ce\.t7: not the authors' completionnet \.t7"):
        convert_checkpoint(ce, arch="glcic", out=tmp_path / "x.safetensors")
    with pytest.raises(
        InpaintError, match=r"not a Context Encoder generator \(an nn\.Sequential netG; found a Lua table\)"
    ):
        convert_checkpoint(
            _glcic_file(tmp_path, t7.glcic_net()), arch="context_encoder", out=tmp_path / "x.safetensors"
        )


@needs_torchfile
def test_bad_means_and_damaged_files_are_refused(tmp_path) -> None:
    net = t7.glcic_net(seed=0)
    src = t7.write_t7(tmp_path / "m.t7", {"model": net, "mean": [117.0, 104.0, 123.0]})
    with pytest.raises(InpaintError, match=r"m\.t7: `mean` .* is not in \[0, 1\]"):
        convert_checkpoint(src, arch="glcic", out=tmp_path / "x.safetensors")
    src = t7.write_t7(tmp_path / "nomean.t7", {"model": net})
    with pytest.raises(InpaintError, match="a table with `model` and `mean`"):
        convert_checkpoint(src, arch="glcic", out=tmp_path / "x.safetensors")

    whole = t7.write_t7(tmp_path / "whole.t7", t7.context_encoder_net(seed=0)).read_bytes()
    for cut in (7, len(whole) // 2, len(whole) - 3):
        (tmp_path / "short.t7").write_bytes(whole[:cut])
        with pytest.raises(InpaintError, match=r"short\.t7: not a readable Lua Torch \(\.t7\) file"):
            convert_checkpoint(tmp_path / "short.t7", arch="context_encoder", out=tmp_path / "x.safetensors")

    # A tensor whose view reaches past its storage is refused, never read out of bounds.
    net = t7.context_encoder_net(seed=0)
    first = t7.modules_of(net)[0]
    weight = first.fields["weight"]
    first.fields["weight"] = t7.Tensor(t7.Storage(weight.reshape(-1)[:-1].copy()), weight.shape, (48, 16, 4, 1), 0)
    src = t7.write_t7(tmp_path / "past.t7", net)
    with pytest.raises(InpaintError, match=r"past\.t7: not a readable .*reaching past its storage"):
        convert_checkpoint(src, arch="context_encoder", out=tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_without_torchfile_the_error_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchfile", None)  # import torchfile now raises ImportError
    src = t7.write_t7(tmp_path / "ce.t7", t7.context_encoder_net(seed=0))
    with pytest.raises(InpaintError, match=r"needs torchfile; install it with: pip install 'inpaint-cli\[convert\]'"):
        convert_checkpoint(src, arch="context_encoder", out=tmp_path / "x.safetensors")
