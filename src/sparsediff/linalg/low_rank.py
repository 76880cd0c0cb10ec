"""Sparse plus low-rank matrices ``A = S + U C Uᵀ``: exact solves and log-determinants.

``sd.hessian(cost, wrt, low_rank=True)`` returns a :class:`SparsePlusLowRank` when the cost
couples many unknowns through a few scalars (see :mod:`sparsediff.sparsity.lowrank`). Its
dense part is never formed; ``sd.linalg.spsolve`` and ``sd.linalg.logdet`` take it and work
with the factorization of ``S`` and ``r × r`` dense algebra (``r`` = columns of ``U``):

* Woodbury: ``A⁻¹ b = S⁻¹b − S⁻¹U (I + C UᵀS⁻¹U)⁻¹ C UᵀS⁻¹b``;
* matrix determinant lemma: ``log det A = log det S + log det(I + C UᵀS⁻¹U)``.

Neither needs ``C⁻¹`` (the Hessian's ``C`` may be singular). Both are compositions of the
differentiable ``spsolve`` / ``logdet`` Ops (one factor of ``S`` shared by all, through the
factor cache) and PyTensor's dense ``solve`` / ``det``, so gradients w.r.t. S's data, ``U``,
``C`` and ``b`` come by composition, to any order.

``S`` must be nonsingular (SPD for ``logdet`` and for ``assume_a="pos"``): the sparse Ops raise
``SingularMatrixError`` / ``NotPositiveDefiniteError`` when the function runs otherwise. A
singular ``A`` (a singular capacitance ``I + C UᵀS⁻¹U``) raises in the dense solve; a ``logdet``
whose capacitance determinant is not positive (``A`` is not SPD although ``S`` is) raises
``AssertionError`` (or gives NaN with ``on_error="nan"``).
"""

from __future__ import annotations

import numpy as np
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Variable
from pytensor.raise_op import Assert
from pytensor.sparse.variable import SparseVariable
from pytensor.tensor.linalg.summary import SLogDet

__all__ = ["SparsePlusLowRank", "logdet", "spsolve"]


def _static_dim(v, axis):
    shape = getattr(v.type, "shape", None)
    return None if shape is None else shape[axis]


class SparsePlusLowRank:
    """``S + U C Uᵀ``: ``S`` sparse ``n × n`` (CSR/CSC variable), ``U`` dense ``n × r``,
    ``C`` dense ``r × r`` (PyTensor variables; NumPy / SciPy values become constants).

    ``S`` must be nonsingular for :func:`spsolve` and SPD for :func:`logdet` (see the module).
    ``-A`` and ``a * A`` (a scalar) stay sparse plus low-rank; ``A @ v`` is ``S v + U (C Uᵀv)``;
    :meth:`to_dense` / :meth:`to_sparse` form the whole matrix (for checks and small problems).
    """

    def __init__(self, S, U, C):
        if sp.issparse(S):
            S = ps.as_sparse_variable(sp.csr_matrix(S, dtype=np.float64))
        if not isinstance(S, SparseVariable):
            raise TypeError(f"S must be a sparse matrix (pytensor.sparse variable), got {S!r}")
        U = pt.as_tensor_variable(U)
        C = pt.as_tensor_variable(C)
        if U.type.ndim != 2 or C.type.ndim != 2:
            raise ValueError(
                f"U and C must be matrices, got U with {U.type.ndim} and C with "
                f"{C.type.ndim} dimensions"
            )
        n_s = _static_dim(S, 0) if hasattr(S.type, "shape") else None
        checks = [
            ("rows of U", _static_dim(U, 0), "rows of S", n_s),
            ("columns of U", _static_dim(U, 1), "rows of C", _static_dim(C, 0)),
            ("rows of C", _static_dim(C, 0), "columns of C", _static_dim(C, 1)),
        ]
        for a, va, b, vb in checks:
            if va is not None and vb is not None and va != vb:
                raise ValueError(f"S + U C Uᵀ: {a} ({va}) must equal {b} ({vb})")
        self.S, self.U, self.C = S, U, C

    @property
    def rank(self) -> int | None:
        """``r``, the columns of ``U`` (``None`` when not static)."""
        return _static_dim(self.U, 1)

    @property
    def outputs(self) -> tuple[Variable, Variable, Variable]:
        """``(S, U, C)``, e.g. for ``pytensor.function(inputs, H.outputs)``."""
        return self.S, self.U, self.C

    def __repr__(self) -> str:
        return f"SparsePlusLowRank(S={self.S}, U={self.U.type}, C={self.C.type})"

    def __neg__(self) -> SparsePlusLowRank:
        return self * -1.0

    def __mul__(self, a) -> SparsePlusLowRank:
        a = pt.as_tensor_variable(a)
        if a.type.ndim != 0:
            raise ValueError("a SparsePlusLowRank matrix can only be scaled by a scalar")
        return SparsePlusLowRank(_scale_sparse(self.S, a), self.U, self.C * a)

    __rmul__ = __mul__

    def __matmul__(self, v):
        """``A v = S v + U (C (Uᵀ v))`` (``v`` a vector or a matrix): no dense ``n × n``."""
        v = pt.as_tensor_variable(v)
        lr = self.U @ (self.C @ (self.U.T @ v))
        return (
            ps.structured_dot(self.S, v[:, None])[:, 0] + lr
            if v.ndim == 1
            else (ps.structured_dot(self.S, v) + lr)
        )

    def to_dense(self) -> pt.TensorVariable:
        """The whole matrix, dense ``n × n`` (``O(n²)``: for checks and small problems)."""
        return ps.dense_from_sparse(self.S) + self.U @ self.C @ self.U.T

    def to_sparse(self) -> SparseVariable:
        """The whole matrix as a CSR variable (its pattern depends on the values: checks only)."""
        return ps.csr_from_dense(self.to_dense())


def _scale_sparse(S: SparseVariable, a) -> SparseVariable:
    """``a S`` rebuilt from S's triple (a ``CSR(...)`` node again, as the linalg Ops want)."""
    from sparsediff.linalg.api import _triple

    fmt, data, indices, indptr, shape, _ = _triple(S, "SparsePlusLowRank")
    build = ps.CSR if fmt == "csr" else ps.CSC
    return build(data * pt.cast(a, data.dtype), indices, indptr, shape)


def _parts(A: SparsePlusLowRank):
    U, C = pt.cast(A.U, "float64"), pt.cast(A.C, "float64")
    return A.S, U, C


def _capacitance(S, U, C, assume_a: str, transposed: bool, backend):
    """``(S⁻¹U, K)`` with ``K = I + C UᵀS⁻¹U`` (``r × r``); ``S⁻ᵀ`` with ``transposed``."""
    from sparsediff.linalg import api

    SiU = api.spsolve(S, U, assume_a=assume_a, transposed=transposed, backend=backend)
    K = pt.eye(U.shape[1], dtype="float64") + C @ (U.T @ SiU)
    return SiU, K


def spsolve(
    A: SparsePlusLowRank,
    b,
    assume_a: str = "gen",
    transposed: bool = False,
    backend: str | None = None,
) -> pt.TensorVariable:
    """``A⁻¹ b`` by Woodbury (``Aᵀ`` with ``transposed``: ``Sᵀ + U Cᵀ Uᵀ``); see the module."""
    from sparsediff.linalg import api

    S, U, C = _parts(A)
    if transposed:
        C = C.T
    b = pt.as_tensor_variable(b)
    if b.type.ndim not in (1, 2):
        raise ValueError(f"b must be a vector or a matrix, got {b.type.ndim} dimensions")
    n = _static_dim(U, 0)
    if n is not None and b.type.shape[0] is not None and b.type.shape[0] != n:
        raise ValueError(f"b has {b.type.shape[0]} rows for a {n}x{n} matrix")
    Sib = api.spsolve(S, b, assume_a=assume_a, transposed=transposed, backend=backend)
    if A.rank == 0:
        return Sib
    SiU, K = _capacitance(S, U, C, assume_a, transposed, backend)
    rhs = C @ (U.T @ Sib)
    z = pt.linalg.solve(K, rhs)
    y = Sib - SiU @ z
    return Assert("sparse + low-rank solve: the matrix is singular (non-finite result)")(
        y, pt.all(pt.isfinite(z))
    )


def logdet(
    A: SparsePlusLowRank, backend: str | None = None, on_error: str = "raise"
) -> pt.TensorVariable:
    """``log det A`` for SPD ``A = S + U C Uᵀ`` with SPD ``S`` (determinant lemma)."""
    from sparsediff.linalg import api

    S, U, C = _parts(A)
    if A.rank == 0:
        return api.logdet(S, backend=backend, on_error=on_error)
    _, K = _capacitance(S, U, C, "pos", False, backend)
    # The value: log|det K|, differentiable. The sign (is A SPD?) comes from the SLogDet Op
    # itself, not from det(K): PyTensor 3.0.7 rewrites det(K) into prod(diag(LU)) when an LU of
    # K is in the graph (a solve with A next to this logdet) and drops the pivots' sign.
    ld = api.logdet(S, backend=backend, on_error=on_error) + pt.log(pt.abs(pt.linalg.det(K)))
    sign, _ = SLogDet()(K)
    if on_error == "nan":
        return pt.switch(sign > 0, ld, np.nan)
    return Assert(
        "sparse + low-rank logdet: det(I + C UᵀS⁻¹U) is not positive, so S + U C Uᵀ is not "
        "positive definite"
    )(ld, sign > 0)
