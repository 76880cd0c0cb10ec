"""Vertex orders for greedy coloring.

Greedy coloring is only as good as the order it visits vertices in: on the 5-point stencil the
natural order needs 7 colors where 5 suffice. Every order here works on a :class:`TwoHop` graph,
so the same code orders columns (distance-2, through rows), rows, and the vertices of a
symmetric adjacency graph (distance-1). Dynamic orders keep vertices in bucket queues indexed by
a degree (array-based doubly linked lists, LIFO inside a bucket), so each costs one sweep over
the neighbourhoods: O(Σ neighbour visits), never a Python loop per vertex.

``dsatur`` is not an order computed ahead of coloring but a coloring that picks its next vertex
as it goes; it lives in :mod:`sparsediff.coloring.greedy`, and :func:`vertex_order` returns the
sequence it visited.
"""

from __future__ import annotations

import numba
import numpy as np

from sparsediff.coloring.structure import TwoHop

__all__ = ["ORDERS", "degrees", "vertex_order"]

#: Every order :func:`sparsediff.color` accepts by name (besides ``"auto"``).
ORDERS: tuple[str, ...] = (
    "natural",
    "largest_first",
    "largest_last",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "dsatur",
    "random",
)


def degrees(g: TwoHop) -> np.ndarray:
    """Number of distinct neighbours of every vertex."""
    return _degrees(g.n, g.a_ptr, g.a_idx, g.b_ptr, g.b_idx)


def vertex_order(g: TwoHop, order: str, seed: int = 0, deg: np.ndarray | None = None) -> np.ndarray:
    """The visiting order ``order`` of the vertices of ``g`` (a permutation, int64).

    ``deg``: the degrees of ``g`` if already known (saves a sweep when trying several orders).
    """
    n = g.n
    if order == "natural":
        return np.arange(n, dtype=np.int64)
    if order == "random":
        return np.random.default_rng(seed).permutation(n).astype(np.int64)
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; expected one of {', '.join(ORDERS)} or 'auto'")
    if deg is None and order != "dsatur":
        deg = degrees(g)
    if order == "largest_first":
        return np.argsort(-deg, kind="stable").astype(np.int64)
    if order == "largest_last":
        # increasing degree: hubs (dense rows and columns of a bicoloring) are colored after
        # their neighbours, so they do not force one color per neighbour
        return np.argsort(deg, kind="stable").astype(np.int64)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    args = (n, g.a_ptr, g.a_idx, g.b_ptr, g.b_idx)
    if order == "smallest_last":
        return _smallest_last(*args, deg)
    if order == "incidence_degree":
        return _incidence_degree(*args, deg)
    if order == "dynamic_largest_first":
        return _dynamic_largest_first(*args, deg)
    from sparsediff.coloring.greedy import dsatur  # order == "dsatur"

    return dsatur(g, deg)[1]


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _degrees(n, a_ptr, a_idx, b_ptr, b_idx):
    deg = np.zeros(n, dtype=np.int64)
    mark = np.full(n, -1, dtype=np.int64)
    for v in range(n):
        mark[v] = v
        d = 0
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for t in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[t]
                if mark[u] != v:
                    mark[u] = v
                    d += 1
        deg[v] = d
    return deg


@numba.njit(cache=True)
def buckets_init(n, key, n_buckets, ascending_insert_key):
    """Bucket queue: ``head[b]``, ``nxt[v]``, ``prv[v]``; vertices pushed so that within a
    bucket the head is the last pushed. ``ascending_insert_key`` (per vertex) decides the push
    order: vertices are pushed by increasing value, so ties go to the largest value."""
    head = np.full(n_buckets, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    perm = np.argsort(ascending_insert_key, kind="mergesort")
    for t in range(n):
        v = perm[t]
        b = key[v]
        h = head[b]
        nxt[v] = h
        if h >= 0:
            prv[h] = v
        head[b] = v
    return head, nxt, prv


@numba.njit(cache=True, inline="always")
def bucket_remove(head, nxt, prv, key, v):
    p = prv[v]
    q = nxt[v]
    if p >= 0:
        nxt[p] = q
    else:
        head[key[v]] = q
    if q >= 0:
        prv[q] = p
    prv[v] = -1
    nxt[v] = -1


@numba.njit(cache=True, inline="always")
def bucket_push(head, nxt, prv, key, v):
    b = key[v]
    h = head[b]
    nxt[v] = h
    prv[v] = -1
    if h >= 0:
        prv[h] = v
    head[b] = v


@numba.njit(cache=True)
def _smallest_last(n, a_ptr, a_idx, b_ptr, b_idx, deg):
    """Repeatedly remove a vertex of smallest degree in what remains; color in reverse."""
    key = deg.copy()
    maxd = 0
    for v in range(n):
        maxd = max(maxd, key[v])
    # ties: the smallest index is removed first (pushed last)
    head, nxt, prv = buckets_init(n, key, maxd + 1, -np.arange(n))
    removed = np.zeros(n, dtype=np.bool_)
    mark = np.full(n, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    lo = 0
    for step in range(n):
        while head[lo] < 0:
            lo += 1
        v = head[lo]
        bucket_remove(head, nxt, prv, key, v)
        removed[v] = True
        order[n - 1 - step] = v
        mark[v] = v
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for t in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[t]
                if mark[u] != v:
                    mark[u] = v
                    if not removed[u]:
                        bucket_remove(head, nxt, prv, key, u)
                        key[u] -= 1
                        bucket_push(head, nxt, prv, key, u)
        lo = max(lo - 1, 0)
    return order


@numba.njit(cache=True)
def _incidence_degree(n, a_ptr, a_idx, b_ptr, b_idx, deg):
    """Repeatedly take the vertex with the most already-taken neighbours (ties: largest degree
    first, then the most recently touched)."""
    key = np.zeros(n, dtype=np.int64)
    maxd = 0
    for v in range(n):
        maxd = max(maxd, deg[v])
    head, nxt, prv = buckets_init(n, key, maxd + 1, deg * n - np.arange(n) + n)
    done = np.zeros(n, dtype=np.bool_)
    mark = np.full(n, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    hi = 0
    for step in range(n):
        while head[hi] < 0:
            hi -= 1
        v = head[hi]
        bucket_remove(head, nxt, prv, key, v)
        done[v] = True
        order[step] = v
        mark[v] = v
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for t in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[t]
                if mark[u] != v:
                    mark[u] = v
                    if not done[u]:
                        bucket_remove(head, nxt, prv, key, u)
                        key[u] += 1
                        bucket_push(head, nxt, prv, key, u)
                        if key[u] > hi:
                            hi = key[u]
    return order


@numba.njit(cache=True)
def _dynamic_largest_first(n, a_ptr, a_idx, b_ptr, b_idx, deg):
    """Repeatedly take the vertex with the largest degree among the vertices not yet taken."""
    key = deg.copy()
    maxd = 0
    for v in range(n):
        maxd = max(maxd, key[v])
    head, nxt, prv = buckets_init(n, key, maxd + 1, -np.arange(n))
    done = np.zeros(n, dtype=np.bool_)
    mark = np.full(n, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    hi = maxd
    for step in range(n):
        while head[hi] < 0:
            hi -= 1
        v = head[hi]
        bucket_remove(head, nxt, prv, key, v)
        done[v] = True
        order[step] = v
        mark[v] = v
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for t in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[t]
                if mark[u] != v:
                    mark[u] = v
                    if not done[u]:
                        bucket_remove(head, nxt, prv, key, u)
                        key[u] -= 1
                        bucket_push(head, nxt, prv, key, u)
    return order
