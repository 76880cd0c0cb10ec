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


def as_pattern(matrix, shape: tuple[int, int] | None = None, what: str = "pattern") -> Pattern:
    """Canonical boolean CSR from any sparse or dense matrix (stored zeros dropped); a clear
    error naming ``what`` when it is not a two-dimensional matrix of ``shape``."""
    known_canonical = False
    if sp.issparse(matrix):
        out = sp.csr_array(matrix, dtype=bool)
        # a canonical CSR pattern SciPy has already checked (the detected pattern, passed on
        # by the plan through three more calls): not checked again, one O(nnz) pass each
        known_canonical = matrix.format == "csr" and getattr(matrix, "_has_canonical_format", False)
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
    if not out.data.all():  # reading the bool data is cheaper than SciPy's compaction pass
        out.eliminate_zeros()  # keeps a canonical structure canonical
    if known_canonical:
        out.has_canonical_format = True
    else:
        out.sum_duplicates()
        out.sort_indices()
    return out


def gather_rows(pattern: Pattern, rows: np.ndarray) -> Pattern:
    """Rows ``pattern[rows[k]]`` for every k; a negative index gives an empty row.

    This is the rule of every Op that moves or copies elements (indexing, reshapes with
    broadcasting, concatenation): the output element k is a copy of input element rows[k].
    Rows stay sorted, so the result is canonical. SciPy's compiled row indexing does the copy
    (negative indices point at an empty row appended to the index pointer): faster than the
    Numba kernel this replaced at n = 10⁶, and nothing to compile on a first run.
    """
    rows = np.asarray(rows, dtype=INDEX_DTYPE).ravel()
    canonical = _canonical(pattern)
    m, n = canonical.shape
    if rows.size == m and m and rows[0] == 0 and rows[-1] == m - 1 and _is_arange(rows):
        return canonical  # every row in place (reshapes, full slices): nothing to copy
    if rows.size and rows.min() < 0:
        indptr = np.append(canonical.indptr, canonical.indptr[-1])
        canonical = sp.csr_array((canonical.data, canonical.indices, indptr), shape=(m + 1, n))
        rows = np.where(rows < 0, m, rows)
    if rows.size == 0:
        return empty(0, n)
    out = canonical[rows]
    out.has_canonical_format = True
    return out


def _is_arange(rows: np.ndarray) -> bool:
    """Whether ``rows`` is ``0, 1, …, size - 1`` (checked in blocks: a mismatch usually shows
    early, and no full-size temporary is made)."""
    block = 1 << 16
    for start in range(0, rows.size, block):
        chunk = rows[start : start + block]
        if not np.array_equal(chunk, np.arange(start, start + chunk.size, dtype=rows.dtype)):
            return False
    return True


def _canonical(pattern: Pattern) -> Pattern:
    if not pattern.has_canonical_format:
        pattern = pattern.copy()
        pattern.sum_duplicates()
    return pattern


class Deferred:
    """A union of patterns not merged yet (:func:`deferred_union`): its ``parts`` (non-empty,
    distinct objects, two or more) and ``shape``. Detection leaves the union of an elemwise
    node unmerged while its only client is another elemwise node, so that a chain such as
    ``2u - u_L - u_R + …`` is merged once, from its leaves (2-D Bratu at n = 10⁶: one 5-way
    merge writing 5·10⁶ entries instead of six merges writing 2·10⁷)."""

    __slots__ = ("parts", "shape")

    def __init__(self, parts: tuple[Pattern, ...], shape: tuple[int, int]):
        self.parts = parts
        self.shape = shape

    def merge(self) -> Pattern:
        """The union itself (a new canonical pattern)."""
        return union(self.parts)


def _present(patterns) -> list[Pattern]:
    """The non-empty patterns, those of a :class:`Deferred` flattened, each object once."""
    present: dict[int, Pattern] = {}  # by identity, in order: O(parts), even for long chains
    for p in patterns:
        parts = p.parts if isinstance(p, Deferred) else (p,)
        for q in parts:
            if q is not None and id(q) not in present and q.nnz:
                present[id(q)] = q
    return list(present.values())


def deferred_union(patterns: Sequence[Pattern | Deferred | None]) -> Pattern | Deferred | None:
    """:func:`union`, but two or more non-empty patterns come back as a :class:`Deferred` (no
    merge yet): the same union, whichever of the two is merged later."""
    present = _present(patterns)
    if len(present) < 2:
        return union(patterns)
    return Deferred(tuple(present), tuple(present[0].shape))


def union(patterns: Sequence[Pattern | Deferred | None]) -> Pattern | None:
    """Entry-wise OR of patterns of equal shape (``None`` entries are skipped; the parts of a
    :class:`Deferred` count as patterns)."""
    present = _present(patterns)
    if not present:
        return next((p for p in patterns if p is not None and not isinstance(p, Deferred)), None)
    if len(present) == 1:
        return _canonical(present[0])
    # SciPy's merge of two canonical CSR structures (C++, O(nnz), canonical output); k
    # patterns pairwise, in a balanced tree (O(nnz log k)): no Numba kernel to compile
    present = [_canonical(p) for p in present]
    while len(present) > 1:
        merged = []
        for i in range(0, len(present) - 1, 2):
            out = present[i] + present[i + 1]
            out.has_canonical_format = True
            merged.append(out)
        if len(present) % 2:
            merged.append(present[-1])
        present = merged
    return present[0]


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
