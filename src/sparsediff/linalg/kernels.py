"""Numba kernels over a sparse LDLᵀ factor: substitution, selected inversion, pattern gathers.

None of these factors a matrix (the libraries in :mod:`sparsediff.linalg.factor` do); they walk
a factor ``M = L D Lᵀ`` that a library produced, given as ``L`` strictly lower triangular in CSC
(``Lp``, ``Li`` sorted, ``Lx``; the unit diagonal implied) and ``D`` a vector.

* :func:`ldl_solve` — ``M⁻¹ B`` by forward and backward substitution (qdldl's own solve takes
  one right-hand side at a time and copies).
* :func:`takahashi` — the selected inverse: ``Z = M⁻¹`` on the pattern of ``L`` (and the
  diagonal) by the Takahashi recurrences, right to left, in supernodal blocks (dense products in
  BLAS; :func:`takahashi_supernodal`),

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

import numpy as np

from sparsediff._jit import kernel

__all__ = [
    "cholesky_flops",
    "gather_symmetric",
    "ldl_solve",
    "supernodes",
    "takahashi",
    "takahashi_supernodal",
]


@kernel(nogil=True)
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


def takahashi(Lp, Li, Lx, D):
    """Selected inverse of ``L D Lᵀ`` on the pattern of ``L``: (values, diagonal, ok flag).

    Supernodes first (:func:`supernodes`), then the block sweep
    (:func:`takahashi_supernodal`). ``ok`` is False when the pattern is not closed under
    elimination (a library dropped entries); the values are then meaningless.
    """
    return takahashi_supernodal(Lp, Li, Lx, D, supernodes(Lp, Li))


@kernel(nogil=True)
def elimination_tree(Mp, Mi):  # pragma: no cover - compiled
    """Parent of every column in the elimination tree of a symmetric pattern ``M`` (CSC, both
    triangles): Liu's algorithm with path compression, O(nnz) time; -1 for roots."""
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
    return parent


@kernel(nogil=True)
def column_counts(Mp, Mi, parent):  # pragma: no cover - compiled
    """Strictly-lower nonzeros per column of the Cholesky factor of the symmetric pattern
    ``M``, given its elimination tree: row ``k`` of ``L`` is the union of the tree paths from
    the entries of ``M[:k, k]`` (row subtrees), walked once each, O(nnz(L))."""
    n = Mp.shape[0] - 1
    mark = np.full(n, -1, np.int64)
    counts = np.zeros(n, np.int64)
    for k in range(n):
        mark[k] = k
        for p in range(Mp[k], Mp[k + 1]):
            i = Mi[p]
            if i >= k:
                continue
            while mark[i] != k:
                counts[i] += 1
                mark[i] = k
                i = parent[i]
    return counts


@kernel(nogil=True)
def cholesky_flops(Mp, Mi):  # pragma: no cover - compiled
    """Σ_j (c_j + 1)² over the column counts c_j of the Cholesky factor of the pattern ``M``.

    ``M`` in CSC with both triangles (a symmetric pattern, already permuted). The cost model of
    both the numeric factorization and the selected inversion (each column costs the square of
    its count), used to compare fill-reducing orderings on the actual pattern. Elimination tree
    and row subtrees as in :func:`symbolic_cholesky`, counting only: O(nnz(L)) time, O(n)
    memory.
    """
    n = Mp.shape[0] - 1
    counts = column_counts(Mp, Mi, elimination_tree(Mp, Mi))
    total = 0.0
    for j in range(n):
        total += float(counts[j] + 1) ** 2
    return total


@kernel(nogil=True)
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


@kernel(nogil=True)
def symbolic_cholesky(Mp, Mi):  # pragma: no cover - compiled
    """Pattern of the Cholesky factor of a symmetric pattern ``M`` (CSC, both triangles).

    Elimination tree (Liu's algorithm with path compression), then each row of ``L`` as the
    union of the tree paths from its nonzeros (``ereach``): O(nnz(L)) in all. Returns the
    strictly lower ``L`` pattern in CSC with sorted row indices. This is symbolic analysis only
    (no numbers): it lets the selected inverse cover entries that a library dropped from its
    factor because they were numerically zero.
    """
    n = Mp.shape[0] - 1
    parent = elimination_tree(Mp, Mi)
    Lp = np.zeros(n + 1, np.int64)
    Lp[1:] = np.cumsum(column_counts(Mp, Mi, parent))
    nxt = Lp[:-1].copy()
    Li = np.empty(Lp[-1], np.int64)
    mark = np.full(n, -1, np.int64)
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


@kernel(nogil=True)
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


@kernel(nogil=True)
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


@kernel(nogil=True)
def supernodes(Lp, Li):  # pragma: no cover - compiled
    """Column ranges of the supernodes of a strictly lower ``L`` pattern (CSC, sorted).

    Column ``j + 1`` joins ``j``'s supernode when ``struct(L_{:,j}) = {j+1} ∪ struct(L_{:,j+1})``
    — checked entry by entry (O(nnz) in all), so the block structure the supernodal sweep relies
    on holds exactly, whatever library produced the pattern. CHOLMOD's supernodal factor
    (relaxed amalgamation, explicit zeros kept) gives wide supernodes; a simplicial factor gives
    the fundamental ones.
    """
    n = Lp.shape[0] - 1
    starts = np.empty(n + 1, np.int64)
    ns = 0
    j = 0
    while j < n:
        starts[ns] = j
        ns += 1
        while j + 1 < n:
            p0 = Lp[j]
            m = Lp[j + 1] - p0
            if m == 0 or Li[p0] != j + 1 or Lp[j + 2] - Lp[j + 1] != m - 1:
                break
            q0 = Lp[j + 1]
            same = True
            for a in range(1, m):
                if Li[p0 + a] != Li[q0 + a - 1]:
                    same = False
                    break
            if not same:
                break
            j += 1
        j += 1
    starts[ns] = n
    return starts[: ns + 1].copy()


@kernel(nogil=True)
def takahashi_supernodal(Lp, Li, Lx, D, starts):  # pragma: no cover - compiled
    """Selected inverse of ``L D Lᵀ`` by supernodes: (values on L's pattern, diagonal, ok).

    For a supernode with columns ``J`` (unit lower diagonal block ``L_J``) and common rows ``R``
    below it (block ``L_R``), with ``Y = L_R L_J⁻¹``:

        Z_RJ = −Z_RR Y,        Z_JJ = L_J⁻ᵀ D_J⁻¹ L_J⁻¹ − Yᵀ Z_RJ,

    the Takahashi recurrences in block form. ``Z_RR`` is gathered from supernodes already done
    (they are to the right) into a dense block — each row of ``R`` found in the column it lies in
    through a per-supernode position map, so no search per entry — and the two products run in
    BLAS (``np.dot``). ``ok`` is False if a row of ``R`` is missing from a later column (a
    pattern that is not closed: the caller then uses the symbolic pattern).
    """
    n = D.shape[0]
    ns = starts.shape[0] - 1
    Zx = np.zeros_like(Lx)
    Zd = np.empty(n)
    sn_of = np.empty(n, np.int64)
    for s in range(ns):
        for j in range(starts[s], starts[s + 1]):
            sn_of[j] = s
    stamp = np.full(n, -1, np.int64)
    where = np.empty(n, np.int64)
    for s in range(ns - 1, -1, -1):
        c0 = starts[s]
        c1 = starts[s + 1]
        w = c1 - c0
        rb = Lp[c1 - 1]
        r = Lp[c1] - rb
        # dense blocks: LJ (w×w, unit lower) and Yt = (L_R L_J⁻¹)ᵀ (w×r), rows contiguous
        LJ = np.zeros((w, w))
        Yt = np.empty((w, r))
        for jj in range(w):
            j = c0 + jj
            LJ[jj, jj] = 1.0
            p = Lp[j]
            for ii in range(jj + 1, w):
                LJ[ii, jj] = Lx[p]
                p += 1
            for b in range(r):
                Yt[jj, b] = Lx[p + b]
        # L_Jᵀ Yt = L_Rᵀ: rows bottom to top, each an axpy of later rows
        for jj in range(w - 2, -1, -1):
            for kk in range(jj + 1, w):
                lkj = LJ[kk, jj]
                if lkj != 0.0:
                    for b in range(r):
                        Yt[jj, b] -= lkj * Yt[kk, b]
        # L_J⁻¹ (unit lower) by rows: row i = e_i − Σ_{k<i} L_ik (row k)
        Linv = np.zeros((w, w))
        for ii in range(w):
            Linv[ii, ii] = 1.0
            for kk in range(ii):
                lik = LJ[ii, kk]
                if lik != 0.0:
                    for c in range(kk + 1):
                        Linv[ii, c] -= lik * Linv[kk, c]
        # ZJJ = L_J⁻ᵀ D⁻¹ L_J⁻¹
        DL = np.empty((w, w))
        for ii in range(w):
            dinv = 1.0 / D[c0 + ii]
            for c in range(w):
                DL[ii, c] = dinv * Linv[ii, c]
        ZJJ = np.dot(np.ascontiguousarray(Linv.T), DL)
        ZRJt = np.empty((w, r))
        if r > 0:
            # gather ZRR (symmetric, r×r) from the supernodes to the right
            ZRR = np.empty((r, r))
            cur = -1
            for b in range(r):
                cb = Li[rb + b]
                t = sn_of[cb]
                t1 = starts[t + 1]
                if t != cur:  # rows below supernode t -> their position in its row list
                    cur = t
                    tb = Lp[t1 - 1]
                    for q in range(tb, Lp[t1]):
                        stamp[Li[q]] = t
                        where[Li[q]] = q - tb
                ZRR[b, b] = Zd[cb]
                base = Lp[cb]
                inner = t1 - cb - 1  # rows cb+1 .. t1-1 come first in column cb
                for b2 in range(b + 1, r):
                    i = Li[rb + b2]
                    if i < t1:
                        q = base + (i - cb - 1)
                    else:
                        if stamp[i] != t:
                            return Zx, Zd, False
                        q = base + inner + where[i]
                    z = Zx[q]
                    ZRR[b2, b] = z
                    ZRR[b, b2] = z
            ZRJt = -np.dot(Yt, ZRR)  # (Z_RJ)ᵀ = −Yᵀ Z_RR, Z_RR symmetric
            ZJJ -= np.dot(Yt, np.ascontiguousarray(ZRJt.T))
        # scatter the columns of the supernode
        for jj in range(w):
            j = c0 + jj
            Zd[j] = ZJJ[jj, jj]
            p = Lp[j]
            for ii in range(jj + 1, w):
                Zx[p] = ZJJ[ii, jj]
                p += 1
            for b in range(r):
                Zx[p + b] = ZRJt[jj, b]
    return Zx, Zd, True
