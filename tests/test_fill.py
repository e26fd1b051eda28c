"""The folder pipeline: same-size images batched into one model call, one mask decoded once, job order kept."""

from __future__ import annotations

import cv2
import numpy as np

from inpaint_cli import io, masks
from inpaint_cli.engine import Inpainter
from inpaint_cli.errors import InpaintError
from inpaint_cli.fill import FillOptions, fill_files, plan_jobs
from inpaint_cli.registry import create_model


def test_a_folder_is_filled_in_batches_in_order_with_its_mask_read_once(tmp_path, rng, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    sizes = [(48, 40)] * 3 + [(32, 40)] + [(48, 40)] * 2  # a different size in the middle splits the batch
    for index, (height, width) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{index}.png"), rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    (folder / "3b.png").write_bytes(b"not an image")  # fails between the batches, in its place
    mask = np.zeros((48, 40), np.uint8)
    mask[10:20, 8:30] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)

    reads = []
    real_read_mask = masks.read_mask
    monkeypatch.setattr(masks, "read_mask", lambda *a, **k: reads.append(a) or real_read_mask(*a, **k))
    model = create_model("test_probe")
    inpainter = Inpainter(model, device="cpu", batch_pixels=3 * 48 * 40)  # three images per call
    jobs = plan_jobs([str(folder)], str(tmp_path / "mask.png"), str(tmp_path / "out"))
    options = FillOptions(resize_mask=True)
    results = list(fill_files(inpainter, jobs, options))

    assert [job.image for job, _ in results] == [job.image for job in jobs]  # job order
    assert isinstance(results[4][1], InpaintError) and results[4][0].image.endswith("3b.png")
    assert len(reads) == 1  # decoded once, fitted once per image size
    assert [tuple(image.shape) for image, _ in model.calls] == [(3, 3, 48, 40), (1, 3, 32, 40), (2, 3, 48, 40)]
    for job, outcome in results:
        if isinstance(outcome, InpaintError):
            continue
        image = io.read_image(job.image)
        decoded = masks.read_mask(str(tmp_path / "mask.png"))
        hole = masks.fit_mask(decoded, image.height, image.width, resize=True, mask_name="m", image_name="i")
        alone = Inpainter(create_model("test_probe"), device="cpu").fill(image.rgb(), hole)
        assert np.array_equal(io.read_image(job.output).pixels, io.compose_output(image, alone.rgb, hole))
        assert outcome.strategy == "full"
