"""The row-block JAX form of a constant-index scatter (:mod:`sparsediff.backends.jax_blocks`).

Checked against NumPy on scatters built by hand (fixed-width rows with a varying slot, pieces
on different row ranges, sets and increments, a dtype cast) and against the C backend on
sparsediff Jacobians: a rectangular (non-square) one with fixed row width, which takes the
block form, and one with irregular rows, which does not; also the JAX conversion of an
OpFromGraph with constant inputs (the gradient of ``pt.pad``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

jax = pytest.importorskip("jax")

import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402
from pytensor.tensor.subtensor import AdvancedIncSubtensor1  # noqa: E402

import sparsediff as sd  # noqa: E402
from sparsediff.backends.jax_blocks import block_form, row_runs  # noqa: E402
from sparsediff.backends.jax_function import jax_callable  # noqa: E402

pytestmark = pytest.mark.jax


def _scatter(n, pieces, set_=True, x_dtype="float64", y_dtype="float64"):
    """``x[idx] = concatenate(pieces)`` (or ``+=``) compiled with JAX, its node, and the index."""
    x = pt.vector("x", shape=(n,), dtype=x_dtype)
    ys = [pt.vector(f"y{k}", shape=(p.size,), dtype=y_dtype) for k, p in enumerate(pieces)]
    idx = np.concatenate(pieces).astype(np.int64)
    y = pt.concatenate(ys) if len(ys) > 1 else ys[0]
    out = pt.set_subtensor(x[idx], y) if set_ else pt.inc_subtensor(x[idx], y)
    f = pytensor.function([x, *ys], out, mode="JAX")
    node = next(a for a in f.maker.fgraph.apply_nodes if isinstance(a.op, AdvancedIncSubtensor1))
    return f, node, idx


def _numpy(xv, idx, yv, set_):
    out = xv.copy()
    if set_:
        out[idx] = yv.astype(out.dtype)
    else:
        out[idx] += yv.astype(out.dtype)
    return out


def _fixed_width_pieces(rng, rows, w):
    """Two pieces of one value per row at a slot varying by row: one on all rows, one on a
    middle range (so the rows fall in three segments)."""
    slots = np.array([rng.permutation(w)[:2] for _ in range(rows)])
    r = np.arange(rows)
    a = r * w + slots[:, 0]
    mid = np.arange(3, rows - 4)
    b = mid * w + slots[mid, 1]
    return [a, b]


@pytest.mark.parametrize("set_", [True, False])
def test_fixed_width_rows_take_the_block_form_and_equal_numpy(set_):
    rng = np.random.default_rng(0)
    rows, w = 40, 5
    pieces = _fixed_width_pieces(rng, rows, w)
    f, node, idx = _scatter(rows * w, pieces, set_)
    assert block_form(node.op, node) is not None
    xv = rng.standard_normal(rows * w)
    ys = [rng.standard_normal(p.size) for p in pieces]
    got = np.asarray(f(xv, *ys))
    np.testing.assert_array_equal(got, _numpy(xv, idx, np.concatenate(ys), set_))


def test_runs_are_cut_at_the_pieces_of_a_join():
    """Pieces on consecutive rows stay separate runs where ``y`` is a Join of them (so that XLA
    drops the concatenation); the rows rise by one inside each run."""
    w = 4
    first, second = np.arange(0, 10) * w + 1, np.arange(10, 20) * w + 2
    idx = np.concatenate([first, second])
    assert row_runs(idx, w, np.zeros(0, np.int64)).tolist() == [0, 20]
    assert row_runs(idx, w, np.array([10])).tolist() == [0, 10, 20]
    f, node, _ = _scatter(20 * w, [first, second])
    assert block_form(node.op, node) is not None
    xv, y0, y1 = np.zeros(20 * w), np.arange(10.0), -np.arange(10.0)
    np.testing.assert_array_equal(
        np.asarray(f(xv, y0, y1)), _numpy(xv, idx, np.concatenate([y0, y1]), True)
    )


def test_values_are_cast_to_the_dtype_of_x():
    rng = np.random.default_rng(1)
    pieces = _fixed_width_pieces(rng, 30, 3)
    f, node, idx = _scatter(90, pieces, True, x_dtype="float32", y_dtype="float32")
    assert block_form(node.op, node) is not None
    xv = rng.standard_normal(90).astype(np.float32)
    ys = [rng.standard_normal(p.size).astype(np.float32) for p in pieces]
    got = np.asarray(f(xv, *ys))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _numpy(xv, idx, np.concatenate(ys), True))


@pytest.mark.parametrize(
    "case", ["irregular", "descending rows", "sparse set", "repeated", "too many runs"]
)
def test_other_scatters_keep_their_conversion_and_equal_numpy(case):
    rng = np.random.default_rng(2)
    n = 120
    if case == "irregular":  # distinct random positions: no width gives few runs
        pieces = [rng.permutation(n)[:70]]
    elif case == "descending rows":
        pieces = [(np.arange(30)[::-1] * 4 + 1)]
    elif case == "sparse set":  # one run, but on 10 of 60 rows: XLA's scatter writes in place
        pieces = [np.arange(10) * 2]
    elif case == "repeated":
        pieces = [np.array([3, 3, 7, 8])]
    else:  # 12 pieces on the same rows
        pieces = [np.arange(10) * 12 + k for k in range(12)]
    f, node, idx = _scatter(n, pieces, case != "repeated")
    assert block_form(node.op, node) is None
    xv = rng.standard_normal(n)
    ys = [rng.standard_normal(p.size) for p in pieces]
    y = np.concatenate(ys)
    if case == "repeated":
        expected = xv.copy()
        np.add.at(expected, idx, y)
    else:
        expected = _numpy(xv, idx, y, True)
    np.testing.assert_allclose(np.asarray(f(xv, *ys)), expected, rtol=1e-15, atol=1e-15)


def _jacobians(r, x, xv):
    J = sd.jacobian_plan(r, x).build()
    f_jax = pytensor.function([x], J, mode="JAX")
    f_c = pytensor.function([x], J, mode="CVM")
    out = f_jax(xv)
    got = sp.csr_array(
        (np.asarray(out.data), np.asarray(out.indices), np.asarray(out.indptr)), shape=out.shape
    )
    return got, sp.csr_array(f_c(xv)), jax_callable(f_jax)


def _has_scatter(g, xv):
    hlo = g.lower(jax.numpy.asarray(xv)).compile().as_text()
    return bool(re.search(r"\} scatter\(", hlo))


def test_rectangular_jacobian_with_fixed_row_width_equals_c_backend():
    """r: R^n -> R^(n-2), three entries in every row (two constant, one varying)."""
    n = 60
    x = pt.vector("x", shape=(n,))
    r = x[:-2] - 2.0 * x[1:-1] + x[2:] ** 2 * pt.sin(x[2:])
    xv = np.linspace(0.1, 1.2, n)
    got, expected, g = _jacobians(r, x, xv)
    assert got.shape == (n - 2, n)
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-14, atol=1e-14)
    dense = pytensor.function([x], pytensor.gradient.jacobian(r, x))(xv)
    np.testing.assert_allclose(got.toarray(), dense, rtol=1e-12, atol=1e-12)
    assert not _has_scatter(g, xv)  # the block form


def test_irregular_rows_jacobian_equals_c_backend():
    """Rows with 1, 2 and 3 entries mixed (no fixed width): the scatter stays, values as C."""
    n = 48
    x = pt.vector("x", shape=(n,))
    r = pt.concatenate(
        [x[:16] ** 2, x[16:32] * 3.0 + pt.exp(x[:16]), x[32:] - 2.0 * x[16:32] + x[:16] ** 3]
    )
    xv = np.linspace(0.1, 1.2, n)
    got, expected, _ = _jacobians(r, x, xv)
    assert len(set(np.diff(got.indptr).tolist())) == 3
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-14, atol=1e-14)
    dense = pytensor.function([x], pytensor.gradient.jacobian(r, x))(xv)
    np.testing.assert_allclose(got.toarray(), dense, rtol=1e-12, atol=1e-12)


def test_gradient_of_pad_compiles_on_jax():
    """PyTensor's JAX conversion of an OpFromGraph traced ``pt.pad``'s gradient with its
    constant ``pad_width`` as a tracer (a slice of it failed); the constants now go in."""
    u = pt.matrix("u", shape=(6, 5))
    e = pt.sum(pt.exp(pt.pad(u, 1))[1:, :-1] * pt.pad(u, 1)[:-1, 1:])
    g = pytensor.grad(e, u)
    uv = np.random.default_rng(3).standard_normal((6, 5))
    got = pytensor.function([u], g, mode="JAX")(uv)
    import jax.numpy as jnp

    def energy(v):  # the same function in JAX, differentiated by JAX
        p = jnp.pad(v, 1)
        return jnp.sum(jnp.exp(p)[1:, :-1] * p[:-1, 1:])

    jax.config.update("jax_enable_x64", True)
    expected = jax.grad(energy)(jnp.asarray(uv))
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-13, atol=1e-13)
