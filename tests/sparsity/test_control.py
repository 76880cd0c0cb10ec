"""IfElse, Scan and OpFromGraph rules (rules/control.py), with explicit expected patterns.

The catalogue (tests/sparsity/catalogue.py) checks the same rules against dense Jacobians;
these tests pin down the structure by hand and cover paths the catalogue cannot reach:
constant conditions, circular Scan buffers, overrides that fail or refer to themselves.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.basic import dfs_rewriter
from pytensor.graph.rewriting.utils import rewrite_graph
from pytensor.ifelse import IfElse, ifelse
from pytensor.scan.op import Scan
from pytensor.scan.utils import until

import sparsediff as sd
from sparsediff.sparsity.graph import prepare_graph, wrt_seeds
from sparsediff.sparsity.propagate import propagate
from tests.sparsity.dense_truth import dense_nonzeros


@pytest.fixture(autouse=True)
def _no_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        yield


def _scan(*args, **kwargs):
    return pytensor.scan(*args, return_updates=False, **kwargs)


def _dense(patterns):
    return np.hstack([p.toarray() for p in patterns])


def _propagate_fgraph(fgraph, wrt):
    """Detection on a graph as given (no canonicalization), to reach a rule directly."""
    seeds, offsets = wrt_seeds(wrt)
    return propagate(fgraph, seeds, offsets[-1])[fgraph.outputs[0]].toarray()


# --------------------------------------------------------------------------------------------
# IfElse


def test_ifelse_is_the_union_of_branches_and_ignores_the_condition():
    x, y = pt.vector("x", shape=(4,)), pt.vector("y", shape=(4,))
    c = pt.scalar("c")
    expr = ifelse(pt.gt(c + x.sum(), 1.0), x * 2 + y[0], y[::-1] ** 2)
    px, py, pc = sd.jacobian_sparsity(expr, [x, y, c])
    np.testing.assert_array_equal(px.toarray(), np.eye(4, dtype=bool))
    expected_y = np.eye(4, dtype=bool)[::-1].copy()
    expected_y[:, 0] = True
    np.testing.assert_array_equal(py.toarray(), expected_y)
    assert pc.nnz == 0  # the condition (which depends on x and c) contributes nothing


def test_ifelse_several_outputs():
    x = pt.vector("x", shape=(3,))
    a, b = ifelse(pt.scalar("c") > 0, [x, x[::-1]], [x[::-1] * 2, x[0] + x])
    p_a = sd.jacobian_sparsity(a, x).toarray()
    p_b = sd.jacobian_sparsity(b, x).toarray()
    np.testing.assert_array_equal(p_a, np.eye(3, dtype=bool) | np.eye(3, dtype=bool)[::-1])
    expected_b = np.eye(3, dtype=bool)[::-1] | np.eye(3, dtype=bool)
    expected_b[:, 0] = True
    np.testing.assert_array_equal(p_b, expected_b)


@pytest.mark.parametrize("condition", [True, False])
def test_ifelse_constant_condition_keeps_only_the_taken_branch(condition):
    x = pt.vector("x", shape=(3,))
    out = IfElse(n_outs=1)(pt.constant(condition), x * 2, x[::-1])
    fgraph = FunctionGraph([x], [out], clone=False)  # as built: the rule sees the constant
    assert isinstance(fgraph.outputs[0].owner.op, IfElse)
    p = _propagate_fgraph(fgraph, [x])
    expected = np.eye(3, dtype=bool) if condition else np.eye(3, dtype=bool)[::-1]
    np.testing.assert_array_equal(p, expected)


# --------------------------------------------------------------------------------------------
# Scan


def test_scan_survives_canonicalization_as_a_scan_node():
    x = pt.vector("x", shape=(5,))
    out = _scan(lambda xi, acc: acc * xi, sequences=[x], outputs_info=[pt.ones(())])
    fgraph, _ = prepare_graph([out], [x])
    assert any(isinstance(n.op, Scan) for n in fgraph.toposort())


def test_scan_cumulative_recurrence_is_lower_triangular():
    x = pt.vector("x", shape=(5,))
    out = _scan(lambda xi, acc: acc * xi + xi, sequences=[x], outputs_info=[pt.zeros(())])
    p = sd.jacobian_sparsity(out, x).toarray()
    np.testing.assert_array_equal(p, np.tril(np.ones((5, 5), dtype=bool)))


def test_scan_two_taps_skip_pattern():
    """y_t = y_{t-2} * 2: the two interleaved chains never mix."""
    s0 = pt.vector("s0", shape=(2,))
    out = _scan(lambda a, b: a * 2.0, outputs_info=[dict(initial=s0, taps=[-2, -1])], n_steps=5)
    p = sd.jacobian_sparsity(out, s0).toarray()
    expected = np.zeros((5, 2), dtype=bool)
    expected[0::2, 0] = True
    expected[1::2, 1] = True
    np.testing.assert_array_equal(p, expected)


def test_scan_sequences_non_sequences_and_nit_sot():
    m = pt.matrix("m", shape=(4, 3))
    w = pt.vector("w", shape=(3,))
    s = _scan(lambda row, w: row * w[::-1], sequences=[m], non_sequences=[w])
    pm, pw = sd.jacobian_sparsity(s, [m, w])
    np.testing.assert_array_equal(pm.toarray(), np.eye(12, dtype=bool))
    np.testing.assert_array_equal(pw.toarray(), np.tile(np.eye(3, dtype=bool)[::-1], (4, 1)))


def test_scan_constant_non_sequence_is_used_as_a_constant():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    x0 = pt.vector("x0", shape=(2,))
    out = _scan(lambda h, a: pt.dot(a, h) * h, outputs_info=[x0], non_sequences=[a], n_steps=3)
    p = sd.jacobian_sparsity(out, x0).toarray()
    np.testing.assert_array_equal(p, np.tile(np.eye(2, dtype=bool), (3, 1)))


def test_scan_inner_zero_grad_is_cut():
    x = pt.vector("x", shape=(4,))
    out = _scan(lambda xi, acc: pytensor.gradient.zero_grad(acc) * xi, sequences=[x],
                outputs_info=[pt.ones(())])  # fmt: skip
    p = sd.jacobian_sparsity(out, x).toarray()
    np.testing.assert_array_equal(p, np.eye(4, dtype=bool))
    np.testing.assert_array_equal(p, dense_nonzeros(out, [x], [x])[0])


def test_nested_scan():
    x = pt.matrix("x", shape=(3, 2))

    def outer_step(row, acc):
        inner = _scan(lambda v, a: a + v, sequences=[row], outputs_info=[pt.zeros(())])
        return acc * inner[-1]

    out = _scan(outer_step, sequences=[x], outputs_info=[pt.ones(())])
    p = sd.jacobian_sparsity(out, x).toarray()
    expected = np.repeat(np.tril(np.ones((3, 3), dtype=bool)), 2, axis=1)
    np.testing.assert_array_equal(p, expected)


@pytest.mark.parametrize("select", ["last", "last_three", "one_before_last", "middle"])
def test_scan_memory_saving_buffers_follow_perform(select):
    """After PyTensor's trace-reducing rewrites the state buffers are circular (or a single
    untraced state); the pattern must not change."""
    from pytensor.scan.rewriting.trace import (
        scan_reduce_nsteps,
        scan_reduce_trace_no_prealloc,
        scan_reduce_trace_prealloc,
        scan_sit_sot_to_untraced,
    )

    x = pt.vector("x", shape=(6,))
    s0 = pt.matrix("s0", shape=(2, 2))
    out = _scan(
        lambda a, b, xi: a * b[::-1] + xi,
        sequences=[x],
        outputs_info=[dict(initial=s0, taps=[-2, -1])],
    )
    h = _scan(lambda xi, h: pt.sin(h) * xi, sequences=[x], outputs_info=[s0[0]])
    expr = {
        "last": out[-1] + h[-1],
        "last_three": out[-3:],
        "one_before_last": out[-2],
        "middle": out[2:4],
    }[select]
    reference = _dense(sd.jacobian_sparsity(expr, [x, s0]))
    for trace_rewrite in (scan_reduce_trace_prealloc, scan_reduce_trace_no_prealloc):
        fgraph, fresh = prepare_graph([expr], [x, s0])
        for rewrite in (scan_reduce_nsteps, trace_rewrite, scan_sit_sot_to_untraced):
            dfs_rewriter(rewrite, ignore_newtrees=True).rewrite(fgraph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            rewrite_graph(fgraph, include=("ShapeOpt", "canonicalize"))
        np.testing.assert_array_equal(_propagate_fgraph(fgraph, fresh), reference)


def test_scan_untraced_state_after_rewrite():
    from pytensor.scan.rewriting.trace import (
        scan_reduce_nsteps,
        scan_reduce_trace_no_prealloc,
        scan_sit_sot_to_untraced,
    )

    x = pt.vector("x", shape=(4,))
    h0 = pt.vector("h0", shape=(2,))
    h = _scan(lambda xi, h: h[::-1] * xi, sequences=[x], outputs_info=[h0])
    expr = h[-1]
    reference = _dense(sd.jacobian_sparsity(expr, [x, h0]))
    fgraph, fresh = prepare_graph([expr], [x, h0])
    for rewrite in (scan_reduce_nsteps, scan_reduce_trace_no_prealloc, scan_sit_sot_to_untraced):
        dfs_rewriter(rewrite, ignore_newtrees=True).rewrite(fgraph)
    rewrite_graph(fgraph, include=("ShapeOpt", "canonicalize"))
    infos = [n.op.info for n in fgraph.toposort() if isinstance(n.op, Scan)]
    assert infos and infos[0].n_untraced_sit_sot == 1
    np.testing.assert_array_equal(_propagate_fgraph(fgraph, fresh), reference)
    expected = np.zeros((2, 6), dtype=bool)
    expected[:, :4] = True  # every x_t scales the state
    expected[:, 4:] = np.eye(2, dtype=bool)  # four reversals: back in place
    np.testing.assert_array_equal(reference, expected)


def test_while_scan_warns_and_raises_value_error():
    x = pt.vector("x", shape=(4,))
    out = _scan(
        lambda xi, acc: (acc * xi + xi, until(acc > 5)),
        sequences=[x],
        outputs_info=[pt.zeros(())],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("default", sd.SparsityWarning)
        with pytest.warns(sd.SparsityWarning, match="while-loop"):
            with pytest.raises(ValueError, match="not known at plan time"):
                sd.jacobian_sparsity(out[-1] * x, x)


# --------------------------------------------------------------------------------------------
# OpFromGraph


def _ab():
    return pt.vector("a"), pt.vector("b")


def test_ofg_override_zeroing_an_input_removes_its_block():
    a, b = _ab()
    op = OpFromGraph(
        [a, b],
        [a * b + a[::-1] * b.sum()],
        pullback=lambda inputs, outputs, g: [g[0] * inputs[1], pt.zeros_like(inputs[1])],
    )
    x, y = pt.vector("x", shape=(4,)), pt.vector("y", shape=(4,))
    px, py = sd.jacobian_sparsity(op(x, y), [x, y])
    np.testing.assert_array_equal(px.toarray(), np.eye(4, dtype=bool))
    assert py.nnz == 0


def test_ofg_override_diagonal_of_a_dense_forward():
    a = pt.vector("a")
    op = OpFromGraph([a], [a * a.sum()], pullback=lambda i, o, g: [2 * g[0] * i[0]])
    x = pt.vector("x", shape=(5,))
    p = sd.jacobian_sparsity(op(x[::-1]), x).toarray()
    np.testing.assert_array_equal(p, np.eye(5, dtype=bool)[::-1])
    np.testing.assert_array_equal(p, dense_nonzeros(op(x[::-1]), [x], [x])[0])


def test_ofg_override_referring_to_itself():
    """A self-adjoint linear Op whose pullback applies the Op itself must not recurse."""
    a = pt.vector("a")
    holder = {}
    op = OpFromGraph([a], [a + a[::-1]], pullback=lambda i, o, g: [holder["op"](g[0])])
    holder["op"] = op
    x = pt.vector("x", shape=(4,))
    p = sd.jacobian_sparsity(op(x), x).toarray()
    np.testing.assert_array_equal(p, np.eye(4, dtype=bool) | np.eye(4, dtype=bool)[::-1])


def test_ofg_broken_override_falls_back_to_inner_graph_with_warning():
    def broken(inputs, outputs, g):
        raise RuntimeError("cannot build this pullback here")

    a = pt.vector("a")
    op = OpFromGraph([a], [a[::-1] * 3], pullback=broken)
    x = pt.vector("x", shape=(3,))
    with warnings.catch_warnings():
        warnings.simplefilter("default", sd.SparsityWarning)
        with pytest.warns(sd.SparsityWarning, match="gradient override"):
            p = sd.jacobian_sparsity(op(x), x).toarray()
    np.testing.assert_array_equal(p, np.eye(3, dtype=bool)[::-1])


def test_ofg_with_integer_output_and_override():
    a = pt.vector("a")
    op = OpFromGraph(
        [a],
        [a * 2, pt.argmax(a)],
        pullback=lambda i, o, g: [g[0] * 2],
    )
    x = pt.vector("x", shape=(3,))
    value, index = op(x)
    p = sd.jacobian_sparsity(value + index, x).toarray()
    np.testing.assert_array_equal(p, np.eye(3, dtype=bool))


def test_ofg_inside_a_scan_step():
    a = pt.vector("a")
    op = OpFromGraph([a], [a * a.sum()], pullback=lambda i, o, g: [g[0] * 2])
    m = pt.matrix("m", shape=(3, 2))
    out = _scan(lambda row: op(row[::-1]), sequences=[m])
    p = sd.jacobian_sparsity(out, m).toarray()
    expected = np.kron(np.eye(3, dtype=bool), np.eye(2, dtype=bool)[::-1])
    np.testing.assert_array_equal(p, expected)


def test_ofg_without_override_that_is_not_inlined_recurses():
    a, b = _ab()
    op = OpFromGraph(
        [a, b],
        [a * b[0]],
        pushforward=lambda inputs, t: [t[0] * inputs[1][0] + inputs[0] * t[1][0]],
    )
    x, y = pt.vector("x", shape=(3,)), pt.vector("y", shape=(2,))
    fgraph, _ = prepare_graph([op(x, y)], [x, y])
    assert any(isinstance(n.op, OpFromGraph) for n in fgraph.toposort())
    px, py = sd.jacobian_sparsity(op(x, y), [x, y])
    np.testing.assert_array_equal(px.toarray(), np.eye(3, dtype=bool))
    np.testing.assert_array_equal(py.toarray(), np.array([[1, 0]] * 3, dtype=bool))
