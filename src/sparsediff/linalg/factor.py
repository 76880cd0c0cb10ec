"""The factorization layer: one sparse factor, from a library, reused for everything.

:func:`factorize` turns a SciPy sparse matrix (or the CSR/CSC triple an Op receives) into a
:class:`Factor` with ``solve(b, transposed=False)``, ``logdet()`` and, for SPD matrices,
``ldl()`` (the factor ``L``, ``D`` and the fill-reducing permutation) and the selected inverse
(``inv_on_pattern``, ``inv_diag``). The Ops of :mod:`sparsediff.linalg`, sparsediff's Newton
solver and the optimize package share it, so orderings and options are chosen in one place.

:func:`cached_factorize` is what the Ops call: a small cache keyed on the *content* of the
matrix (backend, assume_a, shape, pattern and data, compared exactly). A value Op and its
gradient Op evaluated in the same graph evaluation — or several Ops on the same matrix — get the
same factor, so a matrix is factored once per evaluation, whichever backend runs the graph (the
C and Python backends, Numba's object mode, a JAX host callback). Comparing the data costs
O(nnz), negligible next to a factorization.

Orderings: for LU, "auto" (the default) chooses SuperLU's column ordering by measured fill
once per pattern, after a row matching that puts large entries on the diagonal, and factors
with a small diagonal pivot threshold so pivoting keeps that choice
(:mod:`sparsediff.linalg.lu_ordering`; ``Factor.ordering_info`` shows what was measured). For SPD
matrices SuperLU runs in its symmetric mode with diagonal pivots (an LDLᵀ, ``MMD_AT_PLUS_A``);
qdldl uses its AMD; CHOLMOD's analysis is chosen once per pattern among
:data:`CHOLMOD_ORDERINGS` (CHOLMOD's default, AMD unless its fill is poor, and METIS nested
dissection) by the predicted cost Σ_j c_j² of the factor (column counts on the permuted
pattern, :func:`kernels.cholesky_flops`) — deterministic, and the same cost model as the
selected inversion. On the 2-D 5-point matrix at n = 9·10⁴ nested dissection has 3.3·10⁶
entries in L against AMD's 4.1·10⁶; on banded patterns AMD wins and is kept.

SPD matrices are factored as their symmetric part ``(A + Aᵀ)/2`` (CHOLMOD and qdldl read one
triangle only; symmetrizing makes the value depend on both triangles consistently with the
gradient ``A⁻ᵀ``, exact for a symmetric ``A``). An exactly symmetric ``A`` (pattern and values
equal to those of ``Aᵀ``, checked in O(nnz): a transpose and three comparisons, about a
twentieth of the symmetrization) *is* its symmetric part and is factored as it is; anything
else is symmetrized, so the shortcut can never change a result.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from sparsediff.linalg import kernels, lu_ordering
from sparsediff.linalg.library import resolve_backend

__all__ = [
    "Factor",
    "NotPositiveDefiniteError",
    "SingularMatrixError",
    "cached_factorize",
    "clear_factor_cache",
    "factor_stats",
    "factorize",
]

#: CHOLMOD orderings compared on each new SPD pattern (``sksparse.cholmod.analyze``'s
#: ``ordering_method``); one that this CHOLMOD lacks (no METIS) is skipped.
CHOLMOD_ORDERINGS = ("default", "nesdis")
#: CHOLMOD's ``mode``: "auto" (CHOLMOD's rule: supernodal when flops per entry of L are high),
#: "supernodal" or "simplicial". On the 2-D 5-point matrix at n = 9·10⁴ with one BLAS thread the
#: two modes are within the noise of this loaded machine for factorization + selected
#: inversion (simplicial factors faster, its selected inversion is slower: narrower blocks).
CHOLMOD_MODE = "auto"

#: SuperLU column ordering for LU: "auto" (measured per pattern, see
#: :mod:`sparsediff.linalg.lu_ordering`) or a ``permc_spec``.
SUPERLU_ORDERING = "auto"
_LU_ANALYSES: OrderedDict = OrderedDict()  # pattern digest -> lu_ordering.LUAnalysis
#: Backward error ‖b − A x‖∞ / (‖A‖∞‖x‖∞ + ‖b‖∞) above which a solve with diagonal pivots is
#: refined once and, if still above, the matrix refactored with partial pivoting.
RESIDUAL_TOL = 1e-10


class SingularMatrixError(np.linalg.LinAlgError):
    """The matrix is structurally or numerically singular (a zero pivot, or a non-finite solve)."""


class NotPositiveDefiniteError(np.linalg.LinAlgError):
    """``assume_a="pos"`` (or logdet / cholesky / inv_diag) was given a matrix that is not SPD."""


_stats = {
    "factorizations": 0,
    "cache_hits": 0,
    "lu_analyses": 0,
    "refinements": 0,
    "pivot_fallbacks": 0,
    "cholmod_analyses": 0,
}


def factor_stats() -> dict[str, int]:
    """Counters: how many factorizations ran and how many cache hits avoided one (a copy)."""
    return dict(_stats)


# --------------------------------------------------------------------------------------------
# input normalization


def _check_finite(data: np.ndarray) -> None:
    if not np.all(np.isfinite(data)):
        raise ValueError("the sparse matrix has NaN or infinite entries; cannot factor it")


def _as_csc(A) -> sp.csc_matrix:
    if not sp.issparse(A):
        raise TypeError(f"factorize expects a SciPy sparse matrix, got {type(A).__name__}")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"a factorization needs a square matrix, got shape {A.shape}")
    A = sp.csc_matrix(A)
    if A.dtype != np.float64:
        A = A.astype(np.float64)
    return A


def _symmetric_part(A: sp.csc_matrix) -> sp.csc_matrix:
    """``(A + Aᵀ)/2`` keeping every stored entry of both triangles (explicit zeros too).

    SciPy's ``A + A.T`` drops entries that sum to zero, which would drop them from the factor's
    pattern and from the selected inverse the gradient needs.
    """
    C = A.tocoo()
    rows = np.concatenate([C.row, C.col])
    cols = np.concatenate([C.col, C.row])
    vals = np.concatenate([C.data, C.data]) * 0.5
    S = sp.csc_matrix((vals, (rows, cols)), shape=A.shape)
    S.sort_indices()
    return S


def _is_symmetric(A: sp.csc_matrix) -> bool:
    """Whether ``A`` equals ``Aᵀ`` exactly: pattern (explicit zeros included) and values."""
    if not A.has_sorted_indices:
        A.sort_indices()  # in place on our own copy (``_as_csc`` / the cache's matrix view)
    T = A.T.tocsc()  # CSR of Aᵀ -> CSC: a counting sort, indices come out sorted
    return (
        np.array_equal(T.indptr, A.indptr)
        and np.array_equal(T.indices, A.indices)
        and np.array_equal(T.data, A.data)
    )


def _spd_matrix(A: sp.csc_matrix) -> sp.csc_matrix:
    """The matrix an SPD factorization reads: ``A`` if exactly symmetric, else ``(A + Aᵀ)/2``.

    Exact symmetry makes the two identical (``(a + a)/2 == a`` in floating point), so the
    shortcut is sound for every input; a matrix symmetric only to rounding is symmetrized.
    """
    if _is_symmetric(A):
        return A
    return _symmetric_part(A)


# --------------------------------------------------------------------------------------------
# factors


class Factor:
    """A factored square sparse matrix ``A`` (what :func:`factorize` returns).

    Attributes: ``n``, ``backend`` ("superlu", "cholmod", "qdldl"), ``assume_a`` ("gen" or
    "pos"), ``nnz_factor`` (stored entries of the factors: the fill).
    """

    n: int
    backend: str
    assume_a: str
    nnz_factor: int

    def solve(self, b: np.ndarray, transposed: bool = False) -> np.ndarray:
        """``A⁻¹ b`` (or ``A⁻ᵀ b``), ``b`` of shape (n,) or (n, k); raises if non-finite."""
        b = np.asarray(b, dtype=np.float64)
        if b.shape[:1] != (self.n,) or b.ndim > 2:
            raise ValueError(f"right-hand side of shape {b.shape} for a {self.n}x{self.n} matrix")
        x = self._solve(b, transposed)
        if not np.all(np.isfinite(x)) and np.all(np.isfinite(b)):
            raise SingularMatrixError("the solve produced non-finite values: A is singular")
        return x

    def logdet(self) -> float:
        """``log |det A|`` (for SPD ``A`` the log-determinant)."""
        raise NotImplementedError

    # SPD only --------------------------------------------------------------------------------
    def ldl(self) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
        """``(L, D, p)`` with ``S[p][:, p] = L D Lᵀ``, ``L`` unit lower (diagonal not stored).

        ``S`` is the symmetric part of ``A``; a sample ``x ~ N(0, S⁻¹)`` is ``x[p] = L⁻ᵀ D^{-1/2}
        z``.
        """
        raise ValueError("ldl() needs an SPD factorization (assume_a='pos')")

    def _selinv(self, symbolic: bool = False):
        """(L, Zx, Zd, p, pinv): the selected inverse on the pattern of the factor ``L``.

        First on the library's own factor pattern. Libraries drop entries that are numerically
        zero (explicit zeros of A, cancellation), so a position of A may be missing from it;
        ``symbolic=True`` recomputes on the symbolic Cholesky pattern of ``S[p][:, p]``, which
        contains every position of A (the values of L are scattered into it).
        """
        cached = getattr(self, "_selinv_cache", None)
        if cached is not None and (cached[5] or not symbolic):
            return cached[:5]
        L, D, p = self.ldl()
        pinv = np.empty_like(p)
        pinv[p] = np.arange(p.size, dtype=p.dtype)
        Lp, Li, Lx = L.indptr, L.indices, L.data
        ok = False
        if not symbolic:
            Zx, Zd, ok = kernels.takahashi(Lp, Li, Lx, D)
        if not ok:  # symbolic pattern of S[p][:, p] (both triangles: S is symmetric)
            S = self._S
            M = sp.csc_matrix((np.ones(S.nnz), S.indices, S.indptr), shape=S.shape)
            M = sp.csc_matrix(M[p][:, p])
            M.sort_indices()
            Sp, Si = kernels.symbolic_cholesky(M.indptr.astype(np.int64), M.indices)
            vals, fits = kernels.scatter_columns(Lp, Li, Lx, Sp, Si)
            if not fits:
                raise RuntimeError(
                    f"the {self.backend} factor has a nonzero outside the symbolic Cholesky "
                    "pattern; selected inversion is impossible (please report this)"
                )
            L = sp.csc_matrix((vals, Si, Sp), shape=L.shape)
            Zx, Zd, ok = kernels.takahashi(Sp, Si, vals, D)
            if not ok:  # pragma: no cover - a symbolic pattern is closed by construction
                raise RuntimeError("selected inversion failed on the symbolic pattern")
            symbolic = True
        self._selinv_cache = (L, Zx, Zd, p, pinv, symbolic)
        return self._selinv_cache[:5]

    def inv_diag(self) -> np.ndarray:
        """``diag(S⁻¹)`` by selected inversion (marginal variances of a GMRF with precision S)."""
        _, _, Zd, p, _ = self._selinv()
        out = np.empty(self.n)
        out[p] = Zd
        return out

    def inv_on_pattern(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``S⁻¹[rows, cols]`` for positions in the pattern of the factored matrix."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        for symbolic in (False, True):
            L, Zx, Zd, _, pinv = self._selinv(symbolic)
            vals, bad = kernels.gather_symmetric(L.indptr, L.indices, Zx, Zd, pinv, rows, cols)
            if bad < 0:
                return vals
        raise ValueError(
            f"position ({rows[bad]}, {cols[bad]}) is not in the pattern of the factored "
            "matrix: the selected inverse covers only that pattern"
        )

    def _solve(self, b, transposed):  # pragma: no cover - abstract
        raise NotImplementedError


def _pattern_digest(A: sp.csc_matrix) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(A.shape, dtype=np.int64).tobytes())
    h.update(A.indptr.tobytes())
    h.update(A.indices.tobytes())
    return h.digest()


def _lu_analysis(A: sp.csc_matrix) -> lu_ordering.LUAnalysis:
    """The pattern's LU analysis: remembered, or made now (and counted)."""
    key = _pattern_digest(A)
    analysis = _LU_ANALYSES.get(key)
    if analysis is not None:
        _LU_ANALYSES.move_to_end(key)
        return analysis
    _stats["lu_analyses"] += 1
    analysis = lu_ordering.analyze(A)
    _LU_ANALYSES[key] = analysis
    while len(_LU_ANALYSES) > 16:
        _LU_ANALYSES.popitem(last=False)
    return analysis


def _fill(lu) -> int:
    return int(lu.L.nnz + lu.U.nnz - lu.shape[0])


class SuperLUFactor(Factor):
    """SciPy SuperLU. General: LU with the ordering chosen by measured fill (or given) and
    diagonal pivoting; SPD: symmetric mode, diagonal pivots.

    ``ordering``: the ``permc_spec`` used; ``ordering_info``: how it was chosen (the
    candidates' predicted fill, the row matching, the pivoting, the measured fill).
    """

    backend = "superlu"

    def __init__(
        self,
        A: sp.csc_matrix,
        assume_a: str,
        flip: bool = False,
        ordering: str | None = None,
        diag_pivot_thresh: float | None = None,
    ):
        self.n = A.shape[0]
        self.assume_a = assume_a
        self._S = A
        self._flip = flip  # the matrix factored is Aᵀ (a CSR triple read as CSC)
        self._row_perm = None  # the LU factors A[row_perm]
        self._check = False  # check each solve's backward error (diagonal pivoting)
        self._analysis = None
        try:
            if assume_a == "pos":
                self.ordering, self.pivoting = "MMD_AT_PLUS_A", "diagonal (symmetric mode)"
                self._lu = spla.splu(
                    A,
                    permc_spec="MMD_AT_PLUS_A",
                    diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True},
                )
            else:
                self._factor_general(A, ordering, diag_pivot_thresh)
        except RuntimeError as err:  # "Factor is exactly singular"
            if assume_a == "pos":
                raise NotPositiveDefiniteError(f"SuperLU: {err}; the matrix is not SPD") from err
            raise SingularMatrixError(f"SuperLU: {err}") from err
        lu = self._lu
        if getattr(self, "nnz_factor", None) is None:
            self.nnz_factor = _fill(lu)
        u = lu.U.diagonal()
        if assume_a == "pos":
            if not np.array_equal(lu.perm_r, lu.perm_c) or not np.all(u > 0):
                raise NotPositiveDefiniteError(
                    "the matrix is not symmetric positive definite (a non-positive or "
                    "off-diagonal pivot in SuperLU's symmetric mode)"
                )
        self._logdet = float(np.sum(np.log(np.abs(u))))
        if not np.isfinite(self._logdet):
            raise SingularMatrixError("SuperLU: a zero pivot; the matrix is singular")

    # general LU -------------------------------------------------------------------------
    def _factor_general(self, A, ordering, thresh):
        ordering = lu_ordering.check_ordering(SUPERLU_ORDERING if ordering is None else ordering)
        if thresh is not None and not 0.0 <= float(thresh) <= 1.0:
            raise ValueError(f"diag_pivot_thresh must lie in [0, 1], got {thresh!r}")
        if ordering != "auto":  # the user's permc_spec: partial pivoting unless told otherwise
            t = 1.0 if thresh is None else float(thresh)
            self._lu = spla.splu(A, permc_spec=ordering, diag_pivot_thresh=t)
            self.ordering, self.nnz_factor = ordering, _fill(self._lu)
            self.pivoting = "partial" if t == 1.0 else f"diagonal (threshold {t:g})"
            if t < 1.0:
                self._watch_backward_error(A)
            return
        an = self._analysis = _lu_analysis(A)
        if an.pivoting == "partial":
            self._partial(A)
            return
        t = lu_ordering.DIAG_PIVOT_THRESH if thresh is None else float(thresh)
        M = lu_ordering.permute_rows(A, an.row_perm)
        try:
            lu = spla.splu(M, permc_spec=an.ordering, diag_pivot_thresh=t)
        except RuntimeError:
            lu = None
        predicted = an.predicted.get(an.ordering)
        fill = None if lu is None else _fill(lu)
        blown = lu is not None and fill > lu_ordering.FILL_SLACK * predicted + self.n
        if lu is None or blown or not np.all(lu.U.diagonal() != 0):
            # pivoting undid the ordering, or a zero pivot: partial pivoting with COLAMD (its
            # fill bound holds for any row pivots); the pattern keeps the better of the two
            try:
                alt = spla.splu(A, permc_spec="COLAMD")
            except RuntimeError:
                if lu is None:
                    raise
                alt = None
            if alt is not None and (lu is None or _fill(alt) < fill):
                _stats["pivot_fallbacks"] += 1
                an.pivoting, an.note = "partial", (
                    "diagonal pivoting failed" if lu is None else
                    f"diagonal pivoting filled {fill:,} (predicted {predicted:,})"
                )  # fmt: skip
                self._lu, self.ordering, self.pivoting = alt, "COLAMD", "partial"
                return
        self._lu, self.ordering, self.nnz_factor = lu, an.ordering, fill
        self._row_perm = an.row_perm
        self.pivoting = f"diagonal (threshold {t:g})"
        if t < 1.0:
            self._watch_backward_error(A)

    def _watch_backward_error(self, A):
        """Diagonal pivots may be unstable: check each solve (see :meth:`_solve`)."""
        self._check = True
        a = np.abs(A.data)  # ‖A‖∞ (row sums) and ‖A‖₁ = ‖Aᵀ‖∞ (column sums), A in CSC
        cols = np.repeat(np.arange(self.n), np.diff(A.indptr))
        self._norms = tuple(
            np.bincount(i, a, minlength=self.n).max(initial=0.0) for i in (A.indices, cols)
        )

    def _partial(self, A, why: str = "", spec: str = "COLAMD"):
        self._lu = spla.splu(A, permc_spec=spec)
        self.ordering, self.pivoting = spec, "partial" + (f" ({why})" if why else "")
        self._row_perm, self._check = None, False
        self.nnz_factor = _fill(self._lu)

    @property
    def ordering_info(self) -> dict:
        """How the LU was ordered: ``ordering``, ``pivoting``, ``fill`` (measured nnz(L+U) − n),
        and for "auto" ``predicted`` (each candidate's fill under diagonal pivots, or why it was
        skipped), ``row_matching`` (τ of the matching, None if the diagonal was kept) and
        ``analysis_seconds``."""
        info = {
            "ordering": self.ordering,
            "auto": self._analysis is not None,
            "pivoting": self.pivoting,
            "fill": self.nnz_factor,
        }
        an = self._analysis
        if an is not None:
            info.update(
                predicted=dict(an.predicted),
                row_matching=an.match_threshold,
                analysis_seconds=an.seconds,
                note=an.note,
            )
        return info

    def __repr__(self) -> str:
        how = " (auto)" if self._analysis is not None else ""
        return (
            f"SuperLUFactor(n={self.n}, assume_a={self.assume_a!r}, "
            f"ordering={self.ordering!r}{how}, pivoting={self.pivoting!r}, "
            f"fill={self.nnz_factor:,})"
        )

    def _lu_solve(self, b, trans: bool):
        p = self._row_perm
        if p is None:
            return self._lu.solve(b, trans="T" if trans else "N")
        if not trans:  # A x = b  <=>  A[p] x = b[p]
            return self._lu.solve(b[p])
        z = self._lu.solve(b, trans="T")  # Aᵀ y = c  <=>  A[p]ᵀ (y[p]) = c
        y = np.empty_like(z)
        y[p] = z
        return y

    def _backward_error(self, b, x, trans: bool) -> float:
        K = self._S
        r = b - (K.T @ x if trans else K @ x)
        norm_a = self._norms[1] if trans else self._norms[0]
        scale = norm_a * np.abs(x).max(initial=0.0) + np.abs(b).max(initial=0.0)
        return float(np.abs(r).max(initial=0.0) / scale) if scale > 0 else 0.0

    def _solve(self, b, transposed):
        trans = transposed != self._flip
        x = self._lu_solve(b, trans)
        if not self._check:
            return x
        with np.errstate(all="ignore"):
            if self._backward_error(b, x, trans) <= RESIDUAL_TOL:
                return x
            K = self._S
            _stats["refinements"] += 1
            x = x + self._lu_solve(b - (K.T @ x if trans else K @ x), trans)  # one refinement
            if self._backward_error(b, x, trans) <= RESIDUAL_TOL:
                return x
        # diagonal pivots were unstable for these values: partial pivoting from now on
        _stats["pivot_fallbacks"] += 1
        if self._analysis is not None:
            self._analysis.pivoting, self._analysis.note = "partial", "poor backward error"
        # (an explicit ordering keeps its permc_spec; "auto" takes COLAMD, valid for any pivots)
        spec = "COLAMD" if self._analysis is not None else self.ordering
        try:
            self._partial(self._S, "fallback: poor backward error with diagonal pivots", spec)
        except RuntimeError as err:
            raise SingularMatrixError(f"SuperLU: {err}") from err
        return self._lu.solve(b, trans="T" if trans else "N")

    def logdet(self):
        return self._logdet

    def ldl(self):
        if self.assume_a != "pos":
            return super().ldl()
        lu = self._lu
        L = sp.tril(lu.L, k=-1, format="csc")
        L.sort_indices()
        # Pr A Pc = L U with Pr = Pcᵀ: A[p][:, p] = L D Lᵀ with p the inverse of perm_c
        p = np.argsort(lu.perm_c).astype(np.int64)
        return L, lu.U.diagonal().copy(), p


def _cholmod_analysis(S: sp.csc_matrix) -> tuple[str, Any]:
    """(ordering name, CHOLMOD symbolic factor) of the cheapest of :data:`CHOLMOD_ORDERINGS`.

    Each candidate is analyzed (METIS nested dissection takes about as long as one
    factorization, once per pattern) and scored by Σ c_j² over the column counts of the factor
    of ``S`` permuted by its ordering; ties keep the earlier candidate. Deterministic: the
    score depends on the pattern only.
    """
    from sksparse import cholmod

    pattern = sp.csc_matrix((np.ones(S.nnz), S.indices, S.indptr), shape=S.shape)
    best = None
    for name in CHOLMOD_ORDERINGS:
        try:
            sym = cholmod.analyze(S, mode=CHOLMOD_MODE, ordering_method=name)
        except cholmod.CholmodError:  # e.g. CHOLMOD built without METIS: no nesdis
            continue
        _stats["cholmod_analyses"] += 1
        if len(CHOLMOD_ORDERINGS) == 1:
            return name, sym
        p = np.asarray(sym.P(), dtype=np.int64)
        M = sp.csc_matrix(pattern[p][:, p])
        cost = kernels.cholesky_flops(M.indptr.astype(np.int64), M.indices.astype(np.int64))
        if best is None or cost < best[0]:
            best = (cost, name, sym)
    if best is None:  # none of the candidates exists here: CHOLMOD's own default
        _stats["cholmod_analyses"] += 1
        return "default", cholmod.analyze(S, mode=CHOLMOD_MODE)
    return best[1], best[2]


class CholmodFactor(Factor):
    """CHOLMOD (scikit-sparse): supernodal Cholesky of the symmetric part."""

    backend = "cholmod"
    assume_a = "pos"
    # pattern key -> analyzed Factor: the symbolic analysis is reused for a repeated pattern
    _symbolic: ClassVar[OrderedDict] = OrderedDict()

    def __init__(self, S: sp.csc_matrix):
        from sksparse import cholmod

        self.n = S.shape[0]
        self._S = S
        key = _pattern_digest(S)
        try:
            entry = self._symbolic.get(key)
            if entry is None:
                entry = _cholmod_analysis(S)
                self._symbolic[key] = entry
                while len(self._symbolic) > 2:
                    self._symbolic.popitem(last=False)
            else:
                self._symbolic.move_to_end(key)
            self.ordering, sym = entry
            self._f = sym.cholesky(S)
        except cholmod.CholmodNotPositiveDefiniteError as err:
            raise NotPositiveDefiniteError(f"CHOLMOD: {err}") from err
        with np.errstate(invalid="ignore", divide="ignore"):
            self._ld = float(self._f.logdet())  # NaN for a negative pivot (simplicial LDLᵀ)
        if not np.isfinite(self._ld):
            raise NotPositiveDefiniteError("CHOLMOD: a zero pivot; the matrix is not SPD")

    @property
    def nnz_factor(self) -> int:  # type: ignore[override]
        """Entries of ``L`` (extracting it costs a copy: done only when asked, or by ``ldl``)."""
        return int(self.ldl()[0].nnz + self.n)

    def _solve(self, b, transposed):
        return self._f.solve_A(b)

    def logdet(self):
        return self._ld

    def ldl(self):
        if getattr(self, "_ldl", None) is None:
            L = self._f.L()
            if not sp.isspmatrix_csc(L):  # pragma: no cover
                L = sp.csc_matrix(L)
            if not L.has_sorted_indices:  # an O(nnz) check; CHOLMOD's L is normally sorted
                L.sort_indices()
            if np.any(L.indices[L.indptr[:-1]] != np.arange(self.n)):  # pragma: no cover
                raise RuntimeError("CHOLMOD's L has a column without its diagonal first")
            Up, Ui, Ux, d2 = kernels.unit_lower(L.indptr, L.indices, L.data)
            Lu = sp.csc_matrix((Ux, Ui, Up), shape=L.shape)
            self._ldl = (Lu, d2, np.asarray(self._f.P(), dtype=np.int64))
        return self._ldl


class QdldlFactor(Factor):
    """QDLDL (PyPI wheels): LDLᵀ of the symmetric part with AMD ordering."""

    backend = "qdldl"
    assume_a = "pos"

    def __init__(self, S: sp.csc_matrix):
        import qdldl

        self.n = S.shape[0]
        self._S = S
        try:
            solver = qdldl.Solver(sp.triu(S, format="csc"), upper=True)
        except ValueError as err:
            raise NotPositiveDefiniteError(f"qdldl: {err}; the matrix is not SPD") from err
        L, d, p = solver.factors()
        L = sp.csc_matrix(L)
        L.sort_indices()
        if not np.all(d > 0):
            raise NotPositiveDefiniteError("qdldl: a non-positive pivot; the matrix is not SPD")
        self._L, self._d, self._p = L, np.asarray(d, dtype=np.float64), np.asarray(p, np.int64)
        self.nnz_factor = int(L.nnz + self.n)
        self._ld = float(np.sum(np.log(self._d)))

    def _solve(self, b, transposed):
        B = b.reshape(self.n, -1)
        Y = kernels.ldl_solve(self._L.indptr, self._L.indices, self._L.data, self._d, B[self._p])
        X = np.empty_like(Y)
        X[self._p] = Y
        return X.reshape(b.shape)

    def logdet(self):
        return self._ld

    def ldl(self):
        return self._L, self._d, self._p


# --------------------------------------------------------------------------------------------
# entry points


def factorize(
    A: Any,
    assume_a: str = "gen",
    backend: str | None = None,
    *,
    check_finite: bool = True,
    ordering: str | None = None,
    diag_pivot_thresh: float | None = None,
) -> Factor:
    """Factor the square sparse matrix ``A`` with the chosen (or default) backend.

    ``assume_a="gen"``: LU (SuperLU). ``assume_a="pos"``: symmetric positive definite; the
    symmetric part ``(A + Aᵀ)/2`` is factored by CHOLMOD, qdldl or SuperLU (``backend``, or the
    default of :func:`sparsediff.linalg.use_backend`). Raises :class:`SingularMatrixError`,
    :class:`NotPositiveDefiniteError`, ``ValueError`` (non-square, NaN/inf), ``TypeError``
    (not a SciPy sparse matrix).

    ``ordering`` (LU only): ``"auto"`` (the default) chooses SuperLU's column ordering by
    measured fill on the first factorization of a pattern, after a row matching, and keeps it
    for every later factorization of that pattern, factored with diagonal pivoting
    (:mod:`sparsediff.linalg.lu_ordering`; ``factor.ordering_info`` says what was measured);
    or one of ``"COLAMD"``, ``"MMD_AT_PLUS_A"``, ``"MMD_ATA"``, ``"NATURAL"`` (SuperLU's
    ``permc_spec`` as given, partial pivoting). ``diag_pivot_thresh``: SuperLU's threshold in
    [0, 1] (default: 0.01 for "auto", 1.0 — partial pivoting — for an explicit ordering).
    """
    name = resolve_backend(backend, assume_a)
    if assume_a == "gen":
        lu_ordering.check_ordering(ordering)
    A = _as_csc(A)
    return _factor_csc(
        A,
        assume_a,
        name,
        flip=False,
        check_finite=check_finite,
        ordering=ordering,
        diag_pivot_thresh=diag_pivot_thresh,
    )


def _factor_csc(
    A: sp.csc_matrix,
    assume_a: str,
    name: str,
    flip: bool,
    check_finite: bool,
    ordering: str | None = None,
    diag_pivot_thresh: float | None = None,
):
    if check_finite:
        _check_finite(A.data)
    _stats["factorizations"] += 1
    if assume_a == "gen":
        return SuperLUFactor(
            A, "gen", flip=flip, ordering=ordering, diag_pivot_thresh=diag_pivot_thresh
        )
    S = _spd_matrix(A)  # the symmetric part of A and of Aᵀ agree: flip is irrelevant
    if name == "cholmod":
        return CholmodFactor(S)
    if name == "qdldl":
        return QdldlFactor(S)
    return SuperLUFactor(S, "pos")


class _FactorCache:
    """Last few factors, keyed on (backend, assume_a, format, shape, pattern, data) content.

    Two entries: enough for a value and its gradient (one matrix) or two matrices in one graph;
    a factor at n = 10⁶ with its selected inverse holds over a gigabyte, so few are kept
    (:func:`clear_factor_cache` frees them).
    """

    def __init__(self, maxsize: int = 2):
        self.maxsize = maxsize
        self._entries: list[tuple] = []
        self._lock = threading.Lock()

    def get(self, data, indices, indptr, shape, fmt, assume_a, name):
        head = (name, assume_a, fmt, shape)
        with self._lock:
            for i, (h, d, ix, ip, factor) in enumerate(self._entries):
                if (
                    h == head
                    and d.shape == data.shape
                    and np.array_equal(d, data)
                    and np.array_equal(ip, indptr)
                    and np.array_equal(ix, indices)
                ):
                    self._entries.insert(0, self._entries.pop(i))
                    _stats["cache_hits"] += 1
                    return factor
        n = shape[0]
        # a CSR triple of A is the CSC triple of Aᵀ
        M = sp.csc_matrix((data, indices, indptr), shape=(n, n))
        factor = _factor_csc(M, assume_a, name, flip=(fmt == "csr"), check_finite=True)
        entry = (head, data.copy(), indices.copy(), indptr.copy(), factor)
        with self._lock:
            self._entries.insert(0, entry)
            del self._entries[self.maxsize :]
        return factor

    def clear(self):
        with self._lock:
            self._entries.clear()


_cache = _FactorCache()


def clear_factor_cache() -> None:
    """Drop the cached factors (they hold the factor memory until evicted)."""
    _cache.clear()


def check_triple(data, indices, indptr, shape) -> tuple[int, int]:
    """Validate a CSR/CSC triple with its shape; returns the shape as ints."""
    shape = tuple(int(s) for s in np.asarray(shape).ravel())
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"sparsediff.linalg needs a square matrix, got shape {shape}")
    n = shape[0]
    if indptr.shape != (n + 1,) or indptr[-1] != data.shape[0] or indices.shape != data.shape:
        raise ValueError(
            f"inconsistent sparse matrix: shape {shape}, {data.shape[0]} values, "
            f"{indices.shape[0]} indices, {indptr.shape[0]} pointers"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError("sparse matrix indices out of range")
    return shape


def cached_factorize(data, indices, indptr, shape, fmt: str, assume_a: str, backend: str):
    """The factor of the matrix given as a ``fmt`` ("csr"/"csc") triple, from the cache or new."""
    shape = check_triple(data, indices, indptr, shape)
    return _cache.get(
        np.asarray(data, dtype=np.float64),
        np.asarray(indices),
        np.asarray(indptr),
        shape,
        fmt,
        assume_a,
        backend,
    )
