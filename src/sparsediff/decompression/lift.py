"""The decompression gather, lifted through the elementwise Ops that produce the compressed matrix.

Instead of computing all ``n_colors * m`` compressed entries and then picking ``nnz`` of them,
the elementwise arithmetic runs on the ``nnz`` picked operands only, constant operands are
gathered once, at plan time, and entries that do not depend on the inputs become constants.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable
from pytensor.scalar import basic as ps_scalar
from pytensor.tensor.basic import Join
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.shape import Reshape
from pytensor.tensor.type import TensorType

__all__ = ["gather"]


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
    if flat.size > 1 and (np.diff(flat) == 1).all():
        return flat_var[int(flat[0]) : int(flat[-1]) + 1]
    return flat_var[pt.constant(flat.astype(np.int64))]


#: Widest Join the decompression builds (see :func:`_concatenate`).
_JOIN_WIDTH = 4


def _concatenate(vectors: list[Variable]) -> Variable:
    """``pt.concatenate(vectors)``; of more than :data:`_JOIN_WIDTH` vectors, as a balanced tree
    of two-input ``Join``s.

    Numba compiles a ``Join`` anew for every number (and layout) of inputs, and the whole-graph
    function's compile time grows with the widest call in it: one ``Join`` of the 90 pieces of
    a DSGE Jacobian cost more Numba compile time than 89 two-input ``Join``s, which all share
    one compiled kernel (measured, issue #16: first call 21.8 s → 13.4 s, CPU). Per call the
    values are copied about ``log2(len(vectors))`` times instead of once, so few pieces (the
    stencils: up to 4) keep their single ``Join``.
    """
    while len(vectors) > _JOIN_WIDTH:
        vectors = [
            pt.concatenate(vectors[k : k + 2]) if k + 1 < len(vectors) else vectors[k]
            for k in range(0, len(vectors), 2)
        ]
    return vectors[0] if len(vectors) == 1 else pt.concatenate(vectors)


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

    __slots__ = (
        "children",
        "const",
        "dtype",
        "expr",
        "flat",
        "length",
        "no_rows",
        "op",
        "src",
        "vidx",
    )

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
        self.no_rows = None  # the ``idx`` at which :func:`_in_rows` found no repeated leaf

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

    def varying_pieces(self) -> list[np.ndarray]:
        """The varying entries as sorted pieces that are computed separately (here: one)."""
        if self.vidx is None:
            return [np.arange(self.length)]
        return [self.vidx] if self.vidx.size else []

    def _pieces(self, idx: np.ndarray) -> list[tuple[np.ndarray, Variable]]:
        """The values at ``idx`` (all varying) as ``(positions in idx, values)`` pieces."""
        return [(np.arange(idx.size), self._compute(idx))]

    def _compute(self, idx: np.ndarray) -> Variable:
        """Symbolic values at ``idx``, all of them varying entries."""
        if self.src is not None:  # leaf
            return self.src if self.flat is None else _leaf_gather(self.src, self.flat[idx])
        if self.vidx is None:
            same = idx.size == self.length
        else:
            same = idx.size == self.vidx.size and np.array_equal(idx, self.vidx)
        if same and self.expr is not None:
            return self.expr
        out = _in_rows(self, idx)
        if out is None:
            out = self.op(*[c.restrict(idx) for c in self.children])
        if out.type.broadcastable != (False,):
            out = pt.broadcast_to(out, (idx.size,))
        if same:
            self.expr = out
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
        # Constants at idx, the varying values scattered into their places (piece by piece,
        # concatenated: one scatter, no gather to put the pieces in order first).
        at = np.flatnonzero(inside)
        pieces = self._pieces(idx[inside])
        if len(pieces) == 1:
            values = pieces[0][1]
        else:
            at = np.concatenate([at[sel] for sel, _ in pieces])
            values = _concatenate([pt.broadcast_to(v, (sel.size,)) for sel, v in pieces])
        base = np.array(np.broadcast_to(self.const_at(idx), (idx.size,)), dtype=self.dtype)
        where = pt.constant(at.astype(np.int64))
        kept = base[~inside]
        if (kept == kept[0]).all():
            # One constant value (stencils): filling it writes the output without reading a
            # constant of the same size, which is most of the cost at large n.
            filled = pt.full((idx.size,), pt.constant(kept[0], dtype=self.dtype))
            return pt.set_subtensor(filled[where], values)
        return pt.set_subtensor(pt.constant(base)[where], values)

    def materialize(self) -> Variable:
        return self.restrict(np.arange(self.length))


#: Most parts :func:`_in_rows` visits below one part (bounds its plan-time work).
_ROWS_WALK = 64


def _repeat_width(flat: np.ndarray) -> int:
    """``w > 1`` when ``flat`` is a sequence with each value repeated ``w`` times in a row
    (``[a, a, b, b, …]``); otherwise 1."""
    if flat.size < 4:
        return 1
    change = np.flatnonzero(flat[1:] != flat[:-1])
    if change.size == 0:
        return 1
    w = int(change[0]) + 1
    if w < 2 or flat.size % w or not (flat.reshape(-1, w) == flat[::w, None]).all():
        return 1
    return w


def _fully_varying_at(part: _Part, idx: np.ndarray) -> bool:
    if part.vidx is None:
        return True
    return idx.size <= part.vidx.size and np.isin(idx, part.vidx, assume_unique=True).all()


def _row_width(part: _Part, idx: np.ndarray) -> int:
    """The repeat width the 2-D form of ``part`` at ``idx`` would use: the smallest ``w > 1``
    of its gathered leaves, below elementwise parts that vary at every entry of ``idx``; 0
    where a part below is of another kind (partly constant, a join) or the walk passes
    :data:`_ROWS_WALK` parts, 1 where no leaf repeats."""
    widths, stack, seen = [], [part], 0
    while stack:
        p = stack.pop()
        seen += 1
        if seen > _ROWS_WALK or type(p) is not _Part:
            return 0
        if p.is_constant:
            continue
        if p.src is not None:
            if p.flat is not None:
                widths.append(_repeat_width(p.flat[idx]))
            continue
        if p.op is None or not _fully_varying_at(p, idx):
            return 0
        stack.extend(p.children)
    repeats = [w for w in widths if w > 1]
    return min(repeats) if repeats else 1


def _rows_of(part: _Part, idx: np.ndarray, w: int) -> Variable:
    """``part`` at ``idx`` as a graph broadcastable to ``(idx.size // w, w)``, rows of the
    entries: a leaf whose entries repeat ``w`` times gathers one value per row (a column), a
    constant equal in every row is one row, equal along every row one column."""
    rows = idx.size // w
    if part.is_constant:
        c = np.broadcast_to(part.const_at(idx), (idx.size,)).astype(part.dtype, copy=False)
        c = c.reshape(rows, w)
        if (c == c[:1]).all():
            c = c[:1]
        if (c == c[:, :1]).all():
            c = c[:, :1]
        return pt.constant(np.ascontiguousarray(c))
    if part.src is not None:
        if part.flat is None:  # a broadcast scalar
            return part.src.reshape((1, 1))
        f = part.flat[idx].reshape(rows, w)
        if (f == f[:, :1]).all():
            return _leaf_gather(part.src, f[:, 0]).reshape((rows, 1))
        return _leaf_gather(part.src, f.reshape(-1)).reshape((rows, w))
    return part.op(*[_rows_of(c, idx, w) for c in part.children])


def _in_rows(part: _Part, idx: np.ndarray) -> Variable | None:
    """The values of an elementwise ``part`` at ``idx``, computed on ``(idx.size // w, w)``
    rows when a leaf below repeats each of its values ``w`` times (a derivative shared by
    ``w`` entries, e.g. ``±f'(x[i+1] - x[i])`` in the two entries of a row), else None.

    The repeated leaf is then gathered once per row instead of once per entry, and a constant
    periodic in the rows (a seed's signs) is one row of ``w`` values instead of a vector of
    the entries: per call, the index and constant vectors of the entries' size are no longer
    read (JAX: fused into broadcasts; C, Numba: one elementwise loop over the rows, the result
    reshaped in place).
    """
    if part.no_rows is idx:
        return None
    w = _row_width(part, idx)
    if w == 1:  # no leaf below repeats at idx: neither does one below any child
        stack = [part]
        while stack:
            p = stack.pop()
            if p.src is None and not p.is_constant:
                p.no_rows = idx
                stack.extend(p.children)
    if w < 2:
        return None
    out = _rows_of(part, idx, w)
    if out.type.broadcastable[1]:
        out = pt.broadcast_to(out, (idx.size // w, w))
    return out.reshape((idx.size,))


class _JoinPart(_Part):
    """Entries taken from several parts: child ``c`` supplies the entries at ``where[c]``
    (disjoint, sorted, covering ``0 … L-1``); e.g. the entries of a ``Join`` output."""

    __slots__ = ("local", "owner", "parts", "where")

    def __init__(self, length, dtype, parts, where):
        self.parts = parts
        self.where = where
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
        joined = _concatenate(
            [pt.broadcast_to(p, (o.size,)) for p, o in zip(pieces, order, strict=True)]
        )
        inverse = np.argsort(np.concatenate(order), kind="stable")
        return joined[pt.constant(inverse.astype(np.int64))]

    def varying_pieces(self) -> list[np.ndarray]:
        return [
            w[q]
            for part, w in zip(self.parts, self.where, strict=True)
            for q in part.varying_pieces()
        ]

    def _pieces(self, idx: np.ndarray) -> list[tuple[np.ndarray, Variable]]:
        owners = self.owner[idx]
        out = []
        for c in np.unique(owners):
            sel = np.flatnonzero(owners == c)
            out.extend((sel[s], v) for s, v in self.parts[c]._pieces(self.local[idx[sel]]))
        return out


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
        # 0 * anything is 0 (for finite values): a constant zero factor fixes the entry, also
        # where the factor is only partly constant (e.g. a seed's zeros around the entries
        # that vary): the product is then computed on the factor's varying entries only.
        for p in parts:
            if p.const is None or p.vidx is None:
                continue
            z = np.broadcast_to(np.asarray(p.const).reshape(-1) == 0, (length,))
            if not p.is_constant:
                z = z.copy()
                z[p.vidx] = False
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
    split = _split_by_pieces(op, parts, vidx, const, length, dtype)
    if split is not None:
        return split
    # ``expr`` (the values at ``vidx``) is built on first use: most parts are only restricted.
    return _Part(
        length,
        dtype,
        const=const,
        vidx=None if vidx.size == length else vidx,
        op=op,
        children=parts,
    )


#: Most atoms an elementwise result with overlapping varying pieces is split into (each later
#: Op is applied atom by atom); more, and the result is computed on the union of the pieces,
#: its partly constant operands scattered into their constants.
MAX_PIECES = 8
#: Most varying pieces of the operands considered for a split (one bit each in a mask).
_MAX_OPERAND_PIECES = 62


def _split_by_pieces(op, parts, vidx, const, length, dtype) -> _Part | None:
    """The result of ``op`` piece by piece, where each operand is constant or fully varying.

    E.g. ``a + b`` with ``a`` varying on the diagonal entries only and ``b`` on others: at each
    piece one operand is constant, so ``op`` runs on that piece's values and the other
    operands' constants there, instead of on the union of the pieces with every operand
    scattered into its constants first (a select per operand and entry on JAX; a scatter each
    on C/Numba). When the operands' pieces overlap (``a`` varying at {0, 1}, ``b`` at {1, 2}),
    the entries are refined into *atoms*, the entries that lie in the same pieces ({0}, {1},
    {2}): on each atom every operand is again constant or fully varying. The pieces travel on
    to the next Op (a ``_JoinPart``) and are written to the result by one scatter (or one
    gather) at the end: no ``set_subtensor`` into constants inside the graph, which for a
    many-equation model (issue #16) made most of the nodes Numba compiled on the first call.
    Returns None when there are fewer than two pieces, or more than :data:`MAX_PIECES` atoms.
    """
    varying = [p for p in parts if not p.is_constant]
    pieces = [q for p in varying for q in p.varying_pieces()]
    if len(pieces) < 2 or len(pieces) > _MAX_OPERAND_PIECES:
        return None
    seen = np.zeros(length, dtype=bool)
    overlap = False
    for q in pieces:  # disjoint? O(entries), at plan time
        if seen[q].any():
            overlap = True
        seen[q] = True
    if overlap:
        # Refine into atoms: entries that lie in the same pieces (a bit mask per entry).
        key = np.zeros(length, dtype=np.int64)
        for b, q in enumerate(pieces):
            key[q] |= np.int64(1) << b
        keys, inverse = np.unique(key[vidx], return_inverse=True)
        if keys.size < 2 or keys.size > MAX_PIECES:
            return None
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=keys.size))[:-1]
        pieces = np.split(vidx[order], bounds)
    elif vidx.size < sum(q.size for q in pieces):  # entries fixed by a zero factor
        pieces = [q[np.isin(q, vidx, assume_unique=True)] for q in pieces]
        pieces = [q for q in pieces if q.size]
    if len(pieces) < 2:
        return None
    subs, where = [], []
    for q in pieces:
        out = op(*[p.restrict(q) for p in parts])
        if out.type.broadcastable != (False,):
            out = pt.broadcast_to(out, (q.size,))
        subs.append(_Part(q.size, dtype, src=out, flat=np.arange(q.size)))
        where.append(q)
    rest = np.setdiff1d(np.arange(length), vidx, assume_unique=True)
    if rest.size:
        c = np.ascontiguousarray(np.broadcast_to(const, (length,))[rest])
        subs.append(_Part(rest.size, dtype, const=c, vidx=np.empty(0, dtype=np.int64)))
        where.append(rest)
    return _JoinPart(length, dtype, subs, where)


def _depends_on_constants_only(var: Variable, limit: int = 32) -> bool:
    """Whether ``var`` is computed from constants alone, by at most ``limit`` nodes."""
    stack, seen = [var], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        if v.owner is None:
            if not isinstance(v, Constant):
                return False
            continue
        if len(seen) > limit:
            return False
        stack.extend(v.owner.inputs)
    return True


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
        if _depends_on_constants_only(var):
            # e.g. a broadcast scalar constant (``x + 2.0``: ``DimShuffle(2.0)``): a constant.
            value = np.asarray(var.eval(mode="FAST_COMPILE"), dtype=var.dtype).reshape((1,))
            return _Part(length, var.dtype, const=value, vidx=np.zeros(0, dtype=np.int64))
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
