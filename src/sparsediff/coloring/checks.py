"""Validity checkers: does a coloring allow direct recovery, and if not, which pair breaks it?

- column: no row has nonzeros in two columns of the same color (structurally orthogonal);
- row: no column has nonzeros in two rows of the same color;
- star: adjacent vertices differ, and every path on four vertices uses at least three colors.
  With a proper coloring, a two-colored path ``a - v - w - d`` exists exactly when ``v`` has
  another neighbour of ``w``'s color *and* ``w`` has another neighbour of ``v``'s color, i.e.
  exactly when ``H[v, w]`` can be read from neither column group — so this one test is both the
  star condition and the symmetric direct-recovery condition;
- acyclic: adjacent vertices differ, and no cycle uses only two colors — checked by peeling the
  two-colored forests, which is the substitution itself (it stops on a cycle);
- bidirectional: every nonzero ``J[i, j]`` is readable from a JVP (``j`` is in a product and
  the only column of its color in row ``i``) or from a VJP (the same for row ``i`` in column
  ``j``); neutral vertices (color 0) are in no product.

Each check is one O(nnz) Numba pass with a marker array per color; failures name the offending
vertices in the message.
"""

from __future__ import annotations

import numpy as np

from sparsediff._jit import kernel
from sparsediff.coloring.acyclic import substitution_order
from sparsediff.coloring.bicolor import bicolor_readable
from sparsediff.coloring.graphs import Structure, as_structure, symmetric_adjacency
from sparsediff.coloring.result import Coloring
from sparsediff.coloring.validity import ColoringError, colors_and_kind

__all__ = ["check_coloring", "is_valid_coloring"]


def check_coloring(pattern, coloring: Coloring | np.ndarray, kind: str | None = None) -> None:
    """Raise :class:`ColoringError` (a ``ValueError``) naming an offending pair unless
    ``coloring`` is valid for ``pattern``.

    ``coloring`` is a :class:`Coloring`, or an integer array of colors together with ``kind``
    (for ``"bidirectional"``: a pair ``(column colors, row colors)``).
    """
    s = pattern if isinstance(pattern, Structure) else as_structure(pattern)
    m, n = s.shape
    requested = coloring.kind if isinstance(coloring, Coloring) else kind
    if requested in ("star", "acyclic") and m != n:
        raise ColoringError(f"a {requested} coloring needs a square pattern, got shape {s.shape}")
    colors, kind = colors_and_kind(coloring, kind, (m, n))
    if kind == "bidirectional":
        _check_bidirectional(s, colors)
        return
    if kind == "column":
        bad = _first_conflict(s.indptr, s.indices, colors)
        if bad[0] >= 0:
            i, a, b = bad
            raise ColoringError(
                f"invalid column coloring: columns {a} and {b} share color {colors[a]} "
                f"and both have a nonzero in row {i}"
            )
    elif kind == "row":
        t = s.transpose()
        bad = _first_conflict(t.indptr, t.indices, colors)
        if bad[0] >= 0:
            j, a, b = bad
            raise ColoringError(
                f"invalid row coloring: rows {a} and {b} share color {colors[a]} "
                f"and both have a nonzero in column {j}"
            )
    elif kind == "star":
        adj = symmetric_adjacency(s)
        bad = _first_star_violation(adj.indptr, adj.indices, colors)
        if bad[0] == 0:
            v, w = bad[1], bad[2]
            raise ColoringError(
                f"invalid star coloring: adjacent vertices {v} and {w} share color {colors[v]}"
            )
        if bad[0] == 1:
            a, v, w, d = bad[1:]
            raise ColoringError(
                f"invalid star coloring: the path {a} - {v} - {w} - {d} uses only colors "
                f"{colors[a]} and {colors[v]}, so H[{v}, {w}] cannot be recovered directly "
                f"(column {w} shares color {colors[w]} with column {a} in row {v}, and column "
                f"{v} shares color {colors[v]} with column {d} in row {w})"
            )
    elif kind == "acyclic":
        adj = symmetric_adjacency(s)
        bad = _first_star_violation(adj.indptr, adj.indices, colors)
        if bad[0] == 0:
            v, w = bad[1], bad[2]
            raise ColoringError(
                f"invalid acyclic coloring: adjacent vertices {v} and {w} share color {colors[v]}"
            )
        peel = substitution_order(adj, colors)
        if not peel.complete:
            v = peel.cycle_vertex
            raise ColoringError(
                f"invalid acyclic coloring: vertex {v} lies on a cycle colored with two colors "
                "only, so its entries cannot be recovered by substitution"
            )
    else:
        raise ValueError(
            f"unknown coloring kind {kind!r}; expected 'column', 'row', 'star', 'acyclic' or "
            "'bidirectional'"
        )


def _check_bidirectional(s: Structure, colors) -> None:
    col, row = colors
    col_ok, row_ok = bicolor_readable(s, col, row, neutral=0)
    bad = np.flatnonzero(~(col_ok | row_ok))
    if bad.size:
        q = int(bad[0])
        i = int(np.searchsorted(s.indptr, q, side="right") - 1)
        j = int(s.indices[q])
        raise ColoringError(
            f"invalid bidirectional coloring: J[{i}, {j}] can be read from neither side (column "
            f"{j} has color {col[j]}, row {i} has color {row[i]}; 0 is neutral, and a nonzero "
            "needs its column to be the only one of its color in its row, or its row the only "
            "one of its color in its column)"
        )


def is_valid_coloring(pattern, coloring: Coloring | np.ndarray, kind: str | None = None) -> bool:
    """``True`` iff :func:`check_coloring` passes."""
    try:
        check_coloring(pattern, coloring, kind)
    except ValueError:  # ColoringError included
        return False
    return True


@kernel
def _first_conflict(ptr, idx, colors):
    """First row holding two columns of one color: (row, column, column), or (-1, -1, -1)."""
    n_colors = 0
    for j in range(colors.size):
        n_colors = max(n_colors, colors[j] + 1)
    seen_row = np.full(n_colors, -1, dtype=np.int64)
    seen_col = np.full(n_colors, -1, dtype=np.int64)
    for i in range(ptr.size - 1):
        for k in range(ptr[i], ptr[i + 1]):
            j = idx[k]
            c = colors[j]
            if seen_row[c] == i:
                return i, seen_col[c], j
            seen_row[c] = i
            seen_col[c] = j
    return -1, -1, -1


@kernel
def _first_star_violation(ptr, idx, colors):
    """``(0, v, w, -1, -1)`` for adjacent vertices of one color, ``(1, a, v, w, d)`` for a
    two-colored path ``a - v - w - d``, ``(-1, …)`` when the star coloring is valid."""
    n = ptr.size - 1
    for v in range(n):
        for k in range(ptr[v], ptr[v + 1]):
            if colors[idx[k]] == colors[v]:
                return 0, v, idx[k], -1, -1
    n_colors = 0
    for j in range(colors.size):
        n_colors = max(n_colors, colors[j] + 1)
    # unique[k]: idx[k] is the only neighbour of row v with its color
    count = np.zeros(n_colors, dtype=np.int64)
    unique = np.zeros(idx.size, dtype=np.bool_)
    for v in range(n):
        for k in range(ptr[v], ptr[v + 1]):
            count[colors[idx[k]]] += 1
        for k in range(ptr[v], ptr[v + 1]):
            unique[k] = count[colors[idx[k]]] == 1
        for k in range(ptr[v], ptr[v + 1]):
            count[colors[idx[k]]] = 0
    for v in range(n):
        for k in range(ptr[v], ptr[v + 1]):
            if unique[k]:
                continue
            w = idx[k]
            # entry (w, v): binary search in the sorted row w
            lo = ptr[w]
            hi = ptr[w + 1]
            while lo < hi:
                mid = (lo + hi) // 2
                if idx[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            if unique[lo]:
                continue
            a = -1
            for s in range(ptr[v], ptr[v + 1]):
                if idx[s] != w and colors[idx[s]] == colors[w]:
                    a = idx[s]
                    break
            d = -1
            for s in range(ptr[w], ptr[w + 1]):
                if idx[s] != v and colors[idx[s]] == colors[v]:
                    d = idx[s]
                    break
            return 1, a, v, w, d
    return -1, -1, -1, -1, -1
