"""``mode="auto"`` measures what a VJP costs when the choice is close; printed bounds hold."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff.plans.measure import ProductCost, measure_reverse_cost
from tests import users_graphs as ug

# the module (``sparsediff.plans.jacobian`` the attribute is the function of that name);
# ``dense=False`` below: these small graphs stay sparse whatever ``pytensor.config.mode`` is
jac_module = importlib.import_module("sparsediff.plans.jacobian")


def _inject(monkeypatch, ratio: float | None, reason: str | None = None) -> list:
    calls = []

    def fake(expression, wrt, use_op_pushforward="auto", budget_s=0.0):
        calls.append(expression)
        if ratio is None:
            return ProductCost(reason=reason)
        return ProductCost(jvp_s=1e-3, vjp_s=ratio * 1e-3, samples=3)

    monkeypatch.setattr(jac_module, "measure_reverse_cost", fake)
    return calls


def test_close_cge_choice_follows_the_measured_vjp_cost(monkeypatch):
    # cge(4): forward 9 colors, bicoloring 5 JVPs + 2 VJPs: 5 + 2r < 9 iff r < 2, a ratio the
    # 0.6–2.1 spread can put either side, so auto measures
    F, x = ug.cge(4)
    calls = _inject(monkeypatch, 2.9)
    plan = sd.jacobian_plan(F, x, dense=False)
    assert len(calls) == 1
    assert (plan.n_colors_forward, plan.n_products_bidirectional) == (9, 7)
    assert plan.mode == "forward" and plan.reverse_cost == pytest.approx(2.9)
    assert "VJP measured at 2.9 JVPs" in repr(plan), plan
    _inject(monkeypatch, 1.1)
    plan = sd.jacobian_plan(F, x, dense=False)
    assert plan.mode == "bidirectional" and "VJP measured at 1.1 JVPs" in repr(plan)


def test_explicit_reverse_cost_is_deterministic_and_never_measures(monkeypatch):
    F, x = ug.cge(4)
    calls = _inject(monkeypatch, 100.0)
    assert sd.jacobian_plan(F, x, reverse_cost=2.9, dense=False).mode == "forward"
    plan = sd.jacobian_plan(F, x, reverse_cost=1.7, dense=False)
    assert plan.mode == "bidirectional" and plan.measured is None
    assert "measured" not in repr(plan)
    assert calls == []


def test_clearly_separated_choice_is_not_measured(monkeypatch):
    F, x = ug.cge(16)  # forward 33 colors against 5 JVPs + 2 VJPs: bidirectional for any r ≤ 2.1
    calls = _inject(monkeypatch, 100.0)
    plan = sd.jacobian_plan(F, x, dense=False)
    assert plan.mode == "bidirectional" and calls == [] and plan.measured is None
    assert plan.reverse_cost == jac_module.REVERSE_COST


def test_failed_measurement_keeps_the_default_and_says_why(monkeypatch):
    F, x = ug.cge(4)
    _inject(monkeypatch, None, reason="ValueError: no static shape")
    plan = sd.jacobian_plan(F, x, dense=False)
    assert plan.mode == "bidirectional"  # 5 + 2·1.7 < 9
    assert "VJP cost not measured (ValueError: no static shape)" in repr(plan)


def test_real_measurement_is_recorded_and_positive():
    F, x = ug.cge(4)
    plan = sd.jacobian_plan(F, x, dense=False)
    m = plan.measured
    assert m is not None and m.reason is None, m
    assert m.jvp_s > 0 and m.vjp_s > 0 and m.ratio > 0 and m.samples >= 3
    assert plan.reverse_cost == pytest.approx(m.ratio)
    assert plan.mode in ("forward", "bidirectional")
    assert re.search(r"VJP measured at [0-9.e+-]+ JVPs", repr(plan)), plan
    assert plan.timings["measure"] > 0


def test_measurement_of_a_graph_it_cannot_run_gives_a_reason():
    x = pt.vector("x", shape=(4,))
    p = pt.vector("p")  # no static shape: no value can be made up for it
    cost = measure_reverse_cost((x * p).sum()[None] + x, [x])
    assert cost.ratio is None and "static shape" in cost.reason


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "fast", True])
def test_bad_reverse_cost(bad):
    F, x = ug.cge(2)
    with pytest.raises(ValueError, match="reverse_cost"):
        sd.jacobian_plan(F, x, reverse_cost=bad)


# --------------------------------------------------------------------------------------------
# Printed lower bounds hold for the coloring kind used
# --------------------------------------------------------------------------------------------


def _arrowhead(n):
    P = sp.lil_array((n, n), dtype=bool)
    P.setdiag(True)
    P[0, :] = True
    P[:, 0] = True
    return sp.csr_array(P)


def _banded(n, w):
    return sp.csr_array(sp.diags([np.ones(n - abs(k)) for k in range(-w, w + 1)], range(-w, w + 1)))


def _grid(N):
    T = sp.diags([np.ones(N - 1), np.ones(N), np.ones(N - 1)], [-1, 0, 1])
    return sp.csr_array(sp.kronsum(T, T) != 0)


def _random_symmetric(n, seed=0):
    A = sp.random_array((n, n), density=0.05, rng=np.random.default_rng(seed)) != 0
    return sp.csr_array(A + A.T + sp.eye_array(n, dtype=bool))


PATTERNS = {
    "arrowhead": lambda: _arrowhead(60),
    "banded": lambda: _banded(50, 3),
    "grid": lambda: _grid(7),
    "random": lambda: _random_symmetric(40),
}


def _printed_bound(plan) -> int | None:
    found = re.search(r"lower bound (\d+)", repr(plan))
    return None if found is None else int(found.group(1))


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_printed_bounds_hold_for_every_kind(name):
    P = PATTERNS[name]()
    n = P.shape[0]
    x = pt.vector("x", shape=(n,))
    plans = [
        sd.jacobian_plan(pt.sin(x), x, mode=mode, sparsity=P, dense=False)
        for mode in ("forward", "reverse", "bidirectional")
    ]
    plans += [
        sd.hessian_plan((x**4).sum(), x, sparsity=P, kind=kind, dense=False)
        for kind in ("star", "acyclic")
    ]
    for plan in plans:
        bound = plan.lower_bound
        assert bound is None or bound <= plan.n_colors, plan
        printed = _printed_bound(plan)
        assert printed is None or printed <= plan.n_colors, plan
        assert printed == bound or printed is None, plan


def test_arrowhead_hessian_prints_no_row_count_bound():
    P = _arrowhead(402)
    x = pt.vector("x", shape=(402,))
    plan = sd.hessian_plan((x**4).sum(), x, sparsity=P, kind="star")
    assert plan.n_colors < 10 and _printed_bound(plan) <= plan.n_colors, plan
    assert "402)" not in repr(plan)
    acyclic = sd.hessian_plan((x**4).sum(), x, sparsity=P, kind="acyclic")
    assert acyclic.lower_bound is None and "lower bound" not in repr(acyclic)


def test_bicoloring_dominated_by_a_direction_is_not_measured(monkeypatch):
    # the driven cavity's star bicoloring is 19 VJPs and no JVP, against 13 colors either way:
    # it costs at least reverse mode's 13 VJPs at any ratio, so nothing can make it win
    from sparsediff.problems import from_size

    p = from_size("cavity2d", 400)
    calls = _inject(monkeypatch, 0.1)
    plan = sd.jacobian_plan(p.expression, p.x, dense=False)
    assert calls == [] and plan.measured is None
    assert plan.mode == "forward" and plan.n_colors == plan.n_colors_reverse
    assert plan.n_products_bidirectional >= plan.n_colors_reverse


def test_dominated_is_at_every_ratio():
    bi = type("Bi", (), {"n_column_colors": 0, "n_row_colors": 19})()
    assert jac_module._dominated(bi, 13, 13)
    assert not jac_module._dominated(bi, 13, 20)
    bi.n_column_colors, bi.n_row_colors = 5, 2
    assert not jac_module._dominated(bi, 9, 9) and jac_module._dominated(bi, 5, None)


def test_symmetric_pattern_reuses_the_column_coloring_for_rows(monkeypatch):
    # the driven cavity's pattern is structurally symmetric: the row coloring is the column
    # coloring (same structure, same order), not computed a second time
    from sparsediff.coloring import color
    from sparsediff.problems import from_size

    p = from_size("cavity2d", 400)
    kinds = []
    real = jac_module.color

    def counting(pattern, kind="column", order="auto"):
        kinds.append(kind)
        return real(pattern, kind=kind, order=order)

    monkeypatch.setattr(jac_module, "color", counting)
    plan = sd.jacobian_plan(p.expression, p.x, dense=False)
    assert "row" not in kinds and "column" in kinds
    want = color(plan.pattern, kind="row")
    assert plan.n_colors_reverse == want.n_colors


def test_structural_symmetry():
    a = sp.csr_array(np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool))
    assert jac_module._structurally_symmetric(a)
    b = sp.csr_array(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=bool))  # same lengths
    assert not jac_module._structurally_symmetric(b)
    c = sp.csr_array(np.array([[1, 1, 1], [0, 1, 0], [0, 0, 1]], dtype=bool))
    assert not jac_module._structurally_symmetric(c)


def test_reused_row_coloring_is_the_row_coloring():
    from sparsediff.coloring import color
    from sparsediff.problems import from_size

    p = from_size("cavity2d", 900)
    P = sd.jacobian_sparsity(p.expression, p.x)
    for order in ("auto", "natural", "dsatur"):
        reused = jac_module._row_coloring(P, color(P, kind="column", order=order), order)
        fresh = color(P, kind="row", order=order)
        assert reused.kind == "row" and reused.order == fresh.order
        assert np.array_equal(reused.colors, fresh.colors)
