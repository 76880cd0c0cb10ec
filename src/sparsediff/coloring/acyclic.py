"""Acyclic coloring of a symmetric pattern, for Hessians recovered by substitution.

An acyclic coloring is a proper coloring in which every cycle uses at least three colors: every
two-colored subgraph is a forest. It needs fewer colors than a star coloring (a banded matrix
with half-bandwidth β: β + 1 instead of about 1.5 β), at the price of *indirect* recovery: in a
two-colored tree, a leaf ``u`` with parent ``v`` has ``H[u, v] = (H S)[u, c(v)]`` (``v`` is its
only neighbour of that color); removing the leaf and subtracting its entry from its parent's
sum makes the parent's other leaves readable, and so on (Coleman–Cai substitution).

The coloring kernel follows Gebremedhin, Tarafdar, Manne, Pothen, "New acyclic and star
coloring algorithms with application to computing Hessians" (SIAM J. Sci. Comput., 2007),
Algorithm 3.1: the two-colored trees built so far are kept as a disjoint-set forest over the
edges, so that a color which would close a two-colored cycle is found by looking at distance
≤ 2 only (the vertex would reach one tree through two different neighbours).

:func:`substitution_order` computes, once, the order of the substitution: a leaf-peeling of all
two-colored forests at once, O(nnz) plus a sort of each adjacency row by neighbour color. The
same peeling is the validity check: it completes exactly when no two-colored cycle exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparsediff._jit import kernel
from sparsediff.coloring.graphs import Structure
from sparsediff.coloring.star import edge_ids

__all__ = ["Peeling", "acyclic_coloring", "substitution_order"]


def acyclic_coloring(adj: Structure, order: np.ndarray) -> np.ndarray:
    """Greedy acyclic coloring of the adjacency ``adj`` (symmetric, no diagonal) in ``order``."""
    n = adj.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    edge = edge_ids(n, adj.indptr, adj.indices)
    return _acyclic(n, adj.indptr, adj.indices, edge, np.asarray(order, dtype=np.int64))


@dataclass(frozen=True)
class Peeling:
    """The substitution order of an acyclic coloring, one step per off-diagonal pair.

    Step ``t`` recovers ``H[u, v] = H[v, u]`` (``u = leaf[t]``, ``v = parent[t]``) as
    ``B[c(v), u] - acc[read[t]]`` and adds it to ``acc[write[t]]``; ``acc`` has one slot per
    (vertex, neighbour color), numbered from 0. ``level[t]``: the steps of one level depend only
    on steps of lower levels, so they may run in any order (e.g. sorted by memory position).
    ``complete`` is false when a two-colored cycle stopped the peeling (then ``cycle_vertex``
    lies on one).
    """

    leaf: np.ndarray
    parent: np.ndarray
    read: np.ndarray
    write: np.ndarray
    level: np.ndarray
    n_slots: int
    complete: bool
    cycle_vertex: int


def substitution_order(adj: Structure, colors: np.ndarray) -> Peeling:
    """Peel the two-colored forests of ``colors`` on ``adj`` (symmetric, no diagonal)."""
    n = adj.shape[0]
    colors = np.asarray(colors, dtype=np.int64)
    if adj.nnz == 0:
        z = np.zeros(0, dtype=np.int64)
        return Peeling(z, z, z, z, z, 0, True, -1)
    leaf, parent, read, write, level, n_slots, done, stuck = _peel(
        n, adj.indptr, adj.indices, colors, int(colors.max()) + 1
    )
    complete = 2 * done == adj.nnz
    return Peeling(
        leaf[:done],
        parent[:done],
        read[:done],
        write[:done],
        level[:done],
        int(n_slots),
        complete,
        int(stuck),
    )


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@kernel
def _find(parent, e):
    root = e
    while parent[root] != root:
        root = parent[root]
    while parent[e] != root:  # path compression
        nxt = parent[e]
        parent[e] = root
        e = nxt
    return root


@kernel
def _union(parent, rank, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra == rb:
        return
    if rank[ra] < rank[rb]:
        ra, rb = rb, ra
    parent[rb] = ra
    if rank[ra] == rank[rb]:
        rank[ra] += 1


@kernel
def _acyclic(n, ptr, idx, edge, order):
    colors = np.full(n, -1, dtype=np.int64)
    forbidden = np.full(n + 1, -1, dtype=np.int64)
    # per color: the first neighbour of the current vertex seen with it, and that edge
    fn_v = np.full(n + 1, -1, dtype=np.int64)
    fn_e = np.full(n + 1, -1, dtype=np.int64)
    # per tree (root edge id): the vertex visiting it and the neighbour it came through
    visit_v = np.full(idx.size, -1, dtype=np.int64)
    visit_w = np.full(idx.size, -1, dtype=np.int64)
    parent = np.arange(idx.size)
    rank = np.zeros(idx.size, dtype=np.int64)
    for t in range(order.size):
        v = order[t]
        for k in range(ptr[v], ptr[v + 1]):
            cw = colors[idx[k]]
            if cw >= 0:
                forbidden[cw] = v
        for k in range(ptr[v], ptr[v + 1]):
            w = idx[k]
            if colors[w] < 0:
                continue
            for s in range(ptr[w], ptr[w + 1]):
                cx = colors[idx[s]]
                if cx < 0 or forbidden[cx] == v:
                    continue
                # v would reach the tree of edge w-x through w; twice through different
                # neighbours would close a two-colored cycle if v took color cx
                r = _find(parent, edge[s])
                if visit_v[r] != v:
                    visit_v[r] = v
                    visit_w[r] = w
                elif visit_w[r] != w:
                    forbidden[cx] = v
        c = 0
        while forbidden[c] == v:
            c += 1
        colors[v] = c
        # grow the two-colored stars around v
        for k in range(ptr[v], ptr[v + 1]):
            cw = colors[idx[k]]
            if cw < 0:
                continue
            if fn_v[cw] != v:
                fn_v[cw] = v
                fn_e[cw] = edge[k]
            else:
                _union(parent, rank, edge[k], fn_e[cw])
        # merge the trees that v joins
        for k in range(ptr[v], ptr[v + 1]):
            w = idx[k]
            if colors[w] < 0:
                continue
            for s in range(ptr[w], ptr[w + 1]):
                x = idx[s]
                if x != v and colors[x] == c:
                    _union(parent, rank, edge[k], edge[s])
    return colors


@kernel
def _peel(n, ptr, idx, colors, k):
    nnz = idx.size
    # each row's entries sorted by neighbour color: a slot (u, color) is a contiguous run
    perm = np.empty(nnz, dtype=np.int64)
    for u in range(n):
        lo = ptr[u]
        hi = ptr[u + 1]
        keys = np.empty(hi - lo, dtype=np.int64)
        for q in range(lo, hi):
            keys[q - lo] = colors[idx[q]]
        o = np.argsort(keys, kind="mergesort")
        for q in range(hi - lo):
            perm[lo + q] = lo + o[q]
    where = np.empty(nnz, dtype=np.int64)  # position in perm of entry q
    for p in range(nnz):
        where[perm[p]] = p
    slot_of = np.empty(nnz, dtype=np.int64)  # by perm position
    slot_start = np.empty(nnz + 1, dtype=np.int64)
    n_slots = 0
    for u in range(n):
        prev = -1
        for p in range(ptr[u], ptr[u + 1]):
            c = colors[idx[perm[p]]]
            if c != prev:
                slot_start[n_slots] = p
                n_slots += 1
                prev = c
            slot_of[p] = n_slots - 1
    slot_start[n_slots] = nnz
    # twin entry (v, u) of every entry (u, v): see star.edge_ids
    cursor = ptr[:n].copy()
    twin = np.empty(nnz, dtype=np.int64)
    for i in range(n):
        for q in range(ptr[i], ptr[i + 1]):
            j = idx[q]
            twin[q] = cursor[j]
            cursor[j] += 1
    deg = np.empty(n_slots, dtype=np.int64)
    for s in range(n_slots):
        deg[s] = slot_start[s + 1] - slot_start[s]
    done = np.zeros(nnz, dtype=np.bool_)
    stack = np.empty(n_slots, dtype=np.int64)
    top = 0
    for s in range(n_slots):
        if deg[s] == 1:
            stack[top] = s
            top += 1
    half = nnz // 2
    leaf = np.empty(half, dtype=np.int64)
    parent = np.empty(half, dtype=np.int64)
    read = np.empty(half, dtype=np.int64)
    write = np.empty(half, dtype=np.int64)
    level = np.empty(half, dtype=np.int64)
    slot_level = np.zeros(n_slots, dtype=np.int64)  # 1 + the highest level written into it
    steps = 0
    while top > 0:
        top -= 1
        s = stack[top]
        if deg[s] != 1:  # 0: its last edge was taken from the other end
            continue
        p = slot_start[s]
        while done[perm[p]]:
            p += 1
        q = perm[p]
        u = idx[twin[q]]
        v = idx[q]
        tq = twin[q]
        done[q] = True
        done[tq] = True
        s2 = slot_of[where[tq]]
        leaf[steps] = u
        parent[steps] = v
        read[steps] = s
        write[steps] = s2
        level[steps] = slot_level[s]
        slot_level[s2] = max(slot_level[s2], slot_level[s] + 1)
        steps += 1
        deg[s] -= 1
        deg[s2] -= 1
        if deg[s2] == 1:
            stack[top] = s2
            top += 1
    stuck = -1
    if 2 * steps != nnz:
        for u in range(n):
            for q in range(ptr[u], ptr[u + 1]):
                if not done[q]:
                    stuck = u
                    break
            if stuck >= 0:
                break
    return leaf, parent, read, write, level, n_slots, steps, stuck
