"""User functions: ``spsolve``, ``logdet``, ``inv_diag``, ``cholesky`` on sparse variables.

``A`` is a ``pytensor.sparse`` CSR or CSC variable (what ``sd.jacobian`` / ``sd.hessian``
return) or a SciPy sparse matrix (made a constant). Its triple is taken from the ``CSR(...)`` /
``CSC(...)`` node that built it when there is one — the Ops then never see a sparse variable,
which is what lets the graph compile with Numba and JAX — and from ``csm_properties(A)``
otherwise (PyTensor's ``local_csm_properties_csm`` rewrite removes the pair later if it can).
Dense matrices are refused with a pointer to the dense Ops: converting a symbolic dense matrix
to sparse makes its pattern depend on the values, which neither the gradient on the pattern nor
JAX can handle.
"""

from __future__ import annotations

import numpy as np
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Constant, Variable
from pytensor.sparse.basic import CSM
from pytensor.sparse.variable import SparseVariable

from sparsediff.linalg import low_rank
from sparsediff.linalg.library import resolve_backend
from sparsediff.linalg.ops import CholeskyOp, InvDiag, LogDet, SpSolve
from sparsediff.plans.lazy import expand

__all__ = ["cholesky", "inv_diag", "logdet", "spsolve"]

_ON_ERROR = ("raise", "nan")


def _triple(A, what: str):
    """(fmt, data, indices, indptr, shape, static n or None) of a sparse matrix ``A``."""
    if sp.issparse(A):
        A = ps.as_sparse_variable(sp.csr_matrix(A, dtype=np.float64))
    if not isinstance(A, SparseVariable):
        kind = type(A).__name__ if not isinstance(A, Variable) else str(A.type)
        raise TypeError(
            f"sparsediff.linalg.{what} needs a sparse matrix (a pytensor.sparse CSR/CSC "
            f"variable, e.g. from sd.jacobian / sd.hessian, or a SciPy sparse matrix); got "
            f"{kind}. For a dense matrix use pytensor.tensor.linalg; to treat a dense one as "
            "sparse, build it with pytensor.sparse.csr_from_dense (its pattern then depends on "
            "the values, so JAX cannot compile it)."
        )
    A = expand(A)  # a lazy sd.jacobian/sd.hessian: its CSR(...) node, built now
    if A.owner is not None and isinstance(A.owner.op, CSM):
        data, indices, indptr, shape = A.owner.inputs
        fmt = A.owner.op.format
    else:
        data, indices, indptr, shape = ps.csm_properties(A)
        fmt = A.format
    n = None
    if isinstance(shape, Constant):
        s = tuple(int(v) for v in np.asarray(shape.data).ravel())
        if len(s) != 2 or s[0] != s[1]:
            raise ValueError(f"sparsediff.linalg.{what} needs a square matrix, got shape {s}")
        n = s[0]
    return fmt, data, indices, indptr, shape, n


def _check_on_error(on_error):
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}, got {on_error!r}")


def spsolve(
    A,
    b,
    assume_a: str = "gen",
    transposed: bool = False,
    backend: str | None = None,
) -> pt.TensorVariable:
    """Solve ``A y = b`` (``Aᵀ y = b`` with ``transposed=True``) for sparse square ``A``.

    ``b``: a vector or a matrix (one column per right-hand side). ``assume_a="gen"`` factors
    ``A`` by LU (SuperLU); ``"pos"`` assumes A symmetric positive definite and solves with its
    symmetric part by Cholesky/LDLᵀ (``backend``: see :func:`sparsediff.linalg.backend`).
    Differentiable w.r.t. ``b`` and A's data (``Ā`` on A's pattern only), to any order.
    Singular / non-SPD matrices raise ``SingularMatrixError`` / ``NotPositiveDefiniteError``
    when the function runs. ``A`` may be a :class:`~sparsediff.linalg.SparsePlusLowRank`
    (``sd.hessian(..., low_rank=True)``): solved exactly by Woodbury with the factor of its
    sparse part, which must be nonsingular (:mod:`sparsediff.linalg.low_rank`).
    """
    if isinstance(A, low_rank.SparsePlusLowRank):
        return low_rank.spsolve(A, b, assume_a=assume_a, transposed=transposed, backend=backend)
    fmt, data, indices, indptr, shape, n = _triple(A, "spsolve")
    name = resolve_backend(backend, assume_a)
    b = pt.as_tensor_variable(b)
    if b.type.ndim not in (1, 2):
        raise ValueError(f"b must be a vector or a matrix, got {b.type.ndim} dimensions")
    if n is not None and b.type.shape[0] is not None and b.type.shape[0] != n:
        raise ValueError(f"b has {b.type.shape[0]} rows for a {n}x{n} matrix")
    return SpSolve(fmt, assume_a, transposed, name)(data, indices, indptr, shape, b)


def logdet(A, backend: str | None = None, on_error: str = "raise") -> pt.TensorVariable:
    """``log det A`` for sparse symmetric positive definite ``A`` (its symmetric part).

    Gradient: ``A⁻ᵀ`` on A's pattern, by selected inversion of the factor (a small multiple of
    one factorization). ``on_error="raise"``: a matrix that is not SPD raises
    ``NotPositiveDefiniteError`` when the function runs; ``"nan"``: returns NaN (gradient NaN).
    A :class:`~sparsediff.linalg.SparsePlusLowRank` ``S + U C Uᵀ`` (SPD ``S``) goes by the
    matrix determinant lemma (:mod:`sparsediff.linalg.low_rank`).
    """
    _check_on_error(on_error)
    if isinstance(A, low_rank.SparsePlusLowRank):
        return low_rank.logdet(A, backend=backend, on_error=on_error)
    fmt, data, indices, indptr, shape, _ = _triple(A, "logdet")
    return LogDet(fmt, resolve_backend(backend, "pos"), on_error)(data, indices, indptr, shape)


def inv_diag(A, backend: str | None = None, on_error: str = "raise") -> pt.TensorVariable:
    """``diag(A⁻¹)`` for sparse SPD ``A`` (marginal variances of a GMRF with precision A).

    Computed by selected inversion; not differentiable (a gradient would need ``A⁻¹`` outside
    A's pattern). ``on_error`` as in :func:`logdet`.
    """
    _check_on_error(on_error)
    fmt, data, indices, indptr, shape, _ = _triple(A, "inv_diag")
    return InvDiag(fmt, resolve_backend(backend, "pos"), on_error)(data, indices, indptr, shape)


def cholesky(A, backend: str | None = None):
    """``(L, p)`` for sparse SPD ``A``: ``A[p][:, p] = L Lᵀ``, ``L`` a lower triangular CSC.

    ``p`` is the fill-reducing permutation (int64). A sample of ``N(μ, A⁻¹)`` is
    ``x = μ + Pᵀ L⁻ᵀ z`` i.e. ``x[p] = μ[p] + L⁻ᵀ z``, ``z ~ N(0, I)``. Not differentiable;
    C / Numba (object mode) backends only (the output is a sparse variable).
    """
    fmt, data, indices, indptr, shape, _ = _triple(A, "cholesky")
    return CholeskyOp(fmt, resolve_backend(backend, "pos"))(data, indices, indptr, shape)
