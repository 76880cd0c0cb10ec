"""Sparsity detection benchmark: sparsediff against asdex, at n = 10⁶ by default.

    python benchmarks/bench_detection.py                     # bratu2d 1000×1000 and fd1d 10⁶
    python benchmarks/bench_detection.py --n 100000 --repeat 5 --problems fd1d
    python benchmarks/bench_detection.py --no-asdex

Problems (the residuals of :mod:`sparsediff.problems`, and the same functions in jax.numpy from
``benchmarks/peers/jax_problems.py`` for asdex):

* ``bratu2d``: MINPACK-2 solid fuel ignition, 5-point stencil, ``n = side²``;
* ``fd1d``: the 1-D three-point finite-difference residual.

Each problem runs in one fresh child process (so caches and peak memory are its own) in which
both tools are set up and measured, asdex only when ``jax`` and ``asdex`` import:

* *cold*: the first detection in the process (sparsediff: includes loading its Numba kernels
  from the on-disk cache; asdex: the first trace of the function);
* *warm*: the best and the median of ``--repeat`` further detections, the two tools interleaved
  call after call, so that both see the same machine load;
* *peak*: tracemalloc's peak over one extra detection (Python, NumPy and Numba allocations;
  XLA's own buffers are invisible to it) and the growth of the process's peak resident set
  size during the tool's cold call (``ru_maxrss``; for the tool that runs second it only shows
  what exceeds the first one's peak).

The result is checked: both tools must give the same pattern, equal to the problem's analytic
structure. A markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks.threads  # noqa: F401  (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np
import scipy.sparse as sp

PROBLEMS = ("bratu2d", "fd1d")


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _problem(family: str, n: int):
    from sparsediff import problems

    if family == "bratu2d":
        side = math.isqrt(n)
        return problems.bratu2d(side, side), side
    if family == "fd1d":
        return problems.fd1d(n), n
    raise ValueError(f"unknown problem {family}")


def _sparsediff_tool(problem):
    import sparsediff as sd

    def detect():
        return sd.jacobian_sparsity(problem.expression, problem.x)

    return detect, lambda p: sp.csr_array(p)


def _asdex_tool(family: str, size: int, x0: np.ndarray):
    from benchmarks.peers.jax_problems import FUNCTIONS, setup_jax

    setup_jax()
    import asdex
    import jax.numpy as jnp

    f = FUNCTIONS[family](size)
    x = jnp.asarray(x0)

    def detect():
        return asdex.jacobian_sparsity(f, x)

    def to_scipy(pattern):  # asdex.SparsityPattern: COO rows/cols and shape
        rows, cols = np.asarray(pattern.rows), np.asarray(pattern.cols)
        return sp.csr_array(
            (np.ones(rows.size, dtype=bool), (rows, cols)), shape=tuple(pattern.shape)
        )

    return detect, to_scipy


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _traced_peak(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def child(family: str, n: int, repeat: int, with_asdex: bool) -> dict:
    problem, size = _problem(family, n)
    tools = {"sparsediff": _sparsediff_tool(problem)}
    notes = []
    if with_asdex:
        try:
            tools["asdex"] = _asdex_tool(family, size, problem.x0)
        except ImportError as exc:
            notes.append(f"asdex not measured: {exc}")
    expected = problem.pattern()
    result = {"problem": problem.name, "n": problem.n, "nnz": int(expected.nnz), "tools": {}}
    for name, (detect, to_scipy) in tools.items():
        before = _maxrss_mib()
        pattern, cold = _timed(detect)
        rss_growth = _maxrss_mib() - before
        pattern = to_scipy(pattern)
        correct = pattern.shape == expected.shape and (pattern != expected).nnz == 0
        result["tools"][name] = {
            "cold_s": cold,
            "rss_growth_mib": rss_growth,
            "correct": bool(correct),
            "warm_s": [],
        }
    for _ in range(repeat):  # interleaved, so both tools see the same load
        for name, (detect, _) in tools.items():
            result["tools"][name]["warm_s"].append(_timed(detect)[1])
    for name, (detect, _) in tools.items():
        result["tools"][name]["tracemalloc_peak_mib"] = _traced_peak(detect)
    result["notes"] = notes
    return result


def _row(result: dict, name: str, reference: dict | None) -> str:
    t = result["tools"][name]
    best, median = min(t["warm_s"]), statistics.median(t["warm_s"])
    ratio = ""
    if reference is not None and name != "sparsediff":
        ratio = f"{best / min(reference['warm_s']):.1f}×"
    return (
        f"| {result['problem']} | {result['n']:,} | {result['nnz']:,} | {name} | "
        f"{t['cold_s']:.3f} | {best:.3f} | {median:.3f} | {t['tracemalloc_peak_mib']:.0f} | "
        f"{t['rss_growth_mib']:.0f} | {'yes' if t['correct'] else 'NO'} | {ratio} |"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="unknowns (bratu2d: side²)")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--repeat", type=int, default=3, help="warm detections per tool")
    ap.add_argument("--no-asdex", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        out = child(args.child, args.n, args.repeat, not args.no_asdex)
        print(json.dumps(out))
        return 0
    results = []
    for family in args.problems.split(","):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", family, "--n", str(args.n)]
        cmd += ["--repeat", str(args.repeat)] + (["--no-asdex"] if args.no_asdex else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{family}: child failed\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(
        f"Sparsity detection, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}; command: {' '.join(sys.argv)}\n"
    )
    print(
        "| problem | n | nnz | tool | cold (s) | warm best (s) | warm median (s) | "
        "tracemalloc peak (MiB) | peak RSS growth (MiB) | correct | asdex / sparsediff |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|")
    for result in results:
        reference = result["tools"]["sparsediff"]
        for name in result["tools"]:
            print(_row(result, name, reference))
    notes = sorted({note for r in results for note in r["notes"]})
    for note in notes:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
