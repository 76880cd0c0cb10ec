"""logdet, inv_diag, cholesky: values and gradients against dense algebra and finite differences."""

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.gradient import NullTypeGradError

import sparsediff as sd
from sparsediff import linalg as sl

from .matrices import SPD_BACKENDS, central_fd, laplacian_2d, random_spd, rebuild
from .matrices import symbolic as sym

MODE = "FAST_COMPILE"


def _logdet_fn(A0, fmt="csr", backend=None, on_error="raise"):
    A, data, A0 = sym(A0, fmt)
    ld = sl.logdet(A, backend=backend, on_error=on_error)
    return pytensor.function([data], [ld, pytensor.grad(ld, data)], mode=MODE), A0


@pytest.mark.parametrize("backend", SPD_BACKENDS)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_logdet_and_gradient(backend, fmt):
    A0 = random_spd(25, 0.1, seed=11)
    f, A0 = _logdet_fn(A0, fmt, backend)
    ld, g = f(A0.data)
    Ad = A0.toarray()
    np.testing.assert_allclose(ld, np.linalg.slogdet(Ad)[1], rtol=1e-13)
    C = A0.tocoo() if fmt == "csr" else sp.csc_matrix(A0)
    rows, cols = (C.row, C.col) if fmt == "csr" else (C.indices, np.repeat(np.arange(25), 0))
    if fmt == "csc":  # data order of a CSC triple: column-major
        cols = np.repeat(np.arange(25), np.diff(C.indptr))
    np.testing.assert_allclose(g, np.linalg.inv(Ad)[rows, cols], atol=1e-14)

    def fd_cost(d):  # the symmetric part is what is factored
        M = rebuild(A0, d)
        return np.linalg.slogdet(0.5 * (M + M.T))[1]

    np.testing.assert_allclose(g, central_fd(fd_cost, A0.data), atol=1e-7)


def test_against_pytensor_dense_logdet():
    A0 = laplacian_2d(5, shift=0.5)
    A, data, A0 = sym(A0)
    ld = sl.logdet(A)
    M = ps.dense_from_sparse(A)
    ld_d = 2 * pt.log(pt.diag(pt.linalg.cholesky(M))).sum()
    f = pytensor.function([data], [ld, pytensor.grad(ld, data)], mode=MODE)
    fd = pytensor.function([data], [ld_d, pytensor.grad(ld_d, data)], mode=MODE)
    got, ref = f(A0.data), fd(A0.data)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-13)
    # the dense Cholesky reads one triangle: its gradient per stored entry is that of the
    # triangle; ours is symmetric (A⁻ᵀ). Compare the symmetrized sums entrywise.
    C = A0.tocoo()
    G_ref = sp.csr_matrix((ref[1], (C.row, C.col)), shape=A0.shape).toarray()
    G = sp.csr_matrix((got[1], (C.row, C.col)), shape=A0.shape).toarray()
    np.testing.assert_allclose(G + G.T, G_ref + G_ref.T, atol=1e-13)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 30),
    density=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**31),
    backend=st.sampled_from(SPD_BACKENDS),
)
def test_random_spd(n, density, seed, backend):
    A0 = random_spd(n, density, seed)
    f, A0 = _logdet_fn(A0, backend=backend)
    ld, g = f(A0.data)
    Ad = A0.toarray()
    np.testing.assert_allclose(ld, np.linalg.slogdet(Ad)[1], rtol=1e-12, atol=1e-12)
    C = A0.tocoo()
    np.testing.assert_allclose(g, np.linalg.inv(Ad)[C.row, C.col], atol=1e-12)


def _gmrf_cost(m):
    """A GMRF-style negative log density on an m×m grid with precision scale tau."""
    x = pt.dvector("x", shape=(m * m,))
    tau = pt.dscalar("tau")
    X = x.reshape((m, m))
    smooth = ((X[1:] - X[:-1]) ** 2).sum() + ((X[:, 1:] - X[:, :-1]) ** 2).sum()
    f = 0.5 * tau * smooth + 0.5 * (x**2).sum() + pt.exp(0.2 * x).sum()
    return f, x, tau


def _gmrf_dense_hessian(m, xv, tau):
    """The same Hessian in NumPy: tau · (graph Laplacian of the grid) + I + 0.04 diag(e^{0.2x})."""
    deg = np.full(m, 2.0)
    deg[[0, -1]] = 1.0
    T = np.diag(deg) - np.eye(m, k=1) - np.eye(m, k=-1)
    Lg = np.kron(T, np.eye(m)) + np.kron(np.eye(m), T)
    return tau * Lg + np.eye(m * m) + np.diag(0.04 * np.exp(0.2 * xv)), Lg


def test_hessian_of_gmrf_cost():
    """logdet(sd.hessian(f, x)): gradients w.r.t. the hyperparameter and x through H's data."""
    m = 5
    f, x, tau = _gmrf_cost(m)
    H = sd.hessian(f, x)
    outs = []
    for backend in SPD_BACKENDS:
        ld = sl.logdet(H, backend=backend)
        outs += [ld, *pytensor.grad(ld, [x, tau])]
    fn = pytensor.function([x, tau], outs, mode=MODE)
    xv = np.random.default_rng(2).standard_normal(m * m)
    Hv, Lg = _gmrf_dense_hessian(m, xv, 0.8)

    def dense(v):
        return np.linalg.slogdet(_gmrf_dense_hessian(m, v[:-1], v[-1])[0])[1]

    fd = central_fd(dense, np.append(xv, 0.8))
    got = fn(xv, 0.8)
    for k in range(len(SPD_BACKENDS)):
        ld_v, gx, gt = got[3 * k : 3 * k + 3]
        np.testing.assert_allclose(ld_v, np.linalg.slogdet(Hv)[1], rtol=1e-13)
        np.testing.assert_allclose(np.append(gx, gt), fd, rtol=1e-6, atol=1e-7)
        # d logdet / d tau = tr(H⁻¹ ∂H/∂tau), exactly
        np.testing.assert_allclose(gt, np.trace(np.linalg.solve(Hv, Lg)), rtol=1e-10)
        # d logdet / d x_i = tr(H⁻¹ ∂H/∂x_i) = (H⁻¹)_ii · 0.008 e^{0.2 x_i}
        np.testing.assert_allclose(
            gx, np.diag(np.linalg.inv(Hv)) * 0.008 * np.exp(0.2 * xv), rtol=1e-10
        )


@pytest.mark.parametrize("backend", SPD_BACKENDS)
def test_inv_diag(backend):
    A0 = laplacian_2d(6)
    A, data, A0 = sym(A0, "csc")
    d = pytensor.function([data], sl.inv_diag(A, backend=backend), mode=MODE)(A0.data)
    np.testing.assert_allclose(d, np.diag(np.linalg.inv(A0.toarray())), atol=1e-14)


@pytest.mark.parametrize("backend", SPD_BACKENDS)
def test_cholesky_factor_and_sampling_identity(backend):
    A0 = random_spd(20, 0.15, seed=3)
    A, data, A0 = sym(A0)
    L, p = sl.cholesky(A, backend=backend)
    Lv, pv = pytensor.function([data], [L, p], mode=MODE)(A0.data)
    assert sp.issparse(Lv) and sp.triu(Lv, 1).nnz == 0
    Ad = A0.toarray()
    np.testing.assert_allclose((Lv @ Lv.T).toarray(), Ad[np.ix_(pv, pv)], atol=1e-12)
    # x[p] = L⁻ᵀ z has covariance A⁻¹: check the identity (L Lᵀ)⁻¹ = A[p][:, p]⁻¹
    Li = np.linalg.inv(Lv.toarray())
    cov = np.empty_like(Ad)
    cov[np.ix_(pv, pv)] = Li.T @ Li
    np.testing.assert_allclose(cov, np.linalg.inv(Ad), atol=1e-12)


def test_logdet_value_and_gradient_share_one_factorization():
    A0 = laplacian_2d(6)
    A, data, A0 = sym(A0)
    ld = sl.logdet(A)
    y = sl.spsolve(A, np.ones(36), assume_a="pos")
    cost = ld + y.sum()
    f = pytensor.function([data], [cost, pytensor.grad(cost, data), sl.inv_diag(A)], mode=MODE)
    sl.clear_factor_cache()
    before = sl.factor_stats()["factorizations"]
    f(A0.data)
    f(A0.data * 1.5)
    assert sl.factor_stats()["factorizations"] - before == 2


def test_second_derivative_is_a_clear_error():
    A, data, _ = sym(laplacian_2d(3))
    g = pytensor.grad(sl.logdet(A), data)
    with pytest.raises(NullTypeGradError, match="second derivatives"):
        pytensor.grad(g.sum(), data)
    with pytest.raises(NullTypeGradError, match="not differentiable"):
        pytensor.grad(sl.inv_diag(A).sum(), data)


def test_not_spd_raise_or_nan():
    A0 = sp.csr_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))
    for backend in SPD_BACKENDS:
        f, A0 = _logdet_fn(A0, backend=backend)
        with pytest.raises(sl.NotPositiveDefiniteError):
            f(A0.data)
        fn, _ = _logdet_fn(A0, backend=backend, on_error="nan")
        ld, g = fn(A0.data)
        assert np.isnan(ld) and np.all(np.isnan(g))
        A, data, _ = sym(A0)
        d = pytensor.function([data], sl.inv_diag(A, backend=backend, on_error="nan"))(A0.data)
        assert np.all(np.isnan(d))
    with pytest.raises(ValueError, match="on_error"):
        sl.logdet(A, on_error="warn")
