"""mode="bidirectional": JVPs and VJPs in one graph, sparse == dense in every mode."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sparsediff as sd
from sparsediff import ColoringError
from sparsediff.problems import dense_row_col
from tests.jacobian_helpers import assert_matches, bratu2d, dense_reference, fd1d

MODES = ("forward", "reverse", "bidirectional")


def arrow(n: int):
    """Diagonal + a dense column (x[-1] in every entry) + a dense row (a sum), nonlinear."""
    x = pt.vector("x", shape=(n,))
    r = pt.concatenate([pt.exp(x[:-1]) * pt.sin(x[-1]) + x[:-1] ** 3, (x**2).sum()[None]])
    return r, x


def arrow_matrix(N: int):
    """A matrix wrt and a matrix expression: dense first row, dense last column."""
    x = pt.matrix("x", shape=(N, N))
    body = pt.tanh(x) * (1 + x[-1, -1] ** 2)
    r = pt.set_subtensor(body[0, 0], pt.sin(x).sum())
    return r, x


def coupled():
    """Two wrt blocks: y enters every entry, a sum of x is one dense row."""
    x = pt.vector("x", shape=(7,))
    y = pt.vector("y", shape=(3,))
    r = pt.concatenate([x * pt.exp(y.sum()), y**2 * x[:3], (x**3).sum()[None]])
    return r, [x, y]


GRAPHS = {
    "arrow": lambda: arrow(12),
    "arrow_matrix": lambda: arrow_matrix(4),
    "fd1d": lambda: fd1d(10),
    "bratu2d": lambda: bratu2d(4),
}


def _check(r, wrt, mode, fmt="csr", backend="CVM", seed=0, **kwargs):
    wrt_list = wrt if isinstance(wrt, list) else [wrt]
    rng = np.random.default_rng(seed)
    values = [rng.uniform(0.2, 0.9, w.type.shape) for w in wrt_list]
    J = sd.jacobian(r, wrt, mode=mode, format=fmt, dense=False, **kwargs)
    blocks = J if isinstance(J, list) else [J]
    fn = pytensor.function(wrt_list, blocks, mode=backend, on_unused_input="ignore")
    got = fn(*values)
    if backend == "JAX":
        got = [sp.csr_array(np.asarray(g.todense())) for g in got]
    assert_matches(got, dense_reference(r, wrt_list, wrt_list, values))
    return got


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_sparse_equals_dense_in_every_mode(name, mode):
    r, x = GRAPHS[name]()
    _check(r, x, mode)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_list_wrt_and_csc(fmt):
    r, wrt = coupled()
    plan = sd.jacobian_plan(r, wrt, mode="bidirectional", format=fmt, dense=False)
    assert plan.mode == "bidirectional" and plan.n_jvps >= 1 and plan.n_vjps >= 1
    got = _check(r, wrt, "bidirectional", fmt=fmt)
    assert got[0].format == fmt


def test_dense_row_and_column_n_10000_needs_at_most_4_products():
    prob = dense_row_col(10_000)
    plan = sd.jacobian_plan(prob.expression, prob.x)
    assert plan.mode == "bidirectional"
    assert plan.n_colors_forward == plan.n_colors_reverse == 10_000
    assert plan.n_colors == plan.n_jvps + plan.n_vjps <= 4
    assert "bidirectional" in repr(plan) and "forward would need 10000" in repr(plan)
    fn = pytensor.function([prob.x], plan.build(), mode="CVM")
    x = np.random.default_rng(3).uniform(0.5, 1.0, prob.n)
    got = fn(x)
    ref = prob.jacobian(x)
    assert sp.issparse(got) and got.nnz == ref.nnz
    assert abs(got - ref).max() <= 1e-12 * abs(ref).max()


def test_dense_row_and_column_small_against_pytensor_jacobian():
    prob = dense_row_col(30)
    _check(prob.expression, prob.x, "bidirectional")
    _check(prob.expression, prob.x, "auto")


def test_auto_keeps_the_better_direction_when_bicoloring_cannot_win():
    r, x = bratu2d(6)
    plan = sd.jacobian_plan(r, x)
    assert plan.mode == "forward" and plan.n_products_bidirectional is None
    r, x = fd1d(30)
    plan = sd.jacobian_plan(r, x, mode="bidirectional")
    assert plan.n_colors >= 3 and plan.row_colors.shape == (30,)


def test_given_bidirectional_coloring():
    prob = dense_row_col(20)
    c = sd.color(prob.pattern(), kind="bidirectional")
    plan = sd.jacobian_plan(prob.expression, prob.x, coloring=c)
    assert plan.mode == "bidirectional" and plan.coloring is c
    pair = (np.asarray(c.colors), np.asarray(c.row_colors))
    plan2 = sd.jacobian_plan(prob.expression, prob.x, mode="bidirectional", coloring=pair)
    assert plan2.n_colors == c.n_colors
    _check(prob.expression, prob.x, "bidirectional", coloring=pair)


def test_bad_input_gives_clear_errors():
    prob = dense_row_col(20)
    c = sd.color(prob.pattern(), kind="bidirectional")
    r, x = prob.expression, prob.x
    with pytest.raises(ColoringError, match="one color per column"):
        sd.jacobian_plan(r, x, mode="bidirectional", coloring=(c.colors[:-1], c.row_colors))
    with pytest.raises(ColoringError, match="one color per row"):
        sd.jacobian_plan(r, x, mode="bidirectional", coloring=(c.colors, c.row_colors[:5]))
    with pytest.raises(ColoringError, match="needs a bidirectional coloring"):
        sd.jacobian_plan(r, x, mode="bidirectional", coloring=np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="needs a bidirectional coloring, got kind 'column'"):
        sd.jacobian_plan(r, x, mode="bidirectional", coloring=sd.color(prob.pattern()))
    with pytest.raises(ValueError, match="needs a column coloring, got kind 'bidirectional'"):
        sd.jacobian_plan(r, x, mode="forward", coloring=c)
    with pytest.raises(ColoringError, match="neither side"):
        sd.jacobian_plan(r, x, mode="bidirectional", coloring=(np.ones(20, int), np.zeros(20, int)))
    with pytest.raises(ColoringError, match="non-negative"):
        sd.jacobian_plan(r, x, mode="bidirectional", coloring=(-c.colors, c.row_colors))
    with pytest.raises(ValueError, match="dense=True"):
        sd.jacobian_plan(r, x, mode="bidirectional", dense=True)
    with pytest.raises(ValueError, match="unknown mode"):
        sd.jacobian_plan(r, x, mode="both")


@st.composite
def random_graph(draw):
    m = draw(st.integers(2, 9))
    n = draw(st.integers(2, 9))
    M = draw(hnp.arrays(np.bool_, (m, n), elements=st.booleans()))
    if draw(st.booleans()):
        M[draw(st.integers(0, m - 1))] = True
    if draw(st.booleans()):
        M[:, draw(st.integers(0, n - 1))] = True
    mode = draw(st.sampled_from(MODES))
    return M, mode


@settings(max_examples=12, deadline=None)
@given(random_graph())
def test_random_patterns_sparse_equals_dense(case):
    """A constant 0/1 matrix fixes the pattern (detection reads the constant's zeros)."""
    M, mode = case
    n = M.shape[1]
    x = pt.vector("x", shape=(n,))
    W = M * (1.0 + np.arange(M.size).reshape(M.shape) / M.size)
    r = pt.dot(W, pt.sin(x)) + pt.dot(W, x**2) * 0.5
    plan = sd.jacobian_plan(r, x, mode=mode, dense=False)
    assert (plan.pattern != sp.csr_array(M)).nnz == 0
    _check(r, x, mode, backend="FAST_COMPILE")


@pytest.mark.numba
def test_bidirectional_numba_backend():
    r, x = arrow(12)
    _check(r, x, "bidirectional", backend="NUMBA")


@pytest.mark.jax
def test_bidirectional_jax_backend():
    pytest.importorskip("jax")
    r, x = arrow(12)
    _check(r, x, "bidirectional", backend="JAX")
