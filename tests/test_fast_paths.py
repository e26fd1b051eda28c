"""Every CPU fast path against the plain reference it stands in for, in one parametrised test.

- The gated convolution (`fast_gate`): `GatedConv2d.forward` against `GatedConv2d.reference_forward` (the
  paper's act(F) · sigmoid(G) on one conv's output, differentiated by autograd). With autograd the fast path is
  `GatedActivation`'s hand-written backward; without, the gate formed in place (NCHW) or two convs, one per
  half (channels-last).
- Contextual attention (`fast_attention`): `ContextualAttention.forward` (sums along diagonals; without
  autograd into reused score maps) against `ContextualAttention.reference_forward` (the released algorithm with
  one convolution kernel per patch).

Each case runs one fast path, checked by a spy, on several shapes and settings, with the TF-compatibility
switch off and on (`tf_padding` for the gate, `tf_resize` for the attention), in NCHW and channels-last, and
compares the forward values, and with autograd the gradients of the inputs and parameters for a dense and a
strided upstream gradient, to fp32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch

from inpaint_cli.models import fast_attention, fast_gate
from inpaint_cli.models.attention import ContextualAttention
from inpaint_cli.models.blocks import GatedConv2d, set_tf_padding, signal_preserving_init

# (in channels, out channels, input size, stride, dilation, activation): every activation `make_activation`
# builds, stride 2 on even and odd sizes (TF pads those asymmetrically), a dilated layer.
GATE_CONFIGS = [
    (5, 6, (9, 11), 1, 1, "elu"),
    (5, 6, (8, 12), 2, 1, "lrelu"),
    (3, 4, (9, 10), 2, 1, "relu"),
    (4, 3, (7, 7), 1, 2, "none"),
]
# (channels, feature size, ksize, rate, fuse_k, fuse): grids of 8×12, 6×4, 2×3 and 4×4 locations.
ATTENTION_CONFIGS = [
    (4, (16, 24), 3, 2, 3, True),
    (3, (12, 8), 3, 2, 3, True),
    (1, (4, 6), 3, 2, 3, True),
    (5, (16, 16), 3, 4, 5, False),
]


@dataclass
class Case:
    """One fast path on one configuration: the layer's `fast` and `reference` calls on `inputs`."""

    fast: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]
    reference: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]
    inputs: list[torch.Tensor]
    parameters: list[torch.Tensor]
    spy: tuple[object, str]  # (module or class, name): must run during `fast`
    check_spy: Callable[[list[object]], bool]  # on the spy's return values
    tolerance: float = 1e-5
    grad_tolerance: float = 1e-4
    extras: dict = field(default_factory=dict)


def gate_case(config: int, autograd: bool, channels_last: bool, tf: bool) -> Case:
    in_channels, out_channels, size, stride, dilation, activation = GATE_CONFIGS[config]
    torch.manual_seed(config)
    layer = GatedConv2d(in_channels, out_channels, 3, stride=stride, dilation=dilation, activation=activation)
    signal_preserving_init(layer, gain=2.0, gate_bias=1.0)  # the trained init: features of both signs
    set_tf_padding(layer, tf)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    layer = layer.to(memory_format=memory_format)
    x = (torch.randn(2, in_channels, *size) * 2.0).contiguous(memory_format=memory_format)
    if autograd:
        spy = (fast_gate.GatedActivation, "apply")
        check = lambda results: all(type(y.grad_fn).__name__ == "GatedActivationBackward" for y in results)  # noqa: E731
    elif channels_last:
        spy, check = (fast_gate, "split_conv_gate"), bool
    else:
        spy, check = (fast_gate, "gated_activation"), bool
    return Case(layer, layer.reference_forward, [x], list(layer.parameters()), spy, check)


def attention_case(config: int, autograd: bool, channels_last: bool, tf: bool) -> Case:
    channels, size, ksize, rate, fuse_k, fuse = ATTENTION_CONFIGS[config]
    generator = torch.Generator().manual_seed(config)
    layer = ContextualAttention(ksize=ksize, rate=rate, fuse_k=fuse_k, fuse=fuse, tf_resize=tf)
    f, b = (torch.randn(2, channels, *size, generator=generator) for _ in range(2))
    if channels_last:
        f, b = (x.contiguous(memory_format=torch.channels_last) for x in (f, b))
    mask = (torch.rand(2, 1, *size, generator=generator) < 0.15).float()
    mask[1, :, : size[0] // 2, : size[1] // 2] = 1.0  # a different hole per sample
    spy = (fast_attention.ScoreMaps, "get")
    # With autograd every stage makes a new tensor; without, the stages write into the reused maps.
    check = (lambda maps: all(m is None for m in maps)) if autograd else (lambda maps: all(m is not None for m in maps))

    def fast(f: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return layer(f, b, mask, return_attention=True)

    def reference(f: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return layer.reference_forward(f, b, mask, return_attention=True)

    return Case(fast, reference, [f, b], [], spy, check, tolerance=2e-5, grad_tolerance=2e-4)


def assert_relative(actual: torch.Tensor, expected: torch.Tensor, tolerance: float, what: str) -> None:
    """max |actual − expected| ≤ tolerance · max |expected|: fp32 rounding of a different evaluation order."""
    assert actual.shape == expected.shape, what
    scale = expected.abs().max().item()
    error = (actual - expected).abs().max().item()
    assert error <= tolerance * max(scale, 1e-12), f"{what}: max error {error:.3g} vs scale {scale:.3g}"


def as_tuple(value: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return value if isinstance(value, tuple) else (value,)


def strided_like(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random tensor of `tensor`'s shape as a channel slice of a wider one (a concat's gradient arrives so)."""
    wide = torch.randn(tensor.shape[0], 2 * tensor.shape[1], *tensor.shape[2:], generator=generator)
    return wide[:, 1 : 1 + tensor.shape[1]]


@pytest.mark.parametrize("tf", [False, True], ids=["symmetric", "tf"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("autograd", [True, False], ids=["autograd", "inference"])
@pytest.mark.parametrize(
    ("make_case", "config"),
    [(gate_case, i) for i in range(len(GATE_CONFIGS))] + [(attention_case, i) for i in range(len(ATTENTION_CONFIGS))],
    ids=[f"gate{i}" for i in range(len(GATE_CONFIGS))] + [f"attention{i}" for i in range(len(ATTENTION_CONFIGS))],
)
def test_fast_path_matches_its_reference(make_case, config, autograd, channels_last, tf, monkeypatch):
    case = make_case(config, autograd, channels_last, tf)
    spied: list[object] = []
    owner, name = case.spy
    original = getattr(owner, name)

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        spied.append(result)
        return result

    monkeypatch.setattr(owner, name, spy)

    if not autograd:
        # inference_mode, and no_grad with inputs that require grad (the fast paths must not take them for
        # training).
        if config % 2:
            inputs = [x.detach().requires_grad_(True) for x in case.inputs]
            with torch.no_grad():
                fast = as_tuple(case.fast(*inputs))
        else:
            with torch.inference_mode():
                fast = as_tuple(case.fast(*case.inputs))
        assert spied and case.check_spy(spied), f"the fast path ({name}) did not run as expected"
        with torch.no_grad():
            expected = as_tuple(case.reference(*case.inputs))
        for index, (actual, wanted) in enumerate(zip(fast, expected, strict=True)):
            assert_relative(actual, wanted, case.tolerance, f"output {index}")
        return

    generator = torch.Generator().manual_seed(100 + config)
    leaves = [x.detach().clone().requires_grad_(True) for x in case.inputs]
    for parameter in case.parameters:
        parameter.requires_grad_(True)
    differentiated = leaves + case.parameters
    fast = as_tuple(case.fast(*leaves))
    assert spied and case.check_spy(spied), f"the fast path ({name}) did not run as expected"
    expected = as_tuple(case.reference(*leaves))
    for index, (actual, wanted) in enumerate(zip(fast, expected, strict=True)):
        assert_relative(actual.detach(), wanted.detach(), case.tolerance, f"output {index}")
    for upstream_kind in ("dense", "strided"):
        upstream = (
            torch.randn(fast[0].shape, generator=generator).contiguous(memory_format=torch.channels_last)
            if upstream_kind == "dense" and channels_last
            else torch.randn(fast[0].shape, generator=generator)
            if upstream_kind == "dense"
            else strided_like(fast[0], generator)
        )
        fast_grads = torch.autograd.grad(fast[0], differentiated, upstream, retain_graph=True)
        expected_grads = torch.autograd.grad(expected[0], differentiated, upstream, retain_graph=True)
        for index, (actual, wanted) in enumerate(zip(fast_grads, expected_grads, strict=True)):
            assert_relative(actual, wanted, case.grad_tolerance, f"gradient {index}, {upstream_kind} upstream")
