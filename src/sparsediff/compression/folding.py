"""Plan-time folding: evaluate once everything in a compressed graph that depends only on seeds.

Seeds are constants, and so is everything that depends only on them (padded seed matrices,
their shifts, the linear part of the function applied to them). PyTensor does not fold large
constant ``Alloc``s by itself, so :func:`fold_constants` does it once, at plan time: the
compiled graph then contains nothing per call but the arithmetic that involves the inputs.
:func:`graph_cost` measures what is left, to choose between two graphs of the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.basic import (
    EquilibriumGraphRewriter,
    GraphRewriter,
    dfs_rewriter,
    in2out,
    node_rewriter,
)
from pytensor.graph.rewriting.db import RewriteDatabaseQuery
from pytensor.graph.traversal import toposort
from pytensor.scalar import basic as ps
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.rewriting.basic import unconditional_constant_folding
from pytensor.tensor.shape import Shape, Shape_i
from pytensor.tensor.type import TensorType

__all__ = [
    "DEFAULT_FOLD_LIMIT",
    "fold_constants",
    "graph_cost",
    "graph_traffic",
    "merge_constant_operands",
]

#: Constants larger than this many elements are never created by :func:`fold_constants`,
#: unless the caller raises the limit (the plans raise it to a few times the seed size).
DEFAULT_FOLD_LIMIT = 1 << 24
#: Canonicalize-and-fold rounds at most (each round can expose new constants; it stops as soon
#: as a round changes nothing).
MAX_FOLD_ROUNDS = 6


def _static_size(var: Variable) -> int | None:
    shape = getattr(var.type, "shape", None)
    if shape is None or any(s is None for s in shape):
        return None
    return int(np.prod(shape, dtype=np.int64))


def _make_fold_rewriter(limit: int):
    @node_rewriter(None)
    def fold_seed_constants(fgraph, node):
        if not node.inputs or not all(
            isinstance(i, Constant) and isinstance(i.type, TensorType) for i in node.inputs
        ):
            return None
        for out in node.outputs:
            if not isinstance(out.type, TensorType):
                return None
            size = _static_size(out)
            if size is None or size > limit:
                return None
        return _fold_variadic(node) or unconditional_constant_folding.transform(fgraph, node)

    return fold_seed_constants


def _make_fill_rewriter(limit: int):
    @node_rewriter([Elemwise])
    def fill_to_constant(fgraph, node):
        """``fill(a, c)`` (``zeros_like(a)``, ...) with constant ``c``: only ``a``'s static shape
        matters, so it is a constant (gradients are full of these)."""
        if not isinstance(node.op.scalar_op, ps.Second):
            return None
        value = node.inputs[1]
        out = node.outputs[0]
        size = _static_size(out)
        if not isinstance(value, Constant) or size is None or size > limit:
            return None
        data = np.broadcast_to(np.asarray(value.data, dtype=out.dtype), out.type.shape)
        return [pt.constant(np.array(data))]

    return fill_to_constant


@node_rewriter([Shape, Shape_i])
def static_shape_to_constant(fgraph, node):
    """``x.shape`` (or one entry of it) of an ``x`` with a static shape: a constant.

    What ``ShapeOpt`` achieves here without its ``ShapeFeature``, which tracks the shape of
    every variable the rewrites create and cost most of the folding time on large graphs (the
    compressed graphs have static shapes throughout)."""
    (x,) = node.inputs
    shape = getattr(x.type, "shape", None)
    if shape is None or any(s is None for s in shape):
        return None
    out = node.outputs[0]
    if isinstance(node.op, Shape):
        value = np.asarray(shape, dtype=out.dtype)
    else:
        value = np.asarray(shape[node.op.i], dtype=out.dtype)
    return [pt.constant(value)]


_ASSOC = (ps.Add, ps.Mul)


@node_rewriter([Elemwise])
def merge_constant_operands(fgraph, node):
    """``add(c1, x, c2) -> add(c1 + c2, x)`` (and ``mul``) for constant ``c1``, ``c2``."""
    if not isinstance(node.op.scalar_op, _ASSOC):
        return None
    consts = [i for i in node.inputs if isinstance(i, Constant)]
    if len(consts) < 2:
        return None
    others = [i for i in node.inputs if not isinstance(i, Constant)]
    combine = np.add if isinstance(node.op.scalar_op, ps.Add) else np.multiply
    value = consts[0].data
    for c in consts[1:]:
        value = combine(value, c.data)
    value = np.asarray(value, dtype=node.outputs[0].dtype)
    new_inputs = [pt.constant(value), *others]
    if len(new_inputs) == 1:
        out = pt.broadcast_to(new_inputs[0], node.outputs[0].shape)
    else:
        out = node.op(*new_inputs)
    if out.type.broadcastable != node.outputs[0].type.broadcastable:
        return None
    return [out]


def _fold_variadic(node) -> list[Variable] | None:
    """An ``add`` or ``mul`` of more than two constants, evaluated by NumPy's binary ufunc.

    PyTensor's Python implementation of an Elemwise with more inputs than its NumPy ufunc takes
    loops in Python over the elements (``np.frompyfunc``): three ``(13, 1000, 1000)`` constants
    of the driven cavity took 8 s to add at plan time. Same order of operations as that loop
    (``sum`` starts from 0, ``prod`` from the first operand), float operands of the output's
    dtype only; None otherwise."""
    op = node.op
    if not isinstance(op, Elemwise) or not isinstance(op.scalar_op, _ASSOC):
        return None
    out = node.outputs[0]
    if len(node.inputs) <= 2 or out.dtype not in ("float64", "float32"):
        return None
    if not all(isinstance(i, Constant) and i.dtype == out.dtype for i in node.inputs):
        return None
    datas = [np.asarray(i.data) for i in node.inputs]
    if isinstance(op.scalar_op, ps.Add):
        value = functools.reduce(np.add, datas, np.zeros((), dtype=out.dtype))
    else:
        value = functools.reduce(np.multiply, datas)
    value = np.asarray(value, dtype=out.dtype)
    return [TensorType(out.dtype, shape=value.shape).make_constant(value)]


@node_rewriter(None)
def constant_folding(fgraph, node):
    """PyTensor's canonical constant folding, with :func:`_fold_variadic` for its slow case."""
    if not node.op.do_constant_folding(fgraph, node):
        return False
    fast = _fold_variadic(node)
    if fast is not None:
        return fast
    return unconditional_constant_folding.transform(fgraph, node)


def _canonicalize() -> GraphRewriter:
    """``canonicalize`` as :func:`~pytensor.graph.rewriting.utils.rewrite_graph` runs it, with
    :func:`constant_folding` in place of its own final constant folding (the same nodes folded
    to the same values, at the same points of the equilibrium)."""
    rewriter = optdb.query(
        RewriteDatabaseQuery(include=["canonicalize"], exclude=["topo_constant_folding"])
    )
    equilibria = [
        r for r in getattr(rewriter, "data", []) if isinstance(r, EquilibriumGraphRewriter)
    ]
    if len(equilibria) != 1:
        return optdb.query(RewriteDatabaseQuery(include=["canonicalize"]))
    equilibria[0].final_rewriters.append(
        in2out(constant_folding, ignore_newtrees=True, name="sparsediff_constant_folding")
    )
    return rewriter


def fold_constants(
    outputs: Sequence[Variable],
    limit: int = DEFAULT_FOLD_LIMIT,
) -> list[Variable]:
    """Canonicalize ``outputs`` and evaluate, once, every subgraph that depends only on constants.

    Returns new output variables (the inputs of the graph are kept, nothing of the caller's
    graph is modified). Constants larger than ``limit`` elements are not created.
    """
    outputs = list(outputs)
    fold = dfs_rewriter(
        _make_fold_rewriter(limit),
        _make_fill_rewriter(limit),
        merge_constant_operands,
        static_shape_to_constant,
        ignore_newtrees=False,
    )
    fgraph = FunctionGraph(outputs=outputs, clone=True, copy_inputs=False)
    canonicalize = _canonicalize()
    previous = None
    for _ in range(MAX_FOLD_ROUNDS):
        # Static shapes first (they are what ShapeOpt would find), then canonicalize, then fold.
        fold.rewrite(fgraph)
        canonicalize.rewrite(fgraph)
        fold.rewrite(fgraph)
        signature = _graph_signature(fgraph)
        if signature == previous:
            break
        previous = signature
    return list(fgraph.outputs)


def _graph_signature(fgraph: FunctionGraph) -> tuple:
    return tuple(
        (type(node.op).__name__, tuple(type(i).__name__ for i in node.inputs))
        for node in fgraph.toposort()
    )


_SHAPE_OPS = (
    "Shape",
    "Shape_i",
    "MakeVector",
    "SpecifyShape",
    "ScalarFromTensor",
    "TensorFromScalar",
)
_VIEW_OPS = ("Reshape", "DimShuffle", "Subtensor")


#: What an output of unknown static size costs in :func:`graph_cost`: more than any known one.
UNKNOWN_SIZE_COST = 1 << 40


def graph_cost(outputs: Sequence[Variable]) -> int:
    """A crude measure of per-call work: elements produced by the non-view Ops of the graph.

    Used to choose between two graphs computing the same thing (e.g. the two Hessian-vector
    product methods). Shape bookkeeping and views are free; an unknown static size costs
    :data:`UNKNOWN_SIZE_COST`.
    """
    total = 0
    for node in toposort(list(outputs)):
        name = type(node.op).__name__
        if name in _SHAPE_OPS or name in _VIEW_OPS:
            continue
        for out in node.outputs:
            size = _static_size(out)
            total += UNKNOWN_SIZE_COST if size is None else size
    return total


def graph_traffic(outputs: Sequence[Variable]) -> int:
    """Per-call memory traffic, roughly: elements read and written by the non-view Ops.

    :func:`graph_cost` counts only what each Op writes; two graphs of the same values can write
    about as much and still differ in what they read: a gather or scatter reads its index array
    and the array it indexes, an elementwise Op every operand, constants included (a folded
    ``(n_colors, m)`` constant costs as much per call as a computed one). Chains of elementwise
    Ops are counted as the one fused loop they compile to: an elementwise result read only by
    elementwise Ops is neither written nor read. Used to choose between ways of gathering the
    nonzeros (see ``JacobianPlan``). Broadcast operands count their own size; an unknown size
    costs :data:`UNKNOWN_SIZE_COST`.
    """
    outputs = list(outputs)
    nodes = list(toposort(outputs))
    consumers: dict[Variable, list] = {}
    for node in nodes:
        for inp in node.inputs:
            consumers.setdefault(inp, []).append(node)

    def fused(var: Variable) -> bool:
        """An elementwise result that only elementwise Ops read: it stays in the loop."""
        return (
            var.owner is not None
            and isinstance(var.owner.op, Elemwise)
            and var not in outputs
            and all(isinstance(c.op, Elemwise) for c in consumers.get(var, ()))
        )

    total = 0
    for node in nodes:
        name = type(node.op).__name__
        if name in _SHAPE_OPS or name in _VIEW_OPS:
            continue
        elemwise = isinstance(node.op, Elemwise)
        for var in (*node.inputs, *node.outputs):
            if not isinstance(var.type, TensorType) or (elemwise and fused(var)):
                continue
            size = _static_size(var)
            total += UNKNOWN_SIZE_COST if size is None else size
    return total
