"""GatedConv2d's fused gate (`blocks.gated_activation`) against the plain formula it replaces.

The reference is the expression GatedConv2d used before: split the conv output in half, act(F) * sigmoid(G),
differentiated by autograd. Forward and every gradient must agree within 1e-6 relative (fp32 rounding), in
NCHW and channels-last, for each activation the layer can be built with; the parameters, their names and their
initialisation must not change, so existing checkpoints load.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from inpaint_cli.models import blocks
from inpaint_cli.models.blocks import GatedConv2d, signal_preserving_init

ACTIVATIONS = ("elu", "relu", "lrelu", "none")
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
WEIGHTS = Path(blocks.__file__).resolve().parents[1] / "bundled" / "deepfill_v2_campaign-128.safetensors"


def reference_forward(layer: GatedConv2d, x: torch.Tensor) -> torch.Tensor:
    """GatedConv2d's forward before the fused gate (channel halves of a channels-last output were copied)."""
    raw = layer.conv(x)
    features, gates = raw.split(layer.out_channels, dim=1)
    if raw.dim() == 4 and raw.is_contiguous(memory_format=torch.channels_last):
        features = features.contiguous(memory_format=torch.channels_last)
        gates = gates.contiguous(memory_format=torch.channels_last)
    return layer.activation(features) * torch.sigmoid(gates)


def assert_relative(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-6) -> None:
    """max |actual − expected| ≤ tolerance · max |expected| (fp32 rounding of a different evaluation order)."""
    assert actual.shape == expected.shape
    scale = expected.abs().max().item()
    error = (actual - expected).abs().max().item()
    assert error <= tolerance * max(scale, 1e-30), f"max error {error:.3g} vs scale {scale:.3g}"


def gradients(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor, forward) -> list[torch.Tensor]:
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = forward(x)
    y.backward(upstream)
    return [y.detach(), x.grad, *(p.grad for p in layer.parameters())]


@pytest.mark.parametrize("memory_format", FORMATS.values(), ids=FORMATS.keys())
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2)])
def test_forward_and_gradients_match_the_plain_formula(activation, memory_format, stride, dilation):
    torch.manual_seed(0)
    layer = GatedConv2d(5, 6, 3, stride=stride, dilation=dilation, activation=activation)
    signal_preserving_init(layer, gain=2.0, gate_bias=1.0)  # the trained init: features of both signs
    layer = layer.to(memory_format=memory_format)
    x = torch.randn(2, 5, 9, 11).contiguous(memory_format=memory_format)
    out_size = layer(x).shape
    upstream = torch.randn(out_size).contiguous(memory_format=memory_format)

    fused = gradients(layer, x, upstream, layer)
    plain = gradients(layer, x, upstream, lambda inp: reference_forward(layer, inp))
    names = ["output", "input grad", "weight grad", "bias grad"]
    for name, actual, expected in zip(names, fused, plain, strict=True):
        assert actual is not None, name
        assert_relative(actual, expected)
    torch.testing.assert_close(fused[0], plain[0], rtol=1e-6, atol=0.0)  # the forward: element-wise


@pytest.mark.parametrize("memory_format", FORMATS.values(), ids=FORMATS.keys())
def test_upstream_gradient_in_another_layout(memory_format):
    """A gradient arriving as a strided view (a channel slice of a concat's gradient) is handled."""
    torch.manual_seed(1)
    layer = GatedConv2d(3, 4, 3).to(memory_format=memory_format)
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=memory_format)

    def forward(inp: torch.Tensor) -> torch.Tensor:
        y = layer(inp)
        return torch.cat([y, y * 2.0], dim=1)[:, 2:6]

    upstream = torch.randn(2, 4, 8, 8)
    fused = gradients(layer, x, upstream, forward)
    plain = gradients(
        layer,
        x,
        upstream,
        lambda inp: torch.cat([reference_forward(layer, inp), 2.0 * reference_forward(layer, inp)], 1)[:, 2:6],
    )
    for actual, expected in zip(fused, plain, strict=True):
        assert_relative(actual, expected)


@pytest.mark.parametrize("memory_format", FORMATS.values(), ids=FORMATS.keys())
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_inference_matches_the_plain_formula(activation, memory_format):
    torch.manual_seed(2)
    layer = GatedConv2d(4, 3, 3, activation=activation).to(memory_format=memory_format)
    x = torch.randn(1, 4, 7, 7).contiguous(memory_format=memory_format)
    with torch.inference_mode():
        fused = layer(x)
        plain = reference_forward(layer, x)
    # Channels-last inference runs the two halves as two convs (dense outputs, no copies): oneDNN may pick
    # another kernel for half the output channels, so equal up to fp32 rounding; NCHW is bit-exact.
    tolerance = {"rtol": 1e-5, "atol": 1e-6} if memory_format == torch.channels_last else {"rtol": 0.0, "atol": 0.0}
    torch.testing.assert_close(fused, plain, **tolerance)
    with torch.no_grad():
        torch.testing.assert_close(layer(x.requires_grad_()), plain, **tolerance)


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
    monkeypatch.setattr(GatedConv2d, "forward", reference_forward)
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
        plain = reference_forward(layer, x)
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
    for forward in (layer, lambda inp: reference_forward(layer, inp)):
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
