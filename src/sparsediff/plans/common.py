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
    "PatternStats",
    "building",
    "check_format",
    "coloring_kind",
    "fold_limit",
    "is_dense_by_default",
    "n_colors_of",
]

#: With at most this many rows or columns (Hessians: variables), plans compute the derivative
#: densely (identity seeds): coloring cannot save anything worth its bookkeeping.
DENSE_MAX_SIZE = 4
#: At or above this density, plans compute the derivative densely.
DENSE_DENSITY = 0.5


def is_dense_by_default(m: int, n: int, nnz: int) -> bool:
    """Whether an ``m × n`` pattern with ``nnz`` nonzeros is computed densely by default."""
    density = nnz / (m * n) if m * n else 0.0
    return min(m, n) <= DENSE_MAX_SIZE or density >= DENSE_DENSITY


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
