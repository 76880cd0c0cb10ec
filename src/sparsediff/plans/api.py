"""``sd.jacobian`` and ``sd.hessian``: the eager plans, or one lazy node with ``lazy=True``."""

from __future__ import annotations

from sparsediff.plans import hessian as _hessian
from sparsediff.plans import jacobian as _jacobian
from sparsediff.plans import low_rank as _low_rank
from sparsediff.plans.lazy import lazy_hessian, lazy_jacobian

__all__ = ["hessian", "jacobian"]


def jacobian(expression, wrt, mode: _jacobian.Mode = "auto", *, lazy: bool = False, **kwargs):
    """The sparse Jacobian of ``expression`` (flattened in C order) with respect to ``wrt``.

    Same as ``jacobian_plan(expression, wrt, mode, **kwargs).build()``: a ``pytensor.sparse``
    CSR variable (CSC with ``format="csc"``) of shape ``(expression.size, wrt.size)``, or a list
    of them when ``wrt`` is a list. Compiled with ``pytensor.function`` it returns a
    ``scipy.sparse`` matrix per call (a ``jax.experimental.sparse.BCSR`` with ``mode="JAX"``).

    ``lazy=True`` returns the output of one ``SparseJacobian`` node instead (same type), planned
    and built at compile time on the simplified graph, after rewrites that turn ``J @ v`` into
    one JVP and ``Jᵀ @ w`` into one VJP (see :mod:`sparsediff.plans.lazy`).
    """
    if lazy:
        return lazy_jacobian(expression, wrt, mode, **kwargs)
    return _jacobian.jacobian(expression, wrt, mode, **kwargs)


def hessian(cost, wrt, *, lazy: bool = False, low_rank: bool | str = False, **kwargs):
    """The sparse Hessian of scalar ``cost`` with respect to ``wrt`` (flattened in C order).

    Same as ``hessian_plan(cost, wrt, **kwargs).build()``: a symmetric ``pytensor.sparse`` CSR
    variable (both triangles stored), or a list of diagonal blocks when ``wrt`` is a list.
    ``lazy=True`` returns the output of one lazy node (same type), expanded at compile time;
    ``H @ v`` becomes one HVP (see :mod:`sparsediff.plans.lazy`).

    ``low_rank=True`` returns ``S + U C Uᵀ`` as a :class:`~sparsediff.linalg.SparsePlusLowRank`
    instead: the couplings of many unknowns through a few scalars (a soft sum-to-zero
    ``(x.sum())**2``) go into dense factors ``U`` (``n × r``), ``C`` (``r × r``) and only the sparse
    rest is colored; ``sd.linalg.spsolve`` / ``logdet`` take it exactly. ``low_rank="auto"``
    does so only when such a coupling is found (see :mod:`sparsediff.plans.low_rank`).
    """
    if low_rank is not False:
        if lazy:
            raise ValueError("lazy=True and low_rank= cannot be combined")
        return _low_rank.low_rank_hessian(cost, wrt, low_rank, **kwargs)
    if lazy:
        return lazy_hessian(cost, wrt, **kwargs)
    return _hessian.hessian(cost, wrt, **kwargs)
