"""The fill-reducing ordering of a sparse LU, chosen by measured fill, once per pattern.

No fixed SuperLU ordering works for every Jacobian: on a stacked perfect-foresight DSGE system
(block-banded, equations not ordered by variable, so the diagonal is zero) ``MMD_AT_PLUS_A``
with partial pivoting filled 9·10⁷ entries in 131 s where COLAMD took 45 ms; on a CGE model the
opposite held (``MMD_AT_PLUS_A`` 35× better than COLAMD). The blow-ups come from *pivoting*:
an ordering computed for ``A + Aᵀ`` is void once partial pivoting takes off-diagonal pivots.
:func:`analyze` therefore does what sparse direct solvers do (MC64 + a symmetric ordering in
MUMPS, SuperLU_DIST):

1. **Row matching.** Unless the diagonal is already strong (``|a_jj| ≥ 0.1 · max_i |a_ij|`` in
   every column), rows are permuted so that every diagonal entry is a large entry of its column:
   a perfect bipartite matching (Hopcroft–Karp, ``scipy.sparse.csgraph``, O(nnz √n)) among the
   entries with ``|a_ij| ≥ τ · max_i |a_ij|``, τ = 0.5, 0.1, 0.01, then any nonzero, the first τ
   that admits one. (SciPy's weighted matching, LAPJVsp, took minutes at n = 7000.)
2. **Measured fill of every candidate.** Each of :data:`LU_ORDERINGS` is tried on a *surrogate*
   with the pattern of the row-permuted matrix ``M``: an M-matrix (negative off-diagonal values,
   a dominant positive diagonal), factored with diagonal pivots. Its pivots never leave the
   diagonal and no update cancels, so its nnz(L+U) is exactly the fill of that ordering under
   diagonal pivoting, and a trial costs what that ordering minimizes (minimum degree on
   ``M + Mᵀ`` or ``MᵀM``, COLAMD) — a trial cannot blow up by pivoting, which is what made a
   candidate cost 131 s. ``NATURAL`` is tried only when the envelope of ``M + Mᵀ`` (an
   upper bound of its fill, O(nnz)) is within :data:`FILL_SLACK` of the best so far, and
   ``MMD_ATA`` only when COLAMD came within :data:`ATA_IF_COLAMD_WITHIN` of the best and
   ``MᵀM`` is cheap to form (Σ_i r_i² over the row counts). The analysis costs two to four
   factorizations, once per pattern.
3. **Diagonal pivoting keeps the choice.** The real matrix is factored with the smallest
   predicted fill and SuperLU's ``diag_pivot_thresh`` = :data:`DIAG_PIVOT_THRESH` (a pivot
   stays on the diagonal unless it is 100× smaller than its column's largest entry). If the
   measured fill exceeds :data:`FILL_SLACK` times the prediction anyway, or the factorization is
   singular, partial pivoting with COLAMD (whose fill bound holds for any row pivots) is tried
   and the smaller fill kept. The factor checks each solve's backward error and falls back to
   partial pivoting when it is poor (:mod:`sparsediff.linalg.factor`).

The analysis (row matching, ordering, pivoting) is kept per pattern: a Newton loop or repeated
graph evaluations factor the same pattern with new values and reuse it; the numbers it measured
are in ``Factor.ordering_info``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import maximum_bipartite_matching

__all__ = [
    "DIAG_PIVOT_THRESH",
    "LU_ORDERINGS",
    "ORDERINGS",
    "LUAnalysis",
    "analyze",
    "check_ordering",
]

#: SuperLU's column orderings, in the order they are tried (ties keep the earlier one).
LU_ORDERINGS = ("MMD_AT_PLUS_A", "COLAMD", "MMD_ATA", "NATURAL")
#: What ``factorize(..., ordering=)`` accepts: "auto" (measured, the default) or a ``permc_spec``.
ORDERINGS = ("auto", *LU_ORDERINGS)
#: SuperLU's ``diag_pivot_thresh`` for the chosen ordering: keep a diagonal pivot unless it is
#: smaller than this fraction of its column's largest entry (1.0 is partial pivoting).
DIAG_PIVOT_THRESH = 0.01
#: Row-matching thresholds τ: match only entries ≥ τ · (column maximum), largest τ first.
MATCH_THRESHOLDS = (0.5, 0.1, 0.01, 0.0)
#: A diagonal with every ``|a_jj| ≥ STRONG_DIAGONAL · column max`` is kept (no row matching).
STRONG_DIAGONAL = 0.1
#: Measured fill above this multiple of the prediction: pivoting undid the ordering.
FILL_SLACK = 4.0
#: ``MMD_ATA`` (minimum degree on AᵀA, the model COLAMD approximates) is tried only when
#: COLAMD's fill is within this factor of the best so far: on 2-D grids both lose to
#: ``MMD_AT_PLUS_A`` by 1.7×, and the trial would cost another factorization.
ATA_IF_COLAMD_WITHIN = 1.25


@dataclass
class LUAnalysis:
    """The per-pattern choice: row permutation, ordering, pivoting, and what was measured.

    ``row_perm``: the factored matrix is ``A[row_perm]`` (None: ``A`` itself);
    ``match_threshold``: the τ of the row matching (None: the diagonal was strong);
    ``predicted``: nnz(L+U) − n of each candidate under diagonal pivots, or why it was skipped;
    ``pivoting``: "diagonal" (``diag_pivot_thresh`` small) or "partial" (a fallback);
    ``seconds``: time spent choosing.
    """

    ordering: str
    row_perm: np.ndarray | None
    match_threshold: float | None
    predicted: dict[str, int | str] = field(default_factory=dict)
    pivoting: str = "diagonal"
    note: str = ""
    seconds: float = 0.0


def check_ordering(ordering: str | None) -> str:
    """``ordering`` validated ("auto" for None); a clear ``ValueError`` for unknown names."""
    if ordering is None:
        return "auto"
    if not isinstance(ordering, str) or ordering not in ORDERINGS:
        raise ValueError(
            f"unknown LU ordering {ordering!r}: use one of {', '.join(map(repr, ORDERINGS))}"
        )
    return ordering


def _column_max(absA: sp.csc_matrix) -> np.ndarray:
    return np.asarray(absA.max(axis=0).todense()).ravel()


def row_matching(A: sp.csc_matrix) -> tuple[np.ndarray | None, float | None]:
    """Rows to put a large entry on every diagonal: (``row_perm`` or None, τ used).

    None, None when the diagonal is strong already; ``row_perm`` None with τ = -1 when no
    perfect matching exists (structurally singular: the factorization will say so).
    """
    absA = abs(A)
    col_max = _column_max(absA)
    if np.all(absA.diagonal() >= STRONG_DIAGONAL * col_max) and np.all(col_max > 0):
        return None, None
    scale = np.repeat(col_max, np.diff(absA.indptr))
    for tau in MATCH_THRESHOLDS:
        keep = absA.data >= tau * scale if tau > 0 else absA.data > 0
        B = absA.copy()  # eliminate_zeros works in place on the index arrays
        B.data = keep.astype(np.float64)
        B.eliminate_zeros()
        match = maximum_bipartite_matching(B.tocsr(), perm_type="row")  # row matched to col j
        if np.all(match >= 0):
            return match.astype(np.int64), tau
    return None, -1.0


def permute_rows(A: sp.csc_matrix, row_perm: np.ndarray | None) -> sp.csc_matrix:
    """``A[row_perm]`` (``A`` for None) by renumbering the row indices, then sorting each
    column (SuperLU needs sorted row indices: unsorted ones give a wrong factor)."""
    if row_perm is None:
        return A
    inverse = np.empty_like(row_perm)
    inverse[row_perm] = np.arange(row_perm.size, dtype=row_perm.dtype)
    rows = inverse[A.indices].astype(A.indices.dtype)
    M = sp.csc_matrix((A.data.copy(), rows, A.indptr.copy()), A.shape)  # sorted in place below
    M.has_sorted_indices = False
    M.sort_indices()
    return M


def _surrogate(M: sp.csc_matrix) -> sp.csc_matrix:
    """An M-matrix with the pattern of ``M`` (plus the diagonal): negative off-diagonal values,
    positive diagonal larger than its row and column sums. Gaussian elimination keeps it an
    M-matrix (off-diagonal updates all have one sign: no cancellation) and diagonally
    dominant, so with diagonal pivots its fill is the symbolic fill of the ordering."""
    rng = np.random.default_rng(0)
    vals = -(0.5 + 0.5 * rng.random(M.nnz))
    vals[M.indices == np.repeat(np.arange(M.shape[1]), np.diff(M.indptr))] = 0.0  # diagonal
    S = sp.csc_matrix((vals, M.indices, M.indptr), shape=M.shape)
    a = abs(S)
    d = 1.0 + np.asarray(a.sum(axis=0)).ravel() + np.asarray(a.sum(axis=1)).ravel()
    return sp.csc_matrix(S + sp.diags(d, format="csc"))


def _fill(lu) -> int:
    return int(lu.L.nnz + lu.U.nnz - lu.shape[0])


def _envelope_fill(M: sp.csc_matrix) -> int:
    """Upper bound of the fill of ``M + Mᵀ`` in its given order: twice its envelope (O(nnz))."""
    n = M.shape[0]
    C = M.tocoo()
    hi = np.maximum(C.row, C.col)
    lo = np.minimum(C.row, C.col)
    first = np.arange(n)
    np.minimum.at(first, hi, lo)
    return int(2 * np.sum(np.arange(n) - first))


def _ata_work(M: sp.csc_matrix) -> int:
    r = np.diff(M.tocsr().indptr).astype(np.int64)
    return int(np.sum(r * r))


def analyze(A: sp.csc_matrix) -> LUAnalysis:
    """Row matching and the candidate with the least fill under diagonal pivots (see module)."""
    t0 = time.perf_counter()
    row_perm, tau = row_matching(A)
    if tau is not None and tau < 0:  # structurally singular: nothing to choose
        return LUAnalysis("COLAMD", None, None, {}, "partial", "structurally singular",
                          time.perf_counter() - t0)  # fmt: skip
    M = permute_rows(A, row_perm)
    S = _surrogate(M)
    predicted: dict[str, int | str] = {}
    best = None
    for spec in LU_ORDERINGS:
        if spec == "MMD_ATA":
            if predicted["COLAMD"] > ATA_IF_COLAMD_WITHIN * best[0]:
                predicted[spec] = "skipped: COLAMD (the same AᵀA model) far from the best"
                continue
            if _ata_work(M) > 20 * M.nnz + 10**6:
                predicted[spec] = "skipped: MᵀM too dense to form"
                continue
        if spec == "NATURAL" and best is not None:
            bound = _envelope_fill(M)
            if bound > FILL_SLACK * best[0]:
                predicted[spec] = f"skipped: envelope bound {bound:,} > {FILL_SLACK:g}× best"
                continue
        fill = _fill(spla.splu(S, permc_spec=spec, diag_pivot_thresh=0.0))
        predicted[spec] = fill
        if best is None or fill < best[0]:
            best = (fill, spec)
    return LUAnalysis(best[1], row_perm, tau, predicted, "diagonal", "",
                      time.perf_counter() - t0)  # fmt: skip
