"""Stage 4: positions of the nonzeros in the compressed matrix, the lifted gather, assembly."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.tensor.shape import Reshape

from sparsediff import ColoringError
from sparsediff.compression import seed_matrix
from sparsediff.decompression import (
    assemble,
    forward_positions,
    gather,
    layout,
    reverse_positions,
    star_positions,
)
from tests.jacobian_helpers import dense_reference, greedy_coloring


def _random_sparse(m, n, density, seed):
    rng = np.random.default_rng(seed)
    a = sp.random_array((m, n), density=density, rng=rng, format="csr")
    a.data = rng.uniform(-2, 2, a.nnz)
    return sp.csr_array(a)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("shape", [(7, 11), (11, 7), (30, 30)])
def test_forward_and_reverse_recover_every_entry(shape, fmt):
    J = _random_sparse(*shape, density=0.2, seed=sum(shape))
    lay = layout(J != 0, fmt)
    ref = J.tocsc() if fmt == "csc" else J
    ref.sort_indices()
    np.testing.assert_array_equal(lay.indices, ref.indices)
    np.testing.assert_array_equal(lay.indptr, ref.indptr)
    # forward: B = (J S)ᵀ, batch-first
    colors = greedy_coloring(J != 0, "column")
    S = seed_matrix(colors, colors.max() + 1)
    B = (J @ S.T).T
    np.testing.assert_allclose(B.ravel()[forward_positions(lay, colors)], ref.data)
    # reverse: Bᵀ = Wᵀ J
    colors = greedy_coloring(J != 0, "row")
    W = seed_matrix(colors, colors.max() + 1)
    Bt = W @ J.toarray()
    np.testing.assert_allclose(Bt.ravel()[reverse_positions(lay, colors)], ref.data)


def test_star_recovery_is_exact_and_symmetric():
    rng = np.random.default_rng(3)
    A = _random_sparse(40, 40, 0.06, seed=3)
    H = sp.csr_array(A + A.T + sp.diags_array(rng.uniform(1, 2, 40)))
    colors = greedy_coloring(H != 0, "column")  # distance-2: a valid star coloring
    lay = layout(H != 0, "csr")
    pos = star_positions(lay, colors)
    B = (H @ seed_matrix(colors, colors.max() + 1).T).T
    data = B.ravel()[pos]
    got = sp.csr_array((data, lay.indices, lay.indptr), shape=H.shape).toarray()
    np.testing.assert_allclose(got, H.toarray(), rtol=1e-14)
    np.testing.assert_array_equal(got, got.T)  # each symmetric pair read from one place


def test_star_needs_fewer_colors_than_distance2_on_arrowhead():
    n = 9
    P = np.eye(n, dtype=bool)
    P[0, :] = P[:, 0] = True
    colors = np.r_[0, np.ones(n - 1, dtype=int)]  # star: hub alone, all leaves share a color
    pos = star_positions(layout(P), colors)
    assert pos.size == P.sum()
    with pytest.raises(ColoringError):
        forward_positions(layout(P), colors)


def test_invalid_colorings_are_rejected():
    P = sp.csr_array(np.array([[1, 1, 0], [0, 1, 1]], dtype=bool))
    with pytest.raises(ColoringError, match="row 0 has two nonzero columns of color 0"):
        forward_positions(layout(P), np.array([0, 0, 1]))
    with pytest.raises(ColoringError, match="column 1 has two nonzero rows"):
        reverse_positions(layout(P), np.array([0, 0]))
    with pytest.raises(ColoringError, match="one color per column"):
        forward_positions(layout(P), np.array([0, 1]))
    with pytest.raises(ColoringError, match="star coloring is needed"):
        S = np.ones((3, 3), bool)
        star_positions(layout(S), np.array([0, 1, 1]))


def test_large_color_count_uses_the_sort_path():
    n = 12_000  # n * n_colors above the bincount limit
    P = sp.eye_array(n, format="csr", dtype=bool) + sp.eye_array(n, k=1, format="csr", dtype=bool)
    P = sp.csr_array(P + P.T)
    colors = np.arange(n)
    lay = layout(P)
    pos = star_positions(lay, colors)
    a, b = np.minimum(lay.rows, lay.cols), np.maximum(lay.rows, lay.cols)
    np.testing.assert_array_equal(pos, colors[b] * n + a)


def test_gather_lifts_through_elementwise_and_keeps_constants_constant():
    x = pt.vector("x", shape=(6,))
    c0 = np.arange(18.0).reshape(3, 6)
    c1 = np.zeros((3, 6))
    c1[1, 2] = 5.0
    B = c0 + c1 * pt.exp(x)[None, :]  # (3, 6): only entry (1, 2) depends on x
    positions = np.array([2, 8, 9, 15, 0])
    lifted = gather(B, positions)
    plain = gather(B, positions, lift=False)
    fn = pytensor.function([x], [lifted, plain], mode="FAST_COMPILE")
    xv = np.linspace(0, 1, 6)
    a, b = fn(xv)
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, (c0 + c1 * np.exp(xv)).ravel()[positions])
    # only one entry is computed per call: exp(x[2]) scattered into constants
    nodes = pytensor.graph.traversal.applys_between([x], [lifted])
    sizes = [o.type.shape for n in nodes for o in n.outputs if str(n.op) == "Exp"]
    assert sizes == [(1,)]


def test_gather_through_reshape_and_dimshuffle():
    x = pt.matrix("x", shape=(3, 4))
    B = (pt.sin(x).T * 2.0).reshape((2, 6))
    positions = np.array([11, 0, 5, 6, 7])
    fn = pytensor.function([x], gather(B, positions), mode="FAST_COMPILE")
    xv = np.random.default_rng(0).random((3, 4))
    np.testing.assert_allclose(fn(xv), (np.sin(xv).T * 2).reshape(2, 6).ravel()[positions])


def test_mul_by_zero_constant_entries_are_zero_even_for_inf():
    x = pt.vector("x", shape=(3,))
    B = np.array([0.0, 1.0, 0.0]) * pt.log(x)  # entries 0 and 2 are structurally zero
    fn = pytensor.function([x], gather(B, np.arange(3)), mode="FAST_COMPILE")
    np.testing.assert_allclose(fn(np.array([0.0, 2.0, 0.0])), [0.0, np.log(2.0), 0.0])


def test_partly_zero_factor_restricts_the_product_to_its_varying_entries():
    """(c * exp(x)) * sin(x) with c zero at 4 of 6 entries: the product (and sin) runs on 2."""
    x = pt.vector("x", shape=(6,))
    c = np.array([0.0, 2.0, 0.0, 0.0, 3.0, 0.0])
    B = (c * pt.exp(x)) * pt.sin(x) + 1.0
    lifted = gather(B, np.arange(6))
    fn = pytensor.function([x], lifted, mode="FAST_COMPILE")
    xv = np.linspace(0.1, 1.0, 6)
    np.testing.assert_allclose(fn(xv), c * np.exp(xv) * np.sin(xv) + 1.0, rtol=1e-15)
    nodes = pytensor.graph.traversal.applys_between([x], [lifted])
    sizes = [o.type.shape for n in nodes for o in n.outputs if str(n.op) == "Sin"]
    assert sizes == [(2,)]


def test_disjoint_varying_pieces_are_computed_apart_and_written_by_one_scatter():
    """a + b with a varying at entries {0, 3} and b at {1, 4}: each piece computed on its own
    (2 entries each, the other operand's constants there), one scatter into the constants."""
    x = pt.vector("x", shape=(6,))
    ca = np.array([1.0, 0.0, 0.0, 2.0, 0.0, 0.0])
    cb = np.array([0.0, 3.0, 0.0, 0.0, 4.0, 0.0])
    B = 3.0 * (ca * pt.exp(x) + cb * pt.sin(x) + 2.0)
    lifted = gather(B, np.arange(6))
    fn = pytensor.function([x], lifted, mode="FAST_COMPILE")
    xv = np.linspace(0.1, 1.0, 6)
    np.testing.assert_allclose(fn(xv), 3.0 * (ca * np.exp(xv) + cb * np.sin(xv) + 2.0))
    nodes = list(pytensor.graph.traversal.applys_between([x], [lifted]))
    writes = [n for n in nodes if "SetSubtensor" in str(n.op)]
    assert len(writes) == 1, writes
    sizes = {o.type.shape for n in nodes for o in n.outputs if str(n.op) in ("Exp", "Sin")}
    assert sizes == {(2,)}


def test_overlapping_varying_pieces_are_refined_into_atoms_without_scatters():
    """a * b + c with a varying at {0, 1, 2}, b at {2, 3} and c at {1, 3, 4}: the entries fall
    into atoms {0}, {1}, {2}, {3}, {4} (the same operands vary on each); each atom is computed
    with every operand fully varying or constant there, and only the root writes into the
    constants (before: a set_subtensor into constants per partially varying operand)."""
    x = pt.vector("x", shape=(6,))
    ca = np.array([1.0, 2.0, 3.0, 0.0, 0.0, 0.0])
    cb = np.array([0.0, 0.0, 5.0, 6.0, 0.0, 0.0])
    cc = np.array([0.0, 7.0, 0.0, 8.0, 9.0, 0.0])
    B = (ca * pt.exp(x) + 1.0) * (cb * pt.sin(x) + 2.0) + cc * pt.cos(x)
    lifted = gather(B, np.arange(6))
    fn = pytensor.function([x], lifted, mode="FAST_COMPILE")
    xv = np.linspace(0.1, 1.0, 6)
    want = (ca * np.exp(xv) + 1.0) * (cb * np.sin(xv) + 2.0) + cc * np.cos(xv)
    np.testing.assert_allclose(fn(xv), want, rtol=1e-15)
    nodes = list(pytensor.graph.traversal.applys_between([x], [lifted]))
    writes = [n for n in nodes if "IncSubtensor" in type(n.op).__name__]
    assert len(writes) == 1, writes
    sizes = {o.type.shape for n in nodes for o in n.outputs if str(n.op) in ("Exp", "Sin", "Cos")}
    assert sizes <= {(1,), (2,), (3,)}, sizes


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_assemble(fmt):
    P = sp.csr_array(np.array([[1, 0, 1], [0, 1, 0]], dtype=bool))
    lay = layout(P, fmt)
    d = pt.vector("d", shape=(3,))
    J = assemble(d, lay)
    assert J.type.format == fmt
    out = pytensor.function([d], J, mode="FAST_COMPILE")(np.array([1.0, 2.0, 3.0]))
    assert out.format == fmt and out.shape == (2, 3)
    expected = np.zeros((2, 3))
    expected[lay.rows, lay.cols] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(out.toarray(), expected)


def test_compiled_results_share_a_read_only_structure():
    from sparsediff.decompression import SharedStructureCSM

    P = sp.csr_array(np.array([[1, 0, 1], [0, 1, 0]], dtype=bool))
    d = pt.vector("d", shape=(3,))
    J = assemble(pt.exp(d), layout(P))
    fn = pytensor.function([d], J, mode="FAST_RUN")
    assert any(isinstance(n.op, SharedStructureCSM) for n in fn.maker.fgraph.apply_nodes)
    a = fn(np.zeros(3))
    assert not a.indices.flags.writeable and not a.indptr.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        a.indices[0] = 2
    a.data[:] = 7.0  # the values are the caller's own
    b = fn(np.ones(3))
    np.testing.assert_allclose(b.toarray(), np.where(P.toarray(), np.e, 0.0))
    c = b.copy()
    c.indices[0] = 2  # a copy is fully writable
    np.testing.assert_array_equal(fn(np.ones(3)).indices, [0, 2, 1])


def test_gather_lifts_through_join_so_the_compressed_matrix_is_never_built():
    """One dense row and one dense column: 2000 colors, yet only the nonzeros are computed."""
    import sparsediff as sd
    from sparsediff import problems

    prob = problems.dense_row_col(2000)
    J = sd.jacobian(prob.expression, prob.x)
    fn = pytensor.function([prob.x], J, mode="FAST_RUN")
    biggest = max(
        int(np.prod(o.type.shape))
        for n in fn.maker.fgraph.apply_nodes
        for o in n.outputs
        if getattr(o.type, "shape", None) and None not in o.type.shape
    )
    assert biggest <= prob.pattern().nnz  # not n_colors × m = 4·10⁶
    x = np.linspace(0.5, 1.0, 2000)
    np.testing.assert_allclose(fn(x).toarray(), prob.jacobian(x).toarray(), rtol=1e-14)


# --- the row form: a derivative shared by w entries of a row ---------------------------------


def _index_and_float_constant_sizes(out):
    nodes = pytensor.graph.traversal.applys_between(
        pytensor.graph.traversal.graph_inputs([out]), [out]
    )
    return {
        (str(i.dtype), int(np.asarray(i.data).size))
        for n in nodes
        for i in n.inputs
        if isinstance(i, pt.TensorConstant) and np.asarray(i.data).ndim > 0
    }


@pytest.mark.parametrize(
    ("flat", "width"),
    [
        ([3, 3, 5, 5, 9, 9], 2),
        ([1, 1, 1, 0, 0, 0], 3),
        ([4, 4, 7, 7, 7, 7], 2),  # runs of 2 and 4: a row of 2 equal entries each time
        ([0, 1, 2, 3], 1),
        ([2, 2, 2, 2], 1),  # one value: a broadcast, not rows
        ([2, 2, 3], 1),
        ([0, 0, 1, 1, 2], 1),
        ([5, 5, 6, 6, 6, 7], 1),
    ],
)
def test_repeat_width(flat, width):
    from sparsediff.decompression.lift import _repeat_width

    assert _repeat_width(np.array(flat, dtype=np.int64)) == width


@pytest.mark.parametrize(
    "mode", ["FAST_COMPILE", "CVM", pytest.param("NUMBA", marks=pytest.mark.numba)]
)
def test_repeated_derivative_is_gathered_once_per_row(mode):
    """±cos(x[i+1] - x[i]) in the two entries of each row: cos is read once per row and the
    seed's signs are one row of constants, not vectors of the 2(n - 1) entries."""
    n = 40
    x = pt.vector("x", shape=(n,))
    signs = np.tile(np.array([[-1.0], [1.0]]), (1, n - 1))  # (2 colors, n - 1 rows)
    B = pt.cos(x[1:] - x[:-1])[None, :] * signs
    positions = np.stack([np.arange(n - 1), (n - 1) + np.arange(n - 1)], axis=1).ravel()
    lifted = gather(B, positions)
    xv = np.random.default_rng(0).uniform(0, 1, n)
    want = np.stack([-np.cos(np.diff(xv)), np.cos(np.diff(xv))], axis=1).ravel()
    fn = pytensor.function([x], [lifted, gather(B, positions, lift=False)], mode=mode)
    got, plain = fn(xv)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(plain, want)
    sizes = _index_and_float_constant_sizes(lifted)
    assert not [s for s in sizes if s[1] >= n - 1], sizes  # no per-entry index or constant


def test_rows_with_a_repeated_and_a_varying_leaf():
    """u[j] · v[k] at entries (k, j) for k in {0, 1}: u repeats in each pair, v alternates (a
    gather of the pair's two values), a constant differs from row to row."""
    m = 9
    x = pt.vector("x", shape=(m + 2,))
    u, v = pt.exp(x[:m]), pt.sin(x[m:])
    c = np.arange(2.0 * m).reshape(2, m) + 1.0
    B = u[None, :] * v[:, None] * c + 2.0
    positions = np.stack([np.arange(m), m + np.arange(m)], axis=1).ravel()  # (0, j), (1, j)
    xv = np.linspace(0.1, 1.1, m + 2)
    fn = pytensor.function([x], [gather(B, positions), gather(B, positions, lift=False)])
    got, plain = fn(xv)
    want = (np.exp(xv[:m])[None, :] * np.sin(xv[m:])[:, None] * c + 2.0).ravel()[positions]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    np.testing.assert_allclose(plain, want, rtol=1e-15)


def test_rows_with_a_partly_constant_operand_equal_the_plain_gather():
    """A factor constant at some of the entries (a seed's zeros): the product is split into
    pieces (each may take the row form); the values equal the plain gather."""
    n = 12
    x = pt.vector("x", shape=(n,))
    c = np.ones((2, n - 1))
    c[0, ::3] = 0.0
    B = pt.cos(x[1:] - x[:-1])[None, :] * c * pt.exp(x[:-1])[None, :]
    positions = np.stack([np.arange(n - 1), (n - 1) + np.arange(n - 1)], axis=1).ravel()
    xv = np.linspace(0.2, 0.9, n)
    got, plain = pytensor.function([x], [gather(B, positions), gather(B, positions, lift=False)])(
        xv
    )
    np.testing.assert_allclose(got, plain, rtol=1e-15)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(2, 12),
    w=st.integers(2, 4),
    rows=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    op=st.sampled_from(["mul", "add", "sub_exp"]),
)
def test_rows_equal_the_plain_gather_on_random_repeats(m, w, rows, seed, op):
    """Random positions, each repeated w times in a row, into a (w, m) product of operands
    that vary along columns, along rows, or not at all: the lifted gather equals the plain one."""
    rng = np.random.default_rng(seed)
    x = pt.vector("x", shape=(m + w,))
    along_cols = pt.cos(x[:m])[None, :]
    along_rows = pt.exp(x[m:])[:, None]
    c = rng.choice([-1.0, 1.0, 2.0], size=(1, w)).T * np.ones((w, m))
    if op == "mul":
        B = along_cols * c
    elif op == "add":
        B = along_cols + along_rows * c
    else:
        B = pt.exp(along_cols - c) * along_rows
    cols = rng.integers(0, m, size=rows)
    positions = (np.arange(w)[None, :] * m + cols[:, None]).ravel()  # (k, col) for k < w
    if rng.random() < 0.5:
        positions = np.repeat(cols, w)  # the same entry w times: all leaves repeat
    xv = rng.uniform(0.1, 1.0, m + w)
    fn = pytensor.function([x], [gather(B, positions), gather(B, positions, lift=False)])
    got, plain = fn(xv)
    np.testing.assert_allclose(got, plain, rtol=1e-14)


@pytest.mark.parametrize(
    "mode",
    [
        "FAST_COMPILE",
        "CVM",
        pytest.param("NUMBA", marks=pytest.mark.numba),
        pytest.param("JAX", marks=pytest.mark.jax),
    ],
)
def test_rectangular_jacobian_in_rows_matches_dense(mode):
    """The built-in ``rectangular`` problem (``sin(x[i+1] - x[i])`` rows) takes the row form
    and equals the dense ``pytensor.gradient.jacobian``."""
    import sparsediff as sd
    from sparsediff import problems

    prob = problems.rectangular(25)
    J = sd.jacobian(prob.expression, prob.x)
    assert any(
        isinstance(n.op, Reshape) and n.outputs[0].ndim == 2
        for n in pytensor.graph.traversal.applys_between([prob.x], [J])
    )
    xv = prob.x0 + np.random.default_rng(3).uniform(0, 0.1, prob.n)
    got = pytensor.function([prob.x], J, mode=mode)(xv)
    if not sp.issparse(got):  # JAX: BCSR
        got = sp.csr_array((np.asarray(got.data), np.asarray(got.indices), np.asarray(got.indptr)))
    ref = dense_reference(prob.expression, prob.x, [prob.x], [xv])[0]
    np.testing.assert_allclose(got.toarray(), ref, rtol=1e-13, atol=1e-15)
