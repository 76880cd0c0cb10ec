"""``python -m sparsediff demo``: the whole pipeline on the built-in 2-D Bratu problem.

``python -m sparsediff precompile``: fill Numba's on-disk cache with sparsediff's own kernels
(coloring of every kind, detection, one small plan), so that the first plan of a later process
loads them instead of compiling them. This moves that compilation to install time
(``./dev`` runs it after installing); it does not remove it.
"""

from __future__ import annotations

import argparse
import sys
import time


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def demo(size: int, backend: str | None, plot: str | None = None, newton_tol: float = 1e-8) -> int:
    import numpy as np
    import pytensor
    import scipy.sparse as sp

    import sparsediff as sd
    from sparsediff.problems import bratu2d

    problem = bratu2d(size)
    n = problem.n
    print(f"2-D Bratu (MINPACK-2 solid fuel ignition), {size}x{size} grid: n = {n:,} unknowns")

    pattern, t_detect = _timed(sd.jacobian_sparsity, problem.expression, problem.x)
    lower_bound = sd.coloring.lower_bound(pattern, kind="column")  # what a column coloring needs
    print(f"  detection   {t_detect * 1e3:9.1f} ms   nnz = {pattern.nnz:,}  (5-point stencil)")
    if size <= 12:
        for row in pattern.toarray().astype(int):
            print("   ", "".join(".#"[v] for v in row))

    coloring, t_color = _timed(sd.color, pattern, kind="column")
    print(
        f"  coloring    {t_color * 1e3:9.1f} ms   {coloring.n_colors} colors "
        f"(lower bound {lower_bound}, order {coloring.order})"
    )

    plan, t_plan = _timed(
        sd.jacobian_plan, problem.expression, problem.x, sparsity=pattern, coloring=coloring
    )
    J, t_build = _timed(plan.build)
    inputs = [problem.x, *problem.params]
    fn, t_compile = _timed(pytensor.function, inputs, J, mode=backend)
    residual_fn = pytensor.function(inputs, problem.expression, mode=backend)
    args = [problem.x0, *problem.param_values]
    J_value, t_first = _timed(fn, *args)
    residual_fn(*args)
    jac_runs, res_runs = [], []
    for _ in range(15):  # interleaved, so both see the same machine load
        jac_runs.append(_timed(fn, *args)[1])
        res_runs.append(_timed(residual_fn, *args)[1])
    t_jac, t_res = np.median(jac_runs), np.median(res_runs)
    error = abs(sp.csr_array(J_value) - problem.jacobian(problem.x0, *problem.param_values)).max()
    print(f"  plan+build  {(t_plan + t_build) * 1e3:9.1f} ms   mode {plan.mode}")
    print(f"  compile     {t_compile * 1e3:9.1f} ms   backend {backend or 'default (Numba)'}")
    print(f"  first call  {t_first * 1e3:9.1f} ms")
    print(f"  residual    {t_res * 1e3:9.3f} ms   median of 15")
    print(f"  Jacobian    {t_jac * 1e3:9.3f} ms   median of 15, {t_jac / t_res:.2f}x the residual")
    print(f"  max |J - analytic J| = {error:.2e}")
    dense_bytes = 8 * n * n
    print(f"  the dense Jacobian would need {dense_bytes / 2**30:,.1f} GiB and {n:,} VJPs per call")

    print(f"Newton's method from the MINPACK-2 start (sparse LU), ‖F‖₂ ≤ {newton_tol:g}:")
    solver, t_newton_compile = _timed(
        sd.NewtonSolver, problem.expression, problem.x, problem.params, plan=plan, mode=backend
    )
    result = solver.solve(problem.x0, problem.param_values, tol=newton_tol, verbose=True)
    print(f"  compile     {t_newton_compile * 1e3:9.1f} ms   F and J in one function")
    print(
        f"  solve       {result.timings['total'] * 1e3:9.1f} ms   {result.nit} iterations, "
        f"final ‖F‖ = {result.norm:.2e}, {result.nfev} evaluations of F and J, "
        f"{result.timings['linear_solve'] * 1e3:.1f} ms in SuperLU"
    )
    if plot is not None:
        _plot(plot, pattern, coloring, size)
    return 0 if result.success else 1


def precompile() -> int:
    """Run every coloring kind and one small Jacobian and Hessian plan once (``cache=True``
    kernels are written to Numba's cache); print the CPU seconds it took."""
    import time

    import numpy as np
    import scipy.sparse as sp

    import sparsediff as sd
    from sparsediff.problems import bratu2d

    start = time.process_time()
    grid = bratu2d(12)
    P = sp.csr_array(grid.pattern(), dtype=bool)
    for kind in ("column", "row", "star", "acyclic", "bidirectional"):
        sd.color(P, kind=kind)
    # the improvement phase and every greedy order: a 13-point stencil (greedy > 13 colors)
    k = np.arange(100)
    i, j = k % 10, k // 10
    rows, cols = [], []
    for di in range(-2, 3):
        for dj in range(-2, 3):
            if abs(di) + abs(dj) <= 2:
                ok = (i + di >= 0) & (i + di < 10) & (j + dj >= 0) & (j + dj < 10)
                rows.append(k[ok])
                cols.append(k[ok] + di + 10 * dj)
    r, c = np.concatenate(rows), np.concatenate(cols)
    cavity = sp.csr_array((np.ones(r.size, dtype=bool), (r, c)), shape=(100, 100))
    for order in ("auto", "smallest_last", "incidence_degree", "dynamic_largest_first"):
        sd.color(cavity, order=order)
    sd.jacobian_plan(grid.expression, grid.x)
    sd.hessian_plan((grid.expression**2).sum(), grid.x)
    # the one-pass nonzeros of an affine slot layout (the driven cavity): its one signature
    from sparsediff.decompression.affine_rows import warm_up_kernel

    warm_up_kernel()
    print(f"sparsediff kernels compiled and cached in {time.process_time() - start:.1f} s CPU")
    return 0


def _plot(path: str, pattern, coloring, size: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  --plot needs matplotlib: pip install matplotlib", file=sys.stderr)
        return
    import sparsediff as sd

    n = pattern.shape[0]
    k = min(n, max(400, 4 * size))
    fig, ax = plt.subplots(figsize=(6, 6))
    colors = coloring.colors[:k] if coloring.kind == "column" else coloring.colors
    sd.plot_sparsity(pattern[:k, :k], colors, ax=ax)
    what = "" if k == n else f" (leading {k}×{k} block of {n}×{n})"
    ax.set_title(f"2-D Bratu Jacobian{what}: {coloring.n_colors} colors")
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    print(f"  sparsity pattern and coloring drawn to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparsediff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="sparse Jacobian of the 2-D Bratu residual")
    run.add_argument(
        "which",
        nargs="?",
        default="bratu",
        choices=("bratu", "laplace"),
        help="bratu (default) or laplace: the INLA step through sd.optimize.minimize",
    )
    run.add_argument("--size", type=int, default=None, help="grid side N (n = N*N unknowns)")
    run.add_argument(
        "--dense-size", type=int, default=32, help="laplace: grid side of the dense comparison"
    )
    run.add_argument(
        "--backend", default=None, help='PyTensor mode: default Numba, "CVM" (C) or "JAX"'
    )
    run.add_argument("--plot", default=None, metavar="FILE", help="draw the pattern and coloring")
    sub.add_parser("precompile", help="fill Numba's cache with sparsediff's kernels")
    args = parser.parse_args(argv)
    if args.command == "precompile":
        return precompile()
    if args.which == "laplace":
        from sparsediff.optimize.laplace import demo as laplace_demo

        size = 100 if args.size is None else args.size
        if size < 2 or args.dense_size < 0:
            parser.error("--size must be at least 2 and --dense-size non-negative")
        return laplace_demo(size, args.dense_size, backend=args.backend)
    size = 300 if args.size is None else args.size
    if size < 2:
        parser.error("--size must be at least 2")
    return demo(size, args.backend, plot=args.plot)


if __name__ == "__main__":
    sys.exit(main())
