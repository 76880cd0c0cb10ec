"""Coloring benchmark: sparsediff's coloring against asdex's and CasADi's, in one process.

    python benchmarks/bench_coloring.py [--n 1000000] [--problems bratu2d,brusselator2d,fd1d]
        [--repeat 3] [--no-peers] [--phases] [--clock wall|cpu]

Prints a markdown table (problem, n, nnz, tool, kind, order, colors, lower bound, seconds). The
seconds are the best of ``--repeat`` runs of the coloring alone, after one warm-up call on a
small pattern (Numba/JIT compilation excluded); converting the pattern into a peer's own
format is timed separately and reported in the notes. "lower bound" is the most nonzeros in a
row (column coloring), in a column (row coloring), or, for star colorings, the known optimum
where there is one (5-point stencil: 5; tridiagonal: 3) — no coloring can go below it.

``--phases`` adds, per problem, what ``auto`` spends on each of its phases for the column
coloring: the greedy orders it tries (best kept, stopping at the bound), the improvement phase
(greedy with tabu repair, :mod:`sparsediff.coloring.improve`) on that result, and — timed on
its own for comparison, although ``auto`` runs it only when the improvement phase removed no
color — iterated greedy (recoloring class by class).

asdex (``asdex.color_cols`` / ``color_rows`` use largest-first order; ``color_symmetric`` is
the 2007 star algorithm in largest-first order) and CasADi (``Sparsity.uni_coloring``,
``Sparsity.star_coloring`` / ``star_coloring2`` with ordering 1 = largest first) are included
when importable (``pip install jax asdex casadi``), else reported as "not installed".
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmarks.threads  # noqa: F401  (one BLAS thread, set before NumPy loads)

# isort: split
import numpy as np
import scipy.sparse as sp

import sparsediff as sd

# --------------------------------------------------------------------------------------------
# Patterns (structure only; built vectorized so that n = 10⁶ takes well under a second)
# --------------------------------------------------------------------------------------------


def bratu2d(n: int) -> sp.csr_array:
    """MINPACK-2 solid fuel ignition / 2-D Bratu: 5-point stencil on an N×N grid, N = √n."""
    N = max(1, round(math.sqrt(n)))
    k = np.arange(N * N)
    i, j = k % N, k // N
    rows, cols = [k], [k]
    for mask, off in ((i > 0, -1), (i < N - 1, 1), (j > 0, -N), (j < N - 1, N)):
        rows.append(k[mask])
        cols.append(k[mask] + off)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_array((np.ones(r.size, bool), (r, c)), shape=(N * N, N * N))


def brusselator2d(n: int) -> sp.csr_array:
    """2-D Brusselator, periodic, two species: n = 2N², 6 nonzeros per row (N ≥ 3)."""
    N = max(3, round(math.sqrt(n / 2)))
    I, J = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    I, J = I.ravel(order="F"), J.ravel(order="F")

    def idx(i, j, s):
        return (i % N) + N * (j % N) + N * N * s

    rows, cols = [], []
    for s in (0, 1):
        r = idx(I, J, s)
        for di, dj in ((-1, 0), (1, 0), (0, 1), (0, -1), (0, 0)):
            rows.append(r)
            cols.append(idx(I + di, J + dj, s))
        rows.append(r)
        cols.append(idx(I, J, 1 - s))
    r, c = np.concatenate(rows), np.concatenate(cols)
    P = sp.csr_array((np.ones(r.size, bool), (r, c)), shape=(2 * N * N, 2 * N * N))
    P.sum_duplicates()
    return P


def cavity2d(n: int) -> sp.csr_array:
    """MINPACK-2 driven cavity: the 13-point stencil ``|dx| + |dy| <= 2`` on an N×N grid,
    N = √n (optimum 13 colors, ``(i + 5j) mod 13``)."""
    N = max(1, round(math.sqrt(n)))
    k = np.arange(N * N)
    i, j = k % N, k // N
    rows, cols = [], []
    for di in range(-2, 3):
        for dj in range(-2 + abs(di), 3 - abs(di)):
            mask = (i + di >= 0) & (i + di < N) & (j + dj >= 0) & (j + dj < N)
            rows.append(k[mask])
            cols.append(k[mask] + di + N * dj)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_array((np.ones(r.size, bool), (r, c)), shape=(N * N, N * N))


def fd1d(n: int) -> sp.csr_array:
    """Tridiagonal (1-D finite differences)."""
    return sp.csr_array(sp.diags([1, 1, 1], [-1, 0, 1], shape=(n, n), dtype=bool))


PROBLEMS = {
    "bratu2d": bratu2d,
    "brusselator2d": brusselator2d,
    "cavity2d": cavity2d,
    "fd1d": fd1d,
}
KNOWN_STAR_OPTIMUM = {"bratu2d": 5, "fd1d": 3}


# --------------------------------------------------------------------------------------------


#: ``--clock cpu`` times with the process's CPU time (single-threaded work: about the wall time
#: of a quiet machine, and far less noisy than wall time when others' jobs share the cores).
CLOCK = time.perf_counter


def best_of(fn, repeat: int):
    best, out = math.inf, None
    for _ in range(repeat):
        t = CLOCK()
        out = fn()
        best = min(best, CLOCK() - t)
    return out, best


def ours(P, repeat: int, kinds_orders):
    rows = []
    for kind, order in kinds_orders:
        c, t = best_of(lambda kind=kind, order=order: sd.color(P, kind=kind, order=order), repeat)
        label = c.order if order == "auto" else order
        if order == "auto":
            label = f"auto → {c.order}"
            if c.method != ("star" if kind == "star" else "distance2"):
                label += f" ({c.method})"
            if c.recolor_passes:
                label += f" +{c.recolor_passes} recolor"
            if c.improved:
                label += f", improvement −{c.improved}"
        rows.append(("sparsediff", kind, label, c.n_colors, t))
    return rows


def phases(P, repeat: int):
    """``auto``'s column-coloring phases, each timed on its own (best of ``repeat``):
    ``(phase, colors, seconds)``."""
    from sparsediff.coloring import select
    from sparsediff.coloring.graphs import as_structure, bipartite
    from sparsediff.coloring.greedy import dsatur, recolor_by_classes
    from sparsediff.coloring.improve import improve_colors

    g = bipartite(as_structure(P))
    large = g.work() > select.AUTO_WORK_LIMIT
    orders = select.AUTO_ORDERS_LARGE if large else select.AUTO_ORDERS
    bound = sd.coloring.lower_bound(P, "column")
    rows = []
    greedy, t = best_of(lambda: sd.color(P, order=orders), repeat)
    rows.append((f"greedy orders ({len(orders)} at most) → {greedy.order}", greedy.n_colors, t))
    if greedy.n_colors <= bound:
        return rows
    order = dsatur(g)[1]
    sweeps = select.AUTO_IMPROVE_SWEEPS_LARGE if large else select.AUTO_IMPROVE_SWEEPS
    budget = sweeps * g.work()

    def improve():
        return improve_colors(g, greedy.colors, order, bound, budget, select.AUTO_IMPROVE_SEED)

    (colors, _, spent), t = best_of(improve, repeat)
    label = f"improvement (tabu repair, {spent / g.work():.1f} of {sweeps} sweeps of work)"
    rows.append((label, int(colors.max()) + 1, t))
    most = select.AUTO_RECOLOR_PASSES_LARGE if large else select.AUTO_RECOLOR_PASSES

    def recolor():
        colors = greedy.colors
        for _ in range(most):
            colors = recolor_by_classes(g, colors)
        return colors

    colors, t = best_of(recolor, repeat)
    rows.append((f"iterated greedy ({most} passes, for comparison)", int(colors.max()) + 1, t))
    return rows


def asdex_rows(P, repeat: int, notes: list[str]):
    try:
        import asdex
    except ImportError:
        return [("asdex", "-", "not installed", None, None)]
    coo = P.tocoo()
    t0 = time.perf_counter()
    pat = asdex.SparsityPattern.from_coo(coo.row, coo.col, P.shape)
    notes.append(f"asdex: building its SparsityPattern took {time.perf_counter() - t0:.3f} s")
    # star: asdex prunes unneeded colors after coloring only with postprocess=True; the count
    # compared here is the coloring itself
    out = []
    for kind, fn in (("column", asdex.color_cols), ("row", asdex.color_rows)):
        (_, k), t = best_of(lambda fn=fn: fn(pat), repeat)
        out.append(("asdex", kind, "largest_first", int(k), t))
    if P.shape[0] == P.shape[1]:
        res, t = best_of(lambda: asdex.color_symmetric(pat, postprocess=False), repeat)
        out.append(("asdex", "star", "largest_first", int(res[1]), t))
    return out


def casadi_rows(P, repeat: int, notes: list[str]):
    try:
        import casadi as ca
    except ImportError:
        return [("CasADi", "-", "not installed", None, None)]
    C = sp.csc_array(P)
    C.sort_indices()
    t0 = time.perf_counter()
    S = ca.Sparsity(P.shape[0], P.shape[1], C.indptr.tolist(), C.indices.tolist())
    notes.append(f"CasADi: building its Sparsity took {time.perf_counter() - t0:.3f} s")
    out = []
    c, t = best_of(lambda: S.uni_coloring(), repeat)
    out.append(("CasADi", "column", "natural (uni_coloring)", int(c.size2()), t))
    ST = S.T
    c, t = best_of(lambda: ST.uni_coloring(S), repeat)
    out.append(("CasADi", "row", "natural (uni_coloring of Pᵀ)", int(c.size2()), t))
    if P.shape[0] == P.shape[1]:
        for name in ("star_coloring", "star_coloring2"):
            c, t = best_of(lambda name=name: getattr(S, name)(1, 2**31 - 1), repeat)
            out.append(("CasADi", "star", f"largest_first ({name})", int(c.size2()), t))
    return out


def warm_up(peers: bool) -> None:
    P = bratu2d(400)
    sd.color(cavity2d(400))  # the improvement phase
    sd.color(brusselator2d(400), order=("dsatur", "natural"))
    phases(brusselator2d(400), 1)  # iterated greedy
    for kind in ("column", "row", "star"):
        for order in ("auto", "natural", "largest_first", "smallest_last", "dsatur"):
            sd.color(P, kind=kind, order=order)
    if peers:
        notes: list[str] = []
        asdex_rows(P, 1, notes)
        casadi_rows(P, 1, notes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of unknowns (columns)")
    ap.add_argument("--problems", default="bratu2d", help="comma-separated: " + ",".join(PROBLEMS))
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--no-peers", action="store_true", help="skip asdex and CasADi")
    ap.add_argument("--phases", action="store_true", help="time auto's phases (column)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="what to time")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    kinds_orders = [
        ("column", "natural"),
        ("column", "largest_first"),
        ("column", "smallest_last"),
        ("column", "dsatur"),
        ("column", "auto"),
        ("row", "natural"),
        ("row", "auto"),
        ("star", "natural"),
        ("star", "auto"),
    ]
    t0 = time.perf_counter()
    warm_up(not args.no_peers)
    print(f"<!-- warm-up (compilation) {time.perf_counter() - t0:.1f} s -->", file=sys.stderr)

    print("| problem | n | nnz | tool | kind | order | colors | lower bound | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    notes: list[str] = []
    for name in args.problems.split(","):
        P = PROBLEMS[name](args.n)
        n = P.shape[1]
        rows = ours(P, args.repeat, kinds_orders)
        if not args.no_peers:
            peer_notes: list[str] = []
            rows += asdex_rows(P, args.repeat, peer_notes)
            rows += casadi_rows(P, args.repeat, peer_notes)
            notes += [f"{name}, n = {n}: {note}" for note in peer_notes]
        for tool, kind, order, k, t in rows:
            if kind == "column":
                lb = sd.coloring.lower_bound(P, "column")
            elif kind == "row":
                lb = sd.coloring.lower_bound(P, "row")
            elif kind == "star":
                lb = KNOWN_STAR_OPTIMUM.get(name, "")
            else:
                lb = ""
            ks = "" if k is None else str(k)
            ts = "" if t is None else f"{t:.3f}"
            print(f"| {name} | {n} | {P.nnz} | {tool} | {kind} | {order} | {ks} | {lb} | {ts} |")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    if args.phases:
        print()
        print("| problem | n | phase of column auto | colors | lower bound | seconds |")
        print("|---|---|---|---|---|---|")
        for name in args.problems.split(","):
            P = PROBLEMS[name](args.n)
            lb = sd.coloring.lower_bound(P, "column")
            for phase, k, t in phases(P, args.repeat):
                print(f"| {name} | {P.shape[1]} | {phase} | {k} | {lb} | {t:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
