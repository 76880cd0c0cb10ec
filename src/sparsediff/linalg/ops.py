"""The PyTensor Ops of sparsediff.linalg. Each takes a sparse matrix as its CSR/CSC *triple*.

Inputs are ``(data, indices, indptr, shape, ...)`` — plain tensors, never a sparse variable —
so the Ops run on every backend: the C and Python backends call ``perform``; the Numba backend
runs ``perform`` in object mode (one call per Op into the library, nothing per element); the
JAX backend calls it through ``jax.pure_callback`` (registered in
:mod:`sparsediff.linalg.jax_linalg`; the host round trip copies ``data`` and the right-hand
sides once per call). The user functions in :mod:`sparsediff.linalg.api` take the triple
straight from the ``CSR(...)``/``CSC(...)`` constructor that built the matrix, or from
``csm_properties``.

Every ``perform`` gets its factor from :func:`sparsediff.linalg.factor.cached_factorize`, keyed
on the matrix content: the value Op and its gradient Ops (and other Ops on the same matrix)
share one factorization per evaluation.

``props``: ``fmt`` ("csr"/"csc": how to read the triple), ``assume_a`` ("gen"/"pos"),
``backend`` (resolved when the graph is built), and per Op ``transposed`` / ``on_error``.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.sparse.type import SparseTensorType

from sparsediff.linalg.factor import NotPositiveDefiniteError, cached_factorize

__all__ = ["CholeskyOp", "InvDiag", "InvOnPattern", "LinalgOp", "LogDet", "SpSolve"]


def _triple_inputs(data, indices, indptr, shape):
    data = pt.cast(pt.as_tensor_variable(data), "float64")
    indices = pt.as_tensor_variable(indices)
    indptr = pt.as_tensor_variable(indptr)
    shape = pt.as_tensor_variable(shape)
    for name, v, nd in (("data", data, 1), ("indices", indices, 1), ("indptr", indptr, 1)):
        if v.type.ndim != nd:
            raise TypeError(f"{name} must be a vector, got {v.type}")
    if not (indices.type.dtype.startswith("int") and indptr.type.dtype.startswith("int")):
        raise TypeError("indices and indptr must be integer vectors")
    return [data, indices, indptr, shape]


def pattern_rows_cols(fmt, indices, indptr, shape):
    """Row and column index of every stored entry, symbolically (constant-folded when the
    pattern is constant, as it always is for sparsediff's Jacobians and Hessians)."""
    n = shape[0]
    major = pt.repeat(pt.arange(n, dtype=indices.dtype), pt.diff(indptr))
    return (major, indices) if fmt == "csr" else (indices, major)


class LinalgOp(Op):
    """Common base: the triple inputs, the factor lookup, disconnected integer inputs."""

    n_triple = 4

    def factor(self, inputs):
        data, indices, indptr, shape = inputs[:4]
        return cached_factorize(data, indices, indptr, shape, self.fmt, self.assume_a, self.backend)

    def connection_pattern(self, node):
        return (
            [[True] * len(node.outputs)]
            + [[False] * len(node.outputs)] * 3
            + [[True] * len(node.outputs)] * (len(node.inputs) - 4)
        )

    def _disconnected(self):
        return [DisconnectedType()() for _ in range(3)]


class SpSolve(LinalgOp):
    """``y = A⁻¹ b`` (or ``A⁻ᵀ b``); ``b`` a vector or a matrix of right-hand sides.

    Gradient: ``b̄ = A⁻ᵀ ȳ`` (this Op, transposed: the same cached factor) and, on A's pattern
    only, ``Ā = −b̄ yᵀ`` (``−y b̄ᵀ`` when transposed; the symmetric part of it for SPD). It is
    written with this Op and gathers, so it can itself be differentiated again.
    """

    __props__ = ("fmt", "assume_a", "transposed", "backend")

    def __init__(self, fmt, assume_a, transposed, backend):
        self.fmt, self.assume_a, self.transposed, self.backend = (
            fmt,
            assume_a,
            bool(transposed),
            backend,
        )

    def make_node(self, data, indices, indptr, shape, b):
        inputs = _triple_inputs(data, indices, indptr, shape)
        b = pt.cast(pt.as_tensor_variable(b), "float64")
        if b.type.ndim not in (1, 2):
            raise TypeError(f"b must be a vector or a matrix, got {b.type}")
        return Apply(self, [*inputs, b], [b.type()])

    def perform(self, node, inputs, outputs):
        b = inputs[4]
        outputs[0][0] = self.factor(inputs).solve(b, transposed=self.transposed)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[4]]

    def pullback(self, inputs, outputs, output_grads):
        data, indices, indptr, shape, _b = inputs
        (y,) = outputs
        (gy,) = output_grads
        transposed = self.transposed if self.assume_a == "gen" else False
        gb = SpSolve(self.fmt, self.assume_a, not transposed, self.backend)(
            data, indices, indptr, shape, gy
        )
        rows, cols = pattern_rows_cols(self.fmt, indices, indptr, shape)
        y2 = y if y.type.ndim == 2 else y[:, None]
        gb2 = gb if gb.type.ndim == 2 else gb[:, None]

        def outer_on_pattern(u, v):  # (u vᵀ)[rows, cols]
            return (u[rows] * v[cols]).sum(axis=1)

        if self.assume_a == "pos":
            gdata = -0.5 * (outer_on_pattern(gb2, y2) + outer_on_pattern(y2, gb2))
        elif self.transposed:
            gdata = -outer_on_pattern(y2, gb2)
        else:
            gdata = -outer_on_pattern(gb2, y2)
        return [gdata, *self._disconnected(), gb]


class _SPDOp(LinalgOp):
    """An Op on an SPD matrix (its symmetric part) that can return NaN instead of raising."""

    __props__ = ("fmt", "backend", "on_error")
    assume_a = "pos"

    def __init__(self, fmt, backend, on_error="raise"):
        self.fmt, self.backend, self.on_error = fmt, backend, on_error


class LogDet(_SPDOp):
    """``log det A`` of an SPD matrix (its symmetric part). Gradient: ``A⁻ᵀ`` on A's pattern.

    ``on_error="raise"`` raises :class:`NotPositiveDefiniteError` for a matrix that is not SPD;
    ``"nan"`` returns NaN instead (and a NaN gradient), which samplers treat as a rejection.
    """

    def make_node(self, data, indices, indptr, shape):
        inputs = _triple_inputs(data, indices, indptr, shape)
        return Apply(self, inputs, [pt.dscalar()])

    def perform(self, node, inputs, outputs):
        try:
            value = self.factor(inputs).logdet()
        except NotPositiveDefiniteError:
            if self.on_error == "raise":
                raise
            value = np.nan
        outputs[0][0] = np.asarray(value, dtype=np.float64)

    def infer_shape(self, fgraph, node, shapes):
        return [()]

    def pullback(self, inputs, outputs, output_grads):
        (g,) = output_grads
        zdata = InvOnPattern(self.fmt, self.backend, self.on_error)(*inputs)
        return [g * zdata, *self._disconnected()]


class InvOnPattern(_SPDOp):
    """``S⁻¹`` at the stored positions of A (S its symmetric part), by selected inversion.

    The gradient of :class:`LogDet`. It has no gradient itself (second derivatives of logdet
    are not implemented: asking for one raises PyTensor's ``NullTypeGradError``).
    """

    def make_node(self, data, indices, indptr, shape):
        inputs = _triple_inputs(data, indices, indptr, shape)
        return Apply(self, inputs, [pt.dvector()])

    def perform(self, node, inputs, outputs):
        data, indices, indptr = inputs[:3]
        n = indptr.shape[0] - 1
        try:
            f = self.factor(inputs)
        except NotPositiveDefiniteError:
            if self.on_error == "raise":
                raise
            outputs[0][0] = np.full(data.shape, np.nan)
            return
        major = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
        minor = indices.astype(np.int64, copy=False)
        rows, cols = (major, minor) if self.fmt == "csr" else (minor, major)
        outputs[0][0] = f.inv_on_pattern(rows, cols)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def pullback(self, inputs, outputs, output_grads):
        return [
            grad_not_implemented(self, 0, inputs[0], "second derivatives of sparse logdet"),
            *self._disconnected(),
        ]


class InvDiag(_SPDOp):
    """``diag(S⁻¹)`` for SPD A by selected inversion. Not differentiable (see the README)."""

    def make_node(self, data, indices, indptr, shape):
        inputs = _triple_inputs(data, indices, indptr, shape)
        return Apply(self, inputs, [pt.dvector()])

    def perform(self, node, inputs, outputs):
        n = inputs[2].shape[0] - 1
        try:
            outputs[0][0] = self.factor(inputs).inv_diag()
        except NotPositiveDefiniteError:
            if self.on_error == "raise":
                raise
            outputs[0][0] = np.full(n, np.nan)

    def infer_shape(self, fgraph, node, shapes):
        return [(shapes[2][0] - 1,)]

    def pullback(self, inputs, outputs, output_grads):
        return [
            grad_not_implemented(
                self,
                0,
                inputs[0],
                "inv_diag is not differentiable (it would need A⁻¹ outside A's pattern)",
            ),
            *self._disconnected(),
        ]


class CholeskyOp(LinalgOp):
    """``(L, p)``: ``L`` lower triangular CSC with ``S[p][:, p] = L Lᵀ``; ``p`` int64.

    The output is a sparse variable (its pattern depends on the fill), so this Op runs on the
    C/Python backends and in Numba's object mode, not under JAX. Not differentiable.
    """

    __props__ = ("fmt", "backend")
    assume_a = "pos"

    def __init__(self, fmt, backend):
        self.fmt, self.backend = fmt, backend

    def make_node(self, data, indices, indptr, shape):
        inputs = _triple_inputs(data, indices, indptr, shape)
        return Apply(self, inputs, [SparseTensorType("csc", "float64")(), pt.lvector()])

    def perform(self, node, inputs, outputs):
        import scipy.sparse as sp

        L, D, p = self.factor(inputs).ldl()
        n = D.shape[0]
        s = np.sqrt(D)
        Lc = (sp.eye(n, format="csc") + L) @ sp.diags(s)
        Lc = sp.csc_matrix(Lc)
        Lc.sort_indices()
        outputs[0][0] = Lc
        outputs[1][0] = p.astype(np.int64)

    def pullback(self, inputs, outputs, output_grads):
        return [
            grad_not_implemented(self, 0, inputs[0], "sparse cholesky is not differentiable"),
            *self._disconnected(),
        ]


def register_numba_linalg() -> None:
    """Run ``perform`` in Numba's object mode, without PyTensor's generic warning.

    Object mode is the design here (one call per Op into SuperLU / CHOLMOD / qdldl), not an
    accident the user should be warned about.
    """
    import warnings

    from pytensor.link.numba.dispatch.basic import generate_fallback_impl, numba_funcify

    @numba_funcify.register(LinalgOp)
    def numba_funcify_linalg(op, node=None, storage_map=None, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Numba will use object mode")
            return generate_fallback_impl(op, node, storage_map, **kwargs)
