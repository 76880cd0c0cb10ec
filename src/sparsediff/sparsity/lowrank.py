"""Low-rank couplings in a cost: small reductions of many unknowns that feed a nonlinearity.

An ICAR prior's soft sum-to-zero term ``-0.5 * (x.sum() / eps)**2`` couples every pair of
unknowns: the Hessian pattern is dense and a star coloring needs ``n`` colors, although the
Hessian is a sparse matrix plus a rank-one term. This module finds such terms in the graph.

A *coupling* is a variable ``u = s(x)`` of the cost's graph that

* has a small static size (at most ``max_size`` elements) and is computed by a node with a
  large input (a reduction: ``sum``, ``mean``, ``dot(w, x)``, a norm, ...);
* depends on many entries of ``wrt``: a row of its Jacobian pattern has at least
  ``min_coupling`` nonzeros (each such row makes a dense block in the Hessian);
* has no other coupling among its ancestors (the innermost one is cut: ``x - x.mean()`` inside
  a likelihood cuts the mean, and the likelihood's own sum, being linear in the cost, goes);
* feeds the cost nonlinearly: with ``u`` replaced by a fresh input ``ũ`` (the *cut* cost
  ``c̃(x, ũ)``), ``∂²c̃/∂ũ∂(x, ũ)`` is not structurally zero. A reduction that is only added to
  the cost (a likelihood's final ``sum``) is no coupling: its Hessian is sparse as it is.

:func:`find_couplings` returns the couplings with the patterns :mod:`sparsediff.plans.low_rank`
needs; all of it is pattern propagation (two passes), no derivative graph is built.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Variable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors, toposort

from sparsediff.sparsity.propagate import hessian_sparsity, jacobian_sparsity

__all__ = ["Couplings", "LowRankHint", "default_min_coupling", "find_couplings", "hint"]

#: A coupling variable has at most this many elements (its rank contribution).
MAX_SIZE = 4
#: At most this many coupling elements in all: beyond, the dense factors stop being cheap.
MAX_RANK = 16


class LowRankHint(UserWarning):
    """The default Hessian plan is (nearly) dense because of a low-rank coupling."""


def default_min_coupling(n: int) -> int:
    """Nonzeros in a coupling's Jacobian row that make it worth cutting: ``max(16, n / 8)``,
    never more than ``n`` (so small test problems with one dense row still qualify)."""
    return max(2, min(n, max(16, n // 8)))


@dataclass(frozen=True)
class Couplings:
    """What :func:`find_couplings` found for ``cost`` and ``wrt``.

    ``variables``: the couplings ``u_i`` (variables of the user's graph), ``fresh``: one fresh
    input ``ũ_i`` per coupling (same type), ``cut_cost``: ``c̃(x, ũ)``, the cost with every
    ``u_i`` replaced by ``ũ_i``; ``cross``: for each of the ``k`` coupling elements (C order,
    couplings one after another) whether ``∂²c̃/∂x∂ũ`` may be nonzero (its column of the
    low-rank factor is needed); ``sizes``: elements per coupling.
    """

    variables: tuple[Variable, ...]
    fresh: tuple[Variable, ...]
    cut_cost: Variable
    cross: np.ndarray
    sizes: tuple[int, ...]

    @property
    def rank(self) -> int:
        """``k``: the number of coupling elements."""
        return int(sum(self.sizes))

    def __bool__(self) -> bool:
        return bool(self.variables)


def _static_size(v: Variable) -> int | None:
    shape = getattr(v.type, "shape", None)
    if shape is None or any(s is None for s in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))


def _candidates(cost: Variable, wrt: Variable, max_size: int, min_input: int) -> list[Variable]:
    """Small float variables computed (directly) from a large input, depending on ``wrt``."""
    depends = set()
    out = []
    for node in toposort([cost]):
        if not any(i is wrt or i in depends for i in node.inputs):
            continue
        depends.update(node.outputs)
        for v in node.outputs:
            if v is cost or getattr(v.type, "dtype", None) not in pt.type.continuous_dtypes:
                continue
            size = _static_size(v)
            if size is None or size > max_size:
                continue
            sizes = [_static_size(i) for i in node.inputs if i is wrt or i in depends]
            if any(s is None or s >= min_input for s in sizes):
                out.append(v)
    return out


def _innermost(chosen: list[Variable]) -> list[Variable]:
    """Drop every coupling that has another one among its ancestors."""
    keep = []
    chosen_set = set(chosen)
    for v in chosen:
        above = set(ancestors([v])) - {v}
        if not (above & chosen_set):
            keep.append(v)
    return keep


def find_couplings(
    cost: Variable,
    wrt: Variable,
    *,
    min_coupling: int | None = None,
    max_size: int = MAX_SIZE,
    max_rank: int = MAX_RANK,
) -> Couplings:
    """The low-rank couplings of scalar ``cost`` with respect to one ``wrt`` (see the module).

    ``min_coupling``: nonzeros a Jacobian row of a coupling needs (default
    :func:`default_min_coupling`); ``max_size``: elements per coupling; ``max_rank``: elements
    in all (the couplings with the densest rows are kept first).
    """
    n = int(np.prod(wrt.type.shape, dtype=np.int64))
    if min_coupling is None:
        min_coupling = default_min_coupling(n)
    empty = Couplings((), (), cost, np.zeros(0, bool), ())
    cands = _candidates(cost, wrt, max_size, min_coupling)
    if not cands:
        return empty
    stacked = pt.concatenate([pt.as_tensor_variable(c).ravel() for c in cands])
    pattern = jacobian_sparsity(stacked, wrt, disconnected_inputs="ignore")
    row_nnz = np.diff(pattern.indptr)
    offsets = np.concatenate([[0], np.cumsum([_static_size(c) for c in cands])])
    densest = {c: int(row_nnz[offsets[i] : offsets[i + 1]].max()) for i, c in enumerate(cands)}
    dense = [c for c in cands if densest[c] >= min_coupling]
    chosen = _innermost(dense)
    if not chosen:
        return empty
    chosen.sort(key=lambda c: -densest[c])
    picked, total = [], 0
    for c in chosen:
        if total + _static_size(c) <= max_rank:
            picked.append(c)
            total += _static_size(c)
    while picked:  # prune the couplings the cut cost is linear in, until none is left
        fresh = [c.type() for c in picked]
        for f, c in zip(fresh, picked, strict=True):
            f.name = f"{c.name or 'u'}~"
        cut = clone_replace(cost, dict(zip(picked, fresh, strict=True)))
        used = [f for f in fresh if f in set(ancestors([cut]))]
        if len(used) != len(fresh):  # a coupling inside another's replaced subgraph
            picked = [c for c, f in zip(picked, fresh, strict=True) if f in set(used)]
            continue
        blocks = hessian_sparsity(cut, [wrt, *fresh], disconnected_inputs="ignore")
        sizes = [_static_size(c) for c in picked]
        nonlinear, cross = [], []
        for i in range(len(picked)):
            rows = sp.hstack(blocks[1 + i], format="csr")
            nonlinear.append(rows.nnz > 0)
            cross.append(np.diff(sp.csr_array(blocks[1 + i][0]).indptr) > 0)
        if all(nonlinear):
            return Couplings(tuple(picked), tuple(fresh), cut, np.concatenate(cross), tuple(sizes))
        picked = [c for c, keep in zip(picked, nonlinear, strict=True) if keep]
    return empty


def hint(cost: Variable, wrt: Variable, n_colors: int, *, stacklevel: int = 4) -> None:
    """Warn (:class:`LowRankHint`) when a plan with ``n_colors`` of ``n`` is dense because of
    a low-rank coupling; called by the default Hessian plan only when it is nearly dense."""
    n = int(np.prod(wrt.type.shape, dtype=np.int64))
    if n < HINT_MIN_SIZE or n_colors < HINT_FRACTION * n:
        return
    try:
        found = find_couplings(cost, wrt)
    except Exception:  # a hint must never break a plan that works
        return
    if found:
        names = ", ".join(str(v) for v in found.variables)
        warnings.warn(
            f"the Hessian needs {n_colors} Hessian-vector products for {n} unknowns because of "
            f"a low-rank coupling ({names}: a reduction of many unknowns feeding a "
            "nonlinearity, e.g. a soft sum-to-zero term). sd.hessian(cost, wrt, "
            f"low_rank=True) returns it as sparse + rank-{found.rank} factors (a few products), "
            "which sd.linalg.spsolve / logdet take exactly",
            LowRankHint,
            stacklevel=stacklevel,
        )


#: :func:`hint` stays silent below this many unknowns ...
HINT_MIN_SIZE = 64
#: ... or when the plan needs fewer than this fraction of ``n`` colors.
HINT_FRACTION = 0.5
