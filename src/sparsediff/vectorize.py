"""Vectorization rules that PyTensor 3.0.7 lacks or applies too narrowly.

``vectorize_graph`` wraps an Op without a ``_vectorize_node`` rule in a ``Blockwise``; the C and
Python backends run a ``Blockwise`` as a Python loop over its batch, i.e. one iteration per color.
The compressed graphs of :mod:`sparsediff.compressed` batch every pushforward / pullback over the
colors, so each such Op would cost a per-color loop. The rules below vectorize them natively:

* ``Split`` along a constant axis with unbatched split sizes: split the batched input along the
  shifted axis (the pullback of ``concatenate`` produces it);
* ``Join`` along a constant axis whose inputs are batched unevenly (some inputs constant,
  unbatched): broadcast the batch axes first, then join along the shifted axis (PyTensor's own
  rule only handles evenly batched inputs).

Importing this module registers them.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.graph.basic import Constant
from pytensor.graph.replace import _vectorize_node
from pytensor.tensor.basic import Join, Split
from pytensor.tensor.basic import vectorize_join as _pytensor_vectorize_join
from pytensor.tensor.blockwise import vectorize_node_fallback

__all__ = ["vectorize_join", "vectorize_split"]


def _constant_axis(axis, ndim: int) -> int | None:
    if not (isinstance(axis, Constant) and axis.type.ndim == 0):
        return None
    value = int(axis.data)
    if not -ndim <= value < ndim:
        return None
    return value % ndim


@_vectorize_node.register(Split)
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


@_vectorize_node.register(Join)
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
