"""Stage 1: the sparsity pattern of a PyTensor graph, from the graph alone."""

from sparsediff.sparsity.propagate import hessian_sparsity, jacobian_sparsity
from sparsediff.sparsity.registry import (
    NotConcrete,
    RuleContext,
    SparsityWarning,
    register_sparsity_rule,
)

__all__ = [
    "NotConcrete",
    "RuleContext",
    "SparsityWarning",
    "hessian_sparsity",
    "jacobian_sparsity",
    "register_sparsity_rule",
]
