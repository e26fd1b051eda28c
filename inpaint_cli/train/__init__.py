"""`inpaint train`: every model trains with its paper's recipe, on one process or many (torchrun).

    from inpaint_cli.train import TrainConfig, train

    summary = train(TrainConfig(model="deepfill_v2", data="photos/", out="runs/v2", steps=1000))

`inpaint train --help` runs the same loop from the shell (also under torchrun: `-m inpaint_cli train`). See
`loop.py` for the run directory, exact resume, AMP and distributed training, `data.py` for the data.
"""

from __future__ import annotations

from .loop import DEFAULTS, TrainConfig, config_to_toml, load_config, train

__all__ = ["DEFAULTS", "TrainConfig", "config_to_toml", "load_config", "train"]
