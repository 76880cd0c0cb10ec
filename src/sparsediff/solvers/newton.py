"""Newton's method for square systems ``F(x, params) = 0`` given as PyTensor graphs.

>>> res = sd.newton(F, x, x0=x0)                      # sparse Jacobian, SuperLU, line search
>>> res.x, res.success, res.message, res.nit, res.timings

:class:`NewtonSolver` plans the sparse Jacobian once (detection, coloring), compiles ``F`` and
``J`` together into one PyTensor function, and then solves as often as wanted (other starts,
other parameter values). Each iteration solves ``J Δx = -F`` with SciPy's sparse LU (SuperLU,
through :mod:`sparsediff.linalg`'s factorization layer, which picks the ordering per pattern)
or a Krylov method, then backtracks along ``Δx`` until ``‖F‖`` decreases enough (Armijo).
Trial points are evaluated with the same compiled function, so the accepted trial's Jacobian is
the next iteration's: a full Newton step costs one call.

Failures (a singular Jacobian, NaN or inf in ``F`` or ``J``, a failed line search, too many
iterations) come back as ``success=False`` with a message, never as an exception from deep
inside SciPy or PyTensor; so does a non-square system given to :func:`newton` (``status`` 7).
Malformed arguments (a ``x0`` of the wrong shape, unknown options, and for
:class:`NewtonSolver` also a non-square system) raise ``ValueError``/``TypeError`` before any
work is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pytensor
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from pytensor.graph.basic import Variable
from scipy.optimize import OptimizeResult

from sparsediff._validate import as_expression, as_wrt_list
from sparsediff.linalg.factor import SingularMatrixError, factor_stats, factorize
from sparsediff.linalg.lu_ordering import check_ordering
from sparsediff.plans.jacobian import jacobian_plan

__all__ = ["LINEAR_SOLVERS", "NewtonResult", "NewtonSolver", "newton"]

#: Direct: ``"splu"`` (SuperLU through :func:`sparsediff.linalg.factorize`: ``ordering="auto"``
#: chooses the fill-reducing order by measured fill, once per pattern, unless ``ordering`` /
#: ``permc_spec`` is given), ``"spsolve"``.
#: Iterative (with an incomplete-LU preconditioner unless ``preconditioner=None``):
#: ``"gmres"``, ``"lgmres"``, ``"bicgstab"``. Or a callable ``solve(J, b) -> Δx``.
LINEAR_SOLVERS = ("splu", "spsolve", "gmres", "lgmres", "bicgstab")
_ITERATIVE = {"gmres": spla.gmres, "lgmres": spla.lgmres, "bicgstab": spla.bicgstab}

# status codes of NewtonResult
CONVERGED, MAXITER, SINGULAR, NONFINITE, LINESEARCH, LINEAR, EVALUATION, NOT_SQUARE = range(8)


class NewtonResult(OptimizeResult):
    """The outcome of :func:`newton`, an ``OptimizeResult`` (a dict with attribute access).

    ``x`` the last iterate; ``success``; ``status`` (0 converged, 1 maximum iterations,
    2 singular Jacobian, 3 NaN/inf in F or J, 4 line search failed, 5 linear solver failed,
    6 evaluation failed, 7 not a square system); ``message``; ``fun`` F at ``x``; ``norm``
    ‖F(x)‖₂; ``nit`` iterations; ``nfev`` evaluations of F and J (one compiled call each);
    ``history`` one dict per iteration (``iteration``, ``norm``, ``step`` the line-search step
    length, ``dx_norm``, ``time`` seconds since the start); ``timings`` seconds spent in
    ``plan``, ``build``, ``compile`` (when this call created the solver), ``evaluate``,
    ``linear_solve`` and ``total``; with ``linear_solver="splu"``, ``factorization``: how the
    last Jacobian was factored (``ordering`` chosen, ``pivoting``, ``fill`` nnz(L+U) − n,
    ``predicted`` fill of each candidate ordering, ``row_matching``, and ``analyses``: how many
    ordering analyses this solve ran — one for a new pattern, zero for one seen before).
    """


def square_system(F, x) -> tuple[Variable, Variable, int, str]:
    """``F`` (flat), ``x``, the number of unknowns, and why the system is not square ("" if it
    is). Arguments that are not a system at all raise."""
    if isinstance(x, list | tuple):
        raise TypeError("newton takes one unknown variable x, not a list; concatenate them")
    (w,), _ = as_wrt_list(x)
    F = as_expression(F, "F")
    n = int(np.prod(w.type.shape, dtype=np.int64))
    m = int(np.prod(F.type.shape, dtype=np.int64))
    why = ""
    if m != n:
        why = (
            f"Newton's method needs a square system: F has {m} equations "
            f"(shape {tuple(F.type.shape)}) but x has {n} unknowns (shape {tuple(w.type.shape)}); "
            "for over- or underdetermined systems use scipy.optimize.least_squares with "
            "sparsediff.least_squares_functions"
        )
    return F.ravel() if F.ndim != 1 else F, w, n, why


def _as_system(F, x) -> tuple[Variable, Variable, int]:
    F, w, n, why = square_system(F, x)
    if why:
        raise ValueError(why)
    return F, w, n


class NewtonSolver:
    """A compiled Newton solver for ``F(x, *params) = 0``; see :func:`newton` for the options.

    The Jacobian's plan, graph and the compiled function ``[x, *params] -> [F, J]`` are made
    once, here; :meth:`solve` only evaluates and solves.
    """

    def __init__(
        self,
        F,
        x,
        params: Sequence[Variable] = (),
        *,
        linear_solver: str | Callable = "splu",
        mode=None,
        jacobian_mode="auto",
        plan=None,
        **plan_kwargs,
    ):
        if not (callable(linear_solver) or linear_solver in LINEAR_SOLVERS):
            raise ValueError(
                f"unknown linear_solver {linear_solver!r}: use one of "
                f"{', '.join(map(repr, LINEAR_SOLVERS))} or a callable solve(J, b)"
            )
        self.F, self.x, self.n = _as_system(F, x)
        self.params = list(params)
        for p in self.params:
            if not isinstance(p, Variable):
                raise TypeError(f"params must be PyTensor variables, got {type(p).__name__}")
        self.linear_solver = linear_solver
        self.last_factor = None  # the last LU of the Jacobian ("splu"): its ordering_info
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if plan is None:
            # CSC is what SuperLU factors: no conversion per iteration.
            plan_kwargs.setdefault("format", "csc")
            plan = jacobian_plan(self.F, self.x, jacobian_mode, **plan_kwargs)
        elif plan_kwargs or jacobian_mode != "auto":
            raise ValueError("give either plan= or jacobian_plan options, not both")
        self.plan = plan
        self.timings["plan"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        J = plan.build()
        self.timings["build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.function = pytensor.function([self.x, *self.params], [self.F, J], mode=mode)
        self.timings["compile"] = time.perf_counter() - t0

    # ----------------------------------------------------------------------------------------

    def _evaluate(self, x, param_values):
        f, J = self.function(x.reshape(self.x.type.shape), *param_values)
        return np.asarray(f, dtype=float).ravel(), J

    def _linear_solve(self, J, b, options):
        solver = self.linear_solver
        if callable(solver):
            return np.asarray(solver(J, b), dtype=float).ravel(), ""
        if solver == "splu":
            # sparsediff.linalg's LU: "auto" chooses the ordering by measured fill on the first
            # factorization of the pattern (after a row matching) and keeps it, with diagonal
            # pivoting, for every later iteration (sparsediff.linalg.lu_ordering)
            factor = factorize(
                J,
                "gen",
                ordering=options.get("ordering", options.get("permc_spec")),
                diag_pivot_thresh=options.get("diag_pivot_thresh"),
                check_finite=False,
            )
            self.last_factor = factor
            return factor.solve(b), ""
        if solver == "spsolve":
            return spla.spsolve(sp.csc_matrix(J), b), ""
        J = sp.csr_matrix(J)
        M = None
        if options.get("preconditioner", "ilu") == "ilu":
            ilu = spla.spilu(
                sp.csc_matrix(J),
                drop_tol=options.get("drop_tol", 1e-5),
                fill_factor=options.get("fill_factor", 10),
            )
            M = spla.LinearOperator(J.shape, ilu.solve, dtype=float)
        elif options.get("preconditioner") is not None:
            M = options["preconditioner"]
        kw = {"rtol": options.get("rtol", 1e-10), "atol": 0.0, "M": M}
        if "maxiter" in options:
            kw["maxiter"] = options["maxiter"]
        dx, info = _ITERATIVE[solver](J, b, **kw)
        note = "" if info == 0 else f"{solver} did not reach its tolerance (info={info})"
        return dx, note

    def solve(
        self,
        x0,
        param_values: Sequence = (),
        *,
        tol: float = 1e-8,
        rtol: float = 0.0,
        maxiter: int = 50,
        line_search: bool = True,
        armijo: float = 1e-4,
        min_step: float = 1e-10,
        linear_options: dict | None = None,
        verbose: bool = False,
        callback: Callable | None = None,
    ) -> NewtonResult:
        """Solve from ``x0``; converged when ``‖F‖₂ ≤ max(tol, rtol·‖F(x0)‖₂)``."""
        start = time.perf_counter()
        x = np.array(x0, dtype=float)
        if x.size != self.n:
            raise ValueError(
                f"x0 has {x.size} entries (shape {x.shape}), x has {self.n} "
                f"(shape {tuple(self.x.type.shape)})"
            )
        x = x.ravel()
        param_values = list(param_values)
        if len(param_values) != len(self.params):
            raise ValueError(
                f"{len(self.params)} params but {len(param_values)} param_values were given"
            )
        if maxiter < 0:
            raise ValueError(f"maxiter must be non-negative, got {maxiter}")
        options = dict(linear_options or {})
        if self.linear_solver == "splu":
            check_ordering(options.get("ordering", options.get("permc_spec")))
        self.last_factor = None
        analyses = factor_stats()["lu_analyses"]
        timings = {"evaluate": 0.0, "linear_solve": 0.0}
        history: list[dict] = []
        nfev = 0

        def evaluate(z):
            nonlocal nfev
            t = time.perf_counter()
            try:
                out = self._evaluate(z, param_values)
            finally:
                timings["evaluate"] += time.perf_counter() - t
                nfev += 1
            return out

        def finish(status, message, x, f, nit):
            timings["total"] = time.perf_counter() - start
            norm = float(np.linalg.norm(f)) if f is not None else float("nan")
            res = NewtonResult(
                x=x.reshape(self.x.type.shape),
                success=status == CONVERGED,
                status=status,
                message=message,
                fun=f,
                norm=norm,
                nit=nit,
                nfev=nfev,
                history=history,
                timings=timings,
            )
            if self.last_factor is not None:
                res.factorization = dict(
                    self.last_factor.ordering_info,
                    analyses=factor_stats()["lu_analyses"] - analyses,
                )
            if verbose:
                print(f"  {'converged' if res.success else 'FAILED'}: {message}")
            return res

        def log(k, norm, step, dx_norm):
            entry = {
                "iteration": k,
                "norm": norm,
                "step": step,
                "dx_norm": dx_norm,
                "time": time.perf_counter() - start,
            }
            history.append(entry)
            if verbose:
                s = "" if step is None else f"{step:9.3g}"
                d = "" if dx_norm is None else f"{dx_norm:11.3e}"
                print(f"  {k:4d}  {norm:12.4e}  {s:>9}  {d:>11}  {entry['time']:8.3f}")
            if callback is not None:
                callback(dict(entry, x=x))

        if verbose:
            print(f"  {'iter':>4}  {'‖F‖':>12}  {'step':>9}  {'‖Δx‖':>11}  {'time s':>8}")
        if not np.all(np.isfinite(x)):
            return finish(NONFINITE, "x0 contains NaN or inf", x, None, 0)
        try:
            f, J = evaluate(x)
        except Exception as err:
            return finish(EVALUATION, f"evaluating F and J at x0 failed: {err}", x, None, 0)
        bad = _nonfinite(f, J)
        if bad:
            return finish(NONFINITE, f"{bad} at the starting point x0", x, f, 0)
        norm = float(np.linalg.norm(f))
        target = max(tol, rtol * norm)
        log(0, norm, None, None)
        for k in range(1, maxiter + 1):
            if norm <= target:
                return finish(CONVERGED, f"‖F‖ = {norm:.3e} ≤ {target:.3e}", x, f, k - 1)
            t = time.perf_counter()
            try:
                with np.errstate(all="ignore"):
                    dx, note = self._linear_solve(J, -f, options)
            except (RuntimeError, SingularMatrixError) as err:  # "Factor is exactly singular"
                timings["linear_solve"] += time.perf_counter() - t
                if "singular" in str(err).lower():
                    return finish(
                        SINGULAR,
                        f"the Jacobian is singular at iteration {k - 1} ({err})",
                        x,
                        f,
                        k - 1,
                    )
                return finish(LINEAR, f"the linear solver failed: {err}", x, f, k - 1)
            except Exception as err:
                timings["linear_solve"] += time.perf_counter() - t
                return finish(LINEAR, f"the linear solver failed: {err}", x, f, k - 1)
            timings["linear_solve"] += time.perf_counter() - t
            if not np.all(np.isfinite(dx)):
                return finish(
                    SINGULAR,
                    f"the Jacobian is singular at iteration {k - 1} (the Newton step is not "
                    "finite)",
                    x,
                    f,
                    k - 1,
                )
            step, accepted = 1.0, None
            while step >= min_step:
                x_new = x + step * dx
                try:
                    f_new, J_new = evaluate(x_new)
                except Exception as err:
                    return finish(
                        EVALUATION, f"evaluating F and J failed at iteration {k}: {err}", x, f, k
                    )
                norm_new = float(np.linalg.norm(f_new)) if np.all(np.isfinite(f_new)) else np.inf
                if not line_search or norm_new <= (1 - armijo * step) * norm:
                    accepted = (x_new, f_new, J_new, norm_new)
                    break
                step *= 0.5
            if accepted is None:
                why = f"; {note}" if note else ""
                return finish(
                    LINESEARCH,
                    f"the line search found no decrease of ‖F‖ (= {norm:.3e}) along the Newton "
                    f"step at iteration {k}, down to step {min_step:g}{why}: the Jacobian may "
                    "be (nearly) singular or x0 too far from a solution",
                    x,
                    f,
                    k - 1,
                )
            x, f, J, norm = accepted
            bad = _nonfinite(f, J)
            if bad:
                return finish(NONFINITE, f"{bad} at iteration {k}", x, f, k)
            log(k, norm, step, float(np.linalg.norm(step * dx)))
        if norm <= target:
            return finish(CONVERGED, f"‖F‖ = {norm:.3e} ≤ {target:.3e}", x, f, maxiter)
        return finish(
            MAXITER,
            f"no convergence in maxiter = {maxiter} iterations: ‖F‖ = {norm:.3e} > {target:.3e}",
            x,
            f,
            maxiter,
        )


def _nonfinite(f, J) -> str:
    nf = int(np.size(f) - np.count_nonzero(np.isfinite(f)))
    if nf:
        return f"F has {nf} NaN or inf entries"
    data = getattr(J, "data", np.asarray(J))
    nj = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if nj:
        return f"the Jacobian has {nj} NaN or inf entries"
    return ""


def newton(
    F,
    x,
    params: Sequence[Variable] = (),
    *,
    x0,
    param_values: Sequence = (),
    tol: float = 1e-8,
    rtol: float = 0.0,
    maxiter: int = 50,
    linear_solver: str | Callable = "splu",
    linear_options: dict | None = None,
    line_search: bool = True,
    verbose: bool = False,
    callback: Callable | None = None,
    mode=None,
    jacobian_mode="auto",
    **plan_kwargs,
) -> NewtonResult:
    """Solve the square system ``F(x, *params) = 0`` by Newton's method with a sparse Jacobian.

    ``F``: a PyTensor expression with as many elements as ``x`` (any shapes; C order).
    ``x``: the unknown, a float tensor with a static shape. ``params``/``param_values``: other
    inputs of ``F`` and their values. Converged when ``‖F‖₂ ≤ max(tol, rtol·‖F(x0)‖₂)``.
    ``linear_solver``: ``"splu"`` (default; ``linear_options`` ``ordering`` — ``"auto"``, the
    default, chooses SuperLU's ordering by measured fill on the first factorization and keeps it
    for the whole solve; or ``"COLAMD"``, ``"MMD_AT_PLUS_A"``, ``"MMD_ATA"``, ``"NATURAL"``,
    also accepted as ``permc_spec`` — and ``diag_pivot_thresh``), ``"spsolve"``,
    ``"gmres"``/``"lgmres"``/``"bicgstab"``
    (``linear_options`` ``rtol``, ``maxiter``, ``preconditioner`` = ``"ilu"`` (default),
    ``None`` or a ``LinearOperator``, ``drop_tol``, ``fill_factor``), or a callable
    ``solve(J, b) -> Δx``. ``line_search``: backtracking (halving) until
    ``‖F(x + t Δx)‖ ≤ (1 - 10⁻⁴ t)‖F(x)‖``. ``verbose``: print one line per iteration
    (iteration, ‖F‖, step, ‖Δx‖, time); ``callback(entry)`` gets the same dict plus ``x``.
    ``mode``: the PyTensor compile mode (``None`` = default backend); ``jacobian_mode``: the AD
    direction of the sparse Jacobian (``"auto"``, ``"forward"``, ``"reverse"``,
    ``"bidirectional"``). Other keywords go to
    :func:`sparsediff.jacobian_plan` (``sparsity=``, ``coloring=``...).

    Returns a :class:`NewtonResult`; a system that is not square gives ``success=False``,
    ``status=7`` and a message that says what to use instead. For many solves with one system,
    build a :class:`NewtonSolver` once and call its ``solve``.
    """
    _, _, _, why = square_system(F, x)
    if why:
        return NewtonResult(
            x=np.array(x0, dtype=float),
            success=False,
            status=NOT_SQUARE,
            message=why,
            fun=None,
            norm=float("nan"),
            nit=0,
            nfev=0,
            history=[],
            timings={},
        )
    solver = NewtonSolver(
        F,
        x,
        params,
        linear_solver=linear_solver,
        mode=mode,
        jacobian_mode=jacobian_mode,
        **plan_kwargs,
    )
    result = solver.solve(
        x0,
        param_values,
        tol=tol,
        rtol=rtol,
        maxiter=maxiter,
        line_search=line_search,
        linear_options=linear_options,
        verbose=verbose,
        callback=callback,
    )
    result.timings = {**solver.timings, **result.timings}
    return result
