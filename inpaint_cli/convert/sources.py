"""The released checkpoint families `inpaint models convert` takes: (architecture, format) -> Source.

Plain data with no heavy imports, so the CLI's help can list what the converter takes (`arch_help`) without
importing numpy or the readers; each Source names its converter function, imported when it runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("tf", "t7", "state-dict")
DEEPFILL_LICENCE = "CC BY-NC 4.0"  # the released DeepFill models (README of JiahuiYu/generative_inpainting)


@dataclass(frozen=True)
class Source:
    """A released checkpoint family: how to read it and what its authors allow."""

    arch: str
    format: str
    licence: str
    origin: str
    data: str
    converter: str  # "module:function" in inpaint_cli.convert: (path) -> (config, state dict, files read)

    def convert(self, src: Path) -> tuple[dict[str, Any], dict[str, Any], list[Path]]:
        module, function = self.converter.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), function)(src)


SOURCES: tuple[Source, ...] = (
    Source(
        arch="deepfill_v1",
        format="tf",
        licence=DEEPFILL_LICENCE,
        origin="JiahuiYu/generative_inpainting v1.0.0 (official TensorFlow checkpoint)",
        data="Places2, CelebA, CelebA-HQ or ImageNet (the authors' release)",
        converter="deepfill:convert_deepfill_v1",
    ),
    Source(
        arch="deepfill_v2",
        format="tf",
        licence=DEEPFILL_LICENCE,
        origin="JiahuiYu/generative_inpainting v2.0.0 (official TensorFlow checkpoint)",
        data="Places2 or CelebA-HQ (the authors' release)",
        converter="deepfill:convert_deepfill_v2",
    ),
    Source(
        arch="glcic",
        format="t7",
        licence="CC BY-NC-SA 4.0",
        origin="satoshiiizuka/siggraph2017_inpainting (the authors' Lua Torch completionnet .t7)",
        data="Places2 or CelebA (the authors' release: completionnet_places2, _places2_freeform, _celeba)",
        converter="glcic:convert_iizuka",
    ),
    Source(
        arch="glcic",
        format="state-dict",
        licence="MIT",
        origin="otenim/GLCIC-PyTorch (pretrained completion network model_cn + config.json)",
        data="CelebA, 160x160 crops (otenim's pretrained model)",
        converter="glcic:convert_otenim",
    ),
    Source(
        arch="context_encoder",
        format="t7",
        licence="UC Berkeley copyright notice: educational, research and not-for-profit use (non-commercial)",
        origin="pathak22/context-encoder (the authors' Lua Torch netG, e.g. paris_inpaintCenter.t7)",
        data="Paris StreetView or ImageNet (the authors' inpaintCenter release)",
        converter="context_encoder:convert_pathak",
    ),
)


def sources() -> dict[tuple[str, str], Source]:
    return {(s.arch, s.format): s for s in SOURCES}


def converter_archs() -> list[str]:
    """The architectures the converter takes, in the table's order."""
    return list(dict.fromkeys(s.arch for s in SOURCES))


def arch_help() -> str:
    """Every architecture with the formats it is converted from, e.g. "deepfill_v1 (tf), glcic (t7 or state-dict)"."""
    parts = []
    for arch in converter_archs():
        formats = [s.format for s in SOURCES if s.arch == arch]
        parts.append(f"{arch} ({' or '.join(formats)})")
    return ", ".join(parts)
