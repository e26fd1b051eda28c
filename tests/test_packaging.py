"""The built wheel carries weights.toml and the bundled checkpoints, and fills from a fresh venv; the sdist
carries what a user builds and tests from, and not the benchmark and training results."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
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
        name: entry for name, entry in catalog["models"].items() if str(entry.get("source", "")).startswith("bundled:")
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
        return subprocess.run([str(inpaint), *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)

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
    """bundled/archs.json is how `models list` describes the architectures without importing torch. Building
    the wheel writes it afresh (hatch_build.py) where the models import; this keeps the committed copy fresh
    for builds where they do not (an isolated build without torch)."""
    from inpaint_cli import registry

    assert json.loads(registry.ARCH_MANIFEST.read_text()) == json.loads(json.dumps(registry.arch_manifest())), (
        "bundled/archs.json is stale: run `python -m inpaint_cli.registry`"
    )


def test_a_new_model_file_is_listed_before_the_manifest_is_rewritten(tmp_path):
    """A model module that archs.json does not name makes `models list` import the models and ask them."""
    package = tmp_path / "inpaint_cli"
    shutil.copytree(REPO / "inpaint_cli", package, ignore=shutil.ignore_patterns("*.safetensors", "__pycache__"))
    shutil.copy(REPO / "weights.toml", tmp_path / "weights.toml")  # a source tree's catalog, beside the package
    (package / "models" / "sixth.py").write_text(
        "from ..registry import InputContract, register\nfrom .base import InpaintModel\n\n\n"
        '@register("sixth", contract=InputContract(pad_multiple=16), summary="a sixth model")\n'
        "class Sixth(InpaintModel):\n    def __init__(self, width: int = 3) -> None:\n"
        "        super().__init__(width=width)\n"
    )
    script = "import sys\nfrom inpaint_cli import cli\ncli.main(sys.argv[1:])\n"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script, "models", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["arch"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert rows["sixth"]["pad_multiple"] == 16 and "deepfill_v2" in rows


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="the sdist is built with hatchling (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)], cwd=REPO, check=True)
    (built,) = out.glob("inpaint_cli-*.tar.gz")
    return built


SDIST_EXTRAS_BUDGET = 2 * 10**6  # bytes beside the package's own files: tests, docs, scripts, examples


def test_sdist_carries_what_a_user_builds_from_and_no_results(sdist):
    with tarfile.open(sdist) as archive:
        sizes = {member.name.split("/", 1)[1]: member.size for member in archive.getmembers() if member.isfile()}
    tracked = subprocess.run(["git", "ls-files", "inpaint_cli"], cwd=REPO, capture_output=True, text=True)
    if tracked.returncode == 0:  # every file of the package (not in a source tree without git)
        assert set(tracked.stdout.split()) <= set(sizes)
    for needed in ("pyproject.toml", "hatch_build.py", "weights.toml", "README.md", "CHANGELOG.md", "LICENSE"):
        assert needed in sizes, needed
    for needed in ("tests/conftest.py", "tests/data", "examples/meadow.png", "docs/models.md"):
        assert any(name == needed or name.startswith(f"{needed}/") for name in sizes), needed
    for script in ("benchmarks/bench_train.py", "benchmarks/README.md", "training/train_gpu.py", "training/README.md"):
        assert script in sizes, script
    results = [name for name in sizes if name.startswith(("benchmarks/", "training/")) and name.endswith(
        (".json", ".jsonl", ".csv", ".png", ".jpg")
    )]  # fmt: skip
    assert results == [], "benchmark results, contact sheets and training logs stay in the repository"
    extras = sum(size for name, size in sizes.items() if not name.startswith("inpaint_cli/"))
    assert extras <= SDIST_EXTRAS_BUDGET, f"{extras:,} bytes beside the package"


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
