"""Stage 3: compressed automatic differentiation.

A coloring groups structurally orthogonal columns (or rows) of a Jacobian. Summing the unit
vectors of one group gives one *seed*; the product of the Jacobian with all seeds at once is the
compressed matrix, from which every nonzero can be read back (stage 4).

* forward mode: ``B = J @ S`` with ``S`` of shape ``(n, n_colors)``: one JVP per color, all
  colors in one graph by ``vectorize_graph(pushforward(y, x, t), {t: Sᵀ})``;
* reverse mode: ``Bᵀ = Wᵀ @ J`` with ``W`` of shape ``(m, n_colors)``: one VJP per color,
  ``vectorize_graph(pullback(y, x, w), {w: Wᵀ})``;
* Hessians: ``B = H @ S``, batched Hessian-vector products, forward-over-reverse
  (``pushforward`` of the gradient) or reverse-over-reverse (``pullback`` of the gradient).

Seeds are stored batch-first, shape ``(n_colors, n)``: the leading axis is the one
``vectorize_graph`` adds. Every compressed graph is returned with its batch axis first and the
remaining axes flattened: ``(n_colors, m)`` for forward mode, ``(n_colors, n)`` for reverse mode
and Hessians.

Seeds are constants, and so is everything that depends only on them (padded seed matrices,
their shifts, the linear part of the function applied to them). PyTensor does not fold large
constant ``Alloc``s by itself, so :func:`fold_constants` does it once, at plan time: the
compiled graph then contains nothing per call but the arithmetic that involves the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad, pullback, pushforward
from pytensor.graph.basic import Constant, Variable, clone_get_equiv
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.op import HasInnerGraph
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.graph.rewriting.utils import rewrite_graph
from pytensor.graph.traversal import graph_inputs, toposort
from pytensor.scalar import basic as ps
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.rewriting.basic import unconditional_constant_folding
from pytensor.tensor.type import TensorType

from sparsediff import forward_rules
from sparsediff.vectorize import core_shapes  # (importing registers vectorization rules)

__all__ = [
    "compressed_hvp",
    "compressed_pullback",
    "compressed_pushforward",
    "fold_constants",
    "graph_cost",
    "isolate_inner_graphs",
    "neutral_seed_matrix",
    "seed_matrix",
]

#: Constants larger than this many elements are never created by :func:`fold_constants`,
#: unless the caller raises the limit (the plans raise it to a few times the seed size).
DEFAULT_FOLD_LIMIT = 1 << 24


def isolate_inner_graphs(
    outputs: Sequence[Variable], wrt: Sequence[Variable]
) -> tuple[list[Variable], list[Variable]]:
    """Clone ``outputs`` with fresh copies of every inner graph (``Scan``, ``OpFromGraph``).

    PyTensor 3.0.7 compiles the inner graph of a vectorized ``Scan`` gradient in place, and
    that inner graph shares nodes with the user's ``Scan``: after compiling a compressed graph
    the user's own ``pytensor.grad`` of the same expression fails ("grad is not implemented for
    Composite"). Differentiating a clone keeps the user's graph untouched. Graphs without inner
    graphs are returned as they are (so that they merge with the user's other outputs).
    """
    outputs, wrt = list(outputs), list(wrt)
    nodes = list(toposort(outputs))
    if not any(isinstance(n.op, HasInnerGraph) for n in nodes):
        return outputs, wrt
    roots = [v for v in graph_inputs(outputs)]
    equiv = clone_get_equiv(
        roots, outputs, copy_inputs=False, copy_orphans=False, clone_inner_graphs=True
    )
    return [equiv.get(o, o) for o in outputs], [equiv.get(w, w) for w in wrt]


def seed_matrix(colors: np.ndarray, n_colors: int, dtype="float64") -> np.ndarray:
    """The seed matrix of a coloring, batch-first: ``S[c, j] = 1`` iff ``colors[j] == c``.

    ``colors`` holds one color per column (forward mode, Hessians) or per row (reverse mode).
    The result has shape ``(n_colors, len(colors))``; its transpose is the textbook
    ``(n, n_colors)`` seed matrix.
    """
    colors = np.asarray(colors, dtype=np.int64)
    if colors.ndim != 1:
        raise ValueError(f"colors must be one-dimensional, got shape {colors.shape}")
    if colors.size and (colors.min() < 0 or colors.max() >= n_colors):
        raise ValueError(
            f"colors must lie in [0, {n_colors}), got [{colors.min()}, {colors.max()}]"
        )
    seeds = np.zeros((n_colors, colors.size), dtype=dtype)
    seeds[colors, np.arange(colors.size)] = 1
    return seeds


def neutral_seed_matrix(colors: np.ndarray, dtype="float64") -> np.ndarray:
    """Seeds of one side of a bidirectional coloring: ``S[c - 1, j] = 1`` iff ``colors[j] == c``
    for ``c = 1 … max``; vertices of the neutral color 0 are in no seed."""
    colors = np.asarray(colors, dtype=np.int64)
    k = int(colors.max(initial=0))
    seeds = np.zeros((k, colors.size), dtype=dtype)
    used = np.flatnonzero(colors > 0)
    seeds[colors[used] - 1, used] = 1
    return seeds


def _tangent_like(var: Variable) -> Variable:
    """A fresh root variable of ``var``'s type, to stand for one seed."""
    return var.type()


def _split_seeds(seeds: np.ndarray, wrt: Sequence[Variable]) -> list[Variable]:
    """Cut the columns of a batch-first seed matrix into one constant per ``wrt``, reshaped."""
    out = []
    offset = 0
    n_colors = seeds.shape[0]
    for w in wrt:
        size = int(np.prod(w.type.shape, dtype=np.int64))
        block = seeds[:, offset : offset + size].reshape((n_colors, *w.type.shape))
        out.append(pt.constant(block.astype(w.dtype)))
        offset += size
    if offset != seeds.shape[1]:
        raise ValueError(f"seeds have {seeds.shape[1]} columns but wrt has {offset} elements")
    return out


def _flatten_batch(var: Variable, n_colors: int) -> Variable:
    return var.reshape((n_colors, -1)) if var.ndim != 2 else var


def compressed_pushforward(
    expression: Variable,
    wrt: Sequence[Variable],
    seeds: np.ndarray,
    use_op_pushforward: bool | Literal["auto"] = "auto",
) -> Variable:
    """``B`` of shape ``(n_colors, expression.size)``: row ``c`` is ``J @ seeds[c]``.

    ``seeds`` is batch-first, ``(n_colors, sum(w.size for w in wrt))``. With
    ``use_op_pushforward="auto"`` the Ops' own forward rules are used where every Op has one,
    and the double-pullback path otherwise.
    """
    n_colors = seeds.shape[0]
    tangents = [_tangent_like(w) for w in wrt]
    batched = _split_seeds(seeds, wrt)

    def build(use_op: bool | str) -> Variable:
        if use_op == "node by node":  # sparsediff's forward rules, see forward_rules.py
            (jvp,) = forward_rules.pushforward([expression], list(wrt), tangents)
        elif use_op:
            jvp = pushforward(
                expression,
                list(wrt),
                tangents,
                use_op_pushforward=True,
                disconnected_outputs="ignore",
            )
        else:
            jvp = pushforward_through_pullback(expression, list(wrt), tangents)
        if not isinstance(jvp.type, TensorType):
            # e.g. a NullType: some Op has no forward rule
            raise NotImplementedError(f"pushforward gave {jvp.type}")
        jvp = pt.as_tensor_variable(jvp).astype(expression.dtype)
        with core_shapes():
            out = vectorize_graph(jvp, dict(zip(tangents, batched, strict=True)))
        return _broadcast_batch(out, n_colors, expression.type.shape)

    if use_op_pushforward is True:
        return build(True)
    if use_op_pushforward is False:
        return build(False)
    routes: list[bool | str] = [True, False]
    if _has_pullback_only_override(expression):
        routes = [False]
    if forward_rules.has_forward_rule([expression]):
        routes = ["node by node"]
    else:
        routes.append("node by node")
    for route in routes[:-1]:
        try:
            return build(route)
        except Exception:
            pass
    return build(routes[-1])


def _has_pullback_only_override(expression: Variable) -> bool:
    """An ``OpFromGraph`` whose pullback is overridden but not its pushforward: its own forward
    rule differentiates the inner graph and may disagree with the override (which the detected
    pattern and reverse mode follow), so forward mode goes through the pullback instead."""
    from pytensor.compile.builders import OpFromGraph

    return any(
        isinstance(node.op, OpFromGraph)
        and getattr(node.op, "pullback_overrides", None) is not None
        and getattr(node.op, "pushforward_overrides", None) is None
        for node in toposort([expression])
    )


def pushforward_through_pullback(
    expression: Variable, wrt: Sequence[Variable], tangents: Sequence[Variable]
) -> Variable:
    """``J @ t`` by differentiating the pullback with respect to its cotangent.

    ``u ↦ Σ_i <pullback(y, wrt_i, u), t_i>`` is linear in ``u`` with gradient ``Σ_i J_i t_i``.
    Unlike ``pytensor.gradient.pushforward`` (3.0.7), which passes the tangents as
    ``known_grads`` of the input cotangents, this stays correct when one input cotangent is
    computed from another (e.g. ``solve``'s gradient with respect to ``A`` uses the one with
    respect to ``b``: ``known_grads`` then drops the ``A`` contribution).
    """
    cot = pt.zeros_like(expression)
    vjps = pullback(expression, list(wrt), cot, disconnected_inputs="ignore")
    inner = pt.add(*[(v * t).sum() for v, t in zip(vjps, tangents, strict=True)])
    return grad(inner, cot, disconnected_inputs="ignore")


def _broadcast_batch(out: Variable, n_colors: int, core_shape) -> Variable:
    """Give ``out`` its full batch shape and flatten the core axes."""
    core_shape = tuple(int(s) for s in core_shape)
    if out.ndim == len(core_shape):  # disconnected: vectorize_graph had nothing to batch
        out = pt.broadcast_to(out, (n_colors, *core_shape))
    return out.reshape((n_colors, int(np.prod(core_shape, dtype=np.int64))))


def compressed_pullback(
    expression: Variable,
    wrt: Sequence[Variable],
    seeds: np.ndarray,
) -> list[Variable]:
    """``Bᵀ`` blocks, one per ``wrt``, each ``(n_colors, w.size)``: row ``c`` is ``seeds[c] @ J``.

    ``seeds`` is batch-first, ``(n_colors, expression.size)``.
    """
    n_colors = seeds.shape[0]
    shape = tuple(int(s) for s in expression.type.shape)
    cot = expression.type()
    batched = pt.constant(seeds.reshape((n_colors, *shape)).astype(expression.dtype))
    vjps = pullback(
        expression,
        list(wrt),
        cot,
        disconnected_inputs="ignore",
        return_disconnected="zero",
    )
    with core_shapes():
        outs = vectorize_graph(list(vjps), {cot: batched})
    return [
        _broadcast_batch(o.astype(w.dtype), n_colors, w.type.shape)
        for o, w in zip(outs, wrt, strict=True)
    ]


HVPMethod = Literal["forward-over-reverse", "reverse-over-reverse"]


def compressed_hvp(
    cost: Variable,
    wrt: Variable,
    seeds: np.ndarray,
    method: HVPMethod = "forward-over-reverse",
) -> Variable:
    """``B`` of shape ``(n_colors, wrt.size)``: row ``c`` is ``H @ seeds[c]``.

    ``forward-over-reverse`` pushes the seeds forward through the gradient graph (falling back
    to the double pullback when an Op has no forward rule); ``reverse-over-reverse`` pulls them
    back through it (the Hessian is symmetric, so ``Hᵀ s = H s``).
    """
    g = grad(cost, wrt, disconnected_inputs="ignore")
    if method == "forward-over-reverse":
        return compressed_pushforward(g, [wrt], seeds)
    if method == "reverse-over-reverse":
        return compressed_pullback(g, [wrt], seeds)[0]
    raise ValueError(
        f"unknown Hessian method {method!r}: use 'forward-over-reverse' or 'reverse-over-reverse'"
    )


# --------------------------------------------------------------------------------------------
# Plan-time folding of everything that depends only on constants
# --------------------------------------------------------------------------------------------


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
        return unconditional_constant_folding.transform(fgraph, node)

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


def fold_constants(
    outputs: Sequence[Variable],
    limit: int = DEFAULT_FOLD_LIMIT,
    max_rounds: int = 6,
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
        ignore_newtrees=False,
    )
    fgraph = FunctionGraph(outputs=outputs, clone=True, copy_inputs=False)
    previous = None
    for _ in range(max_rounds):
        rewrite_graph(fgraph, include=("ShapeOpt", "canonicalize"))
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


def graph_cost(outputs: Sequence[Variable], unknown: int = 1 << 40) -> int:
    """A crude measure of per-call work: elements produced by the non-view Ops of the graph.

    Used to choose between two graphs computing the same thing (e.g. the two Hessian-vector
    product methods). Shape bookkeeping and views are free; an unknown static size costs
    ``unknown``.
    """
    total = 0
    for node in toposort(list(outputs)):
        name = type(node.op).__name__
        if name in _SHAPE_OPS or name in _VIEW_OPS:
            continue
        for out in node.outputs:
            size = _static_size(out)
            total += unknown if size is None else size
    return total
