"""The inference engine: padding to the model's contract, crop/resize strategies, fp32 fallback.

Input and output are float32 RGB arrays in [0, 1] plus a bool hole mask; reading files, bit depths, gray
and alpha belong to `inpaint_cli.io`, and which device and dtype `--device`/`--half` mean belongs to
`inpaint_cli.devices`. The engine never trusts the model with known pixels: it returns the prediction
pasted into the holes only, so every known pixel is exactly the input's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from .devices import cpu_has_native_bf16, half_dtype, pick_device, precision_name
from .errors import InpaintError, UsageError

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
    rgb: np.ndarray  # float32 (H, W, 3) in [0, 1]: the input with its holes filled
    strategy: str  # the strategy actually used
    precision: str  # "fp32", "bf16" or "fp16" — the one that produced the output
    seconds: float
    windows: int  # model calls made (1 for full/resize, one per hole region for crop)


class Inpainter:
    """Runs one model on images of any size.

    >>> inpainter = Inpainter(load_model("telea"))
    >>> result = inpainter.fill(rgb, mask)
    """

    def __init__(self, model: InpaintModel, *, device: str = "auto", half: bool = False) -> None:
        import torch

        self.device = pick_device(device)
        self.contract = model.contract
        has_parameters = any(True for _ in model.parameters())
        # A model without parameters (OpenCV's fills) has nothing to run in half precision.
        self.dtype = half_dtype(self.device) if half and has_parameters else torch.float32
        model = model.to(self.device).eval()
        if has_parameters:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._fp32_model: InpaintModel | None = None
        if self.dtype == torch.bfloat16 and self.device == "cpu" and cpu_has_native_bf16() is False:
            log.warning("this CPU has no native bf16 (AVX512-BF16/AMX): --half is emulated and slower than fp32")
        if self.dtype != torch.float32:
            self._fp32_model = model
            # Cast a copy: weights in bf16/fp16 make the convs themselves run in low precision, which is
            # where the speed comes from (autocast would re-cast every weight on every call).
            import copy

            self.model = copy.deepcopy(model).to(self.dtype)

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    def fill(
        self,
        rgb: np.ndarray,
        mask: np.ndarray,
        *,
        strategy: Strategy = "auto",
        seed: int | None = None,
        source: str = "image",
    ) -> FillResult:
        """Fill the True pixels of `mask` in `rgb` (float32 (H, W, 3) in [0, 1])."""
        check_strategy(strategy)
        if rgb.shape[:2] != mask.shape:
            raise UsageError(f"{source}: mask shape {mask.shape} does not match image {rgb.shape[:2]}")
        start = time.perf_counter()
        if not mask.any():
            return FillResult(rgb.copy(), "none", "fp32", time.perf_counter() - start, 0)
        if mask.all():
            raise InpaintError(
                f"{source}: the mask covers the whole image, so there is nothing to fill from; leave some known pixels"
            )
        import torch

        chosen = self._choose_strategy(rgb.shape[0], rgb.shape[1], strategy)
        # One generator per fill, drawn from in window order: a seed reproduces the whole fill, and
        # samples seeded seed, seed+1, ... never share random streams.
        self._generator = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        self._calls = 0
        self._used_dtype = self.dtype
        if self.contract.fixed_size is not None and chosen != "resize":
            prediction = self._run_fixed_windows(rgb, mask)
        elif chosen == "full":
            prediction = self._run_window(rgb, mask)
        elif chosen == "resize":
            prediction = self._run_resized(rgb, mask, self._working_size())
        else:
            prediction = self._run_crops(rgb, mask)
        out = rgb.copy()
        out[mask] = prediction[mask]
        return FillResult(out, chosen, precision_name(self._used_dtype), time.perf_counter() - start, self._calls)

    def fill_batch(
        self, rgbs: list[np.ndarray], masks: list[np.ndarray], *, seed: int | None = None
    ) -> list[FillResult]:
        """Fill several same-size images with one model call (strategy "full"): pad each, stack, run the
        batch once, composite each prediction into its own image. For throughput measurements.

        Fixed-size models (whose windows depend on each image's holes) are filled one by one."""
        if len(rgbs) != len(masks):
            raise UsageError(f"fill_batch: {len(rgbs)} images but {len(masks)} masks")
        if not rgbs:
            return []
        shape = masks[0].shape
        for rgb, mask in zip(rgbs, masks, strict=True):
            if rgb.shape[:2] != shape or mask.shape != shape:
                raise UsageError(f"fill_batch: every image and mask must be {shape}; got {rgb.shape[:2]}, {mask.shape}")
            if mask.all():
                raise InpaintError("a mask covers the whole image, so there is nothing to fill from")
        if self.contract.fixed_size is not None:
            return [self.fill(rgb, mask, strategy="full", seed=seed) for rgb, mask in zip(rgbs, masks, strict=True)]
        import torch

        start = time.perf_counter()
        self._generator = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        padded = [pad_to_multiple(rgb, mask, self.contract.pad_multiple) for rgb, mask in zip(rgbs, masks, strict=True)]
        batch_rgb = np.stack([rgb for rgb, _ in padded])
        batch_mask = np.stack([mask for _, mask in padded])
        used = self.dtype
        prediction = self._forward_batch(self.model, batch_rgb, batch_mask, self.dtype)
        if not torch.isfinite(prediction).all():
            if self._fp32_model is None:
                raise InpaintError("the model produced NaN/Inf values; the checkpoint may be corrupt")
            log.warning("%s output had NaN/Inf; recomputed in fp32", precision_name(self.dtype))
            prediction = self._forward_batch(self._fp32_model, batch_rgb, batch_mask, torch.float32)
            used = torch.float32
        predictions = prediction.permute(0, 2, 3, 1).float().cpu().numpy()[:, : shape[0], : shape[1]].clip(0, 1)
        seconds = (time.perf_counter() - start) / len(rgbs)  # the call is shared: each image gets its share
        results = []
        for rgb, mask, predicted in zip(rgbs, masks, predictions, strict=True):
            out = rgb.copy()
            out[mask] = predicted[mask]
            results.append(FillResult(out, "full", precision_name(used), seconds, 1))
        return results

    def _forward_batch(
        self, model: InpaintModel, rgbs: np.ndarray, masks: np.ndarray, dtype: torch.dtype
    ) -> torch.Tensor:
        """rgbs (B, H, W, 3), masks (B, H, W) -> the model's raw prediction (B, 3, H, W)."""
        import torch

        image = torch.from_numpy(np.ascontiguousarray(rgbs)).permute(0, 3, 1, 2)
        hole = torch.from_numpy(masks.astype(np.float32))[:, None]
        image = image.to(self.device, dtype).contiguous(memory_format=torch.channels_last)
        hole = hole.to(self.device, dtype)
        with torch.inference_mode():
            return model.inpaint(image, hole, generator=self._generator)

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

    def _run_resized(self, rgb: np.ndarray, mask: np.ndarray, size: int | None) -> np.ndarray:
        """Fill a downscaled copy whose longest side is `size` and scale the prediction back up."""
        height, width = mask.shape
        if size is None or (max(height, width) <= size and self.contract.fixed_size is None):
            return self._run_window(rgb, mask)
        if self.contract.fixed_size is not None:
            small_h = small_w = size
        else:
            scale = size / max(height, width)
            small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
        small_rgb = cv2.resize(rgb, (small_w, small_h), interpolation=cv2.INTER_AREA)
        # Any hole coverage makes a small pixel a hole, so no hole content leaks in as "known".
        small_mask = cv2.resize(mask.astype(np.float32), (small_w, small_h), interpolation=cv2.INTER_AREA) > 0
        if small_mask.all():
            small_mask = cv2.resize(mask.astype(np.uint8), (small_w, small_h), interpolation=cv2.INTER_NEAREST) > 0
        small_pred = self._run_window(small_rgb, small_mask)
        return cv2.resize(small_pred, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)

    def _run_crops(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Fill each hole region inside a window of context around it and paste the holes back.

        Holes closer than the context margin share a window. A window larger than the model's
        comfortable (or fixed) size is filled through the resize strategy."""
        prediction = np.zeros_like(rgb)
        for top, left, bottom, right, region in hole_windows(mask, self._working_size()):
            window_pred = self._run_resized(
                rgb[top:bottom, left:right], mask[top:bottom, left:right], self._working_size()
            )
            target = prediction[top:bottom, left:right]
            target[region] = window_pred[region]
        return prediction

    def _run_fixed_windows(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """For fixed-size models: a square window centred on each hole, large enough that the hole spans
        at most `hole_fraction` of its side, resized to the model's size. Windows reaching past the
        border are reflect-padded (holes reflected with them, so no unknown pixel enters as known)."""
        size = self.contract.fixed_size
        assert size is not None
        height, width = mask.shape
        prediction = np.zeros_like(rgb)
        for top, left, bottom, right, region in hole_regions(mask):
            side = max(size, int(np.ceil(max(bottom - top, right - left) / self.contract.hole_fraction)))
            centre_y, centre_x = (top + bottom) // 2, (left + right) // 2
            win_top, win_left = centre_y - side // 2, centre_x - side // 2
            window_rgb = _reflect_window(rgb, win_top, win_left, side)
            window_mask = _reflect_window(mask.astype(np.uint8), win_top, win_left, side) > 0
            window_pred = self._run_window(window_rgb, window_mask)
            # Paste back only this region's holes, from the part of the window inside the image.
            y0, x0 = max(win_top, 0), max(win_left, 0)
            y1, x1 = min(win_top + side, height), min(win_left + side, width)
            inside = window_pred[y0 - win_top : y1 - win_top, x0 - win_left : x1 - win_left]
            own = np.zeros_like(mask)
            own[top:bottom, left:right] = region
            own = own[y0:y1, x0:x1]
            prediction[y0:y1, x0:x1][own] = inside[own]
        return prediction

    # -- one model call -----------------------------------------------------------------------------

    def _run_window(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pad to the contract, run the model, check the output is finite (else retry in fp32)."""
        import torch

        height, width = mask.shape
        if self.contract.fixed_size is not None and (height, width) != (self.contract.fixed_size,) * 2:
            size = self.contract.fixed_size
            small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
            small_mask = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
            pred = self._run_window(small, small_mask)
            return cv2.resize(pred, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        padded_rgb, padded_mask = pad_to_multiple(rgb, mask, self.contract.pad_multiple)
        prediction = self._forward(self.model, padded_rgb, padded_mask, self.dtype)
        if not torch.isfinite(prediction).all():
            if self._fp32_model is None:
                raise InpaintError("the model produced NaN/Inf values; the checkpoint may be corrupt")
            log.warning("%s output had NaN/Inf; recomputed in fp32", precision_name(self.dtype))
            prediction = self._forward(self._fp32_model, padded_rgb, padded_mask, torch.float32)
            self._used_dtype = torch.float32
        self._calls += 1
        out = prediction[0].permute(1, 2, 0).float().cpu().numpy()
        return np.ascontiguousarray(out[:height, :width]).clip(0, 1)

    def _forward(self, model: InpaintModel, rgb: np.ndarray, mask: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        hole = torch.from_numpy(mask.astype(np.float32))[None, None]
        image = image.to(self.device, dtype).contiguous(memory_format=torch.channels_last)
        hole = hole.to(self.device, dtype)
        with torch.inference_mode():
            return model.inpaint(image, hole, generator=self._generator)


def pad_to_multiple(rgb: np.ndarray, mask: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflect-pad bottom/right up to a multiple. The mask is reflected too, so a hole that touches the
    border stays a hole in its mirror image instead of leaking its unknown pixels in as known ones."""
    height, width = mask.shape
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not pad_h and not pad_w:
        return rgb, mask
    # BORDER_REFLECT_101 needs the pad to be smaller than the side; tiny windows fall back to replicate.
    border = cv2.BORDER_REFLECT_101 if pad_h < height and pad_w < width else cv2.BORDER_REPLICATE
    padded_rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, border)
    padded_mask = cv2.copyMakeBorder(mask.astype(np.uint8), 0, pad_h, 0, pad_w, border) > 0
    return padded_rgb, padded_mask


def hole_windows(mask: np.ndarray, working_size: int | None) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Windows (top, left, bottom, right, region) covering every hole with context around it.

    The context margin is a quarter of the working size (64 px at least): enough surrounding texture for
    the network while keeping a small hole's window small. Holes whose windows would touch share one.
    `region` marks, inside the window, the holes this window pastes (a neighbouring group's holes may also
    fall inside it: they are holes for the model, so none of their unknown pixels leak in, but they are
    pasted by their own window).
    """
    return _hole_groups(mask, max(64, (working_size or 512) // 4), keep_margin=True)


def hole_regions(mask: np.ndarray, merge_distance: int = 8) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Tight bounding boxes (top, left, bottom, right, region) of the holes, holes closer than
    `merge_distance` px grouped together; `region` marks the group's hole pixels inside the box."""
    return _hole_groups(mask, merge_distance, keep_margin=False)


def _hole_groups(mask: np.ndarray, distance: int, *, keep_margin: bool) -> list[tuple[int, int, int, int, np.ndarray]]:
    # Grouping by dilation with a rectangle: separable, so fast even for large distances and images.
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * distance + 1, 2 * distance + 1))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        cv2.dilate(mask.astype(np.uint8), kernel), connectivity=8
    )
    groups = []
    for label in range(1, count):
        left, top, box_w, box_h = (int(v) for v in stats[label, :4])
        bottom, right = top + box_h, left + box_w
        region = (labels[top:bottom, left:right] == label) & mask[top:bottom, left:right]
        if not keep_margin:  # shrink the grown box back to the holes it holds
            rows, cols = np.nonzero(region)
            region = region[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            top, left = top + int(rows.min()), left + int(cols.min())
            bottom, right = top + region.shape[0], left + region.shape[1]
        groups.append((top, left, bottom, right, region))
    return groups


def _reflect_window(array: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """array[top:top+side, left:left+side], reflect-padded where the window leaves the image."""
    height, width = array.shape[:2]
    pads = (max(0, -top), max(0, top + side - height), max(0, -left), max(0, left + side - width))
    if any(pads):
        # Reflection needs a pad smaller than the image; replicate covers windows far larger than it.
        fits = max(pads[:2]) < height and max(pads[2:]) < width
        array = cv2.copyMakeBorder(array, *pads, cv2.BORDER_REFLECT_101 if fits else cv2.BORDER_REPLICATE)
        top, left = top + pads[0], left + pads[2]
    return array[top : top + side, left : left + side]
