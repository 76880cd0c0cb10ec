"""sd.color: validity for every kind × order, quality targets, inputs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sparsediff as sd
from sparsediff.coloring import ORDERS, Coloring, check_coloring, color, lower_bound
from tests.coloring.patterns import (
    banded,
    bratu2d,
    bratu_optimal_coloring,
    brusselator2d,
    brute_column_valid,
    brute_star_valid,
    brute_symmetric_recovery,
    structured,
)

KINDS = ("column", "row", "star")
ALL_ORDERS = (*ORDERS, "auto")
STRUCTURED = structured()

patterns = hnp.arrays(
    np.bool_,
    st.tuples(st.integers(0, 14), st.integers(0, 14)),
    elements=st.booleans(),
)
square_patterns = st.integers(0, 14).flatmap(
    lambda n: hnp.arrays(np.bool_, (n, n), elements=st.booleans())
)


def _valid_for(P, c: Coloring) -> bool:
    A = np.asarray(P.toarray() if sp.issparse(P) else P) != 0
    if c.kind == "column":
        return brute_column_valid(A, c.colors)
    if c.kind == "row":
        return brute_column_valid(A.T, c.colors)
    return brute_star_valid(A, c.colors) and brute_symmetric_recovery(A, c.colors)


def _invariants(c: Coloring, size: int) -> None:
    assert c.colors.dtype == np.int64 and c.colors.shape == (size,)
    assert c.n_colors == (int(c.colors.max()) + 1 if size else 0)
    if size:
        assert c.colors.min() >= 0
        # every color in 0 … n_colors-1 is used
        assert np.unique(c.colors).size == c.n_colors


# --------------------------------------------------------------------------------------------
# Validity: every kind × order, structured and random patterns
# --------------------------------------------------------------------------------------------


STRUCTURED_CASES = [
    (name, kind)
    for name, P in STRUCTURED.items()
    for kind in KINDS
    if kind != "star" or P.shape[0] == P.shape[1]
]


@pytest.mark.parametrize("order", ALL_ORDERS)
@pytest.mark.parametrize("name,kind", STRUCTURED_CASES)
def test_structured_valid(name, kind, order):
    P = STRUCTURED[name]
    c = color(P, kind=kind, order=order)
    assert c.kind == kind
    _invariants(c, P.shape[0] if kind == "row" else P.shape[1])
    check_coloring(P, c)
    assert _valid_for(P, c)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(P=patterns, order=st.sampled_from(ALL_ORDERS), seed=st.integers(0, 3))
def test_random_column_and_row_valid(P, order, seed):
    for kind in ("column", "row"):
        c = color(P, kind=kind, order=order, seed=seed)
        _invariants(c, P.shape[0] if kind == "row" else P.shape[1])
        assert _valid_for(P, c), (kind, order, c.colors)
        check_coloring(P, c)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(P=square_patterns, order=st.sampled_from(ALL_ORDERS), seed=st.integers(0, 3))
def test_random_star_valid(P, order, seed):
    c = color(P, kind="star", order=order, seed=seed)
    _invariants(c, P.shape[0])
    assert _valid_for(P, c), (order, c.colors, c.method)
    check_coloring(P, c)


@settings(max_examples=40, deadline=None)
@given(P=square_patterns, order=st.sampled_from(ORDERS))
def test_star_algorithm_alone_is_valid(P, order):
    """The star kernel itself, without the distance-2 alternative that may replace it."""
    from sparsediff.coloring.graphs import (
        adjacency_two_hop,
        as_structure,
        symmetric_adjacency,
    )
    from sparsediff.coloring.orders import vertex_order
    from sparsediff.coloring.star import star_coloring

    adj = symmetric_adjacency(as_structure(P))
    colors = star_coloring(adj, vertex_order(adjacency_two_hop(adj), order))
    assert brute_star_valid(P, colors) and brute_symmetric_recovery(P, colors)


@settings(max_examples=60, deadline=None)
@given(P=patterns)
def test_auto_never_worse_than_any_single_order(P):
    for kind in ("column", "row"):
        auto = color(P, kind=kind).n_colors
        for order in ("natural", "largest_first", "dsatur", "smallest_last"):
            assert auto <= color(P, kind=kind, order=order).n_colors


@settings(max_examples=60, deadline=None)
@given(P=square_patterns)
def test_star_auto_never_worse_than_natural(P):
    assert color(P, kind="star").n_colors <= color(P, kind="star", order="natural").n_colors


@pytest.mark.parametrize("name", ["bratu_7x6", "brusselator_6", "arrowhead", "banded_3"])
def test_auto_never_worse_than_natural_structured(name):
    P = STRUCTURED[name]
    for kind in KINDS:
        assert color(P, kind=kind).n_colors <= color(P, kind=kind, order="natural").n_colors


# --------------------------------------------------------------------------------------------
# Quality
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("w", [(0, 0), (1, 1), (2, 2), (3, 3), (5, 5), (1, 3), (4, 0), (0, 2)])
def test_banded_reaches_lower_bound(w):
    P = banded(40, *w)
    lb = lower_bound(P, "column")
    assert lb == w[0] + w[1] + 1
    for order in ("natural", "auto"):
        assert color(P, "column", order).n_colors == lb
        assert color(P, "row", order).n_colors == lower_bound(P, "row") == lb


def test_banded_star_is_valid_and_small():
    for w in (1, 2, 3):
        P = banded(40, w, w)
        c = color(P, kind="star")
        check_coloring(P, c)
        assert c.n_colors <= 2 * w + 1  # a distance-2 coloring of the band is one


def test_tridiagonal_three_colors():
    P = banded(1000, 1, 1)
    for kind in KINDS:
        assert color(P, kind=kind).n_colors == 3


@pytest.mark.parametrize("nx,ny", [(30, 30), (100, 100), (31, 17), (5, 5)])
def test_bratu_five_colors(nx, ny):
    P = bratu2d(nx, ny)
    assert check_coloring(P, Coloring(bratu_optimal_coloring(nx, ny), 5, "column")) is None
    for kind in ("column", "row"):
        c = color(P, kind=kind)
        assert c.n_colors == 5, c  # every anchor's greedy gets 7
    assert color(P, kind="column", order="natural").n_colors == 7


@pytest.mark.parametrize("nx", [30, 100])
def test_bratu_hessian_star_five_colors(nx):
    c = color(bratu2d(nx), kind="star")
    assert c.n_colors == 5
    check_coloring(bratu2d(nx), c)


@pytest.mark.parametrize("N", [7, 10, 25, 30, 32, 50])
def test_brusselator_at_most_ten(N):
    P = brusselator2d(N)
    assert lower_bound(P) == 6
    for kind in ("column", "row"):
        c = color(P, kind=kind)
        check_coloring(P, c)
        assert c.n_colors <= 10, c  # anchors: 12


def test_star_uses_fewer_colors_than_columns_on_arrowhead():
    P = STRUCTURED["arrowhead"]
    assert color(P, kind="column").n_colors == P.shape[0]
    c = color(P, kind="star")
    assert c.n_colors == 2 and c.method == "star"
    assert color(P, kind="star", order="largest_first").n_colors == 2


def test_star_keeps_distance2_alternative_when_smaller():
    # bratu with dsatur: the star kernel gets more than 5, distance-2 DSATUR gets 5
    P = bratu2d(30)
    c = color(P, kind="star", order="dsatur")
    assert c.n_colors == 5
    check_coloring(P, c)


@pytest.mark.slow
def test_bratu_million_auto_five():
    P = bratu2d(1000)
    c = color(P, kind="column")
    assert c.n_colors == 5
    check_coloring(P, c)
    assert color(P, kind="star").n_colors == 5


# --------------------------------------------------------------------------------------------
# Structure only, input types
# --------------------------------------------------------------------------------------------


def test_explicit_zeros_count_as_structure():
    P = bratu2d(6)
    Z = sp.csr_array((np.zeros(P.nnz), P.indices, P.indptr), shape=P.shape)
    assert Z.nnz == P.nnz
    for kind in KINDS:
        assert np.array_equal(color(Z, kind=kind).colors, color(P, kind=kind).colors)


def test_cancelling_values_do_not_change_result():
    P = bratu2d(6).astype(float)
    Q = P.copy()
    Q.data[::2] = 1.0
    Q.data[1::2] = -1.0  # sums of rows/products may cancel; structure is the same
    R = sp.coo_array(P)
    # duplicates that cancel: +1 and -1 at the same position stay one structural entry
    dup = sp.coo_array(
        (
            np.concatenate([R.data, -R.data]),
            (np.concatenate([R.row, R.row]), np.concatenate([R.col, R.col])),
        ),
        shape=R.shape,
    )
    for kind in KINDS:
        ref = color(P, kind=kind).colors
        assert np.array_equal(color(Q, kind=kind).colors, ref)
        assert np.array_equal(color(dup, kind=kind).colors, ref)


@pytest.mark.parametrize(
    "convert",
    [
        sp.csr_array,
        sp.csc_array,
        sp.coo_array,
        sp.lil_array,
        sp.dok_array,
        sp.csr_matrix,
        sp.csc_matrix,
        sp.coo_matrix,
        lambda A: sp.bsr_array(A, blocksize=(1, 1)),
        lambda A: A.toarray(),
        lambda A: A.toarray().astype(float),
        lambda A: A.toarray().astype(np.int8),
        lambda A: np.matrix(A.toarray()),
        lambda A: A.toarray().tolist(),
    ],
)
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_input_types_agree(convert):
    A = STRUCTURED["rect_wide_banded"]
    for kind in ("column", "row"):
        ref = color(A, kind=kind).colors
        assert np.array_equal(color(convert(A), kind=kind).colors, ref)
    B = STRUCTURED["bratu_7x6"]
    assert np.array_equal(color(convert(B), "star").colors, color(B, "star").colors)


def test_unsorted_and_duplicate_csr_indices():
    P = bratu2d(5)
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    perm = rng.permutation(P.nnz)
    dup = np.concatenate([perm, perm[:10]])
    U = sp.csr_array((np.ones(dup.size), (rows[dup], P.indices[dup])), shape=P.shape)
    # a CSR with unsorted indices and a duplicate, built from raw arrays
    indptr = P.indptr.copy()
    indices = P.indices.copy()
    for i in range(P.shape[0]):
        seg = indices[indptr[i] : indptr[i + 1]]
        indices[indptr[i] : indptr[i + 1]] = seg[::-1]
    weird = sp.csr_array((np.ones(P.nnz), indices, indptr), shape=P.shape)
    assert not weird.has_sorted_indices
    for kind in KINDS:
        ref = color(P, kind=kind).colors
        assert np.array_equal(color(U, kind=kind).colors, ref)
        assert np.array_equal(color(weird, kind=kind).colors, ref)
        assert np.array_equal(color(sp.csc_array(weird), kind=kind).colors, ref)


def test_dense_nan_is_structure():
    A = np.array([[np.nan, 0.0], [0.0, 1.0]])
    A[0, 1] = np.nan
    assert color(A).n_colors == 2


# --------------------------------------------------------------------------------------------
# Kinds, orders, shapes
# --------------------------------------------------------------------------------------------


def test_row_is_column_of_transpose():
    P = STRUCTURED["rect_tall_banded"]
    for order in ORDERS:
        r = color(P, kind="row", order=order)
        c = color(sp.csr_array(P.T), kind="column", order=order)
        assert r.kind == "row" and np.array_equal(r.colors, c.colors)
        assert r.colors.size == P.shape[0]


def test_star_uses_union_with_transpose():
    upper = sp.csr_array(sp.triu(bratu2d(6)))
    full = bratu2d(6)
    for order in ("natural", "auto", "smallest_last"):
        assert np.array_equal(color(upper, "star", order).colors, color(full, "star", order).colors)


def test_star_ignores_diagonal_for_conflicts():
    assert color(sp.eye(5), "star").n_colors == 1
    assert color(sp.csr_array((5, 5)), "star").n_colors == 1


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0), (4, 6), (6, 4), (1, 1), (1, 7), (7, 1)])
def test_empty_patterns(shape):
    P = sp.csr_array(shape, dtype=bool)
    for kind in ("column", "row"):
        size = shape[0] if kind == "row" else shape[1]
        for order in ALL_ORDERS:
            c = color(P, kind=kind, order=order)
            assert c.colors.shape == (size,)
            assert c.n_colors == (1 if size else 0)
            assert np.all(c.colors == 0)
    if shape[0] == shape[1]:
        assert color(P, "star").n_colors == (1 if shape[0] else 0)


def test_single_row_and_column():
    row = np.ones((1, 9), bool)
    assert color(row).n_colors == 9
    assert color(row, "row").n_colors == 1
    assert color(row.T).n_colors == 1
    assert color(row.T, "row").n_colors == 9


def test_order_tuple_and_permutation():
    P = bratu2d(12)
    c = color(P, order=("natural", "dsatur"))
    assert c.n_colors == 5 and c.order == "dsatur"
    perm = np.random.default_rng(1).permutation(P.shape[1])
    c = color(P, order=perm)
    assert c.order == "custom"
    check_coloring(P, c)
    assert color(P, "star", order=perm).order == "custom"
    from sparsediff.coloring.graphs import as_structure, bipartite
    from sparsediff.coloring.greedy import greedy_coloring

    assert np.array_equal(c.colors, greedy_coloring(bipartite(as_structure(P)), perm))


def test_random_order_is_seeded():
    P = bratu2d(15)
    a = color(P, order="random", seed=3)
    b = color(P, order="random", seed=3)
    assert np.array_equal(a.colors, b.colors) and a.order == "random"
    others = [color(P, order="random", seed=s).colors for s in range(4, 9)]
    assert any(not np.array_equal(a.colors, o) for o in others)


def test_auto_is_deterministic():
    P = brusselator2d(13)
    a, b = color(P), color(P)
    assert a == b and a.order == b.order and a.recolor_passes == b.recolor_passes


def test_auto_reports_what_produced_it():
    from sparsediff.coloring import select
    from sparsediff.coloring.graphs import as_structure, bipartite
    from sparsediff.coloring.greedy import dsatur, recolor_by_classes
    from sparsediff.coloring.improve import improve_colors

    P = brusselator2d(25)
    c = color(P)
    g = bipartite(as_structure(P))
    colors = color(P, order=c.order).colors
    if c.improved:
        assert c.recolor_passes == 0  # the passes run only when the phase removed nothing
        budget = select.AUTO_IMPROVE_SWEEPS * g.work()
        bound = lower_bound(P, "column")
        colors, removed, _ = improve_colors(
            g, colors, dsatur(g)[1], bound, budget, select.AUTO_IMPROVE_SEED
        )
        assert removed == c.improved
    for _ in range(c.recolor_passes):
        colors = recolor_by_classes(g, colors)
    assert np.array_equal(colors, c.colors)


def test_top_level_exports():
    assert sd.color is color and sd.Coloring is Coloring
    assert {"color", "Coloring"} <= set(sd.__all__)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_bad_inputs():
    P = bratu2d(4)
    with pytest.raises(ValueError, match="square"):
        color(np.ones((3, 4)), kind="star")
    with pytest.raises(ValueError, match="2-D"):
        color(np.ones(5))
    with pytest.raises(ValueError, match="2-D"):
        color(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="unknown coloring kind"):
        color(P, kind="diagonal")
    with pytest.raises(ValueError, match="unknown order"):
        color(P, order="fastest")
    with pytest.raises(ValueError, match="unknown order"):
        color(P, order=("natural", "fastest"))
    with pytest.raises(TypeError):
        color(P, order=3)
    with pytest.raises(TypeError):
        color("not a pattern")
    with pytest.raises(TypeError):
        color(None)
    with pytest.raises(TypeError):
        color(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="permutation"):
        color(P, order=np.arange(P.shape[1] - 1))
    with pytest.raises(ValueError, match="permutation"):
        color(P, order=np.zeros(P.shape[1], dtype=int))


# --------------------------------------------------------------------------------------------
# The Coloring result
# --------------------------------------------------------------------------------------------


def test_coloring_result():
    c = color(bratu2d(6))
    with pytest.raises(AttributeError):
        c.n_colors = 3
    with pytest.raises(ValueError):
        c.colors[0] = 9
    groups = c.groups()
    assert len(groups) == c.n_colors
    assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(c.n_vertices))
    for k, g in enumerate(groups):
        assert np.all(c.colors[g] == k) and np.all(np.diff(g) > 0)
    ptr, _ = c.groups_csr()
    assert ptr[-1] == c.n_vertices and np.array_equal(np.diff(ptr), np.bincount(c.colors))
    assert "n_colors=5" in repr(c) and "column" in repr(c)
    assert Coloring(np.array([0, 1, 0]), 2, "row") == Coloring([0, 1, 0], 2, "row")
    assert hash(Coloring(np.array([0, 1, 0]), 2, "row")) == hash(Coloring([0, 1, 0], 2, "row"))
    assert Coloring([0, 1], 2, "row") != Coloring([0, 1], 2, "column")
    assert Coloring([0, 1], 2, "column").order == "given"
    assert Coloring(np.zeros(0, dtype=int), 0, "star").groups() == []
    with pytest.raises(ValueError, match="n_colors"):
        Coloring(np.array([0, 2]), 2, "column")
    with pytest.raises(ValueError, match="kind"):
        Coloring(np.array([0, 1]), 2, "diagonal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonnegative"):
        Coloring(np.array([-1, 0]), 1, "column")


def test_lower_bounds():
    P = banded(10, 1, 2, m=7)
    assert lower_bound(P, "column") == 4
    assert lower_bound(P, "row") == int(np.diff(sp.csc_array(P).indptr).max())
    assert lower_bound(banded(6, 1, 1), "star") == 3  # a path on 6 vertices
    star_graph = np.eye(5, dtype=bool)
    star_graph[0, :] = True
    assert lower_bound(star_graph, "star") == 2
    assert color(star_graph, "star").n_colors == 2
    assert lower_bound(np.eye(4), "star") == 1
    assert lower_bound(np.zeros((0, 0)), "star") == 0
    assert lower_bound(np.zeros((3, 4)), "column") == 1  # one color for the empty columns
    assert lower_bound(np.zeros((3, 0)), "column") == 0
    with pytest.raises(ValueError, match="square"):
        lower_bound(np.ones((2, 3)), "star")
    with pytest.raises(ValueError, match="unknown coloring kind"):
        lower_bound(P, "diagonal")
