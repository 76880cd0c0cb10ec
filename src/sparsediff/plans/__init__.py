"""Plans: detect → color → choose the mode (or kind) → positions; ``build()`` makes the graph.

``jacobian`` (forward, reverse, bidirectional or dense Jacobians), ``hessian`` (star, acyclic or
dense Hessians), ``common`` (what both share), ``lazy`` (one node expanded at compile time),
``api`` (``sd.jacobian``/``sd.hessian``: eager or lazy). A plan is immutable once made.
"""

from sparsediff.plans.api import hessian, jacobian
from sparsediff.plans.hessian import HessianPlan, hessian_plan
from sparsediff.plans.jacobian import JacobianPlan, jacobian_plan

__all__ = ["HessianPlan", "JacobianPlan", "hessian", "hessian_plan", "jacobian", "jacobian_plan"]
