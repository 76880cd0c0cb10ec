"""The factorizations the optimize Ops use: :mod:`sparsediff.linalg`'s one layer, two failures.

``lu(J)`` for Jacobians and ``spd(H)`` for Hessians are :func:`sparsediff.linalg.factorize`
(orderings, CHOLMOD's per-pattern analysis and the exact-symmetry shortcut are chosen there,
for every user of the layer). What this module adds is the translation of the layer's errors
into the two failures the Newton methods treat as data: :class:`NotSPDError` (shift the Hessian,
or fall back to LU) and a ``RuntimeError`` whose message says "singular" (what
:class:`sparsediff.NewtonSolver` reports as a singular Jacobian).
"""

from __future__ import annotations

import numpy as np

from sparsediff.linalg import Factor, NotPositiveDefiniteError, SingularMatrixError, factorize

__all__ = ["Factor", "NotSPDError", "lu", "spd"]


class NotSPDError(ValueError):
    """The matrix given to :func:`spd` is not (numerically) positive definite."""


def lu(A) -> Factor:
    """LU of ``A``; ``RuntimeError("... singular ...")`` when it is singular."""
    try:
        return factorize(A, "gen")
    except SingularMatrixError as err:
        raise RuntimeError(f"the matrix is singular: {err}") from None


def spd(A) -> Factor:
    """Cholesky / LDLᵀ of symmetric ``A``; :class:`NotSPDError` unless it is SPD.

    A matrix with a diagonal entry that is not positive is rejected before any factorization
    (an SPD matrix has a positive diagonal): the Levenberg shift loop hits that case often.
    """
    diagonal = A.diagonal()
    if not np.all(diagonal > 0):
        raise NotSPDError(f"{int(np.count_nonzero(~(diagonal > 0)))} diagonal entries are not > 0")
    try:
        return factorize(A, "pos")
    except (NotPositiveDefiniteError, SingularMatrixError) as err:
        raise NotSPDError(str(err)) from None
