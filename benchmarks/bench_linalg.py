"""sparsediff.linalg benchmark: factor, solve, logdet, logdet + gradient, inv_diag, side by side.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_linalg.py \
        [--m 100,300] [--big] [--repeats 5] [--backends cholmod,qdldl,superlu] [--no-banded]

Problem 1: the 2-D 5-point SPD matrix (Laplacian + I) on an m×m grid, n = m² (10⁴, 9·10⁴;
``--big`` adds m = 1000, n = 10⁶: one call each of CHOLMOD's factorization and of logdet +
gradient). Per backend: the
factorization alone (``sd.linalg.factorize``), one solve with it, and compiled PyTensor
functions (C backend) of ``logdet(A)``, ``logdet`` + its gradient (selected inversion),
``inv_diag(A)`` and ``spsolve(A, b, assume_a="pos")`` + gradient. References in the same
process, interleaved: SciPy ``splu`` (default COLAMD and ``MMD_AT_PLUS_A``) and, where it fits
(n ≤ 2500), dense ``pt.linalg`` on PyTensor's default (Numba) backend: Cholesky logdet +
gradient, ``solve(assume_a="pos")``.

The content-keyed factor cache would make a repeated call with the same data free (that is its
purpose: value and gradient share one factor); here it is cleared before every timed call, so
every number includes its factorization.

Problem 2 (LU orderings; the issue's report of a slow Newton on a block-banded n = 23 000
system): T = 1000 periods of a 23-equation block coupled to the previous and next period, once
with a strong diagonal and once with the equations not ordered by variable (zero diagonal:
partial pivoting must leave it). For each SuperLU ordering: factor time, fill nnz(L+U), solve
time, and what ``sd.linalg.factorize`` ("auto") picks.

``--newton T`` (e.g. 1000) adds ``sd.NewtonSolver`` on the same kind of system written as a
plain PyTensor graph (T periods of a nonlinear 23-equation block): the solver's default
``MMD_AT_PLUS_A`` against COLAMD and ``sd.linalg.factorize``.

Prints markdown tables; medians of interleaved repetitions, one BLAS thread.
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
import scipy.sparse as sp
import scipy.sparse.linalg as spla

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.timing import interleaved
from sparsediff import linalg as sl


def laplacian_2d(m: int) -> sp.csr_matrix:
    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    eye = sp.eye(m)
    A = sp.csr_matrix(sp.kron(T, eye) + sp.kron(eye, T) + sp.eye(m * m))
    A.sort_indices()
    return A


def _fmt(s: float) -> str:
    if not np.isfinite(s):
        return "–"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


_FACTORS: dict = {}


def _uncached(fn):
    def run():
        sl.clear_factor_cache()
        return fn()

    return run


def bench_spd(
    m: int, backends: list[str], repeats: int, dense_max: int, big: bool = False
) -> list[str]:
    A = laplacian_2d(m)
    n = A.shape[0]
    rng = np.random.default_rng(0)
    b = rng.standard_normal(n)
    data = pt.dvector("data")
    Av = ps.CSR(data, A.indices, A.indptr, A.shape)
    bv = pt.dvector("b")
    fns: dict[str, object] = {}
    fill: dict[str, int] = {}
    for be in backends:
        f = sl.factorize(A, "pos", be)
        fill[be] = f.nnz_factor
        del f
        ld = sl.logdet(Av, backend=be)
        y = sl.spsolve(Av, bv, assume_a="pos", backend=be)
        f_ld = pytensor.function([data], ld, mode="CVM")
        f_ldg = pytensor.function([data], [ld, pytensor.grad(ld, data)], mode="CVM")
        f_id = pytensor.function([data], sl.inv_diag(Av, backend=be), mode="CVM")
        ys = (y**2).sum()
        f_sg = pytensor.function([data, bv], [ys, *pytensor.grad(ys, [data, bv])], mode="CVM")
        fns[f"{be}|factor"] = lambda be=be: _FACTORS.__setitem__(be, sl.factorize(A, "pos", be))
        fns[f"{be}|solve"] = lambda be=be: _FACTORS[be].solve(b)
        fns[f"{be}|logdet"] = _uncached(lambda f_ld=f_ld: f_ld(A.data))
        fns[f"{be}|logdet + grad"] = _uncached(lambda f_ldg=f_ldg: f_ldg(A.data))
        fns[f"{be}|inv_diag"] = _uncached(lambda f_id=f_id: f_id(A.data))
        fns[f"{be}|spsolve + grad"] = _uncached(lambda f_sg=f_sg: f_sg(A.data, b))
    Ac = sp.csc_matrix(A)
    if not big:
        lu = spla.splu(Ac, permc_spec="MMD_AT_PLUS_A")
        fill["splu MMD_AT_PLUS_A"] = lu.L.nnz + lu.U.nnz - n
        fns["splu MMD_AT_PLUS_A|factor"] = lambda: spla.splu(Ac, permc_spec="MMD_AT_PLUS_A")
        fns["splu MMD_AT_PLUS_A|solve"] = lambda: lu.solve(b)
    if n <= 200_000:  # COLAMD at n = 10⁶: 21 s
        lu_c = spla.splu(Ac)
        fill["splu COLAMD"] = lu_c.L.nnz + lu_c.U.nnz - n
        fns["splu COLAMD|factor"] = lambda: spla.splu(Ac)
        fns["splu COLAMD|solve"] = lambda: lu_c.solve(b)
    if n <= dense_max:
        M = pt.dmatrix("M")
        ld_d = 2 * pt.log(pt.diag(pt.linalg.cholesky(M))).sum()
        # PyTensor's default backend (Numba: LAPACK through SciPy), what a user gets
        f_d = pytensor.function([M], [ld_d, pytensor.grad(ld_d, M)], mode="NUMBA")
        f_dl = pytensor.function([M], ld_d, mode="NUMBA")
        f_ds = pytensor.function([M, bv], pt.linalg.solve(M, bv, assume_a="pos"), mode="NUMBA")
        Ad = A.toarray()
        fns["dense pt.linalg|logdet"] = lambda: f_dl(Ad)
        fns["dense pt.linalg|logdet + grad"] = lambda: f_d(Ad)
        fns["dense pt.linalg|solve"] = lambda: f_ds(Ad, b)
    if big:  # n = 10⁶: one call each of the factorization and logdet + gradient, no warm-up
        fns = {k: v for k, v in fns.items() if k.endswith(("|factor", "|logdet + grad"))}
    else:
        for fn in fns.values():  # warm-up (compilation, Numba kernels)
            fn()
    stats = interleaved(fns, repeats=repeats, min_sample_s=0.0)
    tools = list(dict.fromkeys(k.split("|")[0] for k in fns))
    cols = ["factor", "solve", "logdet", "logdet + grad", "inv_diag", "spsolve + grad"]
    lines = [
        f"\n**2-D Laplacian + I, n = {n:,} (m = {m}), nnz = {A.nnz:,}**\n",
        "| tool | fill nnz(L) | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for t in tools:
        cells = [_fmt(stats[f"{t}|{c}"].median) if f"{t}|{c}" in stats else "–" for c in cols]
        nnz = f"{fill[t]:,}" if t in fill else "–"
        lines.append(f"| {t} | {nnz} | " + " | ".join(cells) + " |")
    return lines


def block_banded(T: int, k: int, zero_diagonal: bool, seed: int = 0) -> sp.csc_matrix:
    """T periods of a k-equation block coupled to t-1 (6 states) and t+1 (8 forward vars)."""
    rng = np.random.default_rng(seed)

    def block(density, cols=None):
        B = (rng.random((k, k)) < density) * rng.standard_normal((k, k))
        if cols is not None:
            keep = np.zeros(k, bool)
            keep[cols] = True
            B[:, ~keep] = 0
        return B

    perm = rng.permutation(k) if zero_diagonal else np.arange(k)
    C = block(0.15) + 4 * np.eye(k)[perm]  # strong entries on a (permuted) diagonal
    P = block(0.3, np.arange(6))
    N = block(0.3, np.arange(6, 14))
    A = (
        sp.kron(sp.eye(T), C)
        + sp.kron(sp.eye(T, k=-1), P)  # row block t uses x_{t-1}
        + sp.kron(sp.eye(T, k=1), N)  # and x_{t+1}
    )
    return sp.csc_matrix(A)


def _time_orderings(A, b, repeats):
    fns = {}
    info = {}
    for spec in ("COLAMD", "MMD_AT_PLUS_A", "MMD_ATA", "NATURAL"):
        lu = spla.splu(A, permc_spec=spec)
        info[spec] = (lu.L.nnz + lu.U.nnz, int(np.sum(lu.perm_r != lu.perm_c)))
        fns[f"{spec}|factor"] = lambda spec=spec: spla.splu(A, permc_spec=spec)
        fns[f"{spec}|solve"] = lambda lu=lu: lu.solve(b)
    f_auto = sl.factorize(A)  # first sight of the pattern: the choice is made here
    fns["auto|factor"] = lambda: sl.factorize(A)
    fns["auto|solve"] = lambda: f_auto.solve(b)
    info["auto"] = (f_auto.nnz_factor + A.shape[0], None)
    return interleaved(fns, repeats=repeats, min_sample_s=0.0), info


def bench_banded(repeats: int) -> list[str]:
    lines = [
        "\n**LU of block-banded systems (T = 1000 periods × 23 equations, n = 23 000)**\n",
        "| diagonal | ordering | fill nnz(L+U) | factor | solve | off-diagonal pivots |",
        "|---|---|---|---|---|---|",
    ]
    for zero_diag in (False, True):
        A = block_banded(1000, 23, zero_diag)
        stats, info = _time_orderings(A, np.ones(A.shape[0]), repeats)
        label = "zero (equations permuted)" if zero_diag else "strong"
        for spec, (nnz, piv) in info.items():
            name = "sd.linalg auto" if spec == "auto" else spec
            lines.append(
                f"| {label} | {name} | {nnz:,} | {_fmt(stats[f'{spec}|factor'].median)} | "
                f"{_fmt(stats[f'{spec}|solve'].median)} | {'' if piv is None else piv} |"
            )
    lines += [
        "\n**Zero diagonal, 8 random draws of the blocks (one factorization each)**\n",
        "| seed | MMD_AT_PLUS_A fill | factor | COLAMD fill | factor | sd.linalg auto |",
        "|---|---|---|---|---|---|",
    ]
    for seed in range(8):
        A = block_banded(1000, 23, True, seed=seed)
        row = [str(seed)]
        for spec in ("MMD_AT_PLUS_A", "COLAMD"):
            t0 = time.perf_counter()
            lu = spla.splu(A, permc_spec=spec)
            row += [f"{lu.L.nnz + lu.U.nnz:,}", _fmt(time.perf_counter() - t0)]
        t0 = time.perf_counter()
        sl.factorize(A)
        row.append(_fmt(time.perf_counter() - t0))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def bench_newton(T: int) -> list[str]:
    """``sd.NewtonSolver`` on a plain-PyTensor stacked model: T periods of a nonlinear
    23-equation block (equations not ordered by variable), x_{t-1} and x_{t+1} coupled."""
    import pytensor.tensor as pt

    import sparsediff as sd

    k = 23
    rng = np.random.default_rng(0)

    def block(density, cols=None):
        B = (rng.random((k, k)) < density) * rng.standard_normal((k, k)) * 0.3
        if cols is not None:
            keep = np.zeros(k, bool)
            keep[cols] = True
            B[:, ~keep] = 0
        return B

    perm = rng.permutation(k)  # drawn first: this draw fills badly under MMD_AT_PLUS_A
    C = block(0.15) + 4 * np.eye(k)[perm]
    P, N = block(0.3, np.arange(6)), block(0.3, np.arange(6, 14))
    x = pt.dvector("x", shape=(T * k,))
    X = x.reshape((T, k))
    Xp = pt.concatenate([pt.zeros((1, k)), X[:-1]])
    Xn = pt.concatenate([X[1:], pt.zeros((1, k))])
    F = (X @ C.T + pt.tanh(Xp) @ P.T + 0.1 * (Xn**2) @ N.T + 0.05 * pt.exp(0.1 * X) - 0.3).ravel()
    x0 = np.zeros(T * k)
    lines = [
        f"\n**sd.NewtonSolver, stacked model T = {T}, n = {T * k:,} (warm solve)**\n",
        "| linear solve | seconds | iterations |",
        "|---|---|---|",
    ]
    solver = sd.NewtonSolver(F, x)
    for name, opts in (
        (
            "splu MMD_AT_PLUS_A (NewtonSolver's default before sd.linalg)",
            {"permc_spec": "MMD_AT_PLUS_A"},
        ),
        ("splu COLAMD", {"permc_spec": "COLAMD"}),
    ):
        solver.solve(x0, linear_options=opts)
        t0 = time.perf_counter()
        r = solver.solve(x0, linear_options=opts)
        lines.append(f"| {name} | {_fmt(time.perf_counter() - t0)} | {r.nit} |")
    solver.solve(x0)  # the default: sd.linalg.factorize, ordering chosen per pattern
    t0 = time.perf_counter()
    r = solver.solve(x0)
    lines.append(
        f"| default (sd.linalg.factorize, auto ordering) | {_fmt(time.perf_counter() - t0)} "
        f"| {r.nit} |"
    )
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", default="100,300", help="grid sizes m (n = m²), comma-separated")
    ap.add_argument("--big", action="store_true", help="also m = 1000 (n = 10⁶), CHOLMOD only")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backends", default=",".join(sl.available_backends()))
    ap.add_argument("--dense-max", type=int, default=2500, help="largest n for dense pt.linalg")
    ap.add_argument("--no-banded", action="store_true")
    ap.add_argument("--newton", type=int, default=0, help="also sd.NewtonSolver at T periods")
    args = ap.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    print(f"backends available: {sl.available_backends()}; default SPD: {sl.backend('pos')}")
    t0 = time.perf_counter()
    out = []
    for m in (int(v) for v in args.m.split(",")):
        lines = bench_spd(m, backends, args.repeats, args.dense_max)
        print("\n".join(lines), flush=True)
        out += lines
    if args.big:
        big = [b for b in backends if b == "cholmod"] or backends[:1]
        lines = bench_spd(1000, big, 1, 0, big=True)
        print("\n".join(lines), flush=True)
        out += lines
    if not args.no_banded:
        lines = bench_banded(args.repeats)
        print("\n".join(lines), flush=True)
        out += lines
    if args.newton:
        lines = bench_newton(args.newton)
        print("\n".join(lines), flush=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
