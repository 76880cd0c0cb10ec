"""Rules for Ops that only move or copy elements, found by running the Op on element indices.

Feeding each data input the numbers ``offset + arange(size)`` and running the Op's own
``perform`` tells, for every output element, which input element it is a copy of. That one
idea covers reshapes, transposes, broadcasts, basic and advanced indexing, concatenation,
splitting, flips, repeats and tiles, exactly and in O(size) NumPy work.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pytensor.graph.basic import Apply

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import NotConcrete, RuleContext

# float64 holds integers exactly up to 2**53, far beyond any pattern we can store.
_TRACE_DTYPE = "float64"


def run_on_indices(
    node: Apply, data_inputs: Sequence[int], ctx: RuleContext
) -> tuple[list[np.ndarray], list[int]]:
    """Run ``node.op`` with element indices in the data inputs and constants elsewhere.

    Returns, per output, the flat source index (into the data inputs laid end to end) of every
    output element, and the sizes of the data inputs.
    """
    sizes = [ctx.size(node.inputs[i]) for i in data_inputs]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    values: list = []
    inputs = []
    for i, var in enumerate(node.inputs):
        if i in data_inputs:
            k = data_inputs.index(i)
            shape = ctx.shape(var)
            values.append(
                (np.arange(sizes[k], dtype=np.int64) + offsets[k])
                .astype(_TRACE_DTYPE)
                .reshape(shape)
            )
            inputs.append(var.type.clone(dtype=_TRACE_DTYPE, shape=shape)())
        else:
            value = ctx.value(var)
            if value is None:
                raise NotConcrete(f"input {i} ({var}) of {node.op} is symbolic")
            values.append(value)
            inputs.append(var)
    try:
        traced = node.op.make_node(*inputs)
    except Exception as exc:  # an Op that refuses float64 data: use the node as it is
        if any(getattr(node.inputs[i], "dtype", None) != _TRACE_DTYPE for i in data_inputs):
            raise NotConcrete(f"{node.op} cannot be traced in {_TRACE_DTYPE}: {exc}") from exc
        traced = node
    storage = [[None] for _ in traced.outputs]
    traced.op.perform(traced, values, storage)
    for out, s in zip(node.outputs, storage, strict=True):
        # The concrete output shapes, which infer_shape cannot always fold to integers.
        ctx.shapes.setdefault(out, tuple(int(d) for d in np.shape(s[0])))
    return [np.asarray(s[0]).astype(np.int64).ravel() for s in storage], sizes


def copy_rule(data_inputs: Sequence[int] | None = None):
    """A rule for an Op whose outputs are copies of elements of ``data_inputs``.

    ``None`` means every input is data.
    """

    def rule(op, node: Apply, input_patterns, ctx: RuleContext):
        positions = list(range(len(node.inputs))) if data_inputs is None else list(data_inputs)
        sources, sizes = run_on_indices(node, positions, ctx)
        stacked = pat.stack([input_patterns[i] for i in positions], sizes, ctx.n_wrt)
        return [pat.gather_rows(stacked, src) for src in sources]

    return rule
