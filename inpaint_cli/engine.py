"""The inference engine: padding to the model's contract, crop/resize strategies, fp32 fallback.

Input and output are float32 RGB arrays in [0, 1] plus a bool hole mask; reading files, bit depths, gray
and alpha belong to `inpaint_cli.io`, and which device and dtype `--device`/`--half` mean belongs to
`inpaint_cli.devices`. The engine never trusts the model with known pixels: it returns the prediction
pasted into the holes only, so every known pixel is exactly the input's.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from . import fill_memory
from .border_blend import check_blend, match_border
from .devices import cpu_has_native_bf16, half_dtype, pick_device, precision_name
from .errors import InpaintError, UsageError
from .windows import hole_regions, hole_windows, pad_bottom_right, reflect_window, resize_hole_mask

__all__ = [
    "STRATEGIES",
    "FillResult",
    "Inpainter",
    "check_strategy",
    "from_float",
    "hole_regions",
    "hole_windows",
    "pad_bottom_right",
    "resize_hole_mask",
    "to_float",
    "window_seed",
]

if TYPE_CHECKING:
    import torch

    from .models.base import InpaintModel

log = logging.getLogger("inpaint_cli")

Strategy = Literal["auto", "full", "crop", "resize"]
STRATEGIES: tuple[str, ...] = ("auto", "full", "crop", "resize")


def check_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise UsageError(f"--strategy {name}: expected one of {', '.join(STRATEGIES)}")
    return name  # type: ignore[return-value]


@dataclass
class FillResult:
    rgb: np.ndarray  # (H, W, 3), the input's dtype (float32 in [0, 1], uint8 or uint16): its holes filled
    strategy: str  # the strategy actually used
    precision: str  # "fp32", "bf16" or "fp16" — the one that produced the output
    seconds: float  # wall time; a batched call's time is shared out evenly over its images
    windows: int  # model calls (windows) made (1 for full/resize, one per hole region for crop)
    window_sizes: tuple[tuple[int, int], ...] = ()  # (height, width) the model ran at, per window


# Pixels per model call when images or samples are batched. On a CPU larger batches stop paying once the
# attention's score matrices leave the cache, so two 256² images per call; a GPU wants 16 for occupancy
# (benchmarks/README.md has the measurements).
CPU_BATCH_PIXELS = 2 * 256 * 256
GPU_BATCH_PIXELS = 16 * 256 * 256


def window_seed(seed: int, window: int) -> int:
    """The seed of the latent of window `window` (0, 1, ...) of a fill seeded `seed`.

    Window 0 uses the seed itself, so a one-window fill draws what `torch.Generator().manual_seed(seed)`
    draws; later windows hash (seed, window). Each window's latent is thereby fixed by (seed, window)
    alone: it does not depend on earlier windows, on the precision, or on an fp32 retry."""
    if window == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**64, window]).generate_state(1, np.uint64)[0])


@dataclass
class _FillRun:
    """The state of one (possibly batched) fill. It lives on the stack of the call, never on the
    Inpainter, so one Inpainter can fill from several threads at once."""

    seeds: list[int | None]  # one per sample of the batch
    windows: int = 0  # model calls (windows) made so far; also the index of the next window's latent
    fell_back: bool = False  # some call produced NaN/Inf in half precision and was recomputed in fp32
    window_sizes: list[tuple[int, int]] = field(default_factory=list)  # (h, w) the model ran at, per window


class Inpainter:
    """Runs one model on images of any size. A fill keeps no state on the instance, so several threads
    may fill with one Inpainter (one model in memory).

    >>> inpainter = Inpainter(load_model("telea"))
    >>> result = inpainter.fill(rgb, mask)
    """

    def __init__(
        self,
        model: InpaintModel,
        *,
        device: str = "auto",
        half: bool = False,
        batch_pixels: int | None = None,
        blend: str | None = None,
    ) -> None:
        """blend: "harmonic" matches each fill to the known pixels at its hole's border (`border_blend`),
        "none" keeps the network's prediction as it is; None = harmonic for networks, none for OpenCV's
        and PatchMatch's fills (they are the classical references, left as their authors made them)."""
        self.contract = model.contract
        if blend is None:
            blend = "none" if hasattr(model, "predict_numpy") else "harmonic"
        self.blend = check_blend(blend)
        self._fp32_model: InpaintModel | None = None
        self._memory_per_pixel: tuple[float, float] | None = None  # see full_memory_bytes
        # OpenCV's fills (`classical_fill`) take numpy arrays: no tensors, and no torch import, on their way.
        self._predict_numpy = getattr(model, "predict_numpy", None)
        if self._predict_numpy is not None:
            self.device = "cpu" if device in ("auto", "cpu") else pick_device(device)  # they run on the CPU
            self.batch_pixels = CPU_BATCH_PIXELS if batch_pixels is None else batch_pixels
            self.model = model
            self.dtype = None  # not a torch model
            self._precision = "fp32"
            return
        import torch

        self.device = pick_device(device)
        if batch_pixels is None:
            batch_pixels = CPU_BATCH_PIXELS if self.device == "cpu" else GPU_BATCH_PIXELS
        self.batch_pixels = batch_pixels
        has_parameters = any(True for _ in model.parameters())
        # A model without parameters (OpenCV's fills) has nothing to run in half precision.
        self.dtype = half_dtype(self.device) if half and has_parameters else torch.float32
        model = model.to(self.device).eval()
        if has_parameters:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._precision = precision_name(self.dtype)
        if self.dtype == torch.bfloat16 and self.device == "cpu" and cpu_has_native_bf16() is False:
            log.warning("this CPU has no native bf16 (AVX512-BF16/AMX): --half is emulated and slower than fp32")
        if self.dtype != torch.float32:
            self._fp32_model = model
            # Cast a copy: weights in bf16/fp16 make the convs themselves run in low precision, which is
            # where the speed comes from (autocast would re-cast every weight on every call).
            import copy

            self.model = copy.deepcopy(model).to(self.dtype)
            _watch_for_non_finite(self.model)

    @property
    def precision(self) -> str:
        return self._precision

    # -- public entry points ------------------------------------------------------------------------

    def full_memory_bytes(self, batch: int, height: int, width: int) -> int:
        """About how much memory one model call on a whole (batch, height, width) stack takes (`--strategy
        full`): contextual attention's two score maps, quadratic in the pixels, and the feature maps
        (`fill_memory`), from a probe call at 64² made once per Inpainter. 0 for OpenCV's fills."""
        if self._predict_numpy is not None:
            return 0
        if self._memory_per_pixel is None:
            self._memory_per_pixel = self._probe_memory()
        multiple = self.contract.pad_multiple
        padded_h, padded_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
        return fill_memory.full_call_bytes(self._memory_per_pixel, batch, padded_h, padded_w)

    def _probe_memory(self) -> tuple[float, float]:
        """`fill_memory.probe_per_pixel` of this model, at its precision."""
        return fill_memory.probe_per_pixel(
            self.model, lambda model, rgb, mask: self._forward(model, rgb, mask, self.dtype, [0], 0)
        )

    def _check_full_fits(self, batch: int, height: int, width: int, source: str) -> None:
        """UsageError with the way out when a whole-image call cannot fit in the memory available now.
        Checked where "full" is forced on an image `auto` would crop (larger than the model's comfortable
        size): auto's own choices fit by design, and need no probe."""
        if self._choose_strategy(height, width, "auto") == "full":
            return
        needed = self.full_memory_bytes(batch, height, width)
        available = fill_memory.available_memory_bytes(self.device)
        if available is None or needed <= available:
            return
        where = "GPU memory" if self.device.startswith("cuda") else "memory"
        raise UsageError(
            f"{source}: --strategy full on {width}x{height} needs about {needed / 1e9:.1f} GB, but only "
            f"{available / 1e9:.1f} GB of {where} is available; use --strategy auto (or crop), which fills "
            "a window around each hole"
        )

    def fill(
        self,
        rgb: np.ndarray,
        mask: np.ndarray,
        *,
        strategy: Strategy = "auto",
        seed: int | None = None,
        source: str = "image",
    ) -> FillResult:
        """Fill the True pixels of `mask` in `rgb`: float32 (H, W, 3) in [0, 1], or uint8/uint16 (full scale
        = 1), which is filled in its own dtype (holes rounded half up) and converted only window by window."""
        check_strategy(strategy)
        if rgb.shape[:2] != mask.shape:
            raise UsageError(f"{source}: mask shape {mask.shape} does not match image {rgb.shape[:2]}")
        if not mask.any():
            return FillResult(rgb.copy(), "none", "fp32", 0.0, 0)
        _check_not_all_hole(mask, source)
        chosen = self._choose_strategy(*mask.shape, strategy)
        if chosen == "full":
            self._check_full_fits(1, *mask.shape, source)
        (result,) = self._fill_stack([rgb], [mask], [seed], chosen)
        return result

    def fill_samples(
        self, rgb: np.ndarray, mask: np.ndarray, seeds: list[int], *, strategy: Strategy = "auto"
    ) -> list[FillResult]:
        """One fill per seed of the same image and hole, every window run once for all of them (in
        batches of `batch_pixels`). Sample i equals `fill(rgb, mask, seed=seeds[i])`."""
        check_strategy(strategy)
        if rgb.shape[:2] != mask.shape:
            raise UsageError(f"mask shape {mask.shape} does not match image {rgb.shape[:2]}")
        if not mask.any():
            return [FillResult(rgb.copy(), "none", "fp32", 0.0, 0) for _ in seeds]
        _check_not_all_hole(mask, "image")
        chosen = self._choose_strategy(*mask.shape, strategy)
        if chosen == "full":  # the samples run in calls of up to batch_pixels
            self._check_full_fits(min(len(seeds), max(1, self.batch_pixels // mask.size)), *mask.shape, "image")
        return self._fill_stack([rgb] * len(seeds), [mask] * len(seeds), list(seeds), chosen)

    def batches(self, height: int, width: int, strategy: Strategy = "auto") -> bool:
        """Whether `fill_batch` fills images of this size in one call: when the strategy comes out as
        "full" (no crop windows, which depend on each image's holes)."""
        return self.contract.fixed_size is None and self._choose_strategy(height, width, strategy) == "full"

    def fill_batch(
        self, rgbs: list[np.ndarray], masks: list[np.ndarray], *, seed: int | None = None
    ) -> list[FillResult]:
        """Fill several same-size images with one model call per `batch_pixels` (strategy "full"): pad
        each, stack, run, composite each prediction into its own image. Image i equals
        `fill(rgbs[i], masks[i], strategy="full", seed=seed)`.

        Fixed-size models (whose windows depend on each image's holes) are filled one by one."""
        if len(rgbs) != len(masks):
            raise UsageError(f"fill_batch: {len(rgbs)} images but {len(masks)} masks")
        if not rgbs:
            return []
        shape = masks[0].shape
        for rgb, mask in zip(rgbs, masks, strict=True):
            if rgb.shape[:2] != shape or mask.shape != shape:
                raise UsageError(f"fill_batch: every image and mask must be {shape}; got {rgb.shape[:2]}, {mask.shape}")
            _check_not_all_hole(mask, "image")
        if self.contract.fixed_size is not None:
            return [self.fill(rgb, mask, strategy="full", seed=seed) for rgb, mask in zip(rgbs, masks, strict=True)]
        self._check_full_fits(min(len(rgbs), max(1, self.batch_pixels // shape[0] // shape[1])), *shape, "image")
        return self._fill_stack(rgbs, masks, [seed] * len(rgbs), "full")

    # -- strategies ---------------------------------------------------------------------------------

    def _working_size(self) -> int | None:
        return self.contract.fixed_size or self.contract.comfortable_size

    def _choose_strategy(self, height: int, width: int, requested: str) -> str:
        limit = self._working_size()
        if self.contract.fixed_size is not None:
            # A fixed-size network (Context Encoder) only ever sees windows of its size.
            return "resize" if requested == "resize" else "crop"
        if requested != "auto":
            return requested
        if limit is None or max(height, width) <= limit:
            return "full"
        return "crop"

    def _fill_stack(
        self, rgbs: list[np.ndarray], masks: list[np.ndarray], seeds: list[int | None], chosen: str
    ) -> list[FillResult]:
        """Fill a stack of same-size images. Strategy "full" takes any masks; the window strategies
        take one mask shared by the whole stack (samples of one fill), since windows follow the holes."""
        start = time.perf_counter()
        run = _FillRun(seeds)
        stack = rgbs[0][None] if len(rgbs) == 1 else np.stack(rgbs)
        hole = masks[0][None] if len(masks) == 1 else np.stack(masks)
        # Windows read the untouched input and paste their holes into this copy, in the input's dtype: the
        # one full-size copy a fill makes (a 4000×3000 uint8 photo is 36 MB, 144 MB as float32). Only the
        # windows are converted to float32.
        out = stack.copy()
        if self.contract.fixed_size is not None and chosen != "resize":
            self._fill_fixed_windows(stack, hole, out, run)
        elif chosen in ("full", "resize"):
            size = self._working_size() if chosen == "resize" else None
            filled = self._fill_window(to_float(stack), hole, size, run)
            np.copyto(out, from_float(filled, out.dtype), where=hole[..., None])
        else:
            self._fill_crops(stack, hole, out, run)
        precision = "fp32" if run.fell_back else self.precision
        seconds = (time.perf_counter() - start) / len(rgbs)
        sizes = tuple(run.window_sizes)
        return [FillResult(image, chosen, precision, seconds, run.windows, sizes) for image in out]

    def _fill_crops(self, rgbs: np.ndarray, masks: np.ndarray, out: np.ndarray, run: _FillRun) -> None:
        """Fill each hole region inside a window of context around it and paste the holes back.

        Holes closer than the context margin share a window. A window larger than the model's
        comfortable (or fixed) size is filled at that size (composited there, then scaled back up)."""
        for top, left, bottom, right, region in hole_windows(masks[0], self._working_size()):
            window = (slice(None), slice(top, bottom), slice(left, right))
            filled = self._fill_window(to_float(rgbs[window]), masks[window], self._working_size(), run)
            target = out[window]
            target[:, region] = from_float(filled[:, region], out.dtype)

    def _fill_fixed_windows(self, rgbs: np.ndarray, masks: np.ndarray, out: np.ndarray, run: _FillRun) -> None:
        """For fixed-size models: a square window centred on each hole, large enough that the hole spans
        at most `hole_fraction` of its side, resized to the model's size. Windows reaching past the
        border are reflect-padded (holes reflected with them, so no unknown pixel enters as known)."""
        size = self.contract.fixed_size
        assert size is not None
        height, width = masks.shape[1:]
        for top, left, bottom, right, region in hole_regions(masks[0]):
            side = max(size, int(np.ceil(max(bottom - top, right - left) / self.contract.hole_fraction)))
            centre_y, centre_x = (top + bottom) // 2, (left + right) // 2
            win_top, win_left = centre_y - side // 2, centre_x - side // 2
            window_rgb = to_float(np.stack([reflect_window(rgb, win_top, win_left, side) for rgb in rgbs]))
            window_mask = np.stack([reflect_window(mask.view(np.uint8), win_top, win_left, side) > 0 for mask in masks])
            filled = self._fill_window(window_rgb, window_mask, size, run)
            # Paste back only this region's holes, from the part of the window inside the image.
            y0, x0 = max(win_top, 0), max(win_left, 0)
            y1, x1 = min(win_top + side, height), min(win_left + side, width)
            inside = filled[:, y0 - win_top : y1 - win_top, x0 - win_left : x1 - win_left]
            own = np.zeros((height, width), bool)
            own[top:bottom, left:right] = region
            own = own[y0:y1, x0:x1]
            out[:, y0:y1, x0:x1][:, own] = from_float(inside[:, own], out.dtype)

    # -- one window ---------------------------------------------------------------------------------

    def _fill_window(self, rgbs: np.ndarray, masks: np.ndarray, size: int | None, run: _FillRun) -> np.ndarray:
        """The filled window (B, h, w, 3): exact where the window is known, the model's fill in its holes.

        The window runs at native resolution when its longest side is at most `size` (None = always)
        and the model takes any size; otherwise it is scaled so its longest side is `size`, keeping the
        aspect (a fixed-size model gets the short side reflect-padded up to its square). The prediction
        is composited with the known pixels *at that resolution* and only then scaled back up, so the
        pixels along a hole's border interpolate known content, not the network's output at known
        pixels (which is unconstrained and shows as a seam)."""
        height, width = masks.shape[1:]
        fixed = self.contract.fixed_size
        if fixed is None and (size is None or max(height, width) <= size):
            return self._blended(rgbs, self._predict(rgbs, masks, run), masks)
        assert size is not None
        scale = size / max(height, width)
        small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
        if (small_h, small_w) == (height, width):
            small_rgb, small_mask = rgbs, masks
        else:
            small_rgb = np.stack([cv2.resize(rgb, (small_w, small_h), interpolation=cv2.INTER_AREA) for rgb in rgbs])
            small_mask = np.stack([resize_hole_mask(mask, small_h, small_w) for mask in masks])
            if small_mask.reshape(len(masks), -1).all(axis=1).any():
                # Holes everywhere at this scale (fine stripes): fall back to the majority of each pixel,
                # so the model has something to fill from; hole content can then leak in as known.
                log.warning("the holes cover every pixel at %dx%d; some hole pixels count as known", small_w, small_h)
                coverage = [
                    cv2.resize(m.astype(np.float32), (small_w, small_h), interpolation=cv2.INTER_AREA) for m in masks
                ]
                small_mask = np.stack(coverage) > 0.5
        if fixed is not None:
            square_rgb, square_mask = pad_bottom_right(small_rgb, small_mask, fixed - small_h, fixed - small_w)
            small_pred = self._predict(square_rgb, square_mask, run)[:, :small_h, :small_w]
        else:
            small_pred = self._predict(small_rgb, small_mask, run)
        small_pred = self._blended(small_rgb, small_pred, small_mask)
        small_filled = np.where(small_mask[..., None], small_pred, small_rgb)
        if (small_h, small_w) == (height, width):
            return small_filled
        return np.stack(
            [cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC) for image in small_filled]
        ).clip(0, 1)

    def _blended(self, rgbs: np.ndarray, predictions: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The predictions matched to their borders at the resolution the model ran at, where the fix is
        cheapest and before scaling blurs the step it removes."""
        if self.blend == "none":
            return predictions
        return np.stack(
            [match_border(rgb, pred, hole) for rgb, pred, hole in zip(rgbs, predictions, masks, strict=True)]
        )

    def _predict(self, rgbs: np.ndarray, masks: np.ndarray, run: _FillRun) -> np.ndarray:
        """The model's raw prediction (B, h, w, 3) for one window of every sample: padded to the contract,
        run in batches of `batch_pixels`, checked finite (else recomputed in fp32 with the same latents)."""
        height, width = masks.shape[1:]
        window = run.windows
        run.windows += 1
        padded_rgb, padded_mask = pad_bottom_right(
            rgbs, masks, (-height) % self.contract.pad_multiple, (-width) % self.contract.pad_multiple
        )
        run.window_sizes.append(padded_mask.shape[1:])
        if self._predict_numpy is not None:
            filled = self._predict_numpy(padded_rgb, padded_mask)[:, :height, :width]
            if not np.isfinite(filled).all():
                raise InpaintError("the model produced NaN/Inf values; the checkpoint may be corrupt")
            return np.clip(filled, 0, 1).astype(np.float32, copy=False)
        import torch

        per_call = max(1, self.batch_pixels // (padded_mask.shape[1] * padded_mask.shape[2]))
        out = np.empty(rgbs.shape, np.float32)
        for start in range(0, len(rgbs), per_call):
            chunk = slice(start, start + per_call)
            seeds = run.seeds[chunk]
            _non_finite.seen = []
            try:
                prediction = self._forward(self.model, padded_rgb[chunk], padded_mask[chunk], self.dtype, seeds, window)
            finally:
                seen, _non_finite.seen = _non_finite.seen, None
            # A clamp, sigmoid or tanh after an overflow turns ±inf into a finite output, so the layers'
            # outputs count too (hooked in half precision, where a fallback exists: `_watch_for_non_finite`).
            output_finite = bool(torch.isfinite(prediction).all())
            if not output_finite or (seen and not bool(torch.stack(seen).all())):
                if self._fp32_model is None:
                    raise InpaintError("the model produced NaN/Inf values; the checkpoint may be corrupt")
                where = "output" if not output_finite else "layers (saturated in the output)"
                log.warning("%s %s had NaN/Inf; recomputed in fp32", precision_name(self.dtype), where)
                prediction = self._forward(
                    self._fp32_model, padded_rgb[chunk], padded_mask[chunk], torch.float32, seeds, window
                )
                run.fell_back = True
            out[chunk] = prediction.permute(0, 2, 3, 1)[:, :height, :width].float().cpu().numpy()
        return out.clip(0, 1, out=out)

    def _forward(
        self,
        model: InpaintModel,
        rgbs: np.ndarray,
        masks: np.ndarray,
        dtype: torch.dtype,
        seeds: list[int | None],
        window: int,
    ) -> torch.Tensor:
        """rgbs (B, H, W, 3), masks (B, H, W) -> the model's raw prediction (B, 3, H, W). Each sample's
        latent comes from its own generator seeded by (seed, window), made afresh for every call."""
        import torch

        image = torch.from_numpy(np.ascontiguousarray(rgbs)).permute(0, 3, 1, 2)
        hole = torch.from_numpy(masks.astype(np.float32))[:, None]
        image = image.to(self.device, dtype).contiguous(memory_format=torch.channels_last)
        hole = hole.to(self.device, dtype)
        generators = [
            None if seed is None else torch.Generator(device=self.device).manual_seed(window_seed(seed, window))
            for seed in seeds
        ]
        generator = None if generators[0] is None else generators[0] if len(generators) == 1 else generators
        with torch.inference_mode():
            return model.inpaint(image, hole, generator=generator)


# The per-thread list the hooks of `_watch_for_non_finite` append to during a half-precision forward pass
# (None outside one: a hook then does nothing). Per thread, since one Inpainter may fill from several.
_non_finite = threading.local()


def _watch_for_non_finite(model: InpaintModel) -> None:
    """Hook every layer of a half-precision model to note whether its output is finite. An fp16 overflow
    to ±inf inside the network can come out finite, saturated by a later clamp, sigmoid or tanh (a wrong
    1.0 or 0.0), where a check of the output alone would miss it. The flags stay on the device (no
    synchronisation per layer); `_predict` reduces them once per call."""
    import torch

    def note(_module, _args, output) -> None:
        seen = getattr(_non_finite, "seen", None)
        if seen is not None and isinstance(output, torch.Tensor) and output.is_floating_point():
            seen.append(torch.isfinite(output).all())

    for module in model.modules():
        module.register_forward_hook(note)


def to_float(rgb: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] of a float, uint8 or uint16 array (as `io.Image.rgb` converts)."""
    if np.issubdtype(rgb.dtype, np.floating):
        return rgb.astype(np.float32, copy=False)
    return rgb.astype(np.float32) / np.float32(_full_scale(rgb.dtype))


def from_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 values in [0, 1] as `dtype`: unchanged for float32, else rounded half up to full scale
    (as `io.compose_output` quantises)."""
    if np.issubdtype(dtype, np.floating):
        return values.astype(dtype, copy=False)
    full = np.float32(_full_scale(dtype))
    return np.floor(np.clip(values, 0.0, 1.0) * full + np.float32(0.5)).astype(dtype)


def _full_scale(dtype: np.dtype) -> int:
    if dtype == np.uint8:
        return 255
    if dtype == np.uint16:
        return 65535
    raise UsageError(f"images must be float32 in [0, 1], uint8 or uint16; got {dtype}")


def _check_not_all_hole(mask: np.ndarray, source: str) -> None:
    if mask.all():
        raise InpaintError(
            f"{source}: the mask covers the whole image, so there is nothing to fill from; leave some known pixels"
        )
