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
the same Numba kernel; the JAX backend runs one vectorized step per *level* of the peel (a
``lax.fori_loop`` over levels, still slower than star coloring's single gather when the trees
have long paths: prefer star coloring with JAX when speed matters). The Op has no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op

from sparsediff._jit import kernel
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


@kernel
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


@kernel
def _run_starts(read, write, n_slots):
    """Cut the steps into runs that may execute at once: ``starts`` of the runs, then the end.

    A step's level is that of the slot it reads (1 + the highest level written into it, 0 if
    none); a run is a maximal stretch of consecutive steps of one level. Within a run no step
    reads a slot written earlier in the run (that read would have a higher level), so reading
    all, then writing all, is what the sequential loop computes.
    """
    slot_level = np.zeros(n_slots, dtype=np.int64)
    starts = np.empty(read.size + 1, dtype=np.int64)
    k = 0
    previous = -1
    for t in range(read.size):
        lev = slot_level[read[t]]
        if lev != previous:
            starts[k] = t
            k += 1
            previous = lev
        if slot_level[write[t]] < lev + 1:
            slot_level[write[t]] = lev + 1
    starts[k] = read.size
    return starts[: k + 1]


def _level_segments(level_starts: np.ndarray) -> list[tuple[int, int, int]]:
    """Group consecutive levels padded to the same power-of-two width: ``(first, stop, width)``.

    Widths fall roughly monotonically along the peel (many leaves first, long thin paths last),
    so there are O(log n) groups and the padding at most doubles the work.
    """
    widths = np.diff(level_starts)
    padded = np.left_shift(1, np.ceil(np.log2(np.maximum(widths, 1))).astype(np.int64))
    cuts = np.flatnonzero(np.diff(padded)) + 1
    bounds = np.concatenate([[0], cuts, [widths.size]])
    return [
        (int(bounds[i]), int(bounds[i + 1]), int(padded[bounds[i]])) for i in range(cuts.size + 1)
    ]


def jax_funcify_substitute(op, node=None, **kwargs):
    """JAX conversion (registered by sparsediff.backends.jax): one vectorized step per *level*.

    The steps of one level read only accumulator slots that lower levels wrote, so a level is a
    gather, a subtraction and a scatter-add; consecutive levels of the same padded width run
    in one ``lax.fori_loop`` (padding reads the zero slot and writes the trash slot). Each
    step's value lands in ``values`` (in step order); the result is one gather from it at the
    end. A step-by-step ``fori_loop`` would cost a loop iteration per nonzero (and XLA copied
    the carried arrays: quadratic). Needs constant index inputs (sparsediff's are).
    """
    import jax.numpy as jnp
    from jax import lax
    from pytensor.graph.basic import Constant

    n_slots, nnz = op.n_slots, op.nnz
    consts = node.inputs[1:] if node is not None else ()
    if len(consts) != 5 or not all(isinstance(c, Constant) for c in consts):
        raise NotImplementedError("JAX Substitute needs constant index arrays")
    src, read, write, out_a, out_b = (np.asarray(c.data, dtype=np.int64) for c in consts)
    n_steps = src.size
    level_starts = _run_starts(read, write, n_slots)
    # every storage position is written by one step: data = values[step_of]
    step_of = np.zeros(nnz, dtype=np.int64)
    step_of[out_a] = np.arange(n_steps)
    step_of[out_b] = np.arange(n_steps)
    idx_dtype = np.int32 if max(n_steps, n_slots, int(src.max(initial=0)) + 1) < 2**31 else np.int64
    groups = []
    for first, stop, width in _level_segments(level_starts):
        k = stop - first
        starts = level_starts[first:stop]
        lens = level_starts[first + 1 : stop + 1] - starts
        cols = np.arange(width)
        valid = cols[None, :] < lens[:, None]
        pos = np.where(valid, starts[:, None] + cols[None, :], 0)
        g_src = np.where(valid, src[pos], 0).astype(idx_dtype)
        g_read = np.where(valid, read[pos], _ZERO_SLOT).astype(idx_dtype)
        g_write = np.where(valid, write[pos], _TRASH_SLOT).astype(idx_dtype)
        groups.append((k, width, starts.astype(idx_dtype), g_src, g_read, g_write))
    pad = max((g[1] for g in groups), default=0)
    # Leaf peeling reads a slot only once all its writes are done (a vertex is peeled after its
    # children): then each value is b[src] - acc_final[read], and the loop carries only ``acc``.
    # Checked here, O(steps); otherwise the values are carried through the loop as well.
    t = np.arange(n_steps)
    last_write = np.full(n_slots, -1, dtype=np.int64)
    np.maximum.at(last_write, write, t)
    first_read = np.full(n_slots, n_steps, dtype=np.int64)
    np.minimum.at(first_read, read, t)
    written_before_read = bool(np.all((last_write < first_read)[_FIRST_SLOT:]))
    src_of = src[step_of].astype(idx_dtype)
    read_of = read[step_of].astype(idx_dtype)
    step_of = step_of.astype(idx_dtype)

    def substitute_jax(b, *_constant_indices):
        def level(i, state, starts, g_src, g_read, g_write):
            acc, values = state
            v = b.at[g_src[i]].get(mode="promise_in_bounds") - acc.at[g_read[i]].get(
                mode="promise_in_bounds"
            )
            acc = acc.at[g_write[i]].add(v, mode="promise_in_bounds")
            if values is not None:
                values = lax.dynamic_update_slice(values, v, (starts[i],))
            return acc, values

        acc = jnp.zeros(n_slots, dtype=b.dtype)
        values = None if written_before_read else jnp.zeros(n_steps + pad, dtype=b.dtype)
        state = (acc, values)
        for k, _width, *arrays in groups:
            starts, g_src, g_read, g_write = (jnp.asarray(a) for a in arrays)
            if k <= 2:  # short groups: unrolled
                for i in range(k):
                    state = level(i, state, starts, g_src, g_read, g_write)
            else:
                body = lambda i, st, a=(starts, g_src, g_read, g_write): level(i, st, *a)  # noqa: E731
                state = lax.fori_loop(0, k, body, state)
        acc, values = state
        if values is None:
            return b.at[src_of].get(mode="promise_in_bounds") - acc.at[read_of].get(
                mode="promise_in_bounds"
            )
        return values.at[step_of].get(mode="promise_in_bounds")

    return substitute_jax
