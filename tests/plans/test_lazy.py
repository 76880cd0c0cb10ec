"""Lazy sparse Jacobians and Hessians (``lazy=True``): one node, expanded at compile time.

Every lazy result is compared with the eager one (values and structure) and with the dense
``pytensor.gradient`` reference; every rewrite is checked to fire by inspecting the compiled
graph, and to give the eager values.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.compile.mode import Mode
from pytensor.gradient import DisconnectedInputError
from pytensor.sparse.basic import CSM, Diag
from pytensor.sparse.math import StructuredDot

import sparsediff as sd
from sparsediff.plans.lazy import SparseJacobian, diagonal_colors
from tests.jacobian_helpers import dense_reference, random_value
from tests.sparsity.catalogue import CASES

# the module (``sparsediff.plans.jacobian`` the attribute is the function of that name)
jacobian_module = importlib.import_module("sparsediff.plans.jacobian")

MODE = "FAST_COMPILE"
RTOL = 1e-12

_SUBSET = [
    "fd1d_concat",
    "bratu2d_set_subtensor",
    "mul_constant_zeros",
    "advanced_inc_with_duplicates",
    "join_split",
    "rank3_expression",
    "intermediate_wrt",
    "scan_cumulative_recurrence",
]
_CASES = [c for c in CASES if c.name in _SUBSET]


def _nodes(fn, op_class) -> list:
    return [n for n in fn.maker.fgraph.apply_nodes if isinstance(n.op, op_class)]


def _is_csm(node) -> bool:
    return isinstance(node.op, CSM) or type(node.op).__name__.endswith("CSM")


def _csm_count(fn) -> int:
    return sum(_is_csm(n) for n in fn.maker.fgraph.apply_nodes)


def _same(lazy, eager, exact_structure=True):
    """Same values; same structure (or, when the lazy pattern may be sparser, a subset)."""
    lazy, eager = sp.csr_array(lazy), sp.csr_array(eager)
    assert lazy.shape == eager.shape
    np.testing.assert_allclose(lazy.toarray(), eager.toarray(), rtol=RTOL, atol=1e-14)
    if exact_structure:
        assert np.array_equal(lazy.indptr, eager.indptr)
        assert np.array_equal(lazy.indices, eager.indices)
    else:
        assert (lazy.astype(bool) > eager.astype(bool)).nnz == 0


def _tridiagonal(n=12):
    x = pt.vector("x", shape=(n,))
    p = pt.scalar("p")
    F = pt.sin(x) * pt.roll(x, 1) + p * x**2 * pt.roll(x, -1)
    return F, x, p


def _values(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, n), 1.7


# --------------------------------------------------------------------------------------------
# lazy == eager on the catalogue
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@pytest.mark.parametrize("case", _CASES, ids=[c.name for c in _CASES])
def test_catalogue_lazy_equals_eager(case, mode):
    expression, wrt, inputs = case.build()
    lazy = [sd.jacobian(expression, w, mode=mode, lazy=True, dense=False) for w in wrt]
    eager = [sd.jacobian(expression, w, mode=mode, dense=False) for w in wrt]
    assert all(isinstance(J.owner.op, SparseJacobian) for J in lazy)
    assert all(J.type == E.type for J, E in zip(lazy, eager, strict=True))
    fn = pytensor.function(inputs, lazy + eager, mode=MODE, on_unused_input="ignore")
    assert not _nodes(fn, SparseJacobian)
    values = [random_value(v, np.random.default_rng(1)) for v in inputs]
    out = fn(*values)
    k = len(wrt)
    reference = dense_reference(expression, wrt, inputs, values)
    for b in range(k):
        _same(out[b], out[k + b])
        np.testing.assert_allclose(out[b].toarray(), reference[b], rtol=1e-10, atol=1e-12)


_HESSIAN_CASES = ["bratu2d_set_subtensor", "cumsum_cumprod"]


@pytest.mark.parametrize("name", _HESSIAN_CASES)
def test_catalogue_hessian_lazy_equals_eager(name):
    (case,) = [c for c in CASES if c.name == name]
    expression, wrt, inputs = case.build()
    cost = (expression**2).sum() + pt.exp(wrt[0]).sum()
    H = sd.hessian(cost, wrt[0], lazy=True)
    He = sd.hessian(cost, wrt[0])
    assert H.type == He.type
    fn = pytensor.function(inputs, [H, He], mode=MODE, on_unused_input="ignore")
    values = [random_value(v, np.random.default_rng(2)) for v in inputs]
    a, b = fn(*values)
    _same(a, b)
    g = pytensor.grad(cost, wrt[0]).ravel()
    n = int(np.prod(wrt[0].type.shape))
    Hd = pytensor.gradient.jacobian(g, wrt[0]).reshape((n, n))
    dense = pytensor.function(inputs, Hd, mode=MODE, on_unused_input="ignore")
    np.testing.assert_allclose(a.toarray(), dense(*values), rtol=1e-10, atol=1e-12)


def test_csc_format_and_cvm_backend():
    F, x, p = _tridiagonal()
    J = sd.jacobian(F, x, lazy=True, format="csc")
    assert J.type.format == "csc"
    fn = pytensor.function([x, p], [J, sd.jacobian(F, x, format="csc")], mode="CVM")
    a, b = fn(*_values(12))
    assert a.format == "csc"
    _same(a, b)


def test_unexpanded_node_runs_in_perform():
    """A mode without rewrites reaches ``perform``: the node expands itself, same values."""
    F, x, p = _tridiagonal()
    fn = pytensor.function([x, p], sd.jacobian(F, x, lazy=True), mode=Mode("py", None))
    assert _nodes(fn, SparseJacobian)
    eager = pytensor.function([x, p], sd.jacobian(F, x), mode=MODE)
    _same(fn(*_values(12)), eager(*_values(12)))


# --------------------------------------------------------------------------------------------
# Simplification before detection
# --------------------------------------------------------------------------------------------


def test_pattern_detected_after_the_outer_graph_is_simplified():
    """``p * roll(x)`` couples neighbours; with ``p = 0`` given at compile time the coupling
    is removed by canonicalization before the lazy node is planned: a diagonal pattern."""
    n = 10
    x = pt.vector("x", shape=(n,))
    p = pt.scalar("p")
    F = x**2 + p * pt.roll(x, 1)
    zero = pt.constant(np.float64(0.0))
    fn = pytensor.function(
        [x], [sd.jacobian(F, x, lazy=True), sd.jacobian(F, x)], givens={p: zero}, mode=MODE
    )
    xv, _ = _values(n)
    lazy, eager = fn(xv)
    assert lazy.nnz == n and eager.nnz == 2 * n
    _same(lazy, eager, exact_structure=False)
    np.testing.assert_allclose(lazy.toarray(), np.diag(2 * xv), rtol=RTOL)


# --------------------------------------------------------------------------------------------
# Products: no plan at all
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["FAST_COMPILE", "CVM"])
def test_products_become_one_jvp_and_one_vjp(backend, monkeypatch):
    F, x, p = _tridiagonal()
    J = sd.jacobian(F, x, lazy=True)
    v = pt.vector("v", shape=(12,))
    w = pt.vector("w", shape=(12,))
    V = pt.matrix("V", shape=(12, 3))
    outs = [J @ v, ps.dot(J, v), ps.structured_dot(J, v[:, None]), J.T @ w, ps.dot(J.T, w), J @ V]
    planned = []
    original = jacobian_module.jacobian_plan
    monkeypatch.setattr(
        jacobian_module, "jacobian_plan", lambda *a, **k: planned.append(1) or original(*a, **k)
    )
    fn = pytensor.function([x, p, v, w, V], outs, mode=backend)
    assert not planned, "a product must not plan the Jacobian"
    assert not _nodes(fn, SparseJacobian) and _csm_count(fn) == 0
    rng = np.random.default_rng(3)
    xv, pv = _values(12)
    vv, wv, Vv = rng.normal(size=12), rng.normal(size=12), rng.normal(size=(12, 3))
    got = fn(xv, pv, vv, wv, Vv)
    Je = pytensor.function([x, p], sd.jacobian(F, x), mode=MODE)(xv, pv).toarray()
    want = [Je @ vv, Je @ vv, (Je @ vv)[:, None], Je.T @ wv, Je.T @ wv, Je @ Vv]
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-12, atol=1e-14)


def test_product_without_a_forward_route_uses_the_expanded_jacobian():
    """An Op with no JVP: ``J @ v`` (a dense ``Matmul``) falls back to the sparse product of
    the expanded Jacobian (planned in reverse mode), with the same values."""
    from tests.users_graphs import first_order_only

    x = pt.vector("x", shape=(6,))
    F = first_order_only(x.reshape((2, 3))).ravel() * pt.roll(x, 1)
    v = pt.vector("v", shape=(6,))
    fn = pytensor.function([x, v], sd.jacobian(F, x, lazy=True) @ v, mode=MODE)
    assert not _nodes(fn, SparseJacobian) and _nodes(fn, StructuredDot)
    xv = np.random.default_rng(7).uniform(0.5, 1.5, 6)
    Jd = pytensor.function([x], pytensor.gradient.jacobian(F, x), mode=MODE)(xv)
    np.testing.assert_allclose(fn(xv, np.ones(6)), Jd @ np.ones(6), rtol=1e-12)


def test_hessian_vector_product_is_one_hvp():
    n = 10
    x = pt.vector("x", shape=(n,))
    p = pt.scalar("p")
    cost = (pt.exp(x) * pt.roll(x, 1)).sum() + p * (x**4).sum()
    H = sd.hessian(cost, x, lazy=True)
    v = pt.vector("v", shape=(n,))
    fn = pytensor.function([x, p, v], [H @ v, H.T @ v], mode="CVM")
    assert not _nodes(fn, SparseJacobian) and _csm_count(fn) == 0
    xv, pv = _values(n)
    vv = np.random.default_rng(4).normal(size=n)
    He = pytensor.function([x, p], sd.hessian(cost, x), mode=MODE)(xv, pv).toarray()
    for g in fn(xv, pv, vv):
        np.testing.assert_allclose(g, He @ vv, rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------------------------
# Blocks, diagonal, shared plans
# --------------------------------------------------------------------------------------------


def _record_plans(monkeypatch) -> list:
    shapes = []
    original = jacobian_module.jacobian_plan

    def recording(*args, **kwargs):
        plan = original(*args, **kwargs)
        shapes.append(plan.shape)
        return plan

    monkeypatch.setattr(jacobian_module, "jacobian_plan", recording)
    return shapes


@pytest.mark.parametrize(
    "block",
    [(slice(2, 9), slice(3, 11)), (slice(None), slice(0, 12, 3)), (slice(5, 6), slice(None))],
    ids=["rows-cols", "strided-cols", "one-row"],
)
def test_block_plans_only_the_block(block, monkeypatch):
    F, x, p = _tridiagonal()
    J = sd.jacobian(F, x, lazy=True)
    shapes = _record_plans(monkeypatch)
    fn = pytensor.function([x, p], J[block], mode=MODE)
    rows, cols = (len(range(12)[s]) for s in block)
    assert shapes == [(rows, cols)]
    assert not _nodes(fn, SparseJacobian)
    eager = pytensor.function([x, p], sd.jacobian(F, x)[block], mode=MODE)
    _same(fn(*_values(12)), eager(*_values(12)))


def test_hessian_block():
    n = 12
    x = pt.vector("x", shape=(n,))
    cost = (pt.exp(x) * pt.roll(x, 1)).sum() + (x**4).sum()
    fn = pytensor.function(
        [x], [sd.hessian(cost, x, lazy=True)[3:9, 2:7], sd.hessian(cost, x)[3:9, 2:7]], mode=MODE
    )
    a, b = fn(_values(n)[0])
    _same(a, b)


def test_diagonal_needs_fewer_colors():
    """A periodic tridiagonal Jacobian (even n) needs 3 colors; its diagonal alone 2."""
    F, x, _ = _tridiagonal()
    pattern = sd.jacobian_sparsity(F, x)
    colors = diagonal_colors(pattern)
    assert colors.max() + 1 == 2 < sd.jacobian_plan(F, x, dense=False).n_colors == 3
    # validity: no two structurally coupled columns share a color
    coo = sp.coo_array(pattern)
    off = coo.row != coo.col
    assert np.all(colors[coo.row[off]] != colors[coo.col[off]])


@pytest.mark.parametrize("kind", ["jacobian", "hessian"])
def test_diagonal_rewrite(kind):
    F, x, p = _tridiagonal()
    if kind == "hessian":
        F = (F**2).sum()
        lazy, eager = sd.hessian(F, x, lazy=True), sd.hessian(F, x)
    else:
        lazy, eager = sd.jacobian(F, x, lazy=True), sd.jacobian(F, x)
    fn = pytensor.function([x, p], Diag()(lazy), mode=MODE)
    assert not _nodes(fn, SparseJacobian) and _csm_count(fn) == 0
    ref = pytensor.function([x, p], eager, mode=MODE)(*_values(12))
    np.testing.assert_allclose(fn(*_values(12)), ref.diagonal(), rtol=1e-12, atol=1e-14)


def test_equal_lazy_jacobians_share_one_plan(monkeypatch):
    F, x, p = _tridiagonal()
    J1, J2 = sd.jacobian(F, x, lazy=True), sd.jacobian(F, x, lazy=True)
    assert J1.owner.op == J2.owner.op and hash(J1.owner.op) == hash(J2.owner.op)
    assert sd.jacobian(F, x, lazy=True, mode="reverse").owner.op != J1.owner.op
    shapes = _record_plans(monkeypatch)
    fn = pytensor.function([x, p], [J1, J2], mode=MODE)
    assert len(shapes) == 1 and _csm_count(fn) == 1
    a, b = fn(*_values(12))
    _same(a, b)


# --------------------------------------------------------------------------------------------
# Gradients through a lazy J
# --------------------------------------------------------------------------------------------


def _central_fd(f, values, i, h=1e-6):
    up = [np.array(v, dtype=float, copy=True) for v in values]
    dn = [np.array(v, dtype=float, copy=True) for v in values]
    if up[i].ndim == 0:
        up[i], dn[i] = up[i] + h, dn[i] - h
        return (f(*up) - f(*dn)) / (2 * h)
    g = np.zeros_like(up[i])
    for k in range(up[i].size):
        u, d = [a.copy() for a in up], [a.copy() for a in dn]
        u[i].flat[k] += h
        d[i].flat[k] -= h
        g.flat[k] = (f(*u) - f(*d)) / (2 * h)
    return g


def test_grad_through_lazy_jacobian():
    F, x, p = _tridiagonal()
    J, Je = sd.jacobian(F, x, lazy=True), sd.jacobian(F, x)
    cost, cost_e = ps.sp_sum(ps.sqr(J)), ps.sp_sum(ps.sqr(Je))
    fn = pytensor.function([x, p], [cost, *pytensor.grad(cost, [x, p])], mode=MODE)
    fe = pytensor.function([x, p], [cost_e, *pytensor.grad(cost_e, [x, p])], mode=MODE)
    xv, pv = _values(12)
    got, want = fn(xv, pv), fe(xv, pv)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    # dense algebra: cost = ||J||_F² with the dense Jacobian
    Jd = pytensor.gradient.jacobian(F, x)
    dense = pytensor.function(
        [x, p], [(Jd**2).sum(), *pytensor.grad((Jd**2).sum(), [x, p])], mode=MODE
    )
    for g, w in zip(got, dense(xv, pv), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10)
    value = pytensor.function([x, p], cost, mode=MODE)
    np.testing.assert_allclose(got[2], _central_fd(value, [xv, pv], 1), rtol=1e-6)
    np.testing.assert_allclose(got[1], _central_fd(value, [xv, pv], 0), rtol=1e-6)


def test_grad_of_logdet_of_lazy_hessian():
    n = 8
    x = pt.vector("x", shape=(n,))
    p = pt.scalar("p")
    cost = (pt.exp(x) * p).sum() + 0.3 * (x * pt.roll(x, 1)).sum() + (x**4).sum()
    H, He = sd.hessian(cost, x, lazy=True), sd.hessian(cost, x)
    ld, ld_e = sd.linalg.logdet(H), sd.linalg.logdet(He)
    fn = pytensor.function([x, p], [ld, *pytensor.grad(ld, [x, p])], mode=MODE)
    fe = pytensor.function([x, p], [ld_e, *pytensor.grad(ld_e, [x, p])], mode=MODE)
    xv, pv = np.random.default_rng(5).uniform(0.5, 1.0, n), 1.3
    got = fn(xv, pv)
    for g, w in zip(got, fe(xv, pv), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    Hd = pytensor.gradient.hessian(cost, x)
    dense = pytensor.function([x, p], pt.linalg.slogdet(Hd)[1], mode=MODE)
    np.testing.assert_allclose(got[0], dense(xv, pv), rtol=1e-10)
    value = pytensor.function([x, p], ld, mode=MODE)
    np.testing.assert_allclose(got[2], _central_fd(value, [xv, pv], 1), rtol=1e-6)
    np.testing.assert_allclose(got[1], _central_fd(value, [xv, pv], 0), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Errors at the call
# --------------------------------------------------------------------------------------------


def _message(call):
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (pt.vector("x").sum(), pt.vector("x")),  # no static shape
        lambda: ((pt.ivector("i", shape=(3,)) * 2.0).sum(), pt.ivector("i", shape=(3,))),
    ],
    ids=["no-static-shape", "integer-wrt"],
)
def test_eager_checks_fail_at_the_call_with_the_same_message(make):
    expr, wrt = make()
    expr = pt.stack([expr, expr])
    lazy = _message(lambda: sd.jacobian(expr, wrt, lazy=True))
    eager = _message(lambda: sd.jacobian(expr, wrt))
    assert lazy == eager


def test_bad_arguments_fail_at_the_call():
    F, x, p = _tridiagonal()
    with pytest.raises(ValueError, match="unknown mode"):
        sd.jacobian(F, x, mode="sideways", lazy=True)
    with pytest.raises(ValueError, match="format"):
        sd.jacobian(F, x, format="coo", lazy=True)
    with pytest.raises(TypeError, match="colouring"):
        sd.jacobian(F, x, colouring=None, lazy=True)
    with pytest.raises(TypeError, match="colouring"):
        sd.hessian((F**2).sum(), x, colouring=None, lazy=True)
    y = pt.vector("y", shape=(12,))
    with pytest.raises(ValueError, match="each block on its own"):
        sd.jacobian(F, [x, y], lazy=True, sparsity=[None, None], coloring=np.zeros(24, int))
    with pytest.raises(DisconnectedInputError):
        sd.jacobian(F, y, lazy=True)
    J = sd.jacobian(F, y, lazy=True, disconnected_inputs="ignore")
    fn = pytensor.function([x, p, y], J, mode=MODE, on_unused_input="ignore")
    assert fn(*_values(12), np.ones(12)).nnz == 0
    with pytest.raises(ValueError):
        sd.hessian(F, x, lazy=True)  # not a scalar cost


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------


def _backend_check(backend):
    F, x, p = _tridiagonal()
    J = sd.jacobian(F, x, lazy=True)
    v = pt.vector("v", shape=(12,))
    fn = pytensor.function([x, p, v], [J, J @ v, J.T @ v, J[2:7, 1:9]], mode=backend)
    assert not _nodes(fn, SparseJacobian)
    xv, pv = _values(12)
    vv = np.random.default_rng(6).normal(size=12)
    Je = pytensor.function([x, p], sd.jacobian(F, x), mode=MODE)(xv, pv)
    Jv, Jv_, JTv, block = fn(xv, pv, vv)
    dense = np.asarray(Je.toarray())
    np.testing.assert_allclose(np.asarray(Jv.todense()), dense, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(Jv_), dense @ vv, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(JTv), dense.T @ vv, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(block.todense()), dense[2:7, 1:9], rtol=1e-12)


@pytest.mark.numba
def test_numba_backend():
    _backend_check("NUMBA")


@pytest.mark.jax
def test_jax_backend():
    pytest.importorskip("jax")
    _backend_check("JAX")


# --------------------------------------------------------------------------------------------
# Property: any block of a lazy Jacobian is the eager block
# --------------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(
    r0=st.integers(0, 11),
    r_len=st.integers(1, 12),
    c0=st.integers(0, 11),
    c_len=st.integers(1, 12),
    step=st.integers(1, 3),
)
def test_random_blocks_match_eager(r0, r_len, c0, c_len, step):
    F, x, p = _tridiagonal()
    block = (slice(r0, r0 + r_len), slice(c0, c0 + c_len, step))
    fn = pytensor.function(
        [x, p], [sd.jacobian(F, x, lazy=True)[block], sd.jacobian(F, x)[block]], mode=MODE
    )
    assert not _nodes(fn, SparseJacobian)
    a, b = fn(*_values(12, seed=r0 + c0))
    _same(a, b)


def test_list_wrt_gives_one_lazy_node_per_block():
    """Like the eager call: a Jacobian block per wrt, and the diagonal Hessian blocks."""
    F, x, p = _tridiagonal()
    q = pt.vector("q", shape=(3,))
    G = F + pt.concatenate([q, q, q, q]) ** 2
    lazy = sd.jacobian(G, [x, q], lazy=True)
    eager = sd.jacobian(G, [x, q])
    cost = (G**2).sum()
    lazy_h = sd.hessian(cost, [x, q], lazy=True)
    eager_h = sd.hessian(cost, [x, q])
    assert len(lazy) == len(lazy_h) == 2
    assert all(isinstance(b.owner.op, SparseJacobian) for b in [*lazy, *lazy_h])
    fn = pytensor.function(
        [x, p, q],
        [*lazy, *eager, *lazy_h, *eager_h],
        mode=MODE,
        on_unused_input="ignore",
    )
    xv, _ = _values(12)
    out = fn(xv, 1.0, np.array([0.3, -0.2, 0.5]))
    for got, want in zip(out[:2] + out[4:6], out[2:4] + out[6:8], strict=True):
        np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=RTOL, atol=1e-14)
