"""Forward-mode rules: sparsediff's own pushforward for Ops PyTensor 3.0.7 cannot push forward.

PyTensor computes a Jacobian-vector product either with the Ops' own ``pushforward`` methods
(few Ops have one) or by differentiating the pullback a second time. Both fail on ``Prod``:
it has no ``pushforward``, and its pullback uses ``ProdWithoutZeros``, whose own pullback is
``grad_not_implemented`` (a ``NullType``), so neither forward mode nor forward-over-reverse
Hessians of ``pt.prod`` build. This module gives such Ops a rule, registered on the Op class
like PyTensor's own dispatch tables::

    @register_forward_rule(MyOp)
    def _(op, inputs, outputs, tangents):   # tangents: one per input, DisconnectedType if none
        return [output_tangent, ...]        # one per output (DisconnectedType: none)

and a pushforward, :func:`pushforward`, that walks the graph node by node with the best route
each node has: a registered rule, else the Op's own ``pushforward``, else the double pullback
of *that node alone* (a fresh clone with its own inputs, so two inputs computed from one
another do not mix). :func:`forward_obstacle` runs the same per-node choice at plan time and
names the first node no route can push forward, so that a plan never chooses a mode it cannot
build.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import pytensor.tensor as pt
from pytensor.gradient import (
    DisconnectedType,
    NullTypeGradError,
    disconnected_type,
    grad,
    pullback,
)
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.null_type import NullType
from pytensor.graph.op import Op
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import toposort
from pytensor.tensor.math import Prod, ProdWithoutZeros
from pytensor.tensor.type import TensorType

__all__ = [
    "FORWARD_RULES",
    "ForwardRuleMissing",
    "find_forward_rule",
    "forward_obstacle",
    "pushforward",
    "register_forward_rule",
]

ForwardRule = Callable[[Op, Sequence[Variable], Sequence[Variable], Sequence[Variable]], list]


class ForwardRuleMissing(NotImplementedError):
    """No route pushes a tangent forward through ``op``: it has no ``pushforward``, no
    sparsediff rule, and its pullback cannot be differentiated again."""

    def __init__(self, op: Op, reason: str):
        self.op = op
        self.reason = reason
        super().__init__(
            f"{op} has no forward rule ({reason}); register one with "
            "sparsediff.compression.forward_rules.register_forward_rule, or use mode='reverse'"
        )


@functools.singledispatch
def _registry(op: Op, inputs, outputs, tangents):
    raise NotImplementedError


def register_forward_rule(op_class: type[Op]) -> Callable[[ForwardRule], ForwardRule]:
    """Register ``rule`` as the pushforward of ``op_class`` and its subclasses (decorator).

    A registered rule wins over the Op's own ``pushforward``: register one for an Op whose
    pushforward is missing or wrong.
    """
    if not (isinstance(op_class, type) and issubclass(op_class, Op)):
        raise TypeError(f"register_forward_rule expects an Op class, got {op_class!r}")

    def decorator(rule: ForwardRule) -> ForwardRule:
        _registry.register(op_class)(rule)
        return rule

    return decorator


def find_forward_rule(op: Op) -> ForwardRule | None:
    """The rule registered for ``op``'s class (or a base class), or ``None``."""
    rule = _registry.dispatch(type(op))
    return None if rule is _registry.dispatch(object) else rule


def has_forward_rule(outputs: Sequence[Variable]) -> bool:
    """Whether some node of the graph of ``outputs`` has a registered rule."""
    return any(find_forward_rule(node.op) is not None for node in toposort(list(outputs)))


# --------------------------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------------------------


def _reduced_axes(op, ndim: int) -> list[int]:
    return list(range(ndim)) if op.axis is None else [a % max(ndim, 1) for a in op.axis]


def _prod(op: Prod, inputs, outputs, tangents):
    """``d prod(x) = Σ_axis (∂prod/∂x) ẋ``, with ``∂prod/∂x`` from ``Prod``'s own pullback at a
    unit cotangent: exact with zeros in ``x`` (one zero: only its own partial survives)."""
    (x,), (y,), (t,) = inputs, outputs, tangents
    if isinstance(t.type, DisconnectedType) or not _is_float(y):
        return [disconnected_type()]
    (partial,) = op.pullback([x], [y], [pt.ones_like(y)])
    axes = _reduced_axes(op, x.ndim)
    out = (partial * t).sum(axis=axes) if axes else partial * t
    return [out.astype(y.dtype)]


def _prod_without_zeros(op: ProdWithoutZeros, inputs, outputs, tangents):
    """The product of the nonzero entries: ``∂/∂x_i = z / x_i`` where ``x_i ≠ 0``, and ``0``
    where ``x_i = 0`` (there the function jumps; it is not differentiable). ``Prod``'s gradient
    contains this Op, so forward-over-reverse Hessians of ``pt.prod`` need this rule."""
    (x,), (z,), (t,) = inputs, outputs, tangents
    if isinstance(t.type, DisconnectedType) or not _is_float(z):
        return [disconnected_type()]
    axes = _reduced_axes(op, x.ndim)
    zb = pt.expand_dims(z, axes) if axes else z
    nonzero = pt.neq(x, 0)
    safe = pt.switch(nonzero, x, pt.ones_like(x))
    partial = pt.switch(nonzero, zb / safe, pt.zeros_like(x))
    out = (partial * t).sum(axis=axes) if axes else partial * t
    return [out.astype(z.dtype)]


#: sparsediff's own forward rules, by Op class (registered by :mod:`sparsediff._register`):
#: PyTensor 3.0.7 has no pushforward for ``Prod``, nor one for ``ProdWithoutZeros`` (in
#: ``Prod``'s gradient, so forward-over-reverse Hessians of ``pt.prod`` need it too).
FORWARD_RULES = {Prod: _prod, ProdWithoutZeros: _prod_without_zeros}


# --------------------------------------------------------------------------------------------
# Node-by-node pushforward
# --------------------------------------------------------------------------------------------


def _is_float(var: Variable) -> bool:
    return isinstance(var.type, TensorType) and var.type.dtype.startswith(("float", "complex"))


def _connected(t) -> bool:
    return t is not None and not isinstance(t.type, DisconnectedType)


def _node_double_pullback(node: Apply, tangents: Sequence[Variable]) -> list[Variable]:
    """``J_node · t`` by differentiating the node's own pullback with respect to its
    cotangents, on a clone whose inputs are fresh roots (so that ``grad`` sees this node only).
    """
    fresh = [i if isinstance(i, Constant) else i.type() for i in node.inputs]
    clone = node.op.make_node(*fresh)
    outs = [o for o in clone.outputs if _is_float(o)]
    wrt = [f for f, t in zip(fresh, tangents, strict=True) if _connected(t)]
    ts = [t for t in tangents if _connected(t)]
    if not outs or not wrt:
        return [disconnected_type() for _ in node.outputs]
    cots = [pt.zeros_like(o) for o in outs]
    vjps = pullback(outs, wrt, cots, disconnected_inputs="ignore", return_disconnected="zero")
    for v in vjps:
        if isinstance(v.type, NullType):
            raise ForwardRuleMissing(node.op, f"its pullback is not differentiable: {v.type}")
    inner = pt.add(*[(v * t).sum() for v, t in zip(vjps, ts, strict=True)])
    try:
        jvps = grad(inner, cots, disconnected_inputs="ignore", return_disconnected="disconnected")
    except NullTypeGradError as err:
        raise ForwardRuleMissing(node.op, f"its pullback is not differentiable: {err}") from err
    for j in jvps:
        if isinstance(j.type, NullType):
            raise ForwardRuleMissing(node.op, f"its pullback is not differentiable: {j.type}")
    by_output = dict(zip(outs, jvps, strict=True))
    replace = {f: i for f, i in zip(fresh, node.inputs, strict=True) if f is not i}
    result = []
    for o in clone.outputs:
        j = by_output.get(o)
        if j is None or isinstance(j.type, DisconnectedType):
            result.append(disconnected_type())
        else:
            result.append(graph_replace(j, replace, strict=False))
    return result


def _pullback_overridden_only(op: Op) -> bool:
    """An ``OpFromGraph`` whose pullback is overridden but not its pushforward: its own
    ``pushforward`` differentiates the inner graph and may disagree with the override (which
    detection and reverse mode follow), so its tangent comes from the override's pullback."""
    return (
        getattr(op, "pullback_overrides", None) is not None
        and getattr(op, "pushforward_overrides", None) is None
    )


def node_pushforward(
    node: Apply, tangents: Sequence[Variable], connected: Sequence[bool] | None = None
) -> list[Variable]:
    """The output tangents of one node: a registered rule, the Op's own ``pushforward``, or
    the node's double pullback, in that order. Raises :class:`ForwardRuleMissing`.

    ``connected`` marks the inputs that depend on ``wrt`` (the others get zero tangents, which
    the double pullback skips altogether)."""
    if connected is not None:
        pulled = [t if c else disconnected_type() for t, c in zip(tangents, connected, strict=True)]
    else:
        pulled = tangents
    rule = find_forward_rule(node.op)
    if rule is not None:
        return list(rule(node.op, node.inputs, node.outputs, tangents))
    if _pullback_overridden_only(node.op):
        return _node_double_pullback(node, pulled)
    try:
        out = list(node.op.pushforward(node.inputs, node.outputs, tangents))
        if not any(isinstance(o.type, NullType) for o in out if o is not None):
            return [disconnected_type() if o is None else o for o in out]
    except Exception:  # no pushforward (NotImplementedError), or one that cannot build here
        pass
    return _node_double_pullback(node, pulled)


def _input_tangent(var: Variable, tangents: dict) -> Variable:
    t = tangents.get(var)
    if t is not None:
        return t
    if _is_float(var):
        return pt.zeros_like(var)
    return disconnected_type()


def pushforward(
    outputs: Sequence[Variable], wrt: Sequence[Variable], tangents: Sequence[Variable]
) -> list[Variable]:
    """``J · t`` for each of ``outputs``, node by node (see :func:`node_pushforward`).

    Nodes that do not depend on ``wrt`` are not visited; an output that does not depend on
    ``wrt`` gets a zero tangent.
    """
    known: dict[Variable, Variable] = {w: t for w, t in zip(wrt, tangents, strict=True)}
    for node in toposort(list(outputs), blockers=list(wrt)):
        if not any(i in known for i in node.inputs):
            continue
        local = [_input_tangent(i, known) for i in node.inputs]
        outs = node_pushforward(node, local, [i in known for i in node.inputs])
        for o, t in zip(node.outputs, outs, strict=True):
            if _is_float(o) and _connected(t):
                known[o] = pt.as_tensor_variable(t).astype(o.dtype)
    return [known[o] if o in known else pt.zeros_like(o) for o in outputs]


# --------------------------------------------------------------------------------------------
# Plan time: can forward (and reverse) mode be built?
# --------------------------------------------------------------------------------------------


def _dependent_nodes(outputs: Sequence[Variable], wrt: Sequence[Variable]):
    """Nodes of the graph of ``outputs`` with an input that depends on ``wrt``, and for each
    the mask of such inputs."""
    depends = set(wrt)
    for node in toposort(list(outputs), blockers=list(wrt)):
        mask = tuple(i in depends and _is_float(i) for i in node.inputs)
        if any(mask):
            depends.update(node.outputs)
            yield node, mask


def _probe_key(node: Apply, mask) -> tuple | None:
    try:
        key = (node.op, tuple(i.type for i in node.inputs), mask)
        hash(key)
    except TypeError:
        return None
    return key


_FORWARD_CACHE: dict[tuple, str | None] = {}
_REVERSE_CACHE: dict[tuple, str | None] = {}


def _forward_reason(node: Apply, mask) -> str | None:
    if find_forward_rule(node.op) is not None:
        return None
    key = _probe_key(node, mask)
    if key is not None and key in _FORWARD_CACHE:
        return _FORWARD_CACHE[key]
    fresh = [i if isinstance(i, Constant) else i.type() for i in node.inputs]
    try:
        clone = node.op.make_node(*fresh)
        tangents = [
            f.type() if m else (pt.zeros_like(f) if _is_float(f) else disconnected_type())
            for f, m in zip(fresh, mask, strict=True)
        ]
        node_pushforward(clone, tangents, mask)
        reason = None
    except ForwardRuleMissing as err:
        reason = err.reason
    except Exception as err:  # anything else that stops the graph from building
        reason = f"{type(err).__name__}: {err}"
    if key is not None:
        _FORWARD_CACHE[key] = reason
    return reason


def _reverse_reason(node: Apply, mask) -> str | None:
    key = _probe_key(node, mask)
    if key is not None and key in _REVERSE_CACHE:
        return _REVERSE_CACHE[key]
    fresh = [i if isinstance(i, Constant) else i.type() for i in node.inputs]
    reason = None
    try:
        clone = node.op.make_node(*fresh)
        outs = [o for o in clone.outputs if _is_float(o)]
        wrt = [f for f, m in zip(fresh, mask, strict=True) if m]
        if outs and wrt:
            cots = [o.type() for o in outs]
            for v in pullback(outs, wrt, cots, disconnected_inputs="ignore"):
                if isinstance(v.type, NullType):
                    reason = f"its pullback is not implemented: {v.type}"
                    break
    except Exception as err:
        reason = f"{type(err).__name__}: {err}"
    if key is not None:
        _REVERSE_CACHE[key] = reason
    return reason


def forward_obstacle(outputs: Sequence[Variable], wrt: Sequence[Variable]) -> tuple[Op, str] | None:
    """``(op, reason)`` for the first node between ``wrt`` and ``outputs`` that no forward
    route can push a tangent through, or ``None`` when forward mode builds. Results are cached
    per Op and input types: a graph of many alike nodes costs one probe per kind."""
    for node, mask in _dependent_nodes(outputs, wrt):
        reason = _forward_reason(node, mask)
        if reason is not None:
            return node.op, reason
    return None


def reverse_obstacle(outputs: Sequence[Variable], wrt: Sequence[Variable]) -> tuple[Op, str] | None:
    """Like :func:`forward_obstacle`, for pullbacks (reverse mode)."""
    for node, mask in _dependent_nodes(outputs, wrt):
        reason = _reverse_reason(node, mask)
        if reason is not None:
            return node.op, reason
    return None
