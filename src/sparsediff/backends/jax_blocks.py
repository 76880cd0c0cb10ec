"""JAX conversion of a constant-index scatter as row blocks of elementwise selects.

sparsediff's decompression writes the varying values of a Jacobian into its constant rest with
one scatter, ``data[idx] = y`` (``idx`` a constant). XLA's CPU backend runs any 1-D scatter or
gather as a scalar loop with index arithmetic per value; a 2-D elementwise loop, by contrast, it
fuses with the formulas that compute ``y`` and vectorizes. When the data viewed as ``(R, w)``
rows (``w`` dividing its length) receives ``y`` in a few *runs*, pieces of ``y`` that put one
value in each of consecutive rows (a stencil's diagonal: one per CSR row, at a slot that may
vary by row), the scatter is the same as::

    block[r, k] = where(k == off_q[r - r0_q], y_q[r - r0_q], data[r, k])   for each run q

on the rows of each run, the runs' rows assembled into ``(R, w)`` and reshaped to the data
(a bitcast). ``off_q`` is a small constant (one byte per row); ``y_q`` is a static slice of
``y``, and where ``y`` is a ``Join`` (the lifted decompression's pieces) the runs are cut at its
operands' boundaries, so that XLA drops the concatenation and computes each piece in the
select's loop. For the 2-D Brusselator (6 entries in every row, two of them varying) this
replaces a concatenation fusion and a scatter. Patterns whose rows have different lengths
(fd1d's and Bratu's boundary rows) have no such ``w`` with few runs and keep the scatter.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["MAX_RUNS", "MAX_WIDTH", "MIN_ROW_COVER", "block_form", "row_runs"]

#: Widest row tried.
MAX_WIDTH = 64
#: Most runs (each one select per entry of its rows).
MAX_RUNS = 8
#: Use the block form only when the runs' rows are at least this share of all rows (a sparse
#: set is faster as XLA's scatter, which writes its few values in place).
MIN_ROW_COVER = 0.5


def row_runs(idx: np.ndarray, w: int, cuts: np.ndarray) -> np.ndarray:
    """Start positions (in ``idx``) of the runs: maximal pieces whose rows ``idx // w`` rise by
    one at each step, also cut at ``cuts``. The last entry is ``idx.size``."""
    rows = idx // w
    brk = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.union1d(np.union1d(brk, cuts), [0])
    return np.append(starts[starts < idx.size], idx.size)


def _choose(idx: np.ndarray, n: int, cuts: np.ndarray):
    """``(w, run starts)`` with the fewest runs (at most :data:`MAX_RUNS`), or None."""
    best = None
    for w in range(1, min(MAX_WIDTH, n) + 1):
        if n % w or np.count_nonzero(np.diff(idx // w) != 1) >= MAX_RUNS:
            continue
        starts = row_runs(idx, w, cuts)
        runs = starts.size - 1
        if runs <= MAX_RUNS and (best is None or runs < best[1].size - 1):
            best = (w, starts)
    return best


def block_form(op, node):
    """The row-block JAX function for ``node`` (an ``AdvancedIncSubtensor1``), or None."""
    import jax.numpy as jnp
    from jax import lax
    from pytensor.graph.basic import Constant
    from pytensor.tensor.basic import Join

    from sparsediff.backends.jax_scatter import constant_indices

    found = constant_indices(node)
    if found is None:
        return None
    n, idx = found
    if idx.size < 2 or np.unique(idx).size != idx.size:
        return None
    y_var = node.inputs[1]
    cuts = np.zeros(0, dtype=np.int64)
    join = y_var.owner
    if join is not None and isinstance(join.op, Join) and isinstance(join.inputs[0], Constant):
        sizes = [i.type.shape[0] for i in join.inputs[1:]]
        if all(s is not None for s in sizes):
            cuts = np.cumsum(sizes)[:-1]
    chosen = _choose(idx, n, cuts)
    if chosen is None:
        return None
    w, starts = chosen
    R = n // w
    if np.unique(idx // w).size < MIN_ROW_COVER * R:
        return None
    runs = []  # (first row, row count, start in y, offsets)
    for a, b in itertools.pairwise(starts):
        r0 = int(idx[a] // w)
        off = (idx[a:b] % w).astype(np.int8)
        runs.append((r0, int(b - a), int(a), off))
    setting = bool(op.set_instead_of_inc)
    # row segments: the rows between consecutive run boundaries, each with its active runs
    bounds = sorted({0, R} | {r0 for r0, *_ in runs} | {r0 + L for r0, L, *_ in runs})
    segments = []
    for a, b in itertools.pairwise(bounds):
        active = [q for q in runs if q[0] <= a and b <= q[0] + q[1]]
        segments.append((a, b, active))
    itype = np.int8

    def place(base, y, a, b, active):
        k = lax.broadcasted_iota(itype, (b - a, w), 1)
        out = base
        for r0, _length, s, off in active:
            v = lax.slice(y, (s + a - r0,), (s + b - r0,))[:, None].astype(base.dtype)
            hit = k == off[a - r0 : b - r0][:, None]
            out = jnp.where(hit, v, out) if setting else jnp.where(hit, out + v, out)
        return out

    def blocks(x, y, *_constant_index):
        x2 = x.reshape(R, w)
        parts = [place(x2[a:b], y, a, b, active) for a, b, active in segments]
        out = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=0)
        return out.reshape(n)

    return blocks
