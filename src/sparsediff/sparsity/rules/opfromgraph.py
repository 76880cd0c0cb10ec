"""``OpFromGraph``: override-aware.

The inner graph is copied with the concrete shapes (and constant values) of the outer inputs and
detection recurses into it. When the Op overrides its gradient (``pullback=`` or a subclass
``pullback`` method), the pattern is read off the override instead, because that is what
``pytensor.grad`` differentiates with: the override's input cotangents are a linear map of the
output cotangents, whose Jacobian structure, transposed, is the pattern of the Op.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence

from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.null_type import NullType
from pytensor.tensor.type import TensorType, continuous_dtypes

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.graph import concrete_inner_graph
from sparsediff.sparsity.propagate import jacobian_sparsity
from sparsediff.sparsity.registry import NotConcrete, RuleContext
from sparsediff.sparsity.rules.inner import concrete_shape, inner_shape, propagate_inner, stand_in

__all__ = ["has_pullback_override", "ofg_override_pattern", "ofg_rule"]

#: OpFromGraph instances whose override is being analysed (guards self-referencing overrides).
_IN_OVERRIDE: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "sparsediff_ofg_in_override", default=frozenset()
)


def has_pullback_override(op: OpFromGraph) -> bool:
    """Whether ``pytensor.grad`` uses something else than the inner graph's own gradient."""
    return op.pullback_overrides is not None or type(op).pullback is not OpFromGraph.pullback


def _ofg_stand_ins(op: OpFromGraph, node, ctx: RuleContext) -> list[Variable]:
    return [
        stand_in(inner, concrete_shape(outer, ctx), outer)
        for inner, outer in zip(op.inner_inputs, node.inputs, strict=True)
    ]


def _record_shapes(outputs: Sequence[Variable], fgraph: FunctionGraph, ctx: RuleContext) -> None:
    """Outer output shapes from the concrete inner graph (``infer_shape`` of Ops with inner
    graphs wants symbolic shapes, not the integers the rules have)."""
    inner_ctx = RuleContext(n_wrt=ctx.n_wrt)
    for out, inner in zip(outputs, fgraph.outputs, strict=True):
        if isinstance(out.type, TensorType) and out not in ctx.shapes:
            try:
                ctx.shapes[out] = inner_shape(inner, inner_ctx)
            except NotConcrete:
                pass


def ofg_override_pattern(op: OpFromGraph, node, input_patterns, ctx: RuleContext):
    """The pattern ``pytensor.grad`` sees: the transposed structure of the override's pullback.

    The override is applied to stand-ins of the inputs, outputs and output cotangents (all of
    concrete shape). Input cotangent ``i`` is linear in the output cotangents; the Jacobian
    pattern of that map with respect to cotangent ``j`` is the transpose of block ``(j, i)``
    of the Op's Jacobian.
    """
    inputs = _ofg_stand_ins(op, node, ctx)
    outputs = [stand_in(o, concrete_shape(o, ctx), None) for o in node.outputs]
    differentiable = [
        isinstance(o.type, TensorType) and o.type.dtype in continuous_dtypes for o in node.outputs
    ]
    cotangents = [
        o.type() if d else DisconnectedType()()
        for o, d in zip(outputs, differentiable, strict=True)
    ]
    grads = op.pullback(inputs, outputs, cotangents)
    connected = [g for g, d in zip(cotangents, differentiable, strict=True) if d]
    parts: list[list[pat.Pattern]] = [[] for _ in connected]
    for i, (grad, p) in enumerate(zip(grads, input_patterns, strict=True)):
        if p is None or isinstance(grad.type, DisconnectedType):
            continue
        if isinstance(grad.type, NullType):
            raise NotImplementedError(f"the gradient override of {op} is undefined for input {i}")
        blocks = jacobian_sparsity(grad, connected)
        for j, block in enumerate(blocks):
            if block.nnz:
                parts[j].append(pat.combine_rows(block.T.tocsr(), p))
    by_output = iter(pat.union(ps) for ps in parts)
    return [next(by_output) if d else None for d in differentiable]


def ofg_rule(op: OpFromGraph, node, input_patterns, ctx: RuleContext):
    """Override-aware: what ``pytensor.grad`` differentiates with decides the pattern; without
    an override, detection recurses into the inner graph (concrete shapes and constants)."""
    stand_ins = _ofg_stand_ins(op, node, ctx)
    fgraph = concrete_inner_graph(op.inner_inputs, op.inner_outputs, stand_ins)
    _record_shapes(node.outputs, fgraph, ctx)
    active = _IN_OVERRIDE.get()
    if has_pullback_override(op) and op not in active:
        token = _IN_OVERRIDE.set(active | {op})
        try:
            return ofg_override_pattern(op, node, input_patterns, ctx)
        except NotConcrete:
            raise
        except Exception as exc:
            ctx.warn(
                f"could not derive the sparsity pattern of {op} from its gradient override "
                f"({type(exc).__name__}: {exc}); using the pattern of its inner graph, which "
                "may differ from what pytensor.grad computes"
            )
        finally:
            _IN_OVERRIDE.reset(token)
    return propagate_inner(fgraph, stand_ins, input_patterns, ctx)
