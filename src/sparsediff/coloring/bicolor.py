"""Star bicoloring: columns *and* rows, for Jacobians with dense rows and dense columns.

A Jacobian with one dense row needs ``n`` column colors, one with a dense column ``m`` row
colors; with both, neither direction helps. A *bicoloring* gives columns colors (one JVP per
column color) and rows colors (one VJP per row color): the dense row is read off one VJP, the
dense column off one JVP, the rest off whichever side is cheap.

Following Montoison, Dalle, Gebremedhin, "Revisiting sparse matrix coloring and bicoloring"
(2025): star-color the augmented symmetric matrix ``[0 Jᵀ; J 0]`` (vertices ``0 … n-1`` the
columns, ``n … n+m-1`` the rows). For a nonzero ``J[i, j]`` — the edge between row ``i`` and
column ``j`` — a star coloring guarantees that ``j`` is the only column of its color in row ``i``
(then ``J[i, j] = (J S)[i, c(j)]``, read from a JVP) or ``i`` the only row of its color in
column ``j`` (``J[i, j] = (Wᵀ J)[r(i), j]``, a VJP). Products are only needed for the colors
that some nonzero is read from: every other vertex gets the *neutral* color 0 and is in no
seed. Removing a vertex from a seed only removes terms from the sums above, so this is done
vertex by vertex: a column stays in its group only if some nonzero is read through it. A
nonzero readable from both sides is read from a side whose color is already needed (columns
first), so that it adds no product.

Colors on each side are then renumbered ``1 … k``: ``k_columns`` JVPs plus ``k_rows`` VJPs.
All passes are O(nnz) Numba loops (the star coloring itself is :mod:`sparsediff.coloring.star`).
"""

from __future__ import annotations

import numpy as np

from sparsediff._jit import kernel
from sparsediff.coloring.graphs import Structure, transpose_positions

__all__ = ["augmented_adjacency", "bicolor_readable", "neutralize", "star_bicolor_products"]


def augmented_adjacency(s: Structure) -> Structure:
    """The adjacency of ``[0 Jᵀ; J 0]``: columns ``0 … n-1``, rows ``n … n+m-1``."""
    m, n = s.shape
    t = s.transpose()
    ptr = np.concatenate([t.indptr, t.indptr[-1] + s.indptr[1:]])
    idx = np.concatenate([t.indices + n, s.indices])
    return Structure((n + m, n + m), ptr.astype(np.int64), idx.astype(np.int64))


def bicolor_readable(
    s: Structure, col_colors: np.ndarray, row_colors: np.ndarray, neutral: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per stored entry of ``s`` (canonical CSR order): can it be read from a JVP (its column
    is the only one of its color in its row) and from a VJP (its row is the only one of its
    color in its column)? Vertices of color ``neutral`` are in no product (``neutral=-1``:
    none is neutral)."""
    m, n = s.shape
    tptr, tidx, tpos = transpose_positions(m, n, s.indptr, s.indices)
    ccol = np.asarray(col_colors, dtype=np.int64)
    crow = np.asarray(row_colors, dtype=np.int64)
    k = max(int(ccol.max(initial=0)), int(crow.max(initial=0))) + 1
    return _readable(m, n, s.indptr, s.indices, tptr, tidx, tpos, ccol, crow, k, neutral)


def neutralize(s: Structure, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a star coloring of the augmented graph, ``(column colors, row colors)`` with the
    neutral color 0 and each side renumbered ``1 … k``.

    Raises ``ValueError`` if some nonzero cannot be read from either side (``colors`` was
    not a star coloring of the augmented graph).
    """
    m, n = s.shape
    colors = np.asarray(colors, dtype=np.int64)
    ccol, crow = colors[:n], colors[n:]
    col_ok, row_ok = bicolor_readable(s, ccol, crow, neutral=-1)
    k = int(colors.max(initial=0)) + 1
    bad, new_col, new_row = _choose(m, n, s.indptr, s.indices, ccol, crow, col_ok, row_ok, k)
    if bad >= 0:
        i = int(np.searchsorted(s.indptr, bad, side="right") - 1)
        raise ValueError(
            f"not a star coloring of the augmented graph: J[{i}, {int(s.indices[bad])}] can be "
            "read from neither a JVP nor a VJP"
        )
    return new_col, new_row


def star_bicolor_products(col_colors: np.ndarray, row_colors: np.ndarray) -> int:
    """Products a bicoloring costs: JVPs (column colors) plus VJPs (row colors), 0 neutral."""
    return int(np.max(col_colors, initial=0)) + int(np.max(row_colors, initial=0))


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@kernel
def _readable(m, n, ptr, idx, tptr, tidx, tpos, ccol, crow, k, neutral):
    nnz = idx.size
    col_ok = np.zeros(nnz, dtype=np.bool_)
    row_ok = np.zeros(nnz, dtype=np.bool_)
    count = np.zeros(k, dtype=np.int64)
    for i in range(m):
        for q in range(ptr[i], ptr[i + 1]):
            count[ccol[idx[q]]] += 1
        for q in range(ptr[i], ptr[i + 1]):
            c = ccol[idx[q]]
            col_ok[q] = c != neutral and count[c] == 1
        for q in range(ptr[i], ptr[i + 1]):
            count[ccol[idx[q]]] = 0
    for j in range(n):
        for q in range(tptr[j], tptr[j + 1]):
            count[crow[tidx[q]]] += 1
        for q in range(tptr[j], tptr[j + 1]):
            c = crow[tidx[q]]
            row_ok[tpos[q]] = c != neutral and count[c] == 1
        for q in range(tptr[j], tptr[j + 1]):
            count[crow[tidx[q]]] = 0
    return col_ok, row_ok


@kernel
def _choose(m, n, ptr, idx, ccol, crow, col_ok, row_ok, k):
    """Which vertices are read through; ``(first unreadable entry or -1, columns, rows)``."""
    need_col = np.zeros(n, dtype=np.bool_)
    need_row = np.zeros(m, dtype=np.bool_)
    used_c = np.zeros(k, dtype=np.bool_)
    used_r = np.zeros(k, dtype=np.bool_)
    empty = np.zeros(0, dtype=np.int64)
    # entries readable from one side only fix that side
    for i in range(m):
        for q in range(ptr[i], ptr[i + 1]):
            j = idx[q]
            if col_ok[q] and not row_ok[q]:
                need_col[j] = True
                used_c[ccol[j]] = True
            elif row_ok[q] and not col_ok[q]:
                need_row[i] = True
                used_r[crow[i]] = True
            elif not col_ok[q]:
                return q, empty, empty
    # the others: a side whose color is already needed costs nothing
    for i in range(m):
        for q in range(ptr[i], ptr[i + 1]):
            if not (col_ok[q] and row_ok[q]):
                continue
            j = idx[q]
            if used_c[ccol[j]]:
                need_col[j] = True
            elif used_r[crow[i]]:
                need_row[i] = True
            else:
                need_col[j] = True
                used_c[ccol[j]] = True
    label_c = np.zeros(k, dtype=np.int64)
    label_r = np.zeros(k, dtype=np.int64)
    nc = 0
    nr = 0
    for c in range(k):
        if used_c[c]:
            nc += 1
            label_c[c] = nc
        if used_r[c]:
            nr += 1
            label_r[c] = nr
    new_col = np.zeros(n, dtype=np.int64)
    new_row = np.zeros(m, dtype=np.int64)
    for j in range(n):
        if need_col[j]:
            new_col[j] = label_c[ccol[j]]
    for i in range(m):
        if need_row[i]:
            new_row[i] = label_r[crow[i]]
    return -1, new_col, new_row
