"""Constant derivatives keep their inputs, as PyTensor's own derivatives do.

A quadratic cost has a constant Hessian and a piecewise-constant expression a zero Jacobian:
after plan-time folding the sparse result depends on no input at all, and
``pytensor.function([x], sd.hessian(f, x))`` would raise ``UnusedInputError``, while
``pytensor.gradient.hessian(f, x)`` compiles (its graph still mentions ``x``).
:func:`keep_inputs` ties the result to the inputs it lost through their sizes, times zero:
compilation rewrites the tie away (static sizes are constants), so the compiled function
returns the folded constant and does no work per call.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import graph_inputs
from pytensor.tensor.type import TensorType

__all__ = ["keep_inputs", "user_inputs"]


def user_inputs(expression: Variable, wrt: Sequence[Variable]) -> list[Variable]:
    """``wrt`` and the root tensor inputs of ``expression`` a user passes to a function."""
    seen, out = set(), []
    for v in [*wrt, *graph_inputs([expression])]:
        if v in seen or isinstance(v, Constant | SharedVariable):
            continue
        if isinstance(v.type, TensorType):
            seen.add(v)
            out.append(v)
    return out


def keep_inputs(value: Variable, variables: Sequence[Variable]) -> Variable:
    """``value``, made to depend on each of ``variables`` it does not depend on already."""
    present = set(graph_inputs([value]))
    missing = [v for v in variables if v not in present]
    if not missing:
        return value
    size = pt.add(*[v.size for v in missing]) if len(missing) > 1 else missing[0].size
    return value + pt.cast(size * 0, value.dtype)
