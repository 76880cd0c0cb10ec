"""Matrix products: dense ``dot``/matmul and ``pytensor.sparse`` products.

``dot(A, B)[i, j] = sum_l A[i, l] B[l, j]`` couples ``(i, j)`` to ``B[l, j]`` wherever
``A[i, l]`` can be nonzero and to ``A[i, l]`` wherever ``B[l, j]`` can be. For a constant
operand (dense or ``scipy.sparse``) "can be nonzero" is its actual structure, which is what
makes products with constant stencil or incidence matrices exact.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pytensor.graph.basic import Constant

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import RuleContext

__all__ = ["dot_rule", "product_pattern", "value_structure"]


def value_structure(var, ctx: RuleContext, shape: tuple[int, int]) -> sp.csr_array:
    """Where a 2-D operand can be nonzero: its structure if constant, else everywhere."""
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


def dot_rule(op, node, input_patterns, ctx: RuleContext):
    a, b = node.inputs
    a_shape = _as_matrix_shape(ctx.shape(a), is_left=True)
    b_shape = _as_matrix_shape(ctx.shape(b), is_left=False)
    a_struct = value_structure(a, ctx, a_shape)
    b_struct = value_structure(b, ctx, b_shape)
    return [product_pattern(input_patterns[0], input_patterns[1], a_struct, b_struct)]
