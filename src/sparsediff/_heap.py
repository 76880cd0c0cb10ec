"""Plan-time work on memory the process already has: glibc's thresholds raised for a while.

Detection, coloring and positions at n = 10⁶ allocate and free many arrays of 1–40 MB (row
gathers, merges, work arrays). glibc serves an allocation above its mmap threshold (128 KiB at
start, raised dynamically up to 32 MiB as large blocks are freed) with a fresh ``mmap`` and
returns it to the kernel on ``free``, so every such array is faulted in again; early in a
process, before the threshold has grown, that is all of them. The first detection of the 2-D
Bratu pattern at n = 10⁶ spent 0.1–0.8 s of system time in page faults, against 0.15 s of its
own work.

:func:`freed_memory_reused` raises the mmap and trim thresholds (``mallopt``) while the block
runs, so these arrays come from the heap and a freed one is reused by the next, already faulted
in. On leaving the outermost block the thresholds are set to the ceiling glibc's dynamic policy
reaches by itself (32 MiB, trim 64 MiB; the policy cannot be switched back on), so freed memory
above that goes back to the kernel at the next ``free``. A no-op off glibc, while
:mod:`sparsediff.backends.jax_memory` holds the thresholds up for good, or with
``SPARSEDIFF_PLAN_MALLOC=0``.

``small_pages=True`` (detection) also turns off NumPy's request for transparent huge pages on
arrays of 4 MiB or more inside the block: on a shared VM the first faults of huge pages can
stall on memory compaction (0.1–0.8 s of system time for the same first detection, from run to
run), where 4 KiB pages cost a steady 0.1 s once and the heap keeps them. Detection's arrays
are read sequentially; coloring's kernels, which read theirs at random, keep huge pages.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator

__all__ = ["freed_memory_reused"]

#: Inside the block: allocations up to this size come from the heap, and this much freed memory
#: is kept.
THRESHOLD = 1 << 30
#: What the thresholds are left at: glibc's ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit systems
#: and twice it for trimming, where the dynamic policy ends up once large blocks are freed.
AFTER_MMAP = 32 << 20
AFTER_TRIM = 64 << 20
_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_ENV = "SPARSEDIFF_PLAN_MALLOC"

_mallopt = None
_depth = 0


def _load():
    """glibc's ``mallopt``, or False."""
    global _mallopt
    if _mallopt is None:
        _mallopt = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                fn = libc.mallopt
                fn.argtypes = [ctypes.c_int, ctypes.c_int]
                fn.restype = ctypes.c_int
                _mallopt = fn
            except (OSError, AttributeError):  # musl or another libc without mallopt
                pass
    return _mallopt


def _enabled() -> bool:
    return os.environ.get(_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _held_by_jax() -> bool:
    module = sys.modules.get("sparsediff.backends.jax_memory")
    return bool(module is not None and module.large_buffers_kept_in_heap())


def _set(mmap: int, trim: int) -> None:
    mallopt = _load()
    if mallopt:
        mallopt(_M_MMAP_THRESHOLD, mmap)
        mallopt(_M_TRIM_THRESHOLD, trim)


def _numpy_huge_pages(on: bool) -> bool | None:
    """Set NumPy's transparent-huge-page advice; the previous setting (None: not available)."""
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    return None if setter is None else bool(setter(on))


@contextlib.contextmanager
def freed_memory_reused(small_pages: bool = False) -> Iterator[None]:
    """Inside: large allocations come from the heap and freed memory stays there; with
    ``small_pages``, NumPy asks for no huge pages (module docstring). Blocks nest: the outermost
    one sets the thresholds."""
    global _depth
    enabled = _enabled() and bool(_load())
    active = enabled and _depth == 0 and not _held_by_jax()
    if active:
        _set(THRESHOLD, THRESHOLD)
    huge = _numpy_huge_pages(False) if enabled and small_pages else None
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if huge is not None:
            _numpy_huge_pages(huge)
        if active and not _held_by_jax():
            _set(AFTER_MMAP, AFTER_TRIM)
