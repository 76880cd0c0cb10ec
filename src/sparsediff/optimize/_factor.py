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
        if step:
            factor_class = _STEP_CLASSES.get(backend("pos"))
            if factor_class is not None and sp.isspmatrix_csc(A) and A.has_sorted_indices:
                return factor_class(A)
        return factorize(A, "pos")
    except (NotPositiveDefiniteError, SingularMatrixError) as err:
        raise NotSPDError(str(err)) from None


def _step_classes() -> dict:
    from sparsediff.linalg import factor as layer

    return {
        name: getattr(layer, cls)
        for name, cls in (("cholmod", "CholmodFactor"), ("qdldl", "QdldlFactor"))
        if hasattr(layer, cls)
    }


_STEP_CLASSES = _step_classes()
