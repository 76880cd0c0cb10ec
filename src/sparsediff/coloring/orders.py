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

from sparsediff.coloring.buckets import buckets_init, new_buckets, unlink
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
        return _bucket_order(*args, deg.copy(), zeros, 1, False, -1, True, *_work(n, buckets, 1))
    if order == "incidence_degree":
        # ties: the largest degree first, then the smallest index, then the most recently touched
        work = _work(n, buckets, buckets)
        return _bucket_order(*args, zeros.copy(), deg, buckets, True, 1, False, *work)
    return _bucket_order(*args, deg.copy(), zeros, 1, True, -1, False, *_work(n, buckets, 1))


def _work(n: int, n_buckets: int, n_ties: int) -> tuple[np.ndarray, ...]:
    """Work arrays of :func:`_bucket_order`: the bucket queue's, ``taken``, ``mark``, the order."""
    return (
        *new_buckets(n, n_buckets, n_ties),
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


@numba.njit(cache=True)
def _bucket_order(
    n,
    a_ptr,
    a_idx,
    b_ptr,
    b_idx,
    key,
    tie,
    n_ties,
    largest,
    delta,
    reverse,
    head,
    nxt,
    prv,
    start,
    perm,
    taken,
    mark,
    order,
):
    """The three dynamic orders, one kernel: repeatedly take a vertex whose ``key`` is the
    largest (``largest``) or the smallest among the vertices not yet taken, and add ``delta`` to
    the key of each of its untaken neighbours; ``order[step]`` is the vertex taken at ``step``
    (``reverse``: ``order[n - 1 - step]``). Keys stay below the number of buckets; ``tie``
    (values below ``n_ties``) breaks ties (see :func:`buckets_init`). ``key`` is modified; the
    arrays after ``reverse`` are work space (:func:`_work`).

    - smallest-last: key = degree, smallest, delta -1, reversed;
    - dynamic largest-first: key = degree, largest, delta -1;
    - incidence degree: key = 0 (taken neighbours), largest, delta +1.
    """
    cur = 0
    if largest:
        for v in range(n):
            cur = max(cur, key[v])
    buckets_init(n, key, tie, n_ties, head, nxt, prv, start, perm)
    for step in range(n):
        if largest:
            while head[cur] < 0:
                cur -= 1
        else:
            while head[cur] < 0:
                cur += 1
        v = head[cur]
        unlink(head, nxt, prv, key, v)
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
                        unlink(head, nxt, prv, key, np.int64(u))
                        key[u] += delta
                        h = head[key[u]]  # push u onto its new bucket
                        nxt[u] = h
                        if h >= 0:
                            prv[h] = u
                        head[key[u]] = u
                        if largest and key[u] > cur:
                            cur = key[u]
        if not largest:
            cur = max(cur - 1, 0)
    return order
