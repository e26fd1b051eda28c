"""Contact sheets: a grid of images with column labels, for people to look at before reading numbers."""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND = 255
LABEL_HEIGHT = 22
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE = 0.45
SMALLEST_LABEL_SCALE = 0.3  # still legible; a label longer than that in its column is cut short with ".."


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """float [0, 1] RGB, or a bool mask (white = hole), as uint8 RGB."""
    if image.dtype == bool:
        return np.repeat((image.astype(np.uint8) * 255)[..., None], 3, axis=2)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def masked_input(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What the model is given, as people draw it: the image with its holes painted white."""
    shown = rgb.copy()
    shown[mask] = 1.0
    return shown


def fit_label(label: str, width: int) -> tuple[str, float]:
    """The text and font scale that put `label` in a column `width` px wide: the usual scale where it fits,
    else smaller (down to SMALLEST_LABEL_SCALE), else cut short, so one column's label never runs into the
    next one's."""

    def text_width(text: str, scale: float) -> int:
        return cv2.getTextSize(text, LABEL_FONT, scale, 1)[0][0]

    scale = LABEL_SCALE
    while scale > SMALLEST_LABEL_SCALE and text_width(label, scale) > width:
        scale = max(SMALLEST_LABEL_SCALE, scale - 0.01)
    keep = len(label)
    while keep > 1 and text_width(label[:keep] + ".." if keep < len(label) else label, scale) > width:
        keep -= 1
    return (label[:keep] + ".." if keep < len(label) else label), scale


def contact_sheet(
    rows: list[list[np.ndarray]],
    labels: list[str] | None = None,
    captions: list[list[str]] | None = None,
    cell: int = 192,
    gap: int = 4,
) -> np.ndarray:
    """Lay out rows of images (float RGB in [0, 1] or bool masks) in cells `cell` px high, each scaled
    to keep its aspect ratio, under one line of column labels (each fitted to its column, `fit_label`);
    `captions` (per cell, same shape as `rows`) are written in the top-left corner of each cell. Returns
    uint8 RGB."""
    columns = max(len(row) for row in rows)
    widths = [0] * columns
    scaled_rows = []
    for row in rows:
        scaled = []
        for index, image in enumerate(row):
            pixels = to_uint8_rgb(image)
            width = max(1, round(pixels.shape[1] * cell / pixels.shape[0]))
            pixels = cv2.resize(pixels, (width, cell), interpolation=cv2.INTER_AREA)
            widths[index] = max(widths[index], width)
            scaled.append(pixels)
        scaled_rows.append(scaled)
    top = LABEL_HEIGHT if labels else 0
    sheet = np.full((top + len(rows) * (cell + gap) + gap, sum(widths) + gap * (columns + 1), 3), BACKGROUND, np.uint8)
    x_starts = np.cumsum([gap] + [w + gap for w in widths[:-1]])
    for index, label in enumerate(labels or []):
        text, scale = fit_label(label, widths[index])
        cv2.putText(sheet, text, (int(x_starts[index]), 16), LABEL_FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    for row_index, row in enumerate(scaled_rows):
        y = top + gap + row_index * (cell + gap)
        for index, pixels in enumerate(row):
            x = int(x_starts[index])
            sheet[y : y + cell, x : x + pixels.shape[1]] = pixels
            caption = captions[row_index][index] if captions and index < len(captions[row_index]) else ""
            if caption:
                (text_w, text_h), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
                cv2.rectangle(sheet, (x, y), (x + text_w + 6, y + text_h + 8), (255, 255, 255), -1)
                cv2.putText(
                    sheet, caption, (x + 3, y + text_h + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
                )
    return sheet
