"""Stage 3: seeds, batched JVP/VJP/HVP graphs, plan-time folding, vectorization rules."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import hessian as dense_hessian
from pytensor.gradient import jacobian as dense_jacobian
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.traversal import applys_between, graph_inputs
from pytensor.tensor.blockwise import Blockwise

from sparsediff.compression import (
    compressed_hvp,
    compressed_pullback,
    compressed_pushforward,
    fold_constants,
    graph_cost,
    seed_matrix,
)
from tests.jacobian_helpers import bratu2d, bratu2d_colors

MODE = "FAST_COMPILE"


def _nodes(outputs):
    outputs = list(outputs)
    return list(applys_between(list(graph_inputs(outputs)), outputs))


def test_seed_matrix():
    S = seed_matrix(np.array([0, 2, 1, 0]), 3)
    np.testing.assert_array_equal(S, [[1, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]])
    assert seed_matrix(np.array([0, 1]), 2, dtype="float32").dtype == np.float32
    with pytest.raises(ValueError, match="colors must lie"):
        seed_matrix(np.array([0, 3]), 2)


def _jac(expr, wrt, values):
    J = dense_jacobian(expr.ravel(), wrt, vectorize=True, disconnected_inputs="ignore")
    fn = pytensor.function(wrt, J, mode=MODE, on_unused_input="ignore")
    m = int(np.prod(expr.type.shape))
    return [np.asarray(j).reshape(m, -1) for j in fn(*values)]


@pytest.mark.parametrize("use_op", [True, False, "auto"])
def test_pushforward_is_J_times_seeds(use_op):
    x = pt.vector("x", shape=(5,))
    y = pt.matrix("y", shape=(2, 2))
    expr = pt.concatenate([pt.exp(x) * x[::-1], (y * x[:2]).ravel()])
    rng = np.random.default_rng(0)
    seeds = rng.random((3, 9))
    B = compressed_pushforward(expr, [x, y], seeds, use_op_pushforward=use_op)
    assert B.type.shape == (3, 9)
    xv, yv = rng.random(5), rng.random((2, 2))
    got = pytensor.function([x, y], B, mode=MODE)(xv, yv)
    J = np.hstack(_jac(expr, [x, y], [xv, yv]))
    np.testing.assert_allclose(got, (J @ seeds.T).T, rtol=1e-13)


def test_pushforward_several_wrt_with_dependent_cotangents():
    """PyTensor 3.0.7's pushforward (double pullback, several wrt) drops the ``A`` term of
    ``solve(A, b)``: its known_grads overwrite the ``A`` cotangent's dependence on ``b``'s."""
    A = pt.tensor3("A", shape=(3, 2, 2))
    b = pt.matrix("b", shape=(3, 2))
    expr = pt.linalg.solve(A + 3 * pt.eye(2), b, b_ndim=1)
    seeds = np.eye(18)
    B = compressed_pushforward(expr, [A, b], seeds, use_op_pushforward=False)
    rng = np.random.default_rng(1)
    Av, bv = rng.random((3, 2, 2)), rng.random((3, 2))
    got = pytensor.function([A, b], B, mode=MODE)(Av, bv)
    J = np.hstack(_jac(expr, [A, b], [Av, bv]))
    np.testing.assert_allclose(got.T, J, rtol=1e-12, atol=1e-14)


def test_pushforward_falls_back_when_an_op_has_no_forward_rule():
    """``Eye`` has no ``pushforward`` (PyTensor asks every node, even constant ones): the
    direct path fails and ``"auto"`` falls back to the double pullback."""
    x = pt.vector("x", shape=(4,))
    m = x.reshape((2, 2))
    expr = (m @ (m + 3 * pt.eye(2))).ravel()
    seeds = np.eye(4)
    with pytest.raises(NotImplementedError):
        compressed_pushforward(expr, [x], seeds, use_op_pushforward=True)
    B = compressed_pushforward(expr, [x], seeds)
    xv = np.array([0.5, 1.5, 0.7, 1.1])
    got = pytensor.function([x], B, mode=MODE)(xv)
    np.testing.assert_allclose(got.T, _jac(expr, [x], [xv])[0], rtol=1e-13)


def test_pullback_is_seeds_times_J():
    x = pt.vector("x", shape=(5,))
    p = pt.scalar("p")
    expr = (pt.outer(x, x[:3]) * p).T  # rank 2 expression, (3, 5)
    seeds = np.random.default_rng(2).random((4, 15))
    (Bt,) = compressed_pullback(expr, [x], seeds)
    assert Bt.type.shape == (4, 5)
    xv = np.linspace(0.1, 1, 5)
    got = pytensor.function([x, p], Bt, mode=MODE)(xv, 2.0)
    Jfn = pytensor.function([x, p], dense_jacobian(expr.ravel(), x, vectorize=True), mode=MODE)
    np.testing.assert_allclose(got, seeds @ Jfn(xv, 2.0), rtol=1e-13)


@pytest.mark.parametrize("method", ["forward-over-reverse", "reverse-over-reverse"])
def test_hvp_is_H_times_seeds(method):
    x = pt.vector("x", shape=(6,))
    cost = (pt.exp(x[1:]) * x[:-1] ** 2).sum() + (x**4).sum()
    seeds = np.random.default_rng(3).random((3, 6))
    B = compressed_hvp(cost, x, seeds, method=method)
    xv = np.linspace(-1, 1, 6)
    got = pytensor.function([x], B, mode=MODE)(xv)
    H = pytensor.function([x], dense_hessian(cost, x), mode=MODE)(xv)
    np.testing.assert_allclose(got, (H @ seeds.T).T, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown Hessian method"):
        compressed_hvp(cost, x, seeds, method="sideways")


def test_folding_leaves_no_seed_allocation_or_padding():
    """Bratu: everything that depends only on the seeds is a constant after folding, so the
    compiled compressed product is ``C0 + C1 * exp(u)`` — no Alloc, no (Inc|Set)Subtensor."""
    N = 12
    r, x = bratu2d(N)
    seeds = seed_matrix(bratu2d_colors(N), 5)
    B = compressed_pushforward(r, [x], seeds)
    unfolded = {type(n.op).__name__ for n in _nodes([B])}
    assert {"Alloc", "IncSubtensor"} & unfolded
    (folded,) = fold_constants([B])
    fn = pytensor.function([x], folded, mode="FAST_RUN")
    ops = {type(n.op).__name__ for n in fn.maker.fgraph.apply_nodes}
    assert not {"Alloc", "AllocEmpty", "IncSubtensor", "AdvancedIncSubtensor1"} & ops, ops
    elemwise = [n for n in fn.maker.fgraph.apply_nodes if type(n.op).__name__ == "Elemwise"]
    assert len(elemwise) <= 2, [str(n.op) for n in elemwise]
    xv = np.random.default_rng(0).random(N * N)
    ref = pytensor.function([x], B, mode=MODE)(xv)
    np.testing.assert_allclose(fn(xv), ref, rtol=1e-14)


def test_fold_limit_and_graph_cost():
    x = pt.vector("x", shape=(3,))
    big = pt.zeros((1000,)) + 1.0
    out = x.sum() + big
    (kept,) = fold_constants([out], limit=10)
    assert any(type(n.op).__name__ == "Alloc" for n in _nodes([kept]))
    (folded,) = fold_constants([out])
    assert not any(type(n.op).__name__ == "Alloc" for n in _nodes([folded]))
    assert graph_cost([folded]) < graph_cost([kept])


def test_vectorized_split_and_uneven_join_need_no_blockwise():
    x = pt.vector("x", shape=(6,))
    a, b, c = pt.split(x, [1, 2, 3])
    y = pt.concatenate([pt.zeros((2,)), c * x[0], a * b[0], b[::-1]])
    w = y.type()
    (g,) = [pytensor.gradient.pullback(y, x, w)]
    W = pt.constant(np.random.default_rng(0).random((3, 8)))
    G = vectorize_graph(g, {w: pt.matrix("W", shape=(3, 8))})
    assert not [n for n in _nodes([G]) if isinstance(n.op, Blockwise) and "Split" in str(n.op)]
    t = x.type()
    jv = pytensor.gradient.pushforward(y, x, t, use_op_pushforward=True)
    JV = vectorize_graph(jv, {t: pt.matrix("T", shape=(3, 6))})
    assert not [n for n in _nodes([JV]) if isinstance(n.op, Blockwise) and "Join" in str(n.op)]
    fn = pytensor.function([x], vectorize_graph(g, {w: W}), mode=MODE)
    xv = np.arange(1.0, 7.0)
    J = pytensor.function([x], dense_jacobian(y, x, vectorize=True), mode=MODE)(xv)
    np.testing.assert_allclose(fn(xv), W.data @ J, rtol=1e-13)


def test_vectorized_pad_ifelse_and_inc_subtensor_need_no_blockwise():
    from pytensor.ifelse import ifelse

    x = pt.vector("x", shape=(6,))
    c = pt.scalar("c")
    y = pt.pad(x.reshape((2, 3)), 1).ravel()  # OpFromGraph
    y = pt.inc_subtensor(y[2:8], x**2)  # IncSubtensor with a batched value
    y = ifelse(c > 0, y * 2, pt.exp(y))  # lazy IfElse
    seeds = np.random.default_rng(4).random((3, 6))
    (Bt,) = compressed_pullback(y, [x], np.random.default_rng(5).random((3, 20)))
    B = compressed_pushforward(y, [x], seeds, use_op_pushforward=False)
    for out in (B, Bt):
        assert not [n for n in _nodes([out]) if isinstance(n.op, Blockwise)], [
            str(n.op) for n in _nodes([out]) if isinstance(n.op, Blockwise)
        ]
    xv = np.linspace(0.1, 0.6, 6)
    J = pytensor.function([x, c], dense_jacobian(y, x), mode=MODE)
    fB = pytensor.function([x, c], B, mode=MODE)
    for cv in (1.0, -1.0):
        np.testing.assert_allclose(fB(xv, cv), (J(xv, cv) @ seeds.T).T, rtol=1e-13)


def test_users_scan_stays_differentiable_after_compiling_a_jacobian():
    """PyTensor compiles a vectorized Scan gradient's inner graph in place; sparsediff
    differentiates a clone so that the user's Scan is left as it was."""
    import sparsediff as sd

    x = pt.vector("x", shape=(5,))
    y = pytensor.scan(
        lambda xi, acc: acc * xi + xi,
        sequences=[x],
        outputs_info=[pt.zeros(())],
        return_updates=False,
    )
    J = sd.jacobian(y, x, mode="reverse", dense=False)
    pytensor.function([x], J, mode=MODE)(np.ones(5))
    g = pytensor.grad(y.sum(), x)  # failed with "grad is not implemented for Composite"
    assert pytensor.function([x], g, mode=MODE)(np.ones(5)).shape == (5,)


def _scan(*args, **kwargs):
    return pytensor.scan(*args, return_updates=False, **kwargs)


def _scan_graphs():
    """Scans with every kind of loop quantity, as ``(name, expression, x)``."""
    x = pt.vector("x", shape=(6,))
    graphs = []
    # sit-sot and nit-sot from two sequences and a constant non-sequence
    h, s = _scan(
        lambda xi, xj, acc, w: (acc * xi + xj * w, pt.sin(acc) * xi),
        sequences=[x, x[::-1]],
        outputs_info=[pt.zeros(()), None],
        non_sequences=[pt.constant(2.0)],
    )
    graphs.append(("sit_sot_nit_sot", pt.concatenate([h, s]), x))
    # mit-sot (two taps) whose initial values are the unknowns
    out = _scan(
        lambda a, b: a * b + pt.cos(b),
        outputs_info=[dict(initial=x[:2], taps=[-2, -1])],
        n_steps=5,
    )
    graphs.append(("mit_sot_initial", out, x))
    # a vector state and a batched non-sequence matrix-vector product
    m = x.reshape((2, 3))
    out = _scan(
        lambda v, mm: pt.tanh(pt.dot(mm.T, v)[:2] * 0.5),
        outputs_info=[x[:2]],
        non_sequences=[m],
        n_steps=3,
    )
    graphs.append(("vector_state_non_seq", out, x))
    # a state that is batched only through its update (its initial value is constant)
    out = _scan(lambda xi, acc: acc + acc * xi**2, sequences=[x], outputs_info=[pt.ones(())])
    graphs.append(("state_batched_by_update", out, x))
    return graphs


@pytest.mark.parametrize("name", [g[0] for g in _scan_graphs()])
def test_vectorized_scan_is_one_scan_and_exact(name):
    """Forward (pushforward) and reverse (pullback: mit-mot states) through Scan: one batched
    Scan, no Blockwise looping over the colors, and the same products as the dense Jacobian."""
    (expr, x) = next((e, x) for n, e, x in _scan_graphs() if n == name)
    rng = np.random.default_rng(7)
    xv = rng.uniform(0.1, 0.9, 6)
    shape = pytensor.function([x], expr, mode=MODE)(xv).shape
    expr = pt.specify_shape(expr, shape).ravel()
    m = int(np.prod(shape))
    seeds, cotangents = rng.random((3, 6)), rng.random((4, m))
    B = compressed_pushforward(expr, [x], seeds, use_op_pushforward="auto")
    (Bt,) = compressed_pullback(expr, [x], cotangents)
    fn = pytensor.function([x], [B, Bt], mode=MODE)
    blockwise = [str(n.op) for n in fn.maker.fgraph.apply_nodes if isinstance(n.op, Blockwise)]
    assert not blockwise, blockwise
    (J,) = _jac(expr, [x], [xv])
    got = fn(xv)
    np.testing.assert_allclose(got[0], (J @ seeds.T).T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[1], cotangents @ J, rtol=1e-12, atol=1e-14)


def test_vectorized_scan_keeps_blockwise_when_the_loop_itself_is_batched():
    """A number of steps that depends on the batch cannot be one Scan: PyTensor's fallback."""
    from sparsediff.compression.vectorize_scan import vectorize_scan

    n = pt.iscalar("n")
    x = pt.vector("x", shape=(4,))
    out = _scan(lambda acc: acc * 2, outputs_info=[x], n_steps=n)
    node = out.owner.inputs[0].owner if out.owner.op.__class__.__name__ != "Scan" else out.owner
    while type(node.op).__name__ != "Scan":
        node = node.inputs[0].owner
    batched_n = pt.ivector("bn", shape=(3,))
    outs = vectorize_scan(node.op, node, batched_n, *node.inputs[1:])
    outs = outs if isinstance(outs, list) else outs.outputs
    assert isinstance(outs[0].owner.op, Blockwise)
