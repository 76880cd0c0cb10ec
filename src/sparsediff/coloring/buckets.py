"""Bucket queues for the dynamic vertex orders and DSATUR: vertices kept in buckets by a key.

Array-based doubly linked lists (``head[b]``, ``nxt[v]``, ``prv[v]``), LIFO inside a bucket, so
moving a vertex to another bucket is O(1) and a whole order costs one sweep over the
neighbourhoods.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["buckets_init", "new_buckets", "single_bucket", "unlink"]


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


def single_bucket(tie: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(head, nxt, prv)`` of a queue holding every vertex in bucket 0, in the order
    :func:`buckets_init` pushes them (built in NumPy: DSATUR starts this way, and needs no
    kernel compiled for it)."""
    n = tie.size
    rev = tie[::-1]
    if n and rev.max() < 2**15:
        rev = rev.astype(np.int16)  # radix sort
    perm = (n - 1 - np.argsort(rev, kind="stable")).astype(np.int64)  # tie up, index down
    # the head is the last one pushed; each vertex is followed by the one pushed before it
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    nxt[perm[1:]] = perm[:-1]
    prv[perm[:-1]] = perm[1:]
    head = np.full(max(n, 1), -1, dtype=np.int64)
    if n:
        head[0] = perm[-1]
    return head, nxt, prv


@numba.njit(cache=True)
def unlink(head, nxt, prv, key, v):
    """Take ``v`` out of its bucket ``key[v]``. Call it with the same argument types from every
    site (``v`` an int64): each combination is one more compilation on a first run."""
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
