"""``sd.optimize.minimize``: ``min_x f(x, θ)`` inside a PyTensor graph, with a sparse Hessian.

Same signature and meaning as ``pytensor.tensor.optimize.minimize`` (initial guess = the value
of ``x`` at call time; other inputs are parameters; list ``x``; returns ``(x_star, success)``).
The Hessian is planned once (:func:`sparsediff.hessian_plan`), and ``f``, ``∇f`` and the sparse
``H`` come from one compiled call.

``method="newton"`` (default) is a line-search Newton method on ``f``: the step solves
``H d = −∇f`` with a sparse LDLᵀ (qdldl when installed, else SuperLU in symmetric mode); where
``H`` is not positive definite it is shifted, ``H + μI`` with μ grown tenfold until the
factorization succeeds (a Levenberg–Marquardt style regularization: the step is then a descent
direction; the number of shifted iterations is in the result's ``regularized``). The
backtracking line search asks for Armijo decrease of ``f`` itself — not of ‖∇f‖, which is why
this is not :class:`sparsediff.NewtonSolver` on ``∇f = 0``: that would converge to saddles and
maxima as readily as to minima. ``"trust-constr"`` and ``"Newton-CG"`` call
``scipy.optimize.minimize`` with the sparse Hessian (the methods there that accept one).

The gradient w.r.t. parameters: ``λ = H(x*)⁻¹ ḡ``, then ``ḡθ = −∂/∂θ (∇ₓf · λ)``, a mixed
second-order product computed as one pullback of ``∇ₓf`` (see :mod:`sparsediff.optimize._core`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence

import numpy as np
import pytensor
import scipy.sparse as sp
from pytensor.graph.fg import FunctionGraph
from pytensor.tensor.variable import TensorVariable
from scipy.optimize import OptimizeResult

from sparsediff._sparse_ops import matrix_sparse_products
from sparsediff.optimize import _factor
from sparsediff.optimize._core import OptimizeOp, find_parameters, pack_unknowns
from sparsediff.optimize.root import check_method, check_options
from sparsediff.plans.hessian import hessian_plan

__all__ = ["MINIMIZE_METHODS", "MinimizeOp", "minimize"]

MINIMIZE_METHODS = ("newton", "trust-constr", "Newton-CG")
_NEWTON_OPTIONS = ("tol", "rtol", "maxiter", "armijo", "min_step", "regularize", "verbose")
_DENSE_ONLY = ("trust-exact", "dogleg", "trust-ncg", "trust-krylov")
_NO_HESSIAN = ("BFGS", "L-BFGS-B", "CG", "Nelder-Mead", "Powell", "TNC", "SLSQP", "COBYLA")

# status codes, as in sparsediff.solvers.newton
CONVERGED, MAXITER, SINGULAR, NONFINITE, LINESEARCH, _, EVALUATION = range(7)


class MinimizeOp(OptimizeOp):
    """Minimize ``f(x, *params)`` in ``perform``; implicit gradient in ``pullback``."""

    _what = "sd.optimize.minimize"
    symmetric = True

    def __init__(self, fgraph: FunctionGraph, plan, method: str, optimizer_kwargs, mode):
        super().__init__()
        self.fgraph = fgraph  # outputs: [f, ∇f]
        self.implicit = fgraph.outputs[1]
        self.plan = plan
        self.method = method
        self.optimizer_kwargs = dict(optimizer_kwargs)
        self.mode = mode
        self._compiled = None

    def __str__(self):
        return (
            f"SparseMinimizeOp(method={self.method}, n={self.plan.shape[0]}, "
            f"colors={self.plan.n_colors})"
        )

    def _function(self):
        if self._compiled is None:
            f, g = self.fgraph.outputs
            H = self.plan.build()
            self._compiled = pytensor.function(list(self.fgraph.inputs), [f, g, H], mode=self.mode)
        return self._compiled

    def _evaluate(self, x, params):
        f, g, H = self._function()(x, *params)
        return float(f), np.asarray(g, dtype=float).ravel(), H

    def _matrix(self, x, params):
        return self._evaluate(x, params)[2]

    def _solve(self, x0, params):
        state = self.state
        state.x, state.factor = None, None
        x0 = np.asarray(x0, dtype=float).ravel()
        if self.method == "newton":
            result = self._newton(x0, params, **self.optimizer_kwargs)
        else:
            result = self._scipy(x0, params)
        state.x = np.array(result.x, dtype=float).ravel()
        state.params = [np.array(p, copy=True) for p in params]
        return result

    # ------------------------------------------------------------------------------------------
    def _newton(
        self,
        x,
        params,
        tol: float = 1e-8,
        rtol: float = 0.0,
        maxiter: int = 50,
        armijo: float = 1e-4,
        min_step: float = 1e-10,
        regularize: bool = True,
        verbose: bool = False,
    ):
        start = time.perf_counter()
        nfev = 0
        regularized = 0

        def evaluate(z):
            nonlocal nfev
            nfev += 1
            return self._evaluate(z, params)

        def finish(status, message, x, f, g, nit):
            norm = float(np.linalg.norm(g)) if g is not None else float("nan")
            if verbose:
                print(f"  {'converged' if status == CONVERGED else 'FAILED'}: {message}")
            return OptimizeResult(
                x=x,
                success=status == CONVERGED,
                status=status,
                message=message,
                fun=f,
                jac=g,
                norm=norm,
                nit=nit,
                nfev=nfev,
                regularized=regularized,
                timings={"total": time.perf_counter() - start},
            )

        if not np.all(np.isfinite(x)):
            return finish(NONFINITE, "x0 contains NaN or inf", x, None, None, 0)
        try:
            with np.errstate(all="ignore"):
                f, g, H = evaluate(x)
        except Exception as err:
            return finish(EVALUATION, f"evaluating f at x0 failed: {err}", x, None, None, 0)
        if not (np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(H.data))):
            return finish(NONFINITE, "f, ∇f or the Hessian is NaN or inf at x0", x, f, g, 0)
        gnorm = float(np.linalg.norm(g))
        target = max(tol, rtol * gnorm)
        eye = sp.identity(x.size, format="csc")
        for k in range(1, maxiter + 1):
            if verbose:
                print(f"  {k - 1:4d}  f = {f:.10e}  ‖∇f‖ = {gnorm:.3e}")
            if gnorm <= target:
                return finish(CONVERGED, f"‖∇f‖ = {gnorm:.3e} ≤ {target:.3e}", x, f, g, k - 1)
            with np.errstate(all="ignore"):
                try:
                    factor = _factor.spd(H)
                except _factor.NotSPDError:
                    factor = None
                if factor is None:
                    if not regularize:
                        return finish(
                            SINGULAR,
                            f"the Hessian is not positive definite at iteration {k - 1} "
                            "(regularize=False)",
                            x,
                            f,
                            g,
                            k - 1,
                        )
                    scale = max(float(abs(H).max()) if H.nnz else 1.0, 1e-300)
                    mu = 1e-8 * scale
                    for _ in range(40):
                        try:
                            factor = _factor.spd(H + mu * eye)
                            break
                        except _factor.NotSPDError:
                            mu *= 10.0
                    if factor is None:
                        return finish(
                            SINGULAR,
                            f"no shift made the Hessian positive definite at iteration {k - 1}",
                            x,
                            f,
                            g,
                            k - 1,
                        )
                    regularized += 1
                d = -factor.solve(g)
            self.state.factor = factor
            slope = float(g @ d)
            if not (np.all(np.isfinite(d)) and slope < 0):
                d, slope = -g, -gnorm * gnorm
            step, accepted = 1.0, None
            while step >= min_step:
                z = x + step * d
                try:
                    with np.errstate(all="ignore"):
                        fz, gz, Hz = evaluate(z)
                except Exception as err:
                    return finish(
                        EVALUATION, f"evaluating f failed at iteration {k}: {err}", x, f, g, k
                    )
                if np.isfinite(fz) and np.all(np.isfinite(gz)):
                    gz_norm = float(np.linalg.norm(gz))
                    decrease = fz <= f + armijo * step * slope
                    # Near the minimum f changes below its rounding: accept a step that keeps f
                    # within rounding and reduces ‖∇f‖.
                    flat = fz <= f + 16 * np.finfo(float).eps * abs(f) and gz_norm < gnorm
                    if decrease or flat:
                        accepted = (z, fz, gz, Hz, gz_norm)
                        break
                step *= 0.5
            if accepted is None:
                return finish(
                    LINESEARCH,
                    f"the line search found no decrease of f along the Newton step at "
                    f"iteration {k} (‖∇f‖ = {gnorm:.3e})",
                    x,
                    f,
                    g,
                    k - 1,
                )
            x, f, g, H, gnorm = accepted
            if not np.all(np.isfinite(H.data)):
                return finish(
                    NONFINITE, f"the Hessian has NaN or inf entries at iteration {k}", x, f, g, k
                )
        if gnorm <= target:
            return finish(CONVERGED, f"‖∇f‖ = {gnorm:.3e} ≤ {target:.3e}", x, f, g, maxiter)
        return finish(
            MAXITER,
            f"no convergence in maxiter = {maxiter} iterations: ‖∇f‖ = {gnorm:.3e} > {target:.3e}",
            x,
            f,
            g,
            maxiter,
        )

    # ------------------------------------------------------------------------------------------
    def _scipy(self, x0, params):
        from scipy.optimize import minimize as scipy_minimize

        cache: dict = {}

        def evaluate(z):
            key = z.tobytes()
            if cache.get("key") != key:
                cache.update(key=key, value=self._evaluate(z, params))
            return cache["value"]

        start = time.perf_counter()
        try:
            with np.errstate(all="ignore"):
                res = scipy_minimize(
                    lambda z: evaluate(z)[:2],
                    x0,
                    jac=True,
                    hess=lambda z: evaluate(z)[2],
                    method=self.method,
                    **self.optimizer_kwargs,
                )
        except Exception as err:
            return OptimizeResult(
                x=x0,
                success=False,
                status=EVALUATION,
                message=f"{self.method} failed: {err}",
                fun=None,
                norm=float("nan"),
                nit=0,
                nfev=0,
            )
        g = evaluate(res.x)[1]
        norm = float(np.linalg.norm(g))
        ok = bool(res.success and np.isfinite(norm) and np.isfinite(res.fun))
        return OptimizeResult(
            x=res.x,
            success=ok,
            status=0 if ok else 1,
            message=f"{self.method}: {res.message} (‖∇f‖ = {norm:.3e})",
            fun=res.fun,
            jac=g,
            norm=norm,
            nit=int(res.get("nit", res.get("niter", 0))),
            nfev=int(res.get("nfev", 0)),
            timings={"total": time.perf_counter() - start},
        )


def minimize(
    objective: TensorVariable,
    x: TensorVariable | Sequence[TensorVariable],
    method: str = "newton",
    jac: bool = True,
    hess: bool = False,
    use_vectorized_jac: bool = False,
    optimizer_kwargs: dict | None = None,
    *,
    mode=None,
    hessian_kwargs: dict | None = None,
    return_info: bool = False,
):
    """Minimize the scalar ``objective`` over ``x``, with a sparse Hessian; differentiable in θ.

    Parameters
    ----------
    objective
        A scalar float expression.
    x
        The unknown, or a list of them: float tensors with static shapes in the graph of
        ``objective``; their values at evaluation are the initial guess.
    method
        ``"newton"`` (default; sparse LDLᵀ, shifted when H is not positive definite, Armijo
        line search on f), ``"trust-constr"`` or ``"Newton-CG"`` (SciPy with the sparse
        Hessian). Methods that need a dense Hessian (``"trust-exact"``...) raise.
    jac, hess, use_vectorized_jac
        Accepted for compatibility with ``pytensor.tensor.optimize.minimize``; the exact gradient
        and sparse Hessian are always used (``jac=False`` raises).
    optimizer_kwargs
        ``"newton"``: ``tol`` (converged when ‖∇f‖₂ ≤ max(tol, rtol·‖∇f(x0)‖₂); 1e-8), ``rtol``,
        ``maxiter`` (50), ``armijo`` (1e-4), ``min_step`` (1e-10), ``regularize`` (True: shift an
        indefinite H; False: fail), ``verbose``. SciPy methods: ``tol``, ``options``, ...
    mode
        PyTensor mode of the inner function computing f, ∇f and H (``None``: the default).
    hessian_kwargs
        Options of :func:`sparsediff.hessian_plan`.
    return_info
        Also return ``{"nit": ..., "norm": ...}`` (iterations and final ‖∇f‖₂, symbolic).

    Returns
    -------
    x_star, success
        As ``pytensor.tensor.optimize.minimize``. A failed solve warns with the reason and has
        NaN gradients.
    """
    import pytensor.tensor as pt

    what = "sd.optimize.minimize"
    if method in _NO_HESSIAN:
        raise ValueError(
            f"{what}: method {method!r} uses no Hessian, and sparsediff's minimize is built on "
            f"the sparse one: use one of {', '.join(map(repr, MINIMIZE_METHODS))} (the default "
            f"'newton' converges in a few iterations), or pytensor.tensor.optimize.minimize for "
            f"{method!r} itself"
        )
    check_method(method, MINIMIZE_METHODS, what, _DENSE_ONLY)
    if not jac:
        raise ValueError(
            f"{what}: jac=False is not supported: sparsediff always uses the exact gradient and "
            "sparse Hessian (drop the argument)"
        )
    allowed = _NEWTON_OPTIONS if method == "newton" else _scipy_options()
    options = check_options(optimizer_kwargs, allowed, what, method)
    if not isinstance(objective, pytensor.graph.basic.Variable):
        raise TypeError(f"{what}: objective must be a PyTensor variable")
    objective = pt.as_tensor_variable(objective)
    if objective.ndim != 0:
        raise ValueError(
            f"{what}: the objective must be a scalar, got shape {objective.type.shape}"
        )
    if objective.dtype not in pt.type.continuous_dtypes:
        raise TypeError(f"{what}: the objective has dtype {objective.dtype}; it must be float")
    (objective,) = matrix_sparse_products([objective])  # ps.dot(z, W): see _sparse_ops.py
    packing, (objective,) = pack_unknowns([objective], x, what)
    params = find_parameters(objective, packing.flat)
    fgraph = FunctionGraph([packing.flat, *params], [objective])
    x_in = fgraph.inputs[0]
    fgraph.add_output(pytensor.grad(fgraph.outputs[0], x_in))
    kwargs = dict(hessian_kwargs or {})
    kwargs.setdefault("format", "csc")
    plan = hessian_plan(fgraph.outputs[0], x_in, **kwargs)
    op = MinimizeOp(fgraph, plan, method, options, mode)
    x_star, success, nit, norm = op(packing.initial_guess(), *params)
    solution = packing.unpack(x_star)
    if return_info:
        return solution, success, {"nit": nit, "norm": norm}
    return solution, success


def _scipy_options() -> set[str]:
    from scipy.optimize import minimize as scipy_minimize

    names = set(inspect.signature(scipy_minimize).parameters)
    return names - {"fun", "x0", "args", "method", "jac", "hess", "hessp"}
