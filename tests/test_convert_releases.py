"""`models convert` and the authors' released DeepFill checkpoints: recognised by sha256, their exact variable
layouts converted, and the command's errors and help. None of this needs TensorFlow.

Real release files cannot be had here, so recognition is tested with a table whose entries are built from
synthetic files (the real table is checked against the hashes of the authors' release files), and the conversion
with the TF reader replaced by one returning each release's exact layout (tests/data/checkpoint_layouts/:
generator, critics, Adam slots, scalar `lr`, int32 `global_step`). The TF reader itself is exercised by
tests/test_convert_deepfill.py, which writes checkpoints of the same layouts with TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from release_layouts import RELEASE_LAYOUTS, is_generator_weight, layout_variables
from typer.testing import CliRunner

from inpaint_cli.convert import convert_checkpoint, deepfill, releases
from inpaint_cli.convert.readers import tf_checkpoint_files, tf_checkpoint_prefix
from inpaint_cli.convert.releases import RELEASES, Release, recognise
from inpaint_cli.convert.sources import SOURCES, arch_help, converter_archs, sources
from inpaint_cli.errors import InpaintError
from inpaint_cli.weights import read_checkpoint

# The authors' release files (sha256 of snap-0.index; of v2's 119,996,408-byte data files).
ISSUE_INDEX_SHA256 = {
    "deepfill_v2.places2": "a958154593b0731d87178d7d4db9aa10179ea9d546290b19801c64a3eba68f1c",
    "deepfill_v2.celebahq": "c505487d983b68ce09ca71a93faebeba1acbc84ef352c03b158bc5b8d9ba26e6",
    "deepfill_v1.places2": "e1eafb9db06a4e2425d335d7d433aeeb363a2eb201b28c41d3fe5457281254c2",
    "deepfill_v1.imagenet": "fe08bdee69066a5bcd8634f21aa91fc2580e8809ce255439b37992ea603e1cef",
    "deepfill_v1.celeba": "efbbad3dc7a451e2169f9560872919ae452b0ac60bd1aca1adca2466bfda2cab",
    "deepfill_v1.celebahq": "2f0277cbde16cab03744eff8188baa37c049c0740c233e75699958a9d0a67461",
}
ISSUE_DATA = {
    "deepfill_v2.places2": (119_996_408, "60ede290a7978e7a8c0692c6ebc4fdd8977b6869e3ec70c1bee94f6b1e10df37"),
    "deepfill_v2.celebahq": (119_996_408, "173b26e2908a200d15e693c4cae283dd484a488042e04eaa7104a412db60dc3c"),
}
DATA_FILE = "snap-0.data-00000-of-00001"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_snapshot(directory: Path, seed: int = 0, data_size: int = 4096) -> Path:
    """A directory laid out as a release (checkpoint, snap-0.index/.data/.meta) with random bytes."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "checkpoint").write_text('model_checkpoint_path: "snap-0"\nall_model_checkpoint_paths: "snap-0"\n')
    (directory / "snap-0.index").write_bytes(rng.bytes(1500))
    (directory / DATA_FILE).write_bytes(rng.bytes(data_size))
    (directory / "snap-0.meta").write_bytes(rng.bytes(100))
    return directory


def release_of(directory: Path, row: Release, *, data: bool = True) -> Release:
    """`row` with the sha256 (and, for rows that list a data file, the size and sha256) of these files."""
    changes = {"index_sha256": _sha256(directory / "snap-0.index")}
    if data and row.data_sha256:
        changes |= {"data_size": (directory / DATA_FILE).stat().st_size, "data_sha256": _sha256(directory / DATA_FILE)}
    return dataclasses.replace(row, **changes)


def row(name: str) -> Release:
    return next(r for r in RELEASES if r.name == name)


class CountingHasher:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: Path) -> str:
        self.calls.append(path.name)
        return _sha256(path)


def _files(directory: Path) -> list[Path]:
    return tf_checkpoint_files(tf_checkpoint_prefix(directory))


# ---- the table ----------------------------------------------------------------------------------------------


def test_the_table_holds_exactly_the_published_hashes():
    assert {r.name: r.index_sha256 for r in RELEASES} == ISSUE_INDEX_SHA256
    assert len(RELEASES) == 6
    assert {r.name: (r.data_size, r.data_sha256) for r in RELEASES if r.data_sha256} == ISSUE_DATA
    assert all(r.data_size is None for r in RELEASES if not r.data_sha256)
    assert {r.format for r in RELEASES} == {"tf"} and {r.licence for r in RELEASES} == {"CC BY-NC 4.0"}
    assert {r.name: r.dataset for r in RELEASES} == {
        "deepfill_v2.places2": "Places2", "deepfill_v2.celebahq": "CelebA-HQ", "deepfill_v1.places2": "Places2",
        "deepfill_v1.imagenet": "ImageNet", "deepfill_v1.celeba": "CelebA", "deepfill_v1.celebahq": "CelebA-HQ",
    }  # fmt: skip
    # The licence the project states for the DeepFill family is the releases' licence.
    assert {sources()[(a, "tf")].licence for a in ("deepfill_v1", "deepfill_v2")} == {"CC BY-NC 4.0"}


# ---- recognition --------------------------------------------------------------------------------------------


def test_a_listed_release_is_recognised_hashing_each_file_once(tmp_path):
    directory = fake_snapshot(tmp_path / "rel")
    table = [release_of(directory, row("deepfill_v2.places2"))]
    hasher = CountingHasher()
    found = recognise("deepfill_v2", "tf", _files(directory), hasher, table)
    assert found is not None and found.release == table[0]
    assert found.message == (
        "recognised the DeepFill v2 Places2 release (release_places2_256_deepfill_v2, JiahuiYu/generative_inpainting "
        "v2.0.0): Places2, licensed CC BY-NC 4.0"
    )
    assert sorted(hasher.calls) == sorted(["snap-0.index", DATA_FILE])


def test_a_data_file_of_another_size_is_not_hashed_and_not_the_release(tmp_path):
    directory = fake_snapshot(tmp_path / "rel", data_size=4096)
    table = [dataclasses.replace(release_of(directory, row("deepfill_v2.places2")), data_size=4097)]
    hasher = CountingHasher()
    found = recognise("deepfill_v2", "tf", _files(directory), hasher, table)
    assert found is not None and found.release is None
    assert hasher.calls == ["snap-0.index"]  # the data file's size already differs: no 120 MB read
    assert "the index of the DeepFill v2 Places2 release" in found.message
    assert "its data file is not the release's (4,097 bytes" in found.message


def test_a_data_file_of_the_right_size_and_other_bytes_is_not_the_release(tmp_path):
    directory = fake_snapshot(tmp_path / "rel")
    table = [release_of(directory, row("deepfill_v2.celebahq"))]
    (directory / DATA_FILE).write_bytes(b"\0" * 4096)  # same size, other content
    found = recognise("deepfill_v2", "tf", _files(directory), CountingHasher(), table)
    assert found is not None and found.release is None and "data file is not the release's" in found.message


def test_v1_releases_are_recognised_by_their_index_alone(tmp_path):
    directory = fake_snapshot(tmp_path / "rel")
    table = [release_of(directory, row("deepfill_v1.imagenet"))]
    (directory / DATA_FILE).write_bytes(b"other")  # v1 rows list no data hash
    found = recognise("deepfill_v1", "tf", _files(directory), CountingHasher(), table)
    assert found is not None and found.release is not None and found.release.name == "deepfill_v1.imagenet"


def test_an_unlisted_file_is_said_to_be_none_of_the_releases(tmp_path):
    directory = fake_snapshot(tmp_path / "mine")
    found = recognise("deepfill_v1", "tf", _files(directory), CountingHasher())  # the real table
    assert found is not None and found.release is None
    digest = _sha256(directory / "snap-0.index")
    assert found.message == (
        f"{directory / 'snap-0.index'}: not one of the authors' released deepfill_v1 checkpoints (sha256 "
        f"{digest[:12]}… is none of the 4 listed); converting it all the same"
    )


def test_another_architectures_release_names_the_arch_to_use(tmp_path):
    directory = fake_snapshot(tmp_path / "rel")
    table = [release_of(directory, row("deepfill_v1.celeba"))]
    with pytest.raises(
        InpaintError, match=r"snap-0\.index: this is the DeepFill v1 CelebA release .*--arch deepfill_v1$"
    ):
        recognise("deepfill_v2", "tf", _files(directory), CountingHasher(), table)


def test_formats_without_listed_releases_are_not_hashed(tmp_path):
    src = tmp_path / "completionnet_places2.t7"
    src.write_bytes(b"x" * 10)
    hasher = CountingHasher()
    assert recognise("glcic", "t7", [src], hasher) is None
    assert hasher.calls == []


# ---- the releases' exact layouts, converted (TF's reader replaced) ---------------------------------------------


@pytest.fixture
def layout_reader(monkeypatch):
    """Make the TF reader return `variables` (what TF returns for a checkpoint of that layout) for any snapshot."""

    def install(variables: dict[str, np.ndarray]) -> None:
        def read(src: Path):
            return variables, _files(src)

        monkeypatch.setattr(deepfill, "read_tf_checkpoint", read)

    return install


@pytest.mark.parametrize("release", list(RELEASE_LAYOUTS))
def test_each_release_layout_converts_and_is_named_as_the_release(
    release, tmp_path, layout_reader, monkeypatch, caplog
):
    variables = layout_variables(release, seed=1)
    assert variables["inpaint_net/conv1/kernel"].shape[-1] == (48 if "v2" in release else 32)
    if release in ("deepfill_v1.places2", "deepfill_v1.imagenet", "deepfill_v1.celeba"):
        assert len(variables) == 84 and all(is_generator_weight(n) for n in variables)
    else:  # critics, Adam slots and the scalars beside the 84 generator tensors
        assert variables["global_step"].dtype == np.int32 and variables["global_step"].shape == ()
        assert variables["lr"].dtype == np.float32 and variables["lr"].shape == ()
        assert {"beta1_power", "beta2_power"} <= set(variables) and len(variables) in (298, 316)
        assert any(n.startswith("discriminator/") for n in variables)
    layout_reader(variables)
    directory = fake_snapshot(tmp_path / "snapshot", seed=2)
    monkeypatch.setattr(releases, "RELEASES", (release_of(directory, row(release)),))
    arch = release.split(".")[0]
    out = tmp_path / "converted.safetensors"
    with caplog.at_level(logging.INFO, logger="inpaint_cli"):
        entry = convert_checkpoint(directory, arch=arch, out=out)

    expected = row(release)
    assert entry["name"] == release  # the release's catalog name, not the --out stem
    assert entry["licence"] == "CC BY-NC 4.0" and entry["release"] == expected.title
    assert entry["data"] == f"{expected.dataset} ({expected.title})"
    assert [r.getMessage() for r in caplog.records] == [
        f"recognised {expected.title}: {expected.dataset}, licensed CC BY-NC 4.0"
    ]
    ckpt = read_checkpoint(out)
    assert ckpt.provenance["release"] == {
        "name": release, "title": expected.title, "dataset": expected.dataset, "licence": "CC BY-NC 4.0",
    }  # fmt: skip
    assert ckpt.provenance["licence"] == "CC BY-NC 4.0" and ckpt.provenance["data"] == entry["data"]
    assert ckpt.config == {"cnum": 48 if arch == "deepfill_v2" else 32, **deepfill.RELEASE_CONFIG}
    # Exactly the 84 generator tensors, each the file's (kernels HWIO -> OIHW); nothing else.
    state = ckpt.state_dict
    assert len(state) == 84
    from_file = {
        np.ascontiguousarray(v.transpose(3, 2, 0, 1) if v.ndim == 4 else v).tobytes()
        for n, v in variables.items()
        if is_generator_weight(n)
    }
    assert {t.numpy().tobytes() for t in state.values()} == from_file  # random values: none from a slot or critic
    total = sum(v.size for n, v in variables.items() if is_generator_weight(n))
    assert sum(t.numel() for t in state.values()) == total == (4_052_478 if arch == "deepfill_v2" else 3_601_542)


def test_the_data_file_is_hashed_once_for_the_release_and_the_provenance(tmp_path, layout_reader, monkeypatch):
    import inpaint_cli.weights

    layout_reader(layout_variables("deepfill_v2.places2"))
    directory = fake_snapshot(tmp_path / "snapshot")
    monkeypatch.setattr(releases, "RELEASES", (release_of(directory, row("deepfill_v2.places2")),))
    hasher = CountingHasher()
    monkeypatch.setattr(inpaint_cli.weights, "sha256_file", hasher)
    convert_checkpoint(directory, arch="deepfill_v2", out=tmp_path / "x.safetensors")
    assert hasher.calls.count(DATA_FILE) == 1 and hasher.calls.count("snap-0.index") == 1


def test_cli_prints_the_release_entry_and_warns_about_unlisted_files(
    tmp_path, layout_reader, monkeypatch, run_cli, capsys
):
    layout_reader(layout_variables("deepfill_v2.places2"))
    directory = fake_snapshot(tmp_path / "release_places2_256_deepfill_v2")
    monkeypatch.chdir(tmp_path)
    listed = release_of(directory, row("deepfill_v2.places2"))
    monkeypatch.setattr(releases, "RELEASES", (listed,))
    assert run_cli(["models", "convert", str(directory), "--arch", "deepfill_v2", "--out", "v2.safetensors"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith('[models."deepfill_v2.places2"]\n')
    assert f"release = {json.dumps(listed.title)}\n" in printed.out
    assert 'data = "Places2 (the DeepFill v2 Places2 release' in printed.out
    assert 'licence = "CC BY-NC 4.0"' in printed.out
    assert f"info: recognised {listed.title}: Places2, licensed CC BY-NC 4.0" in printed.err

    monkeypatch.setattr(releases, "RELEASES", RELEASES)  # the real table: these bytes are none of them
    argv = ["models", "convert", str(directory), "--arch", "deepfill_v2", "--out", "mine.safetensors", "--json"]
    assert run_cli(argv) == 0
    printed = capsys.readouterr()
    entry = json.loads(printed.out)
    assert entry["name"] == "deepfill_v2.mine" and entry["release"] is None
    assert entry["data"] == "Places2 or CelebA-HQ (the authors' release)"
    assert "warning: " in printed.err and "not one of the authors' released deepfill_v2 checkpoints" in printed.err


# ---- the command's errors and help ----------------------------------------------------------------------------


def test_a_missing_source_is_a_runtime_failure_naming_the_file(tmp_path, run_cli, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["models", "convert", "nonexist.t7", "--arch", "glcic", "--out", "x.safetensors"]) == 1
    err = capsys.readouterr().err
    assert err == "error: nonexist.t7: no such file or directory (the checkpoint to convert)\n"
    assert not (tmp_path / "x.safetensors").exists()


def test_usage_errors_come_before_looking_for_the_file(tmp_path, run_cli, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["models", "convert", "nonexist.t7", "--arch", "pix2pix", "--out", "x.safetensors"]) == 2
    assert capsys.readouterr().err.startswith("error: --arch pix2pix: no converter for it; known: deepfill_v1 (tf)")


def test_the_output_may_not_be_the_source(tmp_path):
    src = tmp_path / "model.safetensors"
    src.write_bytes(b"PK\x03\x04")
    with pytest.raises(InpaintError, match="that is the checkpoint to convert") as error:
        convert_checkpoint(src, arch="glcic", out=src, fmt="state-dict")
    assert error.value.exit_code == 2 and src.read_bytes() == b"PK\x03\x04"


def test_arch_help_lists_every_converter_from_the_table():
    assert converter_archs() == ["deepfill_v1", "deepfill_v2", "glcic", "context_encoder"]
    assert arch_help() == "deepfill_v1 (tf), deepfill_v2 (tf), glcic (t7 or state-dict), context_encoder (t7)"
    for source in SOURCES:  # every row names a converter function that exists
        module, function = source.converter.split(":")
        assert callable(getattr(__import__(f"inpaint_cli.convert.{module}", fromlist=[function]), function))


def _convert_help() -> str:
    from inpaint_cli.cli import app

    result = CliRunner().invoke(app, ["models", "convert", "--help"], env={"COLUMNS": "250"}, terminal_width=250)
    assert result.exit_code == 0
    return result.output


def test_convert_help_lists_every_architecture():
    text = _convert_help()
    for arch in converter_archs():
        assert arch in text
    assert arch_help() in " ".join(text.split())


def test_the_install_hint_reaches_the_screen_verbatim(tmp_path, run_cli, capsys, monkeypatch):
    assert "pip install 'inpaint-cli[convert]'" in " ".join(_convert_help().split())
    src = tmp_path / "completionnet_places2.t7"
    src.write_bytes(b"\x04\x00\x00\x00")
    monkeypatch.setitem(sys.modules, "torchfile", None)  # not installed: importing it raises ImportError
    assert run_cli(["models", "convert", str(src), "--arch", "glcic", "--out", str(tmp_path / "g.safetensors")]) == 1
    assert "install it with: pip install 'inpaint-cli[convert]'" in capsys.readouterr().err
