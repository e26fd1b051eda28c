"""Contextual attention (Yu et al., "Generative Image Inpainting with Contextual Attention", CVPR 2018), shared
by DeepFill v1/v2 and PiiGAN.

In: foreground features f, background features b (both (B, C, H, W) at 1/4 image resolution, H and W
multiples of `rate`) and the hole mask at that resolution (B, 1, H, W), 1 = hole. Out: (B, C, H, W) where
every location is rebuilt from raw 2·rate × 2·rate patches of b, weighted by how well its ksize² neighbourhood
(at 1/rate of the feature resolution) matches each fully-known background patch:

1. downscale f, b and the mask by `rate`;
2. match: the ksize² patches of the downscaled b, L2-normalised, are convolution kernels run over the
   downscaled f: one score per (foreground location p, background patch l);
3. fuse: the (P, L) score map is convolved with a fuse_k² identity kernel, once with both grids flattened
   row-major and once column-major, so a match is rewarded when its neighbours match the neighbours of its
   source too;
4. a softmax over the background patches whose whole mask window is known (scaled by `softmax_scale`);
5. paste: a transposed convolution whose kernels are the raw 2·rate patches of b, weighted by the attention;
   the overlapping patches are divided by 4.

`contextual_attention_reference` is that algorithm written as the released code writes it, one sample at a
time; `ContextualAttention.forward` computes the same values through `fast_attention` (sums along diagonals
instead of convolutions with one kernel per patch, score maps reused between stages).

Where this differs from the released code:
- The known-patch mask is computed per sample. The released code uses the first sample's mask for the whole
  batch, which is wrong for batches with different masks.
- Downscaling is strided slicing (`[..., ::rate, ::rate]`) by default, not TF's align_corners nearest
  resize, so the chosen pixels differ by up to one; irrelevant for weights trained here. `tf_resize=True`
  uses TF's resize (`blocks.resize_nearest_tf`), as the converted official checkpoints record.
- It always runs in float32, also under autocast: the logits (unnormalised foreground scores × 10, summed over
  up to fuse_k fused terms per direction) can overflow fp16. The result is cast back to f's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import fast_attention
from .blocks import resize_nearest_tf


def contextual_attention_reference(
    f_small: torch.Tensor,
    b_small: torch.Tensor,
    b: torch.Tensor,
    usable: torch.Tensor,
    *,
    ksize: int,
    rate: int,
    fuse_k: int,
    softmax_scale: float,
    fuse: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 2-5 of the module docstring with real convolutions, one sample at a time: (out (B, C, H, W),
    attention (B, P, L)).

    f_small, b_small: the downscaled features (B, C, h, w); b: the full-resolution background (B, C, H, W);
    usable: (B, 1, L), 1 for a background patch that may be copied. Memory grows with (h·w)², so this is
    for checking `fast_attention` on small maps, not for filling photos.
    """
    outputs, attentions = [], []
    pad, raw_size = ksize // 2, 2 * rate
    for f_one, b_one, b_full, usable_one in zip(f_small, b_small, b, usable, strict=True):
        channels, h, w = f_one.shape
        # 2. match: every ksize² patch of the background, normalised, as one conv kernel.
        patches = F.unfold(b_one[None], ksize, padding=pad)[0].t().reshape(h * w, channels, ksize, ksize)
        norms = patches.flatten(1).norm(dim=1).clamp_min(1e-4)
        scores = F.conv2d(f_one[None], patches / norms[:, None, None, None], padding=pad)  # (1, L, h, w)
        scores = scores.reshape(h * w, h * w).t()  # (P, L): a row per foreground location
        # 3. fuse: identity-kernel convolution of the map, row-major then column-major on both grids.
        if fuse:
            identity = torch.eye(fuse_k, dtype=scores.dtype, device=scores.device).reshape(1, 1, fuse_k, fuse_k)
            scores = F.conv2d(scores[None, None], identity, padding=fuse_k // 2)
            column_major = scores.reshape(h, w, h, w).permute(1, 0, 3, 2).reshape(1, 1, h * w, h * w)
            scores = F.conv2d(column_major, identity, padding=fuse_k // 2)
            scores = scores.reshape(w, h, w, h).permute(1, 0, 3, 2).reshape(h * w, h * w)
        # 4. softmax over the usable patches (masked logits are 0, as in the released code).
        attention = torch.softmax(scores * usable_one * softmax_scale, dim=1) * usable_one
        # 5. paste: every raw 2·rate patch of the background as a transposed-conv kernel.
        raw = F.unfold(b_full[None], raw_size, stride=rate, padding=rate // 2)[0].t()
        raw_kernels = raw.reshape(h * w, channels, raw_size, raw_size)
        attention_map = attention.t().reshape(1, h * w, h, w)
        outputs.append(F.conv_transpose2d(attention_map, raw_kernels, stride=rate, padding=rate // 2) / 4.0)
        attentions.append(attention)
    return torch.cat(outputs), torch.stack(attentions)


AttentionSteps = Callable[..., tuple[torch.Tensor, torch.Tensor]]


class ContextualAttention(nn.Module):
    """Contextual attention layer; the defaults are the call every model here uses.

    ksize: matching patch size (at 1/rate resolution). stride: matching stride (only 1 is supported,
    as used everywhere). rate: downscaling before matching; raw patches are 2·rate wide, taken every
    rate·stride pixels. fuse_k: size of the identity kernel that propagates scores along diagonals.
    softmax_scale: logit scale (10). fuse: apply the propagation step. tf_resize: downscale with TF's
    align_corners nearest resize instead of strided slicing (for weights trained in TF).
    """

    def __init__(
        self,
        ksize: int = 3,
        stride: int = 1,
        rate: int = 2,
        fuse_k: int = 3,
        softmax_scale: float = 10.0,
        fuse: bool = True,
        tf_resize: bool = False,
    ) -> None:
        super().__init__()
        if stride != 1:
            raise ValueError("ContextualAttention supports stride=1 only (the value every model uses)")
        if ksize % 2 != 1 or fuse_k % 2 != 1:
            raise ValueError("ksize and fuse_k must be odd")
        if rate < 2 or rate % 2:
            # Even rates keep TF's SAME padding of the 2·rate raw patches symmetric (rate/2 per side).
            raise ValueError("rate must be even (2 everywhere in the papers)")
        self.ksize = ksize
        self.stride = stride
        self.rate = rate
        self.fuse_k = fuse_k
        self.softmax_scale = softmax_scale
        self.fuse = fuse
        self.tf_resize = tf_resize

    def forward(
        self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """f, b: (B, C, H, W); mask: (B, 1, H, W), 1 = hole. H, W must be multiples of `rate`.

        Returns the reconstructed features (B, C, H, W) in f's dtype, channels-last; with `return_attention`
        also the attention matrix (B, P, L) in float32, P = L = (H/rate)(W/rate), rows = foreground
        locations, columns = background patches, both row-major.
        """
        return self._run(fast_attention.contextual_attention, f, b, mask, return_attention)

    def reference_forward(
        self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """`forward` through `contextual_attention_reference` (small maps only; see there)."""
        return self._run(contextual_attention_reference, f, b, mask, return_attention)

    def _run(
        self, steps: AttentionSteps, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, return_attention: bool
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Step 1 (downscaling) and the usable patches, then `steps` for steps 2-5, all in float32."""
        self._check_shapes(f, b, mask)
        batch, _, height, width = f.shape
        rate = self.rate
        with torch.autocast(device_type=f.device.type, enabled=False):
            f32, b32 = f.float(), b.float()
            mask32 = mask.float().expand(batch, 1, height, width)
            if self.tf_resize:
                small = (height // rate, width // rate)
                f_small, b_small, mask_small = (resize_nearest_tf(x, small) for x in (f32, b32, mask32))
            else:
                f_small, b_small, mask_small = (x[..., ::rate, ::rate] for x in (f32, b32, mask32))
            out, attention = steps(
                f_small,
                b_small,
                b32,
                self._usable_patches(mask_small),
                ksize=self.ksize,
                rate=rate,
                fuse_k=self.fuse_k,
                softmax_scale=self.softmax_scale,
                fuse=self.fuse,
            )
        out = out.to(f.dtype)
        if return_attention:
            return out, attention
        return out

    def _check_shapes(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> None:
        if f.shape != b.shape:
            raise ValueError(f"f and b must have the same shape, got {tuple(f.shape)} and {tuple(b.shape)}")
        batch, _, height, width = f.shape
        if height % self.rate or width % self.rate:
            raise ValueError(f"feature size {height}x{width} must be a multiple of rate={self.rate}")
        if mask.shape[0] not in (1, batch) or mask.shape[-2:] != f.shape[-2:]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match features {tuple(f.shape)}")

    def _usable_patches(self, mask_small: torch.Tensor) -> torch.Tensor:
        """(B, 1, L): 1 for a background patch whose whole ksize² mask window is known (zero padding
        outside the image counts as known, as in TF), else 0."""
        mask_windows = F.unfold(mask_small, kernel_size=self.ksize, padding=self.ksize // 2)  # (B, k², L)
        return (mask_windows.amax(dim=1, keepdim=True) <= 0).float()
