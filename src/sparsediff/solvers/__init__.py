"""Solvers outside the graph: Newton with a sparse Jacobian, and what SciPy and Ipopt want.

``newton`` (``sd.newton``, ``sd.NewtonSolver``), ``scipy_adapters`` (``minimize``,
``least_squares``, ``NonlinearConstraint``, ``solve_ivp`` callables), ``ipopt`` (cyipopt).
"""

from sparsediff.solvers.ipopt import IpoptFunctions, ipopt_functions
from sparsediff.solvers.newton import NewtonResult, NewtonSolver, newton
from sparsediff.solvers.scipy_adapters import (
    LeastSquaresFunctions,
    MinimizeFunctions,
    ODEFunctions,
    least_squares_functions,
    minimize_functions,
    nonlinear_constraint,
    ode_functions,
)

__all__ = [
    "IpoptFunctions",
    "LeastSquaresFunctions",
    "MinimizeFunctions",
    "NewtonResult",
    "NewtonSolver",
    "ODEFunctions",
    "ipopt_functions",
    "least_squares_functions",
    "minimize_functions",
    "newton",
    "nonlinear_constraint",
    "ode_functions",
]
