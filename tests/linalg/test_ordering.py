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


# --------------------------------------------------------------------------------------------
# LU: the ordering chosen by measured fill (sparsediff.linalg.lu_ordering)
# --------------------------------------------------------------------------------------------

LU_SPECS = ("COLAMD", "MMD_AT_PLUS_A", "MMD_ATA", "NATURAL")
#: The chosen LU's measured fill may exceed the least fill the test finds by this factor: the
#: choice is made on the fill under diagonal pivots, and threshold pivoting can add a little.
FILL_TOLERANCE = 1.25


def block_banded(T: int, k: int = 23, zero_diagonal: bool = True, seed: int = 0):
    """A stacked perfect-foresight system: T periods of a k-equation block coupled to t-1 (six
    states) and t+1 (eight forward variables); ``zero_diagonal`` lists each block's equations
    out of variable order (its strong entries off the diagonal, as in gEconpy's models)."""
    rng = np.random.default_rng(seed)

    def block(density, cols):
        B = (rng.random((k, k)) < density) * rng.standard_normal((k, k))
        keep = np.zeros(k, bool)
        keep[cols] = True
        B[:, ~keep] = 0
        return B

    perm = rng.permutation(k) if zero_diagonal else np.arange(k)
    C = block(0.15, np.arange(k)) + 4 * np.eye(k)[perm]
    P, N = block(0.3, np.arange(6)), block(0.3, np.arange(6, 14))
    A = sp.kron(sp.eye(T), C) + sp.kron(sp.eye(T, k=-1), P) + sp.kron(sp.eye(T, k=1), N)
    return sp.csc_matrix(A)


def convection_diffusion(m: int):
    """2-D 5-point stencil with an upwind convection term: unsymmetric values, a strong
    diagonal (the pattern where minimum degree on A + Aᵀ wins)."""
    A = laplacian_2d(m, shift=0.0).tolil()
    n = m * m
    idx = np.arange(n - 1)
    A[idx, idx + 1] = A[idx, idx + 1].toarray().ravel() * 1.5 * (idx % m != m - 1)
    return sp.csc_matrix(A.tocsr())


def cge_jacobian(n_sectors: int):
    import sparsediff as sd
    from tests.users_graphs import cge, cge_point

    F, x = cge(n_sectors)
    J = pytensor.function([x], sd.jacobian(F, x), mode="FAST_COMPILE")(cge_point(x))
    return sp.csc_matrix(J)


def _lu_fill(A, spec, thresh=1.0):
    import scipy.sparse.linalg as spla

    lu = spla.splu(sp.csc_matrix(A), permc_spec=spec, diag_pivot_thresh=thresh)
    return lu.L.nnz + lu.U.nnz - A.shape[0]


def _check_solves(f, A):
    import scipy.sparse.linalg as spla

    b = np.random.default_rng(7).standard_normal(A.shape[0])
    Ac = sp.csc_matrix(A)
    x, xt = spla.spsolve(Ac, b), spla.spsolve(sp.csc_matrix(Ac.T), b)
    np.testing.assert_allclose(f.solve(b), x, rtol=1e-8, atol=1e-10 * np.abs(x).max())
    np.testing.assert_allclose(
        f.solve(b, transposed=True), xt, rtol=1e-8, atol=1e-10 * np.abs(xt).max()
    )
    B = np.stack([b, 2 * b], axis=1)
    np.testing.assert_allclose(f.solve(B)[:, 1], 2 * x, rtol=1e-8, atol=1e-9 * np.abs(x).max())


@pytest.mark.parametrize(
    "name,make",
    [
        ("block-banded, zero diagonal", lambda: block_banded(60)),
        ("block-banded, strong diagonal", lambda: block_banded(60, zero_diagonal=False)),
        ("2-D convection-diffusion", lambda: convection_diffusion(30)),
        ("CGE, 30 sectors", lambda: cge_jacobian(30)),
    ],
)
def test_auto_ordering_has_the_least_fill(name, make):
    """ "auto"'s measured fill ≤ FILL_TOLERANCE × the least fill of every SuperLU ordering the
    test factors itself (partial pivoting as SciPy does, and diagonal pivots after the same
    row matching); the choice is the least *predicted* fill; solves match spsolve."""
    A = make()
    F._LU_ANALYSES.clear()
    f = sl.factorize(A)
    info = f.ordering_info
    assert info["auto"] and info["ordering"] == f.ordering
    assert info["fill"] == f.nnz_factor
    predicted = {k: v for k, v in info["predicted"].items() if isinstance(v, int)}
    assert predicted[f.ordering] == min(predicted.values())
    assert f.nnz_factor <= F.lu_ordering.FILL_SLACK * predicted[f.ordering] + A.shape[0]
    an = F._LU_ANALYSES[F._pattern_digest(sp.csc_matrix(A))]
    M = A if an.row_perm is None else A[an.row_perm]
    fills = {spec: _lu_fill(A, spec) for spec in LU_SPECS}
    fills |= {f"matched {spec}": _lu_fill(M, spec, 0.01) for spec in LU_SPECS}
    assert f.nnz_factor <= FILL_TOLERANCE * min(fills.values()), (f, info, fills)
    _check_solves(f, A)


def test_auto_beats_every_fixed_default():
    """The issue's two pathologies at test size: on the zero-diagonal block-banded system
    MMD_AT_PLUS_A (with SciPy's partial pivoting) fills far more than COLAMD; on the CGE
    Jacobian COLAMD fills more than MMD_AT_PLUS_A. "auto" is within tolerance of the best of
    both in both cases, and no trial of the analysis blows up (each ≤ 2× the least)."""
    dsge, cge = block_banded(150), cge_jacobian(60)
    assert _lu_fill(dsge, "MMD_AT_PLUS_A") > 5 * _lu_fill(dsge, "COLAMD")
    assert _lu_fill(cge, "COLAMD") > _lu_fill(cge, "MMD_AT_PLUS_A")
    for A in (dsge, cge):
        F._LU_ANALYSES.clear()
        f = sl.factorize(A)
        best = min(_lu_fill(A, spec) for spec in LU_SPECS)
        assert f.nnz_factor <= FILL_TOLERANCE * best
        tried = [v for v in f.ordering_info["predicted"].values() if isinstance(v, int)]
        assert len(tried) >= 3 and max(tried) <= 2 * min(tried)
        _check_solves(f, A)


def test_analysis_is_reused_for_the_pattern():
    A = block_banded(20)
    F._LU_ANALYSES.clear()
    before = sl.factor_stats()["lu_analyses"]
    f = sl.factorize(A)
    assert sl.factor_stats()["lu_analyses"] == before + 1
    rng = np.random.default_rng(1)
    B = A.copy()
    B.data = B.data * (1 + 0.1 * rng.random(B.nnz))  # new values, same pattern
    g = sl.factorize(B)
    assert sl.factor_stats()["lu_analyses"] == before + 1
    assert g.ordering == f.ordering and g.ordering_info["predicted"] == f.ordering_info["predicted"]
    _check_solves(g, B)
    sl.factorize(block_banded(21))  # a new pattern: analyzed
    assert sl.factor_stats()["lu_analyses"] == before + 2


def test_zero_diagonal_keeps_the_permutation_with_diagonal_pivots():
    """A zero diagonal: the row matching puts large entries on it; with threshold 0 SuperLU's
    pivots all stay on the (permuted) diagonal — perm_r equals perm_c — and the fill is the
    predicted one exactly; with the default threshold (0.01) a few columns pivot off it and
    the fill stays within FILL_TOLERANCE of the prediction. Solves and logdet are right."""
    A = block_banded(30)
    A0 = A.copy()
    assert np.count_nonzero(A.diagonal()) < A.shape[0] // 2
    F._LU_ANALYSES.clear()
    for thresh in (0.0, None):
        f = sl.factorize(A, diag_pivot_thresh=thresh)
        info = f.ordering_info
        assert info["row_matching"] is not None
        assert f.pivoting.startswith("diagonal")
        assert np.all(A[f._row_perm].diagonal() != 0)
        predicted = info["predicted"][f.ordering]
        if thresh == 0.0:
            np.testing.assert_array_equal(f._lu.perm_r, f._lu.perm_c)
            assert f.nnz_factor == predicted
        else:
            assert f.nnz_factor <= FILL_TOLERANCE * predicted
        _check_solves(f, A)
        np.testing.assert_allclose(f.logdet(), np.linalg.slogdet(A.toarray())[1], rtol=1e-10)
    for arr in ("data", "indices", "indptr"):  # the row permutation works on copies
        np.testing.assert_array_equal(getattr(A, arr), getattr(A0, arr))


def test_diagonal_pivots_are_refined_or_fall_back(monkeypatch):
    """A diagonal pivot that becomes tiny during elimination (the well-conditioned 3×3 chain
    below in natural order: the second pivot is ~1e-13, the multiplier ~10¹³): with threshold 0
    the plain solve's backward error is ~10⁻⁴, so the factor refines once and the answer is
    right. Where refinement is not enough (forced here by a negative tolerance) the factor
    refactors with partial pivoting — keeping an explicit ordering, COLAMD for "auto" — and in
    "auto" mode the pattern remembers it."""
    core = np.array([[1.0, 0.7, 0.0], [0.9, 0.63 + 1e-13, 1.3], [0.0, 1.1, 0.8]])
    A = sp.csc_matrix(sp.block_diag([core] * 5))
    Ad = A.toarray()
    assert np.linalg.cond(Ad) < 10
    b = np.random.default_rng(0).standard_normal(15)
    x_ref, xt_ref = np.linalg.solve(Ad, b), np.linalg.solve(Ad.T, b)
    stats = sl.factor_stats()
    f = sl.factorize(A, ordering="NATURAL", diag_pivot_thresh=0.0)
    assert f.pivoting == "diagonal (threshold 0)"
    assert f._backward_error(b, f._lu_solve(b, False), False) > 1e-6  # unstable pivots
    np.testing.assert_allclose(f.solve(b), x_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f.solve(b, transposed=True), xt_ref, rtol=1e-10, atol=1e-12)
    assert sl.factor_stats()["refinements"] >= stats["refinements"] + 1
    assert sl.factor_stats()["pivot_fallbacks"] == stats["pivot_fallbacks"]
    assert f.pivoting == "diagonal (threshold 0)"

    monkeypatch.setattr(F, "RESIDUAL_TOL", -1.0)  # refinement never enough
    f = sl.factorize(A, ordering="NATURAL", diag_pivot_thresh=0.0)
    np.testing.assert_allclose(f.solve(b), x_ref, rtol=1e-10, atol=1e-12)
    assert f.pivoting.startswith("partial (fallback") and f.ordering == "NATURAL"
    assert sl.factor_stats()["pivot_fallbacks"] == stats["pivot_fallbacks"] + 1
    np.testing.assert_allclose(f.solve(b, transposed=True), xt_ref, rtol=1e-10, atol=1e-12)
    B = block_banded(10)
    F._LU_ANALYSES.clear()
    f = sl.factorize(B)
    assert f.pivoting.startswith("diagonal")
    y = f.solve(np.ones(B.shape[0]))
    assert f.pivoting.startswith("partial (fallback") and f.ordering == "COLAMD"
    np.testing.assert_allclose(B @ y, np.ones(B.shape[0]), atol=1e-10)
    g = sl.factorize(B * 2.0)  # the pattern's analysis remembers: partial pivoting now
    assert g.pivoting == "partial" and "backward error" in g.ordering_info["note"]
    _check_solves(g, B * 2.0)


def test_explicit_ordering_overrides_auto():
    A = block_banded(20)
    before = sl.factor_stats()["lu_analyses"]
    for spec in LU_SPECS:
        f = sl.factorize(A, ordering=spec)
        assert f.ordering == spec and f.pivoting == "partial"
        assert not f.ordering_info["auto"] and "predicted" not in f.ordering_info
        assert f.nnz_factor == _lu_fill(A, spec)
        _check_solves(f, A)
    g = sl.factorize(A, ordering="COLAMD", diag_pivot_thresh=0.1)
    assert g.pivoting == "diagonal (threshold 0.1)"
    _check_solves(g, A)
    assert sl.factor_stats()["lu_analyses"] == before
    assert "ordering='COLAMD'" in repr(g) and "(auto)" not in repr(g)
    assert "(auto)" in repr(sl.factorize(A))


def test_unknown_ordering_raises():
    A = block_banded(5)
    with pytest.raises(ValueError, match=r"unknown LU ordering 'AMD'.*'auto'.*'COLAMD'"):
        sl.factorize(A, ordering="AMD")
    with pytest.raises(ValueError, match="diag_pivot_thresh"):
        sl.factorize(A, diag_pivot_thresh=2.0)


def test_structurally_singular_raises():
    A = sp.csc_matrix(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    F._LU_ANALYSES.clear()
    with pytest.raises(sl.SingularMatrixError):
        sl.factorize(A)
