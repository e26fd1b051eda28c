"""Contact sheets (`inpaint benchmark --grid`, `inpaint plural --grid`): labels that fit their columns, and
JPEG sheets light enough to keep beside the results."""

from __future__ import annotations

import cv2
import numpy as np

from inpaint_cli.bench import report as bench_report
from inpaint_cli.grid import LABEL_HEIGHT, LABEL_SCALE, contact_sheet, fit_label


def test_a_label_longer_than_its_column_is_made_to_fit():
    assert fit_label("truth", 192) == ("truth", LABEL_SCALE)  # a short label keeps the usual size
    text, scale = fit_label("context_encoder.campaign-128", 196)
    assert text == "context_encoder.campaign-128" and scale < LABEL_SCALE  # smaller, whole
    text, scale = fit_label("a_model_name_far_too_long_for_one_column.campaign-128", 120)
    assert text.endswith("..") and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= 120


def test_column_labels_stay_in_their_columns():
    """Two long labels side by side: the first one's ink ends before the second column begins."""
    cell = np.full((40, 40, 3), 0.5, np.float32)
    sheet = contact_sheet([[cell, cell]], labels=["deepfill_v1.campaign-128", "x"], cell=40, gap=4)
    ink = (sheet[:LABEL_HEIGHT] < 128).any(axis=(0, 2))
    second_column = 4 + 40 + 4
    assert ink[:second_column].any() and not ink[second_column - 2 : second_column].any()


def test_benchmark_grids_are_written_as_jpeg_quality_90(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    sheet = cv2.resize(rng.uniform(0, 255, (24, 32, 3)).astype(np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
    monkeypatch.setattr(bench_report, "grid_image", lambda report, cell: sheet)
    bench_report.write_grid(None, tmp_path / "sheet.jpg")
    bench_report.write_grid(None, tmp_path / "sheet.png")
    jpeg, png = (tmp_path / "sheet.jpg").read_bytes(), (tmp_path / "sheet.png").read_bytes()
    assert jpeg[:3] == b"\xff\xd8\xff" and png[:4] == b"\x89PNG"
    encoded = {q: cv2.imencode(".jpg", sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes() for q in (90, 95)}
    assert jpeg == encoded[90] != encoded[95]  # quality 90, not write_image's default 95
    assert len(jpeg) < len(png) / 3
