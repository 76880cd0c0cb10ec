"""SciPy finite differences with column grouping: what many users fall back to.

``scipy.optimize._numdiff.group_columns`` on the given (analytic) pattern (coloring; SciPy has
no detection) and ``approx_derivative(fun, x, method="2-point", sparsity=(P, groups))`` on the
problem's NumPy residual; one extra residual evaluation per call for ``f(x)``. Finite
differences are not exact: the correctness check accepts a relative error up to
``TOLERANCE`` and the table reports the error. Hessians need a gradient: not run.
"""

from __future__ import annotations

import numpy as np

from benchmarks.peers import Built, Case, Skip, too_many_entries
from benchmarks.timing import Phase

TOLERANCE = 1e-4
MAX_COMPRESSED_ENTRIES = 1.2e8


def build(case: Case) -> Built:
    try:
        from scipy.optimize._numdiff import approx_derivative, group_columns
    except ImportError as exc:
        raise Skip(f"scipy.optimize._numdiff unavailable ({exc})") from None
    if case.hessian:
        raise Skip("finite differences of a gradient: the problem has no NumPy gradient")
    p = case.problem
    params = case.params
    x = np.asarray(case.x, dtype=float)
    P = case.pattern.tocsc()

    def fun(z):
        return p.residual_numpy(z, *params)

    built = Built(
        evaluate=lambda: None,
        to_scipy=lambda out: out,
        residual=lambda: fun(x),
        residual_key="numpy",
        mode="FD 2-point (pattern given)",
        tolerance=TOLERANCE,
    )
    built.phases["detection"] = 0.0
    with Phase() as ph:
        groups = group_columns(P)
    built.record("coloring", ph)
    built.n_colors = int(groups.max()) + 1 if groups.size else 0
    too_many_entries(built.n_colors, case, MAX_COMPRESSED_ENTRIES, "SciPy")
    with Phase() as ph:
        approx_derivative(fun, x, method="2-point", sparsity=(P, groups))
    built.record("first_call", ph)
    built.evaluate = lambda: approx_derivative(fun, x, method="2-point", sparsity=(P, groups))
    return built


TOOLS = {"SciPy FD": build}
