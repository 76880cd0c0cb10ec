"""Sparse plus low-rank Hessians: cut the low-rank couplings, color what is left.

>>> H = sd.hessian(cost, x, low_rank=True)      # SparsePlusLowRank: H.S + H.U @ H.C @ H.U.T

A cost ``c(x)`` whose graph reduces many unknowns to a few scalars ``u = s(x) ∈ Rᵏ`` that feed a
nonlinearity (an ICAR prior's soft sum-to-zero ``-0.5 (Σx / ε)²``) has a dense Hessian pattern,
but not a dense Hessian: with the cut cost ``c̃(x, ũ)`` (``u`` replaced by a fresh input, see
:mod:`sparsediff.sparsity.lowrank`), ``J = ∂s/∂x`` (``k × n``) and ``λ = ∂c̃/∂ũ`` at ``ũ = s(x)``,

    H = [c̃_xx + Σ λ_k ∇²s_k] + J ᵀc̃_ũũ J + c̃_xũ J + Jᵀ c̃_ũx   =   S + U C Uᵀ

with ``U = [Jᵀ, c̃_xũ]`` (``n × 2k``; the columns of ``c̃_xũ`` that are structurally zero are
dropped, so ``U = Jᵀ`` for a plain penalty of a sum) and ``C = [[c̃_ũũ, E], [Eᵀ, 0]]``.
``S`` is the Hessian of ``c̃(x, ũ) + λ·s(x)`` in ``x`` with ``ũ`` and ``λ`` held fixed: a sparse
Hessian plan colors it (``λ_k ∇²s_k`` is zero for linear ``s``, diagonal for a sum of squares),
then ``ũ := s(x)`` and ``λ := c̃_ũ`` are substituted. ``J`` and ``c̃_ũx`` are ``k`` reverse
products each, ``c̃_ũũ`` is ``k × k``: a few products instead of ``n``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import jacobian
from pytensor.graph.basic import Variable
from pytensor.graph.replace import clone_replace

from sparsediff._validate import as_wrt_list, check_cost
from sparsediff.linalg.low_rank import SparsePlusLowRank
from sparsediff.plans import hessian as _hessian
from sparsediff.sparsity.lowrank import Couplings, find_couplings
from sparsediff.sparsity.propagate import _handle_disconnected

__all__ = ["LowRankHessianPlan", "low_rank_hessian", "low_rank_hessian_plan"]


@dataclass(frozen=True, repr=False, eq=False)
class LowRankHessianPlan:
    """What :func:`low_rank_hessian_plan` decided: the couplings and the plan of ``S``.

    ``couplings``: the cut variables (:class:`~sparsediff.sparsity.lowrank.Couplings`);
    ``sparse_plan``: the :class:`~sparsediff.plans.hessian.HessianPlan` of ``S`` (its cost has
    the fresh inputs ``ũ`` and ``lam``); ``rank``: the columns of ``U``; ``n_products``: HVPs
    for ``S`` plus the reverse products of the factors (``k`` for ``J`` and one per kept
    column of ``c̃_xũ``).
    """

    cost: Variable
    wrt: Variable
    couplings: Couplings
    sparse_plan: Any
    lam: tuple[Variable, ...]
    rank: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_colors(self) -> int:
        """Hessian-vector products of the sparse part."""
        return self.sparse_plan.n_colors

    @property
    def n_products(self) -> int:
        """Products per evaluation: HVPs of ``S`` and the reverse products of ``U``."""
        return self.n_colors + self.rank

    def __repr__(self) -> str:
        n = int(np.prod(self.wrt.type.shape, dtype=np.int64))
        names = ", ".join(str(v) for v in self.couplings.variables) or "none"
        return (
            f"LowRankHessianPlan({n}×{n}, S: {self.sparse_plan.kind} {self.n_colors} colors, "
            f"nnz={self.sparse_plan.nnz}; rank {self.rank} from {names})"
        )

    def build(self) -> SparsePlusLowRank:
        """``S + U C Uᵀ`` as a :class:`~sparsediff.linalg.SparsePlusLowRank`."""
        t0 = time.perf_counter()
        x, cp = self.wrt, self.couplings
        n = int(np.prod(x.type.shape, dtype=np.int64))
        S = self.sparse_plan.build()
        if not cp:
            U = pt.zeros((n, 0), dtype=x.dtype)
            C = pt.zeros((0, 0), dtype=x.dtype)
            self.timings["build"] = time.perf_counter() - t0
            return SparsePlusLowRank(S, U, C)
        k = cp.rank
        fresh = list(cp.fresh)
        grads = pytensor.grad(cp.cut_cost, fresh, disconnected_inputs="ignore")
        g = pt.concatenate([gi.ravel() for gi in grads])  # λ (k,), a function of x and ũ
        s = pt.concatenate([pt.as_tensor_variable(u).ravel() for u in cp.variables])
        J = jacobian(s, x, vectorize=True, disconnected_inputs="ignore").reshape((k, n))
        Huu = pt.concatenate(
            [
                jacobian(g, f, vectorize=True, disconnected_inputs="ignore").reshape((k, -1))
                for f in fresh
            ],
            axis=1,
        )
        keep = np.flatnonzero(cp.cross)
        cols = [J]
        if keep.size:
            Hux = jacobian(g[keep], x, vectorize=True, disconnected_inputs="ignore").reshape(
                (keep.size, n)
            )
            cols.append(Hux)
        U = pt.concatenate(cols, axis=0).T
        E = np.eye(k)[:, keep]
        C = pt.concatenate(
            [
                pt.concatenate([Huu, pt.as_tensor_variable(E)], axis=1),
                pt.concatenate(
                    [pt.as_tensor_variable(E.T), pt.zeros((keep.size, keep.size))], axis=1
                ),
            ],
            axis=0,
        )
        # ũ := s(x), λ := c̃_ũ(x, s(x)) in S, U and C.
        sub = dict(zip(fresh, cp.variables, strict=True))
        lam_values = []
        start = 0
        for lam, size in zip(self.lam, cp.sizes, strict=True):
            lam_values.append(g[start : start + size].reshape(lam.type.shape))
            start += size
        lam_values = clone_replace(lam_values, sub)
        S, U, C = clone_replace([S, U, C], {**sub, **dict(zip(self.lam, lam_values, strict=True))})
        U = pt.specify_shape(U, (n, self.rank))
        C = pt.specify_shape(C, (self.rank, self.rank))
        self.timings["build"] = time.perf_counter() - t0
        return SparsePlusLowRank(S, U, C)


def low_rank_hessian_plan(
    cost,
    wrt,
    *,
    min_coupling: int | None = None,
    max_rank: int | None = None,
    disconnected_inputs: str = "raise",
    _couplings: Couplings | None = None,
    **kwargs,
) -> LowRankHessianPlan:
    """Find the low-rank couplings of ``cost`` and plan ``S`` (see the module).

    ``wrt``: one float tensor with a static shape (a list is not supported: concatenate the
    unknowns into one vector). ``min_coupling`` / ``max_rank``: see
    :func:`sparsediff.sparsity.lowrank.find_couplings`. Other keywords (``kind``, ``method``,
    ``order``, ``format``, ``fold``, ``lift``) go to the Hessian plan of ``S``; ``sparsity`` and
    ``coloring`` are refused (they would describe the whole Hessian, not ``S``).
    """
    cost = check_cost(cost)
    wrt_list, is_list = as_wrt_list(wrt)
    if is_list:
        raise NotImplementedError(
            "low_rank=True needs one wrt; concatenate the unknowns into one vector "
            "(pt.concatenate) and slice it in the cost"
        )
    for bad in ("sparsity", "coloring", "dense", "lazy"):
        if kwargs.get(bad) is not None and kwargs.get(bad) is not False:
            raise ValueError(f"low_rank=True does not take {bad}= (it plans the sparse part)")
        kwargs.pop(bad, None)
    (x,) = wrt_list
    _handle_disconnected(cost, [x], (), disconnected_inputs, what="Hessian", stacklevel=5)
    t0 = time.perf_counter()
    options = {} if max_rank is None else {"max_rank": max_rank}
    cp = _couplings or find_couplings(cost, x, min_coupling=min_coupling, **options)
    t_detect = time.perf_counter() - t0
    lam = tuple(u.type() for u in cp.variables)
    for i, v in enumerate(lam):
        v.name = f"lambda{i}"
    if cp:
        sparse_cost = cp.cut_cost + sum(
            (lv * u).sum() for lv, u in zip(lam, cp.variables, strict=True)
        )
    else:
        sparse_cost = cost
    sparse_plan = _hessian.hessian_plan(
        sparse_cost, x, disconnected_inputs="ignore", _hint=False, **kwargs
    )
    rank = cp.rank + int(np.count_nonzero(cp.cross))
    return LowRankHessianPlan(
        cost=cost,
        wrt=x,
        couplings=cp,
        sparse_plan=sparse_plan,
        lam=lam,
        rank=rank,
        timings={"couplings": t_detect, **sparse_plan.timings},
    )


def low_rank_hessian(cost, wrt, low_rank: bool | str = True, **kwargs):
    """``sd.hessian(cost, wrt, low_rank=...)``: ``True`` always gives a
    :class:`~sparsediff.linalg.SparsePlusLowRank` (rank 0 when nothing couples); ``"auto"``
    gives one only when a coupling is found, the plain sparse Hessian otherwise."""
    if low_rank not in (True, "auto"):
        raise ValueError(f"low_rank must be False, True or 'auto', got {low_rank!r}")
    if low_rank == "auto":
        cost = check_cost(cost)
        if isinstance(wrt, list | tuple):
            raise NotImplementedError("low_rank='auto' needs one wrt (see low_rank=True)")
        (x,), _ = as_wrt_list(wrt)
        options = {k: kwargs.pop(k) for k in ("min_coupling", "max_rank") if k in kwargs}
        found = find_couplings(cost, x, **options)
        if not found:
            return _hessian.hessian(cost, x, **kwargs)
        return low_rank_hessian_plan(cost, x, _couplings=found, **options, **kwargs).build()
    return low_rank_hessian_plan(cost, wrt, **kwargs).build()
