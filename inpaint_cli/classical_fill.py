"""The classical fills (`telea`, `ns`, `patchmatch`) in numpy only, without torch.

The registry's `telea`, `ns` and `patchmatch` architectures (`models/classical.py`, torch modules like every
other model) call the functions below. `inpaint fill --model telea` builds a `ClassicalFill` instead:
importing torch costs about 1.6 s, four fifths of a 256² fill, which a shell loop over many files would pay
for every file. The engine fills through `ClassicalFill.predict_numpy` and never imports torch for it.

- telea, ns: OpenCV's fast marching (Telea 2004) and Navier–Stokes (Bertalmio et al. 2001) fills, which
  propagate the border's colours inwards: smooth, with no texture.
- patchmatch: Barnes et al., *PatchMatch: A Randomized Correspondence Algorithm for Structural Image
  Editing*, SIGGRAPH 2009, the patch method behind content-aware fill, through the `pypatchmatch` package
  (optional extra `patchmatch`): it copies known patches into the hole, so it has texture but no
  understanding of the scene. `patch_size` is the patch radius (patches of (2·r + 1)² pixels; 3 by
  default, as the package's examples). 8-bit only: a 16-bit image is filled from its 8-bit rounding. Its
  random search is seeded (`seed`, 0), so a fill is reproducible.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .errors import InpaintError, UsageError
from .registry import InputContract

CONTRACT = InputContract(pad_multiple=1, comfortable_size=None, trainable=False, needs_weights=False)
# arch name -> cv2 flag: fast marching (Telea 2004), Navier-Stokes based (Bertalmio et al. 2001)
CV2_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
DEFAULT_RADIUS = 5
PATCHMATCH_DEFAULTS = {"patch_size": 3, "seed": 0}
# arch name -> (config key -> default): every classical fill and what `--set` may change
CLASSICAL_CONFIGS: dict[str, dict[str, int | float]] = {
    **{arch: {"radius": DEFAULT_RADIUS} for arch in CV2_FLAGS},
    "patchmatch": PATCHMATCH_DEFAULTS,
}
WHOLE_NUMBER_KEYS = frozenset({"patch_size", "seed"})
PATCHMATCH_HINT = "patchmatch needs the optional pypatchmatch package: pip install 'inpaint-cli[patchmatch]'"


def opencv_fill(image: np.ndarray, hole: np.ndarray, radius: float, flag: int) -> np.ndarray:
    """image: (H, W, C) float64 in [0, 1]; hole: (H, W) uint8, non-zero = hole -> (H, W, C) float64.

    Always in float32, one channel at a time (what cv2.inpaint takes beside 8-bit), on the 0–255 scale:
    the fill is not rounded to 8 bits, so a 16-bit image is quantised once, at its own depth, when the
    output is composed (an earlier 8-bit path rounded every filled pixel to 1/255)."""
    scaled = np.ascontiguousarray(image * 255.0, dtype=np.float32)
    filled = np.stack(
        [cv2.inpaint(np.ascontiguousarray(scaled[..., c]), hole, radius, flag) for c in range(image.shape[2])],
        axis=-1,
    )
    filled = (filled.astype(np.float64) / 255.0).clip(0.0, 1.0)
    return np.where(hole[..., None] > 0, filled, image)  # known pixels exactly as given


def _patchmatch():
    """The pypatchmatch module, or a one-line error with the install hint."""
    try:
        from patchmatch import patch_match
    except ImportError:
        raise InpaintError(PATCHMATCH_HINT) from None
    if not patch_match.patchmatch_available:
        raise InpaintError(f"{PATCHMATCH_HINT} (installed, but its native library did not load)")
    return patch_match


def patchmatch_fill(image: np.ndarray, hole: np.ndarray, patch_size: int, seed: int) -> np.ndarray:
    """image: (H, W, C) floats in [0, 1]; hole: (H, W), non-zero = hole -> (H, W, C) float64, filled by
    PatchMatch on the image's 8-bit rounding (a gray image is filled as RGB and averaged back)."""
    patch_match = _patchmatch()
    image = np.asarray(image, dtype=np.float64)
    channels = image.shape[2]
    rgb = image if channels == 3 else np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    pixels = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    holes = (np.asarray(hole) > 0).astype(np.uint8)
    patch_match.set_random_seed(seed)
    filled = patch_match.inpaint(pixels, holes, patch_size=patch_size).astype(np.float64) / 255.0
    if channels != 3:
        filled = np.repeat(filled.mean(axis=2, keepdims=True), channels, axis=2)
    return np.where(holes[..., None] > 0, filled, image)  # known pixels exactly as given


def classical_stack(arch: str, config: dict[str, Any], rgbs: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Fill each of rgbs (B, H, W, C) floats in [0, 1] with masks (B, H, W) (or (1, H, W) for all),
    True/non-zero = hole, by the classical `arch` with its `config` (CLASSICAL_CONFIGS' keys) -> (B, H, W, C)
    float64, each image filled on its own."""
    holes = (np.asarray(masks) > 0).astype(np.uint8)
    if holes.shape[0] == 1 and rgbs.shape[0] > 1:
        holes = np.broadcast_to(holes, (rgbs.shape[0], *holes.shape[1:]))

    def fill_one(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if arch in CV2_FLAGS:
            return opencv_fill(image, np.ascontiguousarray(hole), float(config["radius"]), CV2_FLAGS[arch])
        return patchmatch_fill(image, hole, int(config["patch_size"]), int(config["seed"]))

    images = np.asarray(rgbs, dtype=np.float64)
    return np.stack([fill_one(image, hole) for image, hole in zip(images, holes, strict=True)])


def check_classical_config(arch: str, config: dict[str, Any]) -> dict[str, Any]:
    """`config` (from `--set`) over the arch's defaults, checked: unknown keys and values that are not
    positive numbers (`seed`: a whole number) are a UsageError naming the key, the value and the fix."""
    defaults = CLASSICAL_CONFIGS[arch]
    unknown = set(config) - set(defaults)
    if unknown:
        known = ", ".join(defaults)
        raise UsageError(f"--set {', '.join(sorted(unknown))}: not a config key of {arch} (known: {known})")
    merged = {**defaults, **config}
    for key, value in merged.items():
        whole = key in WHOLE_NUMBER_KEYS
        if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
            kind = "an integer" if whole else "a number"
            raise UsageError(f"--set {key}={value}: {key} of {arch} takes {kind} (default {defaults[key]})")
        if key != "seed" and not value > 0:
            raise UsageError(f"--set {key}={value}: {key} of {arch} must be positive (default {defaults[key]})")
    return merged


class ClassicalFill:
    """A classical fill as the engine runs it without torch: the registry's contract and config
    (CLASSICAL_CONFIGS), and `predict_numpy`, which the engine calls instead of a torch forward pass."""

    contract = CONTRACT

    def __init__(self, arch: str, **config: Any) -> None:
        if arch not in CLASSICAL_CONFIGS:
            raise UsageError(f"{arch}: not a classical fill; expected one of {', '.join(CLASSICAL_CONFIGS)}")
        self.arch_name = arch
        self.arch_config = check_classical_config(arch, config)
        if arch == "patchmatch":
            _patchmatch()  # a missing package is reported before any image is read
        self.checkpoint_name = arch

    def predict_numpy(self, rgbs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """rgbs (B, H, W, 3) float32 in [0, 1], masks (B, H, W) bool -> the filled images, float32."""
        return classical_stack(self.arch_name, self.arch_config, rgbs, masks).astype(np.float32)
