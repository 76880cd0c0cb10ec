"""Checks of what users pass in: ``wrt``, expressions, shapes — one clear error each.

Every entry point (detection, plans, checks, solvers, adapters) validates through these, so a
bad ``wrt`` gets the same message wherever it is given. Expressions and costs come back ready to
be differentiated: sparse products of vectors are made matrix products
(:mod:`sparsediff._sparse_ops`; PyTensor cannot differentiate the vector ones).
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.graph.basic import Constant, Variable
from pytensor.tensor.type import TensorType
from pytensor.tensor.variable import TensorVariable

from sparsediff._fold_indices import fold_integer_graph
from sparsediff._sparse_ops import matrix_sparse_products

__all__ = ["as_expression", "as_wrt_list", "check_cost", "check_wrt", "static_shape_of"]


def check_wrt(w) -> tuple[int, ...]:
    """The static shape of one ``wrt``, a float tensor variable; a clear error otherwise."""
    if not isinstance(w, Variable):
        raise TypeError(f"wrt must be PyTensor variables, got {type(w).__name__}: {w!r}")
    if not isinstance(w.type, TensorType):
        raise TypeError(f"wrt must be dense tensor variables, got {w} of type {w.type}")
    if w.dtype not in pt.type.continuous_dtypes:
        raise TypeError(
            f"wrt {w} has dtype {w.dtype}: derivatives are only defined with respect to "
            "floating-point variables"
        )
    if any(s is None for s in w.type.shape):
        name = w.name or "x"
        example = tuple(3 if s is None else s for s in w.type.shape)
        raise ValueError(
            f"wrt {w} has no static shape (type {w.type}). sparsediff needs the size of every "
            f"variable it differentiates with respect to: create it with one, e.g. "
            f'pt.tensor("{name}", shape={example}), or use pt.specify_shape'
        )
    return tuple(int(s) for s in w.type.shape)


def as_wrt_list(wrt) -> tuple[list[TensorVariable], bool]:
    """``wrt`` as a non-empty list of float tensors with static shapes; whether it was a list."""
    is_list = isinstance(wrt, list | tuple)
    items = list(wrt) if is_list else [wrt]
    if not items:
        raise ValueError("wrt is an empty list: give at least one variable")
    for w in items:
        check_wrt(w)
    if len(set(items)) != len(items):
        raise ValueError("wrt contains the same variable twice")
    return items, is_list


def static_shape_of(expression: Variable, what: str = "expression") -> tuple[int, ...]:
    """The static shape of ``expression``, inferring it from the graph when the type lacks it."""
    shape = getattr(expression.type, "shape", None)
    if shape is not None and all(s is not None for s in shape):
        return tuple(int(s) for s in shape)
    from pytensor.graph.rewriting.utils import rewrite_graph
    from pytensor.tensor.basic import get_scalar_constant_value
    from pytensor.tensor.exceptions import NotScalarConstantError

    dims = []
    shape_graph = rewrite_graph(
        [expression.shape[i] for i in range(expression.ndim)],
        include=("canonicalize", "ShapeOpt"),
        clone=True,
    )
    if not all(isinstance(s, Constant) for s in shape_graph):  # e.g. pt.pad's widths
        shape_graph = fold_integer_graph(shape_graph)
    for i, s in enumerate(shape_graph):
        try:
            dims.append(int(get_scalar_constant_value(s)))
        except NotScalarConstantError:
            raise ValueError(
                f"the shape of {what} {expression} (axis {i}) cannot be determined from the "
                "graph; give its inputs static shapes or wrap it in pt.specify_shape"
            ) from None
    return tuple(dims)


def as_expression(expression, what: str = "expression") -> TensorVariable:
    if not isinstance(expression, Variable):
        raise TypeError(f"{what} must be a PyTensor variable, got {type(expression).__name__}")
    if not isinstance(expression.type, TensorType):
        raise TypeError(f"{what} must be a dense tensor variable, got type {expression.type}")
    if expression.dtype not in pt.type.continuous_dtypes:
        raise TypeError(
            f"{what} {expression} has dtype {expression.dtype}: only floating-point "
            "expressions have derivatives"
        )
    shape = static_shape_of(expression, what)
    (expression,) = matrix_sparse_products([expression])
    if tuple(expression.type.shape) != shape:
        expression = pt.specify_shape(expression, shape)
    return expression


def check_cost(cost) -> TensorVariable:
    """``cost`` as a scalar float tensor, or a clear error (Hessians need a scalar)."""
    if not isinstance(cost, Variable):
        raise TypeError(f"cost must be a PyTensor variable, got {type(cost).__name__}")
    cost = pt.as_tensor_variable(cost)
    if cost.ndim != 0:
        raise ValueError(
            f"hessian needs a scalar cost, got {cost} with {cost.ndim} dimensions "
            f"(shape {cost.type.shape}); reduce it first (e.g. .sum()) or use sd.jacobian"
        )
    if cost.dtype not in pt.type.continuous_dtypes:
        raise TypeError(f"cost {cost} has dtype {cost.dtype}: it must be floating point")
    (cost,) = matrix_sparse_products([cost])
    return cost
