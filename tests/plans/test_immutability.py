"""Plans are immutable once planned: ``build()`` never rewrites them (#12)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import jacobian as dense_jacobian
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

import sparsediff as sd


class _SquareNoForward(Op):
    """``x ** 2`` with a pullback but no pushforward: forward mode through the Op's own rules
    cannot be built, reverse mode can."""

    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0] ** 2

    def infer_shape(self, fgraph, node, shapes):
        return shapes

    def pullback(self, inputs, outputs, cotangents):
        return [2 * inputs[0] * cotangents[0]]

    L_op = pullback


@sd.register_sparsity_rule(_SquareNoForward)
def _square_rule(op, node, input_patterns, ctx):
    return [input_patterns[0]]


def _graph(n=12):
    x = pt.vector("x", shape=(n,))
    xp = pt.concatenate([[0.0], x, [0.0]])
    return xp[:-2] - 2 * _SquareNoForward()(x) + xp[2:], x


def test_plans_are_frozen():
    F, x = _graph()
    plan = sd.jacobian_plan(F, x)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.mode = "reverse"
    h = sd.hessian_plan((x**4).sum() + (x[1:] * x[:-1]).sum(), x)
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.kind = "acyclic"


def test_forward_fallback_builds_a_reverse_copy_and_keeps_the_plan():
    F, x = _graph()
    plan = sd.jacobian_plan(F, x, use_op_pushforward=True)
    assert plan.mode == "forward"
    n_colors, colors, coloring = plan.n_colors, plan.colors.copy(), plan.coloring
    with pytest.warns(UserWarning, match="using reverse mode"):
        J = plan.build()
    assert plan.mode == "forward" and plan.n_colors == n_colors and plan.coloring is coloring
    np.testing.assert_array_equal(plan.colors, colors)
    f = pytensor.function([x], [J, dense_jacobian(F, x)], mode="FAST_COMPILE")
    xv = np.linspace(-1.0, 1.0, 12)
    got, want = f(xv)
    np.testing.assert_allclose(got.toarray(), want, rtol=1e-12, atol=1e-12)


def test_reversed_is_a_new_plan():
    F, x = _graph()
    plan = sd.jacobian_plan(F, x, mode="forward")
    rev = plan.reversed()
    assert rev is not plan and rev.mode == "reverse" and plan.mode == "forward"
    assert rev.n_colors_reverse == rev.n_colors and rev.timings is not plan.timings


def test_forward_requested_explicitly_raises_naming_reverse():
    F, x = _graph()
    plan = sd.jacobian_plan(F, x, mode="forward", use_op_pushforward=True)
    with pytest.raises(NotImplementedError, match="try mode='reverse'"):
        plan.build()


def test_hessian_build_records_its_method_without_changing_the_plan():
    x = pt.vector("x", shape=(20,))
    plan = sd.hessian_plan((pt.exp(x) * x[::-1]).sum(), x)
    assert plan.method == "auto" and plan.method_used is None and plan.costs == {}
    plan.build()
    assert plan.method == "auto"
    assert plan.method_used in ("forward-over-reverse", "reverse-over-reverse")
    assert set(plan.costs) == {"forward-over-reverse", "reverse-over-reverse"}
