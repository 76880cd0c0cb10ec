"""The registry of sparsity rules, keyed on the Op class.

A rule maps the patterns of a node's inputs to the patterns of its outputs::

    @register_sparsity_rule(MyOp)
    def my_rule(op, node, input_patterns, ctx):
        return [output_pattern, ...]

``input_patterns[i]`` is a boolean CSR of shape ``(node.inputs[i].size, ctx.n_wrt)`` or
``None`` when the input depends on no ``wrt`` entry. An Op may instead define its own method
``sparsity_rule(self, node, input_patterns, ctx)``, which wins over the registry.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.op import Op
from pytensor.scalar import ScalarType
from pytensor.tensor.basic import get_underlying_scalar_constant_value

if TYPE_CHECKING:
    from sparsediff.sparsity.pattern import Pattern

Rule = Callable[[Op, Apply, Sequence["Pattern | None"], "RuleContext"], Sequence["Pattern | None"]]


class NotConcrete(ValueError):
    """A shape or index that a rule needs is not known at plan time.

    Rules raise it to get the conservative fallback; when even the fallback cannot proceed (a
    shape that stays symbolic), it reaches the user as a ``ValueError``.
    """


class SparsityWarning(UserWarning):
    """The pattern had to be over-approximated (an Op without a rule, a symbolic index)."""


@dataclass
class RuleContext:
    """What rules may ask about the graph: concrete shapes, constant values, warnings."""

    n_wrt: int
    shapes: dict[Variable, tuple[int, ...]] = field(default_factory=dict)
    propagate: Callable | None = None  # recursive detection, for Ops with inner graphs
    #: the elemwise rule may return :class:`~sparsediff.sparsity.pattern.Deferred` unions
    #: (only :func:`~sparsediff.sparsity.propagate.propagate` sets it: it merges them)
    defer_unions: bool = False

    def shape(self, var: Variable) -> tuple[int, ...]:
        """The concrete shape of ``var``; raises :class:`NotConcrete` if it is symbolic."""
        shape = self.shapes.get(var)
        if shape is not None:
            return shape
        static = getattr(var.type, "shape", None)
        if static is not None and all(s is not None for s in static):
            return tuple(int(s) for s in static)
        if isinstance(var.type, ScalarType):
            return ()
        value = self.value(var)
        if value is not None:
            return tuple(np.shape(value))
        shape = self._inferred_shape(var)
        self.shapes[var] = shape
        return shape

    def _inferred_shape(self, var: Variable) -> tuple[int, ...]:
        """Ask the Op's ``infer_shape`` with concrete input shapes (static types can be vague)."""
        node = var.owner
        if node is None or not hasattr(node.op, "infer_shape"):
            raise NotConcrete(f"the shape of {var} is not known at plan time")
        try:
            input_shapes = [
                self.shape(i) if hasattr(i.type, "ndim") or isinstance(i.type, ScalarType) else None
                for i in node.inputs
            ]
            shapes = node.op.infer_shape(None, node, input_shapes)
            entries = shapes[node.outputs.index(var)]
            return tuple(
                int(get_underlying_scalar_constant_value(pt.as_tensor_variable(e))) for e in entries
            )
        except NotConcrete:
            raise
        except Exception as exc:
            raise NotConcrete(f"the shape of {var} is not known at plan time ({exc})") from exc

    def size(self, var: Variable) -> int:
        return int(np.prod(self.shape(var), dtype=np.int64))

    @staticmethod
    def value(var: Variable) -> np.ndarray | None:
        """The value of a constant, or ``None`` for anything that can vary."""
        if isinstance(var, Constant):
            return np.asarray(var.data)
        return None

    def concrete_values(self, variables: Sequence[Variable]) -> list[np.ndarray]:
        """Values of index/shape inputs, which must be constants after canonicalization."""
        values = []
        for var in variables:
            value = self.value(var)
            if value is None:
                raise NotConcrete(f"index or shape input {var} is symbolic")
            values.append(value)
        return values

    @staticmethod
    def warn(message: str) -> None:
        warnings.warn(message, SparsityWarning, stacklevel=4)


@functools.singledispatch
def _registry(op: Op, node: Apply, input_patterns, ctx: RuleContext):
    raise NotImplementedError


def register_sparsity_rule(op_class: type[Op]) -> Callable[[Rule], Rule]:
    """Register ``rule`` for ``op_class`` and its subclasses (decorator).

    Use it for your own Ops::

        @sd.register_sparsity_rule(MyOp)
        def _(op, node, input_patterns, ctx):
            ...
    """
    if not (isinstance(op_class, type) and issubclass(op_class, Op)):
        raise TypeError(f"register_sparsity_rule expects an Op class, got {op_class!r}")

    def decorator(rule: Rule) -> Rule:
        _registry.register(op_class)(rule)
        return rule

    return decorator


def find_rule(op: Op) -> Rule | None:
    """The Op's own ``sparsity_rule`` method if it has one, else the registered rule."""
    own = getattr(op, "sparsity_rule", None)
    if callable(own):
        return lambda op_, node, patterns, ctx: own(node, patterns, ctx)
    rule = _registry.dispatch(type(op))
    if rule is _registry.dispatch(object):
        return None
    return rule
