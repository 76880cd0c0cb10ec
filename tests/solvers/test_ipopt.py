"""The cyipopt adapter (sd.ipopt_functions): structures once, values per call; skipped without
cyipopt (its Linux wheels are not on PyPI as ``cyipopt``; conda-forge has them)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd

MODE = "FAST_COMPILE"


def _hs071():
    x = pt.vector("x", shape=(4,))
    cost = x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]
    g = pt.stack([x[0] * x[1] * x[2] * x[3], (x**2).sum()])
    return x, cost, g


def test_structures_and_values_match_dense():
    x, cost, g = _hs071()
    f = sd.ipopt_functions(cost, x, g, mode=MODE)
    x0 = np.array([1.0, 5.0, 5.0, 1.0])
    rows, cols = f.jacobianstructure()
    J = np.zeros((2, 4))
    J[rows, cols] = f.jacobian(x0)
    dense_J = pytensor.function([x], pytensor.gradient.jacobian(g, x), mode=MODE)(x0)
    np.testing.assert_allclose(J, dense_J, rtol=1e-12)
    lam, sigma = np.array([0.3, -1.7]), 0.6
    rows, cols = f.hessianstructure()
    assert np.all(rows >= cols)  # the lower triangle
    H = np.zeros((4, 4))
    H[rows, cols] = f.hessian(x0, lam, sigma)
    H = H + np.tril(H, -1).T
    lagrangian = sigma * cost + pt.dot(lam, g)
    dense_H = pytensor.function([x], pytensor.gradient.hessian(lagrangian, x), mode=MODE)(x0)
    np.testing.assert_allclose(H, dense_H, rtol=1e-12)
    np.testing.assert_allclose(f.objective(x0), 16.0)
    np.testing.assert_allclose(f.constraints(x0), [25.0, 52.0])


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_chain_structure_is_the_pattern(fmt):
    n = 30
    x = pt.vector("x", shape=(n,))
    cost = ((x - 1) ** 2).sum()
    g = x[1:] ** 2 - x[:-1]
    f = sd.ipopt_functions(cost, x, g, hessian=fmt == "csr", format=fmt, mode=MODE)
    rows, cols = f.jacobianstructure()
    assert rows.size == 2 * (n - 1)
    pattern = sp.coo_array((np.ones(rows.size), (rows, cols)), shape=(n - 1, n)).toarray() != 0
    np.testing.assert_array_equal(pattern, sd.jacobian_sparsity(g, x).toarray())
    xv = np.linspace(0.5, 1.5, n)
    J = np.zeros((n - 1, n))
    J[rows, cols] = f.jacobian(xv)
    expected = np.diag(2 * xv[1:], 1)[:-1] - np.eye(n - 1, n)
    np.testing.assert_allclose(J, expected, rtol=1e-12)
    if fmt == "csr":
        assert f.hessianstructure()[0].size == n  # diagonal only


def test_solve_hs071_with_ipopt():
    cyipopt = pytest.importorskip("cyipopt")
    x, cost, g = _hs071()
    nlp = sd.ipopt_functions(cost, x, g, mode=MODE).problem(
        lb=1.0, ub=5.0, cl=[25.0, 40.0], cu=[2.0e19, 40.0]
    )
    nlp.add_option("print_level", 0)
    nlp.add_option("tol", 1e-9)
    x_opt, info = nlp.solve(np.array([1.0, 5.0, 5.0, 1.0]))
    assert info["status"] == 0, info["status_msg"]
    np.testing.assert_allclose(x_opt, [1.0, 4.74299963, 3.82114998, 1.37940829], rtol=1e-6)
    np.testing.assert_allclose(info["obj_val"], 17.0140173, rtol=1e-7)
    assert isinstance(cyipopt.__version__, str)


def test_unconstrained_lbfgs_with_ipopt():
    pytest.importorskip("cyipopt")
    n = 10
    x = pt.vector("x", shape=(n,))
    cost = ((x[1:] - x[:-1] ** 2) ** 2).sum() * 10 + ((1 - x) ** 2).sum()
    for hessian in (True, False):
        nlp = sd.ipopt_functions(cost, x, hessian=hessian, mode=MODE).problem()
        nlp.add_option("print_level", 0)
        x_opt, info = nlp.solve(np.zeros(n))
        assert info["status"] == 0, info["status_msg"]
        np.testing.assert_allclose(x_opt, np.ones(n), atol=1e-5)
