"""Star coloring of a symmetric pattern, for direct recovery of Hessians.

A star coloring is a proper coloring of the adjacency graph in which every path on four
vertices uses at least three colors: every two-colored subgraph is a union of stars. Then for
every nonzero ``H[i, j]``, either ``j`` is the only column of its color with a nonzero in row
``i`` or ``i`` is the only one of its color in row ``j`` (Coleman–Moré), so each entry is read
directly off one Hessian-vector product.

The kernel follows Gebremedhin, Tarafdar, Manne, Pothen, "New acyclic and star coloring
algorithms with application to computing Hessians" (SIAM J. Sci. Comput., 2007), Algorithm 4.1:
it keeps the two-colored stars built so far (a star id per edge and a hub per star) so that the
colors forbidden for ``v`` are found by looking at distance ≤ 2 only (plus a few distance-3 looks
when ``v`` would become the hub of a star), instead of enumerating every path of length three.
"""

from __future__ import annotations

import numpy as np

from sparsediff._jit import kernel
from sparsediff.coloring.graphs import Structure

__all__ = ["star_coloring"]


def star_coloring(adj: Structure, order: np.ndarray) -> np.ndarray:
    """Greedy star coloring of the adjacency ``adj`` (symmetric, no diagonal) in ``order``."""
    n = adj.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    edge = edge_ids(n, adj.indptr, adj.indices)
    return _star(n, adj.indptr, adj.indices, edge, np.asarray(order, dtype=np.int64))


@kernel
def edge_ids(n, ptr, idx):
    """One id per undirected edge, shared by the entries ``(i, j)`` and ``(j, i)``.

    Rows are visited in increasing order, so the entries of column ``j`` are met in increasing
    row order, i.e. in the order of row ``j`` itself (the pattern is symmetric and sorted).
    """
    cursor = ptr[:n].copy()
    edge = np.empty(idx.size, dtype=np.int64)
    for i in range(n):
        for k in range(ptr[i], ptr[i + 1]):
            j = idx[k]
            twin = cursor[j]
            cursor[j] += 1
            edge[k] = min(k, twin)
    return edge


@kernel
def _star(n, ptr, idx, edge, order):
    colors = np.full(n, -1, dtype=np.int64)
    forbidden = np.full(n + 1, -1, dtype=np.int64)
    # per color: the first neighbour of the current vertex seen with that color, and the edge
    fn_v = np.full(n + 1, -1, dtype=np.int64)
    fn_w = np.full(n + 1, -1, dtype=np.int64)
    fn_e = np.full(n + 1, -1, dtype=np.int64)
    treated = np.full(n, -1, dtype=np.int64)
    star = np.full(idx.size, -1, dtype=np.int64)  # indexed by edge id
    hub = np.full(idx.size + 1, -1, dtype=np.int64)  # -1: a single edge, no hub yet
    n_stars = 0
    for t in range(order.size):
        v = order[t]
        for k in range(ptr[v], ptr[v + 1]):
            w = idx[k]
            cw = colors[w]
            if cw < 0:
                continue
            forbidden[cw] = v
            if fn_v[cw] == v:
                # second neighbour of color cw: v becomes the hub of a star with leaves of
                # color cw, so no neighbour of those leaves may carry v's color
                q = fn_w[cw]
                if treated[q] != v:
                    for s in range(ptr[q], ptr[q + 1]):
                        cx = colors[idx[s]]
                        if cx >= 0:
                            forbidden[cx] = v
                    treated[q] = v
                for s in range(ptr[w], ptr[w + 1]):
                    cx = colors[idx[s]]
                    if cx >= 0:
                        forbidden[cx] = v
                treated[w] = v
            else:
                fn_v[cw] = v
                fn_w[cw] = w
                fn_e[cw] = edge[k]
                # w is a leaf of a star whose hub x has color cx: v - w - x - (leaf) would be a
                # two-colored path on four vertices if v took color cx
                for s in range(ptr[w], ptr[w + 1]):
                    x = idx[s]
                    cx = colors[x]
                    if x == v or cx < 0:
                        continue
                    if hub[star[edge[s]]] == x:
                        forbidden[cx] = v
        c = 0
        while forbidden[c] == v:
            c += 1
        colors[v] = c
        # update the stars around v
        for k in range(ptr[v], ptr[v + 1]):
            w = idx[k]
            cw = colors[w]
            if cw < 0:
                continue
            e_vw = edge[k]
            joined = False
            for s in range(ptr[w], ptr[w + 1]):
                x = idx[s]
                if x != v and colors[x] == c:
                    # w already has a neighbour of v's color: w is the hub of that star
                    st = star[edge[s]]
                    hub[st] = w
                    star[e_vw] = st
                    joined = True
                    break
            if not joined:
                if fn_v[cw] == v and fn_w[cw] != w:
                    # v has two neighbours of color cw: v is the hub of their star
                    st = star[fn_e[cw]]
                    hub[st] = v
                    star[e_vw] = st
                else:
                    hub[n_stars] = -1
                    star[e_vw] = n_stars
                    n_stars += 1
    return colors
