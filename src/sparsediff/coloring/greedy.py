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
    maxd = int(deg.max())
    words = max(1, int(min(DSATUR_MAX_WORDS, (maxd + 1 + 63) // 64)))
    # work arrays allocated here: each NumPy constructor inside a kernel is one more function
    # for Numba to compile on a first run. They take the graph's index type (int32 below 2³¹
    # entries): the kernel is bound by memory traffic; colors and order are returned as int64.
    dt = g.a_idx.dtype
    state = np.zeros((n, _state_stride(words)), dtype=dt)
    state[:, _COLOR] = -1
    state[:, _MARK] = -1
    head, state[:, _NEXT], state[:, _PREV] = single_bucket(deg, maxd + 2, dtype=dt)
    order = np.empty(n, dtype=dt)
    _dsatur(
        n,
        g.a_ptr,
        g.a_idx,
        g.b_ptr,
        g.b_idx,
        state.shape[1],
        64 * words,
        state.reshape(-1),
        order,
        np.full(maxd + 2, -1, dtype=dt),  # colors stay within 0 … maxd
        np.empty(maxd + 1, dtype=dt),
        head,
    )
    return state[:, _COLOR].astype(np.int64), order.astype(np.int64)


#: DSATUR's per-vertex state, one row of ``state`` per vertex (:func:`_dsatur`): color, mark,
#: saturation, next and previous vertex in its bucket, then the saturation bitmask in 32-bit
#: pieces.
_COLOR, _MARK, _SAT, _NEXT, _PREV, _MASK = range(6)


def _state_stride(words: int) -> int:
    """Entries per vertex in DSATUR's state: 5 fields and ``2 · words`` mask pieces, padded
    from 7 to 8 (a vertex never straddles a cache line at one mask word)."""
    stride = _MASK + 2 * words
    return 8 if stride == 7 else stride


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
def _dsatur(n, a_ptr, a_idx, b_ptr, b_idx, stride, nbits, state, order, forbidden, uncolored, head):
    """Bucket queue on saturation; ties go to the most recently touched vertex (LIFO), which
    makes the coloring grow as a front, and initially to the largest degree. Vertex ``v``'s
    state is ``state[v * stride : (v + 1) * stride]`` (fields: ``_COLOR`` … ``_MASK``): DSATUR
    visits vertices along a front that jumps across the index range (on 2-D Bratu by a grid
    row per step), and one cache line then holds what separate arrays spread over six. Fills
    the colors (all -1 on entry) and ``order``; ``forbidden`` (-1) and ``uncolored`` (distinct
    uncolored neighbours of a vertex) are scratch."""
    hi = 0
    for step in range(n):
        while head[hi] < 0:
            hi -= 1
        v = head[hi]
        sv = v * stride
        # take v out of its bucket, whose head it is (the queue moves are written out here,
        # not called: a function called with different constant arguments is compiled once
        # for each)
        q = state[sv + 3]
        head[hi] = q
        if q >= 0:
            state[q * stride + 4] = -1
        state[sv + 3] = -1
        order[step] = v
        # one walk: forbid the neighbours' colors, collect the uncolored neighbours
        state[sv + 1] = v
        m = 0
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for s in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[s]
                su = u * stride
                if state[su + 1] == v:
                    continue
                state[su + 1] = v
                cu = state[su]
                if cu >= 0:
                    forbidden[cu] = v
                else:
                    uncolored[m] = u
                    m += 1
        c = 0
        while forbidden[c] == v:
            c += 1
        state[sv] = c
        # saturation of the uncolored neighbours: does c add a new color around u? (the
        # mask pieces are 32 bits wide, so that they fit an int32 state: bit 31 makes the
        # piece negative, which the masking below reads and writes back unchanged)
        piece = 5 + c // 32
        bit = 1 << (c % 32)
        for t in range(m):
            u = uncolored[t]
            su = u * stride
            if c < nbits:
                word = state[su + piece]
                if word & bit:
                    continue
                state[su + piece] = word | bit
            else:
                seen = False
                for k2 in range(a_ptr[u], a_ptr[u + 1]):
                    i2 = a_idx[k2]
                    for s2 in range(b_ptr[i2], b_ptr[i2 + 1]):
                        x = b_idx[s2]
                        if x != v and x != u and state[x * stride] == c:
                            seen = True
                            break
                    if seen:
                        break
                if seen:
                    continue
            # move u up one bucket
            p = state[su + 4]
            q = state[su + 3]
            level = state[su + 2]
            if p >= 0:
                state[p * stride + 3] = q
            else:
                head[level] = q
            if q >= 0:
                state[q * stride + 4] = p
            level += 1
            state[su + 2] = level
            h = head[level]
            state[su + 3] = h
            state[su + 4] = -1
            if h >= 0:
                state[h * stride + 4] = u
            head[level] = u
            if level > hi:
                hi = level
