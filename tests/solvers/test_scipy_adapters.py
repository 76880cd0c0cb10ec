"""SciPy adapters: each drives its SciPy routine to the right answer with scipy.sparse matrices."""

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp
from scipy.optimize import NonlinearConstraint, least_squares, minimize

import sparsediff as sd
from sparsediff.problems import brusselator2d, energy2d, fd1d

MODE = "CVM"


def test_least_squares_sparse_jac():
    n = 20
    x = pt.vector("x", shape=(n,))
    residual = pt.concatenate([10 * (x[1:] - x[:-1] ** 2), 1 - x])  # 2n - 1 rows
    f = sd.least_squares_functions(residual, x, mode=MODE)
    J = f.jac(np.zeros(n))
    assert sp.issparse(J) and J.shape == (2 * n - 1, n)
    res = least_squares(f.fun, np.zeros(n), jac=f.jac)
    assert res.success
    np.testing.assert_allclose(res.x, np.ones(n), atol=1e-8)
    assert sp.issparse(res.jac)


def test_jacobian_structure_not_rebuilt_per_call():
    p = fd1d(8)
    f = sd.least_squares_functions(p.expression, p.x, mode=MODE)
    J1 = f.jac(np.zeros(8))
    data1 = J1.data.copy()
    J2 = f.jac(np.linspace(0, 1, 8))
    assert np.shares_memory(J1.indices, J2.indices) and np.shares_memory(J1.indptr, J2.indptr)
    np.testing.assert_array_equal(J1.data, data1)  # an earlier result is not overwritten
    np.testing.assert_allclose(J2.toarray(), p.jacobian(np.linspace(0, 1, 8)).toarray())


def test_minimize_trust_constr_sparse_hessian():
    p = energy2d(6)
    f = sd.minimize_functions(p.expression, p.x, mode=MODE)
    H = f.hess(p.x0)
    assert sp.issparse(H)
    np.testing.assert_allclose(H.toarray(), p.hessian(p.x0).toarray(), rtol=1e-12, atol=1e-12)
    res = minimize(
        f.fun, p.x0, jac=f.jac, hess=f.hess, method="trust-constr", options={"gtol": 1e-10}
    )
    assert res.success, res.message
    assert np.linalg.norm(f.jac(res.x)) < 1e-6
    # fun and jac at the same x share one evaluation
    value, grad = f.fun_and_jac(res.x)
    assert value == f.fun(res.x) and np.array_equal(grad, f.jac(res.x))


def test_minimize_with_parameters():
    n = 10
    x = pt.vector("x", shape=(n,))
    c = pt.vector("c", shape=(n,))
    cost = ((x - c) ** 2).sum() + 0.1 * ((x[1:] - x[:-1]) ** 4).sum()
    c_value = np.linspace(-1, 1, n)
    f = sd.minimize_functions(cost, x, [c], [c_value], mode=MODE)
    res = minimize(f.fun, np.zeros(n), jac=f.jac, hess=f.hess, method="trust-constr")
    assert res.success
    assert np.linalg.norm(f.jac(res.x)) < 1e-5
    f.param_values = [np.zeros(n)]
    res = minimize(f.fun, np.ones(n), jac=f.jac, hess=f.hess, method="trust-constr")
    np.testing.assert_allclose(res.x, 0, atol=1e-4)


@pytest.mark.parametrize("hessian", [False, True])
def test_nonlinear_constraint(hessian):
    n = 12
    x = pt.vector("x", shape=(n,))
    con = sd.nonlinear_constraint(x[:-1] + x[1:] ** 2, x, 1.0, 1.0, hessian=hessian, mode=MODE)
    assert isinstance(con, NonlinearConstraint)
    assert sp.issparse(con.jac(np.ones(n)))
    if hessian:
        H = con.hess(np.ones(n), np.arange(n - 1.0))
        assert sp.issparse(H)
        np.testing.assert_allclose(H.diagonal(), np.r_[0.0, 2 * np.arange(n - 1.0)])
    f = sd.minimize_functions((x**2).sum(), x, mode=MODE)
    res = minimize(
        f.fun, np.zeros(n), jac=f.jac, hess=f.hess, method="trust-constr", constraints=[con]
    )
    assert res.success, res.message
    z = res.x
    np.testing.assert_allclose(z[:-1] + z[1:] ** 2, 1.0, atol=1e-6)


@pytest.mark.parametrize("method", ["BDF", "Radau"])
def test_solve_ivp_sparse_jac(method):
    p = brusselator2d(5)
    f = sd.ode_functions(p.expression, p.x, mode=MODE)
    J = f.jac(0.0, p.x0)
    assert sp.issparse(J)
    np.testing.assert_allclose(J.toarray(), p.jacobian(p.x0).toarray(), atol=1e-12)
    kw = {"rtol": 1e-8, "atol": 1e-10}
    sol = solve_ivp(f.fun, (0.0, 0.5), p.x0, method=method, jac=f.jac, **kw)
    ref = solve_ivp(
        lambda t, y: p.residual_numpy(y),
        (0.0, 0.5),
        p.x0,
        method=method,
        jac=lambda t, y: p.jacobian(y),
        **kw,
    )
    assert sol.success and sol.njev >= 1
    np.testing.assert_allclose(sol.y[:, -1], ref.y[:, -1], atol=1e-9)


def test_ode_with_time_and_parameter():
    n = 6
    y = pt.vector("y", shape=(n,))
    t = pt.scalar("t")
    k = pt.scalar("k")
    f = sd.ode_functions(-k * y + pt.cos(t), y, t, [k], [np.asarray(50.0)], mode=MODE)
    sol = solve_ivp(f.fun, (0.0, 1.0), np.ones(n), method="BDF", jac=f.jac, rtol=1e-9, atol=1e-12)
    kv = 50.0
    exact = (kv * np.cos(1) + np.sin(1)) / (kv**2 + 1) + (1 - kv / (kv**2 + 1)) * np.exp(-kv)
    np.testing.assert_allclose(sol.y[:, -1], exact, rtol=1e-6)


def test_bad_input():
    x = pt.vector("x", shape=(3,))
    with pytest.raises(ValueError, match="rhs has 2 elements"):
        sd.ode_functions(x[:2], x, mode=MODE)
    with pytest.raises(ValueError, match="param_values"):
        sd.least_squares_functions(x**2, x, [], [1.0], mode=MODE)
    with pytest.raises(TypeError, match="one variable"):
        sd.minimize_functions((x**2).sum(), [x, x], mode=MODE)
    f = sd.least_squares_functions(x**2, x, mode=MODE)
    with pytest.raises(ValueError, match="x has 4 entries"):
        f.fun(np.zeros(4))
