"""sparsediff: sparse Jacobians and Hessians for PyTensor graphs.

Detect the sparsity pattern of a graph, color it, and compute the whole Jacobian
(or Hessian) with as many JVPs/VJPs as there are colors, as a sparse matrix.
"""

__version__ = "0.1.0"

from sparsediff import linalg  # noqa: F401  (sd.linalg: sparse solve, logdet, selected inverse)
from sparsediff import optimize  # noqa: F401  (sd.optimize: root, minimize with sparse Newton)
from sparsediff.check import CheckReport, check_hessian, check_jacobian
from sparsediff.coloring import Coloring, color
from sparsediff.explain import explain_sparsity
from sparsediff.hessian import HessianPlan, hessian, hessian_plan
from sparsediff.jacobian import JacobianPlan, jacobian, jacobian_plan
from sparsediff.plotting import plot_sparsity
from sparsediff.scipy_adapters import (
    IpoptFunctions,
    LeastSquaresFunctions,
    MinimizeFunctions,
    ODEFunctions,
    ipopt_functions,
    least_squares_functions,
    minimize_functions,
    nonlinear_constraint,
    ode_functions,
)
from sparsediff.solve import NewtonResult, NewtonSolver, newton
from sparsediff.sparsity import (
    SparsityWarning,
    hessian_sparsity,
    jacobian_sparsity,
    register_sparsity_rule,
)

__all__ = [
    "CheckReport",
    "Coloring",
    "HessianPlan",
    "IpoptFunctions",
    "JacobianPlan",
    "LeastSquaresFunctions",
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
    "minimize_functions",
    "newton",
    "nonlinear_constraint",
    "ode_functions",
    "plot_sparsity",
    "register_sparsity_rule",
]
