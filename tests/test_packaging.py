"""The built wheel carries weights.toml and the bundled checkpoints, and fills from a fresh venv."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer

from inpaint_cli.weights import read_toml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE, EXAMPLE_MASK = REPO / "examples" / "meadow.png", REPO / "examples" / "meadow_mask.png"
BUNDLE_BUDGET = 40 * 10**6  # bytes of bundled checkpoints the package may carry


def bundled_entries() -> dict[str, dict]:
    """weights.toml entries whose weights ship inside the package."""
    catalog = read_toml(REPO / "weights.toml", "the catalog", "")
    return {
        name: entry
        for name, entry in catalog["models"].items()
        if str(entry.get("source", "")).startswith("bundled:")
    }


def test_bundled_checkpoints_fit_the_budget_and_describe_themselves():
    entries = bundled_entries()
    files = {entry["source"].removeprefix("bundled:") for entry in entries.values()}
    on_disk = {p.name for p in (REPO / "inpaint_cli" / "bundled").glob("*.safetensors")}
    assert files == on_disk, "every bundled file has exactly one catalog entry"
    total = sum((REPO / "inpaint_cli" / "bundled" / name).stat().st_size for name in files)
    assert total <= BUNDLE_BUDGET, f"bundled checkpoints take {total:,} bytes"
    for name, entry in entries.items():
        assert entry["size"] == (REPO / "inpaint_cli" / "bundled" / entry["source"][8:]).stat().st_size, name
        for key in ("licence", "data", "resolution", "steps", "wall_time", "val_hole_psnr", "val_hole_ssim"):
            assert key in entry, f"{name} has no {key}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="the wheel is built with hatchling (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("inpaint_cli-*.whl")
    return built


def test_wheel_contains_catalog_and_bundled_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "inpaint_cli/bundled/weights.toml" in names
    assert "inpaint_cli/bundled/archs.json" in names  # `models list` reads it instead of importing torch
    bundled = sorted(p.name for p in (REPO / "inpaint_cli" / "bundled").glob("*.safetensors"))
    assert bundled, "no bundled checkpoint in the source tree"
    for name in bundled:
        assert f"inpaint_cli/bundled/{name}" in names
    assert not any(name.startswith("tests/") for name in names)


def lend_dependencies(python: Path) -> None:
    """Let the new venv at `python` import this interpreter's packages (torch & co., no download).

    `system_site_packages=True` would lend the *base* interpreter's site-packages, which inside a venv
    (the README's setup) lacks typer and the rest. A .pth file of plain paths appends the site-packages
    this test runs with after the new venv's own, so the installed wheel wins over the editable checkout
    (plain paths: the .pth files in them, such as the editable install's, are not run).
    """
    user_site = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    lent = [path for path in (*site.getsitepackages(), *user_site) if os.path.isdir(path)]
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(target) / "_lent_test_dependencies.pth").write_text("".join(f"{path}\n" for path in lent))


def test_installed_wheel_fills_outside_the_repository(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    lend_dependencies(python)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "INPAINT_WEIGHTS")}
    where = subprocess.run(
        [str(python), "-c", "import inpaint_cli, typer; print(inpaint_cli.__file__); print(typer.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    package_file, typer_file = where.stdout.splitlines()
    assert str(env_dir) in package_file
    # The dependencies are the ones this test runs with (inside a venv: that venv's, not the base Python's).
    assert Path(typer_file) == Path(typer.__file__)
    env["HF_HUB_OFFLINE"] = "1"  # everything below must work without a network
    env["HF_HOME"] = str(tmp_path / "empty-hf-home")
    inpaint = env_dir / "bin" / "inpaint"

    def run_installed(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(inpaint), *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
        )

    for model in ("telea", *bundled_entries()):
        out = tmp_path / f"{model}.png"
        done = run_installed("fill", str(EXAMPLE), "--mask", str(EXAMPLE_MASK), "--model", model, "--out", str(out))
        assert done.returncode == 0, done.stderr
        before, after = cv2.imread(str(EXAMPLE)), cv2.imread(str(out))
        hole = cv2.imread(str(EXAMPLE_MASK), cv2.IMREAD_GRAYSCALE) > 127
        assert np.array_equal(after[~hole], before[~hole])
        # A fill, not noise: uniform noise is ~92 grey levels off here. Telea is 12 off, the DeepFills
        # 17-18, PiiGAN 24; GLCIC's short-trained BatchNorm statistics make it fill darkly (49, model card).
        assert np.abs(after[hole].astype(int) - before[hole]).mean() < 60, model
    verify = run_installed("models", "verify")
    assert verify.returncode == 0 and "mismatch" not in verify.stdout
    samples = tmp_path / "samples"
    done = run_installed(
        "plural", str(EXAMPLE), "--mask", str(EXAMPLE_MASK), "--model", "piigan", "--n", "2", "--out-dir", str(samples)
    )
    assert done.returncode == 0, done.stderr
    first, second = (cv2.imread(str(p)) for p in sorted(samples.glob("*.png")))
    assert not np.array_equal(first, second), "two PiiGAN samples should differ in the hole"


def test_readme_cites_only_files_in_the_repository():
    """The repository stands alone: every local link and every *.md file the README names exists."""
    import re

    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)", readme)
    named = re.findall(r"\b([\w./-]+\.md)\b", readme)
    local = {target for target in [*links, *named] if "://" not in target}
    assert local, "the README links its own files"
    missing = sorted(target for target in local if not (REPO / target).exists())
    assert missing == [], f"the README cites files that are not in the repository: {missing}"


def test_the_arch_manifest_matches_the_models():
    import json

    from inpaint_cli import registry

    assert json.loads(registry.ARCH_MANIFEST.read_text()) == json.loads(json.dumps(registry.arch_manifest())), (
        "bundled/archs.json is stale: run `python -m inpaint_cli.registry`"
    )


@pytest.mark.parametrize("argv", [["models", "list"], ["models", "info", "deepfill_v2"], ["models", "list", "--json"]])
def test_models_list_and_info_answer_without_importing_torch(argv):
    script = (
        "import sys\nfrom inpaint_cli import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit as done:\n"
        "    assert not done.code\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script, *argv], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "deepfill_v2" in done.stdout
