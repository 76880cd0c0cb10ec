"""Bucket queues for the dynamic vertex orders and DSATUR: vertices kept in buckets by a key.

Array-based doubly linked lists (``head[b]``, ``nxt[v]``, ``prv[v]``), LIFO inside a bucket, so
moving a vertex to another bucket is O(1) and a whole order costs one sweep over the
neighbourhoods.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["bucket_push", "bucket_remove", "buckets_init"]


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
