"""Sparse Jacobians: detect → color → choose the mode → build the compressed graph → decompression.

>>> plan = sd.jacobian_plan(F, x)          # pattern, coloring, mode: decided, no AD graph yet
>>> J = plan.build()                       # pytensor SparseVariable (CSR), exact
>>> J = sd.jacobian(F, x)                  # the same in one call

All index work (pattern, coloring, positions of the nonzeros in the compressed matrix) happens
in :func:`jacobian_plan`; :meth:`JacobianPlan.build` only creates the graph: one batched
pushforward (forward mode) or pullback (reverse mode) over the constant seed matrix, folded at
plan time, and one gather into the ``data`` of a ``pytensor.sparse.CSR`` with constant
``indices`` and ``indptr``. Bidirectional mode (a star bicoloring, for dense rows *and* dense
columns) builds both, a batched pushforward over the column colors and a batched pullback over
the row colors, in the same graph, and gathers from their concatenation.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pytensor
import pytensor.gradient
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.graph.basic import Variable
from pytensor.tensor.variable import TensorVariable

from sparsediff import compression, decompression
from sparsediff._heap import freed_memory_reused
from sparsediff._validate import as_expression, as_wrt_list
from sparsediff.coloring import check_coloring, color, lower_bound
from sparsediff.coloring.validity import as_colors, bidirectional_pair
from sparsediff.compression.folding import graph_traffic
from sparsediff.compression.slots import SlotLayout, slot_layout
from sparsediff.decompression import Layout
from sparsediff.plans import buildable
from sparsediff.plans.common import (
    PatternStats,
    building,
    check_format,
    coloring_kind,
    fold_limit,
    is_dense_by_default,
    n_colors_of,
    small_dense,
)
from sparsediff.plans.keep_inputs import keep_inputs, user_inputs
from sparsediff.plans.measure import ProductCost, measure_reverse_cost
from sparsediff.sparsity import jacobian_sparsity
from sparsediff.sparsity.pattern import as_pattern

__all__ = [
    "AUTO_BIDIRECTIONAL_MIN_COLORS",
    "MAX_COMPRESSED_SIZE",
    "REVERSE_COST",
    "JacobianPlan",
    "jacobian",
    "jacobian_plan",
]

Mode = Literal["auto", "forward", "reverse", "bidirectional", "dense"]

#: Largest compressed matrix (n_colors × rows or columns, in numbers) ``build`` creates.
MAX_COMPRESSED_SIZE = 400_000_000

#: Cost of one VJP relative to one JVP, used by ``auto`` to weigh bidirectional products (and
#: to compare a bicoloring with reverse mode). Measured with the C backend (``mode="CVM"``):
#: time of one sparse Jacobian evaluation divided by its number of products, reverse over
#: forward, same number of colors: 1-D finite differences (n = 10⁵, 3 colors) 1.67, 2-D
#: Brusselator (n = 5·10⁴, 10 colors) 2.14, 2-D Bratu (n = 10⁵, 5 colors) 0.62 (its pullback
#: folds to fewer Ops than its pushforward). We use the median, 1.7. A VJP pulls back through
#: the graph, which usually costs more than one forward sweep.
REVERSE_COST = 1.7
#: ``auto`` tries a star bicoloring only when both directions need more than this many colors:
#: below, a bicoloring (at least one JVP and one VJP, usually more) cannot pay for its extra
#: coloring time (on banded patterns it never beats the better direction).
AUTO_BIDIRECTIONAL_MIN_COLORS = 8
#: The spread of the measured VJP/JVP ratios behind :data:`REVERSE_COST`: when ``auto``'s
#: choice between a bicoloring and one direction is the same at both ends, no ratio in between
#: can change it (the costs are linear in the ratio) and nothing is measured; otherwise the
#: ratio is measured on the graph (:mod:`sparsediff.plans.measure`).
REVERSE_COST_RANGE = (0.6, 2.1)

_MODES = ("auto", "forward", "reverse", "bidirectional", "dense")


def product_cost(n_jvps: int, n_vjps: int, reverse_cost: float = REVERSE_COST) -> float:
    """What ``auto`` minimizes: JVPs plus ``reverse_cost`` times VJPs."""
    return n_jvps + reverse_cost * n_vjps


def _auto_direction(n_fwd, n_rev, bi, reverse_cost: float | None) -> str:
    """``auto``'s mode: the direction with fewer colors (forward on a tie), or the bicoloring
    ``bi`` when its JVPs + ``reverse_cost`` × VJPs cost less than that direction."""
    if n_fwd is None or n_rev is None:
        mode = "reverse" if n_fwd is None else "forward"
    else:
        mode = "forward" if n_fwd <= n_rev else "reverse"
    if bi is None:
        return mode
    uni = n_fwd if mode == "forward" else reverse_cost * n_rev
    if product_cost(bi.n_column_colors, bi.n_row_colors, reverse_cost) < uni:
        return "bidirectional"
    return mode


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class JacobianPlan(PatternStats):
    """What :func:`jacobian_plan` decided, and everything :meth:`build` needs.

    ``pattern`` is the Jacobian's sparsity (a list of blocks when ``wrt`` was a list);
    ``coloring`` the column (forward), row (reverse) or bidirectional coloring, ``None`` when
    ``dense``; ``n_colors`` the number of JVPs or VJPs one evaluation costs (bidirectional: JVPs
    plus VJPs, see ``n_jvps`` and ``n_vjps``). A plan never changes once made; ``timings``
    records how long each phase (and the last ``build``) took.
    """

    expression: TensorVariable
    wrt: list[TensorVariable]
    wrt_is_list: bool
    pattern: Any  #: csr_array[bool] (expression.size, wrt.size), or a list of them
    coloring: Any  #: Coloring (colors, n_colors, kind), or None when dense
    mode: str  #: "forward", "reverse", "bidirectional" or "dense" (``pytensor.gradient.jacobian``)
    n_colors: int
    dense: bool  #: identity seeds: the dense Jacobian computed by vectorized JVPs/VJPs
    format: str
    colors: np.ndarray  #: colors per column (forward, bidirectional) or per row (reverse)
    layouts: list[Layout]  #: storage order of each block's nonzeros
    positions: list[
        np.ndarray
    ]  #: for each block, positions of its nonzeros in the compressed matrix
    full_pattern: sp.csr_array  #: all blocks side by side
    n_colors_forward: int | None = None  #: colors a column coloring needs (if computed)
    n_colors_reverse: int | None = None  #: colors a row coloring needs (if computed)
    n_products_bidirectional: int | None = None  #: products a bicoloring needs (if computed)
    row_colors: np.ndarray | None = None  #: bidirectional: per row, 0 = in no VJP
    use_op_pushforward: bool | str = "auto"
    requested_mode: str = "auto"
    order: Any = "auto"
    fold: bool = True
    lift: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    #: modes ``auto`` could not choose, with the reason (an Op without a JVP or VJP)
    excluded: dict[str, str] = field(default_factory=dict)
    #: VJP/JVP cost ratio ``auto`` weighed the products with (when it compared a bicoloring)
    reverse_cost: float | None = None
    #: the plan-time measurement behind ``reverse_cost``, when the choice was close
    measured: ProductCost | None = None
    #: why ``auto`` chose ``mode="dense"`` (a small system, see ``plans.common.small_dense``)
    dense_reason: str | None = None

    @property
    def _full(self) -> sp.csr_array:
        return self.full_pattern

    @property
    def n_jvps(self) -> int:
        """Jacobian-vector products per evaluation."""
        if self.mode == "bidirectional":
            return int(self.colors.max(initial=0))
        return self.n_colors if self.mode == "forward" else 0

    @property
    def n_vjps(self) -> int:
        """Vector-Jacobian products per evaluation."""
        if self.mode == "bidirectional":
            return int(self.row_colors.max(initial=0))
        return self.n_colors if self.mode in ("reverse", "dense") else 0

    @property
    def lower_bound(self) -> int | None:
        """No coloring of this plan's kind can use fewer colors: the most nonzeros in a row
        (forward: a column coloring) or column (reverse: a row coloring), see
        :func:`sparsediff.coloring.lower_bound`; ``None`` for bidirectional and dense plans
        (no bound on a bicoloring's products is known but the trivial 1)."""
        if self.dense or self.mode == "bidirectional":
            return None
        if self.full_pattern.nnz == 0:
            return 0
        return lower_bound(self.full_pattern, kind="column" if self.mode == "forward" else "row")

    def __repr__(self) -> str:
        m, n = self.shape
        how = (
            f"dense ({self.n_colors} identity seeds, {self.mode})"
            if self.dense
            else f"{self.mode}, {self.n_colors} colors (lower bound {self.lower_bound})"
        )
        if self.mode == "bidirectional":
            how = f"bidirectional, {self.n_jvps} JVPs + {self.n_vjps} VJPs"
        if self.mode == "dense":
            how = (
                f"dense (pytensor.gradient.jacobian, {self.n_vjps} VJPs, gathered into the pattern"
            )
            how += f"; {self.dense_reason})" if self.dense_reason else ")"
        other = []
        if self.n_colors_forward is not None and self.mode != "forward":
            other.append(f"forward would need {self.n_colors_forward}")
        if self.n_colors_reverse is not None and self.mode != "reverse":
            other.append(f"reverse would need {self.n_colors_reverse}")
        if self.n_products_bidirectional is not None and self.mode != "bidirectional":
            other.append(f"bidirectional would need {self.n_products_bidirectional}")
        other.extend(f"{m} excluded: {why}" for m, why in self.excluded.items())
        if self.measured is not None:
            ratio = self.measured.ratio
            other.append(
                f"VJP measured at {ratio:.2g} JVPs"
                if ratio is not None
                else f"VJP cost not measured ({self.measured.reason}), taken as {REVERSE_COST}"
            )
        extra = f"; {', '.join(other)}" if other else ""
        blocks = f", {len(self.wrt)} wrt blocks" if self.wrt_is_list else ""
        return (
            f"JacobianPlan({m}×{n}{blocks}, nnz={self.nnz}, density={self.density:.3g}, "
            f"{how}{extra}, format={self.format})"
        )

    # ----------------------------------------------------------------------------------------

    def compressed(self) -> list[Variable]:
        """The compressed graph(s): ``[B]`` (forward, ``(n_colors, m)``) or one ``Bᵀ`` block per
        ``wrt`` (reverse, ``(n_colors, w.size)``), folded when ``fold``; bidirectional: one
        vector, ``concat(B.ravel(), Bᵀ.ravel())`` (``B``: a JVP per column color, ``Bᵀ``: a VJP
        per row color, all ``wrt`` side by side)."""
        if self.mode == "bidirectional":
            return [self._compressed_bidirectional()]
        if self.mode == "dense":
            return self._compressed_dense()
        seeds = compression.seed_matrix(self.colors, self.n_colors, dtype=self.expression.dtype)
        (expression,), wrt = compression.isolate_inner_graphs([self.expression], self.wrt)
        if self.mode == "forward":
            outs = [
                compression.compressed_pushforward(
                    expression, wrt, seeds, use_op_pushforward=self.use_op_pushforward
                )
            ]
        else:
            outs = compression.compressed_pullback(expression, wrt, seeds)
        if self.fold:
            m, n = self.shape
            outs = compression.fold_constants(outs, limit=fold_limit(self.n_colors, max(m, n)))
        return outs

    def _compressed_dense(self) -> list[Variable]:
        """One dense ``(m, w.size)`` block per ``wrt``: ``pytensor.gradient.jacobian`` (its
        vectorized form: one batched pullback over the rows), nothing folded."""
        (expression,), wrt = compression.isolate_inner_graphs([self.expression], self.wrt)
        flat = expression.ravel()
        blocks = pytensor.gradient.jacobian(
            flat, list(wrt), vectorize=True, disconnected_inputs="ignore"
        )
        m = self.shape[0]
        return [
            pt.as_tensor_variable(b).astype(flat.dtype).reshape((m, int(np.prod(w.type.shape))))
            for b, w in zip(blocks, wrt, strict=True)
        ]

    def _compressed_bidirectional(self) -> Variable:
        dtype = self.expression.dtype
        col_seeds = compression.neutral_seed_matrix(self.colors, dtype=dtype)
        row_seeds = compression.neutral_seed_matrix(self.row_colors, dtype=dtype)
        (expression,), wrt = compression.isolate_inner_graphs([self.expression], self.wrt)
        outs = []
        if col_seeds.shape[0]:
            outs.append(
                compression.compressed_pushforward(
                    expression, wrt, col_seeds, use_op_pushforward=self.use_op_pushforward
                )
            )
        if row_seeds.shape[0]:
            outs.extend(compression.compressed_pullback(expression, wrt, row_seeds))
        if self.fold:
            m, n = self.shape
            outs = compression.fold_constants(outs, limit=fold_limit(self.n_colors, max(m, n)))
        pieces = []
        if col_seeds.shape[0]:
            pieces.append(outs.pop(0).ravel())
        if row_seeds.shape[0]:
            rev = outs[0] if len(outs) == 1 else pt.concatenate(outs, axis=1)
            pieces.append(rev.ravel())
        return pieces[0] if len(pieces) == 1 else pt.concatenate(pieces)

    def build(self, max_compressed_size: int = MAX_COMPRESSED_SIZE):
        """The sparse Jacobian, a ``pytensor.sparse`` variable (a list when ``wrt`` was a list).

        Raises ``MemoryError`` when the compressed matrix (``n_colors`` × the longer side)
        would exceed ``max_compressed_size`` elements, e.g. a Jacobian with one dense row *and*
        one dense column in forward or reverse mode (use ``mode="bidirectional"``).
        """
        m, n = self.shape
        if self.mode == "bidirectional":
            size = self.n_jvps * m + self.n_vjps * n
        else:
            size = self.n_colors * (m if self.mode == "forward" else n)
        if size > max_compressed_size:
            hint = (
                "; a dense row and a dense column at once need mode='bidirectional'"
                if self.mode != "bidirectional"
                else ""
            )
            raise MemoryError(
                f"{self.mode} mode needs {self.n_colors} colors for this {m}×{n} Jacobian: the "
                f"compressed matrix would hold {size} numbers (limit {max_compressed_size}). "
                f"forward needs {self.n_colors_forward}, reverse {self.n_colors_reverse} colors"
                + hint
            )
        with building():
            return self._build()

    def _build(self):
        t0 = time.perf_counter()
        dtype = self.expression.dtype
        if self.nnz == 0:
            datas = [pt.zeros((0,), dtype=dtype) for _ in self.layouts]
        else:
            try:
                outs = self.compressed()
            except Exception as err:
                if self.mode != "forward" or self.requested_mode != "auto":
                    raise NotImplementedError(
                        f"{self.mode} mode cannot differentiate this graph ({err}); "
                        + ("try mode='reverse'" if self.mode != "reverse" else "")
                    ) from err
                warnings.warn(
                    f"forward mode cannot differentiate this graph ({err}); using reverse mode",
                    stacklevel=3,
                )
                return self.reversed()._build()
            slotted: list = []  # the slot layout, made once for all blocks when first asked

            def slot_alternative(block: int):
                if self.mode != "forward":
                    return None
                if not slotted:
                    live = [
                        p for p, lay in zip(self.positions, self.layouts, strict=True) if lay.nnz
                    ]
                    slotted.append(slot_layout(outs[0], live))
                    slotted.append(
                        [b for b, lay in enumerate(self.layouts) if lay.nnz]  # live block order
                    )
                if slotted[0] is None:
                    return None
                return slotted[0], slotted[0].positions[slotted[1].index(block)]

            datas = []
            for b, (lay, pos) in enumerate(zip(self.layouts, self.positions, strict=True)):
                source = outs[0] if self.mode in ("forward", "bidirectional") else outs[b]
                if lay.nnz == 0:
                    datas.append(pt.zeros((0,), dtype=dtype))
                else:
                    datas.append(
                        _decompress(source, pos, self.lift, lambda b=b: slot_alternative(b))
                    )
        kept = user_inputs(self.expression, self.wrt)  # constant derivatives: see keep_inputs
        datas = [keep_inputs(d, kept) for d in datas]
        results = [
            decompression.assemble(d, lay) for d, lay in zip(datas, self.layouts, strict=True)
        ]
        self.timings["build"] = time.perf_counter() - t0
        return results if self.wrt_is_list else results[0]

    def reversed(self) -> JacobianPlan:
        """A copy of this plan in reverse mode (row coloring, batched VJPs); ``self`` is kept."""
        m, _ = self.shape
        if self.dense:
            colors = np.arange(m, dtype=np.int64)
            coloring = None
        else:
            coloring = color(self.full_pattern, kind="row", order=self.order)
            colors = as_colors(coloring, m, "row")
        return dataclasses.replace(
            self,
            mode="reverse",
            coloring=coloring,
            colors=colors,
            n_colors=n_colors_of(colors),
            n_colors_reverse=None if self.dense else int(coloring.n_colors),
            positions=[decompression.reverse_positions(lay, colors) for lay in self.layouts],
            row_colors=None,
            timings=dict(self.timings),
        )


def _split_blocks(pattern: sp.csr_array, sizes: list[int]) -> list[sp.csr_array]:
    pc = pattern.tocsc()
    blocks = []
    offset = 0
    for size in sizes:
        blocks.append(as_pattern(pc[:, offset : offset + size], (pattern.shape[0], size), "block"))
        offset += size
    return blocks


def _detect(expression, wrt_list, is_list, disconnected_inputs="raise"):
    wrt = wrt_list if is_list else wrt_list[0]
    result = jacobian_sparsity(expression, wrt, disconnected_inputs=disconnected_inputs)
    return list(result) if is_list else [result]


@freed_memory_reused()  # detection, coloring and positions: sparsediff/_heap.py
def jacobian_plan(
    expression,
    wrt,
    mode: Mode = "auto",
    *,
    sparsity=None,
    coloring=None,
    order="auto",
    format: str = "csr",
    dense: bool | None = None,
    use_op_pushforward: bool | Literal["auto"] = "auto",
    fold: bool = True,
    lift: bool = True,
    disconnected_inputs: str = "raise",
    reverse_cost: float | Literal["auto"] = "auto",
) -> JacobianPlan:
    """Detect the sparsity of ``d expression / d wrt``, color it and choose a mode.

    Parameters
    ----------
    expression
        A float tensor of any shape; its Jacobian rows are its entries in C order.
    wrt
        A float tensor with a static shape, or a list of them (then ``build`` gives a list of
        blocks, like ``pytensor.gradient.jacobian``).
    mode
        ``"forward"`` (column coloring, batched JVPs), ``"reverse"`` (row coloring, batched
        VJPs), ``"bidirectional"`` (star bicoloring: JVPs for the column colors and VJPs for
        the row colors in one graph; for dense rows *and* columns) or ``"auto"``: forward or
        reverse, whichever has fewer colors (forward on a tie); when both need more than
        :data:`AUTO_BIDIRECTIONAL_MIN_COLORS`, a bicoloring too, chosen if its JVPs plus
        ``reverse_cost`` × VJPs cost less than the chosen direction (VJPs weighted too).
        ``"dense"``: ``pytensor.gradient.jacobian`` (vectorized, one VJP per row, nothing
        colored or folded) gathered into the detected pattern — the same CSR result.
        ``"auto"`` takes it for small systems: at most
        ``plans.common.SMALL_DENSE_MAX_ENTRIES`` entries for the backend of
        ``pytensor.config.mode`` (measured: 200² with C, never with Numba; README "Small
        systems"); the repr says so. No explicit mode, ``coloring`` or ``dense=False`` falls
        back.
    sparsity
        A known pattern (scipy.sparse or boolean array of shape ``(expression.size, wrt.size)``,
        or a list of blocks for a list ``wrt``): detection is skipped. It must contain every
        nonzero — a missing one is a wrong result.
    coloring
        A known coloring (a ``Coloring`` or an integer array of colors): per column for
        forward mode, per row for reverse mode; for bidirectional mode a bidirectional
        ``Coloring`` or a pair ``(column colors, row colors)``. With ``mode="auto"`` its
        ``kind`` decides.
    order
        Vertex order(s) passed to :func:`sparsediff.coloring.color`.
    format
        ``"csr"`` (default) or ``"csc"``.
    dense
        Force (``True``) or forbid (``False``) the dense path (identity seeds); ``None`` lets the
        plan decide: tiny (at most ``plans.common.DENSE_MAX_SIZE`` rows or columns) or dense
        (density at least ``DENSE_DENSITY``) Jacobians are computed densely. The result has the
        same sparse type.
    use_op_pushforward, fold, lift
        Forward-mode JVP implementation (``"auto"``: the Ops' forward rules where all have one),
        plan-time constant folding of the compressed graph, lifting of the decompression gather
        through elementwise Ops. The defaults are the fast choices.
    disconnected_inputs
        What a ``wrt`` that is not part of the graph gets: ``"raise"`` (the default, as in
        ``pytensor.gradient.jacobian``) raises ``pytensor.gradient.DisconnectedInputError``;
        ``"warn"`` gives an all-zero block with a warning, ``"ignore"`` without one.
    reverse_cost
        What one VJP costs in JVPs, for ``auto``'s comparison of a bicoloring with one
        direction. ``"auto"`` (the default): :data:`REVERSE_COST`, unless the choice would
        differ at the two ends of :data:`REVERSE_COST_RANGE` (the spread measured across
        problems) — then one JVP and one VJP of this graph are compiled with ``FAST_COMPILE``
        and timed (CPU time, interleaved, medians; under a second for graphs of a few thousand
        nodes; see :mod:`sparsediff.plans.measure`) and their ratio decides; the plan's repr
        says "VJP measured at r JVPs". Clearly separated choices are never measured, so they
        do not depend on timing. A number: that ratio, never measured (a deterministic
        choice, e.g. for tests).
    """
    timings: dict[str, float] = {}
    requested_mode = mode
    wrt_list, is_list = as_wrt_list(wrt)  # first: a wrt without static shape is the cause
    expression = as_expression(expression)
    if mode not in _MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(map(repr, _MODES))}")
    check_format(format)
    if use_op_pushforward not in (True, False, "auto"):
        raise ValueError("use_op_pushforward must be True, False or 'auto'")
    if not (
        reverse_cost == "auto"
        or (
            isinstance(reverse_cost, int | float)
            and not isinstance(reverse_cost, bool)
            and np.isfinite(reverse_cost)
            and reverse_cost > 0
        )
    ):
        raise ValueError(f"reverse_cost must be 'auto' or a positive number, got {reverse_cost!r}")

    m = int(np.prod(expression.type.shape, dtype=np.int64))
    sizes = [int(np.prod(w.type.shape, dtype=np.int64)) for w in wrt_list]
    n = sum(sizes)

    # 1. sparsity
    t0 = time.perf_counter()
    if sparsity is None:
        blocks = _detect(expression, wrt_list, is_list, disconnected_inputs)
        blocks = [
            as_pattern(b, (m, s), "detected pattern") for b, s in zip(blocks, sizes, strict=True)
        ]
    elif is_list and isinstance(sparsity, list | tuple):
        if len(sparsity) != len(wrt_list):
            raise ValueError(f"sparsity has {len(sparsity)} blocks but wrt has {len(wrt_list)}")
        blocks = [
            as_pattern(b, (m, s), f"sparsity[{i}]")
            for i, (b, s) in enumerate(zip(sparsity, sizes, strict=True))
        ]
    else:
        full = as_pattern(sparsity, (m, n), "sparsity")
        blocks = _split_blocks(full, sizes) if is_list else [full]
    full = blocks[0] if len(blocks) == 1 else sp.csr_array(sp.hstack(blocks, format="csr"))
    full = as_pattern(full, (m, n), "pattern")
    timings["detection" if sparsity is None else "pattern"] = time.perf_counter() - t0

    # 2. which products build, then coloring and mode
    t0 = time.perf_counter()
    able = _probe(expression, wrt_list, mode, use_op_pushforward, full.nnz)
    if mode != "auto":
        able.require("reverse" if mode == "dense" else mode)
    elif not (able.allows("forward") or able.allows("reverse")):
        raise buildable.ModeNotBuildable(
            "no mode can be built for this graph: "
            + "; ".join(f"{m}: {why}" for m, why in able.excluded().items())
        )
    n_fwd = n_rev = n_bi = None
    row_colors = None
    ratio: float | None = None
    measured: ProductCost | None = None
    dense_reason = None
    if mode == "dense" and (coloring is not None or dense is False):
        raise ValueError(
            "mode='dense' computes pytensor.gradient.jacobian: it takes no coloring and "
            "no dense=False"
        )
    if (
        mode == "auto"
        and coloring is None
        and dense is None
        and full.nnz
        and able.allows("reverse")
        and not is_dense_by_default(m, n, full.nnz)  # tiny or dense: identity seeds, below
    ):
        dense_reason = small_dense(m, n, full.nnz)
        if dense_reason is not None:
            mode = "dense"
    if mode == "dense":
        colors = np.arange(m, dtype=np.int64)
        chosen = None
        is_dense = True
    elif coloring is not None:
        if dense:
            raise ValueError("dense=True and a coloring were both given")
        kind = coloring_kind(coloring)
        if kind is None and isinstance(coloring, tuple | list) and len(coloring) == 2:
            kind = "bidirectional" if mode in ("auto", "bidirectional") else None
        if mode == "auto":
            if kind in ("column", "row", "bidirectional"):
                mode = {"column": "forward", "row": "reverse"}.get(kind, kind)
                able.require(mode)
            else:
                raise ValueError(
                    "with mode='auto', coloring must say its kind ('column', 'row' or "
                    "'bidirectional'); pass mode='forward' or mode='reverse' with a plain array "
                    "of colors, or mode='bidirectional' with a pair (column colors, row colors)"
                )
        need = {"forward": "column", "reverse": "row"}.get(mode, mode)
        if kind is not None and kind != need:
            raise ValueError(f"mode {mode!r} needs a {need} coloring, got kind {kind!r}")
        if mode == "bidirectional":
            colors, row_colors = bidirectional_pair(coloring, m, n)
            check_coloring(full, (colors, row_colors), kind="bidirectional")
        else:
            colors = as_colors(coloring, n if mode == "forward" else m, need)
            check_coloring(full, colors, kind=need)
        is_dense = False
        chosen = coloring
    else:
        if dense is None:
            is_dense = mode != "bidirectional" and is_dense_by_default(m, n, full.nnz)
        else:
            is_dense = bool(dense)
            if is_dense and mode == "bidirectional":
                raise ValueError(
                    "dense=True computes the Jacobian with identity seeds in one direction; "
                    "use mode='forward' or 'reverse' (or 'auto') with it, not 'bidirectional'"
                )
        if is_dense:
            if mode == "auto":
                mode = "forward" if n <= m else "reverse"
                if not able.allows(mode):
                    mode = "reverse" if mode == "forward" else "forward"
            colors = np.arange(n if mode == "forward" else m, dtype=np.int64)
            chosen = None
        else:
            fwd = rev = bi = None
            if mode == "forward" or (mode == "auto" and able.allows("forward")):
                fwd = color(full, kind="column", order=order)
                n_fwd = int(fwd.n_colors)
            if mode == "reverse" or (
                mode == "auto" and able.allows("reverse") and not _forward_wins(full, n_fwd, able)
            ):
                rev = _row_coloring(full, fwd, order)
                n_rev = int(rev.n_colors)
            if mode == "bidirectional" or (
                mode == "auto"
                and able.allows("bidirectional")
                and min(c for c in (n_fwd, n_rev) if c is not None) > AUTO_BIDIRECTIONAL_MIN_COLORS
            ):
                bi = color(full, kind="bidirectional", order=order)
                n_bi = int(bi.n_colors)
            if mode == "auto":
                if bi is not None and _dominated(bi, n_fwd, n_rev):
                    bi = None  # n_bi is still reported
                if bi is not None:
                    ratio, measured = _reverse_cost(
                        reverse_cost, n_fwd, n_rev, bi, expression, wrt_list, use_op_pushforward
                    )
                    timings["measure"] = measured.seconds if measured is not None else 0.0
                mode = _auto_direction(n_fwd, n_rev, bi, ratio)
            chosen = {"forward": fwd, "reverse": rev, "bidirectional": bi}[mode]
            if mode == "bidirectional":
                colors, row_colors = bidirectional_pair(chosen, m, n)
            else:
                colors = as_colors(
                    chosen, n if mode == "forward" else m, "column" if mode == "forward" else "row"
                )
    timings["coloring"] = time.perf_counter() - t0

    # 3. decompression positions, per block (validates the coloring)
    t0 = time.perf_counter()
    layouts, positions = [], []
    full_layout = decompression.layout(full, "csr") if mode == "bidirectional" else None
    offset = 0
    for block, size in zip(blocks, sizes, strict=True):
        lay = decompression.layout(block, format)
        if mode == "forward":
            pos = decompression.forward_positions(lay, colors[offset : offset + size])
        elif mode in ("reverse", "dense"):
            pos = decompression.reverse_positions(lay, colors)
        else:
            pos = decompression.bidirectional_positions(
                lay, colors, row_colors, full=full_layout, col_offset=offset
            )
        layouts.append(lay)
        positions.append(pos)
        offset += size
    if mode == "forward" and not is_dense and len(blocks) > 1:
        # Columns of different blocks share the seed matrix: check across blocks too.
        decompression.forward_positions(decompression.layout(full, "csr"), colors)
    timings["positions"] = time.perf_counter() - t0
    n_products = n_colors_of(colors)
    if mode == "bidirectional":
        n_products = int(colors.max(initial=0)) + int(row_colors.max(initial=0))

    return JacobianPlan(
        expression=expression,
        wrt=wrt_list,
        wrt_is_list=is_list,
        pattern=blocks if is_list else blocks[0],
        coloring=chosen,
        mode=mode,
        n_colors=n_products,
        dense=is_dense,
        format=format,
        colors=colors,
        layouts=layouts,
        positions=positions,
        full_pattern=full,
        n_colors_forward=n_fwd,
        n_colors_reverse=n_rev,
        n_products_bidirectional=n_bi,
        row_colors=row_colors,
        use_op_pushforward=use_op_pushforward,
        requested_mode=requested_mode,
        order=order,
        fold=fold,
        lift=lift,
        timings=timings,
        excluded=able.excluded() if requested_mode == "auto" else {},
        reverse_cost=ratio,
        measured=measured,
        dense_reason=dense_reason,
    )


#: The plain gather replaces the lifted one when its graph moves at most this fraction of the
#: lifted one's data per call (:func:`~sparsediff.compression.folding.graph_traffic`). Measured
#: (C backend): the driven cavity n = 4·10⁴, traffic ratio 0.33 (0.28 in slot layout), plain
#: 1.7× faster than lifted; ``rectangular`` n = 10⁵, ratio 0.78, lifted 1.25× faster; 2-D Bratu,
#: fd1d, the Brusselator: ratio 1.3–1.7, lifted 1.3–1.9× faster.
PLAIN_GATHER_MARGIN = 0.5


#: Above this many nonzeros the lifted gather's traffic is first estimated from the lifts of two
#: random samples of :data:`LIFT_SAMPLE` and ``2 ×`` that many positions (its plan-time work and
#: memory grow with the nonzeros times the graph's depth: the driven cavity at n = 10⁶ spent
#: most of its 46–48 s of build and 9.6 GB peak in a lift only built to be compared).
LIFT_ESTIMATE_MIN_NNZ = 1 << 15
LIFT_SAMPLE = 1 << 12
#: The estimate decides alone only when it clears the margin by this factor: random samples
#: break the contiguous runs the full lift gathers by slices, so they overestimate the lifted
#: traffic (measured −0.3 to +15 % on the cavity, Bratu and fd1d); closer calls build the lift.
LIFT_ESTIMATE_TOLERANCE = 1.25


def _lifted_traffic_estimate(source: Variable, positions: np.ndarray) -> float:
    """The lifted gather's :func:`graph_traffic`, extrapolated linearly from the lifts of two
    nested random samples of the positions (its traffic is a constant, the leaves it reads in
    full, plus a part proportional to the positions)."""
    small, large = LIFT_SAMPLE, 2 * LIFT_SAMPLE
    pick = np.random.default_rng(0).choice(positions.size, size=large, replace=False)
    t_small, t_large = (
        graph_traffic([decompression.gather(source, positions[np.sort(pick[:k])], lift=True)])
        for k in (small, large)
    )
    return t_large + (t_large - t_small) / (large - small) * (positions.size - large)


def _decompress(
    source: Variable,
    positions: np.ndarray,
    lift: bool,
    slot_alternative: Callable[[], tuple[SlotLayout, np.ndarray] | None] | None = None,
) -> Variable:
    """The nonzeros gathered from the compressed matrix: lifted through its arithmetic, unless
    the plain gather moves clearly less data.

    Lifting computes only the picked entries, but it splits them into the pieces where each
    operand varies and scatters the pieces together. Where almost every entry varies and the
    pieces overlap (the driven cavity's 13-point stencil: four convective terms on different
    but overlapping slots of each row), the scatters, joins and zero fills cost more than the
    compressed matrix computed in one fused pass plus one gather. Only then is the slot layout
    (:mod:`sparsediff.compression.slots`: the same pass with one row of constants instead of
    ``n_colors × m`` of each) tried, and taken when it moves less still. Both are considered
    only where the slot layout applies (the compressed matrix elementwise in constants and
    values that do not depend on the color). With many nonzeros the lift is built only when
    an estimate of its traffic (:func:`_lifted_traffic_estimate`) does not already rule it out.
    """
    if not lift:
        return decompression.gather(source, positions, lift=False)
    alternative = slot_alternative() if slot_alternative is not None else None
    if alternative is None:
        # Traffic alone misjudges the lifted graph's pieces: the NK model's (T = 100) plain
        # gather moves 0.32× the lifted one's data, yet took 0.14 against 0.087 ms per call
        # and 25.0 against 13.7 s CPU on a fresh Numba cache's first call (bench_latency).
        return decompression.gather(source, positions, lift=True)
    layout, slot_positions = alternative
    plain = decompression.gather(source, positions, lift=False)
    slotted = decompression.gather(layout.matrix, slot_positions, lift=False)
    traffic = {plain: graph_traffic([plain]), slotted: graph_traffic([slotted])}
    best = min((plain, slotted), key=traffic.__getitem__)
    best_traffic = traffic[best]
    if best is slotted and layout.fused is not None:
        # the affine form of the regular rows (compression.slots), weighed as the elementwise
        # pass it replaces (it moves less than that pass and its gather); built only if taken
        best = layout.fused(slot_positions)
    if positions.size > LIFT_ESTIMATE_MIN_NNZ:
        estimate = _lifted_traffic_estimate(source, positions)
        if best_traffic * LIFT_ESTIMATE_TOLERANCE <= PLAIN_GATHER_MARGIN * estimate:
            return best
    lifted = decompression.gather(source, positions, lift=True)
    return best if best_traffic <= PLAIN_GATHER_MARGIN * graph_traffic([lifted]) else lifted


def _forward_wins(full: sp.csr_array, n_fwd: int | None, able) -> bool:
    """Whether ``auto`` can skip the row coloring: forward needs no more colors than the row
    lower bound (the most nonzeros in a column), so reverse cannot win (forward wins ties),
    and a bicoloring will not be tried (few colors, or not buildable). Saves the second
    coloring, half the coloring time of a symmetric stencil (2-D Bratu at n = 10⁶: 0.6 s)."""
    if n_fwd is None or (n_fwd > AUTO_BIDIRECTIONAL_MIN_COLORS and able.allows("bidirectional")):
        return False
    if full.nnz == 0:
        return True
    return n_fwd <= int(np.bincount(full.indices, minlength=full.shape[1]).max())


def _row_coloring(full: sp.csr_array, fwd, order):
    """The row coloring of ``full``: the column coloring ``fwd`` itself (as kind ``"row"``)
    when the pattern is structurally symmetric — the rows of P are the columns of Pᵀ = P, the
    same structure and order give the same colors — else a second coloring (the driven cavity
    at n = 10⁶: 2.3 s saved; checking symmetry costs one transpose)."""
    if fwd is not None and full.shape[0] == full.shape[1] and _structurally_symmetric(full):
        return dataclasses.replace(fwd, kind="row")
    return color(full, kind="row", order=order)


def _structurally_symmetric(full: sp.csr_array) -> bool:
    """Whether the canonical CSR pattern ``full`` equals its transpose (row lengths first)."""
    lengths = np.diff(full.indptr)
    if not np.array_equal(lengths, np.bincount(full.indices, minlength=full.shape[1])):
        return False
    t = full.tocsc()  # the transpose's CSR arrays, rows sorted (a counting sort)
    return bool(np.array_equal(t.indptr, full.indptr) and np.array_equal(t.indices, full.indices))


def _dominated(bi, n_fwd, n_rev) -> bool:
    """Whether the bicoloring ``bi`` costs at least as much as one direction at every VJP/JVP
    ratio: as many JVPs as forward mode's colors, or as many VJPs as reverse mode's (the driven
    cavity's bicoloring is 19 VJPs against 13 colors either way). ``auto`` then keeps its
    choice between the directions, and measures nothing (3–9 s of CPU there at n = 10⁴–4·10⁴)."""
    return (n_fwd is not None and bi.n_column_colors >= n_fwd) or (
        n_rev is not None and bi.n_row_colors >= n_rev
    )


def _reverse_cost(reverse_cost, n_fwd, n_rev, bi, expression, wrt_list, use_op_pushforward):
    """The VJP/JVP ratio ``auto`` uses, and the measurement behind it (``None``: none made)."""
    if reverse_cost != "auto":
        return float(reverse_cost), None
    lo, hi = (_auto_direction(n_fwd, n_rev, bi, r) for r in REVERSE_COST_RANGE)
    if lo == hi:
        return REVERSE_COST, None
    measured = measure_reverse_cost(expression, wrt_list, use_op_pushforward)
    ratio = measured.ratio
    return (REVERSE_COST if ratio is None else ratio), measured


def _probe(expression, wrt_list, mode, use_op_pushforward, nnz) -> buildable.Buildability:
    """Which directions build (see :mod:`sparsediff.buildable`): only those ``mode`` may use;
    forward mode is probed only with the default ``use_op_pushforward="auto"`` (the other
    settings are the user's explicit choice of route), nothing when the Jacobian is zero."""
    if nnz == 0:
        return buildable.Buildability(forward=None, reverse=None)
    directions = {
        "auto": ("forward", "reverse"),
        "forward": ("forward",),
        "reverse": ("reverse",),
        "bidirectional": ("forward", "reverse"),
        "dense": ("reverse",),
    }[mode]
    if use_op_pushforward != "auto":
        directions = tuple(d for d in directions if d != "forward")
    return buildable.probe(expression, wrt_list, directions)


def jacobian(expression, wrt, mode: Mode = "auto", **kwargs):
    """The sparse Jacobian of ``expression`` (flattened in C order) with respect to ``wrt``, eager.

    Same as ``jacobian_plan(expression, wrt, mode, **kwargs).build()``: a ``pytensor.sparse``
    CSR variable (CSC with ``format="csc"``) of shape ``(expression.size, wrt.size)``, or a list
    of them when ``wrt`` is a list. ``sd.jacobian`` (:mod:`sparsediff.plans.api`) adds
    ``lazy=True``.
    """
    return jacobian_plan(expression, wrt, mode, **kwargs).build()
