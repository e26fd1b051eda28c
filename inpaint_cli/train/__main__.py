"""`python -m inpaint_cli.train ...`: the training loop without the Typer CLI (also under torchrun).

    torchrun --nproc-per-node 2 -m inpaint_cli.train --model deepfill_v2 --data photos/ --out runs/v2

Flags mirror `TrainConfig`; `--config FILE` (TOML, same keys) is read first and flags override it.
Exit codes: 0 done, 1 runtime failure, 2 usage error, 130 interrupted (the state was saved).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from ..errors import InpaintError
from .loop import FIELD_TYPES, TrainConfig, load_config, train


def _model_config_item(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare string such as variant=centre


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inpaint_cli.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="TOML file whose keys mirror these flags")
    for name, kind in FIELD_TYPES.items():
        flag = "--" + name.replace("_", "-")
        if name == "model_config":
            p.add_argument(
                flag,
                action="append",
                type=_model_config_item,
                metavar="KEY=VALUE",
                help="arch config override (repeatable), e.g. cnum=8",
            )
        elif kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, type=kind, default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--summary-json", action="store_true", help="print the run summary as JSON on stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not logging.getLogger("inpaint_cli").handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        values: dict[str, Any] = load_config(args.config) if args.config else {}
        for name in FIELD_TYPES:
            value = getattr(args, name)
            if name == "model_config" and value is not None:
                value = {**values.get("model_config", {}), **dict(value)}
            if value is not None:
                values[name] = value
        summary = train(TrainConfig(**values), progress=not args.no_progress)
    except InpaintError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.summary_json:
        print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
