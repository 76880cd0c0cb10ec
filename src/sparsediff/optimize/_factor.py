"""The factorizations the optimize Ops use, from :mod:`sparsediff.linalg`'s one layer.

``lu(J)`` for Jacobians (SuperLU, ``MMD_AT_PLUS_A``) and ``spd(H)`` for Hessians (CHOLMOD,
qdldl or SuperLU, whichever :func:`sparsediff.linalg.backend` names), with the two failures the
Newton methods treat as data: :class:`NotSPDError` (shift the Hessian, or fall back to LU) and a
``RuntimeError`` whose message says "singular" (what :class:`sparsediff.NewtonSolver` reports
as a singular Jacobian).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sparsediff.linalg import (
    Factor,
    NotPositiveDefiniteError,
    SingularMatrixError,
    backend,
    factorize,
)
from sparsediff.linalg import factor as layer

__all__ = ["Factor", "NotSPDError", "lu", "spd"]


class NotSPDError(ValueError):
    """The matrix given to :func:`spd` is not (numerically) positive definite."""


def lu(A) -> Factor:
    """LU of ``A``; ``RuntimeError("... singular ...")`` when it is singular."""
    try:
        return factorize(A, "gen")
    except SingularMatrixError as err:
        raise RuntimeError(f"the matrix is singular: {err}") from None


def spd(A, step: bool = False) -> Factor:
    """Cholesky / LDLᵀ of symmetric ``A``; :class:`NotSPDError` unless it is SPD.

    ``step=True`` (a Newton step, whose direction needs no more than the matrix to rounding):
    the matrix is handed to CHOLMOD or qdldl as it is, without forming the symmetric part
    ``(A + Aᵀ)/2`` first — a Hessian from ``sd.hessian`` is symmetric to rounding, and the
    symmetrization is about a third of a factorization's time at n ≈ 10³ (measured here).
    """
    diagonal = A.diagonal()
    if not np.all(diagonal > 0):  # an SPD matrix has a positive diagonal: no factorization
        raise NotSPDError(f"{int(np.count_nonzero(~(diagonal > 0)))} diagonal entries are not > 0")
    try:
        if step and sp.isspmatrix_csc(A) and A.has_sorted_indices:
            name = backend("pos")
            if name == "cholmod":
                return _cholmod_step(A)
            factor_class = _STEP_CLASSES.get(name)
            if factor_class is not None:
                return factor_class(A)
        return factorize(A, "pos")
    except (NotPositiveDefiniteError, SingularMatrixError) as err:
        raise NotSPDError(str(err)) from None


def _step_classes() -> dict:
    return {
        name: getattr(layer, cls)
        for name, cls in (("cholmod", "CholmodFactor"), ("qdldl", "QdldlFactor"))
        if hasattr(layer, cls)
    }


_STEP_CLASSES = _step_classes()


class _StepFactor:
    """A CHOLMOD factor for one Newton step: ``solve`` only (no ``L``, no logdet extracted)."""

    kind = "cholmod-step"

    def __init__(self, factor):
        self._f = factor

    def solve(self, b: np.ndarray, transposed: bool = False) -> np.ndarray:
        return self._f.solve_A(np.asarray(b, dtype=float))


_symbolic: dict = {}  # pattern key -> the chosen CHOLMOD symbolic analysis (last two patterns)

#: Analyses tried on a new pattern; the one whose first numeric factorization is fastest is
#: kept for every later step on that pattern. Measured here on a 2-D grid Hessian at
#: n = 9·10⁴ (one BLAS thread): simplicial + nested dissection 0.12 s, CHOLMOD's default
#: (supernodal, AMD) 0.40 s; elsewhere (dense-ish rows, many BLAS threads) supernodal wins.
_CANDIDATES = ({"mode": "simplicial", "ordering_method": "nesdis"}, {})


def _check_pd(f):
    with np.errstate(invalid="ignore", divide="ignore"):
        if not np.isfinite(f.logdet()):  # simplicial LDLᵀ: a negative pivot
            raise NotSPDError("CHOLMOD: a non-positive pivot; the matrix is not SPD")


def _cholmod_step(A) -> _StepFactor:
    """CHOLMOD numeric factorization reusing the symbolic analysis of A's pattern: a Newton
    loop factors one pattern many times. Measured here at n = 9·10⁴ (2-D grid Hessian): the
    extraction of ``L`` that :func:`sparsediff.linalg.factorize` does for logdet and selected
    inversion is 0.05 s of a 0.37 s factorization, not needed for a step; the analysis is
    chosen among :data:`_CANDIDATES` by timing the first factorization of each."""
    import time

    from sksparse import cholmod

    key = (A.shape, A.indptr.tobytes(), A.indices.tobytes())
    try:
        sym = _symbolic.get(key)
        if sym is not None:
            f = sym.cholesky(A)
        else:
            best = None
            for options in _CANDIDATES:
                try:
                    candidate = cholmod.analyze(A, **options)
                except Exception:  # e.g. CHOLMOD built without METIS: no nesdis
                    continue
                t0 = time.perf_counter()
                factor = candidate.cholesky(A)
                seconds = time.perf_counter() - t0
                if best is None or seconds < best[0]:
                    best = (seconds, candidate, factor)
            _, sym, f = best
            _symbolic[key] = sym
            while len(_symbolic) > 2:
                _symbolic.pop(next(iter(_symbolic)))
    except cholmod.CholmodNotPositiveDefiniteError as err:
        raise NotSPDError(f"CHOLMOD: {err}") from None
    _check_pd(f)
    return _StepFactor(f)
