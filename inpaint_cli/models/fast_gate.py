"""CPU fast paths of the gated convolution's gate, y = act(F) · sigmoid(G) on the two channel halves [F, G].

`blocks.GatedConv2d.reference_forward` is the formula as the DeepFill v2 paper writes it; `gated_conv` computes
the same values (up to fp32 rounding) with fewer passes over memory:

- With autograd, `GatedActivation` has a hand-written backward that writes both halves of the input gradient
  into one tensor (autograd's own graph writes each half to its own tensor and then concatenates them).
- Without autograd, the product is formed in place in the activation's output.
- Without autograd on channels-last input, the features and the gates come from two convolutions of
  out_channels each (`split_conv_gate`): the channel halves of one 2·out_channels channels-last output are
  strided, and element-wise CPU kernels on strided halves are many times slower than on dense tensors.

Every path is checked against the reference in tests/test_fast_paths.py; benchmarks/README.md has the timings.
Only the activations `blocks.make_activation` builds (exact types) are handled here, and code traced by
torch.compile uses the reference (inductor fuses the plain expression into one kernel itself).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

# The activations `activation_grad` differentiates from their result (`blocks.make_activation` builds these).
FUSABLE = (nn.ELU, nn.ReLU, nn.LeakyReLU, nn.Identity)


def compiling() -> bool:
    """Whether torch.compile (dynamo) is tracing this call (torch.compiler.is_compiling, torch >= 2.3)."""
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling()) if is_compiling is not None else False


def applies(activation: nn.Module) -> bool:
    """Whether `gated_conv` handles a gate with this activation (exact types: a subclass may compute
    something else) in the current call (not under torch.compile)."""
    return type(activation) in FUSABLE and not compiling()


def is_channels_last(raw: torch.Tensor) -> bool:
    """A 4-D tensor laid out channels-last (and not also plain contiguous, as 1×1 maps or 1 channel are)."""
    return raw.dim() == 4 and not raw.is_contiguous() and raw.is_contiguous(memory_format=torch.channels_last)


def dense_halves(raw: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, gates): the two channel halves of `raw`, as tensors the element-wise kernels run fast on.

    NCHW halves are views (each sample's half is one contiguous block). Channel halves of a channels-last
    tensor are strided views, on which CPU element-wise kernels are much slower than a copy to a dense
    channels-last tensor plus the dense kernel, so those are copied.
    """
    features, gates = raw.split(channels, dim=1)
    if is_channels_last(raw):
        features = features.contiguous(memory_format=torch.channels_last)
        gates = gates.contiguous(memory_format=torch.channels_last)
    return features, gates


def activation_value(activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`activation(x)` through the functional op, so module hooks (e.g. FlopCounterMode's module tracker) do not
    fire inside the autograd.Function."""
    if isinstance(activation, nn.ELU):
        return F.elu(x, activation.alpha)
    if isinstance(activation, nn.ReLU):
        return F.relu(x)
    if isinstance(activation, nn.LeakyReLU):
        return F.leaky_relu(x, activation.negative_slope)
    return x  # nn.Identity


def activation_in_place(activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`activation(x)` written over x (one of `FUSABLE`; inference only)."""
    if isinstance(activation, nn.ELU):
        return F.elu_(x, activation.alpha)
    if isinstance(activation, nn.ReLU):
        return F.relu_(x)
    if isinstance(activation, nn.LeakyReLU):
        return F.leaky_relu_(x, activation.negative_slope)
    return x  # nn.Identity


def activation_grad(
    activation: nn.Module, grad: torch.Tensor, result: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """d activation(x)/dx · grad, from the activation's *result* (so x need not be kept); into `out` if given.

    ELU: grad·(result + α) for x ≤ 0, i.e. exp(x) computed as expm1(x) + 1 (what autograd does for the in-place
    elu_; it differs from exp(x) by fp32 rounding only). ReLU and LeakyReLU: the sign of the result is the sign
    of x. Identity: grad.
    """
    aten = torch.ops.aten
    if isinstance(activation, nn.ELU):
        if out is None:
            return aten.elu_backward(grad, activation.alpha, 1, 1, True, result)
        return aten.elu_backward.grad_input(grad, activation.alpha, 1, 1, True, result, grad_input=out)
    if isinstance(activation, nn.ReLU):
        value = aten.threshold_backward(grad, result, 0)
    elif isinstance(activation, nn.LeakyReLU):
        value = aten.leaky_relu_backward(grad, result, activation.negative_slope, True)
    else:  # nn.Identity
        value = grad
    return value if out is None else out.copy_(value)


class GatedActivation(torch.autograd.Function):
    """y = act(F)·sigmoid(G) for raw = [F, G] (channel halves), with a hand-written backward.

    Autograd's own graph of `act(F) * sigmoid(G)` saves the same two tensors (act(F), sigmoid(G)) but builds
    d raw with two extra passes: each half's gradient is written to its own tensor and then concatenated
    (split's backward). This backward writes both halves straight into one d raw tensor (NCHW), or
    concatenates dense halves (channels-last, where writing into strided halves is slow). Not twice
    differentiable (no gradient penalty through gated convs; none of the recipes needs one).
    """

    @staticmethod
    def forward(ctx: Any, raw: torch.Tensor, channels: int, activation: nn.Module) -> torch.Tensor:
        features, gates = dense_halves(raw, channels)
        gate = torch.sigmoid(gates)
        value = activation_value(activation, features)
        ctx.activation = activation
        ctx.raw_shape = raw.shape
        ctx.channels_last = is_channels_last(raw)
        ctx.save_for_backward(value, gate)
        return value * gate

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        value, gate = ctx.saved_tensors
        if ctx.channels_last:
            grad = grad.contiguous(memory_format=torch.channels_last)
            features_grad = activation_grad(ctx.activation, grad * gate, value)
            gates_grad = torch.ops.aten.sigmoid_backward(grad * value, gate)
            return torch.cat([features_grad, gates_grad], dim=1), None, None
        raw_grad = grad.new_empty(ctx.raw_shape)
        features_out, gates_out = raw_grad.split(value.shape[1], dim=1)
        activation_grad(ctx.activation, grad * gate, value, out=features_out)
        torch.ops.aten.sigmoid_backward.grad_input(grad * value, gate, grad_input=gates_out)
        return raw_grad, None, None


def gated_activation(raw: torch.Tensor, channels: int, activation: nn.Module) -> torch.Tensor:
    """activation(raw[:, :channels]) · sigmoid(raw[:, channels:]) for an activation `applies` accepts: with
    autograd through `GatedActivation`, without it formed in place in the activation's output."""
    if torch.is_grad_enabled() and raw.requires_grad:
        return GatedActivation.apply(raw, channels, activation)
    features, gates = dense_halves(raw, channels)
    if isinstance(activation, nn.Identity):
        return features * torch.sigmoid(gates)
    return activation_value(activation, features).mul_(torch.sigmoid(gates))


def split_conv_gate(conv: nn.Conv2d, x: torch.Tensor, channels: int, activation: nn.Module) -> torch.Tensor:
    """Inference on channels-last input: features and gates as two convs of `channels` each (the two halves of
    `conv`'s weights), so both come out dense, and the gate formed in place (activation, sigmoid, multiply:
    three passes). Each output channel is the same dot product as in the single conv.

    `conv` pads through its `padded_input` (`blocks.SameConv2d`: TF's SAME padding when `tf_padding` is set)."""
    x, padding = conv.padded_input(x)
    weights = conv.weight.split(channels)
    biases = (None, None) if conv.bias is None else conv.bias.split(channels)
    features, gates = (
        F.conv2d(x, weight, bias, conv.stride, padding, conv.dilation, conv.groups)
        for weight, bias in zip(weights, biases, strict=True)
    )
    return activation_in_place(activation, features).mul_(gates.sigmoid_())


def gated_conv(conv: nn.Conv2d, x: torch.Tensor, channels: int, activation: nn.Module) -> torch.Tensor:
    """activation(F) · sigmoid(G) for [F, G] = conv(x), by the fastest path for this call (`applies` must hold):
    two convs for channels-last inference (zero-padded convs only), else one conv and `gated_activation`."""
    if not torch.is_grad_enabled() and is_channels_last(x) and conv.padding_mode == "zeros":
        return split_conv_gate(conv, x, channels, activation)
    return gated_activation(conv(x), channels, activation)
