"""The same numbers on every backend: C (CVM), Python (FAST_COMPILE), Numba, JAX."""

import warnings

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from pytensor.sparse.basic import CSM

import sparsediff as sd
from sparsediff import linalg as sl

from .matrices import laplacian_2d, random_general


def _graph():
    """spsolve (LU and SPD, transposed) and logdet of sd.hessian, all with gradients."""
    m = 4
    x = pt.dvector("x", shape=(m * m,))
    tau = pt.dscalar("tau")
    X = x.reshape((m, m))
    f = (
        0.5 * tau * (((X[1:] - X[:-1]) ** 2).sum() + ((X[:, 1:] - X[:, :-1]) ** 2).sum())
        + 0.5 * (x**2).sum()
        + pt.exp(0.2 * x).sum()
    )
    H = sd.hessian(f, x)
    G0 = random_general(m * m, 0.15, seed=4)
    g = pt.dvector("g")
    G = ps.CSR(g, G0.indices, G0.indptr, G0.shape)
    b = pt.sin(x)
    laplace = -f - 0.5 * sl.logdet(H)
    cost = (
        laplace
        + (sl.spsolve(G, b) ** 2).sum()
        + sl.spsolve(G, b, transposed=True).sum()
        + (sl.spsolve(H, b, assume_a="pos") * x).sum()
    )
    outs = [cost, *pytensor.grad(cost, [x, tau, g]), sl.inv_diag(H)]
    return [x, tau, g], outs, G0


def _run(mode):
    inputs, outs, G0 = _graph()
    fn = pytensor.function(inputs, outs, mode=mode)
    xv = np.linspace(-1, 1, 16)
    return fn, [np.asarray(o) for o in fn(xv, 0.7, G0.data)]


@pytest.fixture(scope="module")
def reference():
    return _run("FAST_COMPILE")[1]


def _no_sparse_in(fn):
    return not any(isinstance(n.op, CSM) for n in fn.maker.fgraph.toposort())


def _small(mode):
    """A small graph (compiling is what costs on C and Numba): every Op, value and gradient."""
    G0 = random_general(12, 0.2, seed=8)
    S0 = laplacian_2d(3, shift=0.3)
    g, s, b = pt.dvector("g"), pt.dvector("s"), pt.dvector("b")
    G = ps.CSR(g, G0.indices, G0.indptr, G0.shape)
    S = ps.CSC(s, S0.indices, S0.indptr, S0.shape)  # symmetric: its CSR triple is a CSC one
    cost = (
        (sl.spsolve(G, b) ** 2).sum()
        + sl.spsolve(G, b, transposed=True).sum()
        + sl.logdet(S)
        + (sl.spsolve(S, b[:9], assume_a="pos") ** 2).sum()
    )
    outs = [cost, *pytensor.grad(cost, [g, s, b]), sl.inv_diag(S)]
    fn = pytensor.function([g, s, b], outs, mode=mode)
    args = (G0.data, S0.data, np.linspace(-1, 1, 12))
    return fn, [np.asarray(o) for o in fn(*args)]


def test_cvm():
    ref = _small("FAST_COMPILE")[1]
    fn, got = _small("CVM")
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    assert _no_sparse_in(fn)


@pytest.mark.numba
def test_numba():
    ref = _small("FAST_COMPILE")[1]
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "error", message="Numba will use object mode to run (SpSolve|LogDet|Inv)"
        )
        fn, got = _small("NUMBA")
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    assert _no_sparse_in(fn)


@pytest.mark.jax
def test_jax(reference):
    pytest.importorskip("jax")
    _, got = _run("JAX")
    for a, b in zip(got, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.jax
def test_jax_one_factorization_per_evaluation():
    pytest.importorskip("jax")
    A0 = laplacian_2d(5)
    data = pt.dvector("data")
    A = ps.CSR(data, A0.indices, A0.indptr, A0.shape)
    ld = sl.logdet(A)
    fn = pytensor.function([data], [ld, pytensor.grad(ld, data)], mode="JAX")
    sl.clear_factor_cache()
    before = sl.factor_stats()["factorizations"]
    ld_v, g = fn(A0.data * 2)
    np.testing.assert_allclose(g, np.linalg.inv(2 * A0.toarray())[A0.tocoo().row, A0.tocoo().col])
    assert sl.factor_stats()["factorizations"] - before == 1
    np.testing.assert_allclose(ld_v, np.linalg.slogdet(2 * A0.toarray())[1])


def test_symbolic_sparse_input_goes_through_csm_properties():
    """A sparse *input* variable (no CSM node): the triple comes from csm_properties."""
    A = ps.csr_matrix("A", dtype="float64")
    b = pt.dvector("b")
    y = sl.spsolve(A, b)
    ld = sl.logdet(A)
    A0 = sp.csr_matrix(laplacian_2d(4))
    fn = pytensor.function([A, b], [y, ld], mode="CVM")
    yv, ldv = fn(A0, np.ones(16))
    np.testing.assert_allclose(A0 @ yv, np.ones(16), atol=1e-12)
    np.testing.assert_allclose(ldv, np.linalg.slogdet(A0.toarray())[1])
    with pytest.raises(ValueError, match="square"):
        fn(sp.csr_matrix(np.ones((2, 3))), np.ones(2))


@pytest.mark.numba
def test_numba_cholesky():
    """A sparse output from object mode: L and p as on the C backend."""
    A0 = laplacian_2d(3)
    data = pt.dvector("data")
    L, p = sl.cholesky(ps.CSR(data, A0.indices, A0.indptr, A0.shape))
    Lv, pv = pytensor.function([data], [L, p], mode="NUMBA")(A0.data)
    assert sp.issparse(Lv)
    np.testing.assert_allclose((Lv @ Lv.T).toarray(), A0.toarray()[np.ix_(pv, pv)], atol=1e-14)


@pytest.mark.jax
def test_jax_cholesky_is_a_clear_error():
    pytest.importorskip("jax")
    A0 = laplacian_2d(3)
    data = pt.dvector("data")
    _, p = sl.cholesky(ps.CSR(data, A0.indices, A0.indptr, A0.shape))
    with pytest.raises(NotImplementedError, match="JAX graphs cannot hold"):
        pytensor.function([data], p, mode="JAX")
