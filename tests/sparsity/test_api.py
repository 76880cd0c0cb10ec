"""The public detection API: input checks, list/single wrt, user rules, fallbacks, warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.gradient import jacobian
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

import sparsediff as sd
from sparsediff.sparsity import pattern as pat
from tests.sparsity.dense_truth import dense_nonzeros, random_value


def _assert_contains(pattern, truth):
    missing = np.argwhere(truth & ~pattern.toarray())
    assert missing.size == 0, f"pattern misses nonzeros {missing[:5].tolist()}"


class _ElementwiseOp(Op):
    """A tiny elementwise Op with ``perform`` and a gradient, but no sparsity rule."""

    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.asarray(2.0 * inputs[0] + inputs[0] ** 2)

    def pullback(self, inputs, outputs, output_grads):
        return [output_grads[0] * (2.0 + 2.0 * inputs[0])]

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]


class UnknownOp(_ElementwiseOp):
    pass


class RegisteredOp(_ElementwiseOp):
    pass


class OwnRuleOp(_ElementwiseOp):
    """Carries its own rule (diagonal), which must win over a registered (dense) one."""

    def sparsity_rule(self, node, input_patterns, ctx):
        return [input_patterns[0]]


# --------------------------------------------------------------------------------------------
# Input checks and return types


def test_wrt_without_static_shape_raises_with_hint():
    x = pt.vector("x")
    with pytest.raises(ValueError, match="shape="):
        sd.jacobian_sparsity(x**2, x)


def test_integer_wrt_raises_type_error():
    k = pt.vector("k", dtype="int64", shape=(3,))
    with pytest.raises(TypeError, match="floating-point"):
        sd.jacobian_sparsity(k * 2, k)


def test_empty_wrt_list_raises():
    x = pt.vector("x", shape=(3,))
    with pytest.raises(ValueError, match="empty"):
        sd.jacobian_sparsity(x, [])


def test_single_wrt_returns_matrix_and_list_returns_list():
    x = pt.vector("x", shape=(4,))
    y = pt.matrix("y", shape=(2, 3))
    expr = x[:2, None] * y
    single = sd.jacobian_sparsity(expr, x)
    assert isinstance(single, sp.csr_array)
    assert single.dtype == bool and single.shape == (6, 4)
    blocks = sd.jacobian_sparsity(expr, [x, y])
    assert isinstance(blocks, list) and len(blocks) == 2
    assert [b.shape for b in blocks] == [(6, 4), (6, 6)]
    assert all(isinstance(b, sp.csr_array) and b.dtype == bool for b in blocks)
    np.testing.assert_array_equal(blocks[0].toarray(), single.toarray())
    np.testing.assert_array_equal(blocks[1].toarray(), np.eye(6, dtype=bool))
    tuple_blocks = sd.jacobian_sparsity(expr, (x, y))
    assert isinstance(tuple_blocks, list) and len(tuple_blocks) == 2


def test_register_rejects_non_op_classes():
    with pytest.raises(TypeError, match="Op class"):
        sd.register_sparsity_rule(int)


# --------------------------------------------------------------------------------------------
# Ops without a rule, user rules


def test_unknown_op_is_dense_with_a_warning_naming_it():
    x = pt.vector("x", shape=(5,))
    expr = UnknownOp()(x[1:4])
    with pytest.warns(sd.SparsityWarning) as record:
        p = sd.jacobian_sparsity(expr, x)
    message = str(record[0].message)
    assert "UnknownOp" in message
    assert "register_sparsity_rule(UnknownOp)" in message
    expected = np.zeros((3, 5), dtype=bool)
    expected[:, 1:4] = True  # dense over the entries its input depends on, nothing else
    np.testing.assert_array_equal(p.toarray(), expected)
    _assert_contains(p, dense_nonzeros(expr, [x], [x])[0])


def test_unknown_op_respects_connection_pattern():
    class TwoOutputs(Op):
        __props__ = ()

        def make_node(self, a, b):
            a, b = pt.as_tensor_variable(a), pt.as_tensor_variable(b)
            return Apply(self, [a, b], [a.type(), b.type()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = inputs[0] * 2
            outputs[1][0] = inputs[1] * 3

        def connection_pattern(self, node):
            return [[True, False], [False, True]]

    x = pt.vector("x", shape=(4,))
    out_a, out_b = TwoOutputs()(x[:2], x[2:])
    with pytest.warns(sd.SparsityWarning, match="TwoOutputs"):
        p = sd.jacobian_sparsity(pt.concatenate([out_a, out_b]), x).toarray()
    expected = np.zeros((4, 4), dtype=bool)
    expected[:2, :2] = True
    expected[2:, 2:] = True
    np.testing.assert_array_equal(p, expected)


def test_register_sparsity_rule_on_a_user_op():
    @sd.register_sparsity_rule(RegisteredOp)
    def _elementwise(op, node, input_patterns, ctx):
        return [input_patterns[0]]

    x = pt.vector("x", shape=(5,))
    expr = RegisteredOp()(x[::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        p = sd.jacobian_sparsity(expr, x)
    np.testing.assert_array_equal(p.toarray(), np.eye(5, dtype=bool)[::-1])
    np.testing.assert_array_equal(p.toarray(), dense_nonzeros(expr, [x], [x])[0])


def test_own_sparsity_rule_method_wins_over_registry():
    @sd.register_sparsity_rule(OwnRuleOp)
    def _dense(op, node, input_patterns, ctx):  # must not be used
        n = ctx.size(node.outputs[0])
        return [pat.as_pattern(np.ones((n, ctx.n_wrt), dtype=bool))]

    x = pt.vector("x", shape=(4,))
    with warnings.catch_warnings():
        warnings.simplefilter("error", sd.SparsityWarning)
        p = sd.jacobian_sparsity(OwnRuleOp()(x), x)
    np.testing.assert_array_equal(p.toarray(), np.eye(4, dtype=bool))


# --------------------------------------------------------------------------------------------
# Symbolic indices: conservative, with a warning


@pytest.mark.parametrize(
    "build",
    [
        lambda x, y, i: x[i] * x,
        lambda x, y, i: pt.set_subtensor(x[i], y[0] ** 2),
        lambda x, y, i: pt.inc_subtensor(x[i:], y[1]) * 2,
        lambda x, y, i: x[pt.stack([i, 2 * i])].sum() + y,
    ],
    ids=["read", "set", "inc_slice_start", "advanced"],
)
def test_symbolic_index_warns_and_contains_all_nonzeros(build):
    x = pt.vector("x", shape=(6,))
    y = pt.vector("y", shape=(6,))
    i = pt.scalar("i", dtype="int64")
    expr = build(x, y, i)
    with pytest.warns(sd.SparsityWarning, match="symbolic"):
        patterns = sd.jacobian_sparsity(expr, [x, y], disconnected_inputs="ignore")
    # The pattern must hold for every value of the index: check several.
    flat = expr.ravel()
    blocks = jacobian(flat, [x, y], disconnected_inputs="ignore")
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        fn = pytensor.function([x, y, i], blocks, on_unused_input="ignore")
    rng = np.random.default_rng(0)
    for index in range(3):  # every index valid for all four graphs
        xv, yv = random_value(x, rng), random_value(y, rng)
        for p, block in zip(patterns, fn(xv, yv, index), strict=True):
            _assert_contains(p, np.asarray(block) != 0)


def test_symbolic_shape_raises_a_clear_value_error():
    """A slice whose length stays symbolic has no pattern of known size."""
    x = pt.vector("x", shape=(6,))
    k = pt.scalar("k", dtype="int64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sd.SparsityWarning)
        with pytest.raises(ValueError, match="not known at plan time"):
            sd.jacobian_sparsity(x[:k].sum() * x, x)


# --------------------------------------------------------------------------------------------
# Gradient-blocking: consider_constant


def test_consider_constant_keyword_cuts_like_pytensor_grad():
    x = pt.vector("x", shape=(5,))
    z = pt.exp(x[::-1])
    expr = x * z + z[0]
    p = sd.jacobian_sparsity(expr, x, consider_constant=[z]).toarray()
    np.testing.assert_array_equal(p, np.eye(5, dtype=bool))
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        fn = pytensor.function([x], jacobian(expr, x, consider_constant=[z]))
    truth = fn(np.linspace(0.5, 1.5, 5)) != 0
    np.testing.assert_array_equal(p, truth)
    full = sd.jacobian_sparsity(expr, x).toarray()
    assert full.sum() > p.sum()  # without the keyword the reversed coupling is there
