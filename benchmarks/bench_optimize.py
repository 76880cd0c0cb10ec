"""sd.optimize benchmark: solve + implicit gradient per call, sparse against PyTensor's dense path.

    python benchmarks/bench_optimize.py                       # Bratu 2500/10⁴/9·10⁴, INLA 10⁴/9·10⁴
    python benchmarks/bench_optimize.py --bratu 50 100 --inla 100 --dense-bratu 0
    python benchmarks/bench_optimize.py --huge                # adds Bratu at n = 10⁶

Two tasks, each timed per call of one compiled function that returns the value and its gradient
w.r.t. the parameter (so every call solves from the same initial guess, then differentiates):

* **Bratu** (2-D, MINPACK-2 solid fuel ignition, parameter λ = 5): ``x* = root(F(x, λ), x)``,
  loss ``Σ x*²``, ``d loss / dλ``. sparsediff: ``sd.optimize.root`` (sparse Newton, SuperLU,
  adjoint with the last factor). Dense: ``pytensor.tensor.optimize.root`` (``hybr``, dense
  Jacobian by Scan, dense implicit gradient) where it runs (``--dense-bratu`` sides).
* **INLA step** (:mod:`sparsediff.optimize.laplace`): ``L(τ) = −f(x*, τ) − ½ log det H`` and
  ``dL/dτ``, latent ICAR field with Poisson counts. sparsediff: ``sd.optimize.minimize`` +
  ``sd.hessian`` + ``sd.linalg.logdet``. Dense (``--dense-inla`` sides, n ≈ 10³): PyTensor's
  ``minimize`` (L-BFGS-B) + ``pytensor.gradient.hessian`` + ``pt.linalg.cholesky``.

Where both run at one size they are timed interleaved (medians), and their values compared.
Every timed call gets a slightly different parameter (so ``sd.linalg``'s content-keyed factor
cache cannot serve a call from the previous call's matrix, as it never could in a sampler).
One BLAS thread (set before NumPy loads). C backend (``mode="CVM"``) unless ``--backend``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmarks.threads  # noqa: F401  (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.timing import interleaved

LAM = 5.0
TAU = 2.0


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def bratu_functions(side: int, backend, dense: bool):
    import pytensor
    from pytensor.tensor.optimize import root as dense_root

    import sparsediff as sd
    from sparsediff.problems import bratu2d

    p = bratu2d(side, lam_as_parameter=True)
    x, (lam,) = p.x, p.params
    fns, compile_s = {}, {}
    t0 = time.perf_counter()
    xs, ok, info = sd.optimize.root(p.expression, x, mode=backend, return_info=True)
    loss = (xs**2).sum()
    fns["sparsediff"] = pytensor.function(
        [x, lam], [loss, pytensor.grad(loss, lam), ok, info["nit"]], mode=backend
    )
    compile_s["sparsediff"] = time.perf_counter() - t0
    if dense:
        t0 = time.perf_counter()
        xd, okd = dense_root(p.expression, x, method="hybr")
        loss_d = (xd**2).sum()
        fns["dense"] = pytensor.function(
            [x, lam], [loss_d, pytensor.grad(loss_d, lam), okd], mode=backend
        )
        compile_s["dense"] = time.perf_counter() - t0
    return p, fns, compile_s


def inla_functions(side: int, backend, dense: bool):
    from sparsediff.optimize.laplace import dense_laplace, icar_poisson, sparse_laplace

    problem = icar_poisson(side)
    fns, compile_s = {}, {}
    t0 = time.perf_counter()
    fns["sparsediff"] = sparse_laplace(problem, mode=backend)
    compile_s["sparsediff"] = time.perf_counter() - t0
    if dense:
        t0 = time.perf_counter()
        fns["dense"] = dense_laplace(problem, mode=backend)
        compile_s["dense"] = time.perf_counter() - t0
    return problem, fns, compile_s


def run(task: str, side: int, backend, dense: bool, repeats: int) -> list[dict]:
    if task == "bratu":
        problem, fns, compile_s = bratu_functions(side, backend, dense)
        x0, theta = np.asarray(problem.x0, dtype=float), LAM
    else:
        problem, fns, compile_s = inla_functions(side, backend, dense)
        x0, theta = np.zeros(problem.n), TAU
    first, outs = {}, {}
    for name, fn in fns.items():
        outs[name], first[name] = _timed(fn, x0, theta)
    # Each timed call gets a new parameter value (relative change 1e-9 per call), as in a
    # sampler: no factorization cache may serve a call from an earlier one's matrix.
    calls = {name: 0 for name in fns}

    def call(name, fn):
        calls[name] += 1
        return fn(x0, theta * (1.0 + 1e-9 * calls[name]))

    stats = interleaved(
        {name: (lambda name=name, fn=fn: call(name, fn)) for name, fn in fns.items()},
        repeats=repeats,
        min_sample_s=0.0,
    )
    rows = []
    for name in fns:
        value, grad, ok = (float(outs[name][0]), float(outs[name][1]), bool(outs[name][2]))
        rows.append(
            {
                "task": task,
                "n": side * side,
                "tool": name,
                "compile_s": compile_s[name],
                "first_s": first[name],
                "median_s": stats[name].median,
                "min_s": stats[name].min,
                "value": value,
                "grad": grad,
                "ok": ok,
                "nit": int(outs[name][3]) if name == "sparsediff" else None,
            }
        )
        print(_row(rows[-1]), flush=True)
    return rows


def _row(r: dict) -> str:
    nit = "" if r["nit"] is None else str(r["nit"])
    return (
        f"| {r['task']} | {r['n']:,} | {r['tool']} | {r['median_s']:.4f} | {r['min_s']:.4f} | "
        f"{r['first_s']:.2f} | {r['compile_s']:.1f} | {nit} | {r['ok']} | {r['value']:.10g} | "
        f"{r['grad']:.10g} |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bratu", type=int, nargs="*", default=[50, 100, 300], help="sides")
    parser.add_argument("--inla", type=int, nargs="*", default=[100, 300], help="sides")
    parser.add_argument("--dense-bratu", type=int, nargs="*", default=[50], help="sides")
    parser.add_argument("--dense-inla", type=int, nargs="*", default=[32], help="sides")
    parser.add_argument("--huge", action="store_true", help="also Bratu at side 1000 (n = 10⁶)")
    parser.add_argument("--backend", default="CVM", help='PyTensor mode (default "CVM")')
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import sparsediff as sd

    warnings.filterwarnings("ignore", category=UserWarning)
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"backend {args.backend}, SPD factorization {sd.linalg.backend()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(
        "| task | n | tool | value+grad median s | min s | first call s | compile s | "
        "Newton its | success | value | gradient |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    bratu = list(args.bratu) + ([1000] if args.huge else [])
    jobs = [("bratu", s, False) for s in bratu if s not in args.dense_bratu]
    jobs += [("bratu", s, True) for s in args.dense_bratu]
    jobs += [("inla", s, True) for s in args.dense_inla]
    jobs += [("inla", s, False) for s in args.inla if s not in args.dense_inla]
    jobs.sort(key=lambda j: (j[0], j[1]))
    for task, side, dense in jobs:
        run(task, side, args.backend, dense, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
