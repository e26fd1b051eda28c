"""Keep freed host memory for reuse in this process (glibc's malloc on Linux).

A CPU fill allocates and frees feature maps of tens of megabytes dozens of times (a DeepFill v2 fill at
512²: conv outputs of 25-100 MB, attention maps of 64 MB). glibc serves every block above its mmap
threshold (at most 32 MB) with a fresh mmap and unmaps it when it is freed, so each new map is faulted in
again 4 KB at a time: about 16 ms per 64 MB on this project's machines, a quarter of the contextual
attention's time before it reused its maps. With mmap off (M_MMAP_MAX = 0) and trimming raised, freed
blocks stay in the heap, already faulted in, for later maps that fit in them. The peak is unchanged, but
the process keeps its high-water mark until it exits, which suits a command that fills and ends. So
`inpaint fill`, `plural` and `benchmark` call `keep_freed_memory` once; a library user can too. Measured
in benchmarks/README.md.

Nothing is changed where the C library is not glibc, or where the environment already sets glibc's
malloc (MALLOC_MMAP_MAX_, MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES), or INPAINT_KEEP_FREED_MEMORY=0.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 1 << 30  # return the heap's top to the OS only when a whole GiB of it is free
_USER_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")

_in_effect: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc keep freed large blocks for reuse (once per process); whether that setting is in effect."""
    global _in_effect
    if _in_effect is None:
        _in_effect = _apply()
    return _in_effect


def _apply() -> bool:
    if os.environ.get("INPAINT_KEEP_FREED_MEMORY", "1") == "0" or any(name in os.environ for name in _USER_SETTINGS):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success. Trimming first: with mmap off, every large free would otherwise shrink the
    # heap back below it.
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)) and bool(mallopt(_M_MMAP_MAX, 0))
