"""Numba kernels over a sparse LDLᵀ factor: substitution, selected inversion, pattern gathers.

None of these factors a matrix (the libraries in :mod:`sparsediff.linalg.factor` do); they walk
a factor ``M = L D Lᵀ`` that a library produced, given as ``L`` strictly lower triangular in CSC
(``Lp``, ``Li`` sorted, ``Lx``; the unit diagonal implied) and ``D`` a vector.

* :func:`ldl_solve` — ``M⁻¹ B`` by forward and backward substitution (qdldl's own solve takes
  one right-hand side at a time and copies).
* :func:`takahashi` — the selected inverse: ``Z = M⁻¹`` on the pattern of ``L`` (and the
  diagonal) by the Takahashi recurrences, columns right to left,

      Z_ij = −Σ_{k ∈ struct(L_{:,j})} L_kj Z_ik   (i ∈ struct(L_{:,j})),
      Z_jj = 1/D_j − Σ_k L_kj Z_kj.

  Every ``Z_ik`` needed lies in the pattern of ``L`` (``struct(L_{:,j})`` is a clique of the
  filled graph), so the cost is Σ_j |struct_j|², a small multiple of the factorization, and no
  entry outside the pattern is ever formed. If a factor's pattern is not closed that way (it
  would be a bug of the library) the kernel reports it instead of reading garbage.
* :func:`gather_symmetric` — ``Z`` at the positions of the original matrix's nonzeros (through
  the fill-reducing permutation), by binary search in the factor's columns.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gather_symmetric", "ldl_solve", "takahashi"]


@numba.njit(cache=True, nogil=True)
def ldl_solve(Lp, Li, Lx, D, B):  # pragma: no cover - compiled
    """Solve ``(L D Lᵀ) X = B`` in place of a copy of ``B`` (2-D, one column per right side)."""
    n, m = B.shape
    X = B.copy()
    for j in range(n):  # L y = b: column-oriented forward substitution
        for p in range(Lp[j], Lp[j + 1]):
            i = Li[p]
            lij = Lx[p]
            for c in range(m):
                X[i, c] -= lij * X[j, c]
    for j in range(n):
        dj = 1.0 / D[j]
        for c in range(m):
            X[j, c] *= dj
    for j in range(n - 1, -1, -1):  # Lᵀ x = y: dot products with column j of L
        for p in range(Lp[j], Lp[j + 1]):
            i = Li[p]
            lij = Lx[p]
            for c in range(m):
                X[j, c] -= lij * X[i, c]
    return X


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz"})
def takahashi(Lp, Li, Lx, D):  # pragma: no cover - compiled
    """Selected inverse of ``L D Lᵀ``: (values on L's pattern, diagonal, ok flag).

    Accumulators are indexed by position in column j (contiguous), so the inner loops over a
    supernodal column — rows identical to the remaining rows of column j, found without any
    search — are a dot product and an axpy on contiguous memory (vectorized).
    """
    n = D.shape[0]
    Zx = np.empty_like(Lx)
    Zd = np.empty(n)
    width = 0
    for j in range(n):
        width = max(width, Lp[j + 1] - Lp[j])
    acc = np.zeros(width)
    for j in range(n - 1, -1, -1):
        p0 = Lp[j]
        p1 = Lp[j + 1]
        m = p1 - p0
        for a in range(m):
            acc[a] = 0.0
        for a in range(p0, p1):
            k = Li[a]
            lkj = Lx[a]
            acc_k = lkj * Zd[k]
            q = Lp[k]
            qend = Lp[k + 1]
            if qend - q == p1 - a - 1:
                # struct(k) ⊇ struct(j) ∩ (k, n) with equal sizes: the same rows, in order
                off = q - (a + 1)
                for b in range(a + 1, p1):
                    z = Zx[b + off]
                    acc[b - p0] += lkj * z
                    acc_k += Lx[b] * z
                acc[a - p0] += acc_k
                continue
            for b in range(a + 1, p1):
                i = Li[b]
                while q < qend and Li[q] < i:
                    q += 1
                if q == qend or Li[q] != i:
                    return Zx, Zd, False
                z = Zx[q]  # Z_ik = Z_ki, i > k
                acc[b - p0] += lkj * z
                acc_k += Lx[b] * z
                q += 1
            acc[a - p0] += acc_k
        s = 0.0
        for a in range(p0, p1):
            z = -acc[a - p0]
            Zx[a] = z
            s += Lx[a] * z
        Zd[j] = 1.0 / D[j] - s
    return Zx, Zd, True


@numba.njit(cache=True, nogil=True)
def gather_symmetric(Lp, Li, Zx, Zd, pinv, rows, cols):  # pragma: no cover - compiled
    """``Z[pinv[r], pinv[c]]`` for each (r, c), Z symmetric with its lower part on L's pattern.

    Returns (values, index of the first entry not in the pattern or -1).
    """
    m = rows.shape[0]
    out = np.empty(m)
    for e in range(m):
        i = pinv[rows[e]]
        j = pinv[cols[e]]
        if i == j:
            out[e] = Zd[i]
            continue
        if i < j:
            i, j = j, i
        lo = Lp[j]
        hi = Lp[j + 1]
        while lo < hi:  # first position with Li >= i
            mid = (lo + hi) // 2
            if Li[mid] < i:
                lo = mid + 1
            else:
                hi = mid
        if lo == Lp[j + 1] or Li[lo] != i:
            return out, e
        out[e] = Zx[lo]
    return out, -1


@numba.njit(cache=True, nogil=True)
def symbolic_cholesky(Mp, Mi):  # pragma: no cover - compiled
    """Pattern of the Cholesky factor of a symmetric pattern ``M`` (CSC, both triangles).

    Elimination tree (Liu's algorithm with path compression), then each row of ``L`` as the
    union of the tree paths from its nonzeros (``ereach``): O(nnz(L)) in all. Returns the
    strictly lower ``L`` pattern in CSC with sorted row indices. This is symbolic analysis only
    (no numbers): it lets the selected inverse cover entries that a library dropped from its
    factor because they were numerically zero.
    """
    n = Mp.shape[0] - 1
    parent = np.full(n, -1, np.int64)
    ancestor = np.full(n, -1, np.int64)
    for k in range(n):
        for p in range(Mp[k], Mp[k + 1]):
            i = Mi[p]
            while i != -1 and i < k:
                inext = ancestor[i]
                ancestor[i] = k
                if inext == -1:
                    parent[i] = k
                i = inext
    mark = np.full(n, -1, np.int64)
    counts = np.zeros(n + 1, np.int64)
    for k in range(n):
        mark[k] = k
        for p in range(Mp[k], Mp[k + 1]):
            i = Mi[p]
            if i >= k:
                continue
            while mark[i] != k:
                counts[i + 1] += 1
                mark[i] = k
                i = parent[i]
    Lp = np.cumsum(counts)
    nxt = Lp[:-1].copy()
    Li = np.empty(Lp[-1], np.int64)
    mark[:] = -1
    for k in range(n):
        mark[k] = k
        for p in range(Mp[k], Mp[k + 1]):
            i = Mi[p]
            if i >= k:
                continue
            while mark[i] != k:
                Li[nxt[i]] = k
                nxt[i] += 1
                mark[i] = k
                i = parent[i]
    return Lp, Li


@numba.njit(cache=True, nogil=True)
def scatter_columns(Lp, Li, Lx, Sp, Si):  # pragma: no cover - compiled
    """Values of ``L`` (pattern Lp, Li) on a superset pattern (Sp, Si), both CSC sorted.

    Returns (values, ok): ok is False if a nonzero of L falls outside the superset.
    """
    n = Sp.shape[0] - 1
    out = np.zeros(Si.shape[0])
    for j in range(n):
        q = Sp[j]
        qend = Sp[j + 1]
        for p in range(Lp[j], Lp[j + 1]):
            i = Li[p]
            while q < qend and Si[q] < i:
                q += 1
            if q < qend and Si[q] == i:
                out[q] = Lx[p]
            elif Lx[p] != 0.0:
                return out, False
    return out, True


@numba.njit(cache=True, nogil=True)
def unit_lower(Lp, Li, Lx):  # pragma: no cover - compiled
    """``L Lᵀ`` (CSC, sorted, diagonal first in each column) to unit ``L`` (diagonal not
    stored) and ``D = diag(L)²``: the LDLᵀ form the selected inversion walks."""
    n = Lp.shape[0] - 1
    Up = np.empty(n + 1, np.int64)
    Ui = np.empty(Li.shape[0] - n, Li.dtype)
    Ux = np.empty(Li.shape[0] - n)
    D = np.empty(n)
    Up[0] = 0
    w = 0
    for j in range(n):
        d = Lx[Lp[j]]
        D[j] = d * d
        for p in range(Lp[j] + 1, Lp[j + 1]):
            Ui[w] = Li[p]
            Ux[w] = Lx[p] / d
            w += 1
        Up[j + 1] = w
    return Up, Ui, Ux, D
