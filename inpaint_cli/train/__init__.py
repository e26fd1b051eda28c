"""`inpaint train`: every model trains with its paper's recipe, on one process or many (torchrun).

    from inpaint_cli.train import TrainConfig, train

    summary = train(TrainConfig(model="deepfill_v2", data="photos/", out="runs/v2", steps=1000))

`inpaint train --help` runs the same loop from the shell (also under torchrun: `-m inpaint_cli train`).
The package, one concern per module:
  config.py       TrainConfig, its TOML file, defaults, and how flags, file and a resumed run combine
  loop.py         the Trainer: set-up, the step loop (AMP, EMA, log/validate/save schedule), train()
  state.py        the run directory and the training state file that makes --resume exact
  distributed.py  torchrun: the process group, DDP and the gradient-averaging hook
  validate.py     hole metrics on the val cases, the Telea baseline, preview sheets
  data.py         which files train, crops, flips and masks as pure functions of (seed, step, rank)
  progress.py     the progress bar and Ctrl-C
"""

from __future__ import annotations

from .config import DEFAULTS, TrainConfig, config_to_toml, load_config
from .loop import train

__all__ = ["DEFAULTS", "TrainConfig", "config_to_toml", "load_config", "train"]
