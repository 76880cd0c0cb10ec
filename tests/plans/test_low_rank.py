"""Sparse plus low-rank Hessians (plans/low_rank) against dense ``pytensor.gradient.hessian``."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.gradient import DisconnectedInputError, hessian, jacobian
from pytensor.sparse.variable import SparseVariable

import sparsediff as sd
from sparsediff.linalg import SparsePlusLowRank
from sparsediff.plans.low_rank import low_rank_hessian_plan
from sparsediff.sparsity.lowrank import LowRankHint
from tests.users_graphs import icar

MODE = "FAST_COMPILE"


def _check(cost, wrt, point, mode=MODE, rtol=1e-10, **kwargs):
    """S + U C Uᵀ equals the dense Hessian at ``point``; returns the values (S, U, C)."""
    H = sd.hessian(cost, wrt, low_rank=True, **kwargs)
    assert isinstance(H, SparsePlusLowRank)
    n = point.size
    dense = jacobian(pytensor.grad(cost, wrt).ravel(), wrt).reshape((n, n))
    f = pytensor.function([wrt], [*H.outputs, dense], mode=mode)
    S, U, C, ref = f(point)
    assert sp.issparse(S) and U.shape == (point.size, H.rank) and C.shape == (H.rank, H.rank)
    got = S.toarray() + U @ C @ U.T
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got, ref.reshape(got.shape), rtol=rtol, atol=rtol * scale)
    return S, U, C


def _point(wrt, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, wrt.type.shape)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "CVM"])
def test_icar(mode):
    cost, x = icar(6)
    S, U, C = _check(cost, x, _point(x), mode=mode)
    assert U.shape[1] == 1
    np.testing.assert_allclose(U[:, 0], 1.0)  # J of Σx
    np.testing.assert_allclose(C, -1 / (1e-3 * 36) ** 2)
    # S: 5-point Laplacian + diagonal, colored with a few HVPs instead of n
    assert S.nnz <= 5 * 36
    plan = low_rank_hessian_plan(cost, x)
    assert plan.n_colors <= 6 and plan.rank == 1 and plan.n_products <= 7
    assert "rank 1" in repr(plan)


def test_icar_with_hyperparameter():
    cost, theta = icar(5, hyper=True)
    _, U, _ = _check(cost, theta, _point(theta, 1))
    assert U.shape[1] == 3  # J of Σx, J of the prior's sum, its cross term with log τ
    plan = low_rank_hessian_plan(cost, theta)
    assert plan.n_colors <= 6


@pytest.mark.parametrize(
    "make",
    [
        lambda x: (x * x.sum()).sum() + (x**4).sum(),  # cross term c̃_xũ ≠ 0, c̃_ũũ = 0
        lambda x: pt.exp(x.mean()) * (x**2).sum(),  # k = 2: a mean and a sum of squares
        lambda x: -(pt.log1p((0.3 - (x - x.mean())) ** 2)).sum(),  # centering
        lambda x: pt.exp(x.sum()) + pt.sin((x**2).sum()) + (pt.cos(x[1:] * x[:-1])).sum(),
    ],
)
def test_couplings(make):
    x = pt.vector("x", shape=(30,))
    cost = make(x)
    _check(cost, x, _point(x, 2))
    plan = low_rank_hessian_plan(cost, x)
    assert plan.couplings and plan.n_colors <= 4


def test_vector_coupling_and_matrix_wrt():
    W = np.random.default_rng(3).standard_normal((2, 36))
    X = pt.matrix("X", shape=(6, 6))
    x = X.ravel()
    cost = -0.5 * (pt.dot(W, x) ** 2).sum() + pt.exp(X).sum() + (X[1:] * X[:-1]).sum()
    _, U, _ = _check(cost, X, _point(X, 4))
    assert U.shape[1] == 2


def test_no_coupling_keeps_the_plain_path():
    x = pt.vector("x", shape=(30,))
    cost = pt.exp(x[1:] - x[:-1]).sum() + (x**4).sum()
    p = _point(x, 5)
    plain = sd.hessian(cost, x)
    auto = sd.hessian(cost, x, low_rank="auto")
    assert isinstance(auto, SparseVariable)
    H = sd.hessian(cost, x, low_rank=True)
    assert H.rank == 0
    f = pytensor.function([x], [plain, auto, H.S, H.U, H.C], mode=MODE)
    a, b, S, U, C = f(p)
    np.testing.assert_array_equal(a.toarray(), b.toarray())
    np.testing.assert_array_equal(a.toarray(), S.toarray())
    assert U.shape == (30, 0) and C.shape == (0, 0)


def test_auto_uses_low_rank_when_coupled():
    cost, x = icar(5)
    H = sd.hessian(cost, x, low_rank="auto")
    assert isinstance(H, SparsePlusLowRank) and H.rank == 1


def test_default_result_unchanged():
    """low_rank=False (the default) is the plain CSR Hessian, dense pattern and all."""
    cost, x = icar(4)
    H = sd.hessian(cost, x)
    assert isinstance(H, SparseVariable)
    f = pytensor.function([x], [H, hessian(cost, x)], mode=MODE)
    a, ref = f(_point(x))
    np.testing.assert_allclose(a.toarray(), ref, rtol=1e-12)


def test_no_hint_inside_the_low_rank_plan():
    cost, x = icar(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowRankHint)
        sd.hessian(cost, x, low_rank=True)


def test_solve_and_logdet_of_the_icar_precision():
    cost, x = icar(6)
    Q = -sd.hessian(cost, x, low_rank=True)
    b = np.linspace(-1, 1, 36)
    y = sd.linalg.spsolve(Q, b, assume_a="pos")
    ld = sd.linalg.logdet(Q)
    Qd = -hessian(cost, x)
    f = pytensor.function(
        [x],
        [y, ld, pt.linalg.solve(Qd, b), pt.linalg.slogdet(Qd)[1], pytensor.grad(ld, x)],
        mode=MODE,
    )
    p = _point(x, 6)
    y0, ld0, y1, ld1, g = f(p)
    np.testing.assert_allclose(y0, y1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ld0, ld1, rtol=1e-12)
    # d logdet / dx through S's data and the factors (INLA's Laplace term), by differences
    fl = pytensor.function([x], ld, mode=MODE)
    e = np.zeros(36)
    for i in (0, 17, 35):
        e[:] = 0
        e[i] = 1e-6
        np.testing.assert_allclose(g[i], (fl(p + e) - fl(p - e)) / 2e-6, rtol=1e-5, atol=1e-8)


def test_bad_input():
    cost, x = icar(4)
    with pytest.raises(NotImplementedError, match="one wrt"):
        sd.hessian(cost, [x], low_rank=True)
    with pytest.raises(ValueError, match="lazy"):
        sd.hessian(cost, x, low_rank=True, lazy=True)
    with pytest.raises(ValueError, match="low_rank must be"):
        sd.hessian(cost, x, low_rank="yes")
    with pytest.raises(ValueError, match="sparsity"):
        sd.hessian(cost, x, low_rank=True, sparsity=np.eye(16, dtype=bool))
    y = pt.vector("y", shape=(3,))
    with pytest.raises(DisconnectedInputError):
        sd.hessian(cost, y, low_rank=True)


@pytest.mark.numba
def test_numba_icar_logdet():
    cost, x = icar(5)
    Q = -sd.hessian(cost, x, low_rank=True)
    ld = sd.linalg.logdet(Q)
    outs = [ld, pytensor.grad(ld, x)]
    p = _point(x, 7)
    got = pytensor.function([x], outs, mode="NUMBA")(p)
    ref = pytensor.function([x], outs, mode=MODE)(p)
    for a, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-10)
