"""inpaint_cli.weights: catalog, resolution, Hub downloads (through a loopback Hub), verification, checkpoint files.

Downloads go through the real huggingface_hub code: HF_ENDPOINT points at `hub_server.HubServer`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import TouchOnUnpickle
from hub_server import HubServer
from huggingface_hub import constants as hf_constants
from torch import nn

from inpaint_cli import weights as W
from inpaint_cli.errors import InpaintError, UsageError
from inpaint_cli.models.base import InpaintModel
from inpaint_cli.registry import InputContract, register
from inpaint_cli.weights import catalog as weights_catalog
from inpaint_cli.weights import hashes

REPO, FILE = "org/tiny", "ckpt/tiny.safetensors"
SOURCE = f"hf://{REPO}/{FILE}"


@register("test_tiny", contract=InputContract(pad_multiple=1), summary="test-only: one conv")
class TinyTest(InpaintModel):
    def __init__(self, channels: int = 4) -> None:
        super().__init__(channels=channels)
        self.conv = nn.Conv2d(4, channels, 3, padding=1)
        self.head = nn.Conv2d(channels, 3, 1)
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))

    def inpaint(self, image, mask, *, generator=None):
        return torch.sigmoid(self.head(self.conv(torch.cat([image * (1 - mask), mask], 1))))


@register("test_tiny_other", contract=InputContract(), summary="test-only: another arch")
class TinyOther(TinyTest):
    pass


@register("test_tiny_free", contract=InputContract(needs_weights=False), summary="test-only: weightless")
class TinyFree(InpaintModel):
    def inpaint(self, image, mask, *, generator=None):
        return image


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user catalog, a private Hub cache, online, and nothing that could leave the loopback."""
    for var in ("INPAINT_WEIGHTS", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_TOKEN", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    # huggingface_hub reads these at import; the telemetry flag also stops its agent-registry request.
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    W.load_catalog.cache_clear()
    yield
    W.load_catalog.cache_clear()


@pytest.fixture
def hub(monkeypatch):
    server = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real checkpoint of TinyTest: (path, bytes, sha256, state_dict)."""
    torch.manual_seed(0)
    model = TinyTest()
    model.seen.fill_(7)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    W.save_checkpoint(path, model, provenance={"data": "noise", "steps": 3})
    data = path.read_bytes()
    return path, data, hashlib.sha256(data).hexdigest(), {k: v.clone() for k, v in model.state_dict().items()}


def write_user_catalog(monkeypatch, path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    monkeypatch.setenv("INPAINT_WEIGHTS", str(path))
    W.load_catalog.cache_clear()
    return path


@pytest.fixture
def hub_entry(hub, tiny, tmp_path, monkeypatch):
    """The tiny checkpoint served by the Hub and declared as `test_tiny.hub` in a user catalog."""
    _, data, sha, _ = tiny
    hub.add(REPO, FILE, data)
    write_user_catalog(
        monkeypatch,
        tmp_path / "user" / "weights.toml",
        f'[models."test_tiny.hub"]\narch = "test_tiny"\nsource = "{SOURCE}"\nsha256 = "{sha}"\n'
        f"size = {len(data)}\ndefault = true\nsteps = 3\n",
    )
    return W.load_catalog().get("test_tiny.hub")


def cache_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "hf_cache" / "models--org--tiny"
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()) if root.exists() else []


def assert_same_weights(model: nn.Module, state: dict) -> None:
    got = model.state_dict()
    assert sorted(got) == sorted(state)
    for key, value in state.items():
        assert torch.equal(got[key], value), key


# ------------------------------------------------------------------------------------ Hub downloads


def test_first_download_lands_in_cache_verified_and_loads(hub, hub_entry, tiny, tmp_path):
    _, data, sha, state = tiny
    model = W.load_model("test_tiny.hub")

    assert isinstance(model, TinyTest) and not model.training
    assert_same_weights(model, state)
    url_path = f"/{REPO}/resolve/main/{FILE}"
    assert [(r.method, r.path) for r in hub.requests] == [("HEAD", url_path), ("GET", url_path)]
    blob = tmp_path / "hf_cache" / "models--org--tiny" / "blobs" / sha
    assert blob.read_bytes() == data
    pointer = W.local_path(hub_entry)
    assert pointer is not None and pointer.resolve() == blob.resolve()
    assert W.verify(hub_entry).status == "ok"

    # A verified cached copy is used without asking the Hub again, also via the bare arch name.
    hub.clear_requests()
    assert W.resolve("test_tiny").path == pointer
    assert_same_weights(W.load_model("test_tiny"), state)
    assert hub.requests == []


def test_cached_run_works_with_the_server_stopped(hub, hub_entry, tiny, monkeypatch):
    W.fetch(hub_entry)
    hub.stop()
    assert_same_weights(W.load_model("test_tiny.hub"), tiny[3])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_same_weights(W.load_model("test_tiny.hub"), tiny[3])


@pytest.mark.parametrize("how", ["env", "hf_constants"])
def test_offline_with_empty_cache_is_one_line_error(hub, hub_entry, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:  # as huggingface_hub sees it when HF_HUB_OFFLINE was set before it was imported
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InpaintError) as info:
        W.load_model("test_tiny.hub")
    assert info.value.exit_code == 1
    assert info.value.message == (
        "test_tiny.hub is not in the cache and HF_HUB_OFFLINE is set; run `inpaint models download "
        "test_tiny.hub` on a machine with network or copy the file and use a local source"
    )
    assert hub.requests == []


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_unreachable_hub_fails_fast_with_the_offline_hint(hub_entry, monkeypatch, run_cli, capsys):
    # huggingface_hub retries a refused connection with backoff for about 25 s before it gives up.
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    start = time.perf_counter()
    code = run_cli(["models", "download", "test_tiny.hub"])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        f"error: test_tiny.hub: could not download {endpoint}/{REPO}/resolve/main/{FILE}: cannot connect to "
        f"{endpoint[len('http://') :]} (Connection refused); if this machine is offline, set HF_HUB_OFFLINE=1 "
        f"(cached files only), else check the network, HF_ENDPOINT and any proxy"
    ]
    assert seconds < 10


def test_unreachable_hub_uses_the_cached_copy_of_an_unpinned_source(hub, tiny, monkeypatch, caplog):
    hub.add(REPO, FILE, tiny[1])
    first = W.resolve(SOURCE).path
    hub.stop()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with caplog.at_level("WARNING", logger="inpaint_cli"):
        assert W.resolve(SOURCE).path == first
    assert "using the cached copy" in caplog.text


def test_corrupted_download_is_removed_from_the_cache(hub, hub_entry, tiny, tmp_path):
    hub.corrupt(REPO, FILE)
    with pytest.raises(InpaintError) as info:
        W.fetch(hub_entry)
    message = info.value.message
    assert "test_tiny.hub: sha256 mismatch (expected " + tiny[2][:12] in message
    assert "the download was removed" in message and "\n" not in message
    assert ("GET", f"/{REPO}/resolve/main/{FILE}") in [(r.method, r.path) for r in hub.requests]
    assert cache_files(tmp_path) == [tmp_path / "hf_cache" / "models--org--tiny" / "refs" / "main"]
    assert W.verify(hub_entry).status == "missing"

    hub.corrupt(REPO, FILE, on=False)  # "try again" works once the Hub serves the right bytes
    assert W.sha256_file(W.fetch(hub_entry)) == tiny[2]


def test_stale_cached_copy_is_downloaded_again(hub, hub_entry, tiny):
    path = W.fetch(hub_entry)
    real = Path(os.path.realpath(path))
    real.chmod(0o644)
    real.write_bytes(b"x" + tiny[1][1:])  # bit rot in the cache
    assert W.verify(hub_entry).status == "mismatch"
    hub.clear_requests()
    assert W.sha256_file(W.fetch(hub_entry)) == tiny[2]
    assert [r.method for r in hub.requests] == ["HEAD", "GET"]


def test_hub_errors_name_the_url(hub, tiny, tmp_path, monkeypatch):
    hub.add(REPO, "other.safetensors", b"x")
    write_user_catalog(
        monkeypatch,
        tmp_path / "u.toml",
        f'[models."test_tiny.gone"]\narch = "test_tiny"\nsource = "{SOURCE}"\nsha256 = "{"0" * 64}"\n'
        f'[models."test_tiny.norepo"]\narch = "test_tiny"\nsource = "hf://nobody/none/x.safetensors"\n'
        f'sha256 = "{"0" * 64}"\n',
    )
    catalog = W.load_catalog()
    with pytest.raises(
        InpaintError, match=r"test_tiny\.gone: ckpt/tiny\.safetensors not found in org/tiny@main"
    ) as e:
        W.fetch(catalog.get("test_tiny.gone"))
    assert f"{hub.url}/{REPO}/resolve/main/{FILE}" in e.value.message
    with pytest.raises(InpaintError, match="repository nobody/none not found"):
        W.fetch(catalog.get("test_tiny.norepo"))


def test_adhoc_hf_source_resolves_and_loads(hub, tiny):
    hub.add(REPO, FILE, tiny[1], revision="v1")
    resolved = W.resolve(f"{SOURCE}@v1")
    assert (resolved.arch, resolved.entry.kind, resolved.entry.sha256) == ("test_tiny", "hf", None)
    assert resolved.path.read_bytes() == tiny[1]
    assert_same_weights(W.load_model(f"{SOURCE}@v1"), tiny[3])
    with pytest.raises(UsageError, match="malformed Hub source"):
        W.resolve("hf://org-only/x")


# ---------------------------------------------------------------------------------------- verify


def test_verify_statuses(hub, tiny, tmp_path, monkeypatch):
    ckpt = tmp_path / "user" / "ckpts" / "tiny.safetensors"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(tiny[1])
    write_user_catalog(
        monkeypatch,
        tmp_path / "user" / "weights.toml",
        f'[models."test_tiny.local"]\narch = "test_tiny"\nsource = "ckpts/tiny.safetensors"\n'
        f'sha256 = "{tiny[2].upper()}"\n'
        f'[models."test_tiny.hub"]\narch = "test_tiny"\nsource = "{SOURCE}"\nsha256 = "{tiny[2]}"\n',
    )
    catalog = W.load_catalog()
    local = catalog.get("test_tiny.local")

    result = W.verify(local)
    assert (result.status, result.path, result.actual_sha256) == ("ok", ckpt, tiny[2])
    assert W.fetch(local) == ckpt

    with ckpt.open("ab") as f:
        f.write(b"tampered")
    result = W.verify(local)
    assert result.status == "mismatch"
    assert result.actual_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    with pytest.raises(InpaintError, match=r"test_tiny\.local: sha256 mismatch for .*tiny\.safetensors"):
        W.fetch(local)

    ckpt.unlink()
    assert (W.verify(local).status, W.verify(local).path) == ("missing", None)
    with pytest.raises(InpaintError, match="does not exist"):
        W.fetch(local)
    assert W.verify(catalog.get("test_tiny.hub")).status == "missing"  # never downloads
    assert hub.requests == []
    assert W.verify(catalog.get("telea")) == W.VerifyResult(catalog.get("telea"), "no-weights", None, None)


def test_local_hash_is_cached_per_mtime_and_size(tiny, tmp_path, monkeypatch):
    ckpt = tmp_path / "t.safetensors"
    ckpt.write_bytes(tiny[1])
    write_user_catalog(
        monkeypatch,
        tmp_path / "w.toml",
        f'[models."test_tiny.x"]\narch = "test_tiny"\nsource = "t.safetensors"\nsha256 = "{tiny[2]}"\n',
    )
    calls = []
    real = W.sha256_file
    monkeypatch.setattr(hashes, "sha256_file", lambda p: calls.append(p) or real(p))
    entry = W.load_catalog().get("test_tiny.x")
    for _ in range(3):
        W.fetch(entry)
    assert len(calls) == 1


# ------------------------------------------------------------------------------------ checkpoint files


def test_checkpoint_round_trip_fp16_metadata_provenance(tmp_path):
    torch.manual_seed(1)
    model = TinyTest(channels=6)
    path = tmp_path / "sub" / "half.safetensors"
    ema = {"ema.conv.weight": model.conv.weight}  # shares storage with a parameter
    W.save_checkpoint(
        path, model, provenance={"data": "places", "steps": 12}, dtype=torch.float16, extra_tensors=ema
    )
    assert [p.name for p in path.parent.iterdir()] == ["half.safetensors"]  # no temp file left

    ckpt = W.read_checkpoint(path, expected_arch="test_tiny")
    assert (ckpt.arch, ckpt.config, ckpt.provenance) == (
        "test_tiny",
        {"channels": 6},
        {"data": "places", "steps": 12},
    )
    assert ckpt.metadata["format"] == "inpaint-cli/1" and ckpt.metadata["arch"] == "test_tiny"
    assert ckpt.state_dict["conv.weight"].dtype == torch.float16
    assert ckpt.state_dict["seen"].dtype == torch.long  # only floating tensors are cast
    assert sorted(ckpt.extra_tensors) == ["ema.conv.weight"] and "ema.conv.weight" not in ckpt.state_dict
    assert torch.equal(ckpt.extra_tensors["ema.conv.weight"], model.conv.weight.detach().half())

    fresh = TinyTest(channels=6)
    W.load_state_strict(fresh, ckpt.state_dict, source=str(path))
    assert fresh.conv.weight.dtype == torch.float32
    assert torch.equal(fresh.conv.weight, model.conv.weight.detach().half().float())

    assert_same_weights(W.load_model(path), fresh.state_dict())
    assert W.resolve(str(path)).arch == "test_tiny"

    # fp32: the extra tensor really shares storage with conv.weight, which safetensors alone refuses.
    W.save_checkpoint(path, model, extra_tensors=ema)
    ckpt = W.read_checkpoint(path)
    assert torch.equal(ckpt.extra_tensors["ema.conv.weight"], model.conv.weight.detach())
    assert torch.equal(ckpt.state_dict["conv.weight"], model.conv.weight.detach())
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's 0600


def test_load_state_strict_lists_missing_unexpected_and_shapes():
    model = TinyTest()
    state = dict(model.state_dict())
    del state["head.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(InpaintError) as info:
        W.load_state_strict(model, state, source="x.safetensors")
    message = info.value.message
    assert message.startswith("x.safetensors does not fit the test_tiny model: ")
    assert "missing 1 (head.bias)" in message and "unexpected 1 (extra.weight)" in message
    assert "\n" not in message

    with pytest.raises(InpaintError, match=r"shape mismatch .*conv\.weight \(6, 4, 3, 3\) vs \(4, 4, 3, 3\)"):
        W.load_state_strict(model, TinyTest(channels=6).state_dict(), source="y")


def test_pickles_are_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    pt = tmp_path / "evil.pt"
    torch.save({"w": TouchOnUnpickle(marker)}, pt)
    disguised = tmp_path / "evil.safetensors"
    disguised.write_bytes(pt.read_bytes())

    for path in (pt, disguised):
        with pytest.raises(InpaintError) as info:
            W.read_checkpoint(path)
        assert info.value.message == (
            f"{path} is a pickled PyTorch checkpoint; inpaint loads only safetensors (pickles can run code). "
            "Convert it with a trusted script: torch.load + safetensors.torch.save_file"
        )
        with pytest.raises(InpaintError, match="pickled"):
            W.load_model(path)
    assert not marker.exists()
    torch.load(pt, weights_only=False)  # the file really was live: unpickling it runs the payload
    assert marker.exists()


def test_read_checkpoint_rejects_foreign_files(tmp_path, tiny):
    from safetensors.torch import save_file

    noise = tmp_path / "noise.safetensors"
    noise.write_bytes(os.urandom(4096))
    with pytest.raises(InpaintError, match=r"noise\.safetensors is not a safetensors file"):
        W.read_checkpoint(noise)

    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(
        InpaintError, match=r"bare\.safetensors has no arch metadata; it was not written by inpaint"
    ):
        W.read_checkpoint(bare)

    with pytest.raises(InpaintError) as info:
        W.read_checkpoint(tiny[0], expected_arch="test_tiny_other")
    assert info.value.message == (
        f"{tiny[0]} is a test_tiny checkpoint, not test_tiny_other; "
        "pick a test_tiny_other checkpoint or use --model test_tiny"
    )
    with pytest.raises(InpaintError, match="does not exist"):
        W.read_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(InpaintError, match="does not exist"):
        W.resolve(str(tmp_path / "nope.safetensors"))


def test_catalog_entry_with_the_wrong_arch_file(tiny, tmp_path, monkeypatch):
    write_user_catalog(
        monkeypatch,
        tmp_path / "w.toml",
        f'[models."test_tiny_other.x"]\narch = "test_tiny_other"\nsource = "{tiny[0]}"\nsha256 = "{tiny[2]}"\n',
    )
    with pytest.raises(InpaintError, match="is a test_tiny checkpoint, not test_tiny_other"):
        W.load_model("test_tiny_other.x")


# ---------------------------------------------------------------------------------------- catalog


def test_package_catalog_has_the_classical_models():
    catalog = W.load_catalog()
    assert catalog.global_default == "deepfill_v1.campaign-128"
    assert {"telea", "ns"} <= set(catalog.entries)
    assert catalog.get("telea").kind == "none" and catalog.get("telea").arch == "telea"
    assert W.resolve("telea").path is None
    default = W.resolve(None)
    assert default.name == "deepfill_v1.campaign-128" and default.path is not None
    assert default.path.name == "deepfill_v1_campaign-128.safetensors"


PACKAGE_TOML = """
default = "telea"
[models.telea]
arch = "telea"
[models."test_tiny.a"]
arch = "test_tiny"
source = "bundled:a.safetensors"
sha256 = "{sha}"
default = true
licence = "MIT"
[models."test_tiny.b"]
arch = "test_tiny"
source = "b.safetensors"
sha256 = "{sha}"
val_psnr = 27.5
"""


def test_user_catalog_overrides_and_defaults(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg" / "weights.toml"
    pkg.parent.mkdir()
    pkg.write_text(PACKAGE_TOML.format(sha="a" * 64))
    monkeypatch.setattr(weights_catalog, "package_catalog_path", lambda: pkg)
    W.load_catalog.cache_clear()

    catalog = W.load_catalog()
    assert catalog.default_for("test_tiny").name == "test_tiny.a"
    assert catalog.get("test_tiny.b").extra == {"val_psnr": 27.5}
    assert catalog.get("test_tiny.a").licence == "MIT"
    assert [e.name for e in catalog.find("test_tiny.*")] == ["test_tiny.a", "test_tiny.b"]
    assert [e.name for e in catalog.find("*.b")] == ["test_tiny.b"]
    assert catalog.default_for("test_tiny_other") is None

    # The XDG location is used when INPAINT_WEIGHTS is unset.
    user = tmp_path / "config" / "inpaint" / "weights.toml"
    user.parent.mkdir(parents=True)
    user.write_text(
        'default = "test_tiny.c"\n'
        '[models."test_tiny.c"]\narch = "test_tiny"\nsource = "c.safetensors"\n'
        f'sha256 = "{"c" * 64}"\ndefault = true\n'
        '[models."test_tiny.b"]\narch = "test_tiny"\nsource = "/abs/b.safetensors"\n'
        f'sha256 = "{"b" * 64}"\nnotes = "mine"\n'
    )
    catalog = W.load_catalog()  # picks up the new file without cache_clear
    assert catalog.global_default == "test_tiny.c"
    assert catalog.default_for("test_tiny").name == "test_tiny.c"
    assert not catalog.get("test_tiny.a").default
    b = catalog.get("test_tiny.b")
    assert (b.notes, b.sha256, b.catalog, b.extra) == ("mine", "b" * 64, user, {})
    assert W.declared_path(catalog.get("test_tiny.c")) == user.parent / "c.safetensors"
    assert W.declared_path(catalog.get("test_tiny.a")) == W.BUNDLED_DIR / "a.safetensors"

    monkeypatch.setenv("INPAINT_WEIGHTS", str(tmp_path / "missing.toml"))
    with pytest.raises(InpaintError, match=r"INPAINT_WEIGHTS points to .*missing\.toml"):
        W.load_catalog()


def test_unknown_names_suggest_close_matches(tmp_path, monkeypatch):
    write_user_catalog(
        monkeypatch,
        tmp_path / "w.toml",
        f'[models."test_tiny.hub"]\narch = "test_tiny"\nsource = "{SOURCE}"\nsha256 = "{"1" * 64}"\n',
    )
    with pytest.raises(UsageError) as info:
        W.load_catalog().get("test_tiny.hbu")
    assert info.value.exit_code == 2 and "did you mean test_tiny.hub?" in info.value.message
    with pytest.raises(UsageError, match="did you mean telea"):
        W.resolve("teela")
    with pytest.raises(UsageError, match="unknown model 'zzzz'"):
        W.resolve("zzzz")


def test_resolve_archs_without_entries():
    assert W.resolve("test_tiny_free") == W.Resolved("test_tiny_free", "test_tiny_free", None, None)
    assert isinstance(W.load_model("test_tiny_free"), TinyFree)
    with pytest.raises(InpaintError, match="test_tiny_other needs weights and no catalog has a default"):
        W.resolve("test_tiny_other")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[models."test_tiny.x"]\nsource = "x.safetensors"\nsha256 = "{sha}"\n', "has no `arch`"),
        (
            '[models."test_tiny.x"]\narch = "test_tiny"\nsource = "x.safetensors"\n',
            "has a source but no sha256",
        ),
        ('[models."test_tiny.x"]\narch = "test_tiny"\nsource = "x"\nsha256 = "abc"\n', "64 hex digits"),
        (
            '[models."test_tiny.x"]\narch = "test_tiny"\ndefault = true\n'
            '[models."test_tiny.y"]\narch = "test_tiny"\ndefault = true\n',
            "both 'test_tiny.x' and 'test_tiny.y' say `default = true`",
        ),
        (
            '[models."test_tiny.x"]\narch = "test_tiny"\nsource = "hf://org/file.safetensors"\n'
            'sha256 = "{sha}"\n',
            "malformed Hub source",
        ),
        ('[models."glcic.x"]\narch = "test_tiny"\n', 'names are "ARCH.TAG"'),
        ('[models."test_tiny.x"]\narch = "test_tiny"\nsize = "big"\n', "`size` has the wrong type"),
        ('[model."test_tiny.x"]\narch = "test_tiny"\n', "unknown top-level keys ['model']"),
        ('[models."test_tiny.x"\n', "invalid TOML"),
    ],
)
def test_malformed_catalogs_name_file_and_entry(tmp_path, monkeypatch, body, expected):
    path = write_user_catalog(monkeypatch, tmp_path / "bad.toml", body.replace("{sha}", "f" * 64))
    with pytest.raises(InpaintError) as info:
        W.load_catalog()
    message = info.value.message
    assert message.startswith(str(path)) and expected in message and "\n" not in message
    if "[models." in body and "TOML" not in expected:
        assert body.split('"')[1] in message  # the entry's name


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("hf://org/repo/file.safetensors", ("org/repo", "file.safetensors", "main")),
        ("hf://org/repo/a/b/file.safetensors@v1.0", ("org/repo", "a/b/file.safetensors", "v1.0")),
        ("hf://org/repo/f.safetensors@refs/pr/3", ("org/repo", "f.safetensors", "refs/pr/3")),
        ("hf://org/repo/f.safetensors@" + "a" * 40, ("org/repo", "f.safetensors", "a" * 40)),
    ],
)
def test_parse_hf_source(source, parsed):
    assert W.parse_hf_source(source) == parsed


@pytest.mark.parametrize(
    "source",
    ["hf://org/repo", "hf://org//f.safetensors", "hf://org/repo/f@", "https://x/y/z", "hf://o/r/../f"],
)
def test_parse_hf_source_rejects(source):
    with pytest.raises(UsageError, match=r"expected hf://org/repo/path/to/file\.safetensors"):
        W.parse_hf_source(source)


def test_import_and_catalog_do_not_load_torch_or_the_hub():
    code = (
        "import sys; import inpaint_cli.weights as w; w.load_catalog(); w.resolve('telea', download=False);"
        "print(sorted(m for m in ('torch', 'huggingface_hub', 'safetensors') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def save_with_header_length(path: Path, model: nn.Module, wanted: int, modulus: int) -> int:
    """save_checkpoint `model` to `path` with provenance padded so that the safetensors header length n
    (the file's first 8 bytes) has n % modulus == wanted; returns n."""

    def save(pad: int) -> int:
        W.save_checkpoint(path, model, provenance={"pad": "x" * pad})
        return int.from_bytes(path.read_bytes()[:8], "little")

    # Each pad character adds one header byte, then safetensors rounds the header up to a multiple of 8.
    base = save(0)
    start = (wanted - base) % modulus
    for pad in range(max(0, start - 8), start + 9):
        n = save(pad)
        if n % modulus == wanted:
            return n
    raise AssertionError(f"no padding gives a header length of {wanted} mod {modulus}")


@pytest.mark.parametrize(
    ("wanted", "modulus", "first"),
    [(0x80, 256, b"\x80"), (0x4B50, 65536, b"PK")],
    ids=["0x80", "PK"],
)
@pytest.mark.parametrize("name", ["last.state.safetensors", "run.pt"])
def test_safetensors_whose_length_looks_like_a_pickle_signature_loads(tmp_path, wanted, modulus, first, name):
    torch.manual_seed(2)
    model = TinyTest()
    path = tmp_path / name
    n = save_with_header_length(path, model, wanted, modulus)
    assert path.read_bytes().startswith(first) and n % modulus == wanted

    assert W.read_checkpoint_metadata(path)["arch"] == "test_tiny"
    ckpt = W.read_checkpoint(path, expected_arch="test_tiny")
    assert ckpt.provenance["pad"].startswith("x")
    fresh = TinyTest()
    W.load_state_strict(fresh, ckpt.state_dict, source=str(path))
    assert_same_weights(fresh, model.state_dict())

    # Real pickles (torch.save writes a zip, the legacy format starts with 0x80) are still refused.
    for legacy in (False, True):
        for pickle_name in ("real.pt", "real.safetensors"):
            pickled = tmp_path / pickle_name
            torch.save({"w": torch.zeros(2)}, pickled, _use_new_zipfile_serialization=not legacy)
            assert pickled.read_bytes().startswith(b"\x80" if legacy else b"PK")
            with pytest.raises(InpaintError) as info:
                W.read_checkpoint_metadata(pickled)
            assert info.value.message == (
                f"{pickled} is a pickled PyTorch checkpoint; inpaint loads only safetensors (pickles can run "
                "code). Convert it with a trusted script: torch.load + safetensors.torch.save_file"
            )
