"""The improvement phase (greedy with tabu repair at a fixed number of colors): valid, never
worse, deterministic, and reaching the optimum the greedy orders miss."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff.coloring import check_coloring, color, is_valid_coloring, lower_bound, select
from sparsediff.coloring.graphs import as_structure, bipartite
from sparsediff.coloring.greedy import dsatur, greedy_coloring
from sparsediff.coloring.improve import distance2_adjacency, fixed_k_repair, improve_colors
from tests.coloring.patterns import (
    bratu2d,
    brusselator2d,
    cavity2d,
    cavity_optimal_coloring,
    structured,
)

STRUCTURED = structured()

patterns = hnp.arrays(
    np.bool_, st.tuples(st.integers(0, 16), st.integers(0, 16)), elements=st.booleans()
)


def _improve(P, budget_sweeps: float = 50, seed: int = 0):
    g = bipartite(as_structure(P))
    colors, order = dsatur(g)
    bound = lower_bound(P, "column")
    new, removed, spent = improve_colors(
        g, colors, order, bound, int(budget_sweeps * g.work()), seed
    )
    return g, colors, new, removed, spent, bound


def _check(P, before, after, removed, bound):
    check_coloring(P, after, kind="column")
    k_before = int(before.max()) + 1 if before.size else 0
    k_after = int(after.max()) + 1 if after.size else 0
    assert k_after <= k_before and k_before - k_after == removed
    assert k_after >= min(bound, k_before)
    if after.size:  # every color in 0 … k-1 is used
        assert np.unique(after).size == k_after


@pytest.mark.parametrize("name", sorted(STRUCTURED))
def test_valid_and_never_worse_on_structured_patterns(name):
    P = STRUCTURED[name]
    _, before, after, removed, _, bound = _improve(P)
    _check(P, before, after, removed, bound)


@settings(max_examples=60, deadline=None)
@given(P=patterns, seed=st.integers(0, 3))
def test_valid_and_never_worse_on_random_patterns(P, seed):
    _, before, after, removed, _, bound = _improve(P, seed=seed)
    _check(P, before, after, removed, bound)


@settings(max_examples=40, deadline=None)
@given(P=patterns, k=st.integers(1, 8), budget=st.integers(0, 5000))
def test_fixed_k_repair_is_valid_or_none(P, k, budget):
    g = bipartite(as_structure(P))
    adjacency = distance2_adjacency(g)
    order = dsatur(g)[1]
    colors, _ = fixed_k_repair(adjacency, order, k, budget)
    if colors is not None:
        assert colors.size == 0 or colors.max() < k
        check_coloring(P, colors, kind="column")
    if P.shape[1] and k < lower_bound(P, "column"):
        assert colors is None  # a row with more than k nonzeros needs more than k colors


def test_distance2_adjacency_is_the_conflict_graph():
    P = brusselator2d(5)
    g = bipartite(as_structure(P))
    ptr, idx = distance2_adjacency(g)
    A = P.toarray().astype(int)
    G = (A.T @ A) > 0
    np.fill_diagonal(G, False)
    for v in range(g.n):
        assert sorted(idx[ptr[v] : ptr[v + 1]]) == list(np.flatnonzero(G[v]))


def test_the_budget_bounds_the_work():
    P = brusselator2d(12)
    g = bipartite(as_structure(P))
    adjacency = distance2_adjacency(g)
    _, work = fixed_k_repair(adjacency, dsatur(g)[1], 5, 1000)  # 5 < the bound 6: fails
    # a vertex added or a move made past the budget costs at most one row of work
    assert work <= 1000 + 2 * int(np.diff(adjacency[0]).max()) * 6
    g_colors = dsatur(g)[0]
    same, removed, spent = improve_colors(g, g_colors, dsatur(g)[1], 6, 0)
    assert removed == 0 and spent == 0 and same is g_colors


def test_thirteen_point_stencil_reaches_the_optimum():
    P = cavity2d(30)
    check_coloring(P, cavity_optimal_coloring(30, 30), kind="column")
    greedy = min(color(P, order=o).n_colors for o in ("natural", "dsatur", "smallest_last"))
    assert greedy > 13
    c = color(P)
    assert c.n_colors == 13 == lower_bound(P, "column") and c.improved > 0
    assert is_valid_coloring(P, c)
    assert color(P, kind="row").n_colors == 13


def test_brusselator_gets_fewer_colors_than_greedy():
    P = brusselator2d(13)
    greedy = color(P, order="dsatur").n_colors
    c = color(P)
    assert c.n_colors < greedy and c.improved > 0 and is_valid_coloring(P, c)
    assert c.n_colors <= 8


def test_auto_with_a_small_budget_is_deterministic(monkeypatch):
    monkeypatch.setattr(select, "AUTO_IMPROVE_SWEEPS", 2)
    P, Q = brusselator2d(11), cavity2d(16, 12)
    a = color(P)
    b = color(Q)
    a2, b2 = color(P), color(Q)
    c = color(bratu2d(9))  # in between: another pattern
    assert color(P) == a == a2 and color(Q) == b == b2 and color(bratu2d(9)) == c
    assert a.improved == a2.improved and b.improved == b2.improved


def test_never_worse_than_without_the_phase(monkeypatch):
    cases = [brusselator2d(9), cavity2d(12, 10), bratu2d(8), *STRUCTURED.values()]
    full = [color(P) for P in cases]
    monkeypatch.setattr(select, "AUTO_IMPROVE_SWEEPS", 0)
    without = [color(P) for P in cases]
    for P, a, b in zip(cases, full, without, strict=True):
        assert a.n_colors <= b.n_colors
        assert a.n_colors <= color(P, order="natural").n_colors
        assert a.improved == 0 or a.recolor_passes == 0


def test_star_coloring_uses_the_phase_through_distance2():
    P = cavity2d(20)
    c = color(P, kind="star")
    assert c.n_colors <= 13 and is_valid_coloring(P, c)


def test_first_fit_along_the_order_when_k_is_loose():
    """With colors to spare no repair is needed: the coloring is first-fit greedy."""
    P = bratu2d(10)
    g = bipartite(as_structure(P))
    order = dsatur(g)[1]
    colors, _ = fixed_k_repair(distance2_adjacency(g), order, 12, 10**6)
    assert np.array_equal(colors, greedy_coloring(g, order))
