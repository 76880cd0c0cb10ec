"""Greedy distance-2 coloring (partial, on the bipartite graph) and DSATUR.

Columns ``j`` and ``k`` of a Jacobian pattern may share a color iff no row has a nonzero in both
(structurally orthogonal; Gebremedhin, Manne, Pothen, "What color is your Jacobian?", 2005,
Algorithm 3.2). The kernels walk the neighbours of ``v`` through rows, ``for i in col(v): for u
in row(i)``, marking ``forbidden[color[u]] = v`` — storing the current vertex instead of a flag
means the array never needs clearing. Cost: one visit per (column, row, column) triple.

DSATUR (Brélaz 1979) colors next the vertex whose neighbours already use the most distinct
colors. It reaches the optimum 5 on the 5-point stencil where static orders get 6 or 7. The set
of colors seen around each vertex is kept as a bitmask for the first ``64·words`` colors (one
bit test per neighbour visit); beyond that it falls back to scanning the neighbourhood.
"""

from __future__ import annotations

import numpy as np

from sparsediff._jit import kernel
from sparsediff.coloring.buckets import single_bucket
from sparsediff.coloring.graphs import FIRST_FIT, NO_NEIGHBOURS, TwoHop, degrees, walk

__all__ = ["dsatur", "greedy_coloring", "recolor_by_classes"]

#: Bitmask words per vertex for DSATUR's saturation sets (64 colors per word).
DSATUR_MAX_WORDS = 8


def greedy_coloring(g: TwoHop, order: np.ndarray) -> np.ndarray:
    """First-fit coloring of the vertices of ``g`` visited in ``order`` (0-based colors)."""
    colors = np.full(g.n, -1, dtype=np.int64)
    forbidden = np.full(g.n + 1, -1, dtype=np.int64)
    order = np.asarray(order, dtype=np.int64)
    walk(
        g.n, g.a_ptr, g.a_idx, g.b_ptr, g.b_idx, order, colors, forbidden, FIRST_FIT, NO_NEIGHBOURS
    )
    return colors


def dsatur(g: TwoHop, deg: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """DSATUR coloring of ``g``: ``(colors, visiting order)``; ``deg``: degrees, if known."""
    n = g.n
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if deg is None:
        deg = degrees(g)
    words = max(1, int(min(DSATUR_MAX_WORDS, (int(deg.max()) + 1 + 63) // 64)))
    maxd = int(deg.max())
    # work arrays allocated here: each NumPy constructor inside a kernel is one more function
    # for Numba to compile on a first run. They take the graph's index type (int32 below 2³¹
    # entries): the kernel is bound by memory traffic, 2-D Bratu at n = 10⁶ runs about a
    # sixth faster than on int64 arrays; colors and order are returned as int64.
    dt = g.a_idx.dtype
    colors = np.full(n, -1, dtype=dt)
    order = np.empty(n, dtype=dt)
    _dsatur(
        n,
        g.a_ptr,
        g.a_idx,
        g.b_ptr,
        g.b_idx,
        deg,
        maxd,
        words,
        colors,
        order,
        np.zeros(n * words, dtype=np.uint64),
        np.zeros(n, dtype=dt),
        np.full(maxd + 2, -1, dtype=dt),  # colors stay within 0 … maxd
        np.full(n, -1, dtype=dt),
        np.empty(maxd + 1, dtype=dt),
        *single_bucket(deg, maxd + 2, dtype=dt),
    )
    return colors.astype(np.int64), order.astype(np.int64)


def recolor_by_classes(g: TwoHop, colors: np.ndarray) -> np.ndarray:
    """One pass of iterated greedy (Culberson): recolor visiting whole color classes, the last
    class first.

    The vertices of one class are pairwise non-adjacent, so each class fits into colors already
    used by the classes before it: the count never grows, and shrinks often (Brusselator:
    DSATUR's 11 becomes 10 within a few passes).
    """
    if colors.size == 0:
        return colors
    return greedy_coloring(g, _reverse_class_order(colors, int(colors.max()) + 1))


def _reverse_class_order(colors: np.ndarray, k: int) -> np.ndarray:
    """Vertices grouped by color, highest color first, increasing index inside a class (a
    stable sort, radix for small keys: nothing to compile)."""
    keys = (k - 1) - colors
    if k < 2**15:
        keys = keys.astype(np.int16)
    return np.argsort(keys, kind="stable").astype(np.int64)


@kernel
def _dsatur(
    n,
    a_ptr,
    a_idx,
    b_ptr,
    b_idx,
    deg,
    maxd,
    words,
    colors,
    order,
    masks,
    sat,
    forbidden,
    mark,
    uncolored,
    head,
    nxt,
    prv,
):
    """Bucket queue on saturation; ties go to the most recently touched vertex (LIFO), which
    makes the coloring grow as a front, and initially to the largest degree. Fills ``colors``
    (all -1 on entry) and ``order``; ``masks`` (``n · words``), ``sat`` (zeros), ``forbidden``,
    ``mark`` (-1) and ``uncolored`` (distinct uncolored neighbours of a vertex) are scratch."""
    nbits = 64 * words
    hi = 0
    one = np.uint64(1)
    for step in range(n):
        while head[hi] < 0:
            hi -= 1
        v = head[hi]
        # take v out of its bucket (the queue moves are written out here, not called: a
        # function called with different constant arguments is compiled once for each)
        p = prv[v]
        q = nxt[v]
        if p >= 0:
            nxt[p] = q
        else:
            head[sat[v]] = q
        if q >= 0:
            prv[q] = p
        prv[v] = -1
        nxt[v] = -1
        order[step] = v
        # one walk: forbid the neighbours' colors, collect the uncolored neighbours
        mark[v] = v
        m = 0
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for s in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[s]
                if mark[u] == v:
                    continue
                mark[u] = v
                cu = colors[u]
                if cu >= 0:
                    forbidden[cu] = v
                else:
                    uncolored[m] = u
                    m += 1
        c = 0
        while forbidden[c] == v:
            c += 1
        colors[v] = c
        # saturation of the uncolored neighbours: does c add a new color around u?
        w = c // 64
        bit = one << np.uint64(c % 64)
        for t in range(m):
            u = uncolored[t]
            if c < nbits:
                slot = u * words + w
                if masks[slot] & bit:
                    continue
                masks[slot] |= bit
            else:
                seen = False
                for k2 in range(a_ptr[u], a_ptr[u + 1]):
                    i2 = a_idx[k2]
                    for s2 in range(b_ptr[i2], b_ptr[i2 + 1]):
                        x = b_idx[s2]
                        if x != v and x != u and colors[x] == c:
                            seen = True
                            break
                    if seen:
                        break
                if seen:
                    continue
            # move u up one bucket
            p = prv[u]
            q = nxt[u]
            if p >= 0:
                nxt[p] = q
            else:
                head[sat[u]] = q
            if q >= 0:
                prv[q] = p
            sat[u] += 1
            h = head[sat[u]]
            nxt[u] = h
            prv[u] = -1
            if h >= 0:
                prv[h] = u
            head[sat[u]] = u
            if sat[u] > hi:
                hi = sat[u]
