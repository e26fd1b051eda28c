"""Contextual attention: does its job, per-sample masks, edge cases, dtypes; both the layer and its reference
(`reference_forward`) against an independent literal implementation. The fast path against the reference on
many shapes and settings is in tests/test_fast_paths.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inpaint_cli.models.attention import ContextualAttention


def _reference_attention(f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The official algorithm written literally, one sample at a time with real convolutions
    (patches as kernels, identity-kernel fuse conv, transposed-conv paste), rate 2, ksize 3, fuse 3."""
    outputs = []
    for i in range(f.shape[0]):
        fi, bi, mi = f[i : i + 1], b[i : i + 1], mask[i : i + 1]
        channels, height, width = fi.shape[1:]
        raw = F.unfold(bi, 4, stride=2, padding=1)  # (1, C·16, L)
        raw_kernels = raw[0].t().reshape(-1, channels, 4, 4)
        fs, bs, ms = fi[..., ::2, ::2], bi[..., ::2, ::2], mi[..., ::2, ::2]
        h, w = fs.shape[-2:]
        kernels = F.unfold(bs, 3, padding=1)[0].t().reshape(-1, channels, 3, 3)
        norms = kernels.flatten(1).norm(dim=1).clamp_min(1e-4)
        kernels = kernels / norms[:, None, None, None]
        scores = F.conv2d(fs, kernels, padding=1)  # (1, L, h, w)
        identity = torch.eye(3).reshape(1, 1, 3, 3)
        image = scores.reshape(h * w, h * w).t().reshape(1, 1, h * w, h * w)  # rows = fg, cols = bg
        image = F.conv2d(image, identity, padding=1)
        image = image.reshape(h, w, h, w).permute(1, 0, 3, 2).reshape(1, 1, h * w, h * w)
        image = F.conv2d(image, identity, padding=1)
        fused = image.reshape(w, h, w, h).permute(1, 0, 3, 2).reshape(h * w, h * w)
        usable = (F.unfold(ms, 3, padding=1)[0].mean(dim=0) == 0).float()  # (L,)
        attention = torch.softmax(fused * usable * 10.0, dim=1) * usable  # (P, L)
        attention_map = attention.t().reshape(1, h * w, h, w)
        out = F.conv_transpose2d(attention_map, raw_kernels, stride=2, padding=1) / 4.0
        assert out.shape[-2:] == (height, width)
        outputs.append(out)
    return torch.cat(outputs)


def _hole_mask(batch: int, height: int, width: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    top, left, bottom, right = box
    mask = torch.zeros(batch, 1, height, width)
    mask[..., top:bottom, left:right] = 1.0
    return mask


def test_copies_the_matching_known_patch_into_the_hole() -> None:
    torch.manual_seed(0)
    height = width = 24
    background = torch.randn(1, 8, height, width)
    mask = _hole_mask(1, height, width, (4, 4, 12, 12))  # hole = downscaled rows/cols 2..5
    # One foreground location inside the hole (downscaled (3, 3)) whose 3×3 neighbourhood equals the
    # known background patch at downscaled (8, 8), ×20 so the softmax is sharp; zeros elsewhere.
    hole_y, hole_x, src_y, src_x = 3, 3, 8, 8
    b_small = background[..., ::2, ::2]
    foreground = torch.zeros_like(background)
    foreground[..., 2 * (hole_y - 1) : 2 * (hole_y + 2) : 2, 2 * (hole_x - 1) : 2 * (hole_x + 2) : 2] = (
        20.0 * b_small[..., src_y - 1 : src_y + 2, src_x - 1 : src_x + 2]
    )
    out, attention = ContextualAttention()(foreground, background, mask, return_attention=True)

    grid_w = width // 2
    row = attention[0, hole_y * grid_w + hole_x]
    assert row.argmax().item() == src_y * grid_w + src_x
    assert row.max().item() == pytest.approx(1.0, abs=1e-6)
    # The 4×4 raw patch pasted around the hole location is the source's raw patch.
    pasted = out[..., 2 * hole_y - 1 : 2 * hole_y + 3, 2 * hole_x - 1 : 2 * hole_x + 3]
    source = background[..., 2 * src_y - 1 : 2 * src_y + 3, 2 * src_x - 1 : 2 * src_x + 3]
    torch.testing.assert_close(pasted, source, atol=1e-5, rtol=0)


def test_translated_foreground_reconstructs_the_background_shift() -> None:
    torch.manual_seed(1)
    height = width = 24
    background = torch.randn(1, 8, height, width)
    foreground = 10.0 * torch.roll(background, shifts=-10, dims=-1)  # f[x] = 10·b[x + 10]
    mask = _hole_mask(1, height, width, (4, 4, 12, 12))
    out = ContextualAttention()(foreground, background, mask)
    # Interior pixels whose covering foreground locations all have known sources.
    torch.testing.assert_close(out[..., 2:22, 5:11], background[..., 2:22, 15:21], atol=1e-5, rtol=0)


def test_matches_literal_per_sample_reference() -> None:
    torch.manual_seed(2)
    f = torch.randn(2, 4, 16, 24)
    b = torch.randn(2, 4, 16, 24)
    mask = torch.cat([_hole_mask(1, 16, 24, (2, 2, 10, 12)), _hole_mask(1, 16, 24, (6, 10, 14, 22))])
    layer = ContextualAttention()
    expected = _reference_attention(f, b, mask)
    torch.testing.assert_close(layer(f, b, mask), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.reference_forward(f, b, mask), expected, atol=1e-6, rtol=1e-6)


def test_per_sample_masks_match_single_item_runs() -> None:
    torch.manual_seed(3)
    f = torch.randn(2, 6, 16, 16)
    mask = torch.cat([_hole_mask(1, 16, 16, (0, 0, 8, 8)), _hole_mask(1, 16, 16, (8, 6, 16, 16))])
    ca = ContextualAttention()
    batched = ca(f, f, mask)
    for i in range(2):
        single = ca(f[i : i + 1], f[i : i + 1], mask[i : i + 1])
        torch.testing.assert_close(batched[i : i + 1], single, atol=1e-6, rtol=1e-6)
    # And the masks really matter: swapping them changes the result.
    assert not torch.allclose(batched, ca(f, f, mask.flip(0)))


def test_fully_masked_background_gives_zeros() -> None:
    f = torch.randn(2, 4, 16, 16)
    out = ContextualAttention()(f, f, torch.ones(2, 1, 16, 16))
    assert out.shape == f.shape
    assert torch.isfinite(out).all()
    assert torch.count_nonzero(out) == 0


def test_zero_background_has_no_nan() -> None:
    f = torch.zeros(1, 4, 16, 16, requires_grad=True)
    out = ContextualAttention()(f, f, _hole_mask(1, 16, 16, (4, 4, 8, 8)))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(f.grad).all()


@pytest.mark.parametrize("size", [(16, 16), (8, 24), (32, 12)])
def test_output_shape_equals_input(size: tuple[int, int]) -> None:
    f = torch.randn(3, 5, *size)
    mask = torch.zeros(3, 1, *size)
    mask[..., : size[0] // 2, :] = 1.0
    assert ContextualAttention()(f, f, mask).shape == f.shape


def test_runs_in_float32_under_bf16_autocast() -> None:
    torch.manual_seed(4)
    f = torch.randn(2, 4, 16, 16)
    mask = _hole_mask(2, 16, 16, (4, 4, 12, 12))
    ca = ContextualAttention()
    expected = ca(f, f, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_bf16 = ca(f.bfloat16(), f.bfloat16(), mask)
        out_f32 = ca(f, f, mask)
    assert out_bf16.dtype == torch.bfloat16
    assert out_f32.dtype == torch.float32
    torch.testing.assert_close(out_f32, expected)  # autocast did not reach the matmuls
    torch.testing.assert_close(
        out_bf16.float(), ca(f.bfloat16().float(), f.bfloat16().float(), mask), atol=2e-2, rtol=2e-2
    )


def test_channels_last_input_keeps_layout_and_values() -> None:
    f = torch.randn(1, 8, 16, 16)
    mask = _hole_mask(1, 16, 16, (4, 4, 12, 12))
    ca = ContextualAttention()
    out = ca(f.contiguous(memory_format=torch.channels_last), f, mask)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ca(f, f, mask))
