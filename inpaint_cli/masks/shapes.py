"""Random hole shapes for training and benchmarks (MODELS.md §6): DeepFill's box, DeepFill v2's brush
strokes, their union, and the hole ratio of a mask.

Pure numpy/cv2 and no files: the training recipes and data pipeline draw from these. All generators
take a `numpy.random.Generator`, so a seed reproduces the exact masks. Masks are bool arrays (H, W)
with True = hole.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["box_mask", "brush_stroke_mask", "hole_ratio", "mixed_mask"]


def box_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    box: tuple[int, int] | None = None,
    max_delta: tuple[int, int] | None = None,
    margin: int = 0,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """DeepFill's `random_bbox` + `bbox2mask` (§6.1): a box of `box` = (h, w) (default half the canvas)
    at a uniform position, each pair of opposite sides shrunk by a random amount up to max_delta/2.

    Returns the mask and the *unshrunk* box (top, left, h, w): the critics' local patch.
    """
    box_h, box_w = box if box is not None else (height // 2, width // 2)
    delta_h, delta_w = max_delta if max_delta is not None else (box_h // 4, box_w // 4)
    top = int(rng.integers(margin, max(margin + 1, height - margin - box_h + 1)))
    left = int(rng.integers(margin, max(margin + 1, width - margin - box_w + 1)))
    dh = int(rng.integers(0, delta_h // 2 + 1))
    dw = int(rng.integers(0, delta_w // 2 + 1))
    mask = np.zeros((height, width), bool)
    mask[top + dh : top + box_h - dh, left + dw : left + box_w - dw] = True
    return mask, (top, left, box_h, box_w)


def brush_stroke_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """DeepFill v2's free-form brush strokes (§6.2), with its height/width swap fixed so non-square
    canvases are handled, and without its no-op flips."""
    mask = np.zeros((height, width), np.uint8)
    mean_angle = 2 * math.pi / 5
    angle_range = 2 * math.pi / 15
    average_radius = math.sqrt(height * height + width * width) / 8
    for _ in range(int(rng.integers(1, 4))):
        num_vertex = int(rng.integers(4, 12))
        angle_min = mean_angle - rng.uniform(0, angle_range)
        angle_max = mean_angle + rng.uniform(0, angle_range)
        angles = rng.uniform(angle_min, angle_max, size=num_vertex)
        angles[::2] = 2 * math.pi - angles[::2]  # zig-zag: every other segment turns back
        x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
        vertices = [(int(x), int(y))]
        for angle in angles:
            length = float(np.clip(rng.normal(average_radius, average_radius // 2), 0, 2 * average_radius))
            x = float(np.clip(x + length * math.cos(angle), 0, width - 1))
            y = float(np.clip(y + length * math.sin(angle), 0, height - 1))
            vertices.append((int(x), int(y)))
        stroke_width = int(rng.uniform(12, 40))
        cv2.polylines(mask, [np.array(vertices, np.int32)], False, 1, stroke_width)
        for vx, vy in vertices:  # round joints (the paper's algorithm has a typo here, issue #62)
            cv2.circle(mask, (vx, vy), stroke_width // 2, 1, -1)
    return mask.astype(bool)


def mixed_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """DeepFill v2's training mask: a brush-stroke mask united with a random box (§4.5)."""
    box, _ = box_mask(height, width, rng)
    return brush_stroke_mask(height, width, rng) | box


def hole_ratio(mask: np.ndarray) -> float:
    """The share of the mask's pixels that are hole, 0 to 1."""
    return float(np.count_nonzero(mask)) / mask.size
