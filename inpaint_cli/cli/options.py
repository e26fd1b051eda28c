"""Parsing that several commands share: `--set` / `--recipe` KEY=VALUE settings (fill, plural, train), the hole
options of fill and plural, and loading the model they fill with."""

from __future__ import annotations

import json

from ..errors import UsageError


def fill_options(
    invert_mask: bool,
    resize_mask: bool,
    dilate: int,
    strategy: str,
    boxes: list[str] | None,
    mask_color: str | None,
    color_tolerance: int,
    seed: int | None = None,
):
    """The `FillOptions` of `inpaint fill` and `inpaint plural`, their flags checked."""
    from ..engine import check_strategy
    from ..fill import FillOptions
    from ..masks import parse_box, parse_colour

    return FillOptions(
        invert_mask=invert_mask,
        resize_mask=resize_mask,
        dilate=dilate,
        strategy=check_strategy(strategy),
        seed=seed,
        boxes=tuple(parse_box(box) for box in boxes or []),
        mask_colour=None if mask_color is None else parse_colour(mask_color),
        colour_tolerance=color_tolerance,
    )


def parse_settings(settings: list[str] | None, flag: str = "--set") -> dict:
    """KEY=VALUE pairs; values are JSON when they parse as JSON (numbers, true, lists), else text."""
    parsed = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item}: expected KEY=VALUE")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


BLEND_HELP = (
    "harmonic: shift each fill so it meets the known pixels at its hole's border (no colour cast, no seam); "
    "none: the network's fill as predicted. Default: harmonic for networks, none for telea, ns and patchmatch."
)


def make_inpainter(
    model: str | None, device: str, half: bool, settings: list[str] | None = None, blend: str | None = None
):
    """The model `--model` names, on `--device`, with its `--set` settings and `--blend`: (Inpainter, its name)."""
    from ..border_blend import check_blend_flag
    from ..load import load_inpainter

    return load_inpainter(
        model, device=device, half=half, overrides=parse_settings(settings), blend=check_blend_flag(blend)
    )
