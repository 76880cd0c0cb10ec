"""Convolutions: ``pt.signal.convolve1d`` and ``convolve2d`` (``Blockwise`` of ``Convolve1d`` /
``Convolve2d``).

``full[o] = Σ_{i + j = o} a[i] b[j]`` (per axis), and ``valid`` is ``full`` shifted by
``min(n, k) - 1`` per axis and cut to ``|n - k| + 1``; ``same`` is ``valid`` on an input that
PyTensor pads with zeros first (the zeros are found by :func:`_structure`). The output is
bilinear in the two operands: ``out[o]`` depends on ``a[i]`` exactly where ``b[o + shift - i]``
can be nonzero — everywhere in the window for a symbolic ``b``, only at its nonzeros for a
constant one — and symmetrically on ``b``. Batch axes are independent (broadcast like the
``Blockwise``); the whole batch is handled at once, in NumPy, with work proportional to the
pattern's size.
"""

from __future__ import annotations

import numpy as np
from pytensor.graph.basic import Constant
from pytensor.tensor.basic import Alloc, Join
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.signal.conv import Convolve1d, Convolve2d
from pytensor.tensor.subtensor import AdvancedIncSubtensor, AdvancedIncSubtensor1, IncSubtensor

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import NotConcrete, RuleContext
from sparsediff.sparsity.rules.indexing import written_positions

__all__ = ["blockwise_convolution_rule", "is_convolution"]

_CONVOLUTIONS = (Convolve1d, Convolve2d)
_INC_SUBTENSORS = (IncSubtensor, AdvancedIncSubtensor1, AdvancedIncSubtensor)


def is_convolution(op) -> bool:
    """Whether ``op`` is a (``Blockwise`` of a) PyTensor convolution this module handles."""
    core = op.core_op if isinstance(op, Blockwise) else op
    return isinstance(core, _CONVOLUTIONS)


def _full_mode(var, ctx: RuleContext) -> bool:
    value = ctx.value(var)
    if value is None and var.owner is not None and var.owner.inputs:
        value = ctx.value(var.owner.inputs[0])  # TensorFromScalar(constant)
    if value is None:
        raise NotConcrete("the convolution mode (full or valid) is symbolic")
    return bool(np.asarray(value))


def _structure(var, shape: tuple[int, ...], ctx: RuleContext) -> np.ndarray:
    """Where ``var`` can be nonzero, shape ``(*batch, *core)``: its values if constant; the
    zero blocks of a ``Join`` and zero ``Alloc``s too, and what ``set_subtensor`` /
    ``inc_subtensor`` write into them (``mode='same'`` pads with ``pt.pad``, i.e. writes the
    input into zeros, once per axis)."""
    if isinstance(var, Constant):
        return np.broadcast_to(np.asarray(var.data) != 0, shape)
    node = var.owner
    if node is not None and isinstance(node.op, _INC_SUBTENSORS):
        try:
            return np.broadcast_to(_written_structure(node, ctx), shape)
        except (NotConcrete, ValueError):
            pass
    if node is not None and isinstance(node.op, Alloc) and isinstance(node.inputs[0], Constant):
        if not np.any(node.inputs[0].data):
            return np.zeros(shape, dtype=bool)
    if node is not None and isinstance(node.op, Join) and isinstance(node.inputs[0], Constant):
        try:
            parts = [_structure(p, ctx.shape(p), ctx) for p in node.inputs[1:]]
            axis = int(node.inputs[0].data) % len(shape)
            return np.broadcast_to(np.concatenate(parts, axis=axis), shape)
        except (NotConcrete, ValueError):
            pass
    return np.ones(shape, dtype=bool)


def _written_structure(node, ctx: RuleContext) -> np.ndarray:
    """Where the output of an ``(Advanced)IncSubtensor`` node can be nonzero."""
    x, y = node.inputs[0], node.inputs[1]
    x_shape = ctx.shape(x)
    base = np.array(_structure(x, x_shape, ctx), dtype=bool).ravel()
    positions, sources = written_positions(node.op, node, ctx)
    written = np.asarray(_structure(y, ctx.shape(y), ctx)).ravel()[sources]
    if node.op.set_instead_of_inc:
        base[positions] = written  # repeated positions: the last write wins, as in NumPy
    else:
        np.logical_or.at(base, positions, written)
    return base.reshape(x_shape)


def _one_operand(
    a_shape, b_struct, batch_shape, out_core, shift, a_index_of_batch
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)``: output element ``rows[t]`` depends on operand-``a`` element
    ``cols[t]``, for every ``a`` position and every nonzero of ``b`` in its batch element."""
    d = len(out_core)
    a_core = a_shape[len(a_shape) - d :]
    n_batch = int(np.prod(batch_shape, dtype=np.int64))
    a_size = int(np.prod(a_core, dtype=np.int64))
    b_flat = b_struct.reshape(n_batch, -1)
    batch_ix, b_pos = np.nonzero(b_flat)
    j = np.unravel_index(b_pos, b_struct.shape[len(batch_shape) :])
    i = np.unravel_index(np.arange(a_size, dtype=np.int64), a_core)
    keep = np.ones((batch_ix.size, a_size), dtype=bool)
    o = []
    for axis in range(d):
        oa = i[axis][None, :] + j[axis][:, None] - shift[axis]
        keep &= (oa >= 0) & (oa < out_core[axis])
        o.append(oa)
    pair, a_pos = np.nonzero(keep)
    out_pos = np.ravel_multi_index(tuple(oa[pair, a_pos] for oa in o), out_core)
    out_size = int(np.prod(out_core, dtype=np.int64))
    rows = batch_ix[pair] * out_size + out_pos
    cols = a_index_of_batch[batch_ix[pair]] * a_size + a_pos
    return rows, cols


def blockwise_convolution_rule(op: Blockwise, node, input_patterns, ctx: RuleContext):
    """The exact pattern of a batched convolution; see the module docstring."""
    return _convolution(op.core_op.ndim, op.batch_ndim(node), node, input_patterns, ctx)


def convolution_rule(op, node, input_patterns, ctx: RuleContext):
    """The exact pattern of an unbatched convolution (the core Op used directly)."""
    return _convolution(op.ndim, 0, node, input_patterns, ctx)


def _convolution(d: int, batch_ndim: int, node, input_patterns, ctx: RuleContext):
    in1, in2, mode_var = node.inputs
    (out,) = node.outputs
    out_shape = ctx.shape(out)
    batch_shape, out_core = out_shape[:batch_ndim], out_shape[batch_ndim:]
    full = _full_mode(mode_var, ctx)
    shapes = [ctx.shape(in1), ctx.shape(in2)]
    n_core = [s[len(s) - d :] for s in shapes]
    shift = [0 if full else min(n, k) - 1 for n, k in zip(*n_core, strict=True)]
    out_size = int(np.prod(out_shape, dtype=np.int64))
    parts = []
    for a, b_var in enumerate([in2, in1]):  # operand a, the other one b
        p = input_patterns[a]
        if p is None:
            continue
        a_shape, b_shape = shapes[a], shapes[1 - a]
        a_batch = a_shape[: len(a_shape) - d]
        a_batch = (1,) * (batch_ndim - len(a_batch)) + tuple(a_batch)
        index = np.arange(int(np.prod(a_batch, dtype=np.int64)), dtype=np.int64)
        a_index = np.broadcast_to(index.reshape(a_batch), batch_shape).ravel()
        b_struct = _structure(b_var, tuple(b_shape), ctx)
        b_batch = b_shape[: len(b_shape) - d]
        b_struct = b_struct.reshape((1,) * (batch_ndim - len(b_batch)) + tuple(b_shape))
        b_struct = np.broadcast_to(b_struct, (*batch_shape, *n_core[1 - a]))
        rows, cols = _one_operand(a_shape, b_struct, batch_shape, out_core, shift, a_index)
        selection = pat.selection_matrix(rows, cols, (out_size, p.shape[0]))
        parts.append(pat.combine_rows(selection, p))
    return [pat.union(parts)]
