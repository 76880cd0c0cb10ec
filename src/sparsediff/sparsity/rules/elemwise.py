"""Elemwise: each output element depends on the broadcast input elements its scalar Op uses.

Derivative-aware: a scalar Op whose derivative is zero everywhere it exists (comparisons,
rounding, ``sign``, integer division) contributes nothing, ``switch`` does not depend on its
condition, ``second``/``fill`` only on the filled value. Constant-aware: a constant factor of
a product that is zero, or a constant ``switch`` condition, removes the elements it zeroes.
"""

from __future__ import annotations

import numpy as np
import pytensor.scalar as ps
from pytensor.scalar.basic import Composite
from pytensor.tensor.elemwise import Elemwise

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import RuleContext

#: Scalar Ops whose derivative with respect to every input is zero wherever it is defined.
ZERO_DERIVATIVE = (
    ps.Floor,
    ps.Ceil,
    ps.Trunc,
    ps.RoundHalfToEven,
    ps.RoundHalfAwayFromZero,
    ps.Sign,
    ps.IntDiv,
    ps.LogicalComparison,
    ps.FixedLogicalComparison,
    ps.UnaryBitOp,
    ps.BinaryBitOp,
)

_DISCRETE = set(ps.discrete_dtypes) | {"bool"}


def scalar_dependencies(scalar_op: ps.ScalarOp, n_inputs: int) -> list[frozenset[int]]:
    """For each output of a scalar Op, the inputs its derivative can flow to."""
    if isinstance(scalar_op, Composite):
        return _composite_dependencies(scalar_op)
    n_outputs = scalar_op.nout
    if isinstance(scalar_op, ZERO_DERIVATIVE):
        deps = frozenset()
    elif isinstance(scalar_op, ps.Switch):
        deps = frozenset({1, 2})
    elif isinstance(scalar_op, ps.Second):
        deps = frozenset({1})
    else:
        deps = frozenset(range(n_inputs))
    return [deps] * n_outputs


def _composite_dependencies(op: Composite) -> list[frozenset[int]]:
    deps = {var: frozenset({i}) for i, var in enumerate(op.fgraph.inputs)}
    for node in op.fgraph.toposort():
        per_output = scalar_dependencies(node.op, len(node.inputs))
        for out, used in zip(node.outputs, per_output, strict=True):
            if out.type.dtype in _DISCRETE:
                deps[out] = frozenset()
                continue
            deps[out] = frozenset().union(*(deps.get(node.inputs[i], frozenset()) for i in used))
    return [deps.get(out, frozenset()) for out in op.fgraph.outputs]


def broadcast_sources(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray | None:
    """Flat input index of each output element under broadcasting (None: same shape)."""
    if tuple(in_shape) == tuple(out_shape):
        return None
    size = int(np.prod(in_shape, dtype=np.int64))
    index = np.arange(size, dtype=np.int64).reshape(in_shape)
    return np.broadcast_to(index, out_shape).ravel()


def broadcast_pattern(p: pat.Pattern, in_shape, out_shape) -> pat.Pattern:
    sources = broadcast_sources(in_shape, out_shape)
    return p if sources is None else pat.gather_rows(p, sources)


def _input_masks(scalar_op, node, ctx: RuleContext, out_shape) -> list[np.ndarray | None]:
    """Where input i can influence the output, from constant inputs (None: everywhere)."""
    masks: list[np.ndarray | None] = [None] * len(node.inputs)
    if isinstance(scalar_op, ps.Mul):
        zero = None
        for var in node.inputs:
            value = ctx.value(var)
            if value is not None and not np.all(value):
                nonzero = np.broadcast_to(value != 0, out_shape)
                zero = nonzero if zero is None else zero & nonzero
        if zero is not None:
            masks = [zero] * len(node.inputs)
    elif isinstance(scalar_op, ps.Switch):
        cond = ctx.value(node.inputs[0])
        if cond is not None:
            cond = np.broadcast_to(cond.astype(bool), out_shape)
            masks[1], masks[2] = cond, ~cond
    return masks


def elemwise_rule(op: Elemwise, node, input_patterns, ctx: RuleContext):
    input_patterns = list(input_patterns)
    out_shape = ctx.shape(node.outputs[0])
    deps = scalar_dependencies(op.scalar_op, len(node.inputs))
    masks = _input_masks(op.scalar_op, node, ctx, out_shape)
    broadcast_cache: dict[int, pat.Pattern] = {}
    outputs = []
    for used in deps:
        parts = []
        for i in sorted(used):
            p = input_patterns[i]
            if p is None:
                continue
            if isinstance(p, pat.Deferred) and (
                masks[i] is not None or ctx.shape(node.inputs[i]) != out_shape
            ):
                p = input_patterns[i] = p.merge()  # rows gathered or masked: merged first
            if i not in broadcast_cache:
                broadcast_cache[i] = broadcast_pattern(p, ctx.shape(node.inputs[i]), out_shape)
            part = broadcast_cache[i]
            if masks[i] is not None:
                part = pat.mask_rows(part, masks[i])
            parts.append(part)
        outputs.append(pat.deferred_union(parts) if ctx.defer_unions else pat.union(parts))
    return outputs
