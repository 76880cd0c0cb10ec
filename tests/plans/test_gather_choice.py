"""The decompression gather: lifted through the arithmetic, or plain where that moves less data."""

from __future__ import annotations

import importlib

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import jacobian

import sparsediff as sd
from sparsediff import problems
from sparsediff.compression.folding import graph_cost, graph_traffic

jacobian_plans = importlib.import_module("sparsediff.plans.jacobian")  # the module, not sd.jacobian


def _compiled_ops(problem) -> list[str]:
    f = pytensor.function([problem.x], sd.jacobian(problem.expression, problem.x), mode="CVM")
    return [type(node.op).__name__ for node in f.maker.fgraph.toposort()]


def test_graph_traffic_counts_reads_and_writes():
    x = pt.vector("x", shape=(10,))
    c = pt.constant(np.arange(10.0))
    assert graph_traffic([x * c]) == 30  # two operands read, one result written
    assert graph_cost([x * c]) == 10
    assert graph_traffic([(x * c)[2:5]]) == 30  # a slice is a view
    assert graph_traffic([x[pt.constant(np.array([1, 3]))]]) == 10 + 2 + 2


def test_driven_cavity_takes_the_slot_layout():
    """Every entry but the center varies, in pieces that overlap: lifting would split and join
    them; the slot layout writes the nonzeros in one pass from the four convective operands
    (``AffineRows``: no join, no matrix product, no scatter). At 20×20 most rows touch a wall,
    the slot layout does not apply and the lift stays."""
    names = _compiled_ops(problems.cavity2d(40))
    assert names.count("AffineRows") == 1
    assert not {"Join", "Dot22", "AdvancedIncSubtensor1"} & set(names)
    small = _compiled_ops(problems.cavity2d(20))
    assert "Join" in small


@pytest.mark.parametrize("problem", [problems.bratu2d(20), problems.fd1d(50)], ids=str)
def test_stencils_with_constant_entries_keep_the_lift(problem):
    names = _compiled_ops(problem)
    assert names.count("AdvancedIncSubtensor1") == 1 and "AdvancedSubtensor1" not in names


def test_margin_zero_always_lifts_and_both_agree(monkeypatch):
    problem = problems.cavity2d(20)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, problem.n)
    dense = pytensor.function(
        [problem.x], jacobian(problem.expression, problem.x, vectorize=True), mode="FAST_COMPILE"
    )(x)
    plain = sd.jacobian(problem.expression, problem.x)
    monkeypatch.setattr(jacobian_plans, "PLAIN_GATHER_MARGIN", 0.0)
    lifted = sd.jacobian(problem.expression, problem.x)
    f = pytensor.function([problem.x], [plain, lifted], mode="CVM")
    names = [type(node.op).__name__ for node in f.maker.fgraph.toposort()]
    assert "AdvancedIncSubtensor1" in names  # the lifted one scatters its pieces
    for J in f(x):
        np.testing.assert_allclose(J.toarray(), dense, rtol=1e-11, atol=1e-11)


def test_dsge_model_keeps_the_lift_although_plain_moves_less():
    """The NK model's plain gather moves less data by the traffic count but is slower per call
    and slower to compile: without a slot layout the lifted gather stays (one final scatter,
    no gather of a compressed matrix)."""
    from tests.users_graphs import nk_perfect_foresight

    F, x = nk_perfect_foresight(4)
    f = pytensor.function([x], sd.jacobian(F, x), mode="CVM")
    names = [type(node.op).__name__ for node in f.maker.fgraph.toposort()]
    assert "AdvancedSubtensor1" not in names
    assert names.count("AdvancedIncSubtensor1") == 1


def _gather_spy(monkeypatch):
    """Records ``(number of positions, lift)`` of every gather the plans build."""
    calls = []
    gather = jacobian_plans.decompression.gather

    def spy(source, positions, lift=True):
        calls.append((np.asarray(positions).size, lift))
        return gather(source, positions, lift=lift)

    monkeypatch.setattr(jacobian_plans.decompression, "gather", spy)
    return calls


def test_estimated_lift_traffic_rules_out_the_cavitys_lift_without_building_it(monkeypatch):
    """With the estimate on (as above 2¹⁵ nonzeros), the cavity takes the same slot layout
    and the lift is only built for the two samples, never for all the nonzeros."""
    problem = problems.cavity2d(40)
    expected = _compiled_ops(problem)
    monkeypatch.setattr(jacobian_plans, "LIFT_ESTIMATE_MIN_NNZ", 0)
    monkeypatch.setattr(jacobian_plans, "LIFT_SAMPLE", 512)
    calls = _gather_spy(monkeypatch)
    J = sd.jacobian(problem.expression, problem.x)
    nnz = problem.pattern().nnz
    assert sorted(size for size, lift in calls if lift) == [512, 1024]
    assert (nnz, False) in calls
    f = pytensor.function([problem.x], J, mode="CVM")
    assert [type(node.op).__name__ for node in f.maker.fgraph.toposort()] == expected
    x = np.random.default_rng(1).uniform(-0.5, 0.5, problem.n)
    np.testing.assert_allclose(
        f(x).toarray(), problem.jacobian(x).toarray(), rtol=1e-11, atol=1e-11
    )


@pytest.mark.parametrize("problem", [problems.bratu2d(20), problems.fd1d(50)], ids=str)
def test_estimated_lift_traffic_keeps_the_stencils_lift(monkeypatch, problem):
    expected = _compiled_ops(problem)
    monkeypatch.setattr(jacobian_plans, "LIFT_ESTIMATE_MIN_NNZ", 0)
    monkeypatch.setattr(jacobian_plans, "LIFT_SAMPLE", 64)
    calls = _gather_spy(monkeypatch)
    assert _compiled_ops(problem) == expected
    assert any(lift and size > 128 for size, lift in calls)  # the lift built in full


@pytest.mark.parametrize(
    "problem",
    [problems.cavity2d(60), problems.bratu2d(100), problems.fd1d(40000)],
    ids=lambda p: p.name,
)
def test_lifted_traffic_estimate_is_close(problem):
    """The samples lose the full lift's contiguous slices: mostly a small overestimate, within
    the tolerance of the choice."""
    plan = sd.jacobian_plan(problem.expression, problem.x)
    (source,) = plan.compressed()
    (positions,) = plan.positions
    exact = graph_traffic([jacobian_plans.decompression.gather(source, positions, lift=True)])
    estimate = jacobian_plans._lifted_traffic_estimate(source, positions)
    assert 0.9 * exact <= estimate <= jacobian_plans.LIFT_ESTIMATE_TOLERANCE * exact
