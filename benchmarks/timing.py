"""Timing and memory helpers for the benchmark harness.

* :func:`interleaved` times several callables in turn, repetition after repetition, so that the
  machine's load (shared, noisy) hits every tool alike; it returns median, min and max of the
  per-call time over at least ``repeats`` samples.
* :class:`Phase` measures one setup phase: wall time and the peak resident memory reached
  during it, above the resident memory at its start. On Linux the kernel's high-water mark is
  reset at the start of the phase (``/proc/self/clear_refs``), so the peak is the phase's own,
  native allocations (JAX, CasADi, C) included; elsewhere it falls back to ``tracemalloc``
  (Python allocations only).
"""

from __future__ import annotations

import ctypes
import math
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(key: str) -> float | None:
    try:
        with open(_STATUS) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Resident memory now, in MiB (None where /proc is unavailable)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def _return_free_memory() -> None:
    """Hand freed heap memory back to the kernel (glibc ``malloc_trim``), so that a phase's peak
    counts the pages it touches: once the JAX backend is loaded, sparsediff raises glibc's trim
    threshold (``sparsediff.backends.jax_memory``) and freed blocks would otherwise be reused
    without raising the resident set."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _reset_peak() -> bool:
    _return_free_memory()
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float | None:
    kb = _status_kb("VmHWM")
    return None if kb is None else kb / 1024.0


@dataclass
class Phase:
    """``with Phase() as ph: ...`` then ``ph.seconds``, ``ph.peak_mb`` (above the start)."""

    seconds: float = math.nan
    peak_mb: float = math.nan
    method: str = ""
    _t0: float = 0.0
    _rss0: float | None = None
    _tracing: bool = False

    def __enter__(self) -> Phase:
        if _reset_peak() and (rss := rss_mb()) is not None:
            self._rss0 = rss
            self.method = "rss"
        else:
            self._tracing = not tracemalloc.is_tracing()
            if self._tracing:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._rss0 = tracemalloc.get_traced_memory()[0] / 2**20
            self.method = "tracemalloc"
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self.method == "rss":
            peak = _peak_mb()
            self.peak_mb = max(0.0, (peak or 0.0) - (self._rss0 or 0.0))
        else:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            self.peak_mb = max(0.0, peak - (self._rss0 or 0.0))
            if self._tracing:
                tracemalloc.stop()


def measure(fn: Callable[[], object]) -> tuple[object, Phase]:
    """Run ``fn`` once inside a :class:`Phase`; return its result and the phase."""
    with Phase() as ph:
        out = fn()
    return out, ph


@dataclass
class Stats:
    """Per-call seconds over the samples of :func:`interleaved`."""

    median: float
    min: float
    max: float
    samples: int
    loops: int  #: calls per sample
    values: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "samples": self.samples,
            "loops": self.loops,
        }


def _loops_for(fn: Callable[[], object], min_sample_s: float) -> int:
    t0 = time.perf_counter()
    fn()
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(10_000, math.ceil(min_sample_s / dt)))


def interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int = 7,
    min_sample_s: float = 0.005,
    budget_s: float | None = None,
) -> dict[str, Stats]:
    """Median, min and max seconds per call of each callable, timed in turn.

    Every repetition times each callable once (``loops`` calls, chosen so that a sample lasts
    at least ``min_sample_s``), in the same order, so slow phases of a shared machine hit all of
    them. At least ``repeats`` repetitions are made; more while ``budget_s`` (total seconds)
    allows, up to ``3 * repeats``.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    loops = {name: _loops_for(fn, min_sample_s) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    rep = 0
    while True:
        for name, fn in fns.items():
            k = loops[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
        rep += 1
        if rep < repeats:
            continue
        elapsed = time.perf_counter() - start
        if budget_s is None or rep >= 3 * repeats or elapsed * (rep + 1) / rep > budget_s:
            break
    return {
        name: Stats(statistics.median(s), min(s), max(s), len(s), loops[name], s)
        for name, s in samples.items()
    }


def isolated_cache_env(cache: Path, root: Path) -> dict[str, str]:
    """The environment of a child process whose PyTensor and Numba caches live under ``cache``
    (empty: a first run after installing; reused: every later process), importing the
    project from ``root``."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = ",".join(
        f for f in (env.get("PYTENSOR_FLAGS", ""), f"base_compiledir={cache / 'pytensor'}") if f
    )
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root / "src"), str(root), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env
