"""First-call latency (issue #16): the sparse Jacobian of a many-equation DSGE model stays a
small graph, with narrow kernels in Numba mode, and matches dense ``pytensor.gradient.jacobian``."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytensor
import pytest
from pytensor.gradient import jacobian as dense_jacobian

import sparsediff as sd
from benchmarks import bench_latency
from sparsediff.backends.numba_fusion import MAX_OPERANDS
from tests.users_graphs import NK_VARIABLES, nk_perfect_foresight, nk_point


@pytest.fixture(scope="module")
def nk_dense():
    """T = 2 (n = 46): the model, a point and its dense Jacobian (``pt.jacobian``,
    FAST_COMPILE: compiling the dense graph in C or Numba takes minutes)."""
    F, x = nk_perfect_foresight(2)
    xv = nk_point(x)
    D = pytensor.function([x], dense_jacobian(F, x, vectorize=True), mode="FAST_COMPILE")(xv)
    assert np.isfinite(D).all() and np.abs(D).sum() > 0
    return F, x, xv, D


def _check_values(nk_dense, mode: str) -> None:
    F, x, xv, D = nk_dense
    J = pytensor.function([x], sd.jacobian(F, x), mode=mode)(xv).toarray()
    np.testing.assert_allclose(J, D, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "CVM"])
def test_nk_model_matches_dense(nk_dense, mode):
    _check_values(nk_dense, mode)


def _numba_graph(T: int):
    """The compiled Numba graph (compiling does not JIT: that happens on the first call)."""
    F, x = nk_perfect_foresight(T)
    plan = sd.jacobian_plan(F, x)
    fn = pytensor.function([x], plan.build(), mode="NUMBA")
    return plan, fn.maker.fgraph.toposort()


def test_nk_compiled_graph_is_small_and_its_kernels_narrow():
    """The blow-up of issue #16: one fused kernel of 84 operands (176 without the lifted
    gather) took Numba a minute to JIT. Kernels stay narrow, the graph does not grow with T
    (one batched product over the colors, no per-color or per-period copies)."""
    _, small = _numba_graph(3)
    big_plan, big = _numba_graph(6)
    assert len(NK_VARIABLES) == 23 and big_plan.n_colors >= 7
    ops = Counter(type(n.op).__name__ for n in big)
    assert not {"Scan", "Blockwise", "OpFromGraph"} & set(ops), ops
    kernels = [n for n in big if type(n.op).__name__ == "Elemwise"]
    assert max(len(n.inputs) + len(n.outputs) for n in kernels) <= MAX_OPERANDS
    assert len(big) <= 420, ops
    assert len(big) <= 1.1 * len(small)


def test_nk_decompression_adds_no_scatters_and_narrow_joins():
    """Issue #16, the lifted gather: overlapping varying pieces are refined into atoms, so the
    graph has one final scatter into the constants, no ``set_subtensor``-into-``Alloc`` per
    partially constant operand and no gathers (before: 51 scatters, 30 Allocs, 43 gathers,
    35 distinct kernels); the pieces are joined by two-input ``Join``s (Numba compiles a Join
    per number of inputs, and one of 90 inputs made the whole-graph function slow to JIT)."""
    _, nodes = _numba_graph(6)
    ops = Counter(type(n.op).__name__ for n in nodes)
    assert ops["AdvancedIncSubtensor1"] <= 1 and ops["Alloc"] == 0, ops
    assert ops["AdvancedSubtensor1"] <= 2, ops
    assert ops["Elemwise"] <= 40, ops
    assert len(nodes) <= 270, ops
    joins = [n for n in nodes if type(n.op).__name__ == "Join"]
    assert max(len(n.inputs) - 1 for n in joins) <= 4
    assert len({len(n.inputs) for n in joins}) <= 3  # distinct arities: a compile each


@pytest.mark.numba
def test_nk_model_matches_dense_numba(nk_dense):
    _check_values(nk_dense, "NUMBA")


def test_bench_latency_measures_every_phase():
    res = bench_latency.measure("sparsediff", 2, "c", calls=2)
    for phase in (*bench_latency.PHASES, "per_call", "total"):
        assert res[phase] >= 0, phase
    assert res["n"] == 46 and res["n_colors"] >= 1 and res["nodes"] > 0
    res["status"], res["cache"] = "ok", "warm"
    assert bench_latency._row(res).startswith("| sparsediff | c | 2 (46) | warm |")
    skipped = {"tool": "dense pt.jacobian", "T": 2, "backend": "c", "status": "timeout > 1 s"}
    assert "timeout" in bench_latency._row(skipped)
    with pytest.raises(SystemExit):
        bench_latency.main(["--backends", "gpu"])


@pytest.mark.parametrize("tool", ["residual", "one JVP"])
def test_bench_latency_floor_rows_compile_the_residual_and_one_jvp(tool):
    """The floor rows time what they say: F itself (checksum = |F(x)|₁) and one R_op pushforward."""
    import numpy as np
    import pytensor

    from tests.users_graphs import nk_perfect_foresight, nk_point

    res = bench_latency.measure(tool, 2, "c", calls=1)
    assert res["plan"] == 0 and res["build"] >= 0 and res["first_call"] >= 0
    F, x = nk_perfect_foresight(2)
    xv = nk_point(x)
    if tool == "residual":
        expected = pytensor.function([x], F, mode="FAST_COMPILE")(xv)
    else:
        J = pytensor.function([x], pytensor.gradient.jacobian(F, x), mode="FAST_COMPILE")(xv)
        expected = J @ np.ones_like(xv)
    np.testing.assert_allclose(res["checksum"], np.abs(expected).sum(), rtol=1e-10)
    with pytest.raises(ValueError, match="unknown tool"):
        bench_latency.measure("nope", 2, "c", calls=1)
