"""What the Jacobian and Hessian plans share: when to go dense, counting colors, building.

A plan is immutable once :func:`~sparsediff.plans.jacobian.jacobian_plan` or
:func:`~sparsediff.plans.hessian.hessian_plan` returns it: ``build()`` only creates graphs (and
records what it chose in the plan's ``timings``/``built`` dictionaries, which are logs, not
decisions).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytensor

from sparsediff.backends.hugepages import enable_numba_hugepages
from sparsediff.compression.folding import DEFAULT_FOLD_LIMIT

__all__ = [
    "DENSE_DENSITY",
    "DENSE_MAX_SIZE",
    "SMALL_DENSE_MAX_ENTRIES",
    "PatternStats",
    "building",
    "check_format",
    "coloring_kind",
    "compile_backend",
    "fold_limit",
    "is_dense_by_default",
    "n_colors_of",
    "small_dense",
]

#: With at most this many rows or columns (Hessians: variables), plans compute the derivative
#: densely (identity seeds): coloring cannot save anything worth its bookkeeping.
DENSE_MAX_SIZE = 4
#: At or above this density, plans compute the derivative densely.
DENSE_DENSITY = 0.5
#: ``mode="auto"`` computes Jacobians with at most this many entries (``m·n``) with
#: ``pytensor.gradient.jacobian`` (``mode="dense"``), gathered into the pattern, per backend of
#: ``pytensor.config.mode`` (the mode ``pytensor.function`` compiles with by default).
#: Measured by ``benchmarks/bench_small.py`` (plan + build + compile + first call, CPU time,
#: fresh processes; fd1d, a perfect-foresight DSGE system and a CGE model at n ≈ 50, 200,
#: 1000; README "Small systems"): with the C backend the dense setup was cheaper by 0.16–1.5 s
#: at n ≈ 50 and 200 in 11 of 12 runs, at 7–8× the sparse time per call at n ≈ 200 (0.16–0.63
#: ms against 0.02–0.08 ms); at n ≈ 1000 a dense call costs 8–28 ms against 0.04–0.2 ms, so
#: the setup saved (≤ 1.4 s) is spent within ~50 calls: the bound is 200². With Numba (the
#: default) the first call, which compiles, dominates and is mostly longer for the dense graph
#: (the DSGE system: 12–15 s dense against 4.7–8.2 s sparse at every size; where dense won, by
#: at most 1.6 s): auto never falls back there (only the tiny or dense patterns of
#: :func:`is_dense_by_default` are computed densely). Other modes (``FAST_COMPILE``, JAX) were
#: not measured and do not fall back.
SMALL_DENSE_MAX_ENTRIES: dict[str, int] = {"c": 200 * 200, "numba": 0}


def is_dense_by_default(m: int, n: int, nnz: int) -> bool:
    """Whether an ``m × n`` pattern with ``nnz`` nonzeros is computed densely by default."""
    density = nnz / (m * n) if m * n else 0.0
    return min(m, n) <= DENSE_MAX_SIZE or density >= DENSE_DENSITY


def compile_backend() -> str:
    """``"numba"``, ``"c"`` or ``"other"``: the backend of ``pytensor.config.mode``."""
    from pytensor.compile.mode import get_default_mode
    from pytensor.link.c.basic import CLinker
    from pytensor.link.numba.linker import NumbaLinker
    from pytensor.link.vm import VMLinker

    try:
        linker = get_default_mode().linker
    except Exception:  # an unknown mode name: decided when compiling, not here
        return "other"
    if isinstance(linker, NumbaLinker):
        return "numba"
    if isinstance(linker, CLinker) or (
        isinstance(linker, VMLinker) and (linker.c_thunks or linker.use_cloop)
    ):
        return "c"
    return "other"


def small_dense(m: int, n: int, nnz: int, backend: str | None = None) -> str | None:
    """Why ``mode="auto"`` computes an ``m × n`` Jacobian with ``nnz`` nonzeros densely
    (``pytensor.gradient.jacobian``, then a gather into the pattern), or ``None``: when it has
    at most :data:`SMALL_DENSE_MAX_ENTRIES` entries for the ``backend`` (by default the one of
    ``pytensor.config.mode``; see there for the measurements)."""
    backend = compile_backend() if backend is None else backend
    limit = SMALL_DENSE_MAX_ENTRIES.get(backend, 0)
    if m * n <= limit:
        return (
            f"small system: {m}×{n} ≤ {limit} entries with the {backend} backend of "
            "pytensor.config.mode, where the dense setup measured cheaper"
        )
    return None


def n_colors_of(colors: np.ndarray) -> int:
    """Number of colors (products) of an array of colors ``0 … k-1``."""
    return int(colors.max()) + 1 if colors.size else 0


def coloring_kind(coloring) -> str | None:
    """The ``kind`` of a :class:`~sparsediff.coloring.Coloring`, ``None`` for plain arrays."""
    kind = getattr(coloring, "kind", None)
    return str(kind) if kind is not None else None


def fold_limit(n_colors: int, size: int) -> int:
    """Largest constant plan-time folding may create: a few times the compressed matrix."""
    return max(DEFAULT_FOLD_LIMIT, 8 * max(n_colors, 1) * size)


def check_format(format: str) -> None:
    if format not in ("csr", "csc"):
        raise ValueError(f"format must be 'csr' or 'csc', got {format!r}")


@contextmanager
def building() -> Iterator[None]:
    """The context every ``build()`` runs in.

    Installs the huge-pages allocator hook (large outputs of Numba graphs, see
    :mod:`sparsediff.backends.hugepages`) and turns off PyTensor's stack traces: those of the
    thousands of nodes a build creates only point into sparsediff and cost seconds at large n.
    """
    enable_numba_hugepages()
    with pytensor.config.change_flags(traceback__limit=0):
        yield


class PatternStats:
    """``shape``, ``nnz`` and ``density`` of a plan, read off its full pattern (``_full``)."""

    @property
    def _full(self):  # pragma: no cover - each plan says where its full pattern is
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._full.shape)

    @property
    def nnz(self) -> int:
        return int(self._full.nnz)

    @property
    def density(self) -> float:
        m, n = self.shape
        return self.nnz / (m * n) if m * n else 0.0
