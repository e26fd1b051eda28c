"""The one door to every architecture: `register` an arch, `create_model` it, `list_archs` them.

An architecture is a class (a `torch.nn.Module`) that declares its own input contract, in the spirit of
IOPaint: the engine reads the contract to pad, crop or resize an image before calling the model, so no
model-specific branch lives in the engine. Model modules under `inpaint_cli/models/` register themselves
when imported; `_discover()` imports every module in that package, so adding a model is one new file.

Importing the model modules imports torch (seconds). What `models list/info` show about an architecture
(contract, summary, config) is therefore also kept in `bundled/archs.json`, which `arch_infos` reads, with
the names of the model modules it was written from: where the modules on disk differ (a model file added
or removed since), `arch_infos` imports the models instead, so a new model file is listed at once.
`python -m inpaint_cli.registry` rewrites the file; tests/test_packaging.py fails while it is stale, and
building the wheel (hatch_build.py) writes a fresh one into the wheel wherever the models can be imported.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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
    architectures declare their config and recipes their settings. A constructor that passes `**kwargs` on
    to its base also takes the base's keyword arguments (DeepFill v1 and v2 inherit their TF-weights keys).
    """
    defaults: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters
        for key, param in parameters.items():
            if key != "self" and key not in skip and param.default is not inspect.Parameter.empty:
                defaults.setdefault(key, param.default)
        if not any(param.kind is inspect.Parameter.VAR_KEYWORD for param in parameters.values()):
            break
    return defaults


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
        if arch in _RECIPES and _RECIPES[arch] is not cls:
            twice = f"{_RECIPES[arch].__name__}, {cls.__name__}"
            raise ValueError(f"a training recipe for {arch!r} is registered twice ({twice})")
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


ARCH_MANIFEST = Path(__file__).resolve().parent / "bundled" / "archs.json"


@dataclass(frozen=True)
class ArchInfo:
    """An architecture as `models list/info` describe it: an `ArchSpec` without its class."""

    name: str
    contract: InputContract
    summary: str
    paper: str
    default_config: dict[str, Any]


def _info_of(spec: ArchSpec) -> ArchInfo:
    return ArchInfo(spec.name, spec.contract, spec.summary, spec.paper, spec.default_config)


def model_modules() -> list[str]:
    """The names of the modules in `inpaint_cli/models/` (those `_discover` imports), without importing them."""
    from . import models

    return sorted(info.name for info in pkgutil.iter_modules(models.__path__))


def _read_manifest() -> dict[str, Any] | None:
    """The architectures `bundled/archs.json` describes (name → description), or None where it is missing
    or was written from other model modules than those here."""
    if not ARCH_MANIFEST.is_file():
        return None
    manifest = json.loads(ARCH_MANIFEST.read_text(encoding="utf-8"))
    if manifest.get("model_modules") != model_modules():
        return None
    return manifest["archs"]


def arch_infos(pattern: str = "*") -> list[ArchInfo]:
    """Every architecture matching `pattern`, without importing the model modules (nor torch): the
    shipped ones from `bundled/archs.json`, plus any registered in this process already. Where that file
    is missing or out of date (`_read_manifest`), the model modules are imported and asked instead."""
    manifest = _read_manifest()
    if manifest is None:
        _discover()
    infos = {name: _info_of(spec) for name, spec in _ARCHS.items()}
    for name, data in (manifest or {}).items():
        if name not in infos:
            contract = InputContract(**data["contract"])
            infos[name] = ArchInfo(name, contract, data["summary"], data["paper"], data["default_config"])
    return [info for name, info in sorted(infos.items()) if fnmatch.fnmatchcase(name, pattern)]


def arch_info(name: str) -> ArchInfo:
    """One architecture's description (as `arch_infos`); UsageError naming the known ones."""
    found = arch_infos(name) if not any(c in name for c in "*?[") else []
    if not found:
        known = ", ".join(info.name for info in arch_infos())
        raise UsageError(f"unknown architecture {name!r}; known: {known}")
    return found[0]


def shipped_archs() -> list[ArchSpec]:
    """The architectures of the package's own model modules (not those a test or plug-in registers)."""
    _discover()
    from . import models

    return [spec for spec in list_archs() if spec.cls.__module__.startswith(f"{models.__name__}.")]


def arch_manifest() -> dict[str, Any]:
    """What `bundled/archs.json` holds, built from the registered classes of `inpaint_cli/models/`."""
    archs = {
        spec.name: {
            "contract": dataclasses.asdict(spec.contract),
            "summary": spec.summary,
            "paper": spec.paper,
            "default_config": spec.default_config,
        }
        for spec in shipped_archs()
    }
    return {"model_modules": model_modules(), "archs": archs}


def arch_manifest_text() -> str:
    return json.dumps(arch_manifest(), indent=2, sort_keys=True) + "\n"


def write_arch_manifest() -> None:
    ARCH_MANIFEST.write_text(arch_manifest_text(), encoding="utf-8")


def check_model_settings(arch: str, settings: dict[str, Any], *, flag: str = "--set") -> dict[str, Any]:
    """Command-line config values for `arch` (`--set KEY=VALUE`) checked against its constructor: an unknown
    key or a value of the wrong type is a UsageError naming the flag, key, value and what the key takes."""
    from .config_values import check_settings, constructor_hints

    spec = get_arch(arch)
    return check_settings(settings, spec.default_config, constructor_hints(spec.cls), flag=flag, owner=arch)


def create_configured(arch: str, config: dict[str, Any], settings: dict[str, Any], *, flag: str = "--set") -> Any:
    """`create_model(arch, **config, **settings)` where `settings` came from the command line: checked first
    (`check_model_settings`), and what the constructor refuses is a UsageError naming them."""
    from .config_values import building

    checked = check_model_settings(arch, settings, flag=flag)
    with building(checked, flag=flag, owner=arch):
        return create_model(arch, **{**config, **checked})


def create_model(arch: str, **config: Any) -> Any:
    """Build an architecture with its default config updated by `config` (random init, eval mode)."""
    spec = get_arch(arch)
    unknown = set(config) - set(spec.default_config)
    if unknown:
        raise UsageError(f"{arch}: unknown config keys {sorted(unknown)}; known: {sorted(spec.default_config)}")
    model = spec.cls(**{**spec.default_config, **config})
    return model.eval()


if __name__ == "__main__":
    # Run as a script this file is `__main__`; the models register into the package's module.
    from inpaint_cli import registry

    registry.write_arch_manifest()
    print(registry.ARCH_MANIFEST)
