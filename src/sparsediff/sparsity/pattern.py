"""Boolean CSR patterns and the few vectorized operations every rule is built from.

A pattern is a ``scipy.sparse.csr_array`` of dtype bool and shape ``(variable.size, n_wrt)``:
row ``k`` holds the inputs that element ``k`` (C order) of the variable depends on. ``None``
stands for "depends on nothing", so that parameters and constants cost nothing to carry.
All operations here are O(nnz) NumPy/SciPy work, never a Python loop over elements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import scipy.sparse as sp

Pattern = sp.csr_array

INDEX_DTYPE = np.int64


def empty(n_rows: int, n_cols: int) -> Pattern:
    """A pattern with no entries."""
    return sp.csr_array((n_rows, n_cols), dtype=bool)


def identity(n: int) -> Pattern:
    """The pattern of ``wrt`` itself: element k depends on input k."""
    return sp.csr_array(
        (
            np.ones(n, dtype=bool),
            np.arange(n, dtype=INDEX_DTYPE),
            np.arange(n + 1, dtype=INDEX_DTYPE),
        ),
        shape=(n, n),
    )


def as_pattern(matrix, shape: tuple[int, int] | None = None, what: str = "pattern") -> Pattern:
    """Canonical boolean CSR from any sparse or dense matrix (stored zeros dropped); a clear
    error naming ``what`` when it is not a two-dimensional matrix of ``shape``."""
    if sp.issparse(matrix):
        out = sp.csr_array(matrix, dtype=bool)
    else:
        try:
            arr = np.asarray(matrix, dtype=bool)
        except Exception as err:
            raise TypeError(f"{what} must be a scipy.sparse matrix or an array") from err
        if arr.ndim != 2:
            expected = f" {tuple(shape)}" if shape is not None else ""
            raise ValueError(f"{what} must be two-dimensional{expected}, got shape {arr.shape}")
        out = sp.csr_array(arr)
    if shape is not None and tuple(out.shape) != tuple(shape):
        raise ValueError(f"{what} has shape {tuple(out.shape)}, expected {tuple(shape)}")
    out.eliminate_zeros()
    out.sum_duplicates()
    out.sort_indices()
    return out


@numba.njit(cache=True, nogil=True)
def _gather_rows_kernel(indptr, indices, rows):  # pragma: no cover - compiled
    n = rows.size
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    for k in range(n):
        r = rows[k]
        length = indptr[r + 1] - indptr[r] if r >= 0 else 0
        new_indptr[k + 1] = new_indptr[k] + length
    out = np.empty(new_indptr[n], dtype=indices.dtype)
    for k in range(n):
        r = rows[k]
        if r >= 0:
            start = indptr[r]
            pos = new_indptr[k]
            for q in range(indptr[r + 1] - start):
                out[pos + q] = indices[start + q]
    return new_indptr, out


@numba.njit(cache=True, nogil=True)
def _union_kernel(a_indptr, a_indices, b_indptr, b_indices):  # pragma: no cover - compiled
    n = a_indptr.size - 1
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    out = np.empty((a_indptr[n] - a_indptr[0]) + (b_indptr[n] - b_indptr[0]), dtype=np.int64)
    pos = 0
    for r in range(n):
        i, i_end = a_indptr[r], a_indptr[r + 1]
        j, j_end = b_indptr[r], b_indptr[r + 1]
        while i < i_end and j < j_end:
            a, b = a_indices[i], b_indices[j]
            if a < b:
                out[pos] = a
                i += 1
            elif b < a:
                out[pos] = b
                j += 1
            else:
                out[pos] = a
                i += 1
                j += 1
            pos += 1
        while i < i_end:
            out[pos] = a_indices[i]
            i += 1
            pos += 1
        while j < j_end:
            out[pos] = b_indices[j]
            j += 1
            pos += 1
        new_indptr[r + 1] = pos
    return new_indptr, out[:pos]


@numba.njit(cache=True, nogil=True)
def _union_many_kernel(indptrs, indices, starts):  # pragma: no cover - compiled
    """Row-wise union of k canonical patterns at once (a k-way merge per row).

    ``indptrs`` is (k, n + 1); pattern p's row r is ``indices[starts[p] + indptrs[p, r] :
    starts[p] + indptrs[p, r + 1]]`` (indptrs relative to their own first entry).
    """
    k = indptrs.shape[0]
    n = indptrs.shape[1] - 1
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    out = np.empty(indices.size, dtype=np.int64)
    heads = np.empty(k, dtype=np.int64)
    ends = np.empty(k, dtype=np.int64)
    big = np.iinfo(np.int64).max
    pos = 0
    for r in range(n):
        for p in range(k):
            heads[p] = starts[p] + indptrs[p, r]
            ends[p] = starts[p] + indptrs[p, r + 1]
        while True:
            best = big
            for p in range(k):
                if heads[p] < ends[p]:
                    v = indices[heads[p]]
                    if v < best:
                        best = v
            if best == big:
                break
            for p in range(k):
                if heads[p] < ends[p] and indices[heads[p]] == best:
                    heads[p] += 1
            out[pos] = best
            pos += 1
        new_indptr[r + 1] = pos
    return new_indptr, out[:pos]


def _csr(indptr, indices, shape) -> Pattern:
    """CSR from kernel output, which is canonical (rows sorted, no duplicates): say so, so that
    SciPy does not scan it again to find out."""
    out = sp.csr_array((np.ones(indices.size, dtype=bool), indices, indptr), shape=shape)
    out.has_canonical_format = True
    return out


def gather_rows(pattern: Pattern, rows: np.ndarray) -> Pattern:
    """Rows ``pattern[rows[k]]`` for every k; a negative index gives an empty row.

    This is the rule of every Op that moves or copies elements (indexing, reshapes with
    broadcasting, concatenation): the output element k is a copy of input element rows[k].
    Rows stay sorted, so the result is canonical.
    """
    rows = np.ascontiguousarray(np.asarray(rows, dtype=INDEX_DTYPE).ravel())
    canonical = _canonical(pattern)
    indptr, indices = _gather_rows_kernel(
        canonical.indptr.astype(INDEX_DTYPE, copy=False), canonical.indices, rows
    )
    return _csr(indptr, indices, (rows.size, pattern.shape[1]))


def _canonical(pattern: Pattern) -> Pattern:
    if not pattern.has_canonical_format:
        pattern = pattern.copy()
        pattern.sum_duplicates()
    return pattern


def union(patterns: Sequence[Pattern | None]) -> Pattern | None:
    """Entry-wise OR of patterns of equal shape (``None`` entries are skipped)."""
    present = []
    for p in patterns:
        if p is not None and p.nnz and all(p is not q for q in present):
            present.append(p)
    if not present:
        return next((p for p in patterns if p is not None), None)
    if len(present) == 1:
        return _canonical(present[0])
    present = [_canonical(p) for p in present]
    if len(present) == 2:
        a, b = present
        indptr, indices = _union_kernel(
            a.indptr.astype(INDEX_DTYPE, copy=False),
            a.indices.astype(INDEX_DTYPE, copy=False),
            b.indptr.astype(INDEX_DTYPE, copy=False),
            b.indices.astype(INDEX_DTYPE, copy=False),
        )
        return _csr(indptr, indices, a.shape)
    indptrs = np.stack([p.indptr.astype(INDEX_DTYPE, copy=False) for p in present])
    starts = indptrs[:, :1].copy()
    indptrs -= starts
    indices = np.concatenate([p.indices[p.indptr[0] : p.indptr[-1]] for p in present])
    starts = np.concatenate([[0], np.cumsum(indptrs[:, -1])[:-1]]).astype(INDEX_DTYPE)
    indptr, out = _union_many_kernel(indptrs, indices.astype(INDEX_DTYPE, copy=False), starts)
    return _csr(indptr, out, present[0].shape)


def combine_rows(selection: sp.sparray, pattern: Pattern) -> Pattern:
    """Row i of the result is the union of the rows j of ``pattern`` with selection[i, j].

    Reductions, products and every many-to-one coupling reduce to this boolean product.
    """
    selection = sp.csr_array(selection, dtype=bool)
    out = sp.csr_array(selection @ pattern, dtype=bool)
    out.eliminate_zeros()
    return out


def selection_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """Boolean matrix with True at ``(rows[k], cols[k])`` (duplicates merged)."""
    rows = np.asarray(rows, dtype=INDEX_DTYPE).ravel()
    cols = np.asarray(cols, dtype=INDEX_DTYPE).ravel()
    keep = (rows >= 0) & (cols >= 0)
    out = sp.coo_array(
        (np.ones(int(keep.sum()), dtype=bool), (rows[keep], cols[keep])), shape=shape
    )
    return sp.csr_array(out)


def stack(patterns: Sequence[Pattern | None], sizes: Sequence[int], n_cols: int) -> Pattern:
    """Vertical stack; ``None`` blocks become empty rows of the given size."""
    blocks = [
        p if p is not None else empty(size, n_cols) for p, size in zip(patterns, sizes, strict=True)
    ]
    if len(blocks) == 1:
        return blocks[0]
    return sp.csr_array(sp.vstack(blocks, format="csr"), dtype=bool)


def mask_rows(pattern: Pattern, keep: np.ndarray) -> Pattern:
    """Clear the rows where ``keep`` is False (derivative known to be zero there)."""
    keep = np.asarray(keep, dtype=bool).ravel()
    if keep.all():
        return pattern
    rows = np.where(keep, np.arange(keep.size, dtype=INDEX_DTYPE), -1)
    return gather_rows(pattern, rows)


def is_empty(pattern: Pattern | None) -> bool:
    return pattern is None or pattern.nnz == 0
