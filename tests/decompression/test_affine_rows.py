"""The one-pass nonzeros of an affine slot layout (decompression/affine_rows.py)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.gradient import jacobian

import sparsediff as sd
from sparsediff.decompression.affine_rows import (
    GROUP,
    AffineRows,
    affine_rows,
    affine_rows_kernel,
    affine_runs,
    operand_groups,
    warm_up_kernel,
)

MODES = [
    "CVM",
    "FAST_COMPILE",
    pytest.param("NUMBA", marks=pytest.mark.numba),
    pytest.param("JAX", marks=pytest.mark.jax),
]


def _reference(operands, irregular, coefficients, sources, is_irregular):
    S = np.column_stack([np.ones(operands[0].size), *operands]) @ coefficients
    out = S.ravel()[np.where(is_irregular, 0, sources)]
    out[is_irregular] = irregular
    return out


def _case(rng, m, width, q, n_out, irregular_fraction, shuffle):
    """Random operands and coefficients, and ``n_out`` output positions: runs of consecutive
    slots (whole rows, partial rows, rows split across runs) unless ``shuffle``."""
    coefficients = rng.normal(size=(q + 1, width))
    coefficients[rng.uniform(size=coefficients.shape) < 0.2] = 0.0
    start = rng.integers(0, max(1, m * width - n_out))
    sources = np.arange(start, start + n_out) % (m * width)
    if shuffle:
        sources = rng.permutation(m * width)[:n_out]
    is_irregular = rng.uniform(size=n_out) < irregular_fraction
    operands = [rng.normal(size=m) for _ in range(q)]
    irregular = rng.normal(size=int(is_irregular.sum()))
    return operands, irregular, coefficients, sources, is_irregular


def _graph(operands, irregular, coefficients, sources, is_irregular):
    vs = [pt.vector(f"v{i}", shape=(v.size,)) for i, v in enumerate(operands)]
    irr = pt.vector("irr", shape=(irregular.size,))
    return vs, irr, affine_rows(vs, irr, coefficients, sources, is_irregular)


def test_runs_are_consecutive_in_source_and_output():
    sources = np.array([5, 6, 7, 0, 9, 10, 11, 3])
    irregular = np.array([False, False, False, True, True, False, False, False])
    runs = affine_runs(sources, irregular)
    # (source kind, first source index, first output index, length)
    np.testing.assert_array_equal(runs, [[0, 5, 0, 3], [1, 0, 3, 2], [0, 10, 5, 2], [0, 3, 7, 1]])
    assert affine_runs(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)).shape == (0, 4)
    with pytest.raises(ValueError, match="one length"):
        affine_runs(sources, irregular[:3])


@pytest.mark.parametrize("q", [1, 4, 5, 8])
def test_operand_groups_pad_with_zero_coefficients(q):
    coefficients = np.arange((q + 1) * 3, dtype=float).reshape(q + 1, 3) + 1
    groups, grouped = operand_groups(coefficients)
    assert groups.shape == (-(-q // GROUP), GROUP)
    v = np.random.default_rng(q).normal(size=q)
    total = sum(
        grouped[p, 0] + sum(v[groups[p, j]] * grouped[p, j + 1] for j in range(GROUP))
        for p in range(groups.shape[0])
    )
    np.testing.assert_allclose(total, coefficients[0] + v @ coefficients[1:], rtol=1e-13)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("q", [1, 4, 6], ids=lambda q: f"q={q}")
@pytest.mark.parametrize("shuffle", [False, True], ids=["runs", "scattered"])
def test_affine_rows_equals_the_dense_algebra(mode, q, shuffle):
    if mode == "JAX":
        pytest.importorskip("jax")
    rng = np.random.default_rng(q + 10 * shuffle)
    case = _case(rng, m=37, width=7, q=q, n_out=150, irregular_fraction=0.2, shuffle=shuffle)
    vs, irr, out = _graph(*case)
    f = pytensor.function([*vs, irr], out, mode=mode)
    operands, irregular = case[0], case[1]
    got = np.asarray(f(*operands, irregular))
    np.testing.assert_allclose(got, _reference(*case), rtol=1e-12, atol=1e-12)
    assert any(isinstance(n.op, AffineRows) for n in f.maker.fgraph.toposort())


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 30),
    width=st.integers(1, 17),
    q=st.integers(1, 8),
    fraction=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_equals_the_dense_algebra_on_random_layouts(m, width, q, fraction, shuffle, seed):
    rng = np.random.default_rng(seed)
    n_out = int(rng.integers(1, m * width + 1))
    case = _case(rng, m, width, q, n_out, fraction, shuffle)
    out = _graph(*case)[2]
    node = out.owner
    storage = [[None]]
    node.op.perform(node, [*case[0], case[1]], storage)
    np.testing.assert_allclose(storage[0][0], _reference(*case), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_matches_central_differences_and_the_dense_algebra(mode):
    if mode == "JAX":
        pytest.importorskip("jax")
    rng = np.random.default_rng(0)
    case = _case(rng, m=9, width=5, q=6, n_out=40, irregular_fraction=0.25, shuffle=False)
    operands, irregular, coefficients, sources, is_irregular = case
    vs, irr, out = _graph(*case)
    weights = rng.normal(size=sources.size)
    cost = (pt.constant(weights) * out).sum()
    inputs = [*vs, irr]
    f = pytensor.function(inputs, cost, mode=mode)
    g = pytensor.function(inputs, pytensor.grad(cost, inputs), mode=mode)
    values = [*operands, irregular]
    grads = [np.asarray(a) for a in g(*values)]
    # the dense algebra: d out[p] / d v_i[k] = A[i + 1, r] on regular p, 1 on irregular values
    rows, slots = np.divmod(sources, coefficients.shape[1])
    regular = ~is_irregular
    for i, gi in enumerate(grads[:-1]):
        expected = np.zeros(operands[0].size)
        np.add.at(expected, rows[regular], weights[regular] * coefficients[i + 1, slots[regular]])
        np.testing.assert_allclose(gi, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[-1], weights[is_irregular], rtol=1e-12, atol=1e-12)
    # central differences of the compiled cost, one input entry at a time
    eps = 1e-6
    for which, value in enumerate(values):
        for j in range(value.size):
            up = [v.copy() for v in values]
            down = [v.copy() for v in values]
            up[which][j] += eps
            down[which][j] -= eps
            numeric = (float(f(*up)) - float(f(*down))) / (2 * eps)
            np.testing.assert_allclose(grads[which][j], numeric, rtol=1e-6, atol=1e-7)


def test_pushforward_and_sparsity_see_the_inner_graph():
    """A sparse Jacobian of a graph through the Op (e.g. Newton on a function of a Jacobian):
    detection and the JVPs go through its inner graph; the result equals the dense one."""
    rng = np.random.default_rng(1)
    m, width = 12, 4
    coefficients = rng.normal(size=(3, width))
    sources = np.arange(m * width)
    is_irregular = np.zeros(sources.size, dtype=bool)
    x = pt.vector("x", shape=(m,))
    out = affine_rows([pt.sin(x), x**2], pt.zeros((0,)), coefficients, sources, is_irregular)
    J = sd.jacobian(out, x)
    f = pytensor.function([x], [J, jacobian(out, x, vectorize=True)], mode="CVM")
    xv = rng.normal(size=m)
    sparse, dense = f(xv)
    assert sparse.nnz == m * width  # each output depends on its row's operands only
    np.testing.assert_allclose(sparse.toarray(), dense, rtol=1e-12, atol=1e-12)


def test_bad_input_is_refused():
    v = pt.vector("v", shape=(4,))
    irr = pt.vector("irr", shape=(1,))
    A = np.ones((2, 3))
    sources = np.array([0, 1, 2, 3])
    mask = np.array([False, True, False, False])
    with pytest.raises(ValueError, match="one row per operand"):
        affine_rows([v], irr, np.ones((3, 3)), sources, mask)
    with pytest.raises(ValueError, match="irregular values"):
        affine_rows([v], pt.vector("irr", shape=(2,)), A, sources, mask)
    with pytest.raises(ValueError, match="outside S"):
        affine_rows([v], irr, A, np.array([0, 1, 2, 12]), mask)
    with pytest.raises(ValueError, match="static length"):
        affine_rows([v, pt.vector("w", shape=(5,))], irr, np.ones((3, 3)), sources, mask)
    with pytest.raises(TypeError, match="1-D"):
        affine_rows([pt.matrix("M", shape=(2, 2))], irr, A, sources, mask)


def test_numba_cache_key_follows_the_plan_time_arrays():
    """PyTensor's Numba cache stores whole compiled graphs under the Ops' keys: two Ops with
    different coefficients or runs must not share one."""
    rng = np.random.default_rng(2)
    case = _case(rng, m=6, width=3, q=2, n_out=12, irregular_fraction=0.0, shuffle=False)
    key = _graph(*case)[2].owner.op.cache_key()
    assert key == _graph(*case)[2].owner.op.cache_key()
    other = (case[0], case[1], case[2] * 2, case[3], case[4])
    assert _graph(*other)[2].owner.op.cache_key() != key


def test_precompile_covers_every_operand_count():
    """``python -m sparsediff precompile`` compiles the kernel once (``warm_up_kernel``);
    the C backend's ``perform`` must then never compile another signature, whatever ``q``."""
    warm_up_kernel()
    compiled = len(affine_rows_kernel.signatures)
    rng = np.random.default_rng(4)
    for q in (1, 3, 8):
        case = _case(rng, m=5, width=3, q=q, n_out=10, irregular_fraction=0.3, shuffle=False)
        node = _graph(*case)[2].owner
        node.op.perform(node, [*case[0], case[1]], [[None]])
    assert len(affine_rows_kernel.signatures) == compiled
    with pytest.raises(ValueError, match="at most"):
        _graph(*_case(rng, m=5, width=3, q=9, n_out=10, irregular_fraction=0.0, shuffle=False))


@pytest.mark.parametrize(
    "operand_dtype, coefficient_dtype, expected",
    [
        ("float32", "float64", "float64"),
        ("float64", "float32", "float64"),
        ("float32", "float32", "float32"),
    ],
)
def test_output_dtype_is_the_upcast_on_c_and_python(operand_dtype, coefficient_dtype, expected):
    rng = np.random.default_rng(6)
    operands, irregular, coefficients, sources, is_irregular = _case(
        rng, m=8, width=3, q=2, n_out=20, irregular_fraction=0.2, shuffle=False
    )
    operands = [v.astype(operand_dtype) for v in operands]
    irregular = irregular.astype(operand_dtype)
    vs = [pt.vector(f"v{i}", shape=(v.size,), dtype=operand_dtype) for i, v in enumerate(operands)]
    irr = pt.vector("irr", shape=(irregular.size,), dtype=operand_dtype)
    out = affine_rows(vs, irr, coefficients.astype(coefficient_dtype), sources, is_irregular)
    assert out.dtype == expected
    reference = _reference(
        [v.astype(float) for v in operands],
        irregular.astype(float),
        coefficients.astype(coefficient_dtype).astype(float),
        sources,
        is_irregular,
    )
    for mode in ("CVM", "FAST_COMPILE"):
        got = pytensor.function([*vs, irr], out, mode=mode)(*operands, irregular)
        assert got.dtype == expected
        np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)
