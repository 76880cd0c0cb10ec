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

import numpy as np

from sparsediff._jit import kernel
from sparsediff.coloring.buckets import fill_buckets
from sparsediff.coloring.graphs import TwoHop, degrees
from sparsediff.coloring.greedy import dsatur

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
        return _stable_argsort(-deg)
    if order == "largest_last":
        # increasing degree: hubs (dense rows and columns of a bicoloring) are colored after
        # their neighbours, so they do not force one color per neighbour
        return _stable_argsort(deg)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if order == "dsatur":
        return dsatur(g, deg)[1]
    args = (n, g.a_ptr, g.a_idx, g.b_ptr, g.b_idx)
    buckets = int(deg.max(initial=0)) + 1  # every key stays within 0 … max degree
    zeros = np.zeros(n, dtype=np.int64)  # ties: the smallest index first
    if order == "smallest_last":
        return _bucket_order(*args, deg.copy(), False, -1, True, *_work(deg, zeros, buckets))
    if order == "incidence_degree":
        # ties: the largest degree first, then the smallest index, then the most recently touched
        return _bucket_order(*args, zeros.copy(), True, 1, False, *_work(zeros, deg, buckets))
    return _bucket_order(*args, deg.copy(), True, -1, False, *_work(deg, zeros, buckets))


def _work(key: np.ndarray, tie: np.ndarray, n_buckets: int) -> tuple[np.ndarray, ...]:
    """Work arrays of :func:`_bucket_order`: the filled bucket queue, ``taken``, ``mark``, the
    order."""
    n = key.size
    return (
        *fill_buckets(key, tie, n_buckets),
        np.zeros(n, dtype=np.bool_),
        np.full(n, -1, dtype=np.int64),
        np.empty(n, dtype=np.int64),
    )


def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` as int64; degrees that fit in int16 are sorted as
    int16, for which NumPy's stable sort is a radix sort (O(n): 2-D Bratu at n = 10⁶, about
    a tenth of the comparison sort's time)."""
    if keys.size and -(2**15) < keys.min() and keys.max() < 2**15:
        keys = keys.astype(np.int16)
    return np.argsort(keys, kind="stable").astype(np.int64)


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


@kernel
def _bucket_order(
    n,
    a_ptr,
    a_idx,
    b_ptr,
    b_idx,
    key,
    largest,
    delta,
    reverse,
    head,
    nxt,
    prv,
    taken,
    mark,
    order,
):
    """The three dynamic orders, one kernel: repeatedly take a vertex whose ``key`` is the
    largest (``largest``) or the smallest among the vertices not yet taken, and add ``delta`` to
    the key of each of its untaken neighbours; ``order[step]`` is the vertex taken at ``step``
    (``reverse``: ``order[n - 1 - step]``). Keys stay below the number of buckets; the queue
    ``head``, ``nxt``, ``prv`` comes filled (:func:`~sparsediff.coloring.buckets.fill_buckets`,
    which says how ties are broken). ``key`` is modified; the arrays after ``prv`` are work
    space (:func:`_work`). The queue moves are written out here, not called: a function called
    with different argument types is compiled once for each.

    - smallest-last: key = degree, smallest, delta -1, reversed;
    - dynamic largest-first: key = degree, largest, delta -1;
    - incidence degree: key = 0 (taken neighbours), largest, delta +1.
    """
    cur = 0
    if largest:
        for v in range(n):
            cur = max(cur, key[v])
    for step in range(n):
        if largest:
            while head[cur] < 0:
                cur -= 1
        else:
            while head[cur] < 0:
                cur += 1
        v = head[cur]
        # take v out of its bucket: it is the head
        q = nxt[v]
        head[cur] = q
        if q >= 0:
            prv[q] = -1
        nxt[v] = -1
        taken[v] = True
        order[n - 1 - step if reverse else step] = v
        mark[v] = v
        for k in range(a_ptr[v], a_ptr[v + 1]):
            i = a_idx[k]
            for t in range(b_ptr[i], b_ptr[i + 1]):
                u = b_idx[t]
                if mark[u] != v:
                    mark[u] = v
                    if not taken[u]:
                        # move u from bucket key[u] to key[u] + delta, on top
                        p = prv[u]
                        q = nxt[u]
                        if p >= 0:
                            nxt[p] = q
                        else:
                            head[key[u]] = q
                        if q >= 0:
                            prv[q] = p
                        key[u] += delta
                        h = head[key[u]]
                        nxt[u] = h
                        prv[u] = -1
                        if h >= 0:
                            prv[h] = u
                        head[key[u]] = u
                        if largest and key[u] > cur:
                            cur = key[u]
        if not largest:
            cur = max(cur - 1, 0)
    return order
