"""What SciPy wants, from PyTensor graphs: ``fun``/``jac``/``hess`` callables with sparse matrices.

>>> f = sd.minimize_functions(cost, x)                       # cost + gradient, sparse Hessian
>>> minimize(f.fun, x0, jac=f.jac, hess=f.hess, method="trust-constr")
>>> r = sd.least_squares_functions(residual, x)              # residual, sparse Jacobian
>>> least_squares(r.fun, x0, jac=r.jac)
>>> con = sd.nonlinear_constraint(g, x, lb, ub)              # NonlinearConstraint, sparse jac
>>> o = sd.ode_functions(rhs, y, t)                          # f(t, y), sparse ∂f/∂y
>>> solve_ivp(o.fun, (0, 1), y0, method="BDF", jac=o.jac)
>>> nlp = sd.ipopt_functions(cost, x, g).problem(lb, ub, cl, cu)   # cyipopt, if installed

Each adapter plans its sparse derivative and compiles its PyTensor functions once, when it is
created; every call evaluates numbers only and returns a ``scipy.sparse`` matrix whose
``indices``/``indptr`` are the plan's (nothing about the structure is recomputed). Other inputs
of the graphs are given as ``params`` with their ``param_values`` (the attribute
``param_values`` may be reassigned between solves).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

__all__ = [
    "IpoptFunctions",
    "LeastSquaresFunctions",
    "MinimizeFunctions",
    "ODEFunctions",
    "ipopt_functions",
    "least_squares_functions",
    "minimize_functions",
    "nonlinear_constraint",
    "ode_functions",
]


def _check_x(x) -> Variable:
    from sparsediff.inputs import as_wrt_list

    if isinstance(x, list | tuple):
        raise TypeError("SciPy works with one flat vector of unknowns: give one variable x")
    (w,), _ = as_wrt_list(x)
    return w


def _check_params(params, param_values):
    params = list(params)
    for p in params:
        if not isinstance(p, Variable):
            raise TypeError(f"params must be PyTensor variables, got {type(p).__name__}")
    values = list(param_values)
    if len(values) != len(params):
        raise ValueError(f"{len(params)} params but {len(values)} param_values were given")
    return params, values


def _function(inputs, outputs, mode):
    return pytensor.function(inputs, outputs, mode=mode, on_unused_input="ignore")


class _Base:
    def __init__(self, x, params, param_values):
        self.x = _check_x(x)
        self.n = int(np.prod(self.x.type.shape, dtype=np.int64))
        self.params, self.param_values = _check_params(params, param_values)

    def _x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.x.dtype)
        if x.size != self.n:
            raise ValueError(f"x has {x.size} entries, the graph's x has {self.n}")
        return x.reshape(self.x.type.shape)


class MinimizeFunctions(_Base):
    """``fun``, ``jac`` (the dense gradient) and ``hess`` (sparse) of a scalar ``cost``.

    ``fun`` and ``jac`` come from one compiled function (cost and gradient together) whose last
    result is cached, so ``minimize`` calling both at the same ``x`` costs one evaluation;
    ``fun_and_jac`` returns both (for ``jac=True``). ``hess`` is built only when ``hessian``.
    """

    def __init__(
        self, cost, x, params=(), param_values=(), *, hessian=True, mode=None, **plan_kwargs
    ):
        from sparsediff.hessian import _check_cost, hessian_plan

        super().__init__(x, params, param_values)
        self.cost = _check_cost(cost)
        grad = pt.grad(self.cost, self.x).ravel()
        inputs = [self.x, *self.params]
        self._fg = _function(inputs, [self.cost, grad], mode)
        self._last: tuple[np.ndarray, float, np.ndarray] | None = None
        self.plan = None
        self._h = None
        if hessian:
            self.plan = hessian_plan(self.cost, self.x, **plan_kwargs)
            self._h = _function(inputs, self.plan.build(), mode)

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


class LeastSquaresFunctions(_Base):
    """``fun`` (the residual, flattened) and ``jac`` (its sparse Jacobian) for ``least_squares``.

    Two compiled functions, so trial points that SciPy rejects cost only the residual.
    """

    def __init__(self, residual, x, params=(), param_values=(), *, mode=None, **plan_kwargs):
        from sparsediff.inputs import as_expression
        from sparsediff.jacobian import jacobian_plan

        super().__init__(x, params, param_values)
        self.residual = as_expression(residual, "residual").ravel()
        self.m = int(np.prod(self.residual.type.shape, dtype=np.int64))
        inputs = [self.x, *self.params]
        self.plan = jacobian_plan(self.residual, self.x, **plan_kwargs)
        self._r = _function(inputs, self.residual, mode)
        self._J = _function(inputs, self.plan.build(), mode)

    def fun(self, x, *args) -> np.ndarray:
        return np.asarray(self._r(self._x(x), *self.param_values), dtype=float)

    def jac(self, x, *args):
        """The sparse Jacobian at ``x`` (``scipy.sparse``, CSR unless ``format="csc"``)."""
        return self._J(self._x(x), *self.param_values)


class ODEFunctions(_Base):
    """``fun(t, y)`` and ``jac(t, y)`` (sparse ∂f/∂y, CSC) for ``solve_ivp`` (BDF, Radau, LSODA).

    ``t`` is a scalar PyTensor variable the right-hand side may use, or ``None``.
    """

    def __init__(self, rhs, y, t=None, params=(), param_values=(), *, mode=None, **plan_kwargs):
        from sparsediff.inputs import as_expression
        from sparsediff.jacobian import jacobian_plan

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
        self.plan = jacobian_plan(self.rhs, self.x, **plan_kwargs)
        inputs = [self.t, self.x, *self.params]
        self._f = _function(inputs, self.rhs, mode)
        self._J = _function(inputs, self.plan.build(), mode)

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
    **kwargs,
):
    """A ``scipy.optimize.NonlinearConstraint`` for ``lb ≤ g(x) ≤ ub`` with a sparse ``jac``.

    ``jac`` returns the sparse Jacobian of ``g``. With ``hessian``, ``hess(x, v)`` returns the
    sparse Hessian of ``v · g(x)`` (its pattern holds for every ``v``); otherwise SciPy's
    quasi-Newton default is kept. ``kwargs`` go to ``NonlinearConstraint`` (``keep_feasible``...).
    """
    from scipy.optimize import NonlinearConstraint

    from sparsediff.hessian import hessian_plan

    f = LeastSquaresFunctions(g, x, params, param_values, mode=mode)
    if hessian:
        v = pt.vector("v", shape=(f.m,), dtype=f.x.dtype)
        lagrangian = pt.dot(v, f.residual)
        plan = hessian_plan(lagrangian, f.x)
        h = _function([f.x, v, *f.params], plan.build(), mode)

        def hess(x, v):
            return h(f._x(x), np.asarray(v, dtype=f.x.dtype), *f.param_values)

        kwargs["hess"] = hess
    con = NonlinearConstraint(f.fun, lb, ub, jac=f.jac, **kwargs)
    con.functions = f
    return con


class IpoptFunctions(_Base):
    """The callbacks ``cyipopt.Problem`` wants, for ``min cost(x)`` s.t. ``cl ≤ g(x) ≤ cu``.

    Ipopt asks for the structure of the constraint Jacobian and of the Lagrangian's Hessian
    once (``jacobianstructure``, ``hessianstructure``: the planned patterns, the Hessian's lower
    triangle) and then for their values only, in the same order (``jacobian``, ``hessian``):
    exactly what a plan gives, so each call is one compiled function and a copy of ``data``.
    The Hessian is that of ``obj_factor · cost + λ · g``; its pattern holds for every
    ``obj_factor`` and ``λ``. With ``hessian=False``, :meth:`problem` lets Ipopt use L-BFGS.
    """

    def __init__(
        self,
        cost,
        x,
        constraints=None,
        params=(),
        param_values=(),
        *,
        hessian: bool = True,
        mode=None,
        **plan_kwargs,
    ):
        from sparsediff.hessian import _check_cost, hessian_plan
        from sparsediff.inputs import as_expression
        from sparsediff.jacobian import jacobian_plan

        super().__init__(x, params, param_values)
        self.cost = _check_cost(cost)
        inputs = [self.x, *self.params]
        self._fg = _function(inputs, [self.cost, pt.grad(self.cost, self.x).ravel()], mode)
        if constraints is None:
            g = pt.zeros((0,), dtype=self.x.dtype)
        else:
            g = as_expression(constraints, "constraints").ravel()
        self.g = g
        self.m = int(np.prod(g.type.shape, dtype=np.int64))
        self.jacobian_plan = None
        rows = cols = np.zeros(0, dtype=np.int64)
        if self.m:
            # Any format: the structure is the layout's (row, column) of each stored entry.
            self.jacobian_plan = jacobian_plan(g, self.x, **plan_kwargs)
            lay = self.jacobian_plan.layouts[0]
            rows, cols = lay.rows, lay.cols
            self._g = _function(inputs, g, mode)
            self._J = _function(inputs, self.jacobian_plan.build(), mode)
        self._jac_structure = (rows.astype(np.int64), cols.astype(np.int64))

        self.hessian_plan = None
        self._h = None
        if hessian:
            self.obj_factor = pt.scalar("obj_factor", dtype=self.x.dtype)
            self.lagrange = pt.vector("lagrange", shape=(self.m,), dtype=self.x.dtype)
            lagrangian = self.obj_factor * self.cost
            if self.m:
                lagrangian = lagrangian + pt.dot(self.lagrange, g)
            self.hessian_plan = hessian_plan(lagrangian, self.x)
            lay = self.hessian_plan.layout
            self._lower = lay.rows >= lay.cols  # Ipopt wants one triangle
            self._hess_structure = (
                lay.rows[self._lower].astype(np.int64),
                lay.cols[self._lower].astype(np.int64),
            )
            self._h = _function(
                [*inputs, self.obj_factor, self.lagrange], self.hessian_plan.build(), mode
            )

    def _cost_and_gradient(self, x):
        f, g = self._fg(self._x(x), *self.param_values)
        return float(f), np.asarray(g, dtype=float)

    def objective(self, x) -> float:
        return self._cost_and_gradient(x)[0]

    def gradient(self, x) -> np.ndarray:
        return self._cost_and_gradient(x)[1]

    def constraints(self, x) -> np.ndarray:
        if not self.m:
            return np.zeros(0)
        return np.asarray(self._g(self._x(x), *self.param_values), dtype=float)

    def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        return self._jac_structure

    def jacobian(self, x) -> np.ndarray:
        """The nonzeros of the constraint Jacobian, in the order of ``jacobianstructure``."""
        if not self.m:
            return np.zeros(0)
        return np.asarray(self._J(self._x(x), *self.param_values).data, dtype=float)

    def hessianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        if self._h is None:  # hessian=False: Ipopt's L-BFGS needs no structure
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return self._hess_structure

    def hessian(self, x, lagrange, obj_factor) -> np.ndarray:
        """The lower triangle of the Lagrangian's Hessian, in the order of
        ``hessianstructure``."""
        if self._h is None:
            raise ValueError("created with hessian=False")
        lam = np.asarray(lagrange, dtype=self.x.dtype).reshape(self.m)
        H = self._h(self._x(x), *self.param_values, np.asarray(obj_factor, self.x.dtype), lam)
        return np.asarray(H.data, dtype=float)[self._lower]

    def problem(self, lb=None, ub=None, cl=None, cu=None):
        """A ``cyipopt.Problem`` with these callbacks (``pip install cyipopt``); ``lb``/``ub``
        bound ``x``, ``cl``/``cu`` the constraints (``cl == cu`` for equalities)."""
        try:
            import cyipopt
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("ipopt_functions(...).problem() needs cyipopt") from err
        nlp = cyipopt.Problem(
            n=self.n,
            m=self.m,
            problem_obj=self,
            lb=None if lb is None else np.broadcast_to(np.asarray(lb, float), self.n),
            ub=None if ub is None else np.broadcast_to(np.asarray(ub, float), self.n),
            cl=None if cl is None else np.broadcast_to(np.asarray(cl, float), self.m),
            cu=None if cu is None else np.broadcast_to(np.asarray(cu, float), self.m),
        )
        if self._h is None:
            nlp.add_option("hessian_approximation", "limited-memory")
        return nlp


def ipopt_functions(
    cost, x, constraints=None, params=(), param_values=(), **kwargs
) -> IpoptFunctions:
    """Callbacks for Ipopt through cyipopt, with sparse constraint Jacobian and Hessian.

    >>> nlp = sd.ipopt_functions(cost, x, g).problem(lb, ub, cl, cu)
    >>> x_opt, info = nlp.solve(x0)
    """
    return IpoptFunctions(cost, x, constraints, params, param_values, **kwargs)
