"""GatedConv2d beyond its fast paths (those are in tests/test_fast_paths.py): parameters, names and
initialisation (existing checkpoints load), a bundled checkpoint filling as with the reference formula, bf16
autocast, FLOP counting, and TF's SAME padding on every path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from inpaint_cli.models import blocks
from inpaint_cli.models.blocks import GatedConv2d, signal_preserving_init

WEIGHTS = Path(blocks.__file__).resolve().parents[1] / "bundled" / "deepfill_v2_campaign-128.safetensors"


def test_parameters_names_and_init_are_unchanged():
    """Same tensors, same names, same draws from the RNG as the nn.Conv2d it wraps: old checkpoints load."""
    torch.manual_seed(3)
    layer = GatedConv2d(5, 6, 3, dilation=2)
    torch.manual_seed(3)
    conv = nn.Conv2d(5, 12, 3, padding=2, dilation=2)
    state = layer.state_dict()
    assert list(state) == ["conv.weight", "conv.bias"]
    assert [name for name, _ in layer.named_parameters()] == ["conv.weight", "conv.bias"]
    torch.testing.assert_close(state["conv.weight"], conv.weight.detach(), rtol=0.0, atol=0.0)
    torch.testing.assert_close(state["conv.bias"], conv.bias.detach(), rtol=0.0, atol=0.0)
    assert isinstance(layer.activation, nn.ELU)

    signal_preserving_init(layer, gain=2.0, gate_bias=1.0)
    assert torch.equal(layer.conv.bias[:6], torch.zeros(6)) and torch.equal(layer.conv.bias[6:], torch.ones(6))


@pytest.mark.skipif(not WEIGHTS.exists(), reason="bundled DeepFill v2 checkpoint not present")
def test_bundled_checkpoint_loads_and_fills_as_before(monkeypatch):
    from inpaint_cli.weights import load_model

    model = load_model(WEIGHTS)  # strict load: every tensor name and shape must match
    torch.manual_seed(4)
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 10:24] = 1.0
    with torch.inference_mode():
        fused = model.inpaint(image, mask)
    monkeypatch.setattr(GatedConv2d, "forward", GatedConv2d.reference_forward)
    with torch.inference_mode():
        plain = model.inpaint(image, mask)
    torch.testing.assert_close(fused, plain, rtol=0.0, atol=0.0)


def test_bf16_autocast_runs():
    """`inpaint train --amp` runs the gate on bf16 conv outputs."""
    torch.manual_seed(5)
    layer = GatedConv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        plain = layer.reference_forward(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y, plain, rtol=0.0, atol=0.0)
    y.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.isfinite(layer.conv.weight.grad).all()


def test_flop_counter_sees_the_same_flops():
    """bench/speed.py and benchmarks/bench_train.py count FLOPs with FlopCounterMode, whose module hooks must work."""
    from torch.utils.flop_counter import FlopCounterMode

    layer = GatedConv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    counts = []
    for forward in (layer, layer.reference_forward):
        with FlopCounterMode(display=False) as counter:
            forward(x).sum().backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0


@pytest.mark.parametrize("size", [(8, 12), (9, 11)], ids=["even", "odd"])
@pytest.mark.parametrize(("stride", "dilation"), [(2, 1), (1, 1), (1, 4)])
def test_channels_last_inference_pads_as_tf_when_tf_padding_is_set(size, stride, dilation):
    """The channels-last inference fast path (two convs) pads as TF's SAME does, like the NCHW path: at stride 2
    on an even size 0 rows/columns before and 1 after. Both are checked against F.pad + an unpadded conv."""
    torch.manual_seed(6)
    layer = GatedConv2d(3, 4, 3, stride=stride, dilation=dilation)
    signal_preserving_init(layer, gain=2.0, gate_bias=1.0)
    blocks.set_tf_padding(layer, True)
    x = torch.randn(2, 3, *size) * 3.0
    conv = layer.conv
    top, bottom = blocks.tf_same_pads(size[0], 3, stride, dilation)
    left, right = blocks.tf_same_pads(size[1], 3, stride, dilation)
    with torch.inference_mode():
        raw = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, stride, 0, dilation
        )
        expected = layer.activation(raw[:, :4]) * torch.sigmoid(raw[:, 4:])
        nchw = layer(x)
        channels_last = layer.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(nchw, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(channels_last, expected, rtol=1e-5, atol=1e-6)
    blocks.set_tf_padding(layer, False)  # symmetric padding: what the fast path computed before, whatever the flag
    with torch.inference_mode():
        symmetric = layer(x.contiguous(memory_format=torch.channels_last))
    assert symmetric.shape == expected.shape
    if (top, left) != (bottom, right):  # stride 2 on an even size: TF's odd pixel after
        assert (symmetric - expected).abs().max() > 0.5
    else:
        torch.testing.assert_close(symmetric, expected, rtol=1e-5, atol=1e-6)
