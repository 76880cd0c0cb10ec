"""What SciPy wants, from PyTensor graphs: ``fun``/``jac``/``hess`` callables with sparse matrices.

>>> f = sd.minimize_functions(cost, x)                       # cost + gradient, sparse Hessian
>>> minimize(f.fun, x0, jac=f.jac, hess=f.hess, method="trust-constr")
>>> r = sd.least_squares_functions(residual, x)              # residual, sparse Jacobian
>>> least_squares(r.fun, x0, jac=r.jac)
>>> con = sd.nonlinear_constraint(g, x, lb, ub)              # NonlinearConstraint, sparse jac
>>> o = sd.ode_functions(rhs, y, t)                          # f(t, y), sparse ∂f/∂y
>>> solve_ivp(o.fun, (0, 1), y0, method="BDF", jac=o.jac)

(The Ipopt adapter, ``sd.ipopt_functions``, is :mod:`sparsediff.solvers.ipopt`.)

Each adapter plans its sparse derivative and compiles its PyTensor functions once, when it is
created; every call evaluates numbers only and returns a ``scipy.sparse`` matrix whose
``indices``/``indptr`` are the plan's (nothing about the structure is recomputed). Other inputs
of the graphs are given as ``params`` with their ``param_values`` (the attribute
``param_values`` may be reassigned between solves). ``mode`` is the PyTensor compile mode of
the functions (``None``: the default backend); ``jacobian_mode`` the AD direction of the sparse
Jacobian (``"auto"``, ``"forward"``, ``"reverse"``, ``"bidirectional"``: see
:func:`sparsediff.jacobian_plan`); other keywords go to the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from scipy.optimize import NonlinearConstraint

from sparsediff._validate import as_expression, as_wrt_list, check_cost
from sparsediff.plans.hessian import hessian_plan
from sparsediff.plans.jacobian import jacobian_plan

__all__ = [
    "LeastSquaresFunctions",
    "MinimizeFunctions",
    "ODEFunctions",
    "least_squares_functions",
    "minimize_functions",
    "nonlinear_constraint",
    "ode_functions",
]


def check_x(x) -> Variable:
    if isinstance(x, list | tuple):
        raise TypeError("SciPy works with one flat vector of unknowns: give one variable x")
    (w,), _ = as_wrt_list(x)
    return w


def check_params(params, param_values):
    params = list(params)
    for p in params:
        if not isinstance(p, Variable):
            raise TypeError(f"params must be PyTensor variables, got {type(p).__name__}")
    values = list(param_values)
    if len(values) != len(params):
        raise ValueError(f"{len(params)} params but {len(values)} param_values were given")
    return params, values


def compile_function(inputs, outputs, mode):
    return pytensor.function(inputs, outputs, mode=mode, on_unused_input="ignore")


class AdapterBase:
    """The unknown ``x``, its size and the parameters every adapter has."""

    def __init__(self, x, params, param_values):
        self.x = check_x(x)
        self.n = int(np.prod(self.x.type.shape, dtype=np.int64))
        self.params, self.param_values = check_params(params, param_values)

    def _vector_function_and_jacobian(self, expression, inputs, mode, plan_kwargs):
        """Plan the sparse Jacobian of ``expression`` (``jacobian_mode`` among ``plan_kwargs``
        is the plan's ``mode``); compile it and the expression apart, so that trial points a
        solver rejects cost only the expression."""
        jacobian_mode = plan_kwargs.pop("jacobian_mode", "auto")
        self.plan = jacobian_plan(expression, self.x, jacobian_mode, **plan_kwargs)
        value = compile_function(inputs, expression, mode)
        return value, compile_function(inputs, self.plan.build(), mode)

    def _x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.x.dtype)
        if x.size != self.n:
            raise ValueError(f"x has {x.size} entries, the graph's x has {self.n}")
        return x.reshape(self.x.type.shape)


class MinimizeFunctions(AdapterBase):
    """``fun``, ``jac`` (the dense gradient) and ``hess`` (sparse) of a scalar ``cost``.

    ``fun`` and ``jac`` come from one compiled function (cost and gradient together) whose last
    result is cached, so ``minimize`` calling both at the same ``x`` costs one evaluation;
    ``fun_and_jac`` returns both (for ``jac=True``). ``hess`` is built only when ``hessian``.
    """

    def __init__(
        self, cost, x, params=(), param_values=(), *, hessian=True, mode=None, **plan_kwargs
    ):
        super().__init__(x, params, param_values)
        self.cost = check_cost(cost)
        grad = pt.grad(self.cost, self.x).ravel()
        inputs = [self.x, *self.params]
        self._fg = compile_function(inputs, [self.cost, grad], mode)
        self._last: tuple[np.ndarray, float, np.ndarray] | None = None
        self.plan = None
        self._h = None
        if hessian:
            self.plan = hessian_plan(self.cost, self.x, **plan_kwargs)
            self._h = compile_function(inputs, self.plan.build(), mode)

    def fun_and_jac(self, x, *args) -> tuple[float, np.ndarray]:
        x = self._x(x)
        if self._last is not None and np.array_equal(self._last[0], x):
            return self._last[1], self._last[2]
        f, g = self._fg(x, *self.param_values)
        out = (float(f), np.array(g, dtype=float))
        self._last = (x.copy(), *out)
        return out

    def fun(self, x, *args) -> float:
        return self.fun_and_jac(x)[0]

    def jac(self, x, *args) -> np.ndarray:
        return self.fun_and_jac(x)[1]

    def hess(self, x, *args):
        """The sparse Hessian at ``x`` (``scipy.sparse`` CSR)."""
        if self._h is None:
            raise ValueError("created with hessian=False")
        return self._h(self._x(x), *self.param_values)


class LeastSquaresFunctions(AdapterBase):
    """``fun`` (the residual, flattened) and ``jac`` (its sparse Jacobian) for ``least_squares``.

    Two compiled functions, so trial points that SciPy rejects cost only the residual.
    """

    def __init__(self, residual, x, params=(), param_values=(), *, mode=None, **plan_kwargs):
        super().__init__(x, params, param_values)
        self.residual = as_expression(residual, "residual").ravel()
        self.m = int(np.prod(self.residual.type.shape, dtype=np.int64))
        inputs = [self.x, *self.params]
        self._r, self._J = self._vector_function_and_jacobian(
            self.residual, inputs, mode, plan_kwargs
        )

    def fun(self, x, *args) -> np.ndarray:
        return np.asarray(self._r(self._x(x), *self.param_values), dtype=float)

    def jac(self, x, *args):
        """The sparse Jacobian at ``x`` (``scipy.sparse``, CSR unless ``format="csc"``)."""
        return self._J(self._x(x), *self.param_values)


class ODEFunctions(AdapterBase):
    """``fun(t, y)`` and ``jac(t, y)`` (sparse ∂f/∂y, CSC) for ``solve_ivp`` (BDF, Radau, LSODA).

    ``t`` is a scalar PyTensor variable the right-hand side may use, or ``None``.
    """

    def __init__(self, rhs, y, t=None, params=(), param_values=(), *, mode=None, **plan_kwargs):
        super().__init__(y, params, param_values)
        self.rhs = as_expression(rhs, "rhs").ravel()
        m = int(np.prod(self.rhs.type.shape, dtype=np.int64))
        if m != self.n:
            raise ValueError(f"rhs has {m} elements but y has {self.n}: an ODE needs one per y")
        if t is None:
            t = pt.scalar("t", dtype=self.x.dtype)
        elif not isinstance(t, Variable) or t.ndim != 0:
            raise TypeError("t must be a scalar PyTensor variable or None")
        self.t = t
        plan_kwargs.setdefault("format", "csc")
        inputs = [self.t, self.x, *self.params]
        self._f, self._J = self._vector_function_and_jacobian(self.rhs, inputs, mode, plan_kwargs)

    def fun(self, t, y) -> np.ndarray:
        return np.asarray(self._f(t, self._x(y), *self.param_values), dtype=float)

    def jac(self, t, y):
        """The sparse Jacobian ∂f/∂y at ``(t, y)`` (``scipy.sparse``, CSC by default)."""
        return self._J(t, self._x(y), *self.param_values)


def minimize_functions(cost, x, params=(), param_values=(), **kwargs) -> MinimizeFunctions:
    """Callables for ``scipy.optimize.minimize``: ``fun``, ``jac``, ``hess`` (sparse)."""
    return MinimizeFunctions(cost, x, params, param_values, **kwargs)


def least_squares_functions(
    residual, x, params=(), param_values=(), **kwargs
) -> LeastSquaresFunctions:
    """Callables for ``scipy.optimize.least_squares``: ``fun`` and a sparse ``jac``."""
    return LeastSquaresFunctions(residual, x, params, param_values, **kwargs)


def ode_functions(rhs, y, t=None, params=(), param_values=(), **kwargs) -> ODEFunctions:
    """Callables for ``scipy.integrate.solve_ivp``: ``fun(t, y)`` and a sparse ``jac(t, y)``."""
    return ODEFunctions(rhs, y, t, params, param_values, **kwargs)


def nonlinear_constraint(
    g,
    x,
    lb=-np.inf,
    ub=np.inf,
    params: Sequence[Variable] = (),
    param_values: Sequence = (),
    *,
    hessian: bool = False,
    mode=None,
    jacobian_mode="auto",
    **kwargs,
):
    """A ``scipy.optimize.NonlinearConstraint`` for ``lb ≤ g(x) ≤ ub`` with a sparse ``jac``.

    ``jac`` returns the sparse Jacobian of ``g``. With ``hessian``, ``hess(x, v)`` returns the
    sparse Hessian of ``v · g(x)`` (its pattern holds for every ``v``); otherwise SciPy's
    quasi-Newton default is kept. ``mode`` is the compile mode, ``jacobian_mode`` the AD
    direction of the Jacobian. ``kwargs`` go to ``NonlinearConstraint`` (``keep_feasible``...).
    """
    f = LeastSquaresFunctions(g, x, params, param_values, mode=mode, jacobian_mode=jacobian_mode)
    if hessian:
        v = pt.vector("v", shape=(f.m,), dtype=f.x.dtype)
        lagrangian = pt.dot(v, f.residual)
        plan = hessian_plan(lagrangian, f.x)
        h = compile_function([f.x, v, *f.params], plan.build(), mode)

        def hess(x, v):
            return h(f._x(x), np.asarray(v, dtype=f.x.dtype), *f.param_values)

        kwargs["hess"] = hess
    con = NonlinearConstraint(f.fun, lb, ub, jac=f.jac, **kwargs)
    con.functions = f
    return con
