"""The authors' released checkpoints, recognised by the sha256 of their files.

A TF1 checkpoint's `.index` holds every variable's name, dtype, shape, offset and the crc32c of its data, so
its sha256 names one snapshot; it is a few KB, so it is always hashed. DeepFill v2's data files are listed
too: a 120 MB file is hashed only when its size is the release's (119,996,408 bytes), and then once, shared
with the provenance (`convert_checkpoint` passes one memoised hasher). The table is data: `RELEASES` below,
read by `recognise`, which tests give their own table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InpaintError
from .sources import DEEPFILL_LICENCE

V2_DATA_SIZE = 119_996_408  # bytes of either v2 release's snap-0.data-00000-of-00001


@dataclass(frozen=True)
class Release:
    """One released checkpoint: what it is, and the sha256 of its files."""

    arch: str
    format: str
    tag: str  # the catalog name's TAG: ARCH.TAG, e.g. deepfill_v2.places2
    dataset: str
    title: str  # what it is, for people: "the DeepFill v2 Places2 release (...)"
    licence: str
    index_sha256: str
    data_size: int | None = None  # the data file is checked only when these two are known
    data_sha256: str | None = None

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.tag}"


def _deepfill(
    version: str, tag: str, dataset: str, index: str, directory: str = "", data: str | None = None
) -> Release:
    arch, tag_version = ("deepfill_v2", "v2.0.0") if version == "v2" else ("deepfill_v1", "v1.0.0")
    where = f"{directory}, " if directory else ""
    return Release(
        arch=arch,
        format="tf",
        tag=tag,
        dataset=dataset,
        title=f"the DeepFill {version} {dataset} release ({where}JiahuiYu/generative_inpainting {tag_version})",
        licence=DEEPFILL_LICENCE,
        index_sha256=index,
        data_size=V2_DATA_SIZE if data else None,
        data_sha256=data,
    )


RELEASES: tuple[Release, ...] = (
    _deepfill("v2", "places2", "Places2", "a958154593b0731d87178d7d4db9aa10179ea9d546290b19801c64a3eba68f1c",
              "release_places2_256_deepfill_v2",
              data="60ede290a7978e7a8c0692c6ebc4fdd8977b6869e3ec70c1bee94f6b1e10df37"),
    _deepfill("v2", "celebahq", "CelebA-HQ", "c505487d983b68ce09ca71a93faebeba1acbc84ef352c03b158bc5b8d9ba26e6",
              data="173b26e2908a200d15e693c4cae283dd484a488042e04eaa7104a412db60dc3c"),
    _deepfill("v1", "places2", "Places2", "e1eafb9db06a4e2425d335d7d433aeeb363a2eb201b28c41d3fe5457281254c2",
              "release_places2_256"),
    _deepfill("v1", "imagenet", "ImageNet", "fe08bdee69066a5bcd8634f21aa91fc2580e8809ce255439b37992ea603e1cef"),
    _deepfill("v1", "celeba", "CelebA", "efbbad3dc7a451e2169f9560872919ae452b0ac60bd1aca1adca2466bfda2cab"),
    _deepfill("v1", "celebahq", "CelebA-HQ", "2f0277cbde16cab03744eff8188baa37c049c0740c233e75699958a9d0a67461"),
)  # fmt: skip


@dataclass(frozen=True)
class Recognition:
    """What `recognise` found: the release (None if the files are none of them) and one line saying so."""

    release: Release | None
    message: str


def recognise(
    arch: str,
    fmt: str,
    files: list[Path],
    sha256: Callable[[Path], str],
    releases: Iterable[Release] | None = None,
) -> Recognition | None:
    """Which release of `arch` the checkpoint `files` (an .index and its data files) are, if any.

    None when no release of (arch, fmt) is listed (nothing to say). A file that is another architecture's
    release is refused (InpaintError naming the --arch to use): the conversion would fail on a layer's shape.
    `releases` defaults to `RELEASES`, read at each call.
    """
    listed = [r for r in (RELEASES if releases is None else releases) if r.format == fmt]
    index = next((f for f in files if f.suffix == ".index"), None)
    if not listed or index is None:
        return None
    digest = sha256(index)
    release = next((r for r in listed if r.index_sha256 == digest), None)
    if release is not None and release.arch != arch:
        raise InpaintError(f"{index}: this is {release.title}; convert it with --arch {release.arch}")
    if release is None:
        of_arch = sum(r.arch == arch for r in listed)
        if not of_arch:
            return None
        return Recognition(
            None,
            f"{index}: not one of the authors' released {arch} checkpoints (sha256 {digest[:12]}… is none of the "
            f"{of_arch} listed); converting it all the same",
        )
    if release.data_size is not None and release.data_sha256 is not None:
        data = [f for f in files if f != index]
        same_size = [f for f in data if f.stat().st_size == release.data_size]
        if len(data) != 1 or not same_size or sha256(same_size[0]) != release.data_sha256:
            return Recognition(
                None,
                f"{index}: the index of {release.title}, but its data file is not the release's "
                f"({release.data_size:,} bytes, sha256 {release.data_sha256[:12]}…); converting it all the same",
            )
    return Recognition(release, f"recognised {release.title}: {release.dataset}, licensed {release.licence}")
