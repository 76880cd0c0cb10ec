"""The factorization layer: every backend against dense NumPy, the cache, bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsediff import linalg as sl
from sparsediff.linalg import factor as F
from sparsediff.linalg.library import resolve_backend

from .matrices import SPD_BACKENDS, laplacian_2d, random_general, random_spd


@pytest.mark.parametrize("backend", SPD_BACKENDS)
def test_spd_backends_match_dense(backend):
    A = random_spd(40, 0.08, seed=1)
    Ad = A.toarray()
    Ainv = np.linalg.inv(Ad)
    b = np.random.default_rng(0).standard_normal((40, 3))
    f = sl.factorize(A, "pos", backend)
    assert f.backend == backend and f.assume_a == "pos" and f.nnz_factor >= A.nnz // 2
    np.testing.assert_allclose(f.solve(b), np.linalg.solve(Ad, b), atol=1e-12)
    np.testing.assert_allclose(f.solve(b[:, 0], transposed=True), np.linalg.solve(Ad, b[:, 0]))
    np.testing.assert_allclose(f.logdet(), np.linalg.slogdet(Ad)[1], rtol=1e-13)
    L, D, p = f.ldl()
    M = (sp.eye(40) + L) @ sp.diags(D) @ (sp.eye(40) + L).T
    np.testing.assert_allclose(M.toarray(), Ad[np.ix_(p, p)], atol=1e-12)
    assert sp.triu(L).nnz == 0
    np.testing.assert_allclose(f.inv_diag(), np.diag(Ainv), atol=1e-14)
    C = A.tocoo()
    np.testing.assert_allclose(f.inv_on_pattern(C.row, C.col), Ainv[C.row, C.col], atol=1e-14)


def test_general_lu_and_transposed():
    A = random_general(50, 0.06, seed=2)
    Ad = A.toarray()
    b = np.random.default_rng(1).standard_normal(50)
    f = sl.factorize(A)
    assert f.backend == "superlu"
    np.testing.assert_allclose(f.solve(b), np.linalg.solve(Ad, b), atol=1e-12)
    np.testing.assert_allclose(f.solve(b, transposed=True), np.linalg.solve(Ad.T, b), atol=1e-12)
    np.testing.assert_allclose(f.logdet(), np.linalg.slogdet(Ad)[1], rtol=1e-12)
    with pytest.raises(ValueError, match="SPD"):
        f.ldl()


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("assume_a", ["gen", "pos"])
def test_triple_formats(fmt, assume_a):
    A = random_spd(30, 0.1, 3) if assume_a == "pos" else random_general(30, 0.1, 3)
    M = sp.csr_matrix(A) if fmt == "csr" else sp.csc_matrix(A)
    b = np.arange(30.0)
    f = F.cached_factorize(M.data, M.indices, M.indptr, M.shape, fmt, assume_a, "superlu")
    np.testing.assert_allclose(f.solve(b), np.linalg.solve(A.toarray(), b), atol=1e-11)
    np.testing.assert_allclose(
        f.solve(b, transposed=True), np.linalg.solve(A.toarray().T, b), atol=1e-11
    )


def test_cache_shares_one_factorization():
    sl.clear_factor_cache()
    A = laplacian_2d(8)
    before = sl.factor_stats()
    args = (A.indices, A.indptr, A.shape, "csr", "pos", "superlu")
    f1 = F.cached_factorize(A.data, *args)
    f2 = F.cached_factorize(A.data.copy(), *args)  # equal content, another buffer
    assert f1 is f2
    f3 = F.cached_factorize(A.data * 2, *args)  # other values: a new factor
    assert f3 is not f1
    after = sl.factor_stats()
    assert after["factorizations"] - before["factorizations"] == 2
    assert after["cache_hits"] - before["cache_hits"] == 1


def test_explicit_zeros_stay_in_the_pattern():
    """A stored zero (a Hessian entry that vanishes at this point) is still in the gradient."""
    C = laplacian_2d(5).tocoo()
    off = (C.row != C.col) & ((C.row + C.col) % 3 == 0)
    C.data[off] = 0.0  # symmetric explicit zeros, pattern unchanged
    A = sp.csr_matrix((C.data, (C.row, C.col)), shape=C.shape)
    assert A.nnz == C.nnz and np.count_nonzero(A.data == 0) > 4
    for backend in SPD_BACKENDS:
        f = sl.factorize(A, "pos", backend)
        C = A.tocoo()
        Ainv = np.linalg.inv(A.toarray())
        np.testing.assert_allclose(f.inv_on_pattern(C.row, C.col), Ainv[C.row, C.col], atol=1e-14)


def test_unsymmetric_data_uses_the_symmetric_part():
    A = random_spd(20, 0.15, 4).tolil()
    A[3, 4] += 0.3  # A no longer symmetric (same pattern)
    A = sp.csr_matrix(A)
    S = 0.5 * (A + A.T).toarray()
    for backend in SPD_BACKENDS:
        f = sl.factorize(A, "pos", backend)
        np.testing.assert_allclose(f.logdet(), np.linalg.slogdet(S)[1], rtol=1e-13)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    density=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**31),
    backend=st.sampled_from(SPD_BACKENDS),
)
def test_selected_inverse_random_spd(n, density, seed, backend):
    A = random_spd(n, density, seed)
    Ainv = np.linalg.inv(A.toarray())
    f = sl.factorize(A, "pos", backend)
    C = A.tocoo()
    np.testing.assert_allclose(f.inv_on_pattern(C.row, C.col), Ainv[C.row, C.col], atol=1e-12)
    np.testing.assert_allclose(f.inv_diag(), np.diag(Ainv), atol=1e-12)
    np.testing.assert_allclose(f.logdet(), np.linalg.slogdet(A.toarray())[1], atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), density=st.floats(0.0, 0.3), seed=st.integers(0, 2**31))
def test_lu_random_general(n, density, seed):
    A = random_general(n, density, seed)
    Ad = A.toarray()
    b = np.linspace(-1, 1, n)
    f = sl.factorize(A)
    np.testing.assert_allclose(Ad @ f.solve(b), b, atol=1e-9)
    np.testing.assert_allclose(Ad.T @ f.solve(b, transposed=True), b, atol=1e-9)


# ---------------------------------------------------------------------------------- bad input


def test_singular_raises():
    A = sp.csr_matrix(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(sl.SingularMatrixError):
        sl.factorize(A)
    Z = sp.csr_matrix(([1.0, 1.0], ([0, 1], [0, 0])), shape=(2, 2))  # empty column
    with pytest.raises(sl.SingularMatrixError):
        sl.factorize(Z)


@pytest.mark.parametrize("backend", SPD_BACKENDS)
def test_not_spd_raises(backend):
    A = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    with pytest.raises(sl.NotPositiveDefiniteError):
        sl.factorize(A, "pos", backend)
    N = sp.csr_matrix(-np.eye(3))
    with pytest.raises(sl.NotPositiveDefiniteError):
        sl.factorize(N, "pos", backend)


def test_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        sl.factorize(sp.random(3, 4, density=0.5))
    with pytest.raises(TypeError, match="SciPy sparse"):
        sl.factorize(np.eye(3))
    bad = sp.csr_matrix(np.eye(3))
    bad.data[1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sl.factorize(bad)
    f = sl.factorize(sp.eye(3, format="csc"))
    with pytest.raises(ValueError, match="right-hand side"):
        f.solve(np.ones(4))
    with pytest.raises(ValueError, match="unknown factorization backend"):
        sl.factorize(sp.eye(3), "pos", "mumps")
    with pytest.raises(ValueError, match="positive definite"):
        resolve_backend("qdldl", "gen")
    with pytest.raises(ValueError, match="assume_a"):
        resolve_backend(None, "sym")
    with pytest.raises(ValueError, match="inconsistent"):
        F.check_triple(np.ones(2), np.zeros(3, int), np.array([0, 1, 2]), (2, 2))
    with pytest.raises(ValueError, match="out of range"):
        F.check_triple(np.ones(2), np.array([0, 5]), np.array([0, 1, 2]), (2, 2))


def test_backend_choice_visible_and_scoped():
    assert sl.backend("gen") == "superlu"
    assert sl.backend("pos") == SPD_BACKENDS[0]
    with sl.use_backend("superlu"):
        assert sl.backend("pos") == "superlu"
    assert sl.backend("pos") == SPD_BACKENDS[0]
    with pytest.raises(ValueError):
        with sl.use_backend("nope"):
            pass


def test_missing_backend_raises_import_error(monkeypatch):
    from sparsediff.linalg import library

    monkeypatch.setattr(library, "_importable", lambda name: name == "superlu")
    assert library.available_backends() == ("superlu",)
    assert library.resolve_backend(None, "pos") == "superlu"  # the last fallback
    with pytest.raises(ImportError, match="not installed"):
        library.resolve_backend("cholmod", "pos")


def test_backend_is_fixed_when_the_graph_is_built():
    from .matrices import symbolic

    A, _, _ = symbolic(laplacian_2d(3))
    with sl.use_backend("superlu"):
        ld = sl.logdet(A)
    assert ld.owner.op.backend == "superlu"
    assert sl.logdet(A).owner.op.backend == sl.backend("pos")
    assert sl.logdet(A, backend="superlu").owner.op.backend == "superlu"
