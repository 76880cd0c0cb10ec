"""What the rules of Ops with inner graphs share: stand-ins for inner inputs, concrete shapes,
and detection inside an inner graph (prepared by
:func:`sparsediff.sparsity.graph.concrete_inner_graph`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.utils import rewrite_graph
from pytensor.tensor.type import TensorType

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import NotConcrete, RuleContext

__all__ = ["concrete_shape", "inner_shape", "propagate_inner", "stand_in"]


def stand_in(var: Variable, shape: tuple[int, ...] | None, outer: Variable | None):
    """What replaces an inner input: the outer constant, or a fresh variable of concrete shape."""
    if outer is not None and isinstance(outer, Constant) and shape is not None:
        value = np.asarray(outer.data)
        if isinstance(var.type, TensorType) and value.shape == tuple(shape):
            return Constant(var.type.clone(shape=tuple(shape)), value.astype(var.type.dtype))
    if shape is not None and isinstance(var.type, TensorType):
        return var.type.clone(shape=tuple(shape))()
    return var.type()


def propagate_inner(
    fgraph: FunctionGraph,
    stand_ins: Sequence[Variable],
    patterns: Sequence[pat.Pattern | None],
    ctx: RuleContext,
) -> list[pat.Pattern | None]:
    seeds = {
        s: p
        for s, p in zip(stand_ins, patterns, strict=True)
        if p is not None and not isinstance(s, Constant)
    }
    if not seeds:
        return [None] * len(fgraph.outputs)
    result = ctx.propagate(fgraph, seeds, ctx.n_wrt, outputs_only=True)
    return [result.get(o) for o in fgraph.outputs]


def inner_shape(var: Variable, ctx: RuleContext) -> tuple[int, ...]:
    """The concrete shape of a variable of a concrete inner graph.

    ``ctx.shape`` first; when ``infer_shape`` cannot work on integers (an Op with an inner graph
    inside), the symbolic shape is folded to constants with the shape rewrites.
    """
    try:
        return ctx.shape(var)
    except NotConcrete:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folded = rewrite_graph(
            pt.as_tensor_variable(var.shape), include=("ShapeOpt", "canonicalize")
        )
    if not isinstance(folded, Constant):
        raise NotConcrete(f"the shape of {var} is not known at plan time")
    shape = tuple(int(s) for s in np.asarray(folded.data))
    ctx.shapes[var] = shape
    return shape


def concrete_shape(var: Variable, ctx: RuleContext) -> tuple[int, ...] | None:
    if not isinstance(var.type, TensorType):
        return None
    return ctx.shape(var)
