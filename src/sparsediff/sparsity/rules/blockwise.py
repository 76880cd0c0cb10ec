"""Batched Ops (``Blockwise``): the core Op's rule per batch element, or its dense core block.

With at most :data:`MAX_LOOPED_BATCH` batch elements and a rule for the core Op, each batch
element is analysed on its own (exact); otherwise every core output depends on every core input
of the same batch element (batch elements never mix).
"""

from __future__ import annotations

import numpy as np
from pytensor.graph.basic import Constant
from pytensor.tensor.blockwise import Blockwise

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import RuleContext, find_rule
from sparsediff.sparsity.rules.convolution import blockwise_convolution_rule, is_convolution

__all__ = ["MAX_LOOPED_BATCH", "blockwise_rule"]

#: Largest number of batch elements for which a Blockwise Op is analysed element by element.
MAX_LOOPED_BATCH = 256


def _batch_reduce(p: pat.Pattern, n_batch: int, core_size: int) -> pat.Pattern:
    """Row b: the union of the rows of batch element b's core block."""
    rows = np.repeat(np.arange(n_batch, dtype=np.int64), core_size)
    selection = pat.selection_matrix(
        rows, np.arange(n_batch * core_size), (n_batch, n_batch * core_size)
    )
    return pat.combine_rows(selection, p)


def blockwise_rule(op: Blockwise, node, input_patterns, ctx: RuleContext):
    """Independent batch elements; within one, the core Op's rule if it has one (looped over
    a moderate batch), otherwise dense blocks where the core connects (exact for generic
    linear algebra such as solve, cholesky or det); convolutions have their own rule."""
    if is_convolution(op):
        return blockwise_convolution_rule(op, node, input_patterns, ctx)
    batch_ndim = op.batch_ndim(node)
    out_shapes = [ctx.shape(o) for o in node.outputs]
    batch_shape = out_shapes[0][:batch_ndim]
    n_batch = int(np.prod(batch_shape, dtype=np.int64))
    core_rule = find_rule(op.core_op)
    if core_rule is not None and n_batch <= MAX_LOOPED_BATCH:
        looped = _looped_blockwise(op, node, input_patterns, ctx, core_rule, batch_shape)
        if looped is not None:
            return looped
    try:
        connection = op.connection_pattern(node)
    except Exception:
        connection = [[True] * len(node.outputs) for _ in node.inputs]
    reduced = {}
    for i, (var, p) in enumerate(zip(node.inputs, input_patterns, strict=True)):
        if p is None:
            continue
        in_shape = ctx.shape(var)
        in_batch = in_shape[:batch_ndim]
        n_in_batch = int(np.prod(in_batch, dtype=np.int64))
        core = int(np.prod(in_shape[batch_ndim:], dtype=np.int64))
        per_batch = _batch_reduce(p, n_in_batch, core)
        index = np.arange(n_in_batch, dtype=np.int64).reshape(in_batch)
        reduced[i] = (per_batch, np.broadcast_to(index, batch_shape).ravel())
    outputs = []
    for j, out_shape in enumerate(out_shapes):
        core = int(np.prod(out_shape[batch_ndim:], dtype=np.int64))
        parts = [
            pat.gather_rows(per_batch, np.repeat(source, core))
            for i, (per_batch, source) in reduced.items()
            if connection[i][j]
        ]
        outputs.append(pat.union(parts))
    return outputs


def _looped_blockwise(op, node, input_patterns, ctx, core_rule, batch_shape):
    batch_ndim = len(batch_shape)
    core_inputs, sources, core_sizes = [], [], []
    for var in node.inputs:
        in_shape = ctx.shape(var)
        in_batch = in_shape[:batch_ndim]
        index = np.arange(int(np.prod(in_batch, dtype=np.int64)), dtype=np.int64).reshape(in_batch)
        sources.append(np.broadcast_to(index, batch_shape).ravel())
        core_sizes.append(int(np.prod(in_shape[batch_ndim:], dtype=np.int64)))
        core_inputs.append((var, in_shape[batch_ndim:]))
    per_output: list[list] = [[] for _ in node.outputs]
    for b in range(int(np.prod(batch_shape, dtype=np.int64))):
        variables, patterns = [], []
        for (var, core_shape), src, core, p in zip(
            core_inputs, sources, core_sizes, input_patterns, strict=True
        ):
            start = int(src[b]) * core
            if isinstance(var, Constant):
                data = np.asarray(var.data).reshape(-1, *core_shape)
                data = data[int(src[b]) if data.shape[0] > 1 else 0]
                variables.append(Constant(var.type.clone(shape=core_shape), data))
            else:
                variables.append(var.type.clone(shape=core_shape)())
            patterns.append(None if p is None else p[start : start + core])
        try:
            core_node = op.core_op.make_node(*variables)
        except Exception:
            return None
        outs = core_rule(op.core_op, core_node, patterns, ctx)
        for j, (o, p) in enumerate(zip(core_node.outputs, outs, strict=True)):
            per_output[j].append(p if p is not None else pat.empty(ctx.size(o), ctx.n_wrt))
    return [pat.stack(blocks, [b.shape[0] for b in blocks], ctx.n_wrt) for blocks in per_output]
