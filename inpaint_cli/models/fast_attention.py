"""CPU fast path of contextual attention: the match and the paste as sums along diagonals, reused score maps.

`attention.contextual_attention_reference` computes contextual attention as the paper's released code does:
per sample, the background patches as convolution kernels (a ksize² match, a 2·rate transposed-conv paste)
and the diagonal fusion as a convolution with an identity kernel. `contextual_attention` here computes the
same values (up to fp32 rounding; tests/test_fast_paths.py) with far fewer FLOPs and passes over memory:

- Both convolutions are sums over patch offsets k of products at p+k and l+k, so they factor into per-pixel
  products and sums along the diagonals of the (P, L) map. A step along y is a shift of whole grid rows, one
  slice of the map; a step along x would wrap from a row's end into the next row, so the x offsets are taken
  on the features instead, where that is a cheap slice:
  - match: scores[p, l] = Σ_k f[p+k]·b[l+k] / ‖b patch l‖ = one bmm of the features with their x neighbours
    (ksize·C per entry instead of ksize²·C), then the sum of that map along y (`match_scores`).
  - paste: output pixel rate·m + s (phase s per axis) takes a tap of the patches of foreground locations m
    and m∓1, from background pixel rate·l + s. So out at phase s = (the attention summed over its diagonal
    shift along y) @ (b at phase s and b at phase s moved one step along x), with the second half moved back
    along x on the output (`paste`): a few (P, L) @ (L, k·C) matmuls instead of a (P, L) @ (L, 4·rate²·C)
    one followed by a fold.
- The diagonal fusion (an identity-kernel convolution of the (P, L) map) is shifted adds (`fuse_scores`);
  its column-major half shifts a (h, w, h, w) view of the map instead of permuting the map there and back.
- Without autograd every stage writes into two (B, P, L) buffers allocated once per call (`ScoreMaps`)
  instead of a new map each: large blocks are returned to the OS when freed, so each fresh map would pay
  its page faults again.
- Values below the smallest normal float32 are zeroed (`flush_denormals`): trained features and softmax
  tails are full of denormals, and x86 matmuls on denormals run many times slower.

benchmarks/README.md has the measurements behind each of these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TINY = torch.finfo(torch.float32).tiny


def flush_denormals(x: torch.Tensor) -> torch.Tensor:
    """Zero float32 values below the smallest normal number. torch's set_flush_denormal only reaches the
    calling thread, not the intra-op workers, so the data is flushed instead."""
    return x.masked_fill(x.abs() < TINY, 0.0)


def contextual_attention(
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
    """(out, attention) as `attention.contextual_attention_reference` computes them (same arguments, all
    float32); `out` comes back channels-last (the convs after the layer want that)."""
    f_small, b_small, b = (flush_denormals(x) for x in (f_small, b_small, b))
    batch, _, h, w = f_small.shape
    inference = not (torch.is_grad_enabled() and (f_small.requires_grad or b.requires_grad))
    maps = ScoreMaps((batch, h * w, h * w), b.device, enabled=inference)
    scores = match_scores(f_small, b_small, ksize, maps)
    if fuse:
        scores = fuse_scores(scores, fuse_k, h, w, maps)
    attention = masked_softmax(scores, usable, softmax_scale, maps.get(1))
    return paste(b, attention, rate, maps), attention


class ScoreMaps:
    """The (B, P, L) float32 buffers an inference call writes its stages into, each allocated on first use
    (see the module docstring); `get` returns None when `enabled` is false (autograd: every stage returns a new
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


# -- the stages, all in float32 ---------------------------------------------------------------------------


def match_scores(f_small: torch.Tensor, b_small: torch.Tensor, ksize: int, maps: ScoreMaps) -> torch.Tensor:
    """Scores of every foreground location against every background patch, (B, P, L): ksize² patches of b,
    L2-normalised (norm clamped at 1e-4), dotted with f's (which are not normalised).

    As Σ_k f[p+k]·b[l+k] over the ksize² offsets k (zero outside the grid): the products of f and b with their
    x neighbours (the x offsets of k), summed along the y diagonals of the (h, w, h, w) grid."""
    batch, channels, h, w = f_small.shape
    pad = ksize // 2
    window = range(-pad, pad + 1)
    f_rows, b_rows = (
        _x_neighbours(x.permute(0, 2, 3, 1), window).reshape(batch, h * w, len(window) * channels)
        for x in (f_small, b_small)
    )
    products = torch.bmm(f_rows, b_rows.transpose(1, 2), out=maps.get(1))
    scores = _diagonal_sum(products, window, w, out=maps.get(0))
    # ‖b patch‖ = sqrt of the ksize² box sum of per-pixel squared norms (zero padded); clamping the square
    # at 1e-8 is clamping the norm at 1e-4, with a finite gradient.
    squares = F.avg_pool2d(b_small.square().sum(1, keepdim=True), ksize, 1, pad, count_include_pad=True)
    b_norm = (squares * ksize**2).clamp_min(1e-8).sqrt().view(batch, 1, h * w)  # (B, 1, L)
    return scores / b_norm if scores.requires_grad else scores.div_(b_norm)


def fuse_scores(scores: torch.Tensor, fuse_k: int, h: int, w: int, maps: ScoreMaps) -> torch.Tensor:
    """Propagate scores along diagonals of the (h, w) grid: row-major flattening, then column-major
    (transpose both the foreground and the background grid), then back. `scores` is in map 0."""
    radius = fuse_k // 2
    fused = _fuse_diagonal(scores, radius, out=maps.get(1))
    return _fuse_diagonal_column_major(fused, radius, h, w, out=maps.get(0))


def masked_softmax(
    scores: torch.Tensor, usable: torch.Tensor, softmax_scale: float, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Softmax over the usable patches, (B, P, L), as the reference computes it. Without autograd it consumes
    `scores` (scaled in place) and writes into `out` if given: one pass per step over the (P, L) map."""
    if scores.requires_grad:  # autograd keeps softmax's output: no in-place steps
        return flush_denormals(torch.softmax(scores * usable * softmax_scale, dim=2) * usable)
    logits = scores.mul_(usable * softmax_scale)
    attention = torch.softmax(logits, dim=2) if out is None else torch.softmax(logits, dim=2, out=out)
    attention.mul_(usable)
    # Softmax tails are denormal; attention >= 0, so zeroing what is below the smallest normal
    # number is one threshold.
    return F.threshold_(attention, TINY, 0.0)


def paste(b: torch.Tensor, attention: torch.Tensor, rate: int, maps: ScoreMaps) -> torch.Tensor:
    """The transposed conv that pastes raw 2·rate patches of b weighted by the attention, with the overlap
    divided by 4: (B, C, H, W), channels-last.

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
    batch, channels, height, width = b.shape
    half = rate // 2
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


# -- sums along diagonals of the (P, L) map ----------------------------------------------------------------


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
