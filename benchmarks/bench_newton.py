"""Newton's sparse LU: every SuperLU ordering against ``ordering="auto"`` (issue #19).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_newton.py \
        [--dsge 100,300] [--bratu 50,150] [--cge 50,200] [--repeats 3] [--no-newton] [--mode CVM]

Three Jacobians of the kind users solve with ``sd.newton``, each at the starting point:

* **DSGE**: a stacked perfect-foresight model, T periods of a nonlinear 23-equation block
  coupled to t−1 and t+1, the equations of each period not ordered by variable (a zero
  diagonal; the layout of gEconpy's models, where ``MMD_AT_PLUS_A`` with partial pivoting
  filled 9·10⁷ entries in 131 s);
* **Bratu**: the 2-D 5-point problem of :mod:`sparsediff.problems` (a strong diagonal);
* **CGE**: the multi-sector CGE model of ``tests/users_graphs.py`` (dense-ish market-clearing
  and income rows; COLAMD was the poor ordering on a user's CGE model).

Per problem: for each SuperLU ordering as SciPy uses it (``splu(J, permc_spec=...)``, partial
pivoting) and for ``sd.linalg.factorize`` "auto" — first factorization of the pattern (the
analysis included) and a later one (the analysis reused) — the fill nnz(L+U) − n, the
factorization time and one solve; then ``sd.NewtonSolver`` warm solves (compiled once) with
each ordering and with "auto": first with its analysis cleared (the solve pays it once), then
again (the pattern's analysis reused, as for every later solve of the same system).
Medians of interleaved repetitions, one BLAS thread; prints markdown.
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
import pytensor.tensor as pt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sparsediff as sd
from benchmarks.timing import interleaved
from sparsediff import linalg as sl
from sparsediff.linalg import factor as F
from sparsediff.linalg.lu_ordering import LU_ORDERINGS

SPECS = ("COLAMD", "MMD_AT_PLUS_A", "MMD_ATA", "NATURAL")


def dsge(T: int, k: int = 23, seed: int = 0):
    """(F, x, x0): T periods of a nonlinear k-equation block, equations out of variable order."""
    rng = np.random.default_rng(seed)

    def block(density, cols=None):
        B = (rng.random((k, k)) < density) * rng.standard_normal((k, k)) * 0.3
        if cols is not None:
            keep = np.zeros(k, bool)
            keep[cols] = True
            B[:, ~keep] = 0
        return B

    perm = rng.permutation(k)
    C = block(0.15) + 4 * np.eye(k)[perm]
    P, N = block(0.3, np.arange(6)), block(0.3, np.arange(6, 14))
    x = pt.dvector("x", shape=(T * k,))
    X = x.reshape((T, k))
    Xp = pt.concatenate([pt.zeros((1, k)), X[:-1]])
    Xn = pt.concatenate([X[1:], pt.zeros((1, k))])
    F = (X @ C.T + pt.tanh(Xp) @ P.T + 0.1 * (Xn**2) @ N.T + 0.05 * pt.exp(0.1 * X) - 0.3).ravel()
    return F, x, np.zeros(T * k)


def bratu(m: int):
    from sparsediff.problems import bratu2d

    p = bratu2d(m)
    return p.expression, p.x, p.x0


def cge_model(S: int):
    from tests.users_graphs import cge, cge_point

    F, x = cge(S)
    return F, x, cge_point(x)


def _fmt(s: float) -> str:
    if not np.isfinite(s):
        return "–"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _fill(lu) -> int:
    return int(lu.L.nnz + lu.U.nnz - lu.shape[0])


def bench_problem(
    label: str, F_, x, x0, repeats: int, newton: bool, mode: str = "CVM"
) -> list[str]:
    solver = sd.NewtonSolver(F_, x, mode=mode)
    x0 = np.asarray(x0, dtype=float).ravel()
    # the Jacobian a little away from x0 (at x0 some entries of the pattern can be exact zeros)
    z = x0 + 0.05 * np.random.default_rng(1).standard_normal(x0.size) * (1 + np.abs(x0))
    _, J = solver._evaluate(z, [])
    J = sp.csc_matrix(J)
    n = J.shape[0]
    absJ = abs(J)
    weak = int(np.sum(absJ.diagonal() < 0.1 * absJ.max(axis=0).toarray().ravel()))
    b = np.random.default_rng(0).standard_normal(n)
    fill, fns, lus = {}, {}, {}
    for spec in SPECS:
        lus[spec] = spla.splu(J, permc_spec=spec)
        fill[spec] = _fill(lus[spec])
        fns[f"{spec}|factor"] = lambda spec=spec: spla.splu(J, permc_spec=spec)
        fns[f"{spec}|solve"] = lambda lu=lus[spec]: lu.solve(b)

    def auto_first():
        F._LU_ANALYSES.clear()
        return sl.factorize(J)

    f_auto = auto_first()
    fill["auto"] = f_auto.nnz_factor
    fns["auto|first"] = auto_first
    fns["auto|factor"] = lambda: sl.factorize(J)
    fns["auto|solve"] = lambda: f_auto.solve(b)
    stats = interleaved(fns, repeats=repeats, min_sample_s=0.0)
    info = f_auto.ordering_info
    lines = [
        f"\n**{label}: n = {n:,}, nnz(J) = {J.nnz:,}, weak diagonal entries "
        f"(|J_jj| < 0.1 max_i |J_ij|) {weak:,}**\n",
        "| ordering | fill nnz(L+U) − n | factor | solve | Newton (warm solve) | iterations |",
        "|---|---|---|---|---|---|",
    ]
    newton_t: dict[str, tuple[float, int]] = {}
    if newton:
        runs = {spec: {"ordering": spec} for spec in SPECS} | {"auto": {}}
        for name, opts in runs.items():
            if name == "auto":
                F._LU_ANALYSES.clear()  # this solve pays the analysis once
            t0 = time.perf_counter()
            r = solver.solve(x0, linear_options=opts, tol=1e-9)
            newton_t[name] = (time.perf_counter() - t0, r.nit if r.success else -1)
        t0 = time.perf_counter()  # auto again: the pattern's analysis is reused
        r = solver.solve(x0, tol=1e-9)
        newton_t["auto, reused"] = (time.perf_counter() - t0, r.nit if r.success else -1)
    for spec in (*SPECS, "auto"):
        if spec == "auto":
            name = f"**auto** → {info['ordering']}, {info['pivoting']}"
            fac = (
                f"{_fmt(stats['auto|first'].median)} first (analysis), "
                f"{_fmt(stats['auto|factor'].median)} after"
            )
        else:
            name = f"SciPy `splu` {spec}"
            fac = _fmt(stats[f"{spec}|factor"].median)
        nt, nit = newton_t.get(spec, (float("nan"), 0))
        newton_cell = _fmt(nt)
        if spec == "auto" and newton:
            newton_cell += f" first, {_fmt(newton_t['auto, reused'][0])} reused"
        lines.append(
            f"| {name} | {fill[spec]:,} | {fac} | {_fmt(stats[f'{spec}|solve'].median)} | "
            f"{newton_cell} | {nit if nit >= 0 else 'failed'} |"
        )
    pred = ", ".join(
        f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in info["predicted"].items()
    )
    lines.append(
        f"\nauto's predicted fill (diagonal pivots, row matching τ = {info['row_matching']}): "
        f"{pred}; analysis {_fmt(info['analysis_seconds'])}."
    )
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsge", default="100,300", help="DSGE periods T (n = 23 T)")
    ap.add_argument("--bratu", default="50,150", help="Bratu grid sizes m (n = m²)")
    ap.add_argument("--cge", default="50,200", help="CGE sectors S (n = 6 S + 1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-newton", action="store_true", help="orderings only, no Newton solves")
    ap.add_argument("--mode", default="CVM", help="PyTensor mode of the compiled F and J")
    args = ap.parse_args(argv)
    assert set(SPECS) == set(LU_ORDERINGS)
    t0 = time.perf_counter()
    problems = []
    problems += [(f"DSGE, T = {T}", dsge, int(T)) for T in args.dsge.split(",") if T]
    problems += [(f"Bratu 2-D, m = {m}", bratu, int(m)) for m in args.bratu.split(",") if m]
    problems += [(f"CGE, S = {S} sectors", cge_model, int(S)) for S in args.cge.split(",") if S]
    for label, make, size in problems:
        lines = bench_problem(label, *make(size), args.repeats, not args.no_newton, args.mode)
        print("\n".join(lines), flush=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
