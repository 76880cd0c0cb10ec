"""``sd.optimize.root``: a square system ``F(x, θ) = 0`` solved inside a PyTensor graph.

Same signature and meaning as ``pytensor.tensor.optimize.root`` — the value of ``variables`` at
call time is the initial guess, every other input of ``equations`` is a parameter, a list of
variables works, the result is ``(x_star, success)`` — but the Jacobian is sparse: planned once
here (detection, coloring), computed together with ``F`` in one compiled call per Newton
iterate, factored by SuperLU, and the gradient w.r.t. the parameters is one transposed sparse
solve plus one pullback of ``F`` (see :mod:`sparsediff.optimize._core`).

Methods: ``"newton"`` (the default: :class:`sparsediff.NewtonSolver`, damped Newton with an
Armijo backtracking line search on ‖F‖) and ``"trf"`` (``scipy.optimize.least_squares``'s
trust-region reflective method, which accepts the sparse Jacobian: slower per iteration, more
robust far from a solution). SciPy's ``hybr``/``lm`` take dense Jacobians only and are refused.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence

import numpy as np
from pytensor.graph.fg import FunctionGraph
from pytensor.tensor.variable import TensorVariable
from scipy.optimize import OptimizeResult

from sparsediff._validate import as_expression
from sparsediff.optimize import _factor
from sparsediff.optimize._core import OptimizeOp, find_parameters, pack_unknowns
from sparsediff.plans.jacobian import jacobian_plan
from sparsediff.solvers.newton import NewtonSolver, square_system

__all__ = ["ROOT_METHODS", "RootOp", "root"]

ROOT_METHODS = ("newton", "trf")
_NEWTON_OPTIONS = ("tol", "rtol", "maxiter", "line_search", "armijo", "min_step", "verbose")
_DENSE_ONLY = ("hybr", "lm", "broyden1", "broyden2", "anderson", "linearmixing", "diagbroyden")


def _trf_options() -> set[str]:
    from scipy.optimize import least_squares

    names = set(inspect.signature(least_squares).parameters)
    return (names - {"fun", "x0", "jac", "method", "args", "kwargs", "jac_sparsity"}) | {"tol"}


def check_method(method: str, allowed: Sequence[str], what: str, dense_only=()) -> None:
    if method in dense_only:
        raise ValueError(
            f"{what}: method {method!r} works with a dense matrix (or none; SciPy rejects "
            "sparse ones there); "
            f"sparsediff offers {', '.join(map(repr, allowed))}. For {method!r} itself use "
            f"pytensor.tensor.optimize.{what.split('.')[-1]}"
        )
    if method not in allowed:
        raise ValueError(
            f"{what}: unknown method {method!r}; use one of {', '.join(map(repr, allowed))}"
        )


def check_options(options: dict | None, allowed, what: str, method: str) -> dict:
    options = dict(options or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"{what}: unknown optimizer_kwargs {unknown} for method {method!r}; "
            f"allowed: {sorted(allowed)}"
        )
    return options


class RootOp(OptimizeOp):
    """Solve ``F(x, *params) = 0`` in ``perform``; implicit gradient in ``pullback``.

    Built by :func:`root`; the Jacobian plan (``plan``) is made there, once.
    """

    _what = "sd.optimize.root"

    def __init__(self, fgraph: FunctionGraph, plan, method: str, optimizer_kwargs, mode):
        super().__init__()
        self.fgraph = fgraph
        self.implicit = fgraph.outputs[0]
        self.plan = plan
        self.method = method
        self.optimizer_kwargs = dict(optimizer_kwargs)
        self.mode = mode
        self._solver = None

    def __str__(self):
        n, colors = self.plan.shape[1], self.plan.n_colors
        return f"SparseRootOp(method={self.method}, n={n}, colors={colors})"

    # the compiled solver, built at the first evaluation ----------------------------------------
    @property
    def solver(self):
        if self._solver is None:
            x, *params = self.fgraph.inputs
            self._solver = NewtonSolver(
                self.implicit,
                x,
                params,
                linear_solver=self._linear_solve,
                mode=self.mode,
                plan=self.plan,
            )
        return self._solver

    def _function(self):
        return self.solver.function

    def _linear_solve(self, J, b):
        # The factor of every Newton step is kept: the last one serves the adjoint solve.
        factor = _factor.lu(J)
        self.state.factor = factor
        return factor.solve(b)

    def _matrix(self, x, params):
        _, J = self.solver.function(x, *params)
        return J

    def _solve(self, x0, params):
        state = self.state
        state.x, state.factor = None, None
        x0 = np.asarray(x0, dtype=float).ravel()
        if self.method == "newton":
            result = self.solver.solve(x0, params, **self.optimizer_kwargs)
            result.x = np.asarray(result.x).ravel()
        else:
            result = self._solve_trf(x0, params)
        state.x = np.array(result.x, dtype=float).ravel()
        state.params = [np.array(p, copy=True) for p in params]
        return result

    def _solve_trf(self, x0, params):
        from scipy.optimize import least_squares

        options = dict(self.optimizer_kwargs)
        tol = options.pop("tol", 1e-8)
        options.setdefault("ftol", 1e-12)
        options.setdefault("xtol", 1e-12)
        options.setdefault("gtol", 1e-12)
        fn = self.solver.function
        cache: dict = {}

        def evaluate(z):
            key = z.tobytes()
            if cache.get("key") != key:
                f, J = fn(z, *params)
                cache.update(key=key, f=np.asarray(f, dtype=float), J=J)
            return cache["f"], cache["J"]

        start = time.perf_counter()
        with np.errstate(all="ignore"):
            try:
                f0, _ = evaluate(x0)
            except Exception as err:
                return _failed(x0, f"evaluating F and J at x0 failed: {err}")
            if not np.all(np.isfinite(f0)):
                return _failed(x0, "F has NaN or inf entries at the starting point x0", f0)
            try:
                res = least_squares(
                    lambda z: evaluate(z)[0],
                    x0,
                    jac=lambda z: evaluate(z)[1],
                    method="trf",
                    **options,
                )
            except Exception as err:  # NaN mid-way, singular trust-region subproblem...
                return _failed(x0, f"least_squares failed: {err}")
        norm = float(np.linalg.norm(res.fun))
        ok = bool(np.isfinite(norm) and norm <= tol)
        message = f"‖F‖ = {norm:.3e} {'≤' if ok else '>'} {tol:.3e} (trf: {res.message})"
        return OptimizeResult(
            x=res.x,
            success=ok,
            status=0 if ok else 1,
            message=message,
            fun=res.fun,
            norm=norm,
            nit=int(res.nfev),
            nfev=int(res.nfev),
            timings={"total": time.perf_counter() - start},
        )


def _failed(x, message, f=None):
    norm = float(np.linalg.norm(f)) if f is not None else float("nan")
    return OptimizeResult(
        x=x, success=False, status=3, message=message, fun=f, norm=norm, nit=0, nfev=1
    )


def root(
    equations: TensorVariable,
    variables: TensorVariable | Sequence[TensorVariable],
    method: str = "newton",
    jac: bool = True,
    use_vectorized_jac: bool = False,
    optimizer_kwargs: dict | None = None,
    *,
    mode=None,
    jacobian_kwargs: dict | None = None,
    return_info: bool = False,
):
    """Find ``x`` with ``equations(x, θ) = 0``, with a sparse Jacobian; differentiable in θ.

    Parameters
    ----------
    equations
        A float tensor (any shape; flattened in C order) with as many entries as the unknowns.
    variables
        The unknown, or a list of them: float tensors with static shapes, inputs of the graph of
        ``equations``. Their values when the graph is evaluated are the initial guess.
    method
        ``"newton"`` (default; sparse LU, Armijo line search on ‖F‖) or ``"trf"``
        (``scipy.optimize.least_squares``). ``"hybr"``, ``"lm"``... raise: SciPy gives them
        dense Jacobians only.
    jac, use_vectorized_jac
        Accepted for compatibility with ``pytensor.tensor.optimize.root``; the exact sparse
        Jacobian is always used (``jac=False`` raises).
    optimizer_kwargs
        ``"newton"``: ``tol`` (converged when ‖F‖₂ ≤ max(tol, rtol·‖F(x0)‖₂); 1e-8), ``rtol``
        (0), ``maxiter`` (50), ``line_search`` (True), ``armijo`` (1e-4), ``min_step`` (1e-10),
        ``verbose``. ``"trf"``: ``tol`` (success when ‖F‖₂ ≤ tol) and the keywords of
        ``scipy.optimize.least_squares`` (``ftol``, ``xtol``, ``gtol``, ``max_nfev``...).
    mode
        PyTensor mode of the inner function computing F and J (``None``: the default).
    jacobian_kwargs
        Options of :func:`sparsediff.jacobian_plan` (``sparsity=``, ``coloring=``...).
    return_info
        Also return ``{"nit": ..., "norm": ...}``: symbolic iteration count and final ‖F‖₂.

    Returns
    -------
    x_star, success
        The solution (the last iterate if ``success`` is False), shaped like ``variables``
        (a list for a list), and a symbolic bool. A failed solve warns
        (:class:`~sparsediff.optimize.ConvergenceWarning`) with the reason and has NaN
        gradients. Gradients w.r.t. the initial guess are zero.
    """
    what = "sd.optimize.root"
    check_method(method, ROOT_METHODS, what, _DENSE_ONLY)
    if not jac:
        raise ValueError(
            f"{what}: jac=False is not supported: sparsediff always uses the exact sparse "
            "Jacobian (drop the argument)"
        )
    allowed = _NEWTON_OPTIONS if method == "newton" else _trf_options()
    options = check_options(optimizer_kwargs, allowed, what, method)
    equations = as_expression(equations, "equations")
    packing, (equations,) = pack_unknowns([equations], variables, what)
    F = equations.ravel() if equations.ndim != 1 else equations
    _, _, _, why = square_system(F, packing.flat)
    if why:
        raise ValueError(f"{what}: {why}")
    params = find_parameters(F, packing.flat)
    fgraph = FunctionGraph([packing.flat, *params], [F])
    kwargs = dict(jacobian_kwargs or {})
    kwargs.setdefault("format", "csc")  # what SuperLU factors
    plan = jacobian_plan(fgraph.outputs[0], fgraph.inputs[0], **kwargs)
    op = RootOp(fgraph, plan, method, options, mode)
    x_star, success, nit, norm = op(packing.initial_guess(), *params)
    solution = packing.unpack(x_star)
    if return_info:
        return solution, success, {"nit": nit, "norm": norm}
    return solution, success
