"""Which learned model may replace telea as `inpaint fill`'s default? Reads an `inpaint benchmark --json` report.

The rule (issue 6): a model qualifies if it beats the baseline (telea) in PSNR and SSIM over all cases
and in every large-hole bucket (each mask kind), while keeping texture in the hole (gradient ratio ≥ 0.7).
Both the whole-image and the hole-only variants of PSNR and SSIM must win. Prints a Markdown table with
each model's margins (model − baseline; positive = better) and its verdict.

    python benchmarks/default_check.py benchmarks/latest.json [--baseline telea] [--large 30-45,45-60]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

METRICS = ("psnr", "psnr_hole", "ssim", "ssim_hole")
MIN_TEXTURE = 0.7


def rows_by_key(report: dict) -> dict[tuple[str, str, str], dict[str, float]]:
    """(model, kind, bucket) → metric means."""
    return {
        (row["model"], row["kind"], row["bucket"]): {name: stat["mean"] for name, stat in row["metrics"].items()}
        for row in report["quality"]
    }


def check(report: dict, baseline: str, large: list[str]) -> list[dict]:
    rows = rows_by_key(report)
    kinds = sorted({kind for _, kind, _ in rows if kind != "all"})
    models = list(dict.fromkeys(model for model, _, _ in rows if model != baseline))
    groups = [("all", "all")] + [(kind, bucket) for kind in kinds for bucket in large]
    verdicts = []
    for model in models:
        margins: dict[str, float] = {}
        losses = []
        for kind, bucket in groups:
            ours, theirs = rows.get((model, kind, bucket)), rows.get((baseline, kind, bucket))
            if ours is None or theirs is None:
                losses.append(f"no {kind}/{bucket} row")
                continue
            for metric in METRICS:
                margin = ours[metric] - theirs[metric]
                margins[f"{kind}/{bucket}/{metric}"] = margin
                if margin <= 0:
                    losses.append(f"{metric} {kind}/{bucket} ({margin:+.3g})")
        texture = rows.get((model, "all", "all"), {}).get("gradient_ratio", float("nan"))
        if not texture >= MIN_TEXTURE:
            losses.append(f"texture {texture:.2f} < {MIN_TEXTURE}")
        verdicts.append({"model": model, "margins": margins, "texture": texture, "fails": losses})
    return verdicts


def markdown(verdicts: list[dict], baseline: str, large: list[str]) -> str:
    lines = [
        f"| model | Δ PSNR all | Δ SSIM all | Δ PSNR hole all | Δ SSIM hole all | worst Δ PSNR hole, {'/'.join(large)} "
        f"| texture | qualifies |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for verdict in verdicts:
        m = verdict["margins"]
        large_psnr = [v for k, v in m.items() if k.endswith("/psnr_hole") and not k.startswith("all/")]
        cells = [
            verdict["model"],
            f"{m.get('all/all/psnr', float('nan')):+.2f} dB",
            f"{m.get('all/all/ssim', float('nan')):+.3f}",
            f"{m.get('all/all/psnr_hole', float('nan')):+.2f} dB",
            f"{m.get('all/all/ssim_hole', float('nan')):+.3f}",
            f"{min(large_psnr):+.2f} dB" if large_psnr else "n/a",
            f"{verdict['texture']:.2f}",
            "**yes**" if not verdict["fails"] else f"no: {len(verdict['fails'])} of the checks fail",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Δ = model − {baseline}; a model qualifies only if every Δ is positive and texture ≥ {MIN_TEXTURE}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="JSON written by `inpaint benchmark --json`")
    parser.add_argument("--baseline", default="telea")
    parser.add_argument("--large", default="30-45,45-60", help="the large-hole buckets, as the report labels them")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {args.report}: cannot read the report ({e}); pass a file from `inpaint benchmark --json`",
              file=sys.stderr)  # fmt: skip
        return 1
    large = [bucket for bucket in args.large.split(",") if bucket]
    verdicts = check(report, args.baseline, large)
    print(markdown(verdicts, args.baseline, large))
    winners = [v["model"] for v in verdicts if not v["fails"]]
    print(f"\nqualifying: {', '.join(winners) if winners else 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
