"""Join runs continued with `--init` onto the runs they started from, as one committed metrics file.

    python training/join_runs.py runs/campaign_glcic runs/campaign_glcic2 --out training/campaign/glcic.metrics.jsonl

Each run after the first was started with `inpaint train --init` from the previous run's best.safetensors
(exported to fp16), so its steps restart at 0. The joined file holds the previous runs' records up to their
best step, an {"kind": "init"} record there, and the next run's records shifted by that step
(run_metrics.join_runs), so `plot_curves.py` draws one curve against the core-hours behind the final weights
and `best_step` names the shipped step counted from the first update. The file is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from run_metrics import join_runs, read_metrics

from inpaint_cli.errors import InpaintError
from inpaint_cli.io.write import write_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories or metrics files, oldest first")
    parser.add_argument("--out", type=Path, required=True, help="the joined NAME.metrics.jsonl to write")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs: the first and the run(s) continued from it with --init")
    try:
        joined = read_metrics(args.runs[0])
        for run in args.runs[1:]:
            joined = join_runs(joined, read_metrics(run))
    except InpaintError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_atomic(args.out, "".join(json.dumps(record) + "\n" for record in joined).encode())
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
