"""What `inpaint train` runs: the config schema, its TOML round trip, and how a config is settled.

Every `TrainConfig` field mirrors a flag (`--val-list` ↔ val_list; FLAG_NAMES lists the two that differ);
the fields declare their types and defaults, which FIELD_TYPES and DEFAULTS are read from.
A config comes from three places, in rising precedence: a `--config` TOML file, the flags, and, on
`--resume`, the run's own saved config, of which only RESUME_MUTABLE fields may change
(`config_from_sources`, then `merge_for_resume`). A new run's config is completed with the recipe's and
the documented defaults and checked (`resolve_config`); `config_to_toml` writes the result into the run
directory in the format `load_config` reads back.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config_values import check_settings, constructor_hints
from ..errors import InpaintError, UsageError
from ..weights import read_toml, toml_key, toml_value
from .data import MASK_KINDS


def _given(default: Any = None) -> Any:
    """A field that is None until given ("not given"); `default` is what a new run then gets (None: the
    recipe's, or nothing)."""
    return dataclasses.field(default=None, metadata={"default": default})


@dataclass
class TrainConfig:
    """What `inpaint train` does. Every field is a flag (`--val-list` ↔ val_list) and a key of the TOML file;
    this declaration is the one place that says so: `FIELD_TYPES`, `DEFAULTS` and `FLAG_NAMES` (a field's
    flag where it is not the field's name) are read from it, and the CLI passes every `train` option to it
    by name.

    None means "not given": the default beside the field, the recipe's (size, batch, lr), or, with `resume`,
    the value the run was started with.
    """

    model: str | None = _given()  # the arch name (deepfill_v2, ...)
    data: str | None = _given()  # the folder of training images (searched recursively)
    # Validation images: a folder `val`, or `val_list`, a file of names relative to `data` (not trained on);
    # with neither, validation scores `val_count` training images (fit, not generalisation).
    val: str | None = _given()
    val_list: str | None = _given()
    out: str | None = _given()  # the run directory
    size: int | None = _given()  # the square crop
    # Resize every image so its shorter side is this many pixels before cropping (the scale that
    # `inpaint benchmark --size` scores at); None: crop the files at their own resolution.
    short_side: int | None = _given()
    batch: int | None = _given()
    steps: int | None = _given(10_000)
    lr: float | None = _given()
    masks: str | None = _given("paper")  # paper | freeform | box | mixed
    device: str | None = _given("auto")  # auto | cpu | cuda[:N] | mps
    amp: bool | None = _given(False)  # bf16 autocast
    seed: int | None = _given(0)
    workers: int | None = _given(0)  # data-loading threads (0 = in process)
    init: str | None = _given()  # a generator checkpoint to fine-tune from
    resume: bool = False  # continue the run in `out` exactly
    val_every: int | None = _given(1000)
    save_every: int | None = _given(1000)
    log_every: int | None = _given(10)
    # Previews are written at the validation passes whose step is a multiple of it, and at the end;
    # None: val_every.
    preview_every: int | None = _given()
    val_count: int | None = _given(16)  # validation cases
    # Draw each top-level folder of `data` equally often (e.g. photos/ as often as textures/).
    balance: bool | None = _given(False)
    synthetic: float | None = _given(0.0)  # the share of samples that are smooth synthetic images
    # Also keep the shipped generator of every validation pass whose step is a multiple of N as
    # snapshots/step_NNNNNN.safetensors (0 = off), to choose a step afterwards by other measures than the
    # validation PSNR that picks best.safetensors (an adversarial phase trades PSNR for texture).
    snapshot_every: int | None = _given(0)
    # Arch config overrides, e.g. {"cnum": 48}.
    model_config: dict[str, Any] | None = dataclasses.field(default=None, metadata={"flag": "set"})
    # Keyword arguments of the model's training recipe beyond the paper's defaults, e.g. {"gan_weight": 0.1}
    # for DeepFill v2 or {"phase_steps": [300, 30]} for GLCIC (`recipe_settings(arch)` lists them).
    recipe_config: dict[str, Any] | None = dataclasses.field(default=None, metadata={"flag": "recipe"})


def _value_type(hint: Any) -> type:
    """The type a given value must have: `int | None` -> int, `dict[str, Any] | None` -> dict."""
    (kind,) = [arg for arg in typing.get_args(hint) if arg is not type(None)] or [hint]
    return typing.get_origin(kind) or kind


_FIELDS = dataclasses.fields(TrainConfig)
_HINTS = typing.get_type_hints(TrainConfig)
FIELD_TYPES: dict[str, type] = {field.name: _value_type(_HINTS[field.name]) for field in _FIELDS}
DEFAULTS: dict[str, Any] = {
    field.name: field.metadata["default"] for field in _FIELDS if field.metadata.get("default") is not None
}
FLAG_NAMES = {field.name: field.metadata["flag"] for field in _FIELDS if "flag" in field.metadata}
PATH_FIELDS = ("data", "val", "val_list", "out", "init")
TABLE_FIELDS = ("model_config", "recipe_config")
# What a resumed run may change: when and how often things happen and where, never what is trained. (A
# different device, e.g. a CUDA run continued on a CPU, resumes correctly but not bit for bit.)
RESUME_MUTABLE = frozenset(
    {
        "steps",
        "lr",
        "val_every",
        "save_every",
        "log_every",
        "preview_every",
        "snapshot_every",
        "workers",
        "resume",
        "device",
    }
)


def _check_type(name: str, value: Any, where: str) -> Any:
    expected = FIELD_TYPES[name]
    ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        if expected is float
        else isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    )
    if not ok:
        raise InpaintError(f"{where}: {name} must be a {expected.__name__}, got {value!r}")
    return float(value) if expected is float else value


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML training config: keys mirror the flags (`val-list` or `val_list`), plus [model_config]
    and [recipe_config] tables. Relative paths are relative to the file's folder. Returns TrainConfig field
    names → values; unknown keys and wrong types are an InpaintError naming the file and key."""
    config_path = Path(path)
    parsed = read_toml(config_path, "the config", "; check --config")
    values: dict[str, Any] = {}
    for key, value in parsed.items():
        name = key.replace("-", "_")
        if name not in FIELD_TYPES:
            known = ", ".join(k.replace("_", "-") for k in FIELD_TYPES)
            raise InpaintError(f"{config_path}: unknown key {key!r}; known keys: {known}")
        value = _check_type(name, value, str(config_path))
        if name in PATH_FIELDS:
            value = str((config_path.parent / Path(value).expanduser()).resolve())
        values[name] = value
    return values


def config_to_toml(config: TrainConfig | dict[str, Any]) -> str:
    """The config as TOML that `load_config` reads back (flat keys, None omitted, the tables last)."""
    values = dataclasses.asdict(config) if isinstance(config, TrainConfig) else dict(config)
    lines = ["# inpaint train: the resolved configuration of this run (`inpaint train --config` reads it)"]
    for name in FIELD_TYPES:
        value = values.get(name)
        if value is None or name in (*TABLE_FIELDS, "resume"):
            continue
        lines.append(f"{name.replace('_', '-')} = {toml_value(value)}")
    for table in TABLE_FIELDS:
        settings = values.get(table) or {}
        if settings:
            lines.append("")
            lines.append(f"[{table}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in settings.items())
    return "\n".join(lines) + "\n"


def config_from_sources(config_file: str | os.PathLike[str] | None, flags: dict[str, Any]) -> TrainConfig:
    """The config `inpaint train` was asked for: the `--config` file's values (if any), with every flag that
    was given on top. `flags` maps TrainConfig field names to values, None meaning "not given"; the tables
    (model_config ← --set, recipe_config ← --recipe) add their keys to the file's table, and an empty one
    counts as not given."""
    values = load_config(config_file) if config_file else {}
    for name, value in flags.items():
        if name in TABLE_FIELDS:
            if value:
                values[name] = {**values.get(name, {}), **value}
        elif value is not None:
            values[name] = value
    return TrainConfig(**values)


_RECIPE_LOOP_ARGUMENTS = frozenset({"generator", "lr", "total_steps", "image_size"})  # what the loop passes


def recipe_settings_of(recipe_cls: Any) -> dict[str, Any]:
    """The keyword settings a recipe takes beyond what the loop passes (name → default): its own and those
    every recipe inherits from `TrainingRecipe` (recon_steps, hole_weight, ema, warmup_steps)."""
    from ..registry import constructor_defaults

    settings: dict[str, Any] = {}
    for cls in reversed(recipe_cls.__mro__):
        if "__init__" in vars(cls) and cls is not object:
            settings.update(constructor_defaults(cls, skip=_RECIPE_LOOP_ARGUMENTS))
    return settings


def recipe_settings(arch: str) -> dict[str, Any]:
    """`--recipe` settings of an architecture's training recipe (name → default)."""
    from ..registry import get_recipe

    return recipe_settings_of(get_recipe(arch))


def resolve_config(config: TrainConfig, recipe_cls: Any) -> TrainConfig:
    """A new run's complete config: defaults filled in (the recipe's size, batch and lr, then DEFAULTS),
    paths absolutised and every value checked (a UsageError naming the flag)."""
    from ..registry import check_model_settings

    values = dataclasses.asdict(config)
    for name in ("model", "data", "out"):
        if not values[name]:
            raise UsageError(f"--{name} is required")
    for name, default in DEFAULTS.items():
        if values[name] is None:
            values[name] = default
    if values["size"] is None:
        values["size"] = recipe_cls.default_size
    if values["batch"] is None:
        values["batch"] = recipe_cls.default_batch
    values["lr"] = float(values["lr"] if values["lr"] is not None else recipe_cls.default_lr)
    if values["preview_every"] is None:
        values["preview_every"] = values["val_every"]
    values["model_config"] = dict(values["model_config"] or {})
    values["recipe_config"] = dict(values["recipe_config"] or {})
    # Wrong keys and types of --set / --recipe are usage errors now, not tracebacks once the networks are built.
    if values["model_config"]:
        values["model_config"] = check_model_settings(values["model"], values["model_config"], flag="--set")
    values["recipe_config"] = check_settings(
        values["recipe_config"],
        recipe_settings_of(recipe_cls),
        constructor_hints(recipe_cls),
        flag="--recipe",
        owner=f"the {values['model']} recipe",
    )
    for name in PATH_FIELDS:
        if values[name]:
            values[name] = str(Path(values[name]).expanduser().resolve())
    for name in ("size", "batch", "steps", "val_every", "save_every", "log_every", "preview_every"):
        if int(values[name]) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {values[name]})")
    if values["short_side"] is not None and values["short_side"] < values["size"]:
        raise UsageError(f"--short-side {values['short_side']} is below --size {values['size']}; crops would not fit")
    if int(values["batch"]) < recipe_cls.min_batch:
        raise UsageError(
            f"--batch {values['batch']}: the {values['model']} recipe needs at least {recipe_cls.min_batch} images "
            "per batch (its batch-norm layers compute statistics over the batch)"
        )
    for name in ("workers", "val_count", "snapshot_every"):
        if int(values[name]) < 0:
            raise UsageError(f"--{name.replace('_', '-')} cannot be negative (got {values[name]})")
    if not values["lr"] > 0:
        raise UsageError(f"--lr must be positive (got {values['lr']})")
    if values["masks"] not in MASK_KINDS:
        raise UsageError(f"--masks {values['masks']}: expected one of {', '.join(MASK_KINDS)}")
    if values["val"] and values["val_list"]:
        raise UsageError("--val and --val-list are exclusive; pass a folder or a list, not both")
    return TrainConfig(**values)


def merge_for_resume(saved: TrainConfig, given: TrainConfig, state_path: Path) -> TrainConfig:
    """The saved config with the changes a resume may make; anything else that differs is refused."""
    merged = dataclasses.asdict(saved)
    for name, value in dataclasses.asdict(given).items():
        if value is None or name == "resume":
            continue
        if name in PATH_FIELDS:
            value = str(Path(value).expanduser().resolve())
        if name == "out":  # the run directory may have been moved; it is where the state was found
            merged[name] = value
            continue
        if name == "lr":
            value = float(value)
        if name in RESUME_MUTABLE:
            merged[name] = value
        elif value != merged[name]:
            flag = FLAG_NAMES.get(name, name.replace("_", "-"))
            raise UsageError(
                f"--resume: --{flag} {value!r} differs from {merged[name]!r} in {state_path}; a resumed run "
                f"keeps its config (only steps, lr, workers, device and the val/save/log/preview intervals may "
                f"change) — drop --{flag} or start a new run with another --out"
            )
    merged["resume"] = True
    return TrainConfig(**merged)
