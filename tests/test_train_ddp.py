"""Distributed training: `torchrun --nproc-per-node 2 -m inpaint_cli train` on CPU (gloo) for a few steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from inpaint_cli.train.state import fingerprint
from inpaint_cli.weights import load_model, read_checkpoint

REPO = Path(__file__).resolve().parents[1]


def test_two_cpu_processes_train_in_lockstep(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        noise = rng.uniform(0, 255, (10, 12, 3)).astype(np.float32)
        cv2.imwrite(str(data / f"{i}.png"), cv2.resize(noise, (44, 40), interpolation=cv2.INTER_CUBIC).astype(np.uint8))
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "inpaint_cli", "train",
        "--model", "deepfill_v2", "--set", "cnum=8", "--data", str(data), "--out", str(run),
        "--size", "32", "--batch", "2", "--steps", "3", "--log-every", "1", "--val-count", "2",
        "--no-progress", "--json",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    summaries = sorted(
        (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")), key=lambda s: s["rank"]
    )
    assert [s["rank"] for s in summaries] == [0, 1] and all(s["world_size"] == 2 for s in summaries)
    # Both ranks end with identical weights (the loop also checks this itself, over every network).
    assert summaries[0]["weights_sha256"] == summaries[1]["weights_sha256"]
    assert summaries[0]["generator_sha256"] == summaries[1]["generator_sha256"]
    assert "DistributedDataParallel" in done.stderr and "all_reduce before optimizer step" in done.stderr

    # Rank 0 alone wrote the files, once per step; its export is what both ranks trained.
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]
    model = load_model(run / "last.safetensors")
    assert fingerprint(model.state_dict()) == summaries[0]["generator_sha256"]
    assert read_checkpoint(run / "last.safetensors").provenance["world_size"] == 2
    assert not any(p.name.startswith(".") for p in run.rglob("*"))
