"""Star bicoloring (kind="bidirectional") and acyclic coloring: validity, color counts, and
exact recovery from compressed products computed in NumPy (no PyTensor graph)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff import ColoringError
from sparsediff.coloring import ORDERS, Coloring, check_coloring, color, is_valid_coloring
from sparsediff.decompression import bidirectional_positions, layout
from sparsediff.decompression.substitution import substitute_kernel, substitution_schedule
from sparsediff.problems import dense_row_col
from tests.coloring.patterns import _adjacency, arrowhead, banded, bratu2d, structured

# --------------------------------------------------------------------------------------------
# brute-force definitions
# --------------------------------------------------------------------------------------------


def brute_bidirectional_valid(P, col, row) -> bool:
    P = np.asarray(P, dtype=bool)
    for i, j in zip(*np.nonzero(P), strict=True):
        by_col = col[j] > 0 and np.sum(P[i] & (col == col[j])) == 1
        by_row = row[i] > 0 and np.sum(P[:, j] & (row == row[i])) == 1
        if not (by_col or by_row):
            return False
    return True


def brute_acyclic_valid(P, colors) -> bool:
    """Proper, and every two-colored subgraph is a forest (union-find over its edges)."""
    A = _adjacency(P)
    n = A.shape[0]
    if any(colors[i] == colors[j] for i, j in zip(*np.nonzero(A), strict=True)):
        return False
    for a in range(int(colors.max(initial=-1)) + 1):
        for b in range(a + 1, int(colors.max(initial=-1)) + 1):
            parent = list(range(n))

            def find(v, parent=parent):
                while parent[v] != v:
                    v = parent[v]
                return v

            for i, j in zip(*np.nonzero(np.triu(A, 1)), strict=True):
                if {colors[i], colors[j]} != {a, b}:
                    continue
                ri, rj = find(i), find(j)
                if ri == rj:
                    return False
                parent[ri] = rj
    return True


def symmetric(P):
    P = np.asarray(P, dtype=bool)
    return P | P.T


# --------------------------------------------------------------------------------------------
# bidirectional
# --------------------------------------------------------------------------------------------


def test_dense_row_and_column_need_few_products():
    P = dense_row_col(10_000).pattern()
    assert color(P, "column").n_colors == 10_000
    assert color(P, "row").n_colors == 10_000
    c = color(P, "bidirectional")
    assert c.kind == "bidirectional" and c.n_colors <= 4
    assert c.n_colors == c.n_column_colors + c.n_row_colors == 3
    assert c.row_colors.shape == (10_000,) and c.colors.shape == (10_000,)
    check_coloring(P, c)
    assert "JVPs" in repr(c) and "VJPs" in repr(c)


def test_bidirectional_on_structured_patterns_is_valid_and_never_worse_than_needed():
    for name, P in structured().items():
        c = color(P, "bidirectional")
        check_coloring(P, c)
        assert brute_bidirectional_valid(P.toarray(), c.colors, c.row_colors), name
    P = bratu2d(6)
    c = color(P, "bidirectional")
    assert c.n_colors <= 2 * color(P, "column").n_colors


@pytest.mark.parametrize("order", ORDERS)
def test_bidirectional_every_order_is_valid(order):
    P = sp.csr_array(sp.random(30, 25, density=0.1, random_state=3) != 0)
    c = color(P, "bidirectional", order=order)
    check_coloring(P, c)


patterns = st.integers(0, 12).flatmap(
    lambda m: st.integers(0, 12).flatmap(
        lambda n: hnp.arrays(np.bool_, (m, n), elements=st.booleans())
    )
)


@settings(max_examples=120, deadline=None)
@given(P=patterns, dense_row=st.booleans(), dense_col=st.booleans())
def test_bidirectional_random_patterns_recover_exactly(P, dense_row, dense_col):
    P = P.copy()
    m, n = P.shape
    if m and n and dense_row:
        P[m // 2] = True
    if m and n and dense_col:
        P[:, n // 2] = True
    c = color(P, "bidirectional")
    check_coloring(P, c)
    assert brute_bidirectional_valid(P, c.colors, c.row_colors)
    # products in NumPy, then the plan-time positions pick every nonzero exactly
    rng = np.random.default_rng(0)
    J = np.where(P, rng.uniform(1, 2, P.shape), 0.0)
    kc, kr = c.n_column_colors, c.n_row_colors
    S = np.zeros((n, kc))
    S[np.flatnonzero(c.colors), c.colors[c.colors > 0] - 1] = 1
    W = np.zeros((m, kr))
    W[np.flatnonzero(c.row_colors), c.row_colors[c.row_colors > 0] - 1] = 1
    flat = np.concatenate([(J @ S).T.ravel(), (W.T @ J).ravel()])
    lay = layout(sp.csr_array(P), "csr")
    pos = bidirectional_positions(lay, c.colors, c.row_colors)
    np.testing.assert_array_equal(flat[pos], J[lay.rows, lay.cols])


@settings(max_examples=150, deadline=None)
@given(
    P=hnp.arrays(np.bool_, (5, 4), elements=st.booleans()),
    col=hnp.arrays(np.int64, (4,), elements=st.integers(0, 2)),
    row=hnp.arrays(np.int64, (5,), elements=st.integers(0, 2)),
)
def test_bidirectional_checker_matches_brute_force(P, col, row):
    expected = brute_bidirectional_valid(P, col, row)
    assert is_valid_coloring(P, (col, row), kind="bidirectional") == expected
    if expected:
        return
    with pytest.raises(ValueError, match="can be read from neither side"):
        check_coloring(P, (col, row), kind="bidirectional")
    with pytest.raises(ColoringError, match="does not allow recovery"):
        bidirectional_positions(layout(sp.csr_array(P)), col, row)


def test_bidirectional_coloring_bad_input():
    P = dense_row_col(6).pattern()
    with pytest.raises(ValueError, match="needs row_colors"):
        Coloring(np.ones(6, dtype=int), 1, "bidirectional")
    with pytest.raises(ValueError, match="needs 3 products"):
        Coloring(np.ones(6, dtype=int), 2, "bidirectional", row_colors=np.full(5, 2))
    with pytest.raises(ValueError, match="only for kind 'bidirectional'"):
        Coloring(np.zeros(6, dtype=int), 1, "column", row_colors=np.zeros(6))
    with pytest.raises(ValueError, match="one color per row"):
        check_coloring(P, (np.ones(6, dtype=int), np.ones(5, dtype=int)), kind="bidirectional")
    with pytest.raises(TypeError, match="pair"):
        check_coloring(P, np.ones(6, dtype=int), kind="bidirectional")


# --------------------------------------------------------------------------------------------
# acyclic
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [2, 4, 6, 10])
def test_banded_acyclic_reaches_half_the_bands_plus_one(rho):
    """ρ off-diagonal bands (half-bandwidth ρ/2): acyclic needs ⌊ρ/2⌋+1 colors, its clique."""
    beta = rho // 2
    P = banded(200, beta, beta)
    c = color(P, "acyclic")
    assert c.kind == "acyclic" and c.n_colors == rho // 2 + 1
    check_coloring(P, c)
    assert color(P, "star").n_colors > c.n_colors


def test_acyclic_beats_star_on_stencils_and_arrowhead():
    P = bratu2d(10)
    a, s = color(P, "acyclic"), color(P, "star")
    check_coloring(P, a)
    assert a.n_colors == 4 < s.n_colors
    A = arrowhead(50)
    assert color(A, "acyclic").n_colors == 2


@pytest.mark.parametrize("order", ORDERS)
def test_acyclic_every_order_is_valid(order):
    P = sp.random(40, 40, density=0.08, random_state=4) != 0
    P = sp.csr_array(P + P.T)
    check_coloring(P, color(P, "acyclic", order=order))


square = st.integers(0, 12).flatmap(lambda n: hnp.arrays(np.bool_, (n, n), elements=st.booleans()))


@settings(max_examples=120, deadline=None)
@given(P=square)
def test_acyclic_random_patterns_recover_exactly_by_substitution(P):
    P = symmetric(P)
    n = P.shape[0]
    c = color(P, "acyclic")
    check_coloring(P, c)
    assert brute_acyclic_valid(P, c.colors)
    rng = np.random.default_rng(1)
    H = np.where(P, rng.uniform(1, 2, P.shape), 0.0)
    H = np.triu(H) + np.triu(H, 1).T
    S = np.zeros((n, c.n_colors))
    S[np.arange(n), c.colors] = 1
    B = (H @ S).T  # batch-first, as the compressed graphs are
    for fmt in ("csr", "csc"):
        lay = layout(sp.csr_array(P), fmt)
        sch = substitution_schedule(sp.csr_array(P), lay, c.colors)
        data = substitute_kernel(
            B.ravel(), sch.src, sch.read, sch.write, sch.out_a, sch.out_b, sch.n_slots, sch.nnz
        )
        np.testing.assert_allclose(data, H[lay.rows, lay.cols], rtol=1e-13)


@settings(max_examples=150, deadline=None)
@given(
    P=hnp.arrays(np.bool_, (6, 6), elements=st.booleans()),
    colors=hnp.arrays(np.int64, (6,), elements=st.integers(0, 2)),
)
def test_acyclic_checker_matches_brute_force(P, colors):
    P = symmetric(P)
    expected = brute_acyclic_valid(P, colors)
    assert is_valid_coloring(P, colors, kind="acyclic") == expected
    if not expected:
        with pytest.raises(ColoringError, match="not an acyclic coloring"):
            substitution_schedule(sp.csr_array(P), layout(sp.csr_array(P)), colors)


def test_acyclic_checker_names_the_cycle():
    cycle = np.zeros((4, 4), bool)
    for i in range(4):
        cycle[i, (i + 1) % 4] = cycle[(i + 1) % 4, i] = True
    with pytest.raises(ValueError, match="cycle colored with two colors"):
        check_coloring(cycle, np.array([0, 1, 0, 1]), kind="acyclic")
    with pytest.raises(ValueError, match="adjacent vertices 0 and 1"):
        check_coloring(cycle, np.array([0, 0, 1, 2]), kind="acyclic")
    check_coloring(cycle, np.array([0, 1, 0, 2]), kind="acyclic")
    with pytest.raises(ValueError, match="square"):
        color(np.ones((2, 3)), "acyclic")


def _sparse_arrowhead(n: int) -> sp.csr_array:
    k = np.arange(n)
    rows = np.concatenate([k, np.zeros(n - 1, dtype=np.int64), k[1:]])
    cols = np.concatenate([k, k[1:], np.zeros(n - 1, dtype=np.int64)])
    return sp.csr_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(n, n))


def test_star_auto_colors_a_dense_row_last():
    """A dense row colored early costs deg² (minutes at n = 10⁶): auto switches to
    largest_last once one vertex's degree² exceeds the sweep budget, and still finds 2."""
    small = _sparse_arrowhead(2000)
    assert color(small, kind="star").n_colors == 2
    big = _sparse_arrowhead(200_000)
    c = color(big, kind="star")
    assert c.n_colors == 2 and c.order == "largest_last"
    hub = c.colors[0]
    assert (c.colors[1:] != hub).all()  # the hub alone in its color, every leaf in the other
