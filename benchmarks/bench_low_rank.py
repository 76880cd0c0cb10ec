"""Sparse plus low-rank Hessians: the ICAR log-density with a soft sum-to-zero constraint.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_low_rank.py \
        [--sides 50,100,316] [--dense-max 2500] [--repeats 7] [--mode CVM]

The cost (tests/users_graphs.py ``icar``): Poisson counts on an N×N lattice, an ICAR prior
``-½ τ Σ_edges (x_i - x_j)²`` and ``-½ (Σx / (0.001 n))²``. Its Hessian is a 5-point matrix
plus a rank-one term, but the pattern is dense: plain ``sd.hessian`` uses ``n`` HVPs.

Per size, compiled functions (``--mode``, C backend by default), timed interleaved (medians):

* ``low-rank``: ``sd.hessian(cost, x, low_rank=True)`` → ``(S, U, C)``;
* ``low-rank logdet``: ``sd.linalg.logdet(-H)`` (determinant lemma, one sparse Cholesky);
* ``plain``: ``sd.hessian(cost, x)`` (n ≤ ``--dense-max``);
* ``dense``: ``jacobian(grad(cost, x), x, vectorize=True)`` (n ≤ ``--dense-max``), and the
  dense ``slogdet`` of its negative as the logdet reference.

Also the planning + compile time of each, and the max error against dense where it runs.
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
import pytensor.tensor as pt
from pytensor.gradient import jacobian

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sparsediff as sd
from benchmarks.timing import interleaved
from tests.users_graphs import icar


def _fmt(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def bench_side(N: int, dense_max: int, repeats: int, mode: str) -> tuple[list[str], dict]:
    cost, x = icar(N)
    n = N * N
    p = np.random.default_rng(0).uniform(-0.5, 0.5, n)
    fns, setup, info = {}, {}, {}

    t0 = time.perf_counter()
    plan = sd.plans.low_rank.low_rank_hessian_plan(cost, x)
    H = plan.build()
    f_lr = pytensor.function([x], list(H.outputs), mode=mode)
    setup["low-rank"] = time.perf_counter() - t0
    info["products"] = f"{plan.n_colors} HVPs + {plan.rank}"
    t0 = time.perf_counter()
    f_ld = pytensor.function([x], sd.linalg.logdet(-H), mode=mode)
    setup["low-rank logdet"] = time.perf_counter() - t0
    fns["low-rank"] = lambda: f_lr(p)
    fns["low-rank logdet"] = lambda: f_ld(p)

    if n <= dense_max:
        import warnings

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sd.sparsity.lowrank.LowRankHint)
            f_plain = pytensor.function([x], sd.hessian(cost, x), mode=mode)
        setup["plain"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        Hd = jacobian(pytensor.grad(cost, x), x, vectorize=True)
        f_dense = pytensor.function([x], Hd, mode=mode)
        setup["dense"] = time.perf_counter() - t0
        f_dld = pytensor.function([x], pt.linalg.slogdet(-Hd)[1], mode=mode)
        fns["plain"] = lambda: f_plain(p)
        fns["dense"] = lambda: f_dense(p)
        fns["dense logdet"] = lambda: f_dld(p)
        S, U, C = f_lr(p)
        ref = f_dense(p)
        info["error"] = np.abs(S.toarray() + U @ C @ U.T - ref).max() / np.abs(ref).max()
        info["logdet error"] = abs(f_ld(p) - f_dld(p)) / abs(f_dld(p))
        info["plain error"] = np.abs(f_plain(p).toarray() - ref).max() / np.abs(ref).max()
    for fn in fns.values():
        fn()
    stats = interleaved(fns, repeats=repeats, min_sample_s=0.0)
    cols = ["low-rank", "plain", "dense", "low-rank logdet", "dense logdet"]
    row = [f"{n:,}", info["products"]]
    row += [_fmt(stats[c].median) if c in stats else "–" for c in cols]
    row += [" / ".join(_fmt(setup[c]) for c in ("low-rank", "plain", "dense") if c in setup)]
    err = f"{info['error']:.1e} / {info['logdet error']:.1e}" if "error" in info else "–"
    row.append(err)
    return ["| " + " | ".join(row) + " |"], {k: v.median for k, v in stats.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sides", default="50,100,316", help="lattice sides N (n = N²)")
    ap.add_argument("--dense-max", type=int, default=2500, help="largest n for plain and dense")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--mode", default="CVM", help="PyTensor mode of the compiled functions")
    args = ap.parse_args(argv)
    print(
        f"uptime: {os.getloadavg()}; mode {args.mode}; one BLAS thread: "
        f"{os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    lines = [
        "| n | products | low-rank (S, U, C) | plain sd.hessian | dense | low-rank logdet "
        "| dense slogdet | setup: low-rank / plain / dense | rel. error H / logdet |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    t0 = time.perf_counter()
    for N in (int(v) for v in args.sides.split(",")):
        rows, _ = bench_side(N, args.dense_max, args.repeats, args.mode)
        print("\n".join(rows), flush=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
