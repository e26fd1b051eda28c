"""Time one training step (`recipe.train_step`, as `inpaint train` calls it) of every recipe, on CPU.

    python benchmarks/bench_train.py [--archs all] [--threads 1,2] [--steps 5] [--warmup 2] [--batch 8]
        [--size 128] [--recipe-setting [ARCH:]KEY=VALUE ...] [--compare PATH ...] [--variant OPTION ...] [--rounds 1]
        [--channels-last] [--compile] [--no-freeze] [--flush-denormal] [--json OUT] [--markdown]

Per (checkout, arch, threads) one fresh Python subprocess (so thread settings, imports and compiled graphs
never leak from one measurement into the next) builds the arch with its default config and random weights
(`registry.create_model`), its recipe with the recipe's default learning rate (`registry.get_recipe`), puts
every network in train mode, and runs `warmup` steps then `steps` timed steps on random images with
DeepFill-style masks (`masks.mixed_mask`, a new batch per step). Step indices start at 1000, so every recipe
is past any warm-up schedule; GLCIC gets phase_steps (1, 1), so the steps are phase 3 (C and D both train).
The Context Encoder trains at 128² only and is always measured there.

After every timed step the worker times a 3×3 reference conv for `--reference-seconds`
(`inpaint_cli.bench.reference_conv_gflops`), so each step has a reference rate measured within a second of
it: *× FLOP-bound* = step time ÷ (FLOPs of one step ÷ that rate), median over the steps. That ratio is
comparable across machines and across load changes; plain steps/s are not. FLOPs: torch's FlopCounterMode
over one extra (untimed) train_step, forward and backward of every network included (convolutions and
matmuls; element-wise work is not counted).

`--compare PATH` (repeatable) measures another checkout (e.g. `git worktree add /tmp/main_before <commit>`)
with the same worker code, importing its package with PYTHONPATH=PATH. The checkouts (and any `--variant`s)
alternate per arch and thread count, the first one rotating, so machine load affects them alike; speed-up =
steps/s ÷ steps/s of the first compared checkout (or of this checkout when there is none). The
*ref-normalised* speed-up divides out the load instead: per step, time × the reference rate measured right
after it (the step's cost in reference-conv GFLOP), median over the steps, compared checkout ÷ this one. Commits
are `git rev-parse --short HEAD`, "+dirty" when the checkout has uncommitted changes.

Options that change the step (each also usable as `--variant` to measure it side by side with this
checkout as it is): channels-last (every network and the images in channels-last memory format),
compile (`torch.compile` of the generator, inductor; the first warm-up step includes the compile time, which
is reported as compile_s), no-freeze (turn the recipes' `frozen(...)` blocks into no-ops, so the G step
computes the discriminator's weight gradients again; a no-op for checkouts without `frozen`), flush-denormal
(`torch.set_flush_denormal(True)`: denormal floats become zero, which avoids their slow CPU path).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
ARCHS = ("context_encoder", "glcic", "deepfill_v1", "deepfill_v2", "piigan")
FIXED_SIZE = {"context_encoder": 128}
FIRST_STEP = 1000
GLCIC_PHASE_STEPS = (1, 1)  # phase 3 from step 2 on
OPTIONS = ("channels-last", "compile", "no-freeze", "flush-denormal")


# ------------------------------------------------------------------------------------------------ worker


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_settings(items: list[str], arch: str) -> dict[str, Any]:
    """['critic_steps=1', 'glcic:phase_steps=(5,5)'] → the settings for `arch` (an ARCH: prefix limits one)."""
    settings: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--recipe-setting {item!r}: expected KEY=VALUE or ARCH:KEY=VALUE")
        target, colon, name = key.rpartition(":")
        if colon and target != arch:
            continue
        settings[name.strip()] = _parse_value(value.strip())
    return settings


def _unfreeze() -> int:
    """Replace `frozen` in every loaded model module by a no-op context manager; returns how many."""

    @contextlib.contextmanager
    def not_frozen(module: Any, **_: Any) -> Any:
        yield

    patched = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("inpaint_cli.models.") and callable(getattr(module, "frozen", None)):
            module.frozen = not_frozen
            patched += 1
    return patched


class _GlobalOnly:
    """Stand-in for FlopCounterMode's module tracker: every FLOP counts towards "Global" only."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _batches(count: int, batch: int, size: int, seed: int) -> list[tuple[Any, Any]]:
    import numpy as np
    import torch

    from inpaint_cli.masks import mixed_mask

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        images = torch.from_numpy(rng.random((batch, 3, size, size), dtype=np.float32))
        masks = np.stack([mixed_mask(size, size, rng) for _ in range(batch)])[:, None].astype(np.float32)
        out.append((images, torch.from_numpy(masks)))
    return out


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One (arch, threads) measurement in this process; `spec` as built by `_spec`."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import inpaint_cli
    from inpaint_cli.bench import reference_conv_gflops
    from inpaint_cli.models.base import TrainingRecipe
    from inpaint_cli.registry import create_model, get_recipe

    torch.set_num_threads(spec["threads"])
    if "flush-denormal" in spec["options"]:
        torch.set_flush_denormal(True)
    arch, size, batch = spec["arch"], spec["size"], spec["batch"]
    options = set(spec["options"])
    settings = dict(spec["settings"])
    if arch == "glcic" and "phase_steps" not in settings and "recon_steps" not in settings:
        settings["phase_steps"] = GLCIC_PHASE_STEPS

    torch.manual_seed(spec["seed"])
    generator = create_model(arch)
    recipe_cls = get_recipe(arch)
    recipe = recipe_cls(
        generator,
        lr=getattr(recipe_cls, "default_lr", None),
        total_steps=FIRST_STEP + 100_000,
        image_size=size,
        **settings,
    )
    if type(recipe).prepare is not TrainingRecipe.prepare:
        rng = np.random.default_rng(spec["seed"])
        recipe.prepare([rng.random((size, size, 3), dtype=np.float32) for _ in range(4)])
    memory_format = torch.channels_last if "channels-last" in options else torch.contiguous_format
    for module in recipe.networks.values():
        module.to(memory_format=memory_format)
        module.train()
    patched = _unfreeze() if "no-freeze" in options else None

    steps, warmup = spec["steps"], spec["warmup"]
    batches = _batches(warmup + steps + 1, batch, size, spec["seed"])
    batches = [(images.contiguous(memory_format=memory_format), masks) for images, masks in batches]

    def run(index: int) -> dict[str, float]:
        step = FIRST_STEP + index
        if hasattr(recipe, "set_learning_rates"):
            recipe.set_learning_rates(step)
        images, masks = batches[index]
        return recipe.train_step(images, masks, step)  # returns floats (.item()): the step has finished

    # FLOPs first, eagerly (FlopCounterMode does not see inside compiled graphs); it is a real step.
    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        # Its per-module tracker hooks every module call, which autograd.grad(create_graph=True) (the WGAN-GP
        # penalty of DeepFill v1 and PiiGAN) does not support; only the total is needed here.
        counter.mod_tracker = _GlobalOnly()
    with counter:
        losses = run(0)
    flops = int(counter.get_total_flops())
    if "compile" in options:
        recipe.networks["generator"] = torch.compile(recipe.networks["generator"])

    warmup_s = []
    for index in range(1, warmup + 1):
        start = time.perf_counter()
        run(index)
        warmup_s.append(time.perf_counter() - start)
    times, references = [], []
    for index in range(warmup + 1, warmup + steps + 1):
        start = time.perf_counter()
        losses = run(index)
        times.append(time.perf_counter() - start)
        references.append(reference_conv_gflops("cpu", torch.float32, spec["reference_seconds"]))
    median = statistics.median(times)
    bound_ratios = [t * ref * 1e9 / flops for t, ref in zip(times, references, strict=True)] if flops else []
    # Step time in units of the reference conv: what the step costs on this machine at any load.
    reference_work = statistics.median(t * ref for t, ref in zip(times, references, strict=True))
    return {
        "arch": arch,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "size": size,
        "options": sorted(options),
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "step_s": times,
        "warmup_s": warmup_s,
        "median_s": median,
        "steps_per_s": 1.0 / median,
        "images_per_s": batch / median,
        "gflop_per_step": flops / 1e9,
        "reference_gflops": statistics.median(references),
        "reference_gflops_all": references,
        "vs_flop_bound": statistics.median(bound_ratios) if bound_ratios else None,
        "reference_gflop_per_step": reference_work,
        "compile_s": max(0.0, warmup_s[0] - median) if "compile" in options and warmup_s else None,
        "frozen_patched": patched,
        "phase": losses.get("phase"),
        "loss_keys": sorted(losses),
        "inpaint_cli": str(Path(inpaint_cli.__file__).resolve().parent),
        "torch": torch.__version__,
        "loadavg_end": os.getloadavg()[0],
    }


def _worker_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    try:
        result = measure(spec)
    except Exception as error:  # reported to the parent, which keeps going with the other measurements
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------------ parent


def git_commit(path: Path) -> str:
    """`git rev-parse --short HEAD` of the checkout at `path`, plus "+dirty" if anything is uncommitted."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_worker(path: Path, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(path), OMP_NUM_THREADS=str(spec["threads"]))
    env.pop("PYTHONSTARTUP", None)
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE), "--worker", json.dumps(spec)],
            env=env,
            cwd=str(path),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"}
    return json.loads(lines[-1])


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool the timed steps of several rounds of one measurement."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[-1]
    merged = dict(good[-1])
    times = [t for r in good for t in r["step_s"]]
    references = [x for r in good for x in r["reference_gflops_all"]]
    flops = merged["gflop_per_step"] * 1e9
    median = statistics.median(times)
    merged.update(
        step_s=times,
        reference_gflops_all=references,
        median_s=median,
        steps_per_s=1.0 / median,
        images_per_s=merged["batch"] / median,
        reference_gflops=statistics.median(references),
        vs_flop_bound=statistics.median(t * x * 1e9 / flops for t, x in zip(times, references, strict=True))
        if flops
        else None,
        reference_gflop_per_step=statistics.median(t * x for t, x in zip(times, references, strict=True)),
        rounds=len(good),
    )
    compiles = [r["compile_s"] for r in good if r.get("compile_s") is not None]
    if compiles:
        merged["compile_s"] = statistics.median(compiles)
    return merged


def markdown_table(records: list[dict[str, Any]]) -> str:
    headers = [
        "arch",
        "threads",
        "side",
        "commit",
        "ms/step",
        "steps/s",
        "images/s",
        "GFLOP/step",
        "ref conv GFLOP/s",
        "× FLOP-bound",
        "speed-up",
        "speed-up, ref-normalised",
    ]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    for r in records:
        if "error" in r:
            cells = [r["arch"], str(r["threads"]), r["side"], r["commit"], f"error: {r['error'][:120]}"]
            cells += [""] * (len(headers) - len(cells))
        else:
            bound = "n/a" if r["vs_flop_bound"] is None else f"{r['vs_flop_bound']:.2f}"
            speedup = "" if r.get("speedup") is None else f"{r['speedup']:.2f}×"
            normalised = "" if r.get("speedup_normalised") is None else f"{r['speedup_normalised']:.2f}×"
            cells = [
                r["arch"],
                str(r["threads"]),
                r["side"],
                r["commit"],
                f"{r['median_s'] * 1000:.0f}",
                f"{r['steps_per_s']:.3f}",
                f"{r['images_per_s']:.2f}",
                f"{r['gflop_per_step']:.1f}",
                f"{r['reference_gflops']:.0f}",
                bound,
                speedup,
                normalised,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="all", help=f"comma-separated, or all ({', '.join(ARCHS)})")
    parser.add_argument("--threads", default="1,2", help="torch.set_num_threads values, comma-separated")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe-setting", action="append", default=[], metavar="[ARCH:]KEY=VALUE")
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="another checkout, measured alternately with this one (repeatable; speed-ups are against the first)",
    )
    parser.add_argument(
        "--variant", action="append", default=[], choices=OPTIONS, help="also measure this checkout with it"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement, pooling the steps")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-freeze", action="store_true")
    parser.add_argument("--flush-denormal", action="store_true")
    parser.add_argument("--reference-seconds", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table on stdout")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args.worker)
        return 0

    archs = list(ARCHS) if args.archs == "all" else [a.strip() for a in args.archs.split(",") if a.strip()]
    threads = [int(t) for t in args.threads.split(",")]
    flags = (args.channels_last, args.compile, args.no_freeze, args.flush_denormal)
    base_options = [option for option, on in zip(OPTIONS, flags, strict=True) if on]
    sides: list[tuple[str, Path, list[str]]] = [("current", REPO, base_options)]
    for option in args.variant:
        sides.append((f"current +{option}", REPO, sorted({*base_options, option})))
    for path in args.compare:
        label = f"compare {path.resolve().name}"
        if any(label == side[0] for side in sides):
            label = f"compare {path.resolve()}"
        sides.append((label, path.resolve(), base_options))
    commits = {path: git_commit(path) for _, path, _ in sides}
    reference_side = sides[1 + len(args.variant)][0] if args.compare else sides[0][0]

    records: list[dict[str, Any]] = []
    turn = 0
    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    for arch in archs:
        size = FIXED_SIZE.get(arch, args.size)
        for count in threads:
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in sides}
            for _ in range(args.rounds):
                order = sides[turn % len(sides) :] + sides[: turn % len(sides)]
                turn += 1
                for label, path, options in order:
                    spec = {
                        "arch": arch,
                        "threads": count,
                        "steps": args.steps,
                        "warmup": args.warmup,
                        "batch": args.batch,
                        "size": size,
                        "seed": args.seed,
                        "settings": parse_settings(args.recipe_setting, arch),
                        "options": options,
                        "reference_seconds": args.reference_seconds,
                    }
                    result = run_worker(path, spec, args.timeout)
                    runs[label].append(result)
                    what = result.get("error") or f"{result['median_s'] * 1000:.0f} ms/step"
                    print(f"{arch} {count} thread(s) {label}: {what}", file=sys.stderr, flush=True)
            group = []
            for label, path, _ in sides:
                record = _merge(runs[label])
                record.update(arch=arch, threads=count, side=label, checkout=str(path), commit=commits[path])
                group.append(record)
            base = next(r for r in group if r["side"] == reference_side)
            for record in group:
                if "error" not in record and "error" not in base:
                    record["speedup"] = record["steps_per_s"] / base["steps_per_s"]
                    record["speedup_normalised"] = base["reference_gflop_per_step"] / record["reference_gflop_per_step"]
            records.extend(group)

    if args.json:
        environment = {
            "argv": sys.argv[1:],
            "cpu_count": os.cpu_count(),
            "loadavg_end": os.getloadavg(),
            "python": sys.version.split()[0],
        }
        args.json.write_text(json.dumps({"environment": environment, "records": records}, indent=1) + "\n")
    if args.markdown:
        print(markdown_table(records))
    else:
        for r in records:
            if "error" in r:
                print(f"{r['arch']:16s} {r['threads']} {r['side']:24s} {r['commit']:14s} error: {r['error']}")
                continue
            speedup = (
                "" if r.get("speedup") is None else f"  ×{r['speedup']:.2f} (normalised ×{r['speedup_normalised']:.2f})"
            )
            print(
                f"{r['arch']:16s} {r['threads']} {r['side']:24s} {r['commit']:14s} {r['median_s'] * 1000:8.0f} ms  "
                f"{r['steps_per_s']:6.3f} steps/s  {r['images_per_s']:6.2f} img/s  {r['gflop_per_step']:7.1f} GFLOP  "
                f"ref {r['reference_gflops']:5.0f} GFLOP/s  {r['vs_flop_bound'] or float('nan'):5.2f}× bound{speedup}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
