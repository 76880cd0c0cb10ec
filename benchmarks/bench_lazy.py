"""Lazy vs eager sparse Jacobians (issue #17): ``J @ v``, a block, compile times.

For the 2-D Bratu residual (5-point stencil, C backend ``mode="CVM"``), per call:

* ``J @ v``: lazy (``sd.jacobian(F, x, lazy=True) @ v``, rewritten into one JVP), eager (the
  whole sparse Jacobian, then ``pytensor.sparse.dot``: on an eager ``J`` PyTensor 3.0.7 spells
  ``J @ v`` as a dense ``Matmul`` that fails at run time), and a hand-written
  ``pytensor.gradient.pushforward(F, x, v)``;
* a block ``J[:b, :b]`` (``b = n / 10``): lazy (only the block is planned and computed) vs
  eager (the whole Jacobian, then sliced);
* compile times: the ``sd.jacobian`` call (the eager one plans there) plus
  ``pytensor.function``, the second of two compilations (C modules cached: the first
  compilation in a process pays for compiling C code, whichever row it is).

Timings are interleaved medians (``benchmarks.timing.interleaved``), one BLAS thread.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_lazy.py \\
        --sides 100,300
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmarks.threads  # noqa: F401  (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
from pytensor.gradient import pushforward

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sparsediff as sd
from benchmarks.timing import interleaved
from sparsediff.problems import bratu2d

MODE = "CVM"


def _compile(make):
    """(function, seconds for building the graph and compiling it)."""
    t0 = time.perf_counter()
    inputs, output = make()
    fn = pytensor.function(inputs, output, mode=MODE)
    return fn, time.perf_counter() - t0


def run(side: int, repeats: int) -> list[tuple]:
    prob = bratu2d(side)
    F, x, n = prob.expression, prob.x, prob.n
    v = pt.vector("v", shape=(n,))
    b = n // 10
    rng = np.random.default_rng(0)
    xv, vv = prob.x0 + 0.1 * rng.random(n), rng.normal(size=n)

    fns, compile_s = {}, {}
    makers = {
        "J@v lazy": lambda: ([x, v], sd.jacobian(F, x, lazy=True) @ v),
        # pytensor.sparse: `J @ v` on an eager J is a dense Matmul that fails at run time
        "J@v eager": lambda: ([x, v], ps.dot(sd.jacobian(F, x), v)),
        "J@v pushforward": lambda: ([x, v], pushforward(F, x, v)),
        "block lazy": lambda: ([x], sd.jacobian(F, x, lazy=True)[:b, :b]),
        "block eager": lambda: ([x], sd.jacobian(F, x)[:b, :b]),
        "J lazy": lambda: ([x], sd.jacobian(F, x, lazy=True)),
        "J eager": lambda: ([x], sd.jacobian(F, x)),
    }
    for name, make in makers.items():
        _compile(make)  # first: fills PyTensor's C-module cache (whichever row came first paid)
        fns[name], compile_s[name] = _compile(make)

    ref = fns["J eager"](xv)
    np.testing.assert_allclose(fns["J@v lazy"](xv, vv), ref @ vv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fns["J@v eager"](xv, vv), ref @ vv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fns["J@v pushforward"](xv, vv), ref @ vv, rtol=1e-10, atol=1e-12)
    blk = ref.tocsr()[:b, :b].toarray()
    np.testing.assert_allclose(fns["block lazy"](xv).toarray(), blk, rtol=1e-12)
    assert abs(fns["J lazy"](xv) - ref).max() <= 1e-12 * abs(ref).max()  # sparse: no n²

    def call(name):
        f, args = fns[name], ((xv, vv) if name.startswith("J@v") else (xv,))
        return lambda: f(*args)

    calls = {name: call(name) for name in fns}
    stats = interleaved(calls, repeats=repeats, budget_s=20.0)
    return [(side, n, name, stats[name].median, compile_s[name]) for name in fns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="100,300", help="grid sides (n = side²)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("| n | what | per call (ms, median) | graph + compile (s) |")
    print("|---|---|---|---|")
    for side in (int(s) for s in args.sides.split(",")):
        for _, n, name, per_call, comp in run(side, args.repeats):
            print(f"| {n} | {name} | {per_call * 1e3:.3f} | {comp:.2f} |", flush=True)


if __name__ == "__main__":
    main()
