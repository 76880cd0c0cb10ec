"""sd.optimize.minimize: values against SciPy, x* is a root of ∇f, implicit gradients against
finite differences and pytensor.tensor.optimize.minimize (dense), regularized Newton on an
indefinite Hessian, SciPy methods, failures, bad input."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.optimize

import sparsediff.optimize as so
from sparsediff.optimize import ConvergenceWarning

from .problems import MODE, central_difference, compile_fn, gmrf_poisson


@pytest.fixture(scope="module")
def gmrf():
    x, tau, b, f, f_np, g_np = gmrf_poisson(4)
    x_star, ok, info = so.minimize(f, x, mode=MODE, return_info=True)
    loss = (x_star**2).sum() + x_star[2]
    grads = pytensor.grad(loss, [tau, b])
    fn = compile_fn([x, tau, b], [x_star, ok, info["nit"], loss, *grads])
    b_value = np.linspace(-0.5, 0.5, 16)
    return x, f, f_np, g_np, x_star, fn, b_value


def test_value_matches_scipy_and_is_a_root_of_the_gradient(gmrf):
    x, f, f_np, g_np, _x_star, fn, b_value = gmrf
    xs, ok, nit, *_ = fn(np.zeros(16), 1.5, b_value)
    assert ok and nit >= 2
    ref = scipy.optimize.minimize(
        f_np, np.zeros(16), args=(1.5, b_value), jac=g_np, method="BFGS", tol=1e-12
    )
    np.testing.assert_allclose(xs, ref.x, atol=1e-6)
    assert np.abs(g_np(xs, 1.5, b_value)).max() < 1e-8
    # x* of minimize == root of ∇f, by sd.optimize.root on the symbolic gradient
    tau = next(v for v in pytensor.graph.traversal.graph_inputs([f]) if v.name == "tau")
    b = next(v for v in pytensor.graph.traversal.graph_inputs([f]) if v.name == "b")
    xr, okr = so.root(pytensor.grad(f, x), x, mode=MODE)
    xr_value, okr_value = compile_fn([x, tau, b], [xr, okr])(np.zeros(16), 1.5, b_value)
    assert okr_value
    np.testing.assert_allclose(xs, xr_value, atol=1e-10)


def test_gradients_scalar_and_vector_parameters_vs_finite_differences(gmrf):
    *_, fn, b_value = gmrf
    values = [np.zeros(16), np.array(1.5), b_value]
    _, _, _, _, g_tau, g_b = fn(*values)
    fd_tau = central_difference(lambda *v: fn(*v)[3], values, 1)
    fd_b = central_difference(lambda *v: fn(*v)[3], values, 2)
    np.testing.assert_allclose(g_tau, fd_tau, rtol=1e-6)
    np.testing.assert_allclose(g_b, fd_b, rtol=1e-6, atol=1e-9)


def test_gradients_match_dense_pytensor_minimize():
    from pytensor.tensor.optimize import minimize as dense_minimize

    x, tau, b, f, _, _ = gmrf_poisson(3)
    xs_sparse, _ = so.minimize(f, x, mode=MODE)
    xs_dense, _ = dense_minimize(
        f,
        x,
        method="BFGS",
        use_vectorized_jac=True,
        optimizer_kwargs={"tol": 1e-14, "options": {"gtol": 1e-12}},
    )
    loss = [(xs**3).sum() for xs in (xs_sparse, xs_dense)]
    g = [pytensor.grad(lo, [tau, b]) for lo in loss]
    fn = compile_fn([x, tau, b], [xs_sparse, xs_dense, *g[0], *g[1]])
    a, d, gt, gb, dt, db = fn(np.zeros(9), 0.8, np.linspace(0, 1, 9))
    np.testing.assert_allclose(a, d, atol=1e-7)
    np.testing.assert_allclose(gt, dt, rtol=1e-5)
    np.testing.assert_allclose(gb, db, rtol=1e-5, atol=1e-8)


def test_indefinite_hessian_is_regularized_rosenbrock():
    z = pt.vector("z", shape=(4,))
    a = pt.dscalar("a")
    f = (100 * (z[1:] - z[:-1] ** 2) ** 2 + (a - z[:-1]) ** 2).sum()
    zs, ok = so.minimize(f, z, mode=MODE)
    fn = compile_fn([z, a], [zs, ok, pytensor.grad(zs.sum(), a)])
    start = np.array([-1.2, 1.0, -1.2, 1.0])
    value, ok_value, g = fn(start, 1.0)
    assert ok_value
    np.testing.assert_allclose(value, np.ones(4), atol=1e-8)
    assert zs.owner.op.last_result.regularized >= 1  # H is indefinite at the start
    fd = central_difference(lambda av: fn(np.ones(4), av)[0].sum(), [np.array(1.0)], 0)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_scipy_methods_with_the_sparse_hessian():
    x, tau, b, f, _, g_np = gmrf_poisson(3)
    methods = {"trust-constr": {"options": {"gtol": 1e-10}}, "Newton-CG": {"tol": 1e-12}}
    solutions = [
        so.minimize(f, x, method=m, mode=MODE, optimizer_kwargs=o) for m, o in methods.items()
    ]
    xn, _ = so.minimize(f, x, mode=MODE)
    outputs = [xn, pytensor.grad(xn.sum(), tau)]
    for xs, ok in solutions:
        outputs += [xs, ok, pytensor.grad(xs.sum(), tau)]
    fn = compile_fn([x, tau, b], outputs)
    b_value = np.linspace(0, 1, 9)
    newton_value, g_newton, *rest = fn(np.zeros(9), 0.8, b_value)
    for value, ok_value, g in zip(rest[::3], rest[1::3], rest[2::3], strict=True):
        assert ok_value
        assert np.abs(g_np(value, 0.8, b_value)).max() < 1e-7
        np.testing.assert_allclose(value, newton_value, atol=1e-7)
        # SciPy stops less tightly than Newton; the gradients (exact at each x*) agree to that
        np.testing.assert_allclose(g, g_newton, rtol=1e-6)


def test_list_variables():
    u = pt.vector("u", shape=(3,))
    v = pt.matrix("v", shape=(2, 2))
    c = pt.dscalar("c")
    f = ((u - c) ** 2).sum() + ((v - 2 * c) ** 4).sum() + ((v - 2 * c) ** 2).sum() + u[0] * v[0, 0]
    (us, vs), ok = so.minimize(f, [u, v], mode=MODE)
    loss = us.sum() + vs.sum()
    fn = compile_fn([u, v, c], [us, vs, ok, loss, pytensor.grad(loss, c)])
    values = [np.zeros(3), np.zeros((2, 2)), np.array(0.3)]
    _us_value, vs_value, ok_value, _, g = fn(*values)
    assert ok_value and vs_value.shape == (2, 2)
    fd = central_difference(lambda *val: fn(*val)[3], values, 2)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_failures_are_data():
    z = pt.vector("z", shape=(2,))
    a = pt.dscalar("a")
    f = (z**2).sum() * a + pt.log(z[0])  # NaN for z[0] < 0
    zs, ok = so.minimize(f, z, mode=MODE)
    fn = compile_fn([z, a], [ok, pytensor.grad(zs.sum(), a)])
    with pytest.warns(ConvergenceWarning, match="NaN"):
        ok_value, g = fn(np.array([-1.0, 1.0]), 1.0)
    assert not ok_value and np.isnan(g)
    # unbounded below: a < 0 makes f → −∞; no convergence in 5 iterations
    zs, ok = so.minimize((z**2).sum() * a, z, mode=MODE, optimizer_kwargs={"maxiter": 5})
    fn = compile_fn([z, a], [ok])
    with pytest.warns(ConvergenceWarning):
        (ok_value,) = fn(np.array([1.0, 1.0]), -1.0)
    assert not ok_value
    # regularize=False on an indefinite Hessian
    zs, ok = so.minimize((z**2).sum() * a, z, mode=MODE, optimizer_kwargs={"regularize": False})
    fn = compile_fn([z, a], [ok])
    with pytest.warns(ConvergenceWarning, match="not positive definite"):
        (ok_value,) = fn(np.array([1.0, 1.0]), -1.0)
    assert not ok_value


def test_build_time_errors():
    z = pt.vector("z", shape=(3,))
    f = (z**2).sum()
    with pytest.raises(ValueError, match="scalar"):
        so.minimize(z**2, z)
    with pytest.raises(ValueError, match="dense matrix"):
        so.minimize(f, z, method="trust-exact")
    with pytest.raises(ValueError, match="uses no Hessian"):
        so.minimize(f, z, method="BFGS")
    with pytest.raises(ValueError, match="unknown method"):
        so.minimize(f, z, method="bogus")
    with pytest.raises(ValueError, match="unknown optimizer_kwargs"):
        so.minimize(f, z, optimizer_kwargs={"gtol": 1})
    with pytest.raises(ValueError, match="not an input"):
        so.minimize(f, pt.vector("w", shape=(3,)))
