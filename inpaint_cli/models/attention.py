"""Contextual attention (Yu et al., CVPR 2018), MODELS.md §3.3, shared by DeepFill v1/v2 and PiiGAN.

In: foreground features f, background features b (both (B, C, H, W) at 1/4 image resolution, H and W
even) and the hole mask at that resolution (B, 1, H, W), 1 = hole. Out: (B, C, H, W) where every
location is rebuilt from raw 4×4 patches of b, weighted by how well its 3×3 neighbourhood (at 1/2 of
the feature resolution) matches each fully-known background patch.

Implementation notes:
- The official code loops over the batch and runs convolutions whose kernels are the patches. Here the
  same maths is batched: patch extraction with `F.unfold`, matching and pasting with `bmm`, the
  transposed-conv paste with `F.fold`.
- The known-patch mask `mm` is computed per sample. The official code uses the first sample's mask
  for the whole batch (§3.8), which is wrong for batches with different masks.
- Downscaling is strided slicing (`[..., ::rate, ::rate]`) by default, not TF's align_corners nearest
  resize, so the chosen pixels differ by up to one; irrelevant for weights trained here. `tf_resize=True`
  uses TF's resize (`blocks.resize_nearest_tf`), as the converted official checkpoints record.
- It always runs in float32, also under autocast: the logits (unnormalised-foreground scores × 10,
  summed over up to 9 fused terms) can overflow fp16 (§3.8). The result is cast back to f's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import resize_nearest_tf

_TINY = torch.finfo(torch.float32).tiny


def _flush_denormals(x: torch.Tensor) -> torch.Tensor:
    """Zero float32 values below the smallest normal number. Trained gated features (ELU · a sigmoid gate
    near 0) and softmax tails are full of denormals, and x86 matmuls on denormals run up to 10× slower
    (measured: 6.7 s instead of 0.55 s for this layer's matmuls on a 4000×3000 fill). torch's
    set_flush_denormal only reaches the calling thread, not the intra-op workers, so flush the data."""
    return x.masked_fill(x.abs() < _TINY, 0.0)


def _fuse_diagonal(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """Convolve each (P, L) score matrix with a (2r+1)² identity kernel, zero padded.

    Identity kernel ⇒ out[i, j] = Σ_{|d| ≤ r} in[i+d, j+d]: shifted adds instead of a real conv.
    """
    fused = scores.clone()
    for d in range(1, radius + 1):
        fused[:, d:, d:] += scores[:, :-d, :-d]
        fused[:, :-d, :-d] += scores[:, d:, d:]
    return fused


class ContextualAttention(nn.Module):
    """Contextual attention layer; the defaults are the call used by every model here (§3.3).

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

        Returns the reconstructed features (B, C, H, W) in f's dtype; with `return_attention` also the
        attention matrix (B, P, L) in float32, P = L = (H/rate)(W/rate), rows = foreground locations,
        columns = background patches, both row-major.
        """
        self._check_shapes(f, b, mask)
        batch, channels, height, width = f.shape
        rate = self.rate
        channels_last = f.dim() == 4 and f.is_contiguous(memory_format=torch.channels_last) and channels > 1

        with torch.autocast(device_type=f.device.type, enabled=False):
            f32 = _flush_denormals(f.float())
            b32 = _flush_denormals(b.float())
            mask32 = mask.float().expand(batch, 1, height, width)
            raw_patches = self._raw_patches(b32)
            # Downscale by `rate`: nearest via strided slicing, or TF's align-corners resize.
            if self.tf_resize:
                small = (height // rate, width // rate)
                f_small, b_small, mask_small = (resize_nearest_tf(x, small) for x in (f32, b32, mask32))
            else:
                f_small, b_small, mask_small = (x[..., ::rate, ::rate] for x in (f32, b32, mask32))
            scores = self._match_scores(f_small, b_small)
            if self.fuse:
                scores = self._fuse_scores(scores, *f_small.shape[-2:])
            attention = self._attention(scores, self._usable_patches(mask_small))
            out = self._paste(raw_patches, attention, height, width)

        out = out.to(f.dtype)
        if channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        if return_attention:
            return out, attention
        return out

    # -- the steps of `forward`, all in float32 -------------------------------------------------------

    def _check_shapes(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> None:
        if f.shape != b.shape:
            raise ValueError(f"f and b must have the same shape, got {tuple(f.shape)} and {tuple(b.shape)}")
        batch, _, height, width = f.shape
        if height % self.rate or width % self.rate:
            raise ValueError(f"feature size {height}x{width} must be a multiple of rate={self.rate}")
        if mask.shape[0] not in (1, batch) or mask.shape[-2:] != f.shape[-2:]:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match features {tuple(f.shape)}")

    def _raw_patches(self, b: torch.Tensor) -> torch.Tensor:
        """Raw 2·rate patches of b every rate pixels (TF SAME ⇒ padding rate/2 each side):
        (B, C·(2r)², L), one column per location of the downscaled grid."""
        return F.unfold(b, kernel_size=2 * self.rate, stride=self.rate, padding=self.rate // 2)

    def _match_scores(self, f_small: torch.Tensor, b_small: torch.Tensor) -> torch.Tensor:
        """Scores of every foreground location against every background patch, (B, P, L): ksize²
        patches of b, L2-normalised (norm clamped at 1e-4), dotted with f's (which are not normalised)."""
        pad = self.ksize // 2
        b_match = F.unfold(b_small, kernel_size=self.ksize, padding=pad)  # (B, C·k², L)
        b_match = b_match / b_match.norm(dim=1, keepdim=True).clamp_min(1e-4)
        f_match = F.unfold(f_small, kernel_size=self.ksize, padding=pad)  # (B, C·k², P)
        return torch.bmm(f_match.transpose(1, 2), b_match)

    def _fuse_scores(self, scores: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Propagate scores along diagonals of the (h, w) grid: row-major flattening, then column-major
        (transpose both the foreground and the background grid), then back."""
        batch = scores.shape[0]
        radius = self.fuse_k // 2
        scores = _fuse_diagonal(scores, radius)
        scores = scores.reshape(batch, h, w, h, w).permute(0, 2, 1, 4, 3).reshape(batch, h * w, h * w)
        scores = _fuse_diagonal(scores, radius)
        return scores.reshape(batch, w, h, w, h).permute(0, 2, 1, 4, 3).reshape(batch, h * w, h * w)

    def _usable_patches(self, mask_small: torch.Tensor) -> torch.Tensor:
        """(B, 1, L): 1 for a background patch whose whole ksize² mask window is known (zero padding
        outside the image counts as known, as in TF), else 0."""
        mask_windows = F.unfold(mask_small, kernel_size=self.ksize, padding=self.ksize // 2)  # (B, k², L)
        return (mask_windows.amax(dim=1, keepdim=True) <= 0).float()

    def _attention(self, scores: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
        """Softmax over the usable patches, (B, P, L). Masked logits are 0, not -inf, as in the official
        code; every row of `usable` being 0 then gives a uniform softmax times 0 = zeros, never NaN."""
        return _flush_denormals(torch.softmax(scores * usable * self.softmax_scale, dim=2) * usable)

    def _paste(self, raw_patches: torch.Tensor, attention: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Paste raw patches weighted by the attention (transposed conv = fold) and average the 2×2
        overlap (÷4): (B, C, height, width)."""
        pasted = torch.bmm(raw_patches, attention.transpose(1, 2))  # (B, C·(2r)², P)
        out = F.fold(
            pasted, output_size=(height, width), kernel_size=2 * self.rate, stride=self.rate, padding=self.rate // 2
        )
        return out / 4.0
