"""Vertex orders: permutations with the defining property of each order (brute force)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff.coloring.graphs import (
    adjacency_two_hop,
    as_structure,
    bipartite,
    symmetric_adjacency,
)
from sparsediff.coloring.greedy import dsatur, greedy_coloring, recolor_by_classes
from sparsediff.coloring.orders import ORDERS, degrees, vertex_order

patterns = hnp.arrays(
    np.bool_, st.tuples(st.integers(0, 12), st.integers(0, 12)), elements=st.booleans()
)


def conflict_matrix(P: np.ndarray) -> np.ndarray:
    """Column intersection graph, dense: columns adjacent iff they share a row."""
    A = P.astype(int)
    G = (A.T @ A) > 0
    np.fill_diagonal(G, False)
    return G


@settings(max_examples=80, deadline=None)
@given(P=patterns, seed=st.integers(0, 5))
def test_orders_are_permutations_and_degrees_match(P, seed):
    g = bipartite(as_structure(P))
    G = conflict_matrix(P)
    assert np.array_equal(degrees(g), G.sum(axis=1))
    for name in ORDERS:
        order = vertex_order(g, name, seed)
        assert order.dtype == np.int64
        assert np.array_equal(np.sort(order), np.arange(P.shape[1]))


@settings(max_examples=80, deadline=None)
@given(P=patterns)
def test_dynamic_order_properties(P):
    g = bipartite(as_structure(P))
    G = conflict_matrix(P)
    n = G.shape[0]
    deg = G.sum(axis=1)

    lf = vertex_order(g, "largest_first")
    assert np.all(np.diff(deg[lf]) <= 0)

    sl = vertex_order(g, "smallest_last")
    for k in range(n):  # order[k] has the smallest degree in the graph on order[:k+1]
        sub = sl[: k + 1]
        d = G[np.ix_(sub, sub)].sum(axis=1)
        assert d[-1] == d.min()

    dlf = vertex_order(g, "dynamic_largest_first")
    for k in range(n):  # order[k] has the largest degree in the graph on order[k:]
        sub = dlf[k:]
        d = G[np.ix_(sub, sub)].sum(axis=1)
        assert d[0] == d.max()

    inc = vertex_order(g, "incidence_degree")
    for k in range(n):  # order[k] has the most neighbours among order[:k]
        done, rest = inc[:k], inc[k:]
        d = G[np.ix_(rest, done)].sum(axis=1)
        assert d[0] == d.max()


@settings(max_examples=80, deadline=None)
@given(P=patterns)
def test_dsatur_picks_a_most_saturated_vertex(P):
    g = bipartite(as_structure(P))
    G = conflict_matrix(P)
    colors, order = dsatur(g)
    assert np.array_equal(colors, greedy_coloring(g, order))  # first fit along its order
    for k in range(len(order)):
        done = order[:k]
        sat = [len(set(colors[done[G[v, done]]])) for v in order[k:]]
        assert sat[0] == max(sat)


@settings(max_examples=60, deadline=None)
@given(P=patterns)
def test_recoloring_never_adds_colors(P):
    g = bipartite(as_structure(P))
    colors = greedy_coloring(g, vertex_order(g, "random", 1))
    for _ in range(3):
        new = recolor_by_classes(g, colors)
        if colors.size:
            assert new.max() <= colors.max()
        colors = new


@pytest.mark.parametrize("name", ORDERS)
def test_adjacency_orders_are_permutations(name):
    rng = np.random.default_rng(0)
    A = rng.random((30, 30)) < 0.1
    adj = symmetric_adjacency(as_structure(A))
    order = vertex_order(adjacency_two_hop(adj), name, 0)
    assert np.array_equal(np.sort(order), np.arange(30))


def test_unknown_order():
    g = bipartite(as_structure(np.eye(3)))
    with pytest.raises(ValueError, match="unknown order"):
        vertex_order(g, "alphabetical")


def test_dsatur_beyond_the_bitmask(monkeypatch):
    """Colors past the per-vertex bitmask fall back to scanning: same coloring either way."""
    import sparsediff.coloring.greedy as greedy

    rng = np.random.default_rng(2)
    P = rng.random((60, 200)) < 0.3
    g = bipartite(as_structure(P))
    wide = dsatur(g)
    assert wide[0].max() + 1 > 64
    monkeypatch.setattr(greedy, "DSATUR_MAX_WORDS", 1)
    narrow = dsatur(g)
    assert np.array_equal(wide[0], narrow[0]) and np.array_equal(wide[1], narrow[1])
