"""Sparse factorizations used inside the optimize Ops: LU for ``J``, LDLᵀ/LU for SPD ``H``.

A small local layer until ``sparsediff.linalg``'s factorization layer is merged: the Ops only
need *factor once, solve with it and with its transpose, tell whether it is SPD*. SuperLU (SciPy,
always there) with the ``MMD_AT_PLUS_A`` ordering does LU; for symmetric matrices qdldl (LDLᵀ,
AMD ordering, pip wheels) is used when importable — measured here on a 2-D 5-point SPD matrix
at n = 9·10⁴: qdldl 0.47 s, ``splu`` 1.1–1.6 s — and otherwise SuperLU in symmetric mode
without pivoting, whose pivots then are the LDLᵀ pivots (their signs give the inertia).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["Factor", "NotSPDError", "lu", "spd"]

try:  # optional: faster SPD factorizations
    import qdldl as _qdldl
except ImportError:  # pragma: no cover - depends on the environment
    _qdldl = None


class NotSPDError(ValueError):
    """The matrix given to :func:`spd` is not (numerically) positive definite."""


class Factor:
    """A factorization of a square sparse matrix ``A``: ``solve(b)`` = A⁻¹b, and
    ``solve(b, transposed=True)`` = A⁻ᵀb (the same as A⁻¹b for symmetric kinds)."""

    def __init__(self, kind: str, matrix, solve_fn, solve_t_fn=None):
        self.kind = kind
        self.matrix = matrix
        self._solve = solve_fn
        self._solve_t = solve_t_fn or solve_fn

    def solve(self, b: np.ndarray, transposed: bool = False) -> np.ndarray:
        return (self._solve_t if transposed else self._solve)(np.asarray(b, dtype=float))


def _csc(A) -> sp.csc_matrix:
    A = sp.csc_matrix(A)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"a square matrix is needed, got shape {A.shape}")
    return A


def lu(A, permc_spec: str = "MMD_AT_PLUS_A") -> Factor:
    """SuperLU of ``A`` (raises ``RuntimeError`` "... singular" when it is exactly singular)."""
    A = _csc(A)
    f = spla.splu(A, permc_spec=permc_spec)
    return Factor("lu", A, f.solve, lambda b: f.solve(b, trans="T"))


def spd(A) -> Factor:
    """An LDLᵀ factorization of symmetric ``A``; :class:`NotSPDError` unless every pivot > 0."""
    A = _csc(A)
    diagonal = A.diagonal()
    if not np.all(diagonal > 0):  # an SPD matrix has a positive diagonal (qdldl needs it stored)
        raise NotSPDError(f"{int(np.count_nonzero(~(diagonal > 0)))} diagonal entries are not > 0")
    if _qdldl is not None:
        try:
            s = _qdldl.Solver(sp.triu(A, format="csc"))
        except ValueError as err:  # a zero pivot
            raise NotSPDError(f"LDLᵀ broke down: {err}") from None
        d = np.asarray(s.factors()[1])
        if not (np.all(np.isfinite(d)) and np.all(d > 0)):
            raise NotSPDError(f"{int(np.count_nonzero(~(d > 0)))} pivots of LDLᵀ are not > 0")
        return Factor("ldl", A, s.solve)
    try:
        f = spla.splu(
            A,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
    except RuntimeError as err:
        raise NotSPDError(f"symmetric LU broke down: {err}") from None
    d = f.U.diagonal()
    if not (np.array_equal(f.perm_r, f.perm_c) and np.all(d > 0)):
        raise NotSPDError(f"{int(np.count_nonzero(~(d > 0)))} pivots are not > 0")
    return Factor("ldl", A, f.solve)


def backend() -> str:
    """Which SPD factorization :func:`spd` uses: ``"qdldl"`` or ``"superlu"``."""
    return "qdldl" if _qdldl is not None else "superlu"
