"""Reductions, scans along an axis and sorts: an output element joins a group of inputs."""

from __future__ import annotations

import numpy as np
from pytensor.tensor.elemwise import CAReduce
from pytensor.tensor.extra_ops import CumOp
from pytensor.tensor.sort import SortOp

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import RuleContext

#: Largest selection a prefix (cumulative) rule may build before it refuses.
MAX_SELECTION_NNZ = 200_000_000


def _normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int | np.integer):
        axis = (axis,)
    return tuple(sorted(int(a) % ndim for a in axis)) if ndim else ()


def careduce_rule(op: CAReduce, node, input_patterns, ctx: RuleContext):
    """Sum, Prod, Max, Min...: each output joins its reduced slice (max/min over-approximate:
    which element is the maximum depends on the values, the pattern may not)."""
    x = node.inputs[0]
    in_shape = ctx.shape(x)
    axes = _normalize_axes(op.axis, len(in_shape))
    kept_shape = [in_shape[d] for d in range(len(in_shape)) if d not in axes]
    out_size = int(np.prod(kept_shape, dtype=np.int64))
    out_index = np.arange(out_size, dtype=np.int64).reshape(
        [1 if d in axes else in_shape[d] for d in range(len(in_shape))]
    )
    rows = np.broadcast_to(out_index, in_shape).ravel()
    in_size = rows.size
    selection = pat.selection_matrix(rows, np.arange(in_size), (out_size, in_size))
    return [pat.combine_rows(selection, input_patterns[0])]


def _along_axis_groups(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Flat indices arranged as (number of lines, line length) for lines along ``axis``."""
    index = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    return np.moveaxis(index, axis, -1).reshape(-1, shape[axis] if shape else 1)


def _prefix_selection(lines: np.ndarray, size: int) -> pat.sp.csr_array:
    n_lines, length = lines.shape
    nnz = n_lines * length * (length + 1) // 2
    if nnz > MAX_SELECTION_NNZ:
        raise MemoryError(f"a cumulative op over lines of {length} elements needs {nnz:,} entries")
    i, j = np.tril_indices(length)
    rows = lines[:, i].ravel()
    cols = lines[:, j].ravel()
    return pat.selection_matrix(rows, cols, (size, size))


def cumop_rule(op: CumOp, node, input_patterns, ctx: RuleContext):
    """cumsum/cumprod: element k along the axis depends on elements 0..k."""
    x = node.inputs[0]
    shape = ctx.shape(x)
    if op.axis is None:
        shape, axis = (int(np.prod(shape, dtype=np.int64)),), 0
    else:
        axis = op.axis % len(shape)
    lines = _along_axis_groups(shape, axis)
    size = lines.size
    return [pat.combine_rows(_prefix_selection(lines, size), input_patterns[0])]


def sort_rule(op: SortOp, node, input_patterns, ctx: RuleContext):
    """Which element lands where depends on the values: each output depends on its line."""
    x, axis_var = node.inputs
    shape = ctx.shape(x)
    axis_value = ctx.value(axis_var)
    if axis_value is None or (axis_value.ndim == 0 and axis_value.dtype == object):
        shape, axis = (int(np.prod(shape, dtype=np.int64)),), 0
    else:
        axis = int(axis_value) % len(shape)
    lines = _along_axis_groups(shape, axis)
    _n_lines, length = lines.shape
    rows = np.repeat(lines, length, axis=1).ravel()
    cols = np.tile(lines, (1, length)).ravel()
    selection = pat.selection_matrix(rows, cols, (lines.size, lines.size))
    return [pat.combine_rows(selection, input_patterns[0])]
