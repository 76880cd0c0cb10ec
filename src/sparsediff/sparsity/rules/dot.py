"""Matrix products: dense ``dot``/matmul and ``pytensor.sparse`` products.

``dot(A, B)[i, j] = sum_l A[i, l] B[l, j]`` couples ``(i, j)`` to ``B[l, j]`` wherever
``A[i, l]`` can be nonzero and to ``A[i, l]`` wherever ``B[l, j]`` can be. For a constant
operand (dense or ``scipy.sparse``) "can be nonzero" is its actual structure, which is what
makes products with constant stencil or incidence matrices exact; so is a ``pytensor.sparse``
matrix whose structure the graph fixes (:func:`sparse_structure`), even if its values are not.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pytensor.graph.basic import Constant
from pytensor.sparse.basic import CSM
from pytensor.sparse.basic import Transpose as SparseTranspose
from pytensor.sparse.type import SparseTensorType

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import NotConcrete, RuleContext

__all__ = ["dot_rule", "product_pattern", "sparse_structure", "value_structure"]


def sparse_structure(var) -> sp.csr_array | None:
    """The structure of a ``pytensor.sparse`` variable, where the graph fixes it.

    A constant's stored entries; ``CSM(data, indices, indptr, shape)`` with constant
    ``indices``/``indptr``/``shape`` (e.g. a sparse Jacobian of sparsediff's, or a matrix whose
    values are inputs): those positions, whatever the data; a sparse transpose: the transposed
    structure. ``None`` where it is not known (the values of a sparse input variable).
    """
    if isinstance(var, Constant):
        return pat.as_pattern(sp.csr_array(var.data)) if sp.issparse(var.data) else None
    node = var.owner
    if node is None:
        return None
    if isinstance(node.op, SparseTranspose):
        inner = sparse_structure(node.inputs[0])
        return None if inner is None else pat.as_pattern(inner.T)
    if isinstance(node.op, CSM) and all(isinstance(i, Constant) for i in node.inputs[1:]):
        indices, indptr, shape = (np.asarray(i.data) for i in node.inputs[1:])
        cls = sp.csr_array if node.op.format == "csr" else sp.csc_array
        ones = np.ones(indices.size, dtype=bool)
        return pat.as_pattern(cls((ones, indices, indptr), shape=tuple(int(d) for d in shape)))
    return None


def value_structure(var, ctx: RuleContext, shape: tuple[int, int]) -> sp.csr_array:
    """Where a 2-D operand can be nonzero: its structure if constant (or a sparse variable
    of fixed structure, :func:`sparse_structure`), else everywhere."""
    if isinstance(var.type, SparseTensorType):
        structure = sparse_structure(var)
        if structure is not None:
            return structure
    if isinstance(var, Constant):
        data = var.data
        if sp.issparse(data):
            return pat.as_pattern(sp.csr_array(data).reshape(shape))
        return pat.as_pattern(np.asarray(data).reshape(shape) != 0)
    return sp.csr_array(np.ones(shape, dtype=bool))


def _as_matrix_shape(shape: tuple[int, ...], is_left: bool) -> tuple[int, int]:
    if len(shape) == 2:
        return shape
    if len(shape) == 1:
        return (1, shape[0]) if is_left else (shape[0], 1)
    return (1, 1)


def product_pattern(a_pattern, b_pattern, a_struct, b_struct) -> pat.Pattern | None:
    """Pattern of ``A @ B`` (row-major (m, n)) from operand patterns and value structures."""
    m, _k = a_struct.shape
    n = b_struct.shape[1]
    parts = []
    if b_pattern is not None:  # out (i, j) <- B (l, j) for A[i, l] != 0
        selection = sp.kron(a_struct, sp.eye_array(n, dtype=bool), format="csr")
        parts.append(pat.combine_rows(selection, b_pattern))
    if a_pattern is not None:  # out (i, j) <- A (i, l) for B[l, j] != 0
        selection = sp.kron(sp.eye_array(m, dtype=bool), b_struct.T, format="csr")
        parts.append(pat.combine_rows(selection, a_pattern))
    return pat.union(parts)


def _operand_shape(var, ctx: RuleContext) -> tuple[int, ...]:
    try:
        return ctx.shape(var)
    except NotConcrete:
        if not isinstance(var.type, SparseTensorType):
            raise
        raise ValueError(
            f"the sparse matrix {var.name or var} has no static shape, so the shape of the "
            "product cannot be known at plan time: create it with one, e.g. "
            f'ps.csr_matrix("{var.name or "W"}", shape=(m, n)), or pass it as a constant'
        ) from None


def dot_rule(op, node, input_patterns, ctx: RuleContext):
    a, b = node.inputs
    a_shape = _as_matrix_shape(_operand_shape(a, ctx), is_left=True)
    b_shape = _as_matrix_shape(_operand_shape(b, ctx), is_left=False)
    a_struct = value_structure(a, ctx, a_shape)
    b_struct = value_structure(b, ctx, b_shape)
    return [product_pattern(input_patterns[0], input_patterns[1], a_struct, b_struct)]
