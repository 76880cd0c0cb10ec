"""Vectorization rules that PyTensor 3.0.7 lacks or applies too narrowly.

``vectorize_graph`` wraps an Op without a ``_vectorize_node`` rule in a ``Blockwise``; the C and
Python backends run a ``Blockwise`` as a Python loop over its batch, i.e. one iteration per color.
The compressed graphs of :mod:`sparsediff.compression.products` batch every pushforward /
pullback over the colors, so each such Op would cost a per-color loop. The rules below
vectorize them natively:

* ``Split`` along a constant axis with unbatched split sizes: split the batched input along the
  shifted axis (the pullback of ``concatenate`` produces it);
* ``Join`` along a constant axis whose inputs are batched unevenly (some inputs constant,
  unbatched): broadcast the batch axes first, then join along the shifted axis (PyTensor's own
  rule only handles evenly batched inputs);
* ``IncSubtensor`` / ``SetSubtensor`` with unbatched slice bounds: prepend full slices for
  the batch axes (PyTensor vectorizes ``Subtensor`` so, but not its increment; its
  ``Blockwise`` rewrite later broadcasts with symbolic shapes, slow to build on large graphs);
* ``IfElse`` with an unbatched condition: one ``IfElse`` of the batched branches (PyTensor
  cannot even run a ``Blockwise`` of this lazy Op);
* ``OpFromGraph`` (e.g. ``pt.pad`` and its gradient): inline the inner graph, vectorized, so
  that its Ops are batched natively instead of a ``Blockwise`` calling the whole inner function
  once per color.

* ``Scan``: one loop batched inside (:mod:`sparsediff.compression.vectorize_scan`).
* ``pytensor.sparse`` Ops (``ps.dot`` of a batched dense operand and a sparse constant, and
  every sparse Op left unbatched): :mod:`sparsediff.compression.vectorize_sparse`.

:data:`VECTORIZE_RULES` lists them; :mod:`sparsediff._register` registers them with PyTensor's
``_vectorize_node`` dispatch. :func:`core_shapes` is a scoped override used while
sparsediff vectorizes its own graphs:

* ``Shape`` of a batched variable gives its core shape, unbatched (every batch entry has the
  same core shape). PyTensor broadcasts the core shape over the batch, which batches every
  index computed from a shape (e.g. inside ``pt.pad``) and turns the Ops using those indices
  into ``Blockwise`` loops.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Constant
from pytensor.graph.replace import _vectorize_node, vectorize_graph
from pytensor.ifelse import IfElse
from pytensor.scan.op import Scan
from pytensor.tensor.basic import Join, Split
from pytensor.tensor.basic import vectorize_join as _pytensor_vectorize_join
from pytensor.tensor.blockwise import vectorize_node_fallback
from pytensor.tensor.subtensor import IncSubtensor

from sparsediff.compression.vectorize_scan import vectorize_scan
from sparsediff.compression.vectorize_sparse import SPARSE_VECTORIZE_RULES

__all__ = [
    "VECTORIZE_RULES",
    "core_shapes",
    "vectorize_ifelse",
    "vectorize_inc_subtensor",
    "vectorize_join",
    "vectorize_op_from_graph",
    "vectorize_split",
]


def _constant_axis(axis, ndim: int) -> int | None:
    if not (isinstance(axis, Constant) and axis.type.ndim == 0):
        return None
    value = int(axis.data)
    if not -ndim <= value < ndim:
        return None
    return value % ndim


def vectorize_split(op: Split, node, batch_x, batch_axis, batch_splits):
    x, axis, splits = node.inputs
    core_axis = _constant_axis(axis, x.type.ndim)
    batch_ndim = batch_x.type.ndim - x.type.ndim
    if (
        core_axis is not None
        and batch_axis is axis
        and batch_splits.type.ndim == splits.type.ndim
        and batch_ndim >= 0
    ):
        return op.make_node(batch_x, pt.constant(core_axis + batch_ndim), batch_splits)
    return vectorize_node_fallback(op, node, batch_x, batch_axis, batch_splits)


def _dim(var, axis: int):
    static = var.type.shape[axis]
    return static if static is not None else var.shape[axis]


def vectorize_join(op: Join, node, batch_axis, *batch_inputs):
    original_axis, *old_inputs = node.inputs
    out_ndim = node.outputs[0].type.ndim
    core_axis = _constant_axis(original_axis, out_ndim)
    batch_ndims = [b.type.ndim - o.type.ndim for b, o in zip(batch_inputs, old_inputs, strict=True)]
    if core_axis is None or batch_axis is not original_axis or len(set(batch_ndims)) == 1:
        return _pytensor_vectorize_join(op, node, batch_axis, *batch_inputs)
    batch_ndim = max(batch_ndims)
    # Bring every input to the same number of batch axes, then broadcast the batch axes.
    padded = [
        b.dimshuffle(*(["x"] * (batch_ndim - k)), *range(b.type.ndim))
        for b, k in zip(batch_inputs, batch_ndims, strict=True)
    ]
    batch_shape = []
    for axis in range(batch_ndim):
        dim = 1
        for p in padded:
            static = p.type.shape[axis]
            if static is not None and static != 1:
                dim = static
                break
            if static is None:
                dim = p.shape[axis]
        batch_shape.append(dim)
    broadcast = [
        pt.broadcast_to(p, (*batch_shape, *(_dim(p, i) for i in range(batch_ndim, p.type.ndim))))
        for p in padded
    ]
    return op.make_node(pt.constant(core_axis + batch_ndim), *broadcast)


def vectorize_op_from_graph(op: OpFromGraph, node, *batch_inputs):
    inner_inputs = op.inner_inputs
    if len(inner_inputs) != len(batch_inputs) or any(
        b.type.ndim < i.type.ndim for b, i in zip(batch_inputs, inner_inputs, strict=True)
    ):
        return vectorize_node_fallback(op, node, *batch_inputs)
    replace = dict(zip(inner_inputs, batch_inputs, strict=True))
    outs = vectorize_graph(list(op.inner_outputs), replace)
    return [
        out if out.type.ndim >= orig.type.ndim else out.astype(orig.dtype)
        for out, orig in zip(outs, node.outputs, strict=True)
    ]


def vectorize_inc_subtensor(op: IncSubtensor, node, batch_x, batch_y, *batch_idxs):
    x, y, *_ = node.inputs
    # slice bounds that picked up only broadcastable batch axes are still scalars
    batch_idxs = [
        b.squeeze() if b.type.ndim > 0 and all(s == 1 for s in b.type.shape) else b
        for b in batch_idxs
    ]
    kx = batch_x.type.ndim - x.type.ndim
    ky = batch_y.type.ndim - y.type.ndim
    if any(b.type.ndim > 0 for b in batch_idxs) or kx < 0 or ky < 0:
        return vectorize_node_fallback(op, node, batch_x, batch_y, *batch_idxs)
    k = max(kx, ky)
    # The result (and so x) carries the full batch shape: the broadcast of x's batch axes with
    # y's (right-aligned, as numpy broadcasts them).
    if kx < k:
        batch_x = batch_x.dimshuffle(*(["x"] * (k - kx)), *range(batch_x.type.ndim))
    batch_shape, grow = [], False
    for i in range(k):
        dim = batch_x.type.shape[i]
        j = i - (k - ky)
        other = batch_y.type.shape[j] if j >= 0 else 1
        if dim == 1 and other != 1:
            dim, grow = (other if other is not None else batch_y.shape[j]), True
        batch_shape.append(dim if dim is not None else batch_x.shape[i])
    if grow:
        core = [_dim(batch_x, i) for i in range(k, batch_x.type.ndim)]
        batch_x = pt.broadcast_to(batch_x, (*batch_shape, *core))
    # y broadcasts against the region x[idx] (right-aligned, as numpy does): with fewer core
    # axes than the region, its batch axes must be aligned with the region's batch axes, not
    # with its core axes. Give y all k batch axes and the region's core rank.
    region_ndim = x.type.ndim - sum(not isinstance(i, slice) for i in op.idx_list)
    missing_core = region_ndim - y.type.ndim
    if ky < k or missing_core > 0:
        batch_y = batch_y.dimshuffle(
            *(["x"] * (k - ky)),
            *range(ky),
            *(["x"] * max(missing_core, 0)),
            *range(ky, batch_y.type.ndim),
        )
    new_op = IncSubtensor(
        (slice(None),) * k + tuple(op.idx_list),
        inplace=False,
        set_instead_of_inc=op.set_instead_of_inc,
    )
    return new_op.make_node(batch_x, batch_y, *batch_idxs)


def _batch_to(var, core_ndim: int, like):
    """Give ``var`` (``core_ndim`` core axes) the batch axes of ``like``."""
    k_var = var.type.ndim - core_ndim
    k = like.type.ndim - core_ndim
    if k_var >= k:
        return var
    var = var.dimshuffle(*(["x"] * (k - k_var)), *range(var.type.ndim))
    batch = [_dim(like, i) for i in range(k)]
    core = [_dim(var, i) for i in range(k, var.type.ndim)]
    return pt.broadcast_to(var, (*batch, *core))


def vectorize_ifelse(op: IfElse, node, batch_cond, *batch_branches):
    cond, *branches = node.inputs
    if batch_cond.type.ndim != cond.type.ndim:
        return vectorize_node_fallback(op, node, batch_cond, *batch_branches)
    n = op.n_outs
    new_then, new_else = [], []
    for core, bt, be in zip(branches[:n], batch_branches[:n], batch_branches[n:], strict=True):
        core_ndim = core.type.ndim
        bt = _batch_to(bt, core_ndim, be)
        be = _batch_to(be, core_ndim, bt)
        new_then.append(bt)
        new_else.append(be)
    return IfElse(n, as_view=op.as_view, name=op.name).make_node(batch_cond, *new_then, *new_else)


def _vectorize_shape_core(op, node, batched_x):
    (old_x,) = node.inputs
    k = batched_x.type.ndim - old_x.type.ndim
    return [pt.shape(batched_x)[k:] if k > 0 else pt.shape(batched_x)]


@contextmanager
def core_shapes():
    """While active, ``vectorize_graph`` maps ``x.shape`` to the unbatched core shape."""
    from pytensor.tensor.shape import Shape

    previous = _vectorize_node.dispatch(Shape)
    _vectorize_node.register(Shape, _vectorize_shape_core)
    try:
        yield
    finally:
        _vectorize_node.register(Shape, previous)


#: The native vectorization rules, by Op class (registered by :mod:`sparsediff._register`).
VECTORIZE_RULES = {
    Split: vectorize_split,
    Join: vectorize_join,
    OpFromGraph: vectorize_op_from_graph,
    IncSubtensor: vectorize_inc_subtensor,
    IfElse: vectorize_ifelse,
    Scan: vectorize_scan,
    **SPARSE_VECTORIZE_RULES,
}
