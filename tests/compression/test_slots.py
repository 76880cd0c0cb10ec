"""The forward compressed matrix in slot layout (compression/slots.py)."""

from __future__ import annotations

import functools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff import decompression, problems
from sparsediff.compression.slots import (
    MAX_IRREGULAR_FRACTION,
    _permutation_and_slots,
    slot_layout,
    slot_permutation,
)
from sparsediff.decompression.affine_rows import AffineRows
from sparsediff.decompression.assemble import SharedStructureCSM


def test_slot_permutation_orders_each_rows_colors_then_the_unused():
    m, n_colors = 3, 4
    # row 0: colors 2, 0; row 1: color 3; row 2: colors 1, 3, 0, 2 (positions c * m + k)
    positions = np.array(
        [2 * m + 0, 0 * m + 0, 3 * m + 1, 1 * m + 2, 3 * m + 2, 0 * m + 2, 2 * m + 2]
    )
    sigma = slot_permutation(positions, m, n_colors)
    np.testing.assert_array_equal(sigma, [[2, 0, 1, 3], [3, 0, 1, 2], [1, 3, 0, 2]])
    with pytest.raises(ValueError, match="twice"):
        slot_permutation(np.array([0, 0]), m, n_colors)


@pytest.mark.parametrize("shuffle", [False, True], ids=["row order", "any order"])
def test_each_positions_slot_holds_its_color(shuffle):
    rng = np.random.default_rng(0)
    m, n_colors = 50, 6
    rows, cols = np.nonzero(rng.uniform(size=(m, n_colors)) < 0.6)  # row order
    positions = cols * m + rows
    if shuffle:
        positions = rng.permutation(positions)
    sigma, flat = _permutation_and_slots(positions, m, n_colors)
    k, r = np.divmod(flat, n_colors)
    np.testing.assert_array_equal(k, positions % m)
    np.testing.assert_array_equal(sigma[k, r], positions // m)


def _plan_parts(problem):
    plan = sd.jacobian_plan(problem.expression, problem.x)
    return plan, plan.compressed()[0], plan.positions


def test_slot_layout_gathers_the_same_entries_for_the_driven_cavity():
    problem = problems.cavity2d(40)
    plan, B, positions = _plan_parts(problem)
    layout = slot_layout(B, positions)
    assert layout is not None and layout.fused is not None  # the cavity is affine
    B_slot, slot_positions = layout.matrix, layout.positions
    assert B_slot.type.shape == (problem.n, plan.n_colors)
    # interior rows share one row of constants: only the rows near the walls are apart
    f = pytensor.function(
        [problem.x],
        [
            decompression.gather(B, positions[0], lift=False),
            decompression.gather(B_slot, slot_positions[0], lift=False),
            layout.fused(slot_positions[0]),
        ],
        mode="FAST_COMPILE",
    )
    x = np.random.default_rng(0).uniform(-0.5, 0.5, problem.n)
    old, new, fused = f(x)
    np.testing.assert_allclose(new, old, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(fused, old, rtol=1e-12, atol=1e-12)
    # CSR order and every interior row full: mostly consecutive positions
    assert np.mean(np.diff(slot_positions[0]) == 1) > 0.9


def test_slot_layout_declines_what_it_cannot_permute():
    x = pt.vector("x", shape=(6,))
    seeds = np.eye(3)[[0, 1, 2, 0, 1, 2]].T  # (3 colors, 6)
    varying = pt.exp(x)[None, :] * pt.constant(seeds)  # color-dependent constants: fine
    assert slot_layout(varying, [np.arange(6) % 3 * 6 + np.arange(6)]) is not None
    positions = [np.arange(6) % 3 * 6 + np.arange(6)]
    # any elementwise function of them too: the permutation commutes with it
    assert slot_layout(pt.exp(x[None, :] * pt.constant(seeds)), positions) is not None
    mixing = pt.cumsum(x[None, :] * pt.constant(seeds), axis=0)  # mixes the colors
    assert slot_layout(mixing, positions) is None
    assert slot_layout(pt.matrix("B", shape=(3, 6)), [np.arange(6)]) is None


@pytest.mark.parametrize("mode", ["CVM", pytest.param("NUMBA", marks=pytest.mark.numba)])
def test_driven_cavity_plan_uses_the_slot_layout(mode):
    problem = problems.cavity2d(40)
    f = pytensor.function([problem.x], sd.jacobian(problem.expression, problem.x), mode=mode)
    names = [type(node.op).__name__ for node in f.maker.fgraph.toposort()]
    # the nonzeros written in one pass: no scatter, no matrix product, no join
    assert names.count("AffineRows") == 1
    assert not {"AdvancedIncSubtensor1", "Dot22", "Dot", "Join"} & set(names)
    x = np.random.default_rng(1).uniform(-0.5, 0.5, problem.n)
    ref = problem.jacobian(x)  # analytic (checked against dense AD in tests/test_problems.py)
    np.testing.assert_allclose(f(x).toarray(), ref.toarray(), rtol=1e-11, atol=1e-11)


@functools.cache
def _cavity_and_dense(nx: int = 40, seed: int = 2):
    """The cavity, its sparse Jacobian, a point and the dense ``pytensor.gradient.jacobian``
    there (compiled once, with the C backend)."""
    problem = problems.cavity2d(nx)
    J = sd.jacobian(problem.expression, problem.x)
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, problem.n)
    dense = pytensor.gradient.jacobian(problem.expression, problem.x, vectorize=True)
    return problem, J, x, pytensor.function([problem.x], dense, mode="CVM")(x)


def test_driven_cavity_regular_rows_are_one_pass():
    """The regression this guards: the regular rows computed by one elementwise loop that
    broadcasts ``(1, n_colors)`` constants against ``(m, 1)`` columns (PyTensor's C loop: 4 ns
    a value, 5.6 ms at n = 10⁵), or as a matrix product, a row scatter and a gather. Now one
    ``AffineRows`` writes the nonzeros, and no node but it writes more than the irregular rows'
    share of the ``m × n_colors`` values."""
    problem, J, _, _ = _cavity_and_dense()
    plan = sd.jacobian_plan(problem.expression, problem.x)
    f = pytensor.function([problem.x], J, mode="CVM")
    nodes = f.maker.fgraph.toposort()
    (fused,) = [node for node in nodes if isinstance(node.op, AffineRows)]
    assert fused.op.runs.shape[0] < problem.n / 4  # long runs: whole rows, mostly
    biggest = max(
        int(np.prod(node.outputs[0].type.shape))
        for node in nodes
        if node is not fused
        and None not in node.outputs[0].type.shape
        and not isinstance(node.op, SharedStructureCSM)
    )
    assert biggest < problem.n * plan.n_colors * MAX_IRREGULAR_FRACTION


@pytest.mark.parametrize(
    "mode",
    [
        "CVM",
        "FAST_COMPILE",
        pytest.param("NUMBA", marks=pytest.mark.numba),
        pytest.param("JAX", marks=pytest.mark.jax),
    ],
)
def test_driven_cavity_product_equals_the_dense_jacobian(mode):
    if mode == "JAX":
        pytest.importorskip("jax")
    problem, J, x, reference = _cavity_and_dense()
    sparse = pytensor.function([problem.x], J, mode=mode)(x)
    if mode == "JAX":  # a BCSR
        sparse = sp.csr_array(np.asarray(sparse.todense()))
    assert sparse.nnz == problem.pattern().nnz  # the pattern, not one entry more or less
    np.testing.assert_allclose(sparse.toarray(), reference, rtol=1e-11, atol=1e-11)


def _affine_case(expression_of):
    """A ``(3, 6)`` compressed matrix from color constants and two invariant rows."""
    x = pt.vector("x", shape=(6,))
    seeds = pt.constant(np.eye(3)[[0, 1, 2, 0, 1, 2]].T)  # (3 colors, 6)
    a, b = pt.exp(x)[None, :], pt.sin(x)[None, :]
    positions = [np.arange(6) % 3 * 6 + np.arange(6)]
    k = pt.constant(3 * np.eye(3)[[0, 1, 2, 0, 1, 2]].T + 0.5)  # the same on every row
    return x, expression_of(a, b, seeds, k), positions


@pytest.mark.parametrize(
    "expression_of, affine",
    [
        (lambda a, b, s, k: 2 * s - (a * k - b * s) / 4 + 1, True),
        (lambda a, b, s, k: -(a * s) + k, True),
        (lambda a, b, s, k: a * b * s, True),  # a * b: one invariant operand
        (lambda a, b, s, k: (a * s) * (b + k), False),  # a product of two affine terms
        (lambda a, b, s, k: pt.exp(a * s), False),
        (lambda a, b, s, k: a / (s + 1), True),  # by a color constant: still affine
        (lambda a, b, s, k: s / a, False),  # by an invariant: not
    ],
    ids=["affine", "negated", "invariant product", "bilinear", "exp", "divided", "divisor"],
)
def test_slot_layout_fuses_only_where_affine(expression_of, affine):
    x, B, positions = _affine_case(expression_of)
    layout = slot_layout(B, positions)
    assert layout is not None
    assert (layout.fused is not None) == affine
    slot_positions = layout.positions[0]
    outputs = [
        decompression.gather(B, positions[0], lift=False),
        decompression.gather(layout.matrix, slot_positions, lift=False),
    ]
    if affine:
        outputs.append(layout.fused(slot_positions))
    f = pytensor.function([x], outputs, mode="FAST_COMPILE")
    xv = np.random.default_rng(3).uniform(-1, 1, 6)
    old, *new = f(xv)
    for values in new:
        np.testing.assert_allclose(values, old, rtol=1e-12, atol=1e-12)
