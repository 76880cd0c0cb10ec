"""The small-systems benchmark (benchmarks/bench_small.py) at a tiny size."""

from __future__ import annotations

from benchmarks import bench_small


def test_one_measurement_per_variant_and_the_table():
    results = []
    for variant in bench_small.VARIANTS:
        r = bench_small.one("fd1d", 8, variant, "FAST_COMPILE")
        assert r["n"] == 8 and r["variant"] == variant
        assert all(r["cpu"][ph] >= 0 for ph in bench_small.PHASES)
        assert r["cpu"]["call"] > 0
        r["repeat"] = 0
        results.append(r)
    assert "dense (pytensor.gradient.jacobian" in results[1]["plan"]
    rows = bench_small.summarize(results)
    assert {row["variant"] for row in rows} == set(bench_small.VARIANTS)
    text = bench_small.table(rows)
    assert text.count("\n") == 2 and "| FAST_COMPILE | fd1d | 8 |" in text


def test_problems_have_about_n_unknowns():
    for name in bench_small.PROBLEMS:
        _, x, x0 = bench_small.make_problem(name, 50)
        assert abs(x.type.shape[0] - 50) <= 3 and x0.shape == x.type.shape


def test_subprocess_measurement():
    r = bench_small._run_one("fd1d", 6, "dense", "FAST_COMPILE")
    assert r["problem"] == "fd1d" and r["cpu"]["first"] >= 0
