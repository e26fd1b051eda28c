"""The training runs behind the bundled checkpoints, redone on one CUDA GPU: all five models at paper width,
each in under 10 minutes, fp16 exports.

NOT RUN ON A GPU YET. It was written and tested on a CPU-only machine: the commands parse as `inpaint train`
invocations (tests/test_training_tools.py, with --dry-run) and the stage and time-budget logic is tested with
a stand-in clock, but the rates below are guesses and nothing here has trained on CUDA. Check the first
model's log before leaving it alone.

    sh training/train_gpu.sh DATA [--out runs/gpu] [--only deepfill_v2,glcic] [--budget 540] [--device cuda]
    sh training/train_gpu.sh DATA --dry-run        # print the commands, planned with the estimated rates

DATA is the folder `sh training/make_data.sh ../shared/data runs/data` builds (photos/, textures/, val.txt,
test.txt). make_data.sh links the two sets, so copy it with the links followed, e.g. onto a GPU machine
where ../shared does not exist: `cp -rL runs/data /somewhere/data` (or `rsync -aL`).

Every model: the arch's default config (paper width), `--size 256 --short-side 256` (the Context Encoder's
dense bottleneck takes 128² only), `--batch 16`, `--masks mixed`, bf16 autocast (`--amp --device cuda`; bf16
needs no GradScaler), and the recipe the bundled CPU-trained checkpoints used (training/README.md, weights.toml): no
discriminator (`recon_steps` beyond the run), `ema=0.999`; DeepFill v2 with `hole_weight=6` at lr 3e-4 and
then 1e-4 from the same fraction of the run as on the CPU (3487 of 6500 steps); DeepFill v1 and PiiGAN with
`hole_weight=6 warmup_steps=100`, lr 3e-4 and then 1e-4 likewise (from 3136 of 6174 and 1436 of 2199
steps); GLCIC and the Context Encoder at their papers' rates.

Each model gets `--budget` seconds of training (default 540; its export takes a few more), in stages:
1. a probe: the run's first PROBE_STEPS steps, which measure its steady rate (run_metrics.steady_rate);
2. `--resume --steps N`: N from that rate and the time left (less a start-up reserve, times SAFETY);
   DeepFill v2 in two resumes, the second with `--lr 1e-4`.
Every stage runs under `timeout -s INT` set to the time left, so no model can overrun: a run still going
then stops as after Ctrl-C (after the current step, saved) and exits 124 here; `-k` kills it if saving
hangs. Then `inpaint models export RUN/best.safetensors` (the val-best EMA generator) writes
OUT/export/ARCH_gpu-SIZE.safetensors as fp16, and OUT/summary.json (rewritten after each model) records the
plan, every exit status, the steps reached, the measured rate, the training time, the val-best step and
hole PSNR, Telea's on the same cases and the export's weights.toml entry. Logs: OUT/ARCH.log.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from run_metrics import baseline, best_step, curve, read_metrics, steady_rate, train_seconds

from inpaint_cli.errors import InpaintError
from inpaint_cli.train.state import STATE_FILE

INPAINT = [sys.executable, "-m", "inpaint_cli"]
BATCH, SHORT_SIDE, VAL_COUNT, LOG_EVERY = 16, 256, 32, 10
PROBE_STEPS = 100
PROBE_SKIP_WINDOWS = 3  # the first 30 steps: CUDA's lazy start-up and the first decode of every image
STARTUP_RESERVE_S = 45.0  # per process: import, CUDA start, the state read, the last validation and save
SAFETY = 0.85  # of the time left, for the validations and checkpoints the probe did not pay for
VALIDATIONS = 20  # per run; a checkpoint every 5th
KILL_AFTER_S = 30  # after the SIGINT: time to save before `timeout` kills
MAX_BUDGET_S = 560  # + KILL_AFTER_S + the export: under 10 minutes a model
RECON_ONLY = ("recon_steps=1000000", "ema=0.999")  # no discriminator within the run; the EMA is shipped
SMALL_BUDGET = (*RECON_ONLY, "hole_weight=6", "warmup_steps=100")  # DeepFill v1's and PiiGAN's shipped recipe


@dataclass(frozen=True)
class Model:
    """One model of the run: its recipe and a guessed rate (steps/s) for --dry-run and a probe without one."""

    arch: str
    guess_rate: float
    size: int = 256
    lr: float | None = None  # None: the paper's
    recipe: tuple[str, ...] = RECON_ONLY
    decay: tuple[float, float] | None = None  # (fraction of the steps, lr from there on)

    @property
    def tag(self) -> str:
        return f"gpu-{self.size}"


# The rates are guesses for an H100/H200-class GPU at batch 16 in bf16, not measurements.
MODELS = (
    Model("deepfill_v2", 10.0, lr=3e-4, recipe=(*RECON_ONLY, "hole_weight=6"), decay=(3487 / 6500, 1e-4)),
    Model("deepfill_v1", 10.0, lr=3e-4, recipe=SMALL_BUDGET, decay=(3136 / 6174, 1e-4)),
    Model("piigan", 6.0, lr=3e-4, recipe=SMALL_BUDGET, decay=(1436 / 2199, 1e-4)),
    Model("glcic", 15.0),
    Model("context_encoder", 40.0, size=128),
)


@dataclass
class Outcome:
    """What happened to one model (the summary's entry)."""

    arch: str
    run: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    rate: float | None = None
    rate_source: str = "probe"
    planned_steps: int | None = None
    export: dict[str, Any] | None = None
    failed: str | None = None


def intervals(total: int) -> tuple[int, int]:
    """(val_every, save_every) for a run of `total` steps: about VALIDATIONS validations, a checkpoint every 5th."""
    val_every = max(50, total // VALIDATIONS // LOG_EVERY * LOG_EVERY)
    return val_every, 5 * val_every


def plan_steps(rate: float, seconds_left: float, *, done: int, processes: int = 1) -> int:
    """The step to train to: `done` plus what `rate` fits in `seconds_left` after `processes` start-ups,
    times SAFETY, in whole logging windows; never below `done`."""
    usable = max(0.0, seconds_left - processes * STARTUP_RESERVE_S) * SAFETY
    return done + int(rate * usable) // LOG_EVERY * LOG_EVERY


def train_command(model: Model, data: Path, run: Path, steps: int, *, device: str, workers: int) -> list[str]:
    """The probe: a new run of `steps` steps with the run's settings (validated once, at its end)."""
    command = [
        *INPAINT, "train", "--model", model.arch, "--data", str(data), "--val-list", str(data / "val.txt"),
        "--out", str(run), "--size", str(model.size), "--short-side", str(SHORT_SIDE), "--batch", str(BATCH),
        "--steps", str(steps), "--masks", "mixed", "--device", device, "--amp", "--seed", "0",
        "--workers", str(workers), "--val-count", str(VAL_COUNT), "--val-every", str(steps),
        "--save-every", str(steps), "--log-every", str(LOG_EVERY), "--no-progress",
    ]  # fmt: skip
    if model.lr is not None:
        command += ["--lr", f"{model.lr:g}"]
    for setting in model.recipe:
        command += ["--recipe", setting]
    return command


def resume_command(run: Path, steps: int, total: int, *, lr: float | None = None) -> list[str]:
    """Continue `run` to `steps`, validating and saving at the intervals of a `total`-step run."""
    val_every, save_every = intervals(total)
    command = [*INPAINT, "train", "--out", str(run), "--resume", "--steps", str(steps), "--val-every",
               str(val_every), "--save-every", str(save_every), "--no-progress"]  # fmt: skip
    return command + (["--lr", f"{lr:g}"] if lr is not None else [])


def export_command(model: Model, run: Path, out: Path) -> list[str]:
    target = out / "export" / f"{model.arch}_{model.tag}.safetensors"
    return [*INPAINT, "models", "export", str(run / "best.safetensors"), "--out", str(target),
            "--name", f"{model.arch}.{model.tag}", "--json"]  # fmt: skip


def timed(seconds: float, command: list[str]) -> list[str]:
    """`command` under coreutils timeout: SIGINT (the trainer's Ctrl-C: finish the step, save) after `seconds`."""
    return ["timeout", "-s", "INT", "-k", str(KILL_AFTER_S), str(max(1, int(seconds))), *command]


def gpu_name() -> str | None:
    """What nvidia-smi calls the first GPU (not torch: a CUDA context here would hold memory for the whole run)."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=30, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def check_data(data: Path) -> None:
    if not (data / "val.txt").is_file():
        raise InpaintError(
            f"{data / 'val.txt'}: no such file; build DATA with `sh training/make_data.sh ../shared/data runs/data` "
            f"and copy it with `cp -rL` (it holds links)"
        )
    if not any((data / name).is_dir() for name in ("photos", "textures")):
        raise InpaintError(
            f"{data}: neither photos/ nor textures/ is a folder (links copied without -L?); copy it with `cp -rL`"
        )


class Campaign:
    """Runs (or, with dry_run, prints) the stages of every model within its budget. A dry run keeps a pretend
    clock that each stage advances by its expected length, so it prints the plan a real run would make."""

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.args = args
        self.runner, self.monotonic = runner, clock  # tests pass stand-ins
        self.dry = bool(args.dry_run)
        self.data: Path = args.data.resolve()
        self.out: Path = args.out.resolve()
        self.clock = 0.0
        self.summary: dict[str, Any] = {
            "script": "training/train_gpu.py",
            "tested_on_gpu": False,  # see the module docstring; set by hand once a run has been checked
            "device": args.device,
            "budget_s": args.budget,
            "models": [],
        }

    def now(self) -> float:
        return self.clock if self.dry else self.monotonic()

    def execute(self, command: list[str], log: Path, *, expected_s: float = 0.0) -> tuple[int, float, str]:
        """(exit status, seconds, stdout) of `command`, stderr appended to `log`; printed first. A dry run
        only prints it and moves its clock on by `expected_s`."""
        print(shlex.join(command), flush=True)
        if self.dry:
            self.clock += expected_s
            return 0, expected_s, ""
        start = self.monotonic()
        with open(log, "a", encoding="utf-8") as stderr:
            done = self.runner(command, stdout=subprocess.PIPE, stderr=stderr, text=True, check=False)
        return done.returncode, self.monotonic() - start, done.stdout

    def stage(
        self, outcome: Outcome, name: str, command: list[str], limit_s: float, expected_s: float, *, skip: bool = True
    ) -> bool:
        """One training stage under `timeout` (`limit_s`); False when it failed and the model should stop.
        With `skip`, a stage with less than a start-up's time left is skipped (the run keeps what it has)."""
        log = self.out / f"{outcome.arch}.log"
        if skip and limit_s < STARTUP_RESERVE_S:
            outcome.stages.append({"stage": name, "skipped": f"{max(limit_s, 0):.0f} s left"})
            print(f"# {outcome.arch}: {name} skipped, {max(limit_s, 0):.0f} s left", flush=True)
            return True
        status, took, _ = self.execute(timed(limit_s, command), log, expected_s=min(expected_s, limit_s))
        outcome.stages.append({"stage": name, "exit": status, "seconds": round(took, 1), "limit_s": int(limit_s)})
        if status in (0, 124):  # 124: stopped by the clock, saved like after a Ctrl-C
            return True
        if status == 137:
            outcome.failed = f"{name}: killed {KILL_AFTER_S} s after the SIGINT (steps since the last save lost)"
            return True  # the last checkpoint and best.safetensors are still there
        outcome.failed = f"{name} exited {status}; see {log}"
        return False

    def train(self, model: Model) -> Outcome:
        run = self.out / model.arch
        outcome = Outcome(model.arch, str(run))
        print(f"# {model.arch}: a {PROBE_STEPS}-step probe, then what {self.args.budget:.0f} s allow", flush=True)
        deadline = self.now() + self.args.budget
        probe = train_command(model, self.data, run, PROBE_STEPS, device=self.args.device, workers=self.args.workers)
        expected = STARTUP_RESERVE_S + PROBE_STEPS / model.guess_rate
        limit = min(200.0, max(self.args.budget / 3, 2 * STARTUP_RESERVE_S))
        if not self.stage(outcome, "probe", probe, limit, expected, skip=False):
            return outcome
        if not self.dry and not (run / STATE_FILE).is_file():  # stopped before its first save: nothing to resume
            outcome.failed = f"the probe saved no state within {limit:.0f} s; see {self.out / (model.arch + '.log')}"
            return outcome
        records = [] if self.dry else read_metrics(run)
        rate = steady_rate(records, skip=PROBE_SKIP_WINDOWS)
        if rate is None:
            rate, outcome.rate_source = model.guess_rate, "guess"
        outcome.rate = rate
        # Where the probe got to (its last logged step; fewer than PROBE_STEPS if its limit stopped it).
        done = max((r["step"] for r in records if r.get("kind") == "train"), default=PROBE_STEPS)
        processes = 2 if model.decay else 1
        total = plan_steps(rate, deadline - self.now(), done=done, processes=processes)
        outcome.planned_steps = total
        print(f"# {model.arch}: {rate:.2f} it/s ({outcome.rate_source}): train to step {total}", flush=True)

        def needs(steps: int) -> float:  # expected seconds of a resume that trains `steps` steps
            return STARTUP_RESERVE_S + steps / rate

        if total > done and model.decay:  # DeepFill v2: the CPU run's lr drop, at the same fraction
            fraction, late_lr = model.decay
            switch = max(done, round(total * fraction / LOG_EVERY) * LOG_EVERY)
            second = STARTUP_RESERVE_S + (total - switch) / rate / SAFETY  # kept for the second resume
            limit = deadline - self.now() - second
            if not self.stage(outcome, "lr", resume_command(run, switch, total), limit, needs(switch - done)):
                return outcome
            command = resume_command(run, total, total, lr=late_lr)
            if not self.stage(outcome, "late lr", command, deadline - self.now(), needs(total - switch)):
                return outcome
        elif total > done:
            command = resume_command(run, total, total)
            if not self.stage(outcome, "main", command, deadline - self.now(), needs(total - done)):
                return outcome
        self.export(model, run, outcome)
        return outcome

    def export(self, model: Model, run: Path, outcome: Outcome) -> None:
        log = self.out / f"{model.arch}.log"
        if not self.dry and not (run / "best.safetensors").is_file():
            outcome.failed = "no validation finished within the budget, so there is no best.safetensors to export"
            return
        status, _, stdout = self.execute(export_command(model, run, self.out), log)
        if self.dry:
            return
        if status != 0:
            outcome.failed = f"export exited {status}; see {log}"
            return
        outcome.export = json.loads(stdout.strip().splitlines()[-1])

    def record(self, outcome: Outcome) -> None:
        entry: dict[str, Any] = dict(vars(outcome))
        if not self.dry and (Path(outcome.run) / "metrics.jsonl").is_file():
            records = read_metrics(Path(outcome.run))
            best = best_step(records)
            trained = [r["step"] for r in records if r.get("kind") == "train"]
            entry.update(
                steps=max(trained, default=0),
                train_seconds=round(train_seconds(records), 1),
                best_step=best,
                best_val_hole_psnr=curve(records, "psnr").get(best) if best is not None else None,
                telea_val_hole_psnr=baseline(records).get("telea_psnr"),
            )
        self.summary["models"].append(entry)
        if not self.dry:
            from inpaint_cli.io import write_atomic

            write_atomic(self.out / "summary.json", (json.dumps(self.summary, indent=2) + "\n").encode())

    def run(self, models: list[Model]) -> int:
        if not self.dry:
            check_data(self.data)
            taken = [m.arch for m in models if (self.out / m.arch).exists()]
            if taken:
                raise InpaintError(f"{self.out}: already holds runs of {', '.join(taken)}; remove them or pass --out")
            self.out.mkdir(parents=True, exist_ok=True)
            self.summary.update(torch=importlib.metadata.version("torch"), gpu=gpu_name())
        failures = 0
        for model in models:
            outcome = self.train(model)
            self.record(outcome)
            if outcome.failed:
                failures += 1
                print(f"# {model.arch} failed: {outcome.failed}", file=sys.stderr, flush=True)
                if any(stage.get("exit") == 2 for stage in outcome.stages):  # the command line itself: all would fail
                    break
        if not self.dry:
            print(self.out / "summary.json")
        return 1 if failures else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the folder make_data.sh builds (copied with cp -rL)")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu"), help="runs, logs, exports and summary.json")
    parser.add_argument("--only", default="", help="comma-separated archs (default: all five, in the table's order)")
    parser.add_argument(
        "--budget", type=float, default=540.0, help=f"training seconds per model (at most {MAX_BUDGET_S})"
    )
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=4, help="data-loading threads per run")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, planned with the guessed rates")
    args = parser.parse_args(argv)
    known = {m.arch: m for m in MODELS}
    wanted = [name for name in args.only.split(",") if name]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        parser.error(f"--only {','.join(unknown)}: not one of the models this script trains; known: {', '.join(known)}")
    if not 120 <= args.budget <= MAX_BUDGET_S:
        parser.error(f"--budget {args.budget:g}: 120 to {MAX_BUDGET_S} s (with the kill grace and the export, a model "
                     f"must finish in under 10 minutes)")  # fmt: skip
    args.models = [known[name] for name in wanted] if wanted else list(MODELS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return Campaign(args).run(args.models)
    except InpaintError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
