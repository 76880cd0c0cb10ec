"""Vectorization of ``pytensor.sparse`` Ops over the colors.

A compressed product batches every JVP / VJP / HVP over the colors with ``vectorize_graph``
(:mod:`sparsediff.compression.products`). PyTensor 3.0.7 wraps an Op without a rule in a
``Blockwise``, which cannot hold a sparse operand: it builds its core node from *dense* dummy
inputs, so ``ps.dot(Z, W)`` with ``W`` a ``pytensor.sparse`` constant (a CAR prior's
neighbourhood matrix) and ``Z`` batched failed ("Sparse dot product should have at least one
sparse variable as inputs"), and so did the sparse Ops of its gradient.

The rules here:

* sparse ``Dot`` of a batched dense operand and an unbatched sparse one: one sparse-dense
  product of a dense *matrix*, the batch axes folded into its rows (dense on the left:
  ``(B…, n) → (B·…, n) @ W``) or its columns (dense on the right: ``W @ (n, B·…)``), and
  unfolded again. PyTensor's own rule does the same for ``StructuredDot`` (kept);
* ``AddSD`` (sparse + dense is dense) of a batched dense operand: the dense sum, broadcast;
* every other ``pytensor.sparse`` Op (:func:`sparse_op_classes`): rebuilt as it is when no
  input is batched, and a clear error when one is (PyTensor's ``AddSD`` and
  ``SparseDenseMultiply`` rules raise even with nothing batched; its fallback crashes). A
  batched input of such an Op means a sparse matrix that depends on ``wrt``
  (``ps.multiply(W, tau)`` with ``tau`` in ``wrt``), i.e. one sparse matrix per color, which
  ``pytensor.sparse`` cannot represent; the error (:class:`sparsediff._sparse_ops.
  SparseDependsOnWrt`, usually raised earlier, by detection) says how to write the graph
  instead. An error is better than the ``Blockwise`` crash (or a wrong answer) it replaces.
"""

from __future__ import annotations

import inspect

import pytensor.sparse.basic as sparse_basic
import pytensor.sparse.linalg as sparse_linalg
import pytensor.sparse.math as sparse_math
import pytensor.sparse.rewriting as sparse_rewriting
import pytensor.tensor as pt
from pytensor.graph.basic import Constant
from pytensor.graph.op import Op
from pytensor.sparse.basic import _is_sparse_variable, dense_from_sparse
from pytensor.sparse.math import AddSD, StructuredDot
from pytensor.sparse.math import Dot as SparseDot

from sparsediff._sparse_ops import SparseDependsOnWrt, sparse_depends_on_wrt

__all__ = [
    "SPARSE_VECTORIZE_RULES",
    "sparse_op_classes",
    "vectorize_add_sd",
    "vectorize_sparse_dot",
    "vectorize_sparse_op",
]


def _batch_ndim(batched, original) -> int:
    """How many batch axes ``batched`` has over ``original`` (sparse inputs: must be 0)."""
    if _is_sparse_variable(original):
        if not _is_sparse_variable(batched):
            raise SparseDependsOnWrt(
                f"the sparse input {original} was vectorized into {batched.type}: "
                "pytensor.sparse has no batched sparse matrices"
            )
        return 0
    return batched.type.ndim - original.type.ndim


def _unsupported(op, node, batched_inputs) -> SparseDependsOnWrt:
    which = [
        str(o)
        for o, b in zip(node.inputs, batched_inputs, strict=True)
        if not _is_sparse_variable(o) and b.type.ndim > o.type.ndim
    ]
    return sparse_depends_on_wrt(
        op, f"cannot be batched over the colors: its input(s) {', '.join(which)} depend on wrt"
    )


def _sparse_dim(s, axis: int):
    """A sparse operand's dimension: a constant's is known now, a variable's is symbolic."""
    if isinstance(s, Constant):
        return int(s.data.shape[axis])
    return s.shape[axis]


def _dim(var, axis: int):
    static = var.type.shape[axis]
    return static if static is not None else var.shape[axis]


def vectorize_sparse_op(op: Op, node, *batched_inputs):
    """Any ``pytensor.sparse`` Op: rebuilt when nothing is batched, a clear error otherwise."""
    if any(_batch_ndim(b, o) for b, o in zip(batched_inputs, node.inputs, strict=True)):
        raise _unsupported(op, node, batched_inputs)
    return op.make_node(*batched_inputs)


def vectorize_sparse_dot(op: SparseDot, node, batch_x, batch_y):
    """``ps.dot`` of a batched dense operand and an unbatched sparse one, as one product."""
    x, y = node.inputs
    kx, ky = _batch_ndim(batch_x, x), _batch_ndim(batch_y, y)
    if kx == 0 and ky == 0:
        return op.make_node(batch_x, batch_y)
    if _is_sparse_variable(y):  # dense @ sparse: the batch axes become rows
        n, m = _sparse_dim(batch_y, 0), _sparse_dim(batch_y, 1)
        lead = [_dim(batch_x, i) for i in range(batch_x.type.ndim - 1)]
        rows = batch_x.reshape((-1, n))
        out = op(rows, batch_y)
        return [out.reshape((*lead, m))]
    if _is_sparse_variable(x):  # sparse @ dense: the batch axes become columns
        m, n = _sparse_dim(batch_x, 0), _sparse_dim(batch_x, 1)
        if y.type.ndim == 1:
            lead = [_dim(batch_y, i) for i in range(ky)]
            cols = batch_y.reshape((-1, n)).T
            return [op(batch_x, cols).T.reshape((*lead, m))]
        # y is (n, k): (B…, n, k) → (n, B…, k) → (n, B·…·k)
        moved = pt.moveaxis(batch_y, -2, 0)
        trailing = [_dim(moved, i) for i in range(1, moved.type.ndim)]
        out = op(batch_x, moved.reshape((n, -1)))
        return [pt.moveaxis(out.reshape((m, *trailing)), 0, -2)]
    raise _unsupported(op, node, [batch_x, batch_y])  # pragma: no cover - one is sparse


def vectorize_add_sd(op: AddSD, node, batch_x, batch_y):
    """``sparse + dense`` (a dense result) with the dense operand batched: a broadcast sum."""
    x, y = node.inputs
    if _batch_ndim(batch_x, x) == 0 and _batch_ndim(batch_y, y) == 0:
        return op.make_node(batch_x, batch_y)
    if not _is_sparse_variable(x):
        raise _unsupported(op, node, [batch_x, batch_y])
    return [pt.add(dense_from_sparse(batch_x), batch_y).astype(node.outputs[0].dtype)]


def sparse_op_classes() -> list[type[Op]]:
    """Every Op class PyTensor's ``pytensor.sparse`` defines (the C variants included)."""
    classes = []
    for module in (sparse_basic, sparse_math, sparse_linalg, sparse_rewriting):
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Op)
                and value.__module__.startswith("pytensor.sparse")
                and value not in classes
            ):
                classes.append(value)
    return classes


#: Native rules, by Op class; :data:`SPARSE_VECTORIZE_RULES` adds the guard for the others.
_NATIVE = {SparseDot: vectorize_sparse_dot, AddSD: vectorize_add_sd}
#: PyTensor's own rule is kept (it batches the dense operand as ``vectorize_sparse_dot`` does).
_KEEP = (StructuredDot,)

#: Every rule of this module, by Op class (registered by :mod:`sparsediff._register`).
SPARSE_VECTORIZE_RULES = {
    **{cls: vectorize_sparse_op for cls in sparse_op_classes() if cls not in _KEEP},
    **_NATIVE,
}
