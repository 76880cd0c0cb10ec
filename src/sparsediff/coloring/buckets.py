"""Bucket queues for the dynamic vertex orders and DSATUR: vertices kept in buckets by a key.

Array-based doubly linked lists (``head[b]``, ``nxt[v]``, ``prv[v]``), LIFO inside a bucket, so
moving a vertex to another bucket is O(1) and a whole order costs one sweep over the
neighbourhoods.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["bucket_push", "bucket_remove", "buckets_init", "new_buckets"]


def new_buckets(n: int, n_buckets: int, n_ties: int) -> tuple[np.ndarray, ...]:
    """Arrays for :func:`buckets_init`: ``head``, ``nxt``, ``prv``, and two scratch arrays
    (allocated in NumPy: a constructor inside a kernel is one more Numba compilation)."""
    return (
        np.full(n_buckets, -1, dtype=np.int64),
        np.full(n, -1, dtype=np.int64),
        np.full(n, -1, dtype=np.int64),
        np.zeros(n_ties + 1, dtype=np.int64),
        np.empty(n, dtype=np.int64),
    )


@numba.njit(cache=True)
def buckets_init(n, key, tie, n_ties, head, nxt, prv, start, perm):
    """Fill a bucket queue (arrays from :func:`new_buckets`): ``head[b]``, ``nxt[v]``,
    ``prv[v]``, vertex ``v`` in bucket ``key[v]``.

    Within a bucket the head is the last vertex pushed, and vertices are pushed by increasing
    ``tie[v]`` (values below ``n_ties``), then by decreasing index: ties go to the largest
    ``tie``, then to the smallest index. The push order is a counting sort (O(n + n_ties)):
    ``np.argsort`` inside a kernel cost seconds of compilation on a first run.
    """
    for v in range(n):
        start[tie[v] + 1] += 1
    for t in range(n_ties):
        start[t + 1] += start[t]
    for v in range(n - 1, -1, -1):
        perm[start[tie[v]]] = v
        start[tie[v]] += 1
    for t in range(n):
        v = perm[t]
        b = key[v]
        h = head[b]
        nxt[v] = h
        if h >= 0:
            prv[h] = v
        head[b] = v


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def bucket_push(head, nxt, prv, key, v):
    b = key[v]
    h = head[b]
    nxt[v] = h
    prv[v] = -1
    if h >= 0:
        prv[h] = v
    head[b] = v
