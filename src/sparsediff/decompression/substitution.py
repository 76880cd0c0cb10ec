"""Decompression by substitution: a Hessian from an *acyclic* coloring's compressed matrix.

With an acyclic coloring, an entry is not always alone in its row of ``B = H S``: in each
two-colored tree, ``H[u, v]`` for a leaf ``u`` is ``B[c(v), u]`` minus the entries of ``u``'s
already recovered tree neighbours of color ``c(v)``. The order of the steps (a leaf-peeling of
all the trees, :func:`sparsediff.coloring.acyclic.substitution_order`) and every index are
computed once, at plan time, in O(nnz); per call the recovery is one sequential pass over the
nnz/2 off-diagonal pairs plus the diagonal:

    for each step t:  value = b[src[t]] - acc[read[t]];  acc[write[t]] += value
                      data[out_a[t]] = data[out_b[t]] = value

A path in a two-colored tree can be O(n) long, so this is a loop, not a (dense) linear map.
It is the Op :class:`Substitute`: ``perform`` (C and Python backends) and the Numba backend run
the same Numba kernel; the JAX backend runs ``lax.fori_loop`` over the steps (sequential, so
slower than a gather: use star coloring with JAX when speed matters). The Op has no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op

from sparsediff.coloring.acyclic import substitution_order
from sparsediff.coloring.graphs import as_structure, symmetric_adjacency
from sparsediff.coloring.validity import ColoringError, as_colors
from sparsediff.decompression.positions import Layout

__all__ = ["Schedule", "Substitute", "substitute", "substitution_schedule"]

#: Slot 0 always holds 0 (read by the diagonal steps), slot 1 is written and never read.
_ZERO_SLOT, _TRASH_SLOT, _FIRST_SLOT = 0, 1, 2


@dataclass(frozen=True)
class Schedule:
    """Plan-time arrays of the substitution (one entry per step, int64)."""

    src: np.ndarray  #: position of the step's compressed value in ``B.ravel()``
    read: np.ndarray  #: accumulator slot subtracted from it
    write: np.ndarray  #: accumulator slot it is added to
    out_a: np.ndarray  #: storage index of ``H[u, v]`` in the result
    out_b: np.ndarray  #: storage index of ``H[v, u]`` (the same for the diagonal)
    n_slots: int
    nnz: int

    @property
    def n_steps(self) -> int:
        return int(self.src.size)


def substitution_schedule(pattern, lay: Layout, colors: np.ndarray) -> Schedule:
    """The substitution steps recovering every stored entry of ``lay`` (a symmetric pattern,
    ``pattern`` its structure) from ``B`` of shape ``(n_colors, n)`` (``B[c, i] = (H S)[i, c]``).

    Raises :class:`ColoringError` when ``colors`` is not an acyclic coloring of the pattern.
    """
    n = lay.shape[0]
    colors = as_colors(colors, n, "acyclic")
    adj = symmetric_adjacency(as_structure(pattern))
    same = adj.indices[colors[adj.indices] == np.repeat(colors, adj.row_lengths())]
    if same.size:
        v = int(same[0])
        raise ColoringError(
            f"not an acyclic coloring: vertex {v} has a neighbour of its own color {colors[v]}"
        )
    peel = substitution_order(adj, colors)
    if not peel.complete:
        raise ColoringError(
            f"not an acyclic coloring: vertex {peel.cycle_vertex} lies on a cycle with only two "
            "colors, so its entries cannot be recovered by substitution (use a star coloring or "
            "sd.color(P, kind='acyclic'))"
        )
    rows, cols = lay.rows, lay.cols
    diag = np.flatnonzero(rows == cols)
    # storage index of each (u, v) and (v, u) of the steps, by a search among the sorted keys
    keys = rows * n + cols
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    # level by level (a level only needs lower ones), each in memory order: the per-call pass
    # then reads B and writes the result almost sequentially
    by_level = np.lexsort((colors[peel.parent] * n + peel.leaf, peel.level))
    u, v = peel.leaf[by_level], peel.parent[by_level]
    out_a = order[np.searchsorted(sorted_keys, u * n + v)]
    out_b = order[np.searchsorted(sorted_keys, v * n + u)]
    d = rows[diag]
    src = np.concatenate([colors[v] * n + u, colors[d] * n + d])
    # diagonal: H[i, i] = B[c(i), i] (no neighbour shares i's color)
    read = np.concatenate(
        [peel.read[by_level] + _FIRST_SLOT, np.full(diag.size, _ZERO_SLOT, dtype=np.int64)]
    )
    write = np.concatenate(
        [peel.write[by_level] + _FIRST_SLOT, np.full(diag.size, _TRASH_SLOT, dtype=np.int64)]
    )
    return Schedule(
        src=src.astype(np.int64),
        read=read.astype(np.int64),
        write=write.astype(np.int64),
        out_a=np.concatenate([out_a, diag]).astype(np.int64),
        out_b=np.concatenate([out_b, diag]).astype(np.int64),
        n_slots=peel.n_slots + _FIRST_SLOT,
        nnz=lay.nnz,
    )


@numba.njit(cache=True)
def substitute_kernel(b, src, read, write, out_a, out_b, n_slots, nnz):
    """The per-call substitution (see the module docstring)."""
    acc = np.zeros(n_slots, dtype=b.dtype)
    data = np.zeros(nnz, dtype=b.dtype)
    for t in range(src.size):
        value = b[src[t]] - acc[read[t]]
        acc[write[t]] += value
        data[out_a[t]] = value
        data[out_b[t]] = value
    return data


class Substitute(Op):
    """``data = substitute(b, src, read, write, out_a, out_b)``: the nonzeros of a Hessian
    recovered by substitution from the flattened compressed matrix ``b`` (see the module
    docstring); the index arrays are plan-time constants."""

    __props__ = ("n_slots", "nnz")

    def __init__(self, n_slots: int, nnz: int):
        self.n_slots = int(n_slots)
        self.nnz = int(nnz)

    def make_node(self, b, src, read, write, out_a, out_b):
        b = pt.as_tensor_variable(b)
        if b.ndim != 1:
            raise TypeError(f"Substitute needs the flattened compressed matrix, got {b.type}")
        idx = [pt.as_tensor_variable(a) for a in (src, read, write, out_a, out_b)]
        for a in idx:
            if a.ndim != 1 or not a.dtype.startswith("int"):
                raise TypeError(f"Substitute index arrays must be 1-D integers, got {a.type}")
        out = pt.tensor(dtype=b.dtype, shape=(self.nnz,))
        return Apply(self, [b, *idx], [out])

    def perform(self, node, inputs, outputs):
        b, src, read, write, out_a, out_b = inputs
        outputs[0][0] = substitute_kernel(
            np.ascontiguousarray(b), src, read, write, out_a, out_b, self.n_slots, self.nnz
        )

    def infer_shape(self, fgraph, node, shapes):
        return [(self.nnz,)]

    def pullback(self, inputs, outputs, cotangents):
        raise NotImplementedError(
            "sparsediff's acyclic (substitution) Hessian has no gradient; build the Hessian with "
            "kind='star' (a gather, differentiable) to differentiate through it"
        )

    def pushforward(self, inputs, outputs, tangents):
        return self.pullback(inputs, outputs, tangents)


def substitute(b: Variable, schedule: Schedule) -> Variable:
    """The Hessian's nonzeros, in storage order, from ``b = B.ravel()``."""
    op = Substitute(schedule.n_slots, schedule.nnz)
    return op(
        b,
        pt.constant(schedule.src),
        pt.constant(schedule.read),
        pt.constant(schedule.write),
        pt.constant(schedule.out_a),
        pt.constant(schedule.out_b),
    )


def register_numba_substitute() -> None:
    """Compile ``Substitute`` natively on the Numba backend (a kernel call, not object mode)."""
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    @register_funcify_default_op_cache_key(Substitute)
    def numba_funcify_Substitute(op, node=None, **kwargs):
        n_slots, nnz = op.n_slots, op.nnz

        @numba.njit
        def substitute_numba(b, src, read, write, out_a, out_b):
            return substitute_kernel(b, src, read, write, out_a, out_b, n_slots, nnz)

        return substitute_numba


def jax_funcify_substitute(op, node=None, **kwargs):
    """JAX conversion: ``lax.fori_loop`` over the steps (registered by sparsediff.backends.jax)."""
    import jax.numpy as jnp
    from jax import lax

    n_slots, nnz = op.n_slots, op.nnz

    def substitute_jax(b, src, read, write, out_a, out_b):
        def body(t, state):
            acc, data = state
            value = b[src[t]] - acc[read[t]]
            acc = acc.at[write[t]].add(value)
            data = data.at[out_a[t]].set(value).at[out_b[t]].set(value)
            return acc, data

        init = (jnp.zeros(n_slots, dtype=b.dtype), jnp.zeros(nnz, dtype=b.dtype))
        return lax.fori_loop(0, src.shape[0], body, init)[1]

    return substitute_jax
