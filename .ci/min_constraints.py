"""Print a pip constraints file that pins every runtime dependency of pyproject.toml to its declared floor.

    python .ci/min_constraints.py > min.txt && pip install -c min.txt -e . pytest

CI installs the oldest versions the project claims to support and runs a fast subset of the tests, so a
floor in pyproject.toml is a tested statement, not a guess. torch is left out: CI installs the one CPU wheel
it has (torch==2.13.0) first. Environment markers are kept (tomli is only needed before Python 3.11).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SKIPPED = {"torch"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def floors(pyproject: Path) -> list[str]:
    """`name==floor[; marker]` for each dependency with a `>=` floor; an error for one without."""
    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = []
    for requirement in dependencies:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"{pyproject}: cannot read the requirement {requirement!r}")
        name, _, specifiers, marker = match.groups()
        if name.lower() in SKIPPED:
            continue
        floor = re.search(r">=\s*([^,\s]+)", specifiers)
        if floor is None:
            raise SystemExit(f"{pyproject}: {requirement!r} states no floor (>=); CI cannot test its oldest version")
        pins.append(f"{name}=={floor.group(1)}{' ' + marker if marker else ''}")
    return pins


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.stdout.write("".join(f"{pin}\n" for pin in floors(root / "pyproject.toml")))
