"""training/: the metrics reader, the curve plots, and the commands of the two scripts that replay the
training runs behind the bundled checkpoints (dry runs)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shlex
import struct
import subprocess
from pathlib import Path

import pytest

from inpaint_cli.cli import app
from inpaint_cli.cli.train import train_flags
from inpaint_cli.errors import InpaintError, UsageError
from inpaint_cli.registry import get_arch, get_recipe
from inpaint_cli.train import TrainConfig, load_config
from inpaint_cli.train.config import RESUME_MUTABLE, config_from_sources, merge_for_resume, resolve_config

REPO = Path(__file__).resolve().parents[1]
TRAINING = REPO / "training"


@pytest.fixture
def tools(monkeypatch):
    """The training/ scripts as modules (they import run_metrics as a sibling, as when run as scripts)."""
    monkeypatch.syspath_prepend(str(TRAINING))
    names = ("run_metrics", "curves", "plot_curves", "train_gpu", "join_runs")
    return {name: importlib.import_module(name) for name in names}


def write_metrics(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# Windows: steps 0-10 at 2 it/s (5 s), 10-20 at 1 it/s (10 s), 20-30 at 0.5 it/s (20 s).
SYNTHETIC = [
    {"kind": "baseline", "step": 0, "telea_psnr": 21.5, "telea_ssim": 0.4, "telea_l1": 0.07},
    {"kind": "train", "step": 10, "it_per_s": 2.0, "lr_generator": 3e-4},
    {"kind": "train", "step": 20, "it_per_s": 1.0, "lr_generator": 3e-4},
    {"kind": "val", "step": 20, "psnr": 19.0, "raw_psnr": 18.5, "ssim": 0.3, "l1": 0.1},
    {"kind": "train", "step": 30, "it_per_s": 0.5, "lr_generator": 1e-4},
    {"kind": "val", "step": 30, "psnr": 19.5, "raw_psnr": 19.6, "ssim": 0.31, "l1": 0.09},
]


def test_core_hours_follow_the_logged_rates(tools, tmp_path):
    rm = tools["run_metrics"]
    records = rm.read_metrics(write_metrics(tmp_path / "toy.metrics.jsonl", SYNTHETIC))
    assert rm.train_seconds(records) == pytest.approx(35.0)
    # step 20: 5 + 10 s; step 30: 35 s; step 25: halfway through the 20 s window = 25 s; times 4 threads.
    assert rm.core_hours(records, [20, 25, 30], threads=4) == pytest.approx([60 / 3600, 100 / 3600, 140 / 3600])
    assert rm.core_hours(records, [30]) == pytest.approx([35 / 3600])
    assert rm.steady_rate(records, skip=1) == pytest.approx(20 / 30)  # 20 steps in the last two windows' 30 s
    assert rm.best_step(records) == 30 and rm.baseline(records)["telea_psnr"] == 21.5
    assert rm.lr_drops(records) == [(30, 3e-4, 1e-4)]
    with pytest.raises(InpaintError, match="threads"):
        rm.core_hours(records, [20], threads=0)


def test_a_run_continued_with_init_joins_at_the_best_step_of_the_first(tools, tmp_path):
    rm = tools["run_metrics"]
    # The first run's best is step 20 (19.6 > 19.5 at 30); the second started from it, steps from 0 again.
    first = [
        *SYNTHETIC[:3],
        {"kind": "val", "step": 20, "psnr": 19.6, "ssim": 0.3, "l1": 0.1},
        *SYNTHETIC[4:],
    ]
    second = [
        {"kind": "baseline", "step": 0, "telea_psnr": 21.5, "telea_ssim": 0.4, "telea_l1": 0.07},
        {"kind": "train", "step": 10, "it_per_s": 1.0, "lr_generator": 5e-5},
        {"kind": "val", "step": 10, "psnr": 19.9, "ssim": 0.32, "l1": 0.08},
    ]
    joined = rm.join_runs(first, second)
    assert [r["step"] for r in joined if r["kind"] == "val"] == [20, 30]  # 20 from the first, 10 + 20
    assert rm.best_step(joined) == 30 and rm.curve(joined, "psnr")[30] == 19.9
    assert len([r for r in joined if r["kind"] == "baseline"]) == 1
    # Time: the first run's 15 s to step 20 (its 20 s after it did not shape the weights), then 10 s.
    assert rm.train_seconds(joined) == pytest.approx(25.0)
    second.append({"kind": "train", "step": 20, "it_per_s": 1.0, "lr_generator": 5e-5})
    assert rm.lr_drops(rm.join_runs(first, second)) == [(20, 3e-4, 5e-5)]  # 3e-4: the rate up to step 20
    # A new run's warm-up is not a drop: only the rate it levels off at counts, against the rate before.
    warming = [{**second[1], "lr_generator": 3e-5}, {**second[1], "step": 20, "lr_generator": 3e-4}]
    warming.append({**second[1], "step": 30, "lr_generator": 3e-4})
    assert rm.lr_drops(rm.join_runs(first, warming)) == []
    # The script joins run directories and metrics files alike, and chains more than two.
    out = tmp_path / "joined.metrics.jsonl"
    a, b = write_metrics(tmp_path / "a.metrics.jsonl", first), write_metrics(tmp_path / "b.metrics.jsonl", second)
    third = [{**r, "psnr": 20.1} if r["kind"] == "val" else r for r in second]
    c = write_metrics(tmp_path / "c.metrics.jsonl", third)
    assert tools["join_runs"].main([str(a), str(b), str(c), "--out", str(out)]) == 0
    chained = rm.read_metrics(out)
    assert rm.best_step(chained) == 40 and rm.train_seconds(chained) == pytest.approx(15.0 + 10.0 + 20.0)
    with pytest.raises(InpaintError, match="no validation"):
        rm.join_runs(SYNTHETIC[:3], second)


def test_metrics_errors_name_the_file_and_line(tools, tmp_path):
    rm = tools["run_metrics"]
    bad = tmp_path / "bad.metrics.jsonl"
    bad.write_text('{"kind": "train", "step": 10, "it_per_s": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(InpaintError, match=r"bad\.metrics\.jsonl:2: not a JSON line"):
        rm.read_metrics(bad)
    with pytest.raises(InpaintError, match="cannot read it"):
        rm.read_metrics(tmp_path / "missing_run")
    out_of_order = [{"kind": "train", "step": 20, "it_per_s": 1.0}, {"kind": "train", "step": 10, "it_per_s": 1.0}]
    with pytest.raises(InpaintError, match="not in step order"):
        rm.train_seconds(out_of_order)


def test_a_run_directory_and_a_committed_copy_read_alike(tools, tmp_path):
    rm = tools["run_metrics"]
    run = tmp_path / "campaign_x"
    run.mkdir()
    write_metrics(run / "metrics.jsonl", SYNTHETIC)
    (run / "config.toml").write_text('model = "deepfill_v2"\nsize = 128\nbatch = 8\n\n[model_config]\ncnum = 32\n')
    copy = write_metrics(tmp_path / "x.metrics.jsonl", SYNTHETIC)
    (tmp_path / "x.config.toml").write_text((run / "config.toml").read_text())
    assert rm.read_metrics(run) == rm.read_metrics(copy)
    assert (rm.run_name(run), rm.run_name(copy)) == ("campaign_x", "x")
    assert rm.read_config(copy)["model_config"] == {"cnum": 32}
    title = tools["plot_curves"].title_of("x", rm.read_config(run))
    assert title == "DeepFill v2, cnum 32 (x): 128² crops, batch 8"
    table = tools["curves"].table([run, copy], every=10, metric="psnr")
    assert "| campaign_x | 21.50 | 19.00 | 19.50 | 19.50 (30) | 1 min |" in table.splitlines()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_a_png_of_the_expected_size(tools, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tools["plot_curves"]
    metrics = write_metrics(tmp_path / "toy.metrics.jsonl", SYNTHETIC)
    out = tmp_path / "curves"
    path = plot.plot_run(metrics, out, threads=1)
    assert path == out / "toy.png"
    expected = (round(plot.FIGSIZE[0] * plot.DPI), round(plot.FIGSIZE[1] * plot.DPI))
    assert png_size(path) == expected == (800, 480)
    assert sorted(p.name for p in out.iterdir()) == ["toy.png"]  # the temp file was renamed, not left
    no_val = write_metrics(tmp_path / "noval.metrics.jsonl", SYNTHETIC[:3])
    assert plot.main([str(no_val), "--out", str(out)]) == 1


def test_the_committed_curves_are_the_campaign_runs(tools):
    # docs/curves/*.png are generated from training/campaign/*.metrics.jsonl; each run's shipped step is the
    # step weights.toml records for its checkpoint.
    if not (TRAINING / "campaign").is_dir():
        pytest.skip("the training logs stay in the repository (the sdist leaves them out)")
    rm = tools["run_metrics"]
    shipped = {
        "deepfill_v2_cnum32": 6500,
        "context_encoder_w32": 4400,
        "glcic": 2200,  # 500 + 1700 (glcic2)
        "deepfill_v1_cnum32": 6000,
        "piigan_cnum32": 3100,  # 2100 + 1000 (piigan2)
    }
    for name, step in shipped.items():
        records = rm.read_metrics(TRAINING / "campaign" / f"{name}.metrics.jsonl")
        assert rm.best_step(records) == step
        assert (REPO / "docs" / "curves" / f"{name}.png").is_file()
    v2 = rm.read_metrics(TRAINING / "campaign" / "deepfill_v2_cnum32.metrics.jsonl")
    assert [(old, new) for _, old, new in rm.lr_drops(v2)] == [(3e-4, 1e-4)]


# -- the training scripts: every printed command must be a valid invocation ---------------------------------


def commands():
    """The click commands behind `inpaint train` and `inpaint models export` (parsing only, nothing runs)."""
    import typer

    group = typer.main.get_command(app)
    context = group.make_context("inpaint", ["train", "--help"], resilient_parsing=True)
    models = group.get_command(context, "models")
    export = models.get_command(models.make_context("models", ["export"], resilient_parsing=True), "export")
    return group.get_command(context, "train"), export


def train_config(train_command, args: list[str]) -> TrainConfig:
    """The TrainConfig `inpaint train ARGS` asks for, as the CLI builds it (a bad flag or value raises)."""
    return config_from_sources(None, train_flags(train_command.make_context("train", list(args)).params))


def check_script(lines: list[str], prefix: list[str]) -> dict[str, list[TrainConfig]]:
    """Each run's configs, in order: the new run resolved as `inpaint train` would, then each resume merged
    onto it (refused if it changes what a resume may not). Exports must read a trained run's best file."""
    train_command, export_command = commands()
    runs: dict[str, list[TrainConfig]] = {}
    exported = []
    for line in lines:
        words = shlex.split(line)
        assert words[: len(prefix)] == prefix, line
        sub, args = words[len(prefix)], words[len(prefix) + 1 :]
        if sub == "models":
            assert args[0] == "export"
            params = export_command.make_context("export", args[1:]).params
            exported.append((Path(params["src"]).parent.name, params["name"], params["dst"]))
            continue
        assert sub == "train", line
        config = train_config(train_command, args)
        name = Path(config.out).name
        if config.resume:
            given = {k for k, v in dataclasses.asdict(config).items() if v not in (None, {}, False)}
            assert given <= RESUME_MUTABLE | {"out", "resume"}, line
            runs[name].append(merge_for_resume(runs[name][-1], config, Path(config.out) / "state"))
        else:
            assert name not in runs, f"{name} is started twice"
            assert set(config.model_config or {}) <= set(get_arch(config.model).default_config), line
            runs[name] = [resolve_config(config, get_recipe(config.model))]
    for run, name, dst in exported:
        arch = runs[run][-1].model
        assert name.startswith(arch + ".") and dst.endswith(f"{arch}_{name.split('.', 1)[1]}.safetensors")
    assert {run for run, _, _ in exported} == set(runs)
    return runs


def test_the_parser_check_catches_bad_commands():
    with pytest.raises(Exception, match="--bogus"):
        check_script(["inpaint train --model glcic --data d --out runs/x --bogus 1"], ["inpaint"])
    with pytest.raises(UsageError, match="not a setting"):
        check_script(["inpaint train --model glcic --data d --out runs/x --recipe nope=1"], ["inpaint"])
    with pytest.raises(AssertionError, match="--batch 4"):  # a resume may not change the batch
        check_script(["inpaint train --model glcic --data d --out runs/x", "inpaint train --out runs/x --resume "
                      "--batch 4"], ["inpaint"])  # fmt: skip


def dry_run_all(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "training/train_all.sh", "--dry-run", "../shared/data"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, **env}, check=False, timeout=60,
    )  # fmt: skip


def test_train_all_replays_the_shipped_runs():
    done = dry_run_all(V1_STEPS="4321", PIIGAN_STEPS="2765")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("inpaint ")]
    runs = check_script(lines, ["inpaint"])
    lineages = ("campaign_v2", "campaign_ce", "campaign_glcic", "campaign_deepfill_v1", "campaign_piigan")
    assert set(runs) == {*lineages, "campaign_glcic2", "campaign_piigan2"}
    assert done.stdout.splitlines()[0] == "sh training/make_data.sh ../shared/data runs/data"
    v2 = runs["campaign_v2"]
    assert [(c.steps, c.lr) for c in v2] == [(3487, 3e-4), (6500, 1e-4)]
    assert [c.steps for c in runs["campaign_ce"]] == [5795] and [c.steps for c in runs["campaign_glcic"]] == [500]
    assert [(c.steps, c.lr) for c in runs["campaign_deepfill_v1"]] == [(3136, 3e-4), (4321, 1e-4)]
    assert [(c.steps, c.lr) for c in runs["campaign_piigan"]] == [(1436, 3e-4), (2765, 1e-4)]
    # The continuations start from the run before's best, exported to fp16 into that run's folder.
    assert [(c.steps, c.lr) for c in runs["campaign_glcic2"]] == [(1327, 0.5), (1856, 0.2)]
    assert Path(runs["campaign_glcic2"][0].init).parts[-2:] == ("campaign_glcic", "glcic_campaign-128.safetensors")
    assert [(c.steps, c.lr) for c in runs["campaign_piigan2"]] == [(1002, 1e-4)]
    assert Path(runs["campaign_piigan2"][0].init).parts[-2:] == ("campaign_piigan", "piigan_campaign-128.safetensors")
    for name in ("campaign_deepfill_v1", "campaign_piigan"):
        config = runs[name][0]
        assert config.amp and config.model_config == {"cnum": 32} and config.lr == 3e-4
        assert config.recipe_config == {"recon_steps": 1000000, "hole_weight": 6, "ema": 0.999, "warmup_steps": 100}
    # The shipped runs: the same settings as their committed config.toml, apart from where they stop.
    for run, committed in [("campaign_v2", "deepfill_v2_cnum32"), ("campaign_ce", "context_encoder_w32"),
                           ("campaign_glcic2", "glcic"), ("campaign_deepfill_v1", "deepfill_v1_cnum32"),
                           ("campaign_piigan2", "piigan_cnum32"), ("campaign_glcic", "runs/campaign_glcic"),
                           ("campaign_piigan", "runs/campaign_piigan")]:  # fmt: skip
        saved = load_config(TRAINING / "campaign" / f"{committed}.config.toml")
        replay = dataclasses.asdict(runs[run][-1])
        for key, value in saved.items():
            if key == "steps":
                continue
            mine = replay[key]
            if key in ("data", "val_list", "out", "init"):  # init: the same export, bundled or in the run
                value, mine = Path(value).name, Path(mine).name
            assert mine == value, (run, key)


def test_train_all_skips_the_runs_still_training_until_their_steps_are_set():
    done = dry_run_all(V1_STEPS="", PIIGAN_STEPS="")
    assert done.returncode == 0
    assert "V1_STEPS is empty" in done.stderr and "PIIGAN_STEPS is empty" in done.stderr
    assert "campaign_deepfill_v1" not in done.stdout and "campaign_piigan" not in done.stdout
    assert "--steps 6500" in done.stdout
    bad = dry_run_all(V1_STEPS="12k")
    assert bad.returncode == 2 and "not a step count" in bad.stderr


def test_train_gpu_dry_run_prints_valid_commands(tools, tmp_path, capsys):
    gpu = tools["train_gpu"]
    assert gpu.main(["--dry-run", str(tmp_path / "data"), "--out", str(tmp_path / "gpu")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    bounds = []
    for index, line in enumerate(lines):
        words = shlex.split(line)
        if words[0] == "timeout":  # timeout -s INT -k GRACE SECONDS python -m inpaint_cli train ...
            assert words[1:5] == ["-s", "INT", "-k", str(gpu.KILL_AFTER_S)]
            bounds.append(int(words[5]))
            lines[index] = shlex.join(words[6:])
        else:
            assert words[3:5] == ["models", "export"]
    runs = check_script(lines, [*gpu.INPAINT[:1], "-m", "inpaint_cli"])
    assert set(runs) == {m.arch for m in gpu.MODELS}
    assert all(0 < bound <= 540 for bound in bounds)
    for arch, configs in runs.items():
        first, last = configs[0], configs[-1]
        assert (first.device, first.amp, first.batch, first.masks) == ("cuda", True, 16, "mixed")
        assert first.size == (128 if arch == "context_encoder" else 256) and first.model_config == {}
        assert first.recipe_config["recon_steps"] == 1000000 and first.recipe_config["ema"] == 0.999
        assert last.steps > first.steps == gpu.PROBE_STEPS
    assert [c.lr for c in runs["deepfill_v2"]] == [3e-4, 3e-4, 1e-4]
    switch = runs["deepfill_v2"][1].steps / runs["deepfill_v2"][2].steps
    assert switch == pytest.approx(3487 / 6500, abs=0.01)


def test_gpu_step_plan(tools):
    gpu = tools["train_gpu"]
    # (300 s − 45 s start-up) × 0.85 × 10 it/s = 2167 steps, in whole windows of 10: 2160, after the 100 done.
    assert gpu.plan_steps(10.0, 300.0, done=100) == 2260
    assert gpu.plan_steps(10.0, 30.0, done=100) == 100  # no time left: nothing more
    assert gpu.intervals(4000) == (200, 1000) and gpu.intervals(300) == (50, 250)


class FakeGPU:
    """Stands in for subprocess.run and the clock: every training stage runs until its timeout stops it
    (the worst case), a probe logs 5 it/s, an export takes 5 s and prints its entry."""

    def __init__(self, probe_exit: int = 124, *, saves: bool = True, validates: bool = True) -> None:
        self.now, self.probe_exit, self.commands = 0.0, probe_exit, []
        self.saves, self.validates = saves, validates

    def clock(self) -> float:
        return self.now

    def run(self, command, **kwargs):
        self.commands.append(command)
        if command[0] != "timeout":
            self.now += 5.0
            name = command[command.index("--name") + 1]
            return subprocess.CompletedProcess(command, 0, json.dumps({"name": name, "sha256": "00"}) + "\n")
        self.now += int(command[5])
        args = command[6:]
        if "--resume" in args:
            return subprocess.CompletedProcess(command, 124, "")
        run = Path(args[args.index("--out") + 1])
        run.mkdir(parents=True)
        records = [{"kind": "baseline", "step": 0, "telea_psnr": 21.0}]
        records += [{"kind": "train", "step": s, "it_per_s": 5.0} for s in range(10, 101, 10)]
        records.append({"kind": "val", "step": 100, "psnr": 18.0})
        write_metrics(run / "metrics.jsonl", records)
        if self.saves:  # the probe saved (as at its last step, or at its Ctrl-C stop)
            (run / "last.state.safetensors").write_bytes(b"")
        if self.validates:
            (run / "best.safetensors").write_bytes(b"")
        return subprocess.CompletedProcess(command, self.probe_exit, "")


def gpu_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "val.txt").write_text("photos/a.png\n")
    return data


def test_gpu_campaign_keeps_every_model_within_its_budget(tools, tmp_path):
    gpu = tools["train_gpu"]
    fake = FakeGPU()
    out = tmp_path / "gpu"
    only = ["--only", "deepfill_v2,glcic", "--budget", "300"]
    args = gpu.parse_args([str(gpu_data(tmp_path)), "--out", str(out), *only])
    assert gpu.Campaign(args, runner=fake.run, clock=fake.clock).run(args.models) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [m["arch"] for m in summary["models"]] == ["deepfill_v2", "glcic"] and not summary["tested_on_gpu"]
    for model in summary["models"]:
        # Every stage ran to its limit, and still the model's stages fit its budget.
        assert sum(stage["limit_s"] for stage in model["stages"]) <= 300
        assert model["rate"] == pytest.approx(5.0) and model["rate_source"] == "probe"
        assert all(stage["exit"] == 124 for stage in model["stages"]) and model["export"]["sha256"] == "00"
        assert model["best_step"] == 100 and model["telea_val_hole_psnr"] == 21.0
    assert [s["stage"] for s in summary["models"][0]["stages"]] == ["probe", "lr", "late lr"]
    assert fake.now <= 2 * (300 + 5)
    # (300 − 100 s of probe − 2 × 45 s start-up) × 0.85 × 5 it/s = 467 steps → 460 after the probe's 100.
    assert summary["models"][0]["planned_steps"] == 560


def test_gpu_campaign_stops_on_a_bad_command_line(tools, tmp_path, capsys):
    gpu = tools["train_gpu"]
    fake = FakeGPU(probe_exit=2)
    out = tmp_path / "gpu"
    args = gpu.parse_args([str(gpu_data(tmp_path)), "--out", str(out)])
    assert gpu.Campaign(args, runner=fake.run, clock=fake.clock).run(args.models) == 1
    assert len(fake.commands) == 1  # the first model's probe; the others would fail the same way
    failed = json.loads((out / "summary.json").read_text())["models"]
    assert len(failed) == 1 and "probe exited 2" in failed[0]["failed"]
    assert gpu.main([str(out), "--out", str(out)]) == 1
    assert "val.txt: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu.parse_args([str(out), "--budget", "600"])


def test_a_probe_that_saved_nothing_fails_its_model_only(tools, tmp_path):
    gpu = tools["train_gpu"]
    fake = FakeGPU(saves=False)
    out = tmp_path / "gpu"
    args = gpu.parse_args([str(gpu_data(tmp_path)), "--out", str(out), "--only", "glcic,context_encoder"])
    assert gpu.Campaign(args, runner=fake.run, clock=fake.clock).run(args.models) == 1
    models = json.loads((out / "summary.json").read_text())["models"]
    assert [m["arch"] for m in models] == ["glcic", "context_encoder"]  # the next model still ran
    assert all("the probe saved no state" in m["failed"] for m in models)
    assert len(fake.commands) == 2  # two probes: no resume, no export
    unvalidated = FakeGPU(validates=False)
    args = gpu.parse_args([str(gpu_data(tmp_path / "b")), "--out", str(tmp_path / "b" / "gpu"), "--only", "glcic"])
    assert gpu.Campaign(args, runner=unvalidated.run, clock=unvalidated.clock).run(args.models) == 1
    (model,) = json.loads((tmp_path / "b" / "gpu" / "summary.json").read_text())["models"]
    assert model["failed"].startswith("no validation finished") and model["export"] is None
    assert all(command[0] == "timeout" for command in unvalidated.commands)  # export not attempted
