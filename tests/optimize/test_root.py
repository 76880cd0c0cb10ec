"""sd.optimize.root: values against SciPy, implicit gradients against finite differences and
against pytensor.tensor.optimize.root (dense), list unknowns, failures as data, bad input."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import sparsediff.optimize as so
from sparsediff.optimize import ConvergenceWarning

from .problems import MODE, bratu, central_difference, compile_fn


@pytest.fixture(scope="module")
def bratu_graph():
    x, lam, F, F_np, J_np = bratu(5)
    x_star, ok = so.root(F, x, mode=MODE)
    loss = (x_star**2).sum() + x_star[3]
    grad = pytensor.grad(loss, lam)
    fn = compile_fn([x, lam], [x_star, ok, loss, grad])
    return x, lam, F_np, J_np, x_star, fn


@pytest.mark.parametrize("lam_value", [1.0, 5.0])
def test_value_matches_scipy(bratu_graph, lam_value):
    _x, _lam, F_np, J_np, x_star, fn = bratu_graph
    x0 = np.zeros(25)
    xs, ok, _, _ = fn(x0, lam_value)
    ref = scipy.optimize.root(F_np, x0, args=(lam_value,), jac=J_np, method="hybr", tol=1e-12)
    assert ok and ref.success
    np.testing.assert_allclose(xs, ref.x, atol=1e-10)
    assert np.abs(F_np(xs, lam_value)).max() < 1e-8
    result = x_star.owner.op.last_result
    assert result.success and result.nit >= 1 and result.norm <= 1e-8


def test_gradient_scalar_parameter(bratu_graph):
    *_, fn = bratu_graph
    x0 = np.zeros(25)
    _, _, _, grad = fn(x0, 5.0)
    fd = central_difference(lambda lam_value: fn(x0, lam_value)[2], [np.array(5.0)], 0)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_adjoint_reuses_the_last_newton_factor(bratu_graph):
    *_, x_star, fn = bratu_graph
    fn(np.zeros(25), 5.0)
    assert x_star.owner.op.state.adjoint == "reused"
    # a converged initial guess: no Newton step, so no factor to reuse
    xs = fn(np.zeros(25), 5.0)[0]
    _, ok, _, grad = fn(xs, 5.0)
    assert ok and x_star.owner.op.state.adjoint == "factored"
    np.testing.assert_allclose(grad, fn(np.zeros(25), 5.0)[3], rtol=1e-10)


def test_gradients_match_dense_pytensor_root():
    from pytensor.tensor.optimize import root as dense_root

    x, lam, F, _, _ = bratu(4)
    w = pt.vector("w", shape=(16,))
    loss_of = lambda xs: (w * xs).sum() + (xs**2).sum()  # noqa: E731
    xs_sparse, _ = so.root(F, x, mode=MODE)
    xs_dense, _ = dense_root(F, x, method="hybr", optimizer_kwargs={"tol": 1e-13})
    grads = [pytensor.grad(loss_of(xs), [lam, w]) for xs in (xs_sparse, xs_dense)]
    fn = compile_fn([x, lam, w], [xs_sparse, xs_dense, *grads[0], *grads[1]])
    w_value = np.linspace(-1, 1, 16)
    a, b, g_lam, g_w, d_lam, d_w = fn(np.zeros(16), 3.0, w_value)
    np.testing.assert_allclose(a, b, atol=1e-10)
    np.testing.assert_allclose(g_lam, d_lam, rtol=1e-8)
    np.testing.assert_allclose(g_w, d_w, rtol=1e-8)


def test_vector_and_several_parameters():
    # F_i = x_i³ + a_i x_i − c·s_i: a vector parameter a, a scalar c, a data vector s
    n = 6
    x = pt.vector("x", shape=(n,))
    a = pt.vector("a", shape=(n,))
    c = pt.dscalar("c")
    s = pt.vector("s", shape=(n,))
    coupling = pt.concatenate([x[1:], pt.zeros(1)]) * 0.1
    F = x**3 + a * x + coupling - c * s
    x_star, ok = so.root(F, x, mode=MODE)
    loss = (pt.arange(1, n + 1) * x_star).sum() + x_star[0] ** 2
    grads = pytensor.grad(loss, [a, c, s])
    fn = compile_fn([x, a, c, s], [loss, ok, *grads])
    values = [np.zeros(n), np.linspace(1, 2, n), np.array(0.7), np.linspace(-1, 1, n)]
    _loss_value, ok_value, *g = fn(*values)
    assert ok_value
    for i, gi in zip((1, 2, 3), g, strict=True):
        fd = central_difference(lambda *v: fn(*v)[0], values, i)
        np.testing.assert_allclose(gi, fd, rtol=1e-6, atol=1e-9)


def test_list_variables_and_matrix_shaped_unknown():
    # u (2x2 matrix) and v (vector): u = p·v[0], v = [p, u.sum()] — a coupled linear system
    u = pt.matrix("u", shape=(2, 2))
    v = pt.vector("v", shape=(2,))
    p = pt.dscalar("p")
    F = pt.concatenate([(u - p * v[0] - 1.0).ravel(), v - pt.stack([p, u.sum()])])
    (u_star, v_star), ok = so.root(F, [u, v], mode=MODE)
    assert u_star.type.shape == (2, 2) and v_star.type.shape == (2,)
    loss = u_star.sum() + v_star[1] ** 2
    fn = compile_fn([u, v, p], [u_star, v_star, ok, loss, pytensor.grad(loss, p)])
    us, vs, okv, _lv, g = fn(np.zeros((2, 2)), np.zeros(2), 0.5)
    assert okv
    np.testing.assert_allclose(us, 0.5 * 0.5 + 1.0)
    np.testing.assert_allclose(vs, [0.5, 4 * (0.25 + 1.0)])
    # loss(p) = 4(p²+1) + 16(p²+1)²: d/dp = 8p + 64 p (p²+1)
    np.testing.assert_allclose(g, 8 * 0.5 + 64 * 0.5 * 1.25, rtol=1e-10)


def test_trf_method_and_info_outputs():
    x, lam, F, F_np, _ = bratu(4)
    xs, ok, info = so.root(F, x, method="trf", mode=MODE, return_info=True)
    grad = pytensor.grad(xs.sum(), lam)
    fn = compile_fn([x, lam], [xs, ok, info["nit"], info["norm"], grad])
    value, okv, nit, norm, g = fn(np.zeros(16), 2.0)
    assert okv and nit >= 1 and norm <= 1e-8
    assert np.abs(F_np(value, 2.0)).max() < 1e-8
    fd = central_difference(lambda lv: fn(np.zeros(16), lv)[0].sum(), [np.array(2.0)], 0)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


# --- failure is data --------------------------------------------------------------------------


def _expect_failure(fn, *args, match):
    with pytest.warns(ConvergenceWarning, match=match):
        out = fn(*args)
    return out


def test_non_convergence_gives_false_and_nan_gradient():
    x, lam, F, _, _ = bratu(4)
    xs, ok = so.root(F, x, mode=MODE, optimizer_kwargs={"maxiter": 1})
    fn = compile_fn([x, lam], [ok, pytensor.grad(xs.sum(), lam)])
    ok_value, g = _expect_failure(fn, np.full(16, 3.0), 5.0, match="maxiter")
    assert not ok_value and np.isnan(g)


def test_beyond_the_turning_point_fails_cleanly():
    # 2-D Bratu has no solution for λ > λ* ≈ 6.8: the line search fails
    x, lam, F, _, _ = bratu(4)
    _xs, ok = so.root(F, x, mode=MODE)
    fn = compile_fn([x, lam], [ok])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (ok_value,) = fn(np.zeros(16), 50.0)
    assert not ok_value
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_singular_jacobian():
    x = pt.vector("x", shape=(3,))
    c = pt.dscalar("c")
    F = pt.stack([x[0] + x[1] - c, 2 * x[0] + 2 * x[1] - 2 * c + 1.0, x[2]])
    xs, ok = so.root(F, x, mode=MODE)
    fn = compile_fn([x, c], [ok, pytensor.grad(xs.sum(), c)])
    ok_value, g = _expect_failure(fn, np.zeros(3), 1.0, match="singular")
    assert not ok_value and np.isnan(g)


def test_nan_in_residual():
    x = pt.vector("x", shape=(3,))
    F = pt.log(x) - 1.0
    xs, ok = so.root(F, x, mode=MODE)
    fn = compile_fn([x], [xs, ok])
    value, ok_value = _expect_failure(fn, np.array([-1.0, 1.0, 1.0]), match="NaN")
    assert not ok_value
    # the same Op still solves from a good start
    value, ok_value = fn(np.ones(3))
    assert ok_value and np.allclose(value, np.e)


# --- bad input at graph-build time ------------------------------------------------------------


def test_build_time_errors():
    x = pt.vector("x", shape=(3,))
    y = pt.vector("y", shape=(2,))
    F = x**2 - 1.0
    with pytest.raises(ValueError, match="square"):
        so.root(x[:2] ** 2, x)
    with pytest.raises(ValueError, match="dense matrix"):
        so.root(F, x, method="hybr")
    with pytest.raises(ValueError, match="unknown method"):
        so.root(F, x, method="bogus")
    with pytest.raises(ValueError, match="unknown optimizer_kwargs"):
        so.root(F, x, optimizer_kwargs={"xtol": 1e-3})
    with pytest.raises(ValueError, match="jac=False"):
        so.root(F, x, jac=False)
    with pytest.raises(ValueError, match="not an input"):
        so.root(F, y)
    with pytest.raises(ValueError, match="static shape"):
        so.root(pt.vector("z") ** 2, pt.vector("z"))
    with pytest.raises(TypeError, match="floating"):
        z = pt.lvector("z", shape=(3,))
        so.root(z * 1.0, z)


def test_second_derivative_says_not_implemented():
    x, lam, F, _, _ = bratu(3)
    xs, _ = so.root(F, x, mode=MODE)
    g = pytensor.grad(xs.sum(), lam)
    with pytest.raises(Exception, match="second derivatives"):
        pytensor.grad(g, lam)


# --- property: gradients equal the dense implicit-function formula ----------------------------


@pytest.fixture(scope="module")
def tridiagonal_system():
    n = 12
    x = pt.vector("x", shape=(n,))
    a = pt.vector("a", shape=(n,))
    s = pt.vector("s", shape=(n,))
    w = pt.vector("w", shape=(n,))
    padded = pt.concatenate([pt.zeros(1), x, pt.zeros(1)])
    F = 4 * x - padded[:-2] - padded[2:] + 0.5 * a * pt.tanh(x) - s
    xs, ok = so.root(F, x, mode=MODE)
    loss = (w * xs).sum()
    return n, compile_fn([x, a, s, w], [xs, ok, *pytensor.grad(loss, [a, s])])


@settings(max_examples=25, deadline=None)
@given(
    a=arrays(np.float64, 12, elements=st.floats(0.0, 2.0)),
    s=arrays(np.float64, 12, elements=st.floats(-3.0, 3.0)),
    w=arrays(np.float64, 12, elements=st.floats(-1.0, 1.0)),
)
def test_gradients_equal_dense_implicit_formula(tridiagonal_system, a, s, w):
    n, fn = tridiagonal_system
    xs, ok, g_a, g_s = fn(np.zeros(n), a, s, w)
    assert ok
    J = 4 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1) + np.diag(0.5 * a / np.cosh(xs) ** 2)
    lam = np.linalg.solve(J.T, w)  # dense: λ = J⁻ᵀ w
    np.testing.assert_allclose(g_a, -lam * 0.5 * np.tanh(xs), atol=1e-10)  # −(∂F/∂a)ᵀλ
    np.testing.assert_allclose(g_s, lam, atol=1e-10)  # ∂F/∂s = −I


def test_scalar_unknown():
    x = pt.dscalar("x")
    c = pt.dscalar("c")
    xs, ok = so.root(x**3 - c, x, mode=MODE)
    assert xs.ndim == 0
    fn = compile_fn([x, c], [xs, ok, pytensor.grad(xs, c)])
    value, ok_value, g = fn(1.0, 8.0)
    assert ok_value and np.isclose(value, 2.0) and np.isclose(g, 1 / 12)


def test_sparsify_optimizers_is_opt_in_and_exact():
    from pytensor.tensor.optimize import RootOp
    from pytensor.tensor.optimize import minimize as dense_minimize
    from pytensor.tensor.optimize import root as dense_root

    x, lam, F, _, _ = bratu(3)
    xd, _okd = dense_root(F, x, method="hybr", optimizer_kwargs={"tol": 1e-13})
    f = ((x - lam) ** 4).sum() + (x**2).sum()
    xm, _okm = dense_minimize(f, x, method="BFGS", optimizer_kwargs={"tol": 1e-13})
    loss = (xd**2).sum() + xm.sum()
    new_loss = so.sparsify_optimizers(
        loss, root_kwargs={"mode": MODE}, minimize_kwargs={"mode": MODE}
    )
    ops = {type(n.op) for n in pytensor.graph.traversal.applys_between([x, lam], [new_loss])}
    assert so.RootOp in ops and so.MinimizeOp in ops and RootOp not in ops
    # the original graph is untouched (opt-in)
    assert RootOp in {type(n.op) for n in pytensor.graph.traversal.applys_between([x, lam], [loss])}
    fn = compile_fn(
        [x, lam], [loss, pytensor.grad(loss, lam), new_loss, pytensor.grad(new_loss, lam)]
    )
    a, ga, b, gb = fn(np.zeros(9), 2.0)
    np.testing.assert_allclose(b, a, rtol=1e-9)
    np.testing.assert_allclose(gb, ga, rtol=1e-6)
