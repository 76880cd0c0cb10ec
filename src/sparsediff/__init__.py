"""sparsediff: sparse Jacobians and Hessians for PyTensor graphs.

Detect the sparsity pattern of a graph, color it, and compute the whole Jacobian (or Hessian)
with as many JVPs/VJPs as there are colors, as a sparse matrix.

The pipeline is one package per stage — ``sparsity`` → ``coloring`` → ``compression`` →
``decompression`` — orchestrated by ``plans``; around it ``solvers`` (Newton, SciPy, Ipopt),
``diagnostics`` (check, explain, plot) and ``backends``. Every registration with PyTensor is made
by :mod:`sparsediff._register`. This module is the public API: internal paths may move.
"""

__version__ = "0.1.0"

from sparsediff import (
    _register,  # noqa: F401  (rules, vectorization, rewrites, dispatch)
    linalg,  # sd.linalg: sparse solve, logdet, selected inverse
    optimize,  # sd.optimize: root, minimize with sparse Newton and implicit gradients
)
from sparsediff.coloring import Coloring, color
from sparsediff.coloring.validity import ColoringError
from sparsediff.diagnostics import (
    CheckFailed,
    CheckReport,
    check_hessian,
    check_jacobian,
    explain_sparsity,
    plot_sparsity,
)
from sparsediff.plans import (
    HessianPlan,
    JacobianPlan,
    hessian,
    hessian_plan,
    jacobian,
    jacobian_plan,
)
from sparsediff.solvers import (
    IpoptFunctions,
    LeastSquaresFunctions,
    MinimizeFunctions,
    NewtonResult,
    NewtonSolver,
    ODEFunctions,
    ipopt_functions,
    least_squares_functions,
    minimize_functions,
    newton,
    nonlinear_constraint,
    ode_functions,
)
from sparsediff.sparsity import (
    LowRankHint,
    SparsityWarning,
    hessian_sparsity,
    jacobian_sparsity,
    register_sparsity_rule,
)

__all__ = [
    "CheckFailed",
    "CheckReport",
    "Coloring",
    "ColoringError",
    "HessianPlan",
    "IpoptFunctions",
    "JacobianPlan",
    "LeastSquaresFunctions",
    "LowRankHint",
    "MinimizeFunctions",
    "NewtonResult",
    "NewtonSolver",
    "ODEFunctions",
    "SparsityWarning",
    "check_hessian",
    "check_jacobian",
    "color",
    "explain_sparsity",
    "hessian",
    "hessian_plan",
    "hessian_sparsity",
    "ipopt_functions",
    "jacobian",
    "jacobian_plan",
    "jacobian_sparsity",
    "least_squares_functions",
    "linalg",
    "minimize_functions",
    "newton",
    "nonlinear_constraint",
    "ode_functions",
    "optimize",
    "plot_sparsity",
    "register_sparsity_rule",
]
