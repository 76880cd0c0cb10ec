"""Vectorization of ``pytensor.sparse`` Ops over the colors (compression/vectorize_sparse.py), the
vector-product rewrite (``_sparse_ops.py``) and the error for sparse matrices that depend on wrt.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.gradient import grad
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.traversal import toposort
from pytensor.sparse.math import Dot as SparseDot
from pytensor.sparse.math import StructuredDot
from pytensor.tensor.blockwise import Blockwise

import sparsediff as sd
from sparsediff._sparse_ops import SparseDependsOnWrt, matrix_sparse_products
from sparsediff.compression.vectorize_sparse import SPARSE_VECTORIZE_RULES, sparse_op_classes

RNG = np.random.default_rng(0)
W = sp.random(7, 5, density=0.3, format="csr", random_state=1)
WS = ps.as_sparse_variable(W)


def _run(outputs, inputs, values):
    return pytensor.function(inputs, outputs, mode="FAST_COMPILE")(*values)


def _no_sparse_blockwise(outputs):
    sparse = tuple(sparse_op_classes())
    for node in toposort(outputs):
        if isinstance(node.op, Blockwise):
            assert not isinstance(node.op.core_op, sparse), node


# --- the rules, one Op at a time ---------------------------------------------------------------


@pytest.mark.parametrize("batch", [(3,), (2, 3)])
@pytest.mark.parametrize("core", ["vector", "matrix"])
def test_dense_times_sparse_batched(batch, core):
    """``x @ W`` with x batched (B…, n) or (B…, k, n): one product, exact per batch entry."""
    x = pt.vector("x", shape=(7,)) if core == "vector" else pt.matrix("x", shape=(4, 7))
    y = ps.dot(x, WS)
    xb = pt.tensor("xb", shape=(*batch, *x.type.shape))
    yb = vectorize_graph(y, {x: xb})
    _no_sparse_blockwise([yb])
    xv = RNG.normal(size=xb.type.shape)
    np.testing.assert_allclose(_run(yb, [xb], [xv]), xv @ W.toarray(), rtol=1e-13)


@pytest.mark.parametrize("batch", [(3,), (2, 3)])
@pytest.mark.parametrize("core", ["vector", "matrix"])
def test_sparse_times_dense_batched(batch, core):
    """``W.T @ y`` with y batched (B…, n) or (B…, n, k): one product, exact per batch entry."""
    y = pt.vector("y", shape=(7,)) if core == "vector" else pt.matrix("y", shape=(7, 2))
    out = ps.dot(WS.T, y)
    yb = pt.tensor("yb", shape=(*batch, *y.type.shape))
    ob = vectorize_graph(out, {y: yb})
    _no_sparse_blockwise([ob])
    yv = RNG.normal(size=yb.type.shape)
    spec = "ij,...j->...i" if core == "vector" else "ij,...jk->...ik"
    want = np.einsum(spec, W.T.toarray(), yv)
    np.testing.assert_allclose(_run(ob, [yb], [yv]), want, rtol=1e-13)


def test_structured_dot_and_transpose_batched():
    """PyTensor's own StructuredDot rule, and the transposes around it, stay native."""
    x = pt.vector("x", shape=(5,))
    out = ps.structured_dot(WS, x[:, None])[:, 0] + pt.dot(x[None, :], WS.T)[0]
    xb = pt.matrix("xb", shape=(4, 5))
    ob = vectorize_graph(out, {x: xb})
    _no_sparse_blockwise([ob])
    xv = RNG.normal(size=(4, 5))
    np.testing.assert_allclose(_run(ob, [xb], [xv]), 2 * xv @ W.T.toarray(), rtol=1e-13)


def test_add_sd_batched():
    """sparse + dense is dense: batched as a broadcast sum."""
    y = pt.matrix("y", shape=(7, 5))
    out = ps.add(WS, y)
    yb = pt.tensor3("yb", shape=(3, 7, 5))
    ob = vectorize_graph(out, {y: yb})
    yv = RNG.normal(size=(3, 7, 5))
    np.testing.assert_allclose(_run(ob, [yb], [yv]), yv + W.toarray(), rtol=1e-13)


def test_unbatched_sparse_ops_rebuilt():
    """Sparse Ops of constants only (sp_sum, transpose, dense_from_sparse) stay as they are."""
    x = pt.vector("x", shape=(5,))
    out = x * ps.sp_sum(WS, axis=0) + ps.dense_from_sparse(WS.T).sum(axis=1)
    xb = pt.matrix("xb", shape=(3, 5))
    ob = vectorize_graph(out, {x: xb})
    _no_sparse_blockwise([ob])
    xv = RNG.normal(size=(3, 5))
    want = xv * W.sum(axis=0).A1 + W.T.toarray().sum(axis=1)
    np.testing.assert_allclose(_run(ob, [xb], [xv]), want, rtol=1e-13)


def test_batched_sparse_matrix_is_a_clear_error():
    """A sparse result of a batched input (one sparse matrix per color) is refused by name."""
    t = pt.matrix("t", shape=(7, 5))
    out = ps.dense_from_sparse(ps.multiply(WS, t))
    tb = pt.tensor3("tb", shape=(3, 7, 5))
    with pytest.raises(SparseDependsOnWrt, match="cannot be batched over the colors"):
        vectorize_graph(out, {t: tb})


def test_every_sparse_op_has_a_rule():
    """No pytensor.sparse Op is left to PyTensor's Blockwise fallback."""
    from pytensor.graph.replace import _vectorize_node
    from pytensor.tensor.blockwise import vectorize_node_fallback

    for cls in sparse_op_classes():
        assert _vectorize_node.dispatch(cls) is not vectorize_node_fallback, cls
    assert SPARSE_VECTORIZE_RULES[SparseDot].__name__ == "vectorize_sparse_dot"


# --- the vector-product rewrite ----------------------------------------------------------------


def test_vector_products_rewritten_and_differentiable():
    z = pt.vector("z", shape=(7,))
    u = pt.vector("u", shape=(5,))
    cost = (ps.dot(z, WS) ** 2).sum() + (ps.dot(WS, u) * z).sum()
    with pytest.raises(NotImplementedError, match="non-matrix b"):  # PyTensor 3.0.7 itself
        grad(cost, z)
    (rewritten,) = matrix_sparse_products([cost])
    gz, gu = grad(rewritten, [z, u])
    zv, uv = RNG.normal(size=7), RNG.normal(size=5)
    Wd = W.toarray()
    c, gzv, guv = _run([rewritten, gz, gu], [z, u], [zv, uv])
    np.testing.assert_allclose(c, ((zv @ Wd) ** 2).sum() + (Wd @ uv) @ zv, rtol=1e-13)
    np.testing.assert_allclose(gzv, 2 * Wd @ (zv @ Wd) + Wd @ uv, rtol=1e-13)
    np.testing.assert_allclose(guv, Wd.T @ zv, rtol=1e-13)


def test_graphs_without_vector_products_unchanged():
    z = pt.matrix("z", shape=(1, 7))
    cost = ps.dot(z, WS).sum()
    assert matrix_sparse_products([cost])[0] is cost


def test_dense_true_dot_rewritten():
    """dense_from_sparse(true_dot(W, y)): its sparse intermediate would depend on wrt."""
    y = pt.vector("y", shape=(5,))
    out = ps.dense_from_sparse(ps.true_dot(WS, y[:, None]))[:, 0] * y.sum()
    J = sd.jacobian(out, y, dense=False)
    yv = RNG.normal(size=5)
    Wd = W.toarray()
    want = np.outer(Wd @ yv, np.ones(5)) + Wd * yv.sum()
    np.testing.assert_allclose(_run(J, [y], [yv]).toarray(), want, rtol=1e-13)


# --- compressed graphs: no Blockwise of a sparse Op; the product stays sparse -------------------


@pytest.mark.parametrize("method", ["forward-over-reverse", "reverse-over-reverse"])
def test_compressed_hessian_is_native(method):
    n = 30
    Wr = sp.random(n, n, density=0.1, format="csr", random_state=0)
    x = pt.vector("x", shape=(n + 1,))
    cost = (x[n] * (x[:n] * ps.dot(x[:n], Wr + Wr.T))).sum()
    plan = sd.hessian_plan(cost, x, dense=False)
    assert plan.n_colors < n
    B = plan.compressed(method)
    nodes = list(toposort([B]))
    _no_sparse_blockwise([B])
    assert any(isinstance(node.op, SparseDot | StructuredDot) for node in nodes)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_compressed_jacobian_is_native(mode):
    x = pt.vector("x", shape=(8,))
    Wr = sp.random(6, 8, density=0.3, format="csr", random_state=2)
    F = ps.dot(Wr, x**2) * x[:6]
    plan = sd.jacobian_plan(F, x, mode=mode, dense=False)
    outs = plan.compressed()
    _no_sparse_blockwise(outs)
    assert any(isinstance(n.op, SparseDot | StructuredDot) for n in toposort(outs))


# --- sparse matrices that depend on wrt: one clear error ---------------------------------------


def _wrt_dependent_sparse():
    n = 6
    Wr = sp.random(n, n, density=0.4, format="csr", random_state=3)
    z, tau = pt.vector("z", shape=(n,)), pt.vector("tau", shape=(1,))
    Q = ps.CSR(tau[0] * Wr.data, Wr.indices, Wr.indptr, Wr.shape)  # differentiable in PyTensor
    return (z * ps.structured_dot(Q, z[:, None])[:, 0]).sum(), z, tau, Wr


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_sparse_depending_on_wrt_jacobian_error(mode):
    cost, z, tau, _ = _wrt_dependent_sparse()
    F = pytensor.grad(cost, z)
    with pytest.raises(SparseDependsOnWrt, match="computes a sparse matrix from wrt"):
        sd.jacobian(F, [z, tau], mode=mode)


def test_sparse_depending_on_wrt_hessian_error():
    cost, z, tau, _ = _wrt_dependent_sparse()
    with pytest.raises(SparseDependsOnWrt, match="constant or independent of wrt"):
        sd.hessian(cost, [z, tau])


def test_sparse_of_fixed_structure_not_in_wrt():
    """The same graph w.r.t. z alone: Q's values are data, its structure (CSM with constant
    indices) makes the pattern exact, and the Hessian Q + Qᵀ is right."""
    cost, z, tau, Wr = _wrt_dependent_sparse()
    P = sd.hessian_sparsity(cost, z)
    want = (abs(Wr) + abs(Wr.T)) != 0
    assert (P != want).nnz == 0
    H = sd.hessian(cost, z, dense=False)
    got = _run(H, [z, tau], [RNG.normal(size=6), np.array([1.5])]).toarray()
    np.testing.assert_allclose(got, 1.5 * (Wr + Wr.T).toarray(), rtol=1e-13)
