"""Sparse plus low-rank ``S + U C Uᵀ``: Woodbury solve and determinant-lemma logdet against
dense NumPy / ``pt.linalg``, gradients against central finite differences, bad input."""

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff import linalg as sl
from sparsediff.linalg import SparsePlusLowRank

from .matrices import central_fd, random_general, random_spd, rebuild
from .matrices import symbolic as sym

MODE = "FAST_COMPILE"
N, R = 20, 3


def _problem(seed=0, spd=True, r=R):
    rng = np.random.default_rng(seed)
    S0 = random_spd(N, 0.15, seed) if spd else random_general(N, 0.15, seed)
    U0 = rng.standard_normal((N, r))
    B = rng.standard_normal((r, r))
    C0 = B @ B.T + 0.5 * np.eye(r) if spd else B
    return S0, U0, C0


def _symbolic(S0, r=R):
    S, data, S0 = sym(S0)
    U = pt.matrix("U", shape=(N, r))
    C = pt.matrix("C", shape=(r, r))
    return SparsePlusLowRank(S, U, C), data, U, C, S0


def _dense(S0, data, U0, C0):
    return rebuild(S0, data) + U0 @ C0 @ U0.T


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "CVM"])
@pytest.mark.parametrize("assume_a", ["gen", "pos"])
def test_solve_and_logdet_match_dense(mode, assume_a):
    S0, U0, C0 = _problem(1, spd=True)
    A, data, U, C, S0 = _symbolic(S0)
    b0 = np.random.default_rng(2).standard_normal(N)
    B0 = np.random.default_rng(3).standard_normal((N, 2))
    b, Bm = pt.vector("b", shape=(N,)), pt.matrix("B", shape=(N, 2))
    outs = [sl.spsolve(A, b, assume_a=assume_a), sl.spsolve(A, Bm, assume_a=assume_a)]
    outs.append(sl.logdet(A))
    f = pytensor.function([data, U, C, b, Bm], outs, mode=mode)
    y, Y, ld = f(S0.data, U0, C0, b0, B0)
    Ad = _dense(S0, S0.data, U0, C0)
    np.testing.assert_allclose(y, np.linalg.solve(Ad, b0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Y, np.linalg.solve(Ad, B0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ld, np.linalg.slogdet(Ad)[1], rtol=1e-12)


@pytest.mark.parametrize("transposed", [False, True])
def test_unsymmetric_solve(transposed):
    S0, U0, C0 = _problem(4, spd=False)
    A, data, U, C, S0 = _symbolic(S0)
    b0 = np.random.default_rng(5).standard_normal(N)
    b = pt.vector("b", shape=(N,))
    f = pytensor.function([data, U, C, b], sl.spsolve(A, b, transposed=transposed), mode=MODE)
    Ad = _dense(S0, S0.data, U0, C0)
    ref = np.linalg.solve(Ad.T if transposed else Ad, b0)
    np.testing.assert_allclose(f(S0.data, U0, C0, b0), ref, rtol=1e-10, atol=1e-12)


def test_gradients_against_finite_differences_and_dense_algebra():
    S0, U0, C0 = _problem(6, spd=True)
    A, data, U, C, S0 = _symbolic(S0)
    b0 = np.random.default_rng(7).standard_normal(N)
    w0 = np.random.default_rng(8).standard_normal(N)
    b = pt.vector("b", shape=(N,))
    cost = (sl.spsolve(A, b, assume_a="pos") * w0).sum() + sl.logdet(A)
    grads = pytensor.grad(cost, [data, U, C, b])
    f = pytensor.function([data, U, C, b], [cost, *grads], mode=MODE)
    # dense reference: the same composition with pt.linalg
    Ad = ps.dense_from_sparse(A.S) + U @ C @ U.T
    cost_d = (pt.linalg.solve(Ad, b) * w0).sum() + pt.linalg.slogdet(Ad)[1]
    fd = pytensor.function([data, U, C, b], [cost_d, *pytensor.grad(cost_d, [data, U, C, b])])
    got, ref = f(S0.data, U0, C0, b0), fd(S0.data, U0, C0, b0)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    # U, C, b: the same function of the same inputs
    for g, r in zip(got[2:], ref[2:], strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-10)

    def value(d, u, c, bb):
        M = rebuild(S0, d)
        M = 0.5 * (M + M.T) + u @ c @ u.T  # assume_a="pos" and logdet read the symmetric part
        return np.linalg.solve(M, bb) @ w0 + np.linalg.slogdet(M)[1]

    args = [S0.data, U0, C0, b0]
    for i, g in enumerate(got[1:]):
        flat = args[i].ravel()

        def f_i(v, i=i):
            a = list(args)
            a[i] = v.reshape(args[i].shape)
            return value(*a)

        np.testing.assert_allclose(g.ravel(), central_fd(f_i, flat), rtol=1e-6, atol=1e-7)


def test_rank_zero_is_the_sparse_solve():
    S0, _, _ = _problem(9)
    S, data, S0 = sym(S0)
    A = SparsePlusLowRank(S, np.zeros((N, 0)), np.zeros((0, 0)))
    b0 = np.ones(N)
    f = pytensor.function([data], [sl.spsolve(A, b0, assume_a="pos"), sl.logdet(A)], mode=MODE)
    y, ld = f(S0.data)
    np.testing.assert_allclose(y, np.linalg.solve(S0.toarray(), b0), rtol=1e-12)
    np.testing.assert_allclose(ld, np.linalg.slogdet(S0.toarray())[1], rtol=1e-12)


def test_matmul_neg_scale_and_conversions():
    S0, U0, C0 = _problem(10)
    A, data, U, C, S0 = _symbolic(S0)
    v0 = np.random.default_rng(11).standard_normal(N)
    V0 = np.random.default_rng(12).standard_normal((N, 2))
    outs = [
        A @ v0,
        A @ V0,
        (-A).to_dense(),
        (2.0 * A).to_dense(),
        ps.dense_from_sparse(A.to_sparse()),
    ]
    f = pytensor.function([data, U, C], outs, mode=MODE)
    Av, AV, neg, two, full = f(S0.data, U0, C0)
    Ad = _dense(S0, S0.data, U0, C0)
    np.testing.assert_allclose(Av, Ad @ v0, rtol=1e-12)
    np.testing.assert_allclose(AV, Ad @ V0, rtol=1e-12)
    np.testing.assert_allclose(neg, -Ad, rtol=1e-12)
    np.testing.assert_allclose(two, 2 * Ad, rtol=1e-12)
    np.testing.assert_allclose(full, Ad, rtol=1e-12)
    assert A.rank == R and A.outputs == (A.S, A.U, A.C)


def test_singular_sparse_part_fails_loudly():
    S0, U0, C0 = _problem(13)
    S0 = sp.csr_matrix(S0)
    rows = np.repeat(np.arange(N), np.diff(S0.indptr))
    S0.data[(rows == 0) | (S0.indices == 0)] = 0.0  # row and column 0 zero (kept in the
    # pattern): exactly singular
    A, data, U, C, S0 = _symbolic(S0)
    f = pytensor.function([data, U, C], sl.spsolve(A, np.ones(N)), mode=MODE)
    with pytest.raises(sl.SingularMatrixError):
        f(S0.data, U0, C0)
    g = pytensor.function([data, U, C], sl.logdet(A), mode=MODE)
    with pytest.raises(sl.NotPositiveDefiniteError):
        g(S0.data, U0, C0)


def test_indefinite_total_fails_loudly_or_gives_nan():
    S0, U0, C0 = _problem(14)
    A, data, U, C, S0 = _symbolic(S0)
    big_negative = -1e3 * np.eye(R)  # S SPD, S + U C Uᵀ indefinite
    f = pytensor.function([data, U, C], sl.logdet(A), mode=MODE)
    with pytest.raises(AssertionError, match="not positive definite"):
        f(S0.data, U0, big_negative)
    g = pytensor.function([data, U, C], sl.logdet(A, on_error="nan"), mode=MODE)
    assert np.isnan(g(S0.data, U0, big_negative))
    assert np.isfinite(g(S0.data, U0, C0))


def test_singular_total_fails_loudly():
    S0, U0, _ = _problem(15, r=1)
    A, data, U, C, S0 = _symbolic(S0, r=1)
    # C = -1 / (uᵀS⁻¹u): I + C UᵀS⁻¹U = 0 exactly, S + U C Uᵀ is singular
    Sd = S0.toarray()
    C_sing = np.array([[-1.0 / (U0[:, 0] @ np.linalg.solve(Sd, U0[:, 0]))]])
    f = pytensor.function([data, U, C], sl.spsolve(A, np.ones(N)), mode=MODE)
    with pytest.raises((np.linalg.LinAlgError, AssertionError, ValueError)):
        f(S0.data, U0, C_sing * (1 + 1e-17))


def test_shape_mismatch_and_bad_types():
    S0, _, _ = _problem(16)
    S, _, _ = sym(S0)
    S = ps.CSR(S.owner.inputs[0], S0.indices, S0.indptr, pt.as_tensor(np.array(S0.shape)))
    with pytest.raises(ValueError, match="columns of U"):
        SparsePlusLowRank(S, pt.matrix(shape=(N, 2)), pt.matrix(shape=(3, 3)))
    with pytest.raises(ValueError, match="rows of C"):
        SparsePlusLowRank(S, pt.matrix(shape=(N, 2)), pt.matrix(shape=(2, 3)))
    with pytest.raises(ValueError, match="must be matrices"):
        SparsePlusLowRank(S, pt.vector(shape=(N,)), pt.matrix(shape=(1, 1)))
    with pytest.raises(TypeError, match="sparse"):
        SparsePlusLowRank(pt.matrix(shape=(N, N)), pt.matrix(shape=(N, 1)), np.eye(1))
    A = SparsePlusLowRank(S, pt.matrix(shape=(N, 2)), pt.matrix(shape=(2, 2)))
    with pytest.raises(ValueError, match="rows for a"):
        sl.spsolve(A, np.ones(N + 1))
    with pytest.raises(ValueError, match="scalar"):
        A * np.ones(2)


def test_sd_linalg_exports():
    assert sd.linalg.SparsePlusLowRank is SparsePlusLowRank


@pytest.mark.numba
def test_numba_solve_and_logdet():
    S0, U0, C0 = _problem(17)
    A, data, U, C, S0 = _symbolic(S0)
    b0 = np.ones(N)
    outs = [sl.spsolve(A, b0, assume_a="pos"), sl.logdet(A)]
    outs.append(pytensor.grad(outs[1] + outs[0].sum(), U))
    f = pytensor.function([data, U, C], outs, mode="NUMBA")
    g = pytensor.function([data, U, C], outs, mode=MODE)
    for a, r in zip(f(S0.data, U0, C0), g(S0.data, U0, C0), strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-10)


def test_logdet_next_to_a_solve_when_the_capacitance_pivots():
    """PyTensor 3.0.7 rewrites det(K) into prod(diag(LU)) — without the pivots' sign — when an
    LU of K is in the graph (the solve's). K = I + C UᵀS⁻¹U below needs a row swap and has a
    positive determinant: the SPD check must not read the sign from that product."""
    u1 = np.zeros(N)
    u1[:4] = 1.0  # |u1| = 2
    u2 = np.zeros(N)
    u2[10] = 0.1  # orthogonal to u1
    U0 = np.stack([u1, u2], axis=1)
    C0 = np.array([[0.0, 1.0], [1.0, 0.0]])  # the shape a cross term gives
    S0 = sp.csr_matrix(sp.eye(N))
    A, data, U, C, S0 = _symbolic(S0, r=2)
    b = np.linspace(0, 1, N)
    # two solves with K: PyTensor factors K once (LUFactor), which the det rewrite then reads
    outs = [sl.spsolve(A, b, assume_a="pos"), sl.spsolve(A, b**2, assume_a="pos"), sl.logdet(A)]
    y, y2, ld = pytensor.function([data, U, C], outs, mode="CVM")(S0.data, U0, C0)
    Ad = _dense(S0, S0.data, U0, C0)
    np.testing.assert_allclose(ld, np.linalg.slogdet(Ad)[1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y, np.linalg.solve(Ad, b), rtol=1e-12)
    np.testing.assert_allclose(y2, np.linalg.solve(Ad, b**2), rtol=1e-12)
