"""Which learned model may be `inpaint fill`'s default? Reads an `inpaint benchmark --json` report.

The rule, on the held-out test images (`test.txt`): a model qualifies if, against the baseline (telea),
1. its whole-image PSNR, hole PSNR and hole SSIM over all cases are higher, and
2. its hole PSNR is higher in at least 6 of the 8 groups: each mask kind (strokes, box) × each hole-size
   bucket (5-15, 15-30, 30-45, 45-60 %), and
3. with `--current NAME` (the default it would replace, in the same report): its hole texture distance
   (`texture_distance`, lower is better) is at least 15 % below the current default's.
"Higher" is strictly higher; a group missing from the report counts as lost. Prints a Markdown table of
each model's margins (model − baseline; positive = better) with its verdict, then the hole-PSNR margin of
every group, and names the qualifying models on stderr. A new default must also pass the coloured-flat,
gradient and scratch test (tests/test_shipped_checkpoints.py), which the report cannot show.

    python benchmarks/default_check.py benchmarks/latest.json [--baseline telea] [--min-groups 6]
        [--current deepfill_v1.campaign-128]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OVERALL = ("psnr", "psnr_hole", "ssim_hole")  # clause 1, on the ("all", "all") row
GROUP_METRIC = "psnr_hole"  # clause 2
KINDS = ("strokes", "box")
BUCKETS = ("5-15", "15-30", "30-45", "45-60")
MIN_GROUPS = 6
TEXTURE_GAIN = 0.15  # clause 3: at least this fraction below the current default's texture distance
LABELS = {"psnr": "PSNR", "psnr_hole": "PSNR hole", "ssim_hole": "SSIM hole"}


def rows_by_key(report: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, float]]:
    """(model, kind, bucket) → metric means."""
    return {
        (row["model"], row["kind"], row["bucket"]): {name: stat["mean"] for name, stat in row["metrics"].items()}
        for row in report["quality"]
    }


def check(
    report: dict[str, Any],
    baseline: str = "telea",
    *,
    kinds: tuple[str, ...] = KINDS,
    buckets: tuple[str, ...] = BUCKETS,
    min_groups: int = MIN_GROUPS,
    current: str | None = None,
) -> list[dict[str, Any]]:
    """One verdict per model other than `baseline` (and `current`): {"model", "overall": {metric: margin},
    "groups": {"kind/bucket": margin or None}, "groups_won", "texture" (its texture distance), "texture_gain"
    (1 − texture / current's, None without `current`), "fails": [reasons]}; it qualifies when "fails" is empty."""
    rows = rows_by_key(report)
    if not any(model == baseline for model, _, _ in rows):
        raise ValueError(f"the report has no rows of the baseline {baseline!r}; pass --baseline")
    current_texture = None
    if current is not None:
        current_texture = rows.get((current, "all", "all"), {}).get("texture_distance")
        if current_texture is None:
            raise ValueError(f"the report has no texture distance of the current default {current!r}; pass --current")
    models = list(dict.fromkeys(model for model, _, _ in rows if model not in (baseline, current)))
    theirs_all = rows.get((baseline, "all", "all"), {})
    verdicts = []
    for model in models:
        ours_all = rows.get((model, "all", "all"), {})
        fails: list[str] = []
        overall: dict[str, float] = {}
        for metric in OVERALL:
            if metric not in ours_all or metric not in theirs_all:
                fails.append(f"no overall {metric}")
                continue
            overall[metric] = ours_all[metric] - theirs_all[metric]
            if not overall[metric] > 0:
                fails.append(f"overall {LABELS[metric]} {overall[metric]:+.3g}")
        groups: dict[str, float | None] = {}
        for kind in kinds:
            for bucket in buckets:
                ours, theirs = rows.get((model, kind, bucket), {}), rows.get((baseline, kind, bucket), {})
                both = GROUP_METRIC in ours and GROUP_METRIC in theirs
                groups[f"{kind}/{bucket}"] = ours[GROUP_METRIC] - theirs[GROUP_METRIC] if both else None
        won = sum(1 for margin in groups.values() if margin is not None and margin > 0)
        if won < min_groups:
            missing = [group for group, margin in groups.items() if margin is None]
            note = f" ({len(missing)} missing from the report)" if missing else ""
            fails.append(f"hole PSNR higher in {won} of {len(groups)} groups, fewer than {min_groups}{note}")
        texture = ours_all.get("texture_distance", float("nan"))
        gain = None if current_texture is None else 1.0 - texture / current_texture
        if gain is not None and not gain >= TEXTURE_GAIN:
            fails.append(f"texture {gain:.0%} below {current}'s, less than {TEXTURE_GAIN:.0%}")
        verdicts.append({
            "model": model,
            "overall": overall,
            "groups": groups,
            "groups_won": won,
            "texture": texture,
            "texture_gain": gain,
            "fails": fails,
        })  # fmt: skip
    return verdicts


def _signed(value: float | None, digits: int, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}{unit}"


def markdown(verdicts: list[dict[str, Any]], baseline: str, *, min_groups: int = MIN_GROUPS) -> str:
    """The verdict table, then the per-group hole-PSNR margins."""
    lines = [
        "| model | Δ PSNR | Δ PSNR hole | Δ SSIM hole | groups with higher hole PSNR | worst group | texture "
        "| texture gain | qualifies |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for verdict in verdicts:
        overall, groups = verdict["overall"], verdict["groups"]
        present = {group: margin for group, margin in groups.items() if margin is not None}
        worst = min(present, key=present.get) if present else None
        cells = [
            verdict["model"],
            _signed(overall.get("psnr"), 2, " dB"),
            _signed(overall.get("psnr_hole"), 2, " dB"),
            _signed(overall.get("ssim_hole"), 3),
            f"{verdict['groups_won']} of {len(groups)}",
            f"{worst} ({present[worst]:+.2f} dB)" if worst else "n/a",
            f"{verdict['texture']:.0f}",
            "n/a" if verdict["texture_gain"] is None else f"{verdict['texture_gain']:+.0%}",
            "**yes**" if not verdict["fails"] else "no: " + "; ".join(verdict["fails"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Δ = model − {baseline}. A model qualifies if Δ PSNR, Δ PSNR hole and Δ SSIM hole are all positive and "
        f"its hole PSNR is higher in at least {min_groups} groups; with a current default, its texture distance "
        f"(lower is better) must also be at least {TEXTURE_GAIN:.0%} below the current default's (texture gain).",
    ]
    if verdicts:
        names = list(verdicts[0]["groups"])
        lines += ["", f"Δ hole PSNR (dB) by group, model − {baseline}:", ""]
        lines.append("| model | " + " | ".join(names) + " |")
        lines.append("| --- |" + " --- |" * len(names))
        for verdict in verdicts:
            cells = [_signed(verdict["groups"][name], 2) for name in names]
            lines.append(f"| {verdict['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="JSON written by `inpaint benchmark --json`")
    parser.add_argument("--baseline", default="telea")
    parser.add_argument("--min-groups", type=int, default=MIN_GROUPS, help="groups the model must win (of 8)")
    parser.add_argument("--current", help="the current default in the same report: a successor needs its texture")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        verdicts = check(report, args.baseline, min_groups=args.min_groups, current=args.current)
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {args.report}: cannot read the report ({e}); pass a file from `inpaint benchmark --json`",
              file=sys.stderr)  # fmt: skip
        return 1
    except (KeyError, TypeError, AttributeError) as e:
        print(f"error: {args.report}: not an `inpaint benchmark --json` report (missing {e}); rerun the benchmark "
              f"with --json", file=sys.stderr)  # fmt: skip
        return 1
    except ValueError as e:
        print(f"error: {args.report}: {e}", file=sys.stderr)
        return 1
    print(markdown(verdicts, args.baseline, min_groups=args.min_groups))
    winners = [v["model"] for v in verdicts if not v["fails"]]
    print(f"\nqualifying: {', '.join(winners) if winners else 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
