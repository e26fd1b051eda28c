"""Contextual attention (Yu et al., CVPR 2018), MODELS.md §3.3, shared by DeepFill v1/v2 and PiiGAN.

In: foreground features f, background features b (both (B, C, H, W) at 1/4 image resolution, H and W
even) and the hole mask at that resolution (B, 1, H, W), 1 = hole. Out: (B, C, H, W) where every
location is rebuilt from raw 4×4 patches of b, weighted by how well its 3×3 neighbourhood (at 1/2 of
the feature resolution) matches each fully-known background patch.

Implementation notes:
- The official code loops over the batch and runs convolutions whose kernels are the patches (a 3×3
  match, a 4×4 transposed-conv paste). Both are sums over patch offsets k of products at p+k and l+k,
  so they factor into per-pixel products and sums along the diagonals of the (P, L) map. A step along y
  is a shift of whole grid rows, one slice of the map; a step along x would wrap from a row's end into
  the next row, so the x offsets are taken on the features instead, where that is a cheap slice:
  - match: scores[p, l] = Σ_k f[p+k]·b[l+k] / ‖b patch l‖ = one bmm of the features with their two x
    neighbours (3·C per entry instead of 9·C), then the sum of that map along y.
  - paste: output pixel 2m+s (phase s per axis) takes tap s or s+2 of the patches of foreground
    locations m or m∓1, from background pixel 2l+s. So out at phase s = (the attention summed over its
    diagonal shift along y) @ (b at phase s and b at phase s moved one step along x), with the second
    half moved back along x on the output: two (P, L) @ (L, 4·C) matmuls instead of one
    (P, L) @ (L, 16·C) followed by a 16-tap fold.
  2.3× fewer FLOPs at 512² (35.4 instead of 80.5 G), the same maths up to fp32 rounding
  (tests/test_attention.py checks it against a literal per-sample implementation with real convolutions).
- The column-major half of the diagonal fusion shifts a (h, w, h, w) view of the scores instead of
  permuting the (P, L) matrix there and back (two copies of P·L floats, 64 MB each at 512²).
- Without autograd every stage writes into two (B, P, L) buffers allocated once per call (`_ScoreMaps`)
  instead of a new map each: a fresh 64 MB map at 512² costs its page faults again (glibc returns large
  blocks to the OS when they are freed), and twelve of them were a quarter of this layer's time.
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


def _fuse_diagonal(scores: torch.Tensor, radius: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Convolve each (P, L) score matrix with a (2r+1)² identity kernel, zero padded (into `out` if given).

    Identity kernel ⇒ out[i, j] = Σ_{|d| ≤ r} in[i+d, j+d]: shifted adds instead of a real conv.
    """
    fused = scores.clone() if out is None else out.copy_(scores)
    for d in range(1, radius + 1):
        fused[:, d:, d:] += scores[:, :-d, :-d]
        fused[:, :-d, :-d] += scores[:, d:, d:]
    return fused


def _fuse_diagonal_column_major(
    scores: torch.Tensor, radius: int, h: int, w: int, out: torch.Tensor | None = None
) -> torch.Tensor:
    """`_fuse_diagonal` of the scores re-indexed column-major on both grids, returned row-major.

    Column-major step +1 from (y, x) is (y+1, x), or (0, x+1) from the last row. On a (B, h, w, h, w)
    view of the scores, a step of d rows on both grids splits into four shifted blocks: neither index
    wraps to the next column, the foreground's does, the background's does, or both do. The sums are
    added in the same order as `_fuse_diagonal` (i - d, then i + d, for d = 1, 2, ...), so the values are identical.
    """
    batch = scores.shape[0]
    grid = scores.view(batch, h, w, h, w)
    fused = scores.clone() if out is None else out.copy_(scores)
    fused_grid = fused.view(batch, h, w, h, w)
    for d in range(1, radius + 1):
        for step in (-d, d):
            _add_column_major_shift(fused_grid, grid, step, h, w)
    return fused


def _add_column_major_shift(out: torch.Tensor, grid: torch.Tensor, step: int, h: int, w: int) -> None:
    """out[i, j] += grid[i + step, j + step], i and j moved `step` places in column-major order (zero
    beyond the ends). Rows y + step in [0, h) stay in their column; the others move to the next (or
    previous) column, at row y + step ∓ h."""
    def parts(size: int) -> list[tuple[slice, slice, int]]:
        """(target rows, source rows, column shift) for the same column and for the wrapped one."""
        if step > 0:
            return [(slice(0, size - step), slice(step, size), 0), (slice(size - step, size), slice(0, step), 1)]
        return [(slice(-step, size), slice(0, size + step), 0), (slice(0, -step), slice(size + step, size), -1)]

    for rows_out, rows_in, col_i in parts(h):
        for cols_out, cols_in, col_j in parts(h):
            x_out_i, x_in_i = _column_shift(col_i, w)
            x_out_j, x_in_j = _column_shift(col_j, w)
            out[:, rows_out, x_out_i, cols_out, x_out_j] += grid[:, rows_in, x_in_i, cols_in, x_in_j]


def _column_shift(shift: int, w: int) -> tuple[slice, slice]:
    """(target columns, source columns) for a move of `shift` (-1, 0, +1) columns."""
    if shift > 0:
        return slice(0, w - shift), slice(shift, w)
    if shift < 0:
        return slice(-shift, w), slice(0, w + shift)
    return slice(0, w), slice(0, w)


class _ScoreMaps:
    """The (B, P, L) float32 buffers an inference call writes its stages into, each allocated on first use
    (see the module notes); `get` returns None when `enabled` is false (autograd: every stage returns a new
    tensor). Stages pass the maps along: match 1 → 0, fusion 0 → 1 → 0, softmax 0 → 1, paste 1 → 0."""

    def __init__(self, shape: tuple[int, int, int], device: torch.device, enabled: bool) -> None:
        self._shape = shape
        self._device = device
        self._enabled = enabled
        self._maps: dict[int, torch.Tensor] = {}

    def get(self, index: int) -> torch.Tensor | None:
        if not self._enabled:
            return None
        if index not in self._maps:
            self._maps[index] = torch.empty(self._shape, dtype=torch.float32, device=self._device)
        return self._maps[index]


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
        batch, _, height, width = f.shape
        rate = self.rate

        with torch.autocast(device_type=f.device.type, enabled=False):
            f32 = _flush_denormals(f.float())
            b32 = _flush_denormals(b.float())
            mask32 = mask.float().expand(batch, 1, height, width)
            # Downscale by `rate`: nearest via strided slicing, or TF's align-corners resize.
            if self.tf_resize:
                small = (height // rate, width // rate)
                f_small, b_small, mask_small = (resize_nearest_tf(x, small) for x in (f32, b32, mask32))
            else:
                f_small, b_small, mask_small = (x[..., ::rate, ::rate] for x in (f32, b32, mask32))
            length = f_small.shape[-2] * f_small.shape[-1]
            inference = not (torch.is_grad_enabled() and (f.requires_grad or b.requires_grad))
            maps = _ScoreMaps((batch, length, length), f.device, enabled=inference)
            scores = self._match_scores(f_small, b_small, maps)
            if self.fuse:
                scores = self._fuse_scores(scores, *f_small.shape[-2:], maps)
            attention = self._attention(scores, self._usable_patches(mask_small), maps.get(1))
            out = self._paste(b32, attention, height, width, maps)

        out = out.to(f.dtype)  # channels-last, whatever f's layout: the convs after it want that
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

    def _match_scores(self, f_small: torch.Tensor, b_small: torch.Tensor, maps: _ScoreMaps) -> torch.Tensor:
        """Scores of every foreground location against every background patch, (B, P, L): ksize²
        patches of b, L2-normalised (norm clamped at 1e-4), dotted with f's (which are not normalised).

        As Σ_k f[p+k]·b[l+k] over the ksize² offsets k (zero outside the grid): the products of f and b
        with their x neighbours (the x offsets of k), summed along the y diagonals of the (h, w, h, w) grid."""
        batch, channels, h, w = f_small.shape
        pad = self.ksize // 2
        window = range(-pad, pad + 1)
        f_rows, b_rows = (
            _x_neighbours(x.permute(0, 2, 3, 1), window).reshape(batch, h * w, len(window) * channels)
            for x in (f_small, b_small)
        )
        products = torch.bmm(f_rows, b_rows.transpose(1, 2), out=maps.get(1))
        scores = _diagonal_sum(products, window, w, out=maps.get(0))
        # ‖b patch‖ = sqrt of the ksize² box sum of per-pixel squared norms (zero padded); clamping the square
        # at 1e-8 is clamping the norm at 1e-4, with a finite gradient.
        squares = F.avg_pool2d(b_small.square().sum(1, keepdim=True), self.ksize, 1, pad, count_include_pad=True)
        b_norm = (squares * self.ksize**2).clamp_min(1e-8).sqrt().view(batch, 1, h * w)  # (B, 1, L)
        return scores / b_norm if scores.requires_grad else scores.div_(b_norm)

    def _fuse_scores(self, scores: torch.Tensor, h: int, w: int, maps: _ScoreMaps) -> torch.Tensor:
        """Propagate scores along diagonals of the (h, w) grid: row-major flattening, then column-major
        (transpose both the foreground and the background grid), then back. `scores` is in map 0."""
        radius = self.fuse_k // 2
        fused = _fuse_diagonal(scores, radius, out=maps.get(1))
        return _fuse_diagonal_column_major(fused, radius, h, w, out=maps.get(0))

    def _usable_patches(self, mask_small: torch.Tensor) -> torch.Tensor:
        """(B, 1, L): 1 for a background patch whose whole ksize² mask window is known (zero padding
        outside the image counts as known, as in TF), else 0."""
        mask_windows = F.unfold(mask_small, kernel_size=self.ksize, padding=self.ksize // 2)  # (B, k², L)
        return (mask_windows.amax(dim=1, keepdim=True) <= 0).float()

    def _attention(self, scores: torch.Tensor, usable: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Softmax over the usable patches, (B, P, L). Masked logits are 0, not -inf, as in the official
        code; every row of `usable` being 0 then gives a uniform softmax times 0 = zeros, never NaN.
        Without autograd it consumes `scores` (scaled in place) and writes into `out` if given: one pass per
        step over the (P, L) map."""
        if scores.requires_grad:  # autograd keeps softmax's output: no in-place steps
            return _flush_denormals(torch.softmax(scores * usable * self.softmax_scale, dim=2) * usable)
        logits = scores.mul_(usable * self.softmax_scale)
        attention = torch.softmax(logits, dim=2) if out is None else torch.softmax(logits, dim=2, out=out)
        attention.mul_(usable)
        # Softmax tails are denormal; attention >= 0, so zeroing what is below the smallest normal
        # number is one threshold (the matmul after it is 10x slower on denormals).
        return F.threshold_(attention, _TINY, 0.0)

    def _paste(
        self, b: torch.Tensor, attention: torch.Tensor, height: int, width: int, maps: _ScoreMaps
    ) -> torch.Tensor:
        """The transposed conv that pastes raw 2·rate patches of b weighted by the attention, with the
        2×2 overlap averaged (÷4): (B, C, height, width), channels-last.

        Foreground patch p covers pixels rate·p + t - rate/2 (t < 2·rate per axis), from pixels
        rate·l + t - rate/2 of background patch l. Output pixel rate·m + s is thus covered by the patches
        of m and of m+1 (phase s < rate/2) or m-1 (otherwise), each reading background pixel
        rate·l' + s: out at phase s = (A + A shifted one step along both grids' diagonal, from m-1 or
        m+1) @ b at phase s.
        The shift depends only on which half of the phases s is in, so there are four summed maps in
        2-D, each multiplied by the (rate/2)² phases of b that share it.

        The y shift is summed on the map. The x shift is not (it would wrap across grid rows): with
        A' the map moved d along x on both grids, (A' @ v)[m] = (A @ v moved -d along x)[m moved d along x],
        so each phase multiplies b and b moved -d, and the second product is moved d on the output.
        `attention` is in map 1."""
        batch, channels = b.shape[:2]
        rate, half = self.rate, self.rate // 2
        h, w = height // rate, width // rate
        pixels = b.permute(0, 2, 3, 1)  # (B, H, W, C)
        out = b.new_empty((batch, height, width, channels))
        x_shifts = [-1 if sx < half else 1 for sx in range(rate)]
        for phases_y, shift_y in ((range(half), -1), (range(half, rate), 1)):
            summed = _diagonal_sum(attention, (0, shift_y), w, out=maps.get(0))
            phases = [(sy, sx) for sy in phases_y for sx in range(rate)]
            taps = []
            for sy, sx in phases:
                tap = pixels[:, sy::rate, sx::rate]  # (B, h, w, C)
                taps += [tap, _shift_x(tap, -x_shifts[sx])]
            rhs = torch.cat(taps, 3).reshape(batch, h * w, 2 * len(phases) * channels)
            pasted = torch.bmm(summed, rhs).div_(4.0).view(batch, h, w, len(phases), 2, channels)
            for index, (sy, sx) in enumerate(phases):
                direct, moved = pasted[:, :, :, index, 0], pasted[:, :, :, index, 1]
                out[:, sy::rate, sx::rate] = direct + _shift_x(moved, x_shifts[sx])
        return out.permute(0, 3, 1, 2)


def _shift_x(grid: torch.Tensor, d: int) -> torch.Tensor:
    """(B, h, w, C) → the value at x + d on the same grid row, zero beyond the row's ends."""
    width = grid.shape[2]
    if d > 0:
        return F.pad(grid[:, :, d:], (0, 0, 0, d))
    if d < 0:
        return F.pad(grid[:, :, : width + d], (0, 0, -d, 0))
    return grid


def _x_neighbours(grid: torch.Tensor, shifts: range) -> torch.Tensor:
    """(B, h, w, C) → (B, h, w, len(shifts)·C): `_shift_x` by each shift, concatenated along channels."""
    return torch.cat([_shift_x(grid, d) for d in shifts], dim=3)


def _diagonal_sum(
    scores: torch.Tensor, shifts: range | tuple[int, ...], w: int, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Σ_{d in shifts} of the (B, P, L) map moved d steps along y on both grids (zero outside):
    out[(y, x), (y', x')] = Σ_d in[(y + d, x), (y' + d, x')]. Both grids are w wide and flattened
    row-major, so a step along y is a shift of the flat index by d·w, which never wraps; `shifts` holds 0.
    Every pass runs over whole rows of the map. Written into `out` if given (not differentiable; must
    not overlap `scores`)."""
    length = scores.shape[1]

    def window(d: int, target: bool) -> tuple[slice, slice, slice]:
        offset = d * w
        if target:
            inner = slice(max(0, -offset), length - max(0, offset))
        else:
            inner = slice(max(0, offset), length - max(0, -offset))
        return slice(None), inner, inner

    first, *others = [d for d in shifts if d != 0]
    out = torch.empty_like(scores) if out is None else out
    inside = window(first, target=True)
    if scores.requires_grad:  # out= is not differentiable; a copy of the sum is
        out[inside] = scores[inside] + scores[window(first, target=False)]
    else:
        torch.add(scores[inside], scores[window(first, target=False)], out=out[inside])
    # Where the first shift reads from outside the map, the sum so far is the map itself.
    edge = slice(0, -first * w) if first < 0 else slice(length - first * w, length)
    out[:, edge] = scores[:, edge]
    out[:, :, edge] = scores[:, :, edge]
    for d in others:
        out[window(d, target=True)] += scores[window(d, target=False)]
    return out
