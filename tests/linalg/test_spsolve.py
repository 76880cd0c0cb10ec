"""sparsediff.linalg.spsolve: values and gradients against dense algebra and finite differences."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsediff as sd
from sparsediff import linalg as sl

from .matrices import SPD_BACKENDS, central_fd, laplacian_2d, random_general, random_spd, rebuild
from .matrices import symbolic as sym

MODE = "FAST_COMPILE"


def _solve_graph(A0, fmt, assume_a, transposed, nrhs, backend=None):
    A, data, A0 = sym(A0, fmt)
    b = pt.dmatrix("b") if nrhs else pt.dvector("b")
    y = sl.spsolve(A, b, assume_a=assume_a, transposed=transposed, backend=backend)
    n = A0.shape[0]
    w = pt.constant(np.linspace(-1, 2, n * max(nrhs, 1)).reshape((n, nrhs) if nrhs else (n,)))
    cost = (w * y).sum() + (y**2).sum()
    gdata, gb = pytensor.grad(cost, [data, b])
    return pytensor.function([data, b], [y, cost, gdata, gb], mode=MODE), A0


def _dense_cost(A0, assume_a, transposed, nrhs):
    def cost(d, bv):
        M = rebuild(A0, d)
        if assume_a == "pos":
            M = 0.5 * (M + M.T)
        y = np.linalg.solve(M.T if transposed else M, bv)
        w = np.linspace(-1, 2, A0.shape[0] * max(nrhs, 1)).reshape(y.shape)
        return (w * y).sum() + (y**2).sum(), y

    return cost


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("nrhs", [0, 2])
def test_general_solve_and_gradients(fmt, transposed, nrhs):
    A0 = random_general(12, 0.2, seed=5)
    f, A0 = _solve_graph(A0, fmt, "gen", transposed, nrhs)
    rng = np.random.default_rng(3)
    bv = rng.standard_normal((12, nrhs) if nrhs else 12)
    y, c, gd, gb = f(A0.data, bv)
    dense = _dense_cost(A0, "gen", transposed, nrhs)
    c_ref, y_ref = dense(A0.data, bv)
    np.testing.assert_allclose(y, y_ref, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, rtol=1e-12)
    np.testing.assert_allclose(gd, central_fd(lambda d: dense(d, bv)[0], A0.data), atol=1e-6)
    fd_b = central_fd(lambda v: dense(A0.data, v.reshape(bv.shape))[0], bv.ravel())
    np.testing.assert_allclose(gb.ravel(), fd_b, atol=1e-6)


@pytest.mark.parametrize("backend", SPD_BACKENDS)
def test_spd_solve_gradients_against_pytensor_dense(backend):
    """Against pt.linalg.solve(assume_a='pos') on the dense symmetric part, to rounding."""
    A0 = random_spd(15, 0.15, seed=6)
    A, data, A0 = sym(A0)
    b = pt.dvector("b")
    y = sl.spsolve(A, b, assume_a="pos", backend=backend)
    cost = (y**3).sum()
    M = pytensor.sparse.dense_from_sparse(A)
    y_d = pt.linalg.solve(0.5 * (M + M.T), b, assume_a="pos")
    cost_d = (y_d**3).sum()
    f = pytensor.function([data, b], [y, *pytensor.grad(cost, [data, b])], mode=MODE)
    fd = pytensor.function([data, b], [y_d, *pytensor.grad(cost_d, [data, b])], mode=MODE)
    bv = np.random.default_rng(0).standard_normal(15)
    for got, ref in zip(f(A0.data, bv), fd(A0.data, bv), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 25),
    density=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**31),
    assume_a=st.sampled_from(["gen", "pos"]),
)
def test_random_matrices(n, density, seed, assume_a):
    A0 = random_spd(n, density, seed) if assume_a == "pos" else random_general(n, density, seed)
    f, A0 = _FN[assume_a](A0)
    bv = np.cos(np.arange(n, dtype=float))
    y, c, gd, gb = f(A0.data, bv)
    dense = _dense_cost(A0, assume_a, False, 0)
    c_ref, y_ref = dense(A0.data, bv)
    np.testing.assert_allclose(y, y_ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(c, c_ref, rtol=1e-9, atol=1e-10)
    # the exact data gradient, densely: Ā = −b̄ yᵀ (symmetrized for SPD) on the pattern
    M = rebuild(A0, A0.data)
    M = 0.5 * (M + M.T) if assume_a == "pos" else M
    w = np.linspace(-1, 2, n)
    gbar = np.linalg.solve(M.T, w + 2 * y_ref)
    G = -np.outer(gbar, y_ref)
    G = 0.5 * (G + G.T) if assume_a == "pos" else G
    C = A0.tocoo()
    np.testing.assert_allclose(gd, G[C.row, C.col], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gb, gbar, rtol=1e-8, atol=1e-10)


def _fn_cache():
    """One compiled graph per pattern size would be slow: compile per call (tiny graphs)."""

    def make(assume_a):
        return lambda A0: _solve_graph(A0, "csr", assume_a, False, 0)

    return {"gen": make("gen"), "pos": make("pos")}


_FN = _fn_cache()


def test_laplacian_2d():
    A0 = laplacian_2d(7)
    f, A0 = _solve_graph(A0, "csr", "pos", False, 0)
    bv = np.ones(49)
    y, *_ = f(A0.data, bv)
    np.testing.assert_allclose(A0 @ y, bv, atol=1e-12)


def test_gradient_to_parameters_upstream_of_a_jacobian():
    """y = J(x, θ)⁻¹ b with J = sd.jacobian(F, x): dL/dθ through the sparse Jacobian's data."""
    n = 10
    x = pt.dvector("x", shape=(n,))
    theta = pt.dscalar("theta")
    F = (
        pt.concatenate([x[1:], [0.0]])
        - (2 + theta) * x
        + pt.concatenate([[0.0], x[:-1]])
        + theta * pt.sin(x) ** 2
        + 0.3 * pt.concatenate([x[2:] * x[:-2], [0.0, 0.0]])
    )
    b = pt.constant(np.linspace(0, 1, n))
    J = sd.jacobian(F, x)
    cost = (sl.spsolve(J, b) ** 2).sum() + sl.spsolve(J, b, transposed=True).sum()
    f = pytensor.function([x, theta], [cost, *pytensor.grad(cost, [x, theta])], mode=MODE)
    # dense reference: the dense Jacobian's values (no gradient through its Scan: slow to build)
    jac = pytensor.function([x, theta], pytensor.gradient.jacobian(F, x, vectorize=True), mode=MODE)
    bv = b.data

    def dense_cost(v):
        Jd = jac(v[:n], v[n])
        return (np.linalg.solve(Jd, bv) ** 2).sum() + np.linalg.solve(Jd.T, bv).sum()

    xv = np.random.default_rng(1).standard_normal(n)
    c, gx, gt = f(xv, 0.4)
    v = np.append(xv, 0.4)
    np.testing.assert_allclose(c, dense_cost(v), rtol=1e-12)
    np.testing.assert_allclose(np.append(gx, gt), central_fd(dense_cost, v), rtol=1e-6, atol=1e-7)


def test_second_derivative_of_spsolve():
    """The gradient is built from SpSolve itself, so it can be differentiated again."""
    A0 = random_general(8, 0.3, seed=9)
    A, data, A0 = sym(A0)
    b = pt.dvector("b")
    cost = (sl.spsolve(A, b) ** 2).sum()
    gb = pytensor.grad(cost, b)
    Hb = pytensor.gradient.jacobian(gb, b)
    f = pytensor.function([data, b], Hb, mode=MODE)
    M = A0.toarray()
    Minv = np.linalg.inv(M)
    np.testing.assert_allclose(f(A0.data, np.ones(8)), 2 * Minv.T @ Minv, rtol=1e-10)


def test_one_factorization_per_evaluation():
    """Value and gradient (a transposed solve) share one factor per evaluation."""
    A0 = random_general(20, 0.1, seed=1)
    f, A0 = _solve_graph(A0, "csr", "gen", False, 0)
    sl.clear_factor_cache()
    for k in range(3):
        before = sl.factor_stats()["factorizations"]
        f(A0.data * (1 + k), np.ones(20))  # new values each call
        assert sl.factor_stats()["factorizations"] - before == 1


def test_scipy_matrix_is_a_constant():
    A0 = sp.csr_matrix(random_general(6, 0.3, 2))
    y = sl.spsolve(A0, np.ones(6))
    np.testing.assert_allclose(A0 @ y.eval(mode=MODE), np.ones(6), atol=1e-12)
