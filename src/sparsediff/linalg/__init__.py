"""sparsediff.linalg: sparse solve, log-determinant, selected inverse and Cholesky in the graph.

Differentiable PyTensor Ops on ``pytensor.sparse`` matrices (e.g. ``sd.jacobian`` /
``sd.hessian`` results), factored once per evaluation by SuperLU, CHOLMOD or qdldl:

* :func:`spsolve` — ``A⁻¹ b`` / ``A⁻ᵀ b`` (LU, or Cholesky/LDLᵀ with ``assume_a="pos"``);
* :func:`logdet` — ``log det A`` (SPD), gradient ``A⁻ᵀ`` on A's pattern by selected inversion;
* :func:`inv_diag` — ``diag(A⁻¹)`` (SPD, marginal variances);
* :func:`cholesky` — ``(L, p)`` with ``A[p][:, p] = L Lᵀ`` (sampling);
* :class:`SparsePlusLowRank` — ``S + U C Uᵀ`` (``sd.hessian(..., low_rank=True)``), which
  ``spsolve`` and ``logdet`` take exactly (Woodbury, determinant lemma).

:func:`backend`, :func:`available_backends` and :func:`use_backend` show and choose the
library; :func:`factorize` is the reusable factorization layer (``Factor.solve`` / ``logdet``).
"""

from sparsediff.linalg.api import cholesky, inv_diag, logdet, spsolve
from sparsediff.linalg.factor import (
    Factor,
    NotPositiveDefiniteError,
    SingularMatrixError,
    clear_factor_cache,
    factor_stats,
    factorize,
)
from sparsediff.linalg.library import available_backends, backend, use_backend
from sparsediff.linalg.low_rank import SparsePlusLowRank

__all__ = [
    "Factor",
    "NotPositiveDefiniteError",
    "SingularMatrixError",
    "SparsePlusLowRank",
    "available_backends",
    "backend",
    "cholesky",
    "clear_factor_cache",
    "factor_stats",
    "factorize",
    "inv_diag",
    "logdet",
    "spsolve",
    "use_backend",
]
