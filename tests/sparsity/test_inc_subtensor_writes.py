"""``set_subtensor``/``inc_subtensor`` whose positions are each written once take a row
gather instead of the boolean product (2-D Bratu's padded grid at n = 10⁶: the rule in half
the time); repeated advanced positions still take the product (every write contributes)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

import sparsediff as sd
from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.rules import indexing
from tests.sparsity.dense_truth import dense_nonzeros


@pytest.fixture
def products(monkeypatch):
    calls = []
    combine = pat.combine_rows

    def spy(selection, pattern):
        calls.append(selection.shape)
        return combine(selection, pattern)

    monkeypatch.setattr(indexing.pat, "combine_rows", spy)
    return calls


def _check(expression, x):
    p = sd.jacobian_sparsity(expression, x)
    assert np.array_equal(p.toarray(), dense_nonzeros(expression, [x], [x])[0])


def test_single_writes_gather_rows(products):
    x = pt.vector("x", shape=(12,))
    u = x.reshape((3, 4))
    padded = pt.set_subtensor(pt.zeros((5, 6))[1:-1, 1:-1], u)  # basic: slices
    _check((padded[:-2, 1:-1] + padded[2:, 1:-1] - pt.exp(padded[1:-1, :-2])).ravel(), x)
    advanced = pt.inc_subtensor(pt.zeros(8)[[5, 1, 7]], x[[0, 3, 3]] ** 2)  # distinct positions
    _check(advanced + x[5], x)
    broadcast = pt.set_subtensor(u[:, ::3], x[2])  # one y element into several positions
    _check(broadcast.ravel(), x)
    assert products == []


def test_repeated_positions_take_the_product(products):
    x = pt.vector("x", shape=(6,))
    out = pt.inc_subtensor(pt.zeros(4)[[0, 2, 2]], x[:3] * x[3:])
    _check(out, x)
    assert len(products) == 1


def test_single_writes_rows():
    from pytensor.tensor.subtensor import AdvancedIncSubtensor1

    op = AdvancedIncSubtensor1()
    rows = indexing._single_writes(op, np.array([4, 0, 2]), np.array([0, 0, 1]), 5)
    assert rows.tolist() == [0, -1, 1, -1, 0]
    assert indexing._single_writes(op, np.array([4, 0, 4]), np.array([0, 1, 2]), 5) is None
