"""Where every nonzero of the result sits in the compressed matrix, computed once at plan time.

At plan time, in NumPy and in O(nnz), we compute for every stored entry ``k`` of the result (in
CSR or CSC storage order) its position ``positions[k]`` inside the flattened compressed matrix.
In the graph, decompression is then a single gather, ``data = compressed.ravel()[positions]``,
and the result is ``pytensor.sparse.CSR(data, indices, indptr, shape)`` (or ``CSC``) with constant
``indices``, ``indptr`` and ``shape``.

Compressed layouts (batch-first, as built by :mod:`sparsediff.compression.products`):

* forward, ``B`` of shape ``(n_colors, m)``, ``B[c, i] = sum_{j: color[j] = c} J[i, j]``:
  ``J[i, j] = B[color[j], i]``;
* reverse, ``Bᵀ`` of shape ``(n_colors, n)``, ``Bᵀ[c, j] = sum_{i: color[i] = c} J[i, j]``:
  ``J[i, j] = Bᵀ[color[i], j]``;
* star (symmetric), ``B`` of shape ``(n_colors, n)``, ``B[c, i] = (H S)[i, c]``:
  ``H[i, j] = B[color[j], i]`` if ``j`` is the only column of its color in row ``i``, else
  ``H[i, j] = B[color[i], j]`` (a star coloring guarantees one of the two);
* bidirectional, the concatenation of the flattened forward ``B`` (``(k_c, m)``, one JVP per
  column color ``1 … k_c``) and reverse ``Bᵀ`` (``(k_r, n)``, one VJP per row color): each
  nonzero is taken from whichever side reads it alone (columns first);
* acyclic (symmetric): not a gather but a substitution, see
  :mod:`sparsediff.decompression.substitution`.

The gather itself is :mod:`sparsediff.decompression.lift`; the CSR/CSC result,
:mod:`sparsediff.decompression.assemble`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsediff.coloring.validity import ColoringError, as_colors
from sparsediff.sparsity.pattern import as_pattern

__all__ = [
    "Layout",
    "bidirectional_positions",
    "forward_positions",
    "layout",
    "reverse_positions",
    "star_positions",
]

_INT32_MAX = np.iinfo(np.int32).max


@dataclass(frozen=True)
class Layout:
    """Where the stored entries of a sparse result live: rows, columns and compressed indices."""

    rows: np.ndarray  #: row of each stored entry, in storage order (int64)
    cols: np.ndarray  #: column of each stored entry, in storage order (int64)
    indices: np.ndarray  #: CSR column indices / CSC row indices (int32)
    indptr: np.ndarray  #: CSR row pointers / CSC column pointers (int32)
    shape: tuple[int, int]
    format: str  #: "csr" or "csc"

    @property
    def nnz(self) -> int:
        return int(self.rows.size)


def layout(pattern, format: str = "csr") -> Layout:
    """Storage order of the nonzeros of ``pattern`` for a ``format`` ("csr" or "csc") result."""
    if format not in ("csr", "csc"):
        raise ValueError(f"format must be 'csr' or 'csc', got {format!r}")
    p = as_pattern(pattern)
    if p.nnz > _INT32_MAX or max(p.shape) > _INT32_MAX:
        raise ValueError(
            f"pattern with {p.nnz} nonzeros and shape {p.shape} does not fit the int32 indices "
            "of pytensor.sparse"
        )
    if format == "csc":
        p = p.tocsc()
        p.sort_indices()
        minor = p.indices.astype(np.int64)
        major = np.repeat(np.arange(p.shape[1], dtype=np.int64), np.diff(p.indptr))
        rows, cols = minor, major
    else:
        # the pattern's own int64 indices, not a copy (nothing writes into a layout's arrays)
        minor = np.asarray(p.indices, dtype=np.int64)
        major = np.repeat(np.arange(p.shape[0], dtype=np.int64), np.diff(p.indptr))
        rows, cols = major, minor
    return Layout(
        rows=rows,
        cols=cols,
        indices=p.indices.astype(np.int32),
        indptr=p.indptr.astype(np.int32),
        shape=(int(p.shape[0]), int(p.shape[1])),
        format=format,
    )


#: Largest key range :func:`_first_conflict` checks by scattering into a table (int32, lazily
#: allocated pages: only the touched ones cost memory); above it, by sorting.
_SCATTER_MAX = 2**28


def _first_conflict(keys: np.ndarray, size: int | None = None) -> int | None:
    """Index of one entry whose key occurs twice, or None when all keys are distinct.

    ``size``: the keys lie in ``0 … size-1``. Then each entry writes its index into a table at
    its key and reads it back: an entry that finds another's index shares its key. O(nnz),
    where sorting 5·10⁶ keys (2-D Bratu, n = 10⁶) took 0.3 s.
    """
    if keys.size < 2:
        return None
    if size is not None and size <= _SCATTER_MAX and keys.size < _INT32_MAX:
        table = np.empty(size, dtype=np.int32)
        ids = np.arange(keys.size, dtype=np.int32)
        table[keys] = ids  # the last writer of each key wins
        lost = np.flatnonzero(table[keys] != ids)
        return None if lost.size == 0 else int(lost[0])
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    return None if dup.size == 0 else int(order[dup[0] + 1])


def _group_conflict(indptr: np.ndarray, members: np.ndarray, colors: np.ndarray) -> int | None:
    """Index of one entry whose color repeats inside its group, or None.

    The entries are grouped by ``indptr`` (the major axis of a layout: rows of CSR, columns of
    CSC), entry ``k`` has the color ``colors[members[k]]``; at most 64 colors. Each group ORs
    one bit per color, and repeats show as fewer bits than entries: one byte per entry at
    2-D Bratu's 5 colors, where :func:`_first_conflict`'s table takes four (and two more
    arrays the size of the keys): memory a first plan pays for in page faults.
    """
    k = int(colors.max(initial=-1)) + 1
    dtype = np.uint8 if k <= 8 else np.uint16 if k <= 16 else np.uint32 if k <= 32 else np.uint64
    bits = np.left_shift(dtype(1), colors.astype(dtype))[members]
    lengths = np.diff(indptr)
    nonempty = np.flatnonzero(lengths)
    if nonempty.size == 0:
        return None
    # the segments start at the non-empty groups only: the empty ones between hold no entry
    merged = np.bitwise_or.reduceat(bits, indptr[nonempty].astype(np.int64))
    bad = np.flatnonzero(_popcount(merged) != lengths[nonempty])
    if bad.size == 0:
        return None
    g = int(nonempty[bad[0]])
    lo, hi = int(indptr[g]), int(indptr[g + 1])
    inner = _first_conflict(colors[members[lo:hi]])
    assert inner is not None  # the group has fewer colors than entries
    return lo + inner


_POPCOUNT8 = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each unsigned integer (NumPy 2's ``bitwise_count``, or a byte table)."""
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return count(x).astype(np.int64)
    return _POPCOUNT8[x.view(np.uint8)].reshape(x.size, -1).sum(axis=1)


def _conflict(lay: Layout, by_rows: bool, colors: np.ndarray, keys: np.ndarray, size: int):
    """An entry sharing its color with another one of its row (``by_rows``; else of its
    column), or None: by groups when the layout stores them contiguously and there are at most
    64 colors, else by :func:`_first_conflict` on ``keys`` (``0 … size-1``)."""
    grouped = lay.format == ("csr" if by_rows else "csc")
    if grouped and colors.size and int(colors.max()) < 64:
        return _group_conflict(lay.indptr, lay.cols if by_rows else lay.rows, colors)
    return _first_conflict(keys, size)


def forward_positions(lay: Layout, colors: np.ndarray) -> np.ndarray:
    """``positions[k] = colors[col_k] * m + row_k``: where ``J[row_k, col_k]`` sits in ``B``.

    Raises :class:`ColoringError` if two columns of one color share a row.
    """
    colors = as_colors(colors, lay.shape[1], "column")
    m = lay.shape[0]
    positions = colors[lay.cols]
    positions *= m  # in place: one array of nnz entries, not three
    positions += lay.rows
    bad = _conflict(lay, True, colors, positions, (int(colors.max(initial=-1)) + 1) * m)
    if bad is not None:
        i, j = int(lay.rows[bad]), int(lay.cols[bad])
        raise ColoringError(
            f"invalid column coloring: row {i} has two nonzero columns of color "
            f"{int(colors[j])} (one is column {j}); the columns of one color must be "
            "structurally orthogonal"
        )
    return positions


def reverse_positions(lay: Layout, colors: np.ndarray) -> np.ndarray:
    """``positions[k] = colors[row_k] * n + col_k``: where ``J[row_k, col_k]`` sits in ``Bᵀ``.

    Raises :class:`ColoringError` if two rows of one color share a column.
    """
    colors = as_colors(colors, lay.shape[0], "row")
    n = lay.shape[1]
    positions = colors[lay.rows]
    positions *= n
    positions += lay.cols
    bad = _conflict(lay, False, colors, positions, (int(colors.max(initial=-1)) + 1) * n)
    if bad is not None:
        i, j = int(lay.rows[bad]), int(lay.cols[bad])
        raise ColoringError(
            f"invalid row coloring: column {j} has two nonzero rows of color "
            f"{int(colors[i])} (one is row {i}); the rows of one color must be "
            "structurally orthogonal"
        )
    return positions


def star_positions(lay: Layout, colors: np.ndarray) -> np.ndarray:
    """Direct symmetric recovery of a Hessian from ``B = (H S)ᵀ`` of shape ``(n_colors, n)``.

    For a nonzero ``(a, b)`` with ``a <= b``: ``H[a, b] = B[c(b), a]`` when ``b`` is the only
    column of color ``c(b)`` among the nonzeros of row ``a``; otherwise ``H[a, b] = B[c(a), b]``,
    which needs ``a`` to be the only column of color ``c(a)`` in row ``b``. ``H[b, a]`` is read
    from the same place, so the result is exactly symmetric. ``lay`` must describe a symmetric
    pattern. Raises :class:`ColoringError` when neither holds for some nonzero.
    """
    n = lay.shape[0]
    if lay.shape[0] != lay.shape[1]:
        raise ValueError(f"a Hessian pattern must be square, got shape {lay.shape}")
    colors = as_colors(colors, n, "star")
    n_colors = int(colors.max()) + 1 if colors.size else 0
    a = np.minimum(lay.rows, lay.cols)
    b = np.maximum(lay.rows, lay.cols)
    ca, cb = colors[a], colors[b]
    # count[r, c]: nonzero columns of color c in row r (keys r * n_colors + c)
    keys = lay.rows * n_colors + colors[lay.cols]
    key_ab, key_ba = a * n_colors + cb, b * n_colors + ca
    if n * max(n_colors, 1) <= 1 << 27:
        counts = np.bincount(keys, minlength=n * n_colors)
        b_unique_in_a = counts[key_ab] == 1
        a_unique_in_b = counts[key_ba] == 1
    else:
        uniq, cnt = np.unique(keys, return_counts=True)

        def _count_is_one(k):
            pos = np.minimum(np.searchsorted(uniq, k), uniq.size - 1)
            return (uniq[pos] == k) & (cnt[pos] == 1)

        b_unique_in_a = _count_is_one(key_ab)
        a_unique_in_b = _count_is_one(key_ba)
    ok = b_unique_in_a | a_unique_in_b
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        i, j = int(a[k]), int(b[k])
        raise ColoringError(
            f"coloring does not allow direct symmetric recovery of H[{i}, {j}]: row {i} has "
            f"several columns of color {int(cb[k])} and row {j} several of color {int(ca[k])} "
            "(a star coloring is needed)"
        )
    return np.where(b_unique_in_a, cb * n + a, ca * n + b)


def _count_is_one(keys: np.ndarray, queries: np.ndarray, size: int) -> np.ndarray:
    """``count(keys == q) == 1`` for every query, keys in ``[0, size)``: a bincount when it is
    small, a sorted search otherwise (O(nnz log nnz), never ``size`` memory)."""
    if size <= 1 << 27:
        return np.bincount(keys, minlength=size)[queries] == 1
    uniq, cnt = np.unique(keys, return_counts=True)
    if uniq.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(uniq, queries), uniq.size - 1)
    return (uniq[pos] == queries) & (cnt[pos] == 1)


def bidirectional_positions(
    lay: Layout,
    col_colors: np.ndarray,
    row_colors: np.ndarray,
    full: Layout | None = None,
    col_offset: int = 0,
) -> np.ndarray:
    """Where each nonzero of ``lay`` sits in ``concat(B.ravel(), Bᵀ.ravel())``.

    ``B`` (``(k_c, m)``) holds one JVP per column color ``1 … k_c``, ``Bᵀ`` (``(k_r, n)``) one
    VJP per row color; color 0 is neutral (in no product). ``J[i, j]`` is read from
    ``B[c(j) - 1, i]`` when ``j`` is the only column of its color in row ``i``, else from
    ``Bᵀ[r(i) - 1, j]``, which needs ``i`` to be the only row of its color in column ``j``.
    ``full`` is the whole pattern (uniqueness is decided there) when ``lay`` is one block of
    it whose columns start at ``col_offset``. Raises :class:`ColoringError` for a nonzero that
    neither side reads alone.
    """
    full = lay if full is None else full
    m, n = full.shape
    ccol = as_colors(col_colors, n, "column")
    crow = as_colors(row_colors, m, "row")
    kc = int(ccol.max(initial=0))
    kr = int(crow.max(initial=0))
    k = max(kc, kr) + 1
    rows, cols = lay.rows, lay.cols + col_offset
    cc, rc = ccol[cols], crow[rows]
    col_ok = (cc > 0) & _count_is_one(full.rows * k + ccol[full.cols], rows * k + cc, m * k)
    row_ok = (rc > 0) & _count_is_one(full.cols * k + crow[full.rows], cols * k + rc, n * k)
    ok = col_ok | row_ok
    if not ok.all():
        q = int(np.flatnonzero(~ok)[0])
        i, j = int(rows[q]), int(cols[q])
        raise ColoringError(
            f"bidirectional coloring does not allow recovery of J[{i}, {j}]: column {j} (color "
            f"{int(cc[q])}) is not the only column of its color in row {i}, and row {i} (color "
            f"{int(rc[q])}) not the only row of its color in column {j} (0 is neutral)"
        )
    return np.where(col_ok, (cc - 1) * m + rows, kc * m + (rc - 1) * n + cols)
