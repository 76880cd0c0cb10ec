"""``python -m sparsediff demo``: the whole pipeline on the built-in 2-D Bratu problem."""

from __future__ import annotations

import argparse
import sys
import time


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def demo(size: int, backend: str | None) -> int:
    import numpy as np
    import pytensor
    import scipy.sparse as sp

    import sparsediff as sd
    from sparsediff.problems import bratu2d

    problem = bratu2d(size)
    n = problem.n
    print(f"2-D Bratu (MINPACK-2 solid fuel ignition), {size}x{size} grid: n = {n:,} unknowns")

    pattern, t_detect = _timed(sd.jacobian_sparsity, problem.expression, problem.x)
    lower_bound = int(np.diff(pattern.indptr).max()) if pattern.nnz else 0
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
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparsediff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="sparse Jacobian of the 2-D Bratu residual")
    run.add_argument("--size", type=int, default=300, help="grid side N (n = N*N unknowns)")
    run.add_argument(
        "--backend", default=None, help='PyTensor mode: default Numba, "CVM" (C) or "JAX"'
    )
    args = parser.parse_args(argv)
    if args.size < 2:
        parser.error("--size must be at least 2")
    return demo(args.size, args.backend)


if __name__ == "__main__":
    sys.exit(main())
