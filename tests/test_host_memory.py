"""inpaint_cli.host_memory: a freed large block is reused, not faulted in again (glibc on Linux)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)

# Allocate, touch and free a 64 MB tensor, then count the page faults of a 60 MB one: 15360 pages of 4 KB
# when glibc unmapped the first block, none when it kept it. (torch, not numpy: numpy asks for huge pages.
# Smaller, because a block of the very same size may not fit: torch's 64-byte-aligned allocation asks glibc
# for a little more than the block it freed, so the heap grows instead when nothing next to it is free.)
PROBE = r"""
import json, resource, sys
import torch
from inpaint_cli.host_memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
block = torch.ones(16 << 20); del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = torch.ones(15 << 20)
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(mode: str, **env: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    environment.pop("GLIBC_TUNABLES", None)
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=environment, check=True
    )
    return json.loads(done.stdout)


def test_a_freed_64_mb_block_is_reused_without_page_faults() -> None:
    system = _probe("system")
    kept = _probe("keep")
    assert not system["kept"] and system["faults"] > 12_000  # glibc's default: all 15360 pages again
    assert kept["kept"] and kept["faults"] < 1_000


def test_the_users_own_malloc_settings_and_the_opt_out_are_left_alone() -> None:
    assert not _probe("keep", MALLOC_MMAP_MAX_="65536")["kept"]
    assert not _probe("keep", INPAINT_KEEP_FREED_MEMORY="0")["kept"]
