"""The forward compressed matrix in *slot* layout: row by row, the colors in the order of its
nonzeros, so that stencil rows share their constants.

``B[c, k]`` (forward mode, ``(n_colors, m)``) holds ``J[k, j]`` for the column ``j`` of row
``k`` that has color ``c``. After folding, ``B`` is often an elementwise expression of
constants of shape ``(n_colors, m)`` (products of the seeds with the linear parts of the
function) and of *color-invariant* values of shape ``(1, m)`` (the function's nodal values).
Permuting the colors of every row ``k`` by ``σ_k`` leaves the color-invariant operands as they
are and permutes only the constants, at plan time: ``B'[k, r] = B[σ_k(r), k]`` is the same
elementwise expression with constants ``K'[k, r] = K[σ_k(r), k]``. With ``σ_k`` the colors of
row ``k``'s nonzeros in their order, every interior row of a stencil has the same ``K'`` row
(its r-th nonzero sits at the same offset and the stencil's coefficient there is the same), so
the constants shrink to one ``(1, n_colors)`` row, plus the few irregular rows (near a
boundary) computed apart and written into place. The per-call work is then one fused
elementwise pass over ``m × n_colors`` values with broadcast operands and one gather that is
nearly the identity (CSR order), instead of reading ``n_colors × m`` constants per operand.
Where that pass is affine in the color-invariant operands (the driven cavity: its convective
term is bilinear in ψ), it is folded into a coefficient matrix (the affine form
``[1, v_1, …] @ A``) and evaluated by one kernel that writes each nonzero straight into the
CSR data (:meth:`_Tree.affine_form`, :mod:`sparsediff.decompression.affine_rows`).

:func:`slot_layout` returns None when ``B`` is not of that form; the plan then keeps ``B``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable
from pytensor.scalar import basic as ps
from pytensor.tensor.basic import get_underlying_scalar_constant_value
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.exceptions import NotScalarConstantError
from pytensor.tensor.shape import Reshape

from sparsediff.decompression.affine_rows import MAX_OPERANDS, affine_rows

__all__ = [
    "MAX_AFFINE_TERMS",
    "MAX_IRREGULAR_FRACTION",
    "SlotLayout",
    "slot_layout",
    "slot_permutation",
]

#: Above this fraction of irregular rows the slot layout is not built (nothing to share).
MAX_IRREGULAR_FRACTION = 0.25
#: The regular rows are computed in their affine form when their expression is affine in at
#: most this many color-invariant operands (see :meth:`_Tree.affine_form`).
MAX_AFFINE_TERMS = MAX_OPERANDS
#: Rows sampled to find the common row of each slotted constant.
REFERENCE_SAMPLE = 4096


def slot_permutation(positions: np.ndarray, m: int, n_colors: int) -> np.ndarray:
    """``σ`` of shape ``(m, n_colors)``: row ``k``'s colors in the order its entries appear in
    ``positions`` (``c * m + k``), then its unused colors in increasing order."""
    return _permutation_and_slots(positions, m, n_colors)[0]


def _permutation_and_slots(
    positions: np.ndarray, m: int, n_colors: int
) -> tuple[np.ndarray, np.ndarray]:
    """``σ`` (:func:`slot_permutation`) and every position's flat index ``k * n_colors + r``
    in the slot layout (``r``: its rank among its row's positions, so that ``σ[k, r]`` is its
    color)."""
    rows, cols = positions % m, positions // m
    order = None
    if rows.size and not (rows[1:] >= rows[:-1]).all():  # CSR order is sorted already
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(m))
    rank = np.arange(rows.size) - starts[rows]
    sigma = np.full((m, n_colors), -1, dtype=np.int64)
    sigma[rows, rank] = cols
    used = np.zeros((m, n_colors), dtype=bool)
    used[rows, cols] = True
    counts = used.sum(axis=1)
    if counts.sum() != rows.size:
        raise ValueError("a color appears twice in one row: not a forward compressed matrix")
    free_rows, free_cols = np.nonzero(~used)
    free_starts = np.searchsorted(free_rows, np.arange(m))
    free_rank = counts[free_rows] + np.arange(free_rows.size) - free_starts[free_rows]
    sigma[free_rows, free_rank] = free_cols
    flat = rows * n_colors + rank
    if order is not None:
        flat[order] = flat.copy()
    return sigma, flat


def _combine(terms: list[dict], weights: list[float]) -> dict:
    """``Σ weight_i · terms_i`` of affine forms ``{operand: coefficient}``."""
    out: dict = {}
    for term, weight in zip(terms, weights, strict=True):
        for key, coefficient in term.items():
            out[key] = out.get(key, 0.0) + weight * coefficient
    return out


def _static(var: Variable) -> tuple[int, ...] | None:
    shape = getattr(var.type, "shape", None)
    if shape is None or any(s is None for s in shape):
        return None
    return tuple(int(s) for s in shape)


class _NotSlotted(Exception):
    pass


@dataclass(frozen=True)
class SlotLayout:
    """The compressed matrix in slot layout (what :func:`slot_layout` returns).

    ``matrix`` is ``B'`` of shape ``(m, n_colors)`` as one elementwise pass (what the plan
    weighs against the other gathers); ``positions`` are every block's positions into
    ``matrix.ravel()``. Where the regular rows are affine in the color-invariant operands,
    ``fused`` builds a block's nonzeros straight from the operands
    (:func:`~sparsediff.decompression.affine_rows.affine_rows`: each nonzero written once, no
    ``m × n_colors`` intermediate); else it is None and the nonzeros are a gather of
    ``matrix``."""

    matrix: Variable
    positions: list[np.ndarray]
    fused: Callable[[np.ndarray], Variable] | None = None


def slot_layout(compressed: Variable, positions: list[np.ndarray]) -> SlotLayout | None:
    """``compressed`` in slot layout (:class:`SlotLayout`); None when it is not an
    elementwise expression of constants and color-invariant values, or when most rows are
    irregular."""
    shape = _static(compressed)
    if shape is None or len(shape) != 2 or not positions:
        return None
    n_colors, m = shape
    core = compressed
    while core.owner is not None and isinstance(core.owner.op, Reshape):
        core = core.owner.inputs[0]
    core_shape = _static(core)
    if core_shape is None or not core_shape or core_shape[0] != n_colors:
        return None
    if int(np.prod(core_shape[1:], dtype=np.int64)) != m:
        return None
    everything = np.concatenate([np.asarray(p, dtype=np.int64) for p in positions])
    try:
        sigma, flat = _permutation_and_slots(everything, m, n_colors)
        tree = _Tree(core, core_shape, sigma)
    except _NotSlotted:
        return None
    except ValueError:
        return None
    irregular = tree.irregular_rows()
    if irregular.size > MAX_IRREGULAR_FRACTION * m:
        return None
    apart = tree.build(irregular) if irregular.size else None
    matrix = tree.build(None)
    if apart is not None:
        matrix = pt.set_subtensor(matrix[pt.constant(irregular)], apart)
    matrix = matrix.astype(compressed.dtype)
    bounds = np.cumsum([np.asarray(p).size for p in positions])[:-1]
    affine = tree.affine_form()
    fused = None
    if affine is not None:
        operands, coefficients = affine
        coefficients = coefficients.astype(compressed.dtype)
        apart_flat = None if apart is None else apart.astype(compressed.dtype).ravel()
        row_of_irregular = np.full(m, -1, dtype=np.int64)
        row_of_irregular[irregular] = np.arange(irregular.size)

        def fused(block_positions: np.ndarray) -> Variable:
            block_positions = np.asarray(block_positions, dtype=np.int64)
            rows, slots = np.divmod(block_positions, n_colors)
            at = row_of_irregular[rows]
            is_irregular = at >= 0
            if apart_flat is None:
                values = pt.zeros((0,), dtype=compressed.dtype)
            else:
                picks = at[is_irregular] * n_colors + slots[is_irregular]
                values = apart_flat[pt.constant(picks)]
            return affine_rows(operands, values, coefficients, block_positions, is_irregular)

    return SlotLayout(matrix, np.split(flat, bounds), fused)


class _Tree:
    """The elementwise tree of ``B`` with its leaves classified (plan time)."""

    def __init__(self, core: Variable, core_shape: tuple[int, ...], sigma: np.ndarray):
        self.core_shape = core_shape
        self.m, self.n_colors = sigma.shape
        self.sigma = sigma
        self.slotted: dict[Variable, np.ndarray] = {}  # color-dependent constants, (m, C)
        self.nodes: list[Variable] = []
        self.root = core
        self._classify(core, 0)

    def _invariant(self, var: Variable) -> bool:
        bcast = var.type.broadcastable
        return len(bcast) == len(self.core_shape) and bcast[0]

    def _classify(self, var: Variable, depth: int) -> None:
        if depth > 200 or var in self.slotted:
            return
        if self._invariant(var):
            return
        if isinstance(var, Constant):
            data = np.asarray(var.data)
            if data.ndim != len(self.core_shape) or data.shape[0] != self.n_colors:
                raise _NotSlotted
            full = np.broadcast_to(data, self.core_shape).reshape(self.n_colors, self.m)
            self.slotted[var] = np.take_along_axis(full.T, self.sigma, axis=1)
            return
        node = var.owner
        if node is None or not isinstance(node.op, Elemwise) or len(node.outputs) != 1:
            raise _NotSlotted
        for inp in node.inputs:
            if inp.type.ndim != len(self.core_shape):
                raise _NotSlotted
            self._classify(inp, depth + 1)

    def irregular_rows(self) -> np.ndarray:
        """Rows whose slotted constants differ from the most common row of each of them."""
        if not self.slotted:
            return np.zeros(0, dtype=np.int64)
        regular = np.ones(self.m, dtype=bool)
        self.reference = {}
        rng = np.random.default_rng(0)
        # The most common row among a sample of rows (any row would be correct, the irregular
        # ones are computed apart; the slot layout is only kept when most rows are regular, and
        # then their row is the sample's most common one): no sort of all the rows' keys.
        sample = np.sort(rng.choice(self.m, size=min(self.m, REFERENCE_SAMPLE), replace=False))
        for var, values in self.slotted.items():
            key = values[sample] @ rng.uniform(0.5, 1.5, self.n_colors)  # a row hash
            _, first, counts = np.unique(key, return_index=True, return_counts=True)
            ref_row = values[sample[first[np.argmax(counts)]]]
            same = (values == ref_row).all(axis=1) | (np.isnan(values) & np.isnan(ref_row)).all(
                axis=1
            )
            self.reference[var] = ref_row
            regular &= same
        return np.flatnonzero(~regular)

    def build(self, rows: np.ndarray | None) -> Variable:
        """``B'`` at ``rows`` (None: every row, with each slotted constant's common row)."""
        memo: dict[Variable, Variable] = {}

        def rec(var: Variable) -> Variable:
            if var in memo:
                return memo[var]
            if var in self.slotted:
                if rows is None:
                    out = pt.constant(self.reference[var].reshape(1, -1).astype(var.dtype))
                else:
                    out = pt.constant(np.ascontiguousarray(self.slotted[var][rows], var.dtype))
            elif self._invariant(var):
                out = self._column(var, rows)
            else:
                node = var.owner
                out = node.op(*[rec(i) for i in node.inputs])
            memo[var] = out
            return out

        out = rec(self.root)
        target = (self.m if rows is None else rows.size, self.n_colors)
        if tuple(out.type.shape) != target:
            out = pt.broadcast_to(out, target)
        return out

    def affine_form(self) -> tuple[list[Variable], np.ndarray] | None:
        """``([v_1, ..., v_q], A)`` when the regular rows' expression is ``[1, v_1, ..., v_q] @
        A`` (the ``v_i``: the color-invariant operands as ``(m,)`` vectors; ``A``: ``(q + 1,
        n_colors)``, folded at plan time); None where it is not affine in them.

        The elementwise form broadcasts ``(1, n_colors)`` constants against ``(m, 1)`` columns,
        and both backends loop over that badly: PyTensor's C loop costs about 4 ns per value with
        a few such operands (the driven cavity's 13 slots × 4 convective terms: 5.6 ms at
        n = 10⁵), Numba's about 1.5. The affine form is evaluated by one kernel that writes
        each nonzero once (:mod:`sparsediff.decompression.affine_rows`).
        """
        try:
            terms = self._affine(self.root, {})
        except _NotSlotted:
            return None
        leaves = [v for v in terms if v is not None and np.any(terms[v] != 0)]
        if not leaves or len(leaves) > MAX_AFFINE_TERMS:
            return None
        coefficients = np.stack(
            [np.broadcast_to(terms.get(None, 0.0), (self.n_colors,))]
            + [np.broadcast_to(terms[v], (self.n_colors,)) for v in leaves]
        )
        if not np.isfinite(coefficients).all():
            return None
        dtype = self.root.dtype
        operands = []
        for v in leaves:
            full = (
                v
                if not any(v.type.broadcastable[1:])
                else pt.broadcast_to(v, (1, *self.core_shape[1:]))
            )
            operands.append(full.reshape((self.m,)).astype(dtype))
        return operands, coefficients

    def _affine(self, var: Variable, memo: dict) -> dict:
        """``var`` at the regular rows as ``{operand: coefficient row}`` (key None: the constant
        term); raises :class:`_NotSlotted` where it is not affine in the invariant operands."""
        if var in memo:
            return memo[var]
        if var in self.slotted:
            out = {None: np.asarray(self.reference[var], dtype=np.float64)}
        elif self._invariant(var):
            if all(var.type.broadcastable):
                try:
                    out = {None: np.float64(get_underlying_scalar_constant_value(var))}
                except NotScalarConstantError:
                    raise _NotSlotted from None  # a scalar variable: not worth a column
            else:
                out = {var: np.float64(1.0)}
        else:
            node = var.owner
            op = node.op.scalar_op
            args = [self._affine(i, memo) for i in node.inputs]
            if isinstance(op, ps.Add):
                out = _combine(args, [1.0] * len(args))
            elif isinstance(op, ps.Sub):
                out = _combine(args, [1.0, -1.0])
            elif isinstance(op, ps.Neg):
                out = _combine(args, [-1.0])
            elif isinstance(op, ps.Mul):
                varying = [a for a in args if set(a) != {None}]
                if len(varying) > 1:
                    raise _NotSlotted
                factor = np.float64(1.0)
                for a in args:
                    if set(a) == {None}:
                        factor = factor * a[None]
                base = varying[0] if varying else {None: np.float64(1.0)}
                out = {k: c * factor for k, c in base.items()}
            elif isinstance(op, ps.TrueDiv) and set(args[1]) == {None}:
                denominator = np.asarray(args[1][None])
                if not (np.isfinite(denominator).all() and (denominator != 0).all()):
                    raise _NotSlotted
                out = {k: c / denominator for k, c in args[0].items()}
            elif isinstance(op, ps.Identity | ps.Cast) and len(args) == 1:
                out = args[0]
            else:
                raise _NotSlotted
        memo[var] = out
        return out

    def _column(self, var: Variable, rows: np.ndarray | None) -> Variable:
        """A color-invariant operand as an ``(m, 1)`` column (``(1, 1)`` when it is a scalar)."""
        bcast = var.type.broadcastable
        if all(bcast):
            return var.reshape((1, 1))
        if isinstance(var, Constant):
            col = np.broadcast_to(np.asarray(var.data), (1, *self.core_shape[1:])).reshape(-1, 1)
            col = col if rows is None else col[rows]
            return pt.constant(np.ascontiguousarray(col, dtype=var.dtype))
        full = var if not any(bcast[1:]) else pt.broadcast_to(var, (1, *self.core_shape[1:]))
        col = full.reshape((self.m, 1))
        return col if rows is None else col[pt.constant(rows)]
