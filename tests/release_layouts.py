"""The variable layouts of the authors' released DeepFill checkpoints (tests/data/checkpoint_layouts/), as
numpy variables with random generator weights: what a TF1 reader returns for such a file."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

LAYOUTS = Path(__file__).parent / "data" / "checkpoint_layouts"
# Catalog name of each release -> its layout file.
RELEASE_LAYOUTS = {
    "deepfill_v2.places2": "deepfill_v2_places2.tsv",
    "deepfill_v2.celebahq": "deepfill_v2_celebahq.tsv",
    "deepfill_v1.places2": "deepfill_v1_places2.tsv",
    "deepfill_v1.imagenet": "deepfill_v1_imagenet.tsv",
    "deepfill_v1.celeba": "deepfill_v1_celeba.tsv",
    "deepfill_v1.celebahq": "deepfill_v1_celeba_hq.tsv",
}
GENERATOR = "inpaint_net/"
SLOTS = ("/Adam", "/Adam_1")


def read_layout(release: str) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    """(name, dtype, shape) of every tensor of the release's checkpoint, in the file's order."""
    rows = []
    for line in (LAYOUTS / RELEASE_LAYOUTS[release]).read_text().splitlines():
        name, dtype, shape = line.split("\t")
        rows.append((name, np.dtype(dtype), tuple(ast.literal_eval(shape))))
    return rows


def is_generator_weight(name: str) -> bool:
    return name.startswith(GENERATOR) and not name.endswith(SLOTS)


def layout_variables(release: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Every variable of the layout: generator kernels and biases random (std 0.05), Adam slots and critics
    zeros, `global_step` an int32 scalar, `lr` and the Adam powers float32 scalars."""
    rng = np.random.default_rng(seed)
    variables: dict[str, np.ndarray] = {}
    for name, dtype, shape in read_layout(release):
        if name == "global_step":
            variables[name] = np.array(1_000_000, dtype=dtype)
        elif not shape:  # lr, beta1_power, beta2_power
            variables[name] = np.array(1e-4, dtype=dtype)
        elif is_generator_weight(name):
            variables[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.05).astype(dtype)
        else:
            variables[name] = np.zeros(shape, dtype)
    return variables
