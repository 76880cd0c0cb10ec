"""Where a sparse Jacobian's time goes beyond its residual's (issue #16), in one process.

    python benchmarks/bench_overhead.py [--problems fd1d:1000,bratu2d:1024,energy2d:1024]
        [--modes CVM,NUMBA] [--repeat 41]
    python benchmarks/bench_overhead.py --floor --problems bratu2d:1000000 [--repeat 31]

Per problem and mode, interleaved call by call (medians, and the minimum of the samples: on a
loaded box the minimum is the least disturbed), with ``trust_input`` as the harness leaves it
(off) and on:

* ``r``: the residual (for a Hessian problem, the gradient);
* ``J``: the compiled sparse Jacobian (a ``scipy.sparse`` matrix per call);
* ``data``: the same graph returning only the matrix's ``data`` vector: ``J - data`` is the
  cost of making the returned matrix.

With ``--floor`` (meant for n = 10⁶), instead: ``r``, ``J``, ``data``, the compressed products
alone (the batched JVPs/HVPs, no decompression), and what any derivative returning ``nnz``
values must pay at least: writing ``nnz`` doubles into a fresh array (``np.full``, which the
kernel must first fault in and zero) and into an array reused from the previous call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import benchmarks.threads  # noqa: E402, F401  (one BLAS thread)


def interleaved(fns: dict, calls: int, repeat: int) -> dict:
    """``{name: (median, min)}`` seconds per call, the functions timed in turn each round."""
    samples: dict = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - t0) / calls)
    return {name: (statistics.median(s), min(s)) for name, s in samples.items()}


def functions(problem: str, n: int, mode: str, floor: bool) -> tuple[dict, int, int]:
    import numpy as np
    import pytensor

    import sparsediff as sd
    from sparsediff.plans import common
    from sparsediff.problems import from_size

    prob = from_size(problem, n)
    x, expr, params, values = prob.x, prob.expression, list(prob.params), prob.param_values
    hessian = prob.kind == "hessian"
    r = pytensor.grad(expr, x) if hessian else expr
    plan = sd.hessian_plan(expr, x) if hessian else sd.jacobian_plan(expr, x)
    J = plan.build()
    xv = prob.x0 + np.random.default_rng(0).uniform(0.0, 0.1, prob.n)
    outputs = {"r": r, "J": J, "data": J.owner.inputs[0]}
    if floor:
        with common.building():
            compressed = plan.compressed()
        outputs["compressed"] = compressed if isinstance(compressed, list) else [compressed]
    fns = {}
    for name, out in outputs.items():
        fn = pytensor.function([x, *params], out, mode=mode)
        fn(xv, *values)
        fns[name] = lambda fn=fn: fn(xv, *values)
        if not floor:
            trusted = pytensor.function([x, *params], out, mode=mode)
            trusted.trust_input = True
            trusted(xv, *values)
            fns[f"{name} (trust_input)"] = lambda fn=trusted: fn(xv, *values)
    if floor:
        nnz = plan.nnz
        reused = np.empty(nnz)
        fns["write nnz, fresh"] = lambda: np.full(nnz, 1.0)
        fns["write nnz, reused"] = lambda: reused.fill(1.0)
    return fns, prob.n, plan.nnz


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default="fd1d:1000,bratu2d:1024,energy2d:1024")
    parser.add_argument("--modes", default="CVM,NUMBA")
    parser.add_argument("--repeat", type=int, default=41)
    parser.add_argument("--floor", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load average {load}")
    unit, scale = ("ms", 1e3) if args.floor else ("µs", 1e6)
    for spec in args.problems.split(","):
        problem, n = spec.split(":")
        for mode in args.modes.split(","):
            fns, size, nnz = functions(problem, int(n), mode, args.floor)
            calls = 1 if args.floor else max(1, int(3e5 / size))
            res = interleaved(fns, calls, args.repeat)
            r_med, r_min = res["r"]
            cells = "; ".join(
                f"{k} {m * scale:.2f} / {lo * scale:.2f} (×{m / r_med:.2f} / ×{lo / r_min:.2f})"
                for k, (m, lo) in res.items()
            )
            print(f"{problem} n={size} nnz={nnz} {mode}, {unit} median / min (÷ r): {cells}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
