"""Wheel build hook: the wheel's `inpaint_cli/bundled/archs.json` is written from the model modules it ships.

`models list` reads that file instead of importing the models (and torch). Where this build environment can
import the models (torch installed: `pip wheel --no-build-isolation`, CI), the hook writes the file afresh
into the wheel, so a model file added without running `python -m inpaint_cli.registry` is still described.
In an isolated build without torch the committed file ships as it is: tests/test_packaging.py fails while
it is stale, and at run time the registry imports the models itself when the file names other modules than
those installed (`registry._read_manifest`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MANIFEST = "inpaint_cli/bundled/archs.json"
WRITE_MANIFEST = "import sys; from inpaint_cli import registry; sys.stdout.write(registry.arch_manifest_text())"


class ArchManifestHook(BuildHookInterface):
    PLUGIN_NAME = "custom"
    scratch: str | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":  # an editable install reads the source tree
            return
        done = subprocess.run(
            [sys.executable, "-c", WRITE_MANIFEST],
            cwd=self.root,
            env={**os.environ, "PYTHONPATH": self.root, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no error output"])[-1]
            self.app.display_warning(f"{MANIFEST}: shipping the committed file; cannot import the models ({reason})")
            return
        self.scratch = tempfile.mkdtemp(prefix="inpaint-archs-")
        written = Path(self.scratch) / "archs.json"
        written.write_text(done.stdout, encoding="utf-8")
        build_data["force_include"][str(written)] = MANIFEST
        committed = Path(self.root) / MANIFEST
        if not committed.is_file() or committed.read_text(encoding="utf-8") != done.stdout:
            self.app.display_warning(
                f"{MANIFEST} is stale: the wheel carries a fresh one (python -m inpaint_cli.registry)"
            )

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
