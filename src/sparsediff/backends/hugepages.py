"""Transparent huge pages for arrays that compiled Numba graphs allocate.

NumPy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array of
4 MiB or more; Numba's runtime allocates through CPython's raw allocator and does not. Where the
kernel's THP mode is ``madvise`` (the common default), a large array that Numba allocates is then
faulted in 4 KiB at a time: a Jacobian's data at n = 10⁶ (5·10⁶ doubles, 40 MB) takes 10⁴ page
faults on every call, which on a virtual machine costs several times the arithmetic (measured:
filling a fresh 40 MB array in a Numba function 27 ms, the same array allocated by NumPy 5 ms).

:func:`enable_numba_hugepages` closes that gap by hooking CPython's raw-domain allocator
(``PyMem_SetAllocator``, the mechanism ``tracemalloc`` uses): allocations of 4 MiB or more are
passed to the previous allocator unchanged and then advised exactly as NumPy advises its own.
Nothing else changes (same allocator, same ``free``), and it follows NumPy's own switch
(``numpy._core.multiarray._set_madvise_hugepage``). Plans turn it on when they build a graph;
set ``SPARSEDIFF_NUMBA_HUGEPAGES=0`` to keep the interpreter's allocator untouched.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

import numpy as np

__all__ = ["enable_numba_hugepages", "numba_hugepages_enabled"]

#: The size from which NumPy advises huge pages (``npy_alloc_cache``'s 4 MiB).
HUGEPAGE_THRESHOLD = 1 << 22
_MADV_HUGEPAGE = 14  # Linux <sys/mman.h>
_PAGE = 4096
_PYMEM_DOMAIN_RAW = 0
_ENV = "SPARSEDIFF_NUMBA_HUGEPAGES"

_lock = threading.Lock()
_installed: list = []  # the allocator struct and compiled hooks, kept alive once installed


class _PyMemAllocatorEx(ctypes.Structure):
    _fields_ = [
        ("ctx", ctypes.c_void_p),
        ("malloc", ctypes.c_void_p),
        ("calloc", ctypes.c_void_p),
        ("realloc", ctypes.c_void_p),
        ("free", ctypes.c_void_p),
    ]


def _numpy_advises_hugepages() -> bool:
    try:
        from numpy._core.multiarray import _get_madvise_hugepage
    except ImportError:  # pragma: no cover - NumPy < 2
        from numpy.core.multiarray import _get_madvise_hugepage
    return bool(_get_madvise_hugepage())


def numba_hugepages_enabled() -> bool:
    """Whether the raw-allocator hook of :func:`enable_numba_hugepages` is installed."""
    return bool(_installed)


def _compile_hooks(previous: _PyMemAllocatorEx):
    """Numba ``cfunc`` wrappers of the previous malloc/calloc/realloc that advise huge pages.

    The previous allocator's addresses are compiled in as constants, so these are built per
    process (about a second) and never cached to disk.
    """
    import numba

    size_t = ctypes.c_size_t
    libc = ctypes.CDLL(None, use_errno=True)
    madvise = ctypes.CFUNCTYPE(ctypes.c_int, size_t, size_t, ctypes.c_int)(
        ctypes.cast(libc.madvise, ctypes.c_void_p).value
    )
    old_malloc = ctypes.CFUNCTYPE(size_t, size_t, size_t)(previous.malloc)
    old_calloc = ctypes.CFUNCTYPE(size_t, size_t, size_t, size_t)(previous.calloc)
    old_realloc = ctypes.CFUNCTYPE(size_t, size_t, size_t, size_t)(previous.realloc)
    threshold, page_mask, advice = HUGEPAGE_THRESHOLD, np.uintp(_PAGE - 1), _MADV_HUGEPAGE

    @numba.njit(inline="always")
    def advise(pointer, size):
        if pointer != 0 and size >= threshold:
            start = (pointer + page_mask) & ~page_mask
            madvise(start, pointer + size - start, advice)  # advice only: errors are harmless

    word = numba.types.uintp

    @numba.cfunc(word(word, word))
    def malloc_hook(ctx, size):
        pointer = old_malloc(ctx, size)
        advise(pointer, size)
        return pointer

    @numba.cfunc(word(word, word, word))
    def calloc_hook(ctx, count, item_size):
        pointer = old_calloc(ctx, count, item_size)
        advise(pointer, count * item_size)
        return pointer

    @numba.cfunc(word(word, word, word))
    def realloc_hook(ctx, old_pointer, size):
        pointer = old_realloc(ctx, old_pointer, size)
        advise(pointer, size)
        return pointer

    return malloc_hook, calloc_hook, realloc_hook


def enable_numba_hugepages() -> bool:
    """Advise huge pages on large arrays allocated by Numba-compiled functions, as NumPy does.

    Idempotent and process-wide. Returns whether the hook is installed: it is not on platforms
    other than Linux, when NumPy itself does not advise huge pages (old kernels, or switched
    off), or when ``SPARSEDIFF_NUMBA_HUGEPAGES=0``.
    """
    if _installed:
        return True
    if (
        not sys.platform.startswith("linux")
        or os.environ.get(_ENV, "1").strip().lower() in {"0", "false", "no", "off"}
        or not _numpy_advises_hugepages()
    ):
        return False
    with _lock:
        if _installed:
            return True
        api = ctypes.pythonapi
        for function in (api.PyMem_GetAllocator, api.PyMem_SetAllocator):
            function.argtypes = [ctypes.c_int, ctypes.POINTER(_PyMemAllocatorEx)]
            function.restype = None
        previous = _PyMemAllocatorEx()
        api.PyMem_GetAllocator(_PYMEM_DOMAIN_RAW, ctypes.byref(previous))
        hooks = _compile_hooks(previous)
        # ``ctx`` and ``free`` stay the previous allocator's: every block, whenever allocated,
        # is freed by the allocator that made it.
        hooked = _PyMemAllocatorEx(previous.ctx, *(hook.address for hook in hooks), previous.free)
        api.PyMem_SetAllocator(_PYMEM_DOMAIN_RAW, ctypes.byref(hooked))
        _installed.extend([hooked, hooks, previous])
    return True
