"""Plan-time constant folding (compression/folding.py)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import toposort
from pytensor.tensor.rewriting.basic import unconditional_constant_folding

from sparsediff.compression import folding
from sparsediff.compression.folding import _fold_variadic, fold_constants


@pytest.mark.parametrize("op", [pt.add, pt.mul])
def test_variadic_fold_matches_pytensors_own_evaluation(op):
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(3, 1, 4)), rng.normal(size=(1, 5, 4)), rng.normal(size=(3, 5, 1))]
    values[0][0, 0, 0] = -0.0  # sum() starts from 0: -0.0 + ... is +0.0 there too
    values[1][0, 0, 0] = -0.0
    values[2][0, 0, 0] = -0.0
    node = op(*[pt.constant(v) for v in values]).owner
    assert len(node.inputs) == 3
    (fast,) = _fold_variadic(node)
    (slow,) = unconditional_constant_folding.transform(None, node)
    assert fast.type.shape == slow.type.shape == (3, 5, 4)
    np.testing.assert_array_equal(fast.data, slow.data)
    assert np.signbit(fast.data).tolist() == np.signbit(slow.data).tolist()


def test_variadic_fold_leaves_mixed_dtypes_and_two_inputs_to_pytensor():
    a, b = pt.constant(np.ones(3)), pt.constant(np.ones(3))
    assert _fold_variadic(pt.add(a, b).owner) is None
    ints = pt.constant(np.ones(3, dtype="int8"))
    assert _fold_variadic(pt.add(a, b, ints).owner) is None


def test_fold_constants_folds_a_sum_of_three_constants_canonicalize_builds(monkeypatch):
    folded_here = []

    def spy(node):
        out = _fold_variadic(node)
        folded_here.extend(out or [])
        return out

    monkeypatch.setattr(folding, "_fold_variadic", spy)
    x = pt.vector("x", shape=(4,))
    c = [pt.constant(np.arange(4.0) + k) for k in range(3)]
    y = (c[0] + (x - x)) + c[1] + c[2]  # canonicalize drops x - x, leaving c0 + c1 + c2
    (folded,) = fold_constants([x * y])
    consts = [i for node in toposort([folded]) for i in node.inputs if isinstance(i, Constant)]
    assert any(np.array_equal(np.asarray(k.data), 3 * np.arange(4.0) + 3) for k in consts)
    assert folded_here  # by NumPy, not by PyTensor's elementwise Python loop
    xv = np.linspace(-1, 1, 4)
    np.testing.assert_allclose(
        pytensor.function([x], folded)(xv), xv * (3 * np.arange(4.0) + 3), rtol=1e-15
    )
