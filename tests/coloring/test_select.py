"""The coloring policy's one best-over-orders loop (#12)."""

from __future__ import annotations

from sparsediff.coloring.select import best_over_orders


def _recorded(costs: dict):
    """``(run, seen)``: ``run(name)`` returns ``costs[name]`` and appends the name to ``seen``."""
    seen = []

    def run(name):
        seen.append(name)
        return costs[name]

    return run, seen


def test_keeps_the_cheapest_and_the_first_on_ties():
    costs = {"a": 5, "b": 3, "c": 3, "d": 4}
    run, seen = _recorded(costs)
    assert best_over_orders(list(costs), run, lambda c: c, stop=0) == (3, "b")
    assert seen == ["a", "b", "c", "d"]


def test_stops_at_the_bound():
    run, seen = _recorded({"a": 5, "b": 2, "c": 1})
    assert best_over_orders(["a", "b", "c"], run, lambda c: c, stop=2) == (2, "b")
    assert seen == ["a", "b"]


def test_orders_proven_above_the_stop_run_last_and_only_when_needed():
    costs = {"a": 5, "b": 3, "c": 2, "d": 4}
    run, seen = _recorded(costs)
    # "a" and "b" are proven above the stop: "c" reaches it and they never run
    assert best_over_orders(list(costs), run, lambda c: c, 2, lambda o: o in "ab") == (2, "c")
    assert seen == ["c"]
    # nothing reaches the stop: the deferred orders run too, and ties keep the given order
    seen.clear()
    costs.update(c=3)
    assert best_over_orders(list(costs), run, lambda c: c, 1, lambda o: o in "ab") == (3, "b")
    assert seen == ["c", "d", "a", "b"]


def test_a_greedy_prefix_above_the_bound_proves_the_whole_sweep_above_it():
    """Greedy is online: the prefix's colors are the sweep's, so the test is never wrong."""
    import numpy as np

    from sparsediff import problems
    from sparsediff.coloring.graphs import as_structure, bipartite
    from sparsediff.coloring.greedy import greedy_coloring
    from sparsediff.coloring.select import PREFIX_VERTICES, _prefix_exceeds

    g = bipartite(as_structure(problems.bratu2d(400).pattern()))  # 1.6·10⁵ > 32 · 4096
    order = np.arange(g.n, dtype=np.int64)
    full = int(greedy_coloring(g, order).max()) + 1
    assert full == 7
    assert _prefix_exceeds(g, order, 5) and _prefix_exceeds(g, order, 6)
    assert not _prefix_exceeds(g, order, 7)  # never claims more than the sweep needs
    small = bipartite(as_structure(problems.bratu2d(20).pattern()))
    assert small.n < PREFIX_VERTICES
    assert not _prefix_exceeds(small, np.arange(small.n, dtype=np.int64), 1)  # runs in full


def test_auto_skips_the_sweeps_a_prefix_rules_out_with_the_same_result(monkeypatch):
    """2-D Bratu at n = 1.6·10⁵: natural and largest-first order are ruled out by their prefix,
    DSATUR reaches the bound 5; the result is the one running every order gives."""
    from sparsediff import problems
    from sparsediff.coloring import color, select

    P = problems.bratu2d(400).pattern()
    full_sweeps = []
    real = select.greedy_coloring

    def counting(g, order):
        if order.size == g.n:
            full_sweeps.append(order.size)
        return real(g, order)

    monkeypatch.setattr(select, "greedy_coloring", counting)
    c = color(P, "column")
    assert (c.n_colors, c.order) == (5, "dsatur") and full_sweeps == []
    monkeypatch.setattr(select, "PREFIX_VERTICES", 10**9)  # no prefix: every order runs
    plain = color(P, "column")
    assert len(full_sweeps) == 2 and (plain.colors == c.colors).all()
