"""Bucket queues for the dynamic vertex orders and DSATUR: vertices kept in buckets by a key.

Array-based doubly linked lists (``head[b]``, ``nxt[v]``, ``prv[v]``), LIFO inside a bucket, so
moving a vertex to another bucket is O(1) and a whole order costs one sweep over the
neighbourhoods. The queues are filled here in NumPy (two stable sorts, radix for small keys):
the kernels that use them write their queue moves out inline, so that a first run (no Numba
cache yet) compiles no kernel for the queue itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fill_buckets", "single_bucket"]


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")``; keys that fit in int16 are sorted as int16, for
    which NumPy's stable sort is a radix sort (O(n))."""
    if keys.size and -(2**15) < keys.min() and keys.max() < 2**15:
        keys = keys.astype(np.int16)
    return np.argsort(keys, kind="stable")


def fill_buckets(
    key: np.ndarray, tie: np.ndarray, n_buckets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(head, nxt, prv)`` of a queue holding vertex ``v`` in bucket ``key[v]`` (``0 ≤ key <
    n_buckets``).

    Vertices are pushed by increasing ``tie[v]``, then by decreasing index, and the head of a
    bucket is the last vertex pushed: ties go to the largest ``tie``, then to the smallest
    index; each vertex is followed by the one of its bucket pushed before it.
    """
    n = tie.size
    head = np.full(max(n_buckets, 1), -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    prv = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return head, nxt, prv
    pushed = (n - 1 - _stable_order(tie[::-1])).astype(np.int64)  # tie up, index down
    keys = key[pushed]
    seq = pushed[_stable_order(keys)]  # grouped by bucket, in push order within one
    kb = key[seq]
    same = kb[1:] == kb[:-1]  # seq[t] and seq[t + 1] share a bucket
    nxt[seq[1:][same]] = seq[:-1][same]
    prv[seq[:-1][same]] = seq[1:][same]
    last = np.append(~same, True)  # the last pushed of each bucket: its head
    head[kb[last]] = seq[last]
    return head, nxt, prv


def single_bucket(
    tie: np.ndarray, n_buckets: int | None = None, dtype=np.int64
) -> tuple[np.ndarray, ...]:
    """``(head, nxt, prv)`` of a queue holding every vertex in bucket 0, in the order
    :func:`fill_buckets` pushes them (``head`` has ``n_buckets`` buckets, ``max(n, 1)`` if not
    given), as ``dtype``: DSATUR starts this way. The same queue as ``fill_buckets(zeros, tie,
    n_buckets)`` from one sort: the list runs by decreasing ``tie``, then increasing index."""
    n = tie.size
    head = np.full(max(n if n_buckets is None else n_buckets, 1), -1, dtype=dtype)
    if n == 0:
        return head, np.zeros(0, dtype=dtype), np.zeros(0, dtype=dtype)
    seq = _stable_order(-tie).astype(dtype)
    nxt = np.empty(n, dtype=dtype)
    prv = np.empty(n, dtype=dtype)
    nxt[seq[:-1]] = seq[1:]
    nxt[seq[-1]] = -1
    prv[seq[1:]] = seq[:-1]
    prv[seq[0]] = -1
    head[0] = seq[0]
    return head, nxt, prv
