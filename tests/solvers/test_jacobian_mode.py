"""``jacobian_mode=`` picks the AD direction wherever ``mode`` is PyTensor's compile mode (#12)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

import sparsediff as sd
from sparsediff.problems import bratu2d


@pytest.mark.parametrize("jacobian_mode", ["forward", "reverse"])
def test_newton_solver_takes_the_jacobian_mode(jacobian_mode):
    p = bratu2d(8)
    solver = sd.NewtonSolver(p.expression, p.x, mode="FAST_COMPILE", jacobian_mode=jacobian_mode)
    assert solver.plan.mode == jacobian_mode
    res = solver.solve(p.x0, tol=1e-10)
    assert res.success
    res2 = sd.newton(
        p.expression, p.x, x0=p.x0, tol=1e-10, mode="FAST_COMPILE", jacobian_mode=jacobian_mode
    )
    np.testing.assert_allclose(res2.x, res.x, rtol=1e-12, atol=1e-12)


def test_newton_solver_refuses_a_plan_with_options():
    p = bratu2d(4)
    plan = sd.jacobian_plan(p.expression, p.x, format="csc")
    with pytest.raises(ValueError, match="either plan="):
        sd.NewtonSolver(p.expression, p.x, plan=plan, jacobian_mode="reverse")


def test_adapters_take_the_jacobian_mode():
    n = 10
    x = pt.vector("x", shape=(n,))
    r = pt.concatenate([x**2 - 1.0, 0.1 * pt.sin(x[1:] - x[:-1])])
    ls = sd.least_squares_functions(r, x, mode="FAST_COMPILE", jacobian_mode="reverse")
    assert ls.plan.mode == "reverse"
    ode = sd.ode_functions(pt.sin(x) - x[::-1], x, mode="FAST_COMPILE", jacobian_mode="forward")
    assert ode.plan.mode == "forward"
    con = sd.nonlinear_constraint(r, x, 0.0, 1.0, mode="FAST_COMPILE", jacobian_mode="reverse")
    assert con.functions.plan.mode == "reverse"
    ip = sd.ipopt_functions(
        (x**2).sum(), x, r, hessian=False, mode="FAST_COMPILE", jacobian_mode="reverse"
    )
    assert ip.jacobian_plan.mode == "reverse"
    xv = np.linspace(0.5, 1.5, n)
    np.testing.assert_allclose(ls.jac(xv).toarray(), con.jac(xv).toarray(), rtol=1e-14)
