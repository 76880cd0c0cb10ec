"""The benchmark harness: timing helpers, the peers' problem formulations, one small case."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import harness
from benchmarks.peers import relative_error
from benchmarks.peers.casadi_problems import EXPRESSIONS
from benchmarks.peers.jax_problems import FUNCTIONS
from benchmarks.timing import Phase, interleaved
from sparsediff import problems

SMALL = {"fd1d": 30, "bratu2d": 36, "brusselator2d": 50, "energy2d": 36}
SMALL |= {"rectangular": 20, "dense_row_col": 20, "cavity2d": 36}


def test_families_cover_every_problem():
    assert set(FUNCTIONS) == set(EXPRESSIONS) == set(problems.PROBLEMS) == set(SMALL)
    assert set(harness.PROBLEM_ORDER) == set(problems.PROBLEMS)


def test_interleaved_gives_median_min_max_over_repeats():
    calls = {"a": 0, "b": 0}

    def a():
        calls["a"] += 1

    def b():
        calls["b"] += 1
        sum(range(1000))

    stats = interleaved({"a": a, "b": b}, repeats=7, min_sample_s=1e-4)
    for s in stats.values():
        assert s.samples >= 7 and s.min <= s.median <= s.max
    assert calls["a"] >= 7 and calls["b"] >= 7


def test_phase_measures_time_and_memory():
    with Phase() as ph:
        block = np.ones(40 * 2**20 // 8)
        block[::512] = 2.0
    assert ph.seconds > 0
    if ph.method == "rss":
        assert ph.peak_mb > 30
    del block


@pytest.mark.parametrize("family", sorted(SMALL))
def test_case_is_built_from_size(family):
    case = harness.make_case(family, SMALL[family])
    assert case.pattern.shape == (case.m, case.n)
    rebuilt = problems.PROBLEMS[family](case.size)
    assert rebuilt.n == case.n


@pytest.mark.parametrize("family", sorted(SMALL))
def test_jax_formulation_matches_numpy(family):
    pytest.importorskip("jax")
    from benchmarks.peers.jax_problems import setup_jax

    setup_jax()
    case = harness.make_case(family, SMALL[family])
    f = FUNCTIONS[family](case.size)
    np.testing.assert_allclose(
        np.asarray(f(case.x)), case.problem.residual_numpy(case.x), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("family", sorted(SMALL))
def test_casadi_formulation_matches_numpy_and_pattern(family):
    ca = pytest.importorskip("casadi")
    case = harness.make_case(family, SMALL[family])
    for X in (ca.MX, ca.SX):
        x, F = EXPRESSIONS[family](case.size, X)
        value = np.asarray(ca.Function("f", [x], [F])(case.x)).ravel()
        expected = np.atleast_1d(case.problem.residual_numpy(case.x))
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
        if case.hessian:
            S = ca.jacobian_sparsity(ca.gradient(F, x), x)
        else:
            S = ca.jacobian_sparsity(F, x)
        np.testing.assert_array_equal(_casadi_dense(S), case.pattern.toarray())


def _casadi_dense(S):
    out = np.zeros((S.size1(), S.size2()), dtype=bool)
    rows, cols = S.get_triplet()
    out[np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)] = True
    return out


def test_relative_error():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert relative_error(a, a) == 0
    assert math.isclose(relative_error(a * 1.5, a), 0.5)
    assert relative_error(a, np.ones((3, 3))) == math.inf


def test_one_case_end_to_end(tmp_path):
    """fd1d at n = 60 with the cheap tools: all checked against sparsediff, then timed."""
    tools = ["sparsediff[c]", "dense pt.jacobian[vectorize]", "SciPy FD", "CasADi MX"]
    res = harness.run_case("fd1d", 60, tools, repeats=7, budget_s=0.5)
    rows = res["tools"]
    assert rows["sparsediff[c]"]["status"] == "ok", rows["sparsediff[c]"]
    assert rows["sparsediff[c]"]["err_analytic"] <= 1e-12
    assert rows["sparsediff[c]"]["n_colors"] == 3
    for name in tools:
        row = rows[name]
        if row["status"] == "skipped":
            continue
        assert row["status"] == "ok", (name, row)
        assert row["eval"]["samples"] >= 7
        assert row["reference"] == "sparsediff[c]"
        assert row["ratio"] > 0
    assert rows["SciPy FD"]["err_reference"] < 1e-4
    meta = {
        "date": "today",
        "machine": harness.machine(),
        "command": "test",
        "wall_min": 0.0,
        "load_start": "0",
        "load_end": "0",
    }
    text = harness.markdown([res], meta)
    assert "| fd1d | 60 | sparsediff[c] | forward | 3 (3) |" in text
    assert harness.plot([res], tmp_path / "p.png") in (None, "matplotlib not installed: no plot")

    # --readme: the summary replaces exactly what lies between the markers, twice in a row
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{harness.README_START}\nstale table\n{harness.README_END}\noutro\n")
    monkey_png = tmp_path / "missing.png"  # no plot: the README still gets its table
    for _ in range(2):
        harness.update_readme([res], meta, monkey_png, readme=readme)
        updated = readme.read_text()
        assert updated.startswith("intro\n") and updated.endswith("outro\n")
        assert "stale table" not in updated and updated.count(harness.README_START) == 1
        assert "| fd1d | 60 |" in updated and "Command: `test`" in updated
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="markers"):
        harness.update_readme([res], meta, monkey_png, readme=readme)


def test_skip_is_reported_not_fatal():
    case_tools = ["dense pt.jacobian[scan]"]
    from benchmarks.peers import dense_pytensor

    old = dict(dense_pytensor.MAX_N)
    dense_pytensor.MAX_N["scan"] = 10
    try:
        res = harness.run_case("fd1d", 60, case_tools, repeats=7, budget_s=0.1)
    finally:
        dense_pytensor.MAX_N.update(old)
    row = res["tools"]["dense pt.jacobian[scan]"]
    assert row["status"] == "skipped" and "GiB" in row["reason"]


def test_dense_row_col_bidirectional_products_are_reported():
    """The harness shows the bicoloring's products for the dense-row-and-column problem."""
    tools = ["sparsediff[c]", "sparsediff[c,bidirectional]"]
    res = harness.run_case("dense_row_col", 300, tools, repeats=3, budget_s=0.2)
    for name in tools:
        row = res["tools"][name]
        assert row["status"] == "ok", (name, row)
        assert row["n_colors"] <= 4 and row["mode"].startswith("bidirectional"), row["mode"]
        assert row["err_analytic"] <= 1e-12
    assert res["lower_bound"] == {"forward": 300, "reverse": 300}
    fd = harness.run_case("fd1d", 40, ["sparsediff[c,bidirectional]"], repeats=3, budget_s=0.1)
    assert fd["tools"]["sparsediff[c,bidirectional]"]["status"] == "ok"


def _child_killed_with_every_tool(calls):
    """A stand-in for ``harness.run_child``: the case in this process, except that a process
    holding the dense tool is "killed" for its memory (as at n = 10⁴ on the driven cavity)."""

    def run_child(family, n, tools, repeats, budget_s, timeout_s, max_memory_gib):
        calls.append(list(tools))
        if "dense pt.jacobian[vectorize]" in tools:
            error = f"killed: resident memory above {max_memory_gib:g} GiB"
            return {"problem": family, "n": n, "error": error, "wall_s": 1.0}
        res = harness.run_case(family, n, tools, repeats, budget_s)
        res["peak_rss_gib"] = 0.25
        res["residuals"]["residual[pytensor-c]"]["median"] = len(calls)  # whose process
        return res

    return run_child


def test_tools_run_apart_after_a_memory_kill(monkeypatch, tmp_path):
    """A case whose shared process is killed for memory is run again one tool per process:
    the other tools keep their rows, the one that fails alone is marked, the table says so."""
    tools = ["sparsediff[c]", "dense pt.jacobian[scan]", "dense pt.jacobian[vectorize]"]
    calls: list = []
    monkeypatch.setattr(harness, "run_child", _child_killed_with_every_tool(calls))
    args = ["--problems", "fd1d", "--sizes", "40", "--tools", ",".join(tools), "--repeats", "3"]
    harness.main([*args, "--budget", "0.1", "--max-memory", "2", "--out", str(tmp_path / "run")])
    assert calls == [tools, *([t] for t in tools)]
    (res,) = json.loads((tmp_path / "run.json").read_text())["results"]
    assert res["apart"] == "killed: resident memory above 2 GiB"
    ok, dense = res["tools"]["sparsediff[c]"], res["tools"]["dense pt.jacobian[vectorize]"]
    assert ok["status"] == "ok" and ok["ratio"] > 0 and ok["err_analytic"] <= 1e-12
    assert dense["status"] == "error" and dense["reason"].endswith("(run alone)")
    assert res["tools"]["dense pt.jacobian[scan]"]["status"] == "ok"
    # the C residual both C tools' processes timed: the first one's (sparsediff's), call 2
    assert res["residuals"]["residual[pytensor-c]"]["median"] == 2 and res["peak_rss_gib"] == 0.25
    table = harness.summary([res])
    assert "| fd1d | 40* | 118 | 3 (3) |" in table and "one process per tool" in table
    assert "| fd1d | 40 | sparsediff[c] |" in (tmp_path / "run.md").read_text()

    calls.clear()  # every tool failing alone: the case is one failed row, as before
    res = harness.run_tools_apart("fd1d", 40, tools[2:], 3, 0.1, 60.0, 2.0, "killed")
    assert calls == [tools[2:]] and res["error"].startswith("killed; every tool alone failed")


def test_child_process_gets_tool_names_with_commas():
    """``sparsediff[c,bidirectional]`` reaches the child whole (names travel ';'-joined)."""
    tools = ["sparsediff[c]", "sparsediff[c,bidirectional]"]
    res = harness.run_child("dense_row_col", 30, tools, 7, 0.2, 240.0, 4.0)
    assert "error" not in res, res.get("error")
    assert set(res["tools"]) == set(tools)
    assert res["tools"]["sparsediff[c,bidirectional]"]["status"] == "ok"


def test_phase_counts_memory_with_large_buffers_kept_in_heap():
    """With the JAX backend's glibc setting (freed memory kept in the heap), a phase that reuses
    freed blocks still reports the pages it touches (the harness loads JAX in its processes)."""
    code = (
        "import numpy as np\n"
        "from sparsediff.backends.jax_memory import keep_large_buffers_in_heap\n"
        "from benchmarks.timing import Phase\n"
        "keep_large_buffers_in_heap()\n"
        "a = np.ones(60 * 2**20 // 8); a[::512] = 3.0; del a\n"
        "with Phase() as ph:\n"
        "    b = np.ones(40 * 2**20 // 8); b[::512] = 2.0\n"
        "print(ph.method, ph.peak_mb)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    if out[0] == "rss":
        assert float(out[1]) > 30


def test_benchmarks_pin_one_blas_thread():
    """Importing a benchmark sets one BLAS thread before NumPy loads, and the environment wins."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    probe = (
        "import os, sys\n"
        "import benchmarks.harness as h\n"
        "t = h.machine()['blas_threads']\n"
        "print(t['OPENBLAS_NUM_THREADS'], t['OMP_NUM_THREADS'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = str(root) + os.pathsep + str(root / "src")
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=root, capture_output=True, text=True
    )
    assert out.stdout.split() == ["2", "1"]

    import benchmarks.threads as threads

    assert "BLAS threads: 1 (" in "\n".join(
        harness.header(
            {
                "date": "d",
                "machine": {
                    **harness.machine(),
                    "blas_threads": dict.fromkeys(threads.BLAS_THREAD_VARIABLES, "1"),
                },
                "command": "c",
                "wall_min": 0.0,
                "load_start": "0",
                "load_end": "0",
            }
        )
    )


def test_bench_newton_tiny(capsys):
    """benchmarks/bench_newton.py at a tiny size: every ordering and auto's choice are reported,
    auto's fill is the least up to the documented tolerance, the Newton solves converge."""
    from benchmarks import bench_newton

    argv = ["--dsge", "6", "--bratu", "6", "--cge", "", "--repeats", "1", "--mode", "FAST_COMPILE"]
    bench_newton.main(argv)
    out = capsys.readouterr().out
    tables = [t for t in out.split("\n**") if "| ordering |" in t]
    assert len(tables) == 2
    for table in tables:
        rows = [r for r in table.splitlines() if r.startswith("| ") and "---" not in r][1:]
        assert len(rows) == len(bench_newton.SPECS) + 1
        fills = [int(r.split("|")[2].replace(",", "")) for r in rows]
        assert "**auto** →" in rows[-1] and "analysis" in rows[-1]
        assert fills[-1] <= 1.25 * min(fills[:-1])
        assert all(r.split("|")[6].strip().isdigit() for r in rows)  # Newton converged
    assert "auto's predicted fill" in out


def test_bench_low_rank_small_case():
    """benchmarks/bench_low_rank.py on a 4×4 lattice: one table row, every column timed, the
    sparse + low-rank Hessian and its logdet equal to the dense ones."""
    from benchmarks import bench_low_rank

    rows, medians = bench_low_rank.bench_side(4, dense_max=100, repeats=1, mode="FAST_COMPILE")
    assert len(rows) == 1 and rows[0].startswith("| 16 |")
    assert set(medians) == {"low-rank", "low-rank logdet", "plain", "dense", "dense logdet"}
    errors = rows[0].split("|")[-2].split("/")
    assert all(float(e) < 1e-10 for e in errors)
