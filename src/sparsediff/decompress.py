"""Stage 4: decompression — from the compressed matrix to the nonzeros of the sparse result.

At plan time, in NumPy and in O(nnz), we compute for every stored entry ``k`` of the result (in
CSR or CSC storage order) its position ``positions[k]`` inside the flattened compressed matrix.
In the graph, decompression is then a single gather, ``data = compressed.ravel()[positions]``,
and the result is ``pytensor.sparse.CSR(data, indices, indptr, shape)`` (or ``CSC``) with constant
``indices``, ``indptr`` and ``shape``.

Compressed layouts (batch-first, as built by :mod:`sparsediff.compressed`):

* forward, ``B`` of shape ``(n_colors, m)``, ``B[c, i] = sum_{j: color[j] = c} J[i, j]``:
  ``J[i, j] = B[color[j], i]``;
* reverse, ``Bᵀ`` of shape ``(n_colors, n)``, ``Bᵀ[c, j] = sum_{i: color[i] = c} J[i, j]``:
  ``J[i, j] = Bᵀ[color[i], j]``;
* star (symmetric), ``B`` of shape ``(n_colors, n)``, ``B[c, i] = (H S)[i, c]``:
  ``H[i, j] = B[color[j], i]`` if ``j`` is the only column of its color in row ``i``, else
  ``H[i, j] = B[color[i], j]`` (a star coloring guarantees one of the two);
* bidirectional, the concatenation of the flattened forward ``B`` (``(k_c, m)``, one JVP per
  column color ``1 … k_c``) and reverse ``Bᵀ`` (``(k_r, n)``, one VJP per row color): each
  nonzero is taken from whichever side reads it alone (columns first);
* acyclic (symmetric): not a gather but a substitution, see :mod:`sparsediff.substitution`.

The gather can be *lifted* through the elementwise Ops that produce the compressed matrix
(:func:`gather`): instead of computing all ``n_colors * m`` compressed entries and then picking
``nnz`` of them, the elementwise arithmetic runs on the ``nnz`` picked operands only, and
constant operands are gathered once, here, at plan time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.scalar import basic as ps_scalar
from pytensor.sparse.basic import CSM
from pytensor.tensor.basic import Join
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.rewriting.basic import register_specialize
from pytensor.tensor.shape import Reshape
from pytensor.tensor.type import TensorType

from sparsediff.sparsity.pattern import as_pattern

__all__ = [
    "ColoringError",
    "Layout",
    "SharedStructureCSM",
    "assemble",
    "bidirectional_positions",
    "forward_positions",
    "gather",
    "layout",
    "reverse_positions",
    "star_positions",
]

_INT32_MAX = np.iinfo(np.int32).max


class ColoringError(ValueError):
    """A coloring does not allow exact decompression of the given pattern."""


@dataclass(frozen=True)
class Layout:
    """Where the stored entries of a sparse result live: rows, columns and compressed indices."""

    rows: np.ndarray  #: row of each stored entry, in storage order (int64)
    cols: np.ndarray  #: column of each stored entry, in storage order (int64)
    indices: np.ndarray  #: CSR column indices / CSC row indices (int32)
    indptr: np.ndarray  #: CSR row pointers / CSC column pointers (int32)
    shape: tuple[int, int]
    format: str  #: "csr" or "csc"

    @property
    def nnz(self) -> int:
        return int(self.rows.size)


def layout(pattern, format: str = "csr") -> Layout:
    """Storage order of the nonzeros of ``pattern`` for a ``format`` ("csr" or "csc") result."""
    if format not in ("csr", "csc"):
        raise ValueError(f"format must be 'csr' or 'csc', got {format!r}")
    p = as_pattern(pattern)
    if p.nnz > _INT32_MAX or max(p.shape) > _INT32_MAX:
        raise ValueError(
            f"pattern with {p.nnz} nonzeros and shape {p.shape} does not fit the int32 indices "
            "of pytensor.sparse"
        )
    if format == "csc":
        p = p.tocsc()
        p.sort_indices()
        minor = p.indices.astype(np.int64)
        major = np.repeat(np.arange(p.shape[1], dtype=np.int64), np.diff(p.indptr))
        rows, cols = minor, major
    else:
        minor = p.indices.astype(np.int64)
        major = np.repeat(np.arange(p.shape[0], dtype=np.int64), np.diff(p.indptr))
        rows, cols = major, minor
    return Layout(
        rows=rows,
        cols=cols,
        indices=p.indices.astype(np.int32),
        indptr=p.indptr.astype(np.int32),
        shape=(int(p.shape[0]), int(p.shape[1])),
        format=format,
    )


def _first_conflict(keys: np.ndarray) -> int | None:
    """Index of one entry whose key occurs twice, or None when all keys are distinct."""
    if keys.size < 2:
        return None
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    return None if dup.size == 0 else int(order[dup[0] + 1])


def forward_positions(lay: Layout, colors: np.ndarray) -> np.ndarray:
    """``positions[k] = colors[col_k] * m + row_k``: where ``J[row_k, col_k]`` sits in ``B``.

    Raises :class:`ColoringError` if two columns of one color share a row.
    """
    colors = _check_colors(colors, lay.shape[1], "column")
    m = lay.shape[0]
    positions = colors[lay.cols] * m + lay.rows
    bad = _first_conflict(positions)
    if bad is not None:
        i, j = int(lay.rows[bad]), int(lay.cols[bad])
        raise ColoringError(
            f"invalid column coloring: row {i} has two nonzero columns of color "
            f"{int(colors[j])} (one is column {j}); the columns of one color must be "
            "structurally orthogonal"
        )
    return positions


def reverse_positions(lay: Layout, colors: np.ndarray) -> np.ndarray:
    """``positions[k] = colors[row_k] * n + col_k``: where ``J[row_k, col_k]`` sits in ``Bᵀ``.

    Raises :class:`ColoringError` if two rows of one color share a column.
    """
    colors = _check_colors(colors, lay.shape[0], "row")
    n = lay.shape[1]
    positions = colors[lay.rows] * n + lay.cols
    bad = _first_conflict(positions)
    if bad is not None:
        i, j = int(lay.rows[bad]), int(lay.cols[bad])
        raise ColoringError(
            f"invalid row coloring: column {j} has two nonzero rows of color "
            f"{int(colors[i])} (one is row {i}); the rows of one color must be "
            "structurally orthogonal"
        )
    return positions


def star_positions(lay: Layout, colors: np.ndarray) -> np.ndarray:
    """Direct symmetric recovery of a Hessian from ``B = (H S)ᵀ`` of shape ``(n_colors, n)``.

    For a nonzero ``(a, b)`` with ``a <= b``: ``H[a, b] = B[c(b), a]`` when ``b`` is the only
    column of color ``c(b)`` among the nonzeros of row ``a``; otherwise ``H[a, b] = B[c(a), b]``,
    which needs ``a`` to be the only column of color ``c(a)`` in row ``b``. ``H[b, a]`` is read
    from the same place, so the result is exactly symmetric. ``lay`` must describe a symmetric
    pattern. Raises :class:`ColoringError` when neither holds for some nonzero.
    """
    n = lay.shape[0]
    if lay.shape[0] != lay.shape[1]:
        raise ValueError(f"a Hessian pattern must be square, got shape {lay.shape}")
    colors = _check_colors(colors, n, "star")
    n_colors = int(colors.max()) + 1 if colors.size else 0
    a = np.minimum(lay.rows, lay.cols)
    b = np.maximum(lay.rows, lay.cols)
    ca, cb = colors[a], colors[b]
    # count[r, c]: nonzero columns of color c in row r (keys r * n_colors + c)
    keys = lay.rows * n_colors + colors[lay.cols]
    key_ab, key_ba = a * n_colors + cb, b * n_colors + ca
    if n * max(n_colors, 1) <= 1 << 27:
        counts = np.bincount(keys, minlength=n * n_colors)
        b_unique_in_a = counts[key_ab] == 1
        a_unique_in_b = counts[key_ba] == 1
    else:
        uniq, cnt = np.unique(keys, return_counts=True)

        def _count_is_one(k):
            pos = np.minimum(np.searchsorted(uniq, k), uniq.size - 1)
            return (uniq[pos] == k) & (cnt[pos] == 1)

        b_unique_in_a = _count_is_one(key_ab)
        a_unique_in_b = _count_is_one(key_ba)
    ok = b_unique_in_a | a_unique_in_b
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        i, j = int(a[k]), int(b[k])
        raise ColoringError(
            f"coloring does not allow direct symmetric recovery of H[{i}, {j}]: row {i} has "
            f"several columns of color {int(cb[k])} and row {j} several of color {int(ca[k])} "
            "(a star coloring is needed)"
        )
    return np.where(b_unique_in_a, cb * n + a, ca * n + b)


def _count_is_one(keys: np.ndarray, queries: np.ndarray, size: int) -> np.ndarray:
    """``count(keys == q) == 1`` for every query, keys in ``[0, size)``: a bincount when it is
    small, a sorted search otherwise (O(nnz log nnz), never ``size`` memory)."""
    if size <= 1 << 27:
        return np.bincount(keys, minlength=size)[queries] == 1
    uniq, cnt = np.unique(keys, return_counts=True)
    if uniq.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(uniq, queries), uniq.size - 1)
    return (uniq[pos] == queries) & (cnt[pos] == 1)


def bidirectional_positions(
    lay: Layout,
    col_colors: np.ndarray,
    row_colors: np.ndarray,
    full: Layout | None = None,
    col_offset: int = 0,
) -> np.ndarray:
    """Where each nonzero of ``lay`` sits in ``concat(B.ravel(), Bᵀ.ravel())``.

    ``B`` (``(k_c, m)``) holds one JVP per column color ``1 … k_c``, ``Bᵀ`` (``(k_r, n)``) one
    VJP per row color; color 0 is neutral (in no product). ``J[i, j]`` is read from
    ``B[c(j) - 1, i]`` when ``j`` is the only column of its color in row ``i``, else from
    ``Bᵀ[r(i) - 1, j]``, which needs ``i`` to be the only row of its color in column ``j``.
    ``full`` is the whole pattern (uniqueness is decided there) when ``lay`` is one block of
    it whose columns start at ``col_offset``. Raises :class:`ColoringError` for a nonzero that
    neither side reads alone.
    """
    full = lay if full is None else full
    m, n = full.shape
    ccol = _check_colors(col_colors, n, "column")
    crow = _check_colors(row_colors, m, "row")
    kc = int(ccol.max(initial=0))
    kr = int(crow.max(initial=0))
    k = max(kc, kr) + 1
    rows, cols = lay.rows, lay.cols + col_offset
    cc, rc = ccol[cols], crow[rows]
    col_ok = (cc > 0) & _count_is_one(full.rows * k + ccol[full.cols], rows * k + cc, m * k)
    row_ok = (rc > 0) & _count_is_one(full.cols * k + crow[full.rows], cols * k + rc, n * k)
    ok = col_ok | row_ok
    if not ok.all():
        q = int(np.flatnonzero(~ok)[0])
        i, j = int(rows[q]), int(cols[q])
        raise ColoringError(
            f"bidirectional coloring does not allow recovery of J[{i}, {j}]: column {j} (color "
            f"{int(cc[q])}) is not the only column of its color in row {i}, and row {i} (color "
            f"{int(rc[q])}) not the only row of its color in column {j} (0 is neutral)"
        )
    return np.where(col_ok, (cc - 1) * m + rows, kc * m + (rc - 1) * n + cols)


def _check_colors(colors, size: int, what: str) -> np.ndarray:
    colors = np.asarray(colors)
    if colors.ndim != 1 or colors.size != size:
        raise ColoringError(
            f"a {what} coloring of this pattern needs one color per "
            f"{'column' if what == 'star' else what} ({size}), got an array of shape {colors.shape}"
        )
    if colors.size and not np.issubdtype(colors.dtype, np.integer):
        raise ColoringError(f"colors must be integers, got dtype {colors.dtype}")
    colors = colors.astype(np.int64)
    if colors.size and colors.min() < 0:
        raise ColoringError("colors must be non-negative")
    return colors


# --------------------------------------------------------------------------------------------
# The gather, lifted through elementwise Ops
# --------------------------------------------------------------------------------------------


def _static_shape(var: Variable) -> tuple[int, ...] | None:
    shape = getattr(var.type, "shape", None)
    if shape is None or any(s is None for s in shape):
        return None
    return tuple(int(s) for s in shape)


def _leaf_gather(var: Variable, flat: np.ndarray) -> Variable:
    if isinstance(var, Constant) and isinstance(var.data, np.ndarray):
        return pt.constant(np.ascontiguousarray(np.asarray(var.data).ravel()[flat]))
    shape = _static_shape(var)
    flat_var = var.ravel() if var.ndim != 1 else var
    if (
        shape is not None
        and flat.size == int(np.prod(shape, dtype=np.int64))
        and np.array_equal(flat, np.arange(flat.size))
    ):
        return flat_var
    return flat_var[pt.constant(flat.astype(np.int64))]


def _constant_vector(values: np.ndarray, dtype) -> Variable:
    """A constant vector; a single broadcastable entry when all its entries are equal."""
    values = np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1))
    if values.size > 1 and (values == values[0]).all():
        values = values[:1]
    return pt.constant(values)


class _Part:
    """The entries ``flat`` of a graph variable, as a partially constant vector of length L.

    Entries outside ``vidx`` are the constants ``const`` (shape ``(L,)`` or ``(1,)``, used only
    there); entries at ``vidx`` (sorted; ``None`` = all) depend on the inputs. A *leaf* gathers
    its entries straight from ``src`` (``flat`` its positions there, ``None`` for a broadcast
    scalar); an *expr* part applies ``op`` to its ``children`` and holds ``expr``, its values at
    ``vidx``. Restricting a part to fewer entries computes (or gathers) only those.
    """

    __slots__ = ("children", "const", "dtype", "expr", "flat", "length", "op", "src", "vidx")

    def __init__(
        self,
        length,
        dtype,
        const=None,
        vidx=None,
        src=None,
        flat=None,
        expr=None,
        op=None,
        children=None,
    ):
        self.length = length
        self.dtype = dtype
        self.const = const
        self.vidx = vidx
        self.src = src
        self.flat = flat
        self.expr = expr
        self.op = op
        self.children = children

    @property
    def is_constant(self) -> bool:
        return self.vidx is not None and self.vidx.size == 0

    def varying_mask(self) -> np.ndarray | bool:
        if self.vidx is None:
            return True
        mask = np.zeros(self.length, dtype=bool)
        mask[self.vidx] = True
        return mask

    def const_at(self, idx: np.ndarray) -> np.ndarray:
        c = np.asarray(self.const)
        return c.reshape(-1) if c.size == 1 else c[idx]

    def _compute(self, idx: np.ndarray) -> Variable:
        """Symbolic values at ``idx``, all of them varying entries."""
        if self.src is not None:  # leaf
            return self.src if self.flat is None else _leaf_gather(self.src, self.flat[idx])
        same = idx.size == (self.length if self.vidx is None else self.vidx.size)
        if same:
            return self.expr
        out = self.op(*[c.restrict(idx) for c in self.children])
        if out.type.broadcastable != (False,):
            out = pt.broadcast_to(out, (idx.size,))
        return out

    def restrict(self, idx: np.ndarray) -> Variable:
        """Symbolic values at the sorted entries ``idx``."""
        if self.is_constant:
            return _constant_vector(self.const_at(idx), self.dtype)
        if self.vidx is None:
            return self._compute(idx)
        inside = np.isin(idx, self.vidx, assume_unique=True)
        if inside.all():
            return self._compute(idx)
        if not inside.any():
            return _constant_vector(self.const_at(idx), self.dtype)
        # Constants at idx, the varying values scattered into their places.
        values = self._compute(idx[inside])
        base = np.array(np.broadcast_to(self.const_at(idx), (idx.size,)), dtype=self.dtype)
        where = pt.constant(np.flatnonzero(inside).astype(np.int64))
        kept = base[~inside]
        if (kept == kept[0]).all():
            # One constant value (stencils): filling it writes the output without reading a
            # constant of the same size, which is most of the cost at large n.
            filled = pt.full((idx.size,), pt.constant(kept[0], dtype=self.dtype))
            return pt.set_subtensor(filled[where], values)
        return pt.set_subtensor(pt.constant(base)[where], values)

    def materialize(self) -> Variable:
        return self.restrict(np.arange(self.length))


class _JoinPart(_Part):
    """Entries taken from several parts: child ``c`` supplies the entries at ``where[c]``
    (disjoint, sorted, covering ``0 … L-1``); e.g. the entries of a ``Join`` output."""

    __slots__ = ("local", "owner", "parts")

    def __init__(self, length, dtype, parts, where):
        self.parts = parts
        self.owner = np.empty(length, dtype=np.int64)
        self.local = np.empty(length, dtype=np.int64)
        const = np.zeros(length, dtype=dtype)
        varying = np.zeros(length, dtype=bool)
        for c, (part, w) in enumerate(zip(parts, where, strict=True)):
            self.owner[w] = c
            self.local[w] = np.arange(w.size)
            if part.vidx is None:
                varying[w] = True
                continue
            varying[w[part.vidx]] = True
            if part.const is not None:
                const[w] = np.broadcast_to(np.asarray(part.const).reshape(-1), (w.size,))
        vidx = np.flatnonzero(varying)
        super().__init__(length, dtype, const=const, vidx=None if vidx.size == length else vidx)

    def _compute(self, idx: np.ndarray) -> Variable:
        owners = self.owner[idx]
        pieces, order = [], []
        for c in np.unique(owners):
            sel = np.flatnonzero(owners == c)
            pieces.append(self.parts[c].restrict(self.local[idx[sel]]))
            order.append(sel)
        if len(pieces) == 1:
            return pieces[0]
        joined = pt.concatenate(
            [pt.broadcast_to(p, (o.size,)) for p, o in zip(pieces, order, strict=True)]
        )
        inverse = np.argsort(np.concatenate(order), kind="stable")
        return joined[pt.constant(inverse.astype(np.int64))]


def _lift_join(node, shape, flat: np.ndarray, depth: int) -> _Part | None:
    axis_var, *inputs = node.inputs
    if not isinstance(axis_var, Constant):
        return None
    in_shapes = [_static_shape(i) for i in inputs]
    if any(s is None for s in in_shapes):
        return None
    axis = int(axis_var.data) % len(shape)
    multi = list(np.unravel_index(flat, shape))
    offsets = np.cumsum([0] + [s[axis] for s in in_shapes])
    which = np.searchsorted(offsets, multi[axis], side="right") - 1
    parts, where = [], []
    for k, (inp, in_shape) in enumerate(zip(inputs, in_shapes, strict=True)):
        sel = np.flatnonzero(which == k)
        if sel.size == 0:
            continue
        sub = [m[sel] for m in multi]
        sub[axis] = sub[axis] - offsets[k]
        in_flat = np.ravel_multi_index(sub, in_shape) if in_shape else np.zeros_like(sel)
        parts.append(_lift(inp, in_flat, depth + 1))
        where.append(sel)
    if len(parts) == 1:
        return parts[0]
    return _JoinPart(flat.size, node.outputs[0].dtype, parts, where)


def _eval_op(op, arrays: list[np.ndarray]) -> np.ndarray:
    """Evaluate an Op on constant arrays (plan time)."""
    node = op.make_node(*[pt.constant(a) for a in arrays])
    storage = {i: [i.data] for i in node.inputs}
    computed = {i: [True] for i in node.inputs}
    for o in node.outputs:
        storage[o] = [None]
        computed[o] = [False]
    try:
        thunk = op.make_thunk(node, storage, computed, no_recycling=[], impl="py")
    except NotImplementedError:
        thunk = op.make_thunk(node, storage, computed, no_recycling=[])
    with np.errstate(all="ignore"):
        thunk()
    return np.asarray(storage[node.outputs[0]][0])


def _part_of_elemwise(node, parts: list[_Part], length: int) -> _Part:
    op = node.op
    dtype = node.outputs[0].dtype
    varying = np.zeros(length, dtype=bool)
    for p in parts:
        varying |= p.varying_mask()
    zero = None
    if isinstance(op.scalar_op, ps_scalar.Mul):
        # 0 * anything is 0 (for finite values): a constant zero factor fixes the entry.
        for p in parts:
            if p.is_constant:
                z = np.asarray(p.const) == 0
                zero = z if zero is None else zero | z
        if zero is not None:
            varying &= ~np.broadcast_to(zero, (length,))
    vidx = np.flatnonzero(varying)
    const = None
    if vidx.size < length:
        # Values of the constant entries: evaluate with the varying entries set to 1.
        filled = []
        for p in parts:
            c = np.asarray(p.const if p.const is not None else 1, dtype=p.dtype)
            if c.size == 1:
                c = np.full(length, c.reshape(()), dtype=p.dtype) if not p.is_constant else c
            else:
                c = c.copy()
            if not p.is_constant:
                c = np.broadcast_to(c, (length,)).copy()
                c[p.varying_mask() & np.ones(length, dtype=bool)] = 1
            filled.append(c.reshape(-1))
        const = _eval_op(op, filled).astype(dtype, copy=False)
        if zero is not None:
            const = np.where(np.broadcast_to(zero, (length,)), np.zeros((), dtype), const)
        const = np.broadcast_to(const, (length,))
    if vidx.size == 0:
        return _Part(length, dtype, const=np.ascontiguousarray(const), vidx=vidx)
    expr = op(*[p.restrict(vidx) for p in parts])
    if expr.type.broadcastable != (False,):
        expr = pt.broadcast_to(expr, (vidx.size,))
    return _Part(
        length,
        dtype,
        const=const,
        vidx=None if vidx.size == length else vidx,
        expr=expr,
        op=op,
        children=parts,
    )


def _lift(var: Variable, flat: np.ndarray, depth: int) -> _Part:
    length = flat.size
    node = var.owner
    if depth > 200:
        return _Part(length, var.dtype, src=var, flat=flat)
    if node is not None and isinstance(node.op, Reshape):
        # C-order flat positions are invariant under reshape.
        return _lift(node.inputs[0], flat, depth + 1)
    if not isinstance(var.type, TensorType):
        return _Part(length, var.dtype, src=var, flat=flat)
    if isinstance(var, Constant):
        data = var.data
        if not isinstance(data, np.ndarray):
            return _Part(length, var.dtype, src=var, flat=flat)
        const = data.reshape((1,)) if data.size == 1 else data.ravel()[flat]
        return _Part(length, var.dtype, const=const, vidx=np.zeros(0, dtype=np.int64))
    shape = _static_shape(var)
    if shape is None or node is None:
        return _Part(length, var.dtype, src=var, flat=flat)
    size = int(np.prod(shape, dtype=np.int64))
    if size == 1:
        # A broadcast scalar: no gather, keep it broadcastable against the picked entries.
        return _Part(length, var.dtype, src=var.reshape((1,)), flat=None)
    op = node.op
    if isinstance(op, DimShuffle):
        inp = node.inputs[0]
        in_shape = _static_shape(inp)
        if in_shape is None:
            return _Part(length, var.dtype, src=var, flat=flat)
        multi = np.unravel_index(flat, shape)
        sub = [np.zeros(length, dtype=np.int64) for _ in in_shape]
        for out_axis, in_axis in enumerate(op.new_order):
            if in_axis != "x":
                sub[in_axis] = multi[out_axis]
        in_flat = np.ravel_multi_index(sub, in_shape) if in_shape else np.zeros_like(flat)
        return _lift(inp, in_flat, depth + 1)
    if isinstance(op, Join):
        # an index remapping: each entry comes from one input
        part = _lift_join(node, shape, flat, depth)
        if part is not None:
            return part
        return _Part(length, var.dtype, src=var, flat=flat)
    if isinstance(op, Elemwise) and len(node.outputs) == 1 and size >= length:
        in_shapes = [_static_shape(i) for i in node.inputs]
        if any(s is None for s in in_shapes):
            return _Part(length, var.dtype, src=var, flat=flat)
        multi = np.unravel_index(flat, shape)
        parts = []
        for inp, in_shape in zip(node.inputs, in_shapes, strict=True):
            sub = [m if s != 1 else np.zeros_like(m) for m, s in zip(multi, in_shape, strict=True)]
            in_flat = np.ravel_multi_index(sub, in_shape) if in_shape else np.zeros_like(flat)
            parts.append(_lift(inp, in_flat, depth + 1))
        return _part_of_elemwise(node, parts, length)
    return _Part(length, var.dtype, src=var, flat=flat)


def gather(compressed: Variable, positions: np.ndarray, lift: bool = True) -> Variable:
    """``compressed.ravel()[positions]`` as a graph.

    With ``lift`` (the default) the gather is lifted through the elementwise Ops, reshapes and
    dimshuffles that produce ``compressed``: the elementwise arithmetic then runs on the picked
    entries only (lifting descends into an Op only when its output has at least as many entries
    as are picked, so it never adds arithmetic), constant operands are picked here, at plan
    time, and entries that do not depend on the inputs at all (e.g. the linear part of a
    residual, or products with a structurally zero seed) become constants: only the varying
    entries are computed per call and scattered into the constant rest.
    """
    positions = np.asarray(positions, dtype=np.int64)
    if lift:
        out = _lift(compressed, positions, 0).materialize()
    else:
        out = _leaf_gather(compressed, positions)
    if out.type.broadcastable != (False,) or out.dtype != compressed.dtype:
        out = pt.broadcast_to(out, (positions.size,)).astype(compressed.dtype)
    return out


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def assemble(data: Variable, lay: Layout) -> Variable:
    """``pytensor.sparse.CSR(data, indices, indptr, shape)`` (or ``CSC``), constant structure.

    ``indices`` and ``indptr`` are read-only constants: compiled functions share them with the
    matrices they return instead of copying them on every call (see :class:`SharedStructureCSM`).
    """
    build = ps.CSR if lay.format == "csr" else ps.CSC
    return build(
        data,
        pt.constant(_frozen(lay.indices)),
        pt.constant(_frozen(lay.indptr)),
        pt.constant(np.asarray(lay.shape, dtype=np.int32)),
    )


class SharedStructureCSM(CSM):
    """``CSM`` whose ``indices``/``indptr`` are read-only constants, shared, not copied.

    PyTensor's ``CSM.perform`` copies ``indices`` and ``indptr`` on every call (O(nnz)) so that
    nobody can modify a constant through a returned matrix. When they are read-only arrays that
    protection comes for free: an in-place change of the structure of a returned matrix (e.g.
    ``J.indices[0] = 3`` or ``J.eliminate_zeros()``) raises instead of corrupting the next call;
    ``J.copy()`` gives a fully writable matrix. The rewrite ``share_constant_csm_structure``
    (specialize, i.e. the fast compile modes) swaps it in for sparsediff's results.
    """

    def perform(self, node, inputs, outputs):
        data, indices, indptr, shape = inputs
        cls = scipy.sparse.csr_matrix if self.format == "csr" else scipy.sparse.csc_matrix
        outputs[0][0] = cls(
            (data, indices, indptr), shape=(int(shape[0]), int(shape[1])), copy=False
        )


def _is_frozen_constant(var) -> bool:
    return (
        isinstance(var, Constant)
        and isinstance(var.data, np.ndarray)
        and not var.data.flags.writeable
    )


@node_rewriter([CSM])
def share_constant_csm_structure(fgraph, node):
    if type(node.op) is not CSM:
        return None
    _, indices, indptr, shape = node.inputs
    if not (
        _is_frozen_constant(indices) and _is_frozen_constant(indptr) and isinstance(shape, Constant)
    ):
        return None
    out = SharedStructureCSM(node.op.format)(*node.inputs)
    out.tag = node.outputs[0].tag
    return [out]


register_specialize(share_constant_csm_structure)
