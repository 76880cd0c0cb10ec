"""Keep XLA's large CPU buffers in the heap, so that each call does not page-fault them in again.

XLA's CPU client allocates every output and temporary buffer with ``malloc`` and frees it after
the call. glibc serves an allocation above its mmap threshold (128 KiB, raised dynamically to at
most 32 MiB) with a fresh ``mmap`` and returns it to the kernel on ``free``: every call then
faults its large buffers in again, 4 KiB at a time (XLA does not ask for transparent huge pages,
unlike NumPy). A Jacobian's data at n = 10⁶ (5·10⁶ doubles, 40 MB) is 10⁴ page faults per call;
on a virtual machine that costs several times the arithmetic. Measured on this project's 2-core
VM, one process, medians: filling a fresh 5·10⁶-double array in a jitted function 31 ms → 17 ms,
a constant-index scatter into it 24 ms → 4.4 ms, the bratu2d Jacobian at n = 10⁶ 51 ms → 13 ms.

:func:`keep_large_buffers_in_heap` raises glibc's mmap and trim thresholds (``mallopt``), so
such buffers come from the heap and a freed one is reused by the next call, already faulted in,
and limits glibc to one arena: XLA runs calls on its worker threads, and a thread's own arena
keeps its memory in ``mmap``'d heaps of at most 64 MiB that are unmapped once free, whatever the
thresholds. With several arenas the faults came back depending on the process's history (fd1d
n = 10⁶, one process holding sparsediff's JAX Jacobian and asdex: 4.2–12 ms and 13–23 ms
against 3.2–3.9 and 6.5–8 ms with one arena). The arena limit only reaches threads that have
not allocated yet: in a process that ran XLA before loading PyTensor's JAX backend, set
``MALLOC_ARENA_MAX=1`` in the environment instead. The cost is that the process keeps up to
:data:`THRESHOLD` of freed memory instead of returning it to the kernel, and that its threads
share one arena's lock. It is process-wide: sparsediff applies it when PyTensor's JAX backend
is loaded (:func:`sparsediff.backends.jax.register_jax`), i.e. only for JAX users; set
``SPARSEDIFF_JAX_MALLOC=0`` before that to leave the allocator alone. A no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["THRESHOLD", "keep_large_buffers_in_heap", "large_buffers_kept_in_heap"]

#: Allocations up to this size come from the heap; up to this much freed memory is kept.
THRESHOLD = 1 << 30
_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_ENV = "SPARSEDIFF_JAX_MALLOC"
_applied = False


def large_buffers_kept_in_heap() -> bool:
    """Whether :func:`keep_large_buffers_in_heap` changed glibc's thresholds in this process."""
    return _applied


def keep_large_buffers_in_heap() -> bool:
    """Raise glibc's mmap/trim thresholds to :data:`THRESHOLD` and limit it to one arena
    (once); return whether applied.

    Returns False (and changes nothing) off Linux/glibc or when ``SPARSEDIFF_JAX_MALLOC=0``.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get(_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, THRESHOLD) == 1
    ok = (mallopt(_M_TRIM_THRESHOLD, THRESHOLD) == 1) and ok
    # one arena for the threads to come (XLA's workers): see the module docstring
    ok = (mallopt(_M_ARENA_MAX, 1) == 1) and ok
    _applied = ok
    return ok
