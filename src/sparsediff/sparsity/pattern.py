"""Boolean CSR patterns and the few vectorized operations every rule is built from.

A pattern is a ``scipy.sparse.csr_array`` of dtype bool and shape ``(variable.size, n_wrt)``:
row ``k`` holds the inputs that element ``k`` (C order) of the variable depends on. ``None``
stands for "depends on nothing", so that parameters and constants cost nothing to carry.
All operations here are O(nnz) NumPy/SciPy work, never a Python loop over elements.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def as_pattern(matrix, shape: tuple[int, int] | None = None) -> Pattern:
    """Canonical boolean CSR from any sparse or dense matrix (stored zeros dropped)."""
    if sp.issparse(matrix):
        out = sp.csr_array(matrix, dtype=bool)
    else:
        out = sp.csr_array(np.asarray(matrix, dtype=bool))
    out.eliminate_zeros()
    out.sum_duplicates()
    out.sort_indices()
    if shape is not None and out.shape != shape:
        raise ValueError(f"pattern has shape {out.shape}, expected {shape}")
    return out


def gather_rows(pattern: Pattern, rows: np.ndarray) -> Pattern:
    """Rows ``pattern[rows[k]]`` for every k; a negative index gives an empty row.

    This is the rule of every Op that moves or copies elements (indexing, reshapes with
    broadcasting, concatenation): the output element k is a copy of input element rows[k].
    """
    rows = np.asarray(rows, dtype=INDEX_DTYPE).ravel()
    indptr = pattern.indptr.astype(INDEX_DTYPE, copy=False)
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    starts = indptr[safe]
    lengths = np.where(valid, indptr[safe + 1] - starts, 0)
    new_indptr = np.zeros(rows.size + 1, dtype=INDEX_DTYPE)
    np.cumsum(lengths, out=new_indptr[1:])
    total = int(new_indptr[-1])
    if total == 0:
        return empty(rows.size, pattern.shape[1])
    # Position p in the output reads pattern.indices[starts[row(p)] + (p - new_indptr[row(p)])].
    shift = np.repeat(starts - new_indptr[:-1], lengths)
    source = np.arange(total, dtype=INDEX_DTYPE) + shift
    indices = pattern.indices[source]
    return sp.csr_array(
        (np.ones(total, dtype=bool), indices, new_indptr), shape=(rows.size, pattern.shape[1])
    )


def union(patterns: Sequence[Pattern | None]) -> Pattern | None:
    """Entry-wise OR of patterns of equal shape (``None`` entries are skipped)."""
    present = [p for p in patterns if p is not None]
    if not present:
        return None
    out = present[0]
    for p in present[1:]:
        out = out + p
    return out


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
