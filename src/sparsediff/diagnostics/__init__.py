"""Diagnostics: check a sparse derivative against dense AD, explain a pattern, draw it."""

from sparsediff.diagnostics.check import CheckFailed, CheckReport, check_hessian, check_jacobian
from sparsediff.diagnostics.explain import explain_sparsity
from sparsediff.diagnostics.plotting import plot_sparsity

__all__ = [
    "CheckFailed",
    "CheckReport",
    "check_hessian",
    "check_jacobian",
    "explain_sparsity",
    "plot_sparsity",
]
