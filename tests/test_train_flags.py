"""`inpaint train`'s flags and `TrainConfig`'s fields are one list: each field has its flag, each flag its field,
and the types and defaults the config checks are the ones the fields declare."""

from __future__ import annotations

import dataclasses

import typer

from inpaint_cli.cli import app
from inpaint_cli.cli.train import train_flags
from inpaint_cli.train import TrainConfig
from inpaint_cli.train.config import DEFAULTS, FIELD_TYPES, FLAG_NAMES, config_from_sources, config_to_toml

RUN_OPTIONS = {"config": "--config", "progress": "--progress", "as_json": "--json"}  # how to run, not what


def train_command():
    group = typer.main.get_command(app)
    return group.get_command(group.make_context("inpaint", ["train", "--help"], resilient_parsing=True), "train")


def test_every_config_field_has_its_flag_and_every_flag_its_field():
    options = {param.name: param.opts for param in train_command().params}
    fields = [field.name for field in dataclasses.fields(TrainConfig)]
    assert set(options) - set(RUN_OPTIONS) == set(fields)
    for name in fields:
        assert f"--{FLAG_NAMES.get(name, name.replace('_', '-'))}" in options[name], name
    for name, flag in RUN_OPTIONS.items():
        assert flag in options[name]


def test_types_defaults_and_flag_names_are_read_from_the_fields():
    assert list(FIELD_TYPES) == [field.name for field in dataclasses.fields(TrainConfig)]
    assert (FIELD_TYPES["lr"], FIELD_TYPES["steps"], FIELD_TYPES["amp"], FIELD_TYPES["resume"]) == (
        float,
        int,
        bool,
        bool,
    )
    assert (FIELD_TYPES["val_list"], FIELD_TYPES["model_config"], FIELD_TYPES["synthetic"]) == (str, dict, float)
    assert DEFAULTS == {
        "steps": 10_000,
        "masks": "paper",
        "device": "auto",
        "amp": False,
        "seed": 0,
        "workers": 0,
        "val_every": 1000,
        "save_every": 1000,
        "log_every": 10,
        "val_count": 16,
        "balance": False,
        "synthetic": 0.0,
        "snapshot_every": 0,
    }
    assert FLAG_NAMES == {"model_config": "set", "recipe_config": "recipe"}


def test_the_command_line_becomes_the_config_by_field_name():
    args = ["--model", "glcic", "--val-list", "val.txt", "--short-side", "160", "--no-amp", "--lr", "2e-4"]
    args += ["--set", "cnum=32", "--recipe", "gan_weight=0.1", "--recipe", "phase_steps=[3,1]", "--resume"]
    config = config_from_sources(None, train_flags(train_command().make_context("train", args).params))
    assert config == TrainConfig(
        model="glcic",
        val_list="val.txt",
        short_side=160,
        amp=False,
        lr=2e-4,
        resume=True,
        model_config={"cnum": 32},
        recipe_config={"gan_weight": 0.1, "phase_steps": [3, 1]},
    )
    untouched = config_from_sources(None, train_flags(train_command().make_context("train", []).params))
    assert untouched == TrainConfig()  # nothing given: every field "not given", --resume off
    assert config_to_toml(config).splitlines()[1:5] == [
        'model = "glcic"',
        'val-list = "val.txt"',
        "short-side = 160",
        "lr = 0.0002",
    ]
