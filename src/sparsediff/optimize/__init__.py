"""Root finding and minimization as differentiable PyTensor Ops, with sparse Jacobians/Hessians.

>>> x_star, success = sd.optimize.root(equations, variables)     # as pytensor.tensor.optimize
>>> x_star, success = sd.optimize.minimize(objective, x)
>>> pytensor.grad(loss(x_star), theta)    # one transposed sparse solve + one pullback

Drop-in replacements for ``pytensor.tensor.optimize.root`` / ``minimize``: same signatures and
meaning, but the Jacobian (Hessian) inside is sparse, factored by a sparse direct solver, and
the implicit gradient never forms a dense matrix nor a Jacobian w.r.t. the parameters.
"""

from sparsediff.optimize._core import ConvergenceWarning, ImplicitAdjoint, OptimizeOp
from sparsediff.optimize.minimize import MINIMIZE_METHODS, MinimizeOp, minimize
from sparsediff.optimize.replace import sparsify_optimizers
from sparsediff.optimize.root import ROOT_METHODS, RootOp, root

__all__ = [
    "MINIMIZE_METHODS",
    "ROOT_METHODS",
    "ConvergenceWarning",
    "ImplicitAdjoint",
    "MinimizeOp",
    "OptimizeOp",
    "RootOp",
    "minimize",
    "root",
    "sparsify_optimizers",
]
