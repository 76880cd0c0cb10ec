"""How sparsediff treats ``pytensor.sparse`` Ops in the graphs it differentiates.

Sparse matrices in a user's graph are supported as *data*: constants (a CAR prior's
neighbourhood matrix, a difference or incidence operator) or inputs that do not depend on
``wrt``, multiplied with dense tensors that may. Two things make such graphs differentiable:

* **Vector products made matrix products** (:func:`matrix_sparse_products`). PyTensor 3.0.7
  cannot differentiate ``ps.dot(z, W)`` (``z`` a vector, ``W`` sparse): the pullback of the
  sparse ``Dot`` calls ``pt.dot(gz, W.T)``, which becomes ``structured_dot(W, gz.T)`` and
  raises ``NotImplementedError("non-matrix b")`` for a 1-D ``gz`` (the same for
  ``ps.dot(W, z)``); ``pytensor.grad`` of such a graph fails for everyone (PyMC writes its CAR
  prior with a row matrix, ``value[None, :]``, and never meets it). Each such product is
  rewritten as the same product of a one-row (or one-column) matrix, indexed back to a vector,
  and ``dense_from_sparse(true_dot(W, y))`` of a dense ``y`` (whose sparse intermediate would
  depend on ``wrt``) as ``ps.dot(W, y)``. The values are the same; the pullbacks are then
  PyTensor's own, for matrices. Every entry point that differentiates passes the user's
  expression through it (from :mod:`sparsediff._validate`).
* **A clear error for a sparse matrix that depends on ``wrt``** (:class:`SparseDependsOnWrt`),
  raised by detection (:mod:`sparsediff.sparsity.propagate`) and by the vectorization rules
  (:mod:`sparsediff.compression.vectorize_sparse`): its pattern would be a dense block over
  all ``m·n`` entries, and its JVPs and VJPs one sparse matrix per color, which
  ``pytensor.sparse`` cannot represent (``vectorize_graph`` would wrap it in a ``Blockwise``,
  which cannot hold sparse variables).

Graphs without such a product are returned unchanged (no copy), so they still merge with the
user's other outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytensor.graph.basic import Variable
from pytensor.graph.traversal import toposort
from pytensor.sparse.basic import DenseFromSparse, _is_sparse_variable
from pytensor.sparse.math import Dot as SparseDot
from pytensor.sparse.math import TrueDot

__all__ = ["SparseDependsOnWrt", "matrix_sparse_products", "sparse_depends_on_wrt"]


class SparseDependsOnWrt(NotImplementedError):
    """A ``pytensor.sparse`` matrix in the graph depends on ``wrt``: not supported."""


def sparse_depends_on_wrt(op, what: str) -> SparseDependsOnWrt:
    """The one message for a sparse matrix that depends on ``wrt`` (``what``: where it is)."""
    return SparseDependsOnWrt(
        f"the pytensor.sparse Op {op} {what}: sparsediff differentiates graphs whose sparse "
        "matrices are constant or independent of wrt (a sparse matrix that depends on wrt "
        "would need one sparse matrix per color, which pytensor.sparse cannot represent). "
        "Apply the parameters to the dense side, e.g. tau * ps.dot(z, W) instead of "
        "ps.dot(z, tau * W), or write the product densely"
    )


def _is_dense_vector(var) -> bool:
    return not _is_sparse_variable(var) and var.type.ndim == 1


def _is_vector_product(node) -> bool:
    return isinstance(node.op, SparseDot) and any(_is_dense_vector(i) for i in node.inputs)


def _is_dense_true_dot(node) -> bool:
    """``dense_from_sparse(true_dot(W, y))`` with ``y`` dense."""
    if not isinstance(node.op, DenseFromSparse):
        return False
    (inner,) = node.inputs
    return (
        inner.owner is not None
        and isinstance(inner.owner.op, TrueDot)
        and not _is_sparse_variable(inner.owner.inputs[1])
    )


def _as_matrix_product(x: Variable, y: Variable) -> Variable:
    """``ps.dot(x, y)`` with 1-D dense operands made into a row (left) or column (right)."""
    x_vec, y_vec = _is_dense_vector(x), _is_dense_vector(y)
    out = SparseDot()(x[None, :] if x_vec else x, y[:, None] if y_vec else y)
    if y_vec:
        out = out[..., 0]
    if x_vec:
        out = out[0]
    return out


def matrix_sparse_products(outputs: Sequence[Variable]) -> list[Variable]:
    """``outputs`` with every sparse ``Dot`` of a 1-D dense operand rewritten on matrices.

    The graph's root inputs (``wrt``, constants, other inputs) are kept, only the nodes on the
    way from a rewritten product to ``outputs`` are new.
    """
    outputs = list(outputs)
    nodes = list(toposort(outputs))
    if not any(_is_vector_product(n) or _is_dense_true_dot(n) for n in nodes):
        return outputs
    memo: dict[Variable, Variable] = {}
    for node in nodes:
        inputs = [memo.get(i, i) for i in node.inputs]
        if _is_vector_product(node):
            new_outputs = [_as_matrix_product(*inputs)]
        elif _is_dense_true_dot(node):
            w, y = (memo.get(i, i) for i in node.inputs[0].owner.inputs)
            new_outputs = [_as_matrix_product(w, y)]
        elif any(a is not b for a, b in zip(inputs, node.inputs, strict=True)):
            new_outputs = node.clone_with_new_inputs(inputs, strict=False).outputs
        else:
            continue
        for old, new in zip(node.outputs, new_outputs, strict=True):
            if new.type != old.type:
                new = old.type.filter_variable(new, allow_convert=True)
            memo[old] = new
    return [memo.get(o, o) for o in outputs]
