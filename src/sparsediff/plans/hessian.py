"""Sparse Hessians: detect → star or acyclic coloring → batched Hessian-vector products → recovery.

>>> H = sd.hessian(f, x)            # pytensor SparseVariable (CSR), symmetric, both triangles

The Hessian pattern is symmetric; a *star* coloring of it lets every nonzero be read directly
from ``B = H S`` (one HVP per color): ``H[i, j] = B[i, c(j)]`` or ``B[j, c(i)]``. An *acyclic*
coloring needs fewer colors (banded, half-bandwidth β: β + 1) and recovers the nonzeros by
substitution along two-colored trees (:mod:`sparsediff.decompression.substitution`, a
sequential O(nnz) pass per call); ``kind="auto"`` takes acyclic only when it needs at most
:data:`AUTO_ACYCLIC_FRACTION` of star's colors (see there why). The HVPs are
built forward-over-reverse (``pushforward`` of the gradient) and reverse-over-reverse
(``pullback`` of the gradient); with ``method="auto"`` both are folded and the one with less
per-call work is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Variable
from pytensor.tensor.variable import TensorVariable

from sparsediff import compression, decompression
from sparsediff._validate import as_wrt_list, check_cost
from sparsediff.coloring import check_coloring, color, lower_bound
from sparsediff.coloring.validity import as_colors
from sparsediff.decompression import Layout
from sparsediff.plans import common
from sparsediff.plans.keep_inputs import keep_inputs, user_inputs
from sparsediff.sparsity import hessian_sparsity, lowrank
from sparsediff.sparsity.pattern import as_pattern

__all__ = ["HessianPlan", "hessian", "hessian_plan"]

Method = Literal["auto", "forward-over-reverse", "reverse-over-reverse"]
_METHODS = ("auto", "forward-over-reverse", "reverse-over-reverse")
Kind = Literal["auto", "star", "acyclic"]
_KINDS = ("auto", "star", "acyclic")

#: ``kind="auto"`` uses an acyclic coloring only when it needs at most this fraction of the
#: star coloring's colors. Substitution is a sequential pass over the nonzeros on every call:
#: on the 2-D energy Hessian (n = 9·10⁴, C backend) the acyclic plan (4 colors) took 5.6 ms per
#: call against 1.1 ms for star (5 colors, a gather) — the pass cost about 20 folded HVPs. It
#: pays only where HVPs are expensive or colors are halved; ask for ``kind="acyclic"`` then.
AUTO_ACYCLIC_FRACTION = 0.5
#: ``kind="auto"`` does not even compute an acyclic coloring (seconds at n = 10⁶) when star
#: needs fewer colors than this: halving them would leave at most two.
AUTO_ACYCLIC_MIN_STAR = 6


@dataclass(frozen=True, repr=False, eq=False)
class HessianPlan(common.PatternStats):
    """What :func:`hessian_plan` decided, and everything :meth:`build` needs.

    ``pattern`` is the symmetric sparsity of the Hessian, ``coloring`` a star or acyclic
    coloring (``None`` when ``dense``), ``kind`` which (``"dense"`` for identity seeds),
    ``n_colors`` the number of Hessian-vector products per evaluation. A star plan gathers its
    nonzeros at ``positions``; an acyclic plan substitutes them along ``schedule``.
    ``method`` is the HVP construction; ``"auto"`` is resolved by :meth:`build` (see
    ``method_used``). A plan never changes once made: what ``build`` chose is recorded in
    ``built`` (and its time in ``timings``).
    """

    cost: TensorVariable
    wrt: TensorVariable
    pattern: sp.csr_array
    coloring: Any
    n_colors: int
    dense: bool
    format: str
    method: str
    colors: np.ndarray
    layout: Layout
    positions: np.ndarray | None
    kind: str = "star"  #: "star", "acyclic" or "dense"
    schedule: Any = None  #: substitution.Schedule of an acyclic plan
    n_colors_star: int | None = None  #: colors a star coloring needs (if computed)
    n_colors_acyclic: int | None = None  #: colors an acyclic coloring needs (if computed)
    fold: bool = True
    lift: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    #: what the last ``build`` chose: "method" (the HVP construction) and, with
    #: ``method="auto"``, "costs" (per-call work of each candidate graph)
    built: dict[str, Any] = field(default_factory=dict)

    @property
    def method_used(self) -> str | None:
        """The HVP construction of the last build (``None`` before the first)."""
        return self.built.get("method")

    @property
    def costs(self) -> dict[str, int]:
        """Per-call work of each candidate HVP graph, when ``method="auto"`` compared them."""
        return self.built.get("costs", {})

    @property
    def _full(self) -> sp.csr_array:
        return self.pattern

    @property
    def lower_bound(self) -> int | None:
        """Colors no coloring of this plan's kind can go below, where a bound is known: for
        star, :func:`sparsediff.coloring.lower_bound` (3 unless ``P ∪ Pᵀ`` is a forest of
        stars). ``None`` for acyclic and dense plans. (The most nonzeros in a row bounds a
        *column* coloring, not a star one: an arrowhead has a full row and 2 star colors.)"""
        if self.kind != "star" or self.dense:
            return None
        if self.nnz == 0:
            return 0
        return lower_bound(self.pattern, kind="star")

    def __repr__(self) -> str:
        n = self.shape[0]
        if self.dense:
            how = f"dense ({self.n_colors} identity seeds)"
        elif self.kind == "acyclic":
            how = f"acyclic, {self.n_colors} colors (substitution)"
        else:
            how = f"star, {self.n_colors} colors (lower bound {self.lower_bound})"
        method = self.method_used or self.method
        return (
            f"HessianPlan({n}×{n}, nnz={self.nnz}, density={self.density:.3g}, {how}, "
            f"method={method}, format={self.format})"
        )

    def compressed(self, method: str | None = None) -> Variable:
        """``B`` of shape ``(n_colors, n)`` (row ``c`` is ``H @ seed_c``), folded when ``fold``."""
        method = method or self.method
        if method == "auto":
            candidates, errors = {}, []
            for m in ("forward-over-reverse", "reverse-over-reverse"):
                try:
                    candidates[m] = self.compressed(m)
                except Exception as err:  # a method some Op does not support
                    errors.append(f"{m}: {type(err).__name__}: {err}")
            if not candidates:
                raise NotImplementedError(
                    "PyTensor cannot build Hessian-vector products of this graph; "
                    + "; ".join(errors)
                )
            costs = {m: compression.graph_cost([b]) for m, b in candidates.items()}
            best = min(candidates, key=lambda m: (costs[m], m != "forward-over-reverse"))
            self.built.update(method=best, costs=costs)
            return candidates[best]
        seeds = compression.seed_matrix(self.colors, self.n_colors, dtype=self.wrt.dtype)
        (cost,), (wrt,) = compression.isolate_inner_graphs([self.cost], [self.wrt])
        out = compression.compressed_hvp(cost, wrt, seeds, method=method)
        if self.fold:
            limit = common.fold_limit(self.n_colors, self.shape[0])
            (out,) = compression.fold_constants([out], limit=limit)
        self.built.update(method=method)
        return out

    def build(self):
        """The sparse Hessian as a ``pytensor.sparse`` variable (CSR, or CSC with format)."""
        with common.building():
            return self._build()

    def _build(self):
        t0 = time.perf_counter()
        if self.nnz == 0:
            data = pt.zeros((0,), dtype=self.wrt.dtype)
        else:
            b = self.compressed()
            if self.kind == "acyclic":
                data = decompression.substitute(b.ravel(), self.schedule)
            else:
                data = decompression.gather(b, self.positions, lift=self.lift)
        data = keep_inputs(data, user_inputs(self.cost, [self.wrt]))  # constant Hessians
        out = decompression.assemble(data, self.layout)
        self.timings["build"] = time.perf_counter() - t0
        return out


def hessian_plan(
    cost,
    wrt,
    *,
    sparsity=None,
    coloring=None,
    order="auto",
    format: str = "csr",
    method: Method = "auto",
    kind: Kind = "auto",
    dense: bool | None = None,
    fold: bool = True,
    lift: bool = True,
    disconnected_inputs: str = "raise",
    _hint: bool = True,
):
    """Detect the (symmetric) Hessian pattern of scalar ``cost``, color it, plan the HVPs.

    ``wrt``: a float tensor with a static shape (flattened in C order), or a list of them — then
    a list of plans, one per ``wrt`` (the diagonal blocks, like ``pytensor.gradient.hessian``).
    ``sparsity``: a known symmetric pattern (skips detection). ``coloring``: a known star or
    acyclic coloring (``Coloring``, or an integer array with ``kind``), or the name of a kind.
    ``kind``: ``"star"`` (every entry read directly, a gather), ``"acyclic"`` (fewer colors,
    entries recovered by substitution: a sequential pass per call, no gradient) or ``"auto"``:
    star, unless an acyclic coloring needs at most :data:`AUTO_ACYCLIC_FRACTION` of its
    colors (computed only when star needs :data:`AUTO_ACYCLIC_MIN_STAR` or more). ``method``:
    ``"forward-over-reverse"``, ``"reverse-over-reverse"`` or ``"auto"`` (the one whose folded
    graph does less work). ``dense``: force or forbid the dense path (identity seeds); by
    default tiny or dense Hessians are computed densely. ``disconnected_inputs``: what a
    ``wrt`` the cost does not depend on gets — ``"raise"`` (the default, as in
    ``pytensor.gradient.hessian``), ``"warn"`` or ``"ignore"`` (an all-zero Hessian).
    """
    cost = check_cost(cost)
    wrt_list, is_list = as_wrt_list(wrt)
    if isinstance(coloring, str):  # coloring="acyclic": a kind, not a coloring
        kind, coloring = coloring, None
    if is_list:
        if sparsity is not None and not isinstance(sparsity, list | tuple):
            raise ValueError("with a list wrt, sparsity must be a list of patterns, one per wrt")
        if coloring is not None and not isinstance(coloring, list | tuple):
            raise ValueError("with a list wrt, coloring must be a list, one per wrt")
        return [
            hessian_plan(
                cost,
                w,
                sparsity=None if sparsity is None else sparsity[i],
                coloring=None if coloring is None else coloring[i],
                order=order,
                format=format,
                method=method,
                kind=kind,
                dense=dense,
                fold=fold,
                lift=lift,
                disconnected_inputs=disconnected_inputs,
            )
            for i, w in enumerate(wrt_list)
        ]
    (w,) = wrt_list
    if kind not in _KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(map(repr, _KINDS))}")
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(map(repr, _METHODS))}")
    common.check_format(format)
    n = int(np.prod(w.type.shape, dtype=np.int64))
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if sparsity is None:
        detected = hessian_sparsity(cost, w, disconnected_inputs=disconnected_inputs)
        pattern = as_pattern(detected, (n, n), "detected Hessian pattern")
        timings["detection"] = time.perf_counter() - t0
    else:
        pattern = as_pattern(sparsity, (n, n), "sparsity")
        timings["pattern"] = time.perf_counter() - t0
    if (pattern != pattern.T).nnz:
        raise ValueError("a Hessian pattern must be symmetric; the given sparsity is not")

    t0 = time.perf_counter()
    n_star = n_acyclic = None
    if coloring is not None:
        if dense:
            raise ValueError("dense=True and a coloring were both given")
        given = common.coloring_kind(coloring)
        if given is not None and given not in ("star", "acyclic"):
            raise ValueError(f"a Hessian needs a star or acyclic coloring, got kind {given!r}")
        if given is not None and kind != "auto" and given != kind:
            raise ValueError(f"kind={kind!r} but the coloring given is {given!r}")
        used = given or (kind if kind != "auto" else "star")
        colors = as_colors(coloring, n, used)
        check_coloring(pattern, colors, kind=used)
        is_dense = False
        chosen = coloring
    else:
        is_dense = common.is_dense_by_default(n, n, pattern.nnz) if dense is None else dense
        if is_dense:
            colors = np.arange(n, dtype=np.int64)
            chosen = None
            used = "dense"
        else:
            candidates = {}
            if kind in ("auto", "star"):
                candidates["star"] = color(pattern, kind="star", order=order)
            if kind == "acyclic" or candidates["star"].n_colors >= AUTO_ACYCLIC_MIN_STAR:
                candidates["acyclic"] = color(pattern, kind="acyclic", order=order)
            n_star = candidates["star"].n_colors if "star" in candidates else None
            n_acyclic = candidates["acyclic"].n_colors if "acyclic" in candidates else None
            if kind != "auto":
                used = kind
            elif (
                n_acyclic is not None
                and n_acyclic < n_star
                and (n_acyclic <= AUTO_ACYCLIC_FRACTION * n_star)
            ):
                used = "acyclic"
            else:
                used = "star"
            chosen = candidates[used]
            colors = as_colors(chosen, n, used)
    timings["coloring"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    lay = decompression.layout(pattern, format)
    positions = schedule = None
    if used == "acyclic":
        schedule = decompression.substitution_schedule(pattern, lay, colors)
    else:
        positions = decompression.star_positions(lay, colors)
    timings["positions"] = time.perf_counter() - t0
    if _hint and sparsity is None and coloring is None:
        lowrank.hint(cost, w, common.n_colors_of(colors))  # dense because of (x.sum())**2?

    return HessianPlan(
        cost=cost,
        wrt=w,
        pattern=pattern,
        coloring=chosen,
        n_colors=common.n_colors_of(colors),
        dense=bool(is_dense),
        format=format,
        method=method,
        colors=colors,
        layout=lay,
        positions=positions,
        kind=used,
        schedule=schedule,
        n_colors_star=n_star,
        n_colors_acyclic=n_acyclic,
        fold=fold,
        lift=lift,
        timings=timings,
    )


def hessian(cost, wrt, **kwargs):
    """The sparse Hessian of scalar ``cost`` with respect to ``wrt`` (flattened in C order), eager.

    Same as ``hessian_plan(cost, wrt, **kwargs).build()``: a symmetric ``pytensor.sparse`` CSR
    variable (both triangles stored), or a list of diagonal blocks when ``wrt`` is a list.
    ``sd.hessian`` (:mod:`sparsediff.plans.api`) adds ``lazy=True``.
    """
    plan = hessian_plan(cost, wrt, **kwargs)
    if isinstance(plan, list):
        return [p.build() for p in plan]
    return plan.build()
