"""The one door to every architecture: `register` an arch, `create_model` it, `list_archs` them.

An architecture is a class (a `torch.nn.Module`) that declares its own input contract, in the spirit of
IOPaint: the engine reads the contract to pad, crop or resize an image before calling the model, so no
model-specific branch lives in the engine. Model modules under `inpaint_cli/models/` register themselves
when imported; `_discover()` imports every module in that package, so adding a model is one new file.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class InputContract:
    """What an architecture needs from the engine.

    pad_multiple: H and W must be multiples of this (the engine reflect-pads and crops back).
    fixed_size: the model only accepts this square size (the engine cuts a window around each hole,
        resized to it).
    hole_fraction: for fixed-size models, the largest share of the window side a hole may span (the
        Context Encoder fills only its central 56 of 128 px); windows grow, and are scaled down, to fit.
    comfortable_size: above this longest side `--strategy auto` crops around holes instead of
        running the whole image (memory of contextual attention grows with (HW)^2).
    in_channels: image channels the model consumes (gray and RGBA are converted around it).
    can_sample: the model draws several plausible fills from a latent (`inpaint plural`).
    trainable: `inpaint train` can train it.
    needs_weights: a checkpoint must be loaded before it can fill.
    """

    pad_multiple: int = 1
    fixed_size: int | None = None
    hole_fraction: float = 0.5
    comfortable_size: int | None = None
    in_channels: int = 3
    can_sample: bool = False
    trainable: bool = True
    needs_weights: bool = True


@dataclass(frozen=True)
class ArchSpec:
    name: str
    cls: Callable[..., Any]
    contract: InputContract
    summary: str
    paper: str = ""
    default_config: dict[str, Any] = field(default_factory=dict)


_ARCHS: dict[str, ArchSpec] = {}
_discovered = False


def constructor_defaults(cls: type, *, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The keyword arguments of `cls.__init__` that have defaults (name → default), minus `skip`: how
    architectures declare their config and recipes their settings."""
    return {
        key: param.default
        for key, param in inspect.signature(cls.__init__).parameters.items()
        if key != "self" and key not in skip and param.default is not inspect.Parameter.empty
    }


def register(name: str, *, contract: InputContract, summary: str, paper: str = "") -> Callable[[type], type]:
    """Class decorator: make `cls` buildable as `create_model(name, **config)`.

    The config keys and their defaults are the keyword arguments of `cls.__init__`, so they are declared
    once, in the constructor signature."""

    def wrap(cls: type) -> type:
        if name in _ARCHS and _ARCHS[name].cls is not cls:
            raise ValueError(f"architecture {name!r} is registered twice")
        cls.arch_name = name
        cls.contract = contract
        _ARCHS[name] = ArchSpec(name, cls, contract, summary, paper, constructor_defaults(cls))
        return cls

    return wrap


_RECIPES: dict[str, Callable[..., Any]] = {}


def register_recipe(arch: str) -> Callable[[type], type]:
    """Class decorator for an architecture's `TrainingRecipe` (defined next to it in its model file)."""

    def wrap(cls: type) -> type:
        _RECIPES[arch] = cls
        return cls

    return wrap


def get_recipe(arch: str) -> Any:
    """The training recipe class of `arch`; UsageError if the arch cannot be trained."""
    spec = get_arch(arch)
    if not spec.contract.trainable or arch not in _RECIPES:
        trainable = ", ".join(sorted(_RECIPES))
        raise UsageError(f"{arch} cannot be trained (it has no training recipe); trainable: {trainable}")
    return _RECIPES[arch]


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    from . import models

    for info in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"{models.__name__}.{info.name}")


def get_arch(name: str) -> ArchSpec:
    _discover()
    try:
        return _ARCHS[name]
    except KeyError:
        known = ", ".join(sorted(_ARCHS))
        raise UsageError(f"unknown architecture {name!r}; known: {known}") from None


def list_archs(pattern: str = "*") -> list[ArchSpec]:
    _discover()
    return [spec for name, spec in sorted(_ARCHS.items()) if fnmatch.fnmatchcase(name, pattern)]


def create_model(arch: str, **config: Any) -> Any:
    """Build an architecture with its default config updated by `config` (random init, eval mode)."""
    spec = get_arch(arch)
    unknown = set(config) - set(spec.default_config)
    if unknown:
        raise UsageError(
            f"{arch}: unknown config keys {sorted(unknown)}; known: {sorted(spec.default_config)}"
        )
    model = spec.cls(**{**spec.default_config, **config})
    return model.eval()
