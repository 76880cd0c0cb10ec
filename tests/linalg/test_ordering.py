"""Orderings, the exact-symmetry shortcut and the supernodal selected inversion vs dense NumPy.

The factor layer picks CHOLMOD's analysis per pattern (CHOLMOD's default or nested dissection,
by predicted cost), factors an exactly symmetric matrix as it is, and inverts selectively by
supernodal blocks. Each choice must give the numbers of the dense reference, on random SPD
matrices and 2-D Laplacians, with CHOLMOD, qdldl, SuperLU, and with CHOLMOD unavailable.
"""

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsediff import linalg as sl
from sparsediff.linalg import factor as F
from sparsediff.linalg import kernels, library

from .matrices import SPD_BACKENDS, laplacian_2d, random_spd

HAS_CHOLMOD = "cholmod" in SPD_BACKENDS


def _check_against_dense(f, A):
    """Every SPD result of the factor ``f`` of ``A`` against dense NumPy (symmetric part)."""
    Ad = A.toarray()
    S = 0.5 * (Ad + Ad.T)
    Sinv = np.linalg.inv(S)
    b = np.random.default_rng(3).standard_normal((A.shape[0], 2))
    np.testing.assert_allclose(f.logdet(), np.linalg.slogdet(S)[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f.solve(b), np.linalg.solve(S, b), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(f.inv_diag(), np.diag(Sinv), rtol=1e-10, atol=1e-14)
    C = sp.coo_matrix(A)
    np.testing.assert_allclose(
        f.inv_on_pattern(C.row, C.col), Sinv[C.row, C.col], rtol=1e-9, atol=1e-13
    )


def _matrices():
    return [
        ("laplacian 12", laplacian_2d(12)),
        ("laplacian 20", laplacian_2d(20, shift=0.1)),
        ("random spd", random_spd(80, 0.05, seed=4)),
        ("random spd dense-ish", random_spd(60, 0.2, seed=5)),
    ]


@pytest.mark.parametrize("backend", SPD_BACKENDS)
@pytest.mark.parametrize("name,A", _matrices())
def test_chosen_ordering_matches_dense(backend, name, A):
    sl.clear_factor_cache()
    _check_against_dense(sl.factorize(A, "pos", backend), A)


@pytest.mark.skipif(not HAS_CHOLMOD, reason="CHOLMOD (scikit-sparse) not installed")
@pytest.mark.parametrize("mode", ["auto", "simplicial", "supernodal"])
@pytest.mark.parametrize("orderings", [("default",), ("nesdis",), ("default", "nesdis")])
@pytest.mark.parametrize("name,A", _matrices())
def test_each_cholmod_ordering_matches_dense(monkeypatch, mode, orderings, name, A):
    monkeypatch.setattr(F, "CHOLMOD_ORDERINGS", orderings)
    monkeypatch.setattr(F, "CHOLMOD_MODE", mode)
    monkeypatch.setattr(F.CholmodFactor, "_symbolic", type(F.CholmodFactor._symbolic)())
    f = sl.factorize(A, "pos", "cholmod")
    assert f.ordering in (*orderings, "default")  # "default" if this CHOLMOD lacks METIS
    _check_against_dense(f, A)


def _cost(A, ordering):
    from sksparse import cholmod

    S = sp.csc_matrix(A)
    p = np.asarray(cholmod.analyze(S, ordering_method=ordering).P(), dtype=np.int64)
    M = sp.csc_matrix(sp.csc_matrix((np.ones(S.nnz), S.indices, S.indptr), S.shape)[p][:, p])
    return kernels.cholesky_flops(M.indptr.astype(np.int64), M.indices.astype(np.int64))


@pytest.mark.skipif(not HAS_CHOLMOD, reason="CHOLMOD (scikit-sparse) not installed")
def test_cholmod_ordering_is_the_cheaper_and_analyzed_once_per_pattern(monkeypatch):
    monkeypatch.setattr(F.CholmodFactor, "_symbolic", type(F.CholmodFactor._symbolic)())
    n = 400  # banded (pentadiagonal): AMD is optimal, nested dissection fills more
    band = sp.diags([np.ones(n - 2), np.ones(n - 1), 6 * np.ones(n), np.ones(n - 1),
                     np.ones(n - 2)], [-2, -1, 0, 1, 2], format="csr")  # fmt: skip
    for A in (laplacian_2d(40), band):
        before = sl.factor_stats()["cholmod_analyses"]
        f = sl.factorize(A, "pos", "cholmod")
        analyzed = sl.factor_stats()["cholmod_analyses"] - before
        assert 1 <= analyzed <= len(F.CHOLMOD_ORDERINGS)
        costs = {o: _cost(A, o) for o in F.CHOLMOD_ORDERINGS if o == "default" or analyzed > 1}
        assert costs[f.ordering] == min(costs.values())
        g = sl.factorize(A * 2.0, "pos", "cholmod")  # same pattern: no new analysis
        assert sl.factor_stats()["cholmod_analyses"] - before == analyzed
        assert g.ordering == f.ordering
        np.testing.assert_allclose(g.logdet(), f.logdet() + A.shape[0] * np.log(2.0))
    if len(costs) > 1:  # METIS available: the band keeps CHOLMOD's default (AMD)
        assert f.ordering == "default"


def test_exact_symmetry_shortcut_and_unsymmetric_input():
    A = sp.csc_matrix(random_spd(30, 0.1, seed=6))
    assert F._spd_matrix(A) is A  # exactly symmetric: factored as it is
    rng = np.random.default_rng(0)
    B = A.copy()
    B.data = B.data + 1e-3 * rng.standard_normal(B.nnz)  # same pattern, unsymmetric values
    assert F._spd_matrix(B) is not B
    C = A.copy().tolil()
    C[0, 29] = 0.01  # unsymmetric pattern
    C = sp.csc_matrix(C)
    for M in (B, C):
        assert not F._is_symmetric(sp.csc_matrix(M))
        for backend in SPD_BACKENDS:
            sl.clear_factor_cache()
            _check_against_dense(sl.factorize(M, "pos", backend), M)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 60),
    density=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**31 - 1),
    backend=st.sampled_from(SPD_BACKENDS),
)
def test_selected_inverse_property(n, density, seed, backend):
    A = random_spd(n, density, seed)
    _check_against_dense(sl.factorize(A, "pos", backend), A)


def test_supernodal_kernel_detects_an_open_pattern():
    """A factor pattern missing a fill entry: ``ok`` is False (the caller recomputes)."""
    M = sp.csc_matrix(np.array([[4.0, 1, 1], [1, 4, 0], [1, 0, 4]]))
    Lp = np.array([0, 2, 2, 2], np.int64)  # fill (2, 1) dropped
    Li = np.array([1, 2], np.int32)
    _, _, ok = kernels.takahashi(Lp, Li, np.array([0.25, 0.25]), M.diagonal())
    assert not ok
    starts = kernels.supernodes(np.array([0, 2, 3, 3], np.int64), np.array([1, 2, 2], np.int32))
    np.testing.assert_array_equal(starts, [0, 3])  # one supernode: nested columns


def test_logdet_gradient_without_cholmod(monkeypatch):
    """CHOLMOD unavailable: the default falls back (qdldl, else SuperLU) with the same numbers."""
    monkeypatch.setattr(library, "_importable", lambda name: name != "cholmod")
    name = library.resolve_backend(None, "pos")
    assert name != "cholmod"
    A = laplacian_2d(9)
    data = pt.dvector("data")
    ld = sl.logdet(ps.CSR(data, A.indices, A.indptr, A.shape))
    f = pytensor.function([data], [ld, pytensor.grad(ld, data)], mode="FAST_COMPILE")
    sl.clear_factor_cache()
    value, grad = f(A.data)
    Ad = A.toarray()
    Ainv = np.linalg.inv(Ad)
    C = A.tocoo()
    np.testing.assert_allclose(value, np.linalg.slogdet(Ad)[1], rtol=1e-12)
    np.testing.assert_allclose(grad, Ainv[C.col, C.row], rtol=1e-10, atol=1e-14)
