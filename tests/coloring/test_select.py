"""The coloring policy's one best-over-orders loop (#12)."""

from __future__ import annotations

from sparsediff.coloring.select import best_over_orders


def test_keeps_the_cheapest_and_the_first_on_ties():
    costs = {"a": 5, "b": 3, "c": 3, "d": 4}
    seen = []

    def run(name):
        seen.append(name)
        return costs[name]

    assert best_over_orders(list(costs), run, lambda c: c, stop=0) == (3, "b")
    assert seen == ["a", "b", "c", "d"]


def test_stops_at_the_bound():
    seen = []

    def run(name):
        seen.append(name)
        return {"a": 5, "b": 2, "c": 1}[name]

    assert best_over_orders(["a", "b", "c"], run, lambda c: c, stop=2) == (2, "b")
    assert seen == ["a", "b"]
