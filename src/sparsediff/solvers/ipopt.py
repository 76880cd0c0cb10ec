"""Ipopt, through cyipopt: the callbacks with the sparse constraint Jacobian and Lagrangian Hessian.

>>> nlp = sd.ipopt_functions(cost, x, g).problem(lb, ub, cl, cu)   # cyipopt, if installed
>>> x_opt, info = nlp.solve(x0)

Ipopt asks for each sparsity structure once and then only for values in that order: exactly
what a plan gives.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from sparsediff._validate import as_expression, check_cost
from sparsediff.plans.hessian import hessian_plan
from sparsediff.plans.jacobian import jacobian_plan
from sparsediff.solvers.scipy_adapters import AdapterBase, compile_function

__all__ = ["IpoptFunctions", "ipopt_functions"]


class IpoptFunctions(AdapterBase):
    """The callbacks ``cyipopt.Problem`` wants, for ``min cost(x)`` s.t. ``cl ≤ g(x) ≤ cu``.

    Ipopt asks for the structure of the constraint Jacobian and of the Lagrangian's Hessian
    once (``jacobianstructure``, ``hessianstructure``: the planned patterns, the Hessian's lower
    triangle) and then for their values only, in the same order (``jacobian``, ``hessian``):
    exactly what a plan gives, so each call is one compiled function and a copy of ``data``.
    The Hessian is that of ``obj_factor · cost + λ · g``; its pattern holds for every
    ``obj_factor`` and ``λ``. With ``hessian=False``, :meth:`problem` lets Ipopt use L-BFGS.
    ``mode`` is the compile mode, ``jacobian_mode`` the AD direction of the constraint
    Jacobian; other keywords go to its plan.
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
        jacobian_mode="auto",
        **plan_kwargs,
    ):
        super().__init__(x, params, param_values)
        self.cost = check_cost(cost)
        inputs = [self.x, *self.params]
        self._fg = compile_function(inputs, [self.cost, pt.grad(self.cost, self.x).ravel()], mode)
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
            self.jacobian_plan = jacobian_plan(g, self.x, jacobian_mode, **plan_kwargs)
            lay = self.jacobian_plan.layouts[0]
            rows, cols = lay.rows, lay.cols
            self._g = compile_function(inputs, g, mode)
            self._J = compile_function(inputs, self.jacobian_plan.build(), mode)
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
            self._h = compile_function(
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
