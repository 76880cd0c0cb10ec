"""sparsediff's Numba kernels: ``@kernel`` is ``numba.njit(cache=True)``, with a cheaper first
load from the cache.

Loading a cached kernel, Numba first refreshes its typing and target contexts: it imports about
50 modules of lowering code (``numba.np.arrayobj``, ``numba.np.linalg``, ``numba.typed``, …) and
installs their registries, 0.09–0.14 s of CPU in a process that has not compiled anything yet,
for the first kernel of the process (the next ones load in about 5 ms). Machine code taken
from the cache needs none of that: only the runtime (NRT, whose symbols its code calls) must be
initialized. So the kernels below load a cache hit with ``rtsys.initialize`` and Numba's own
``_load_overload``; a miss returns ``None`` as before, and the compilation that follows
refreshes both contexts itself (``numba.core.compiler.compile_extra``), as does any other
compilation in the process (PyTensor's Numba backend included).

This uses Numba internals (``Cache._load_overload``, ``_guard_against_spurious_io_errors``):
where they are missing the kernel keeps Numba's loader; ``SPARSEDIFF_NUMBA_FAST_LOAD=0`` keeps
it everywhere.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any

import numba

__all__ = ["fast_load", "kernel"]

_ENV = "SPARSEDIFF_NUMBA_FAST_LOAD"


def _enabled() -> bool:
    return os.environ.get(_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _load_overload(self, sig, target_context):
    """``Cache.load_overload`` without the context refresh (module docstring)."""
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)  # the cached code calls NRT_* symbols
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)
    return None  # an I/O error the guard swallowed: compile instead


def fast_load(dispatcher):
    """Make ``dispatcher`` (cached) load a cache hit without Numba's context refresh; returns
    it. A no-op where the Numba internals it relies on are missing, or when disabled."""
    cache = getattr(dispatcher, "_cache", None)
    if (
        _enabled()
        and cache is not None
        and hasattr(cache, "_load_overload")
        and hasattr(cache, "_guard_against_spurious_io_errors")
    ):
        try:
            from numba.core.runtime import rtsys
        except ImportError:
            return dispatcher
        if hasattr(rtsys, "initialize"):
            cache.load_overload = types.MethodType(_load_overload, cache)
    return dispatcher


def kernel(fn: Callable | None = None, **options: Any):
    """``numba.njit(cache=True, **options)`` whose cache hits load without the refresh."""

    def wrap(f: Callable):
        return fast_load(numba.njit(cache=True, **options)(f))

    return wrap if fn is None else wrap(fn)
