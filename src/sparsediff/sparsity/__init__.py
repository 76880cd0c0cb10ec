"""Stage 1: the sparsity pattern of a PyTensor graph, from the graph alone."""

from collections.abc import Sequence

from pytensor.graph.basic import Variable

from sparsediff.sparsity.lowrank import LowRankHint
from sparsediff.sparsity.propagate import hessian_sparsity
from sparsediff.sparsity.propagate import jacobian_sparsity as _jacobian_sparsity
from sparsediff.sparsity.registry import (
    NotConcrete,
    RuleContext,
    SparsityWarning,
    register_sparsity_rule,
)

__all__ = [
    "LowRankHint",
    "NotConcrete",
    "RuleContext",
    "SparsityWarning",
    "hessian_sparsity",
    "jacobian_sparsity",
    "register_sparsity_rule",
]


def jacobian_sparsity(
    expression: Variable,
    wrt: Variable | Sequence[Variable],
    *,
    consider_constant: Sequence[Variable] = (),
    disconnected_inputs: str = "raise",
):
    """The global sparsity pattern of the Jacobian of ``expression`` with respect to ``wrt``.

    Returns a boolean ``scipy.sparse.csr_array`` of shape ``(expression.size, wrt.size)``
    (rows in C order of ``expression.ravel()``), or a list of them when ``wrt`` is a list.
    The pattern holds for every value of the inputs: it may over-approximate, it never
    misses a nonzero. Other inputs of the graph are unknown values, not constants.

    A ``wrt`` that is not part of the graph raises
    ``pytensor.gradient.DisconnectedInputError`` (``disconnected_inputs="raise"``, the default,
    as in ``pytensor.gradient.jacobian``: it is usually a mistake), or gets an all-zero block
    with a warning (``"warn"``) or silently (``"ignore"``).
    """
    return _jacobian_sparsity(
        expression,
        wrt,
        consider_constant=consider_constant,
        disconnected_inputs=disconnected_inputs,
    )
