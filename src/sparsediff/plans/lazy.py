"""Lazy sparse Jacobians and Hessians: one graph node that compilation expands.

>>> J = sd.jacobian(F, x, lazy=True)     # one SparseJacobian node, nothing planned yet
>>> fn = pytensor.function([x], [J @ v, J.T @ w, J])

The eager :func:`sparsediff.jacobian` detects, colors and builds at the moment it is called, on
the graph as the user wrote it, and whatever the user then does with ``J`` pays for the whole
matrix. The lazy node instead keeps the expression as an inner graph (its inputs are the free
inputs of the expression, ``wrt`` first) and its output has exactly the sparse type the eager
path returns, so every consumer of an eager ``J`` accepts it. During compilation:

1. in ``canonicalize`` (which runs in every mode, ``FAST_COMPILE`` included), products are
   rewritten before any plan exists: ``J @ v`` (``Matmul``, ``pytensor.sparse.dot``,
   ``structured_dot``) becomes one JVP, ``Jᵀ @ w`` one VJP, ``H @ v`` (and ``Hᵀ @ v``) one HVP,
   ``J[r0:r1, c0:c1]`` a plan of that block only, and ``diag(J)`` of a square Jacobian a
   diagonal-only plan (a distance-1 coloring of
   ``P + Pᵀ``: fewer colors than the full matrix needs);
2. after ``stabilize`` (position :data:`EXPAND_POSITION`, before ``specialize``), the nodes left
   are expanded: the inner expression — with the constants the outer graph feeds it substituted
   — is simplified by ``canonicalize`` and ``stabilize`` first, so detection sees the
   simplified graph (a pattern can only lose entries a rewrite proved zero, never miss a
   nonzero), then planned and built as the eager path does.

Several lazy Jacobians of the same expression with the same options compare equal (their inner
graphs are compared with ``equal_computations``), so PyTensor's merge rewrite leaves one node:
one plan. ``pytensor.grad`` through the node expands it symbolically (``pullback``), so the
gradient is the eager one; :mod:`sparsediff.linalg` expands it before reading the CSR triple.
A node that reaches ``perform`` unexpanded (a mode without rewrites) is expanded and compiled
once, on first use.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytensor
import pytensor.sparse as ps
import pytensor.tensor as pt
import scipy.sparse as sp
from pytensor.gradient import DisconnectedInputError, grad, pushforward
from pytensor.graph.basic import Apply, Constant, Variable, equal_computations
from pytensor.graph.op import Op
from pytensor.graph.replace import clone_replace, graph_replace, vectorize_graph
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.graph.rewriting.utils import rewrite_graph
from pytensor.graph.traversal import ancestors, graph_inputs
from pytensor.sparse.basic import Diag, GetItem2d, Transpose
from pytensor.sparse.math import Dot, StructuredDot
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.math import Dot as DenseDot

from sparsediff._validate import as_expression, as_wrt_list, check_cost
from sparsediff.coloring import color
from sparsediff.coloring.validity import as_colors
from sparsediff.compression import compressed_pushforward, forward_rules, seed_matrix
from sparsediff.compression.products import pushforward_through_pullback
from sparsediff.plans.common import check_format
from sparsediff.plans.hessian import hessian, hessian_plan
from sparsediff.plans.jacobian import jacobian, jacobian_plan
from sparsediff.sparsity import jacobian_sparsity

__all__ = [
    "EXPAND_POSITION",
    "SparseJacobian",
    "diagonal_colors",
    "expand",
    "lazy_hessian",
    "lazy_jacobian",
]

#: Where in ``optdb`` the expansion runs: after ``stabilize`` (1.5), before ``specialize`` (2).
EXPAND_POSITION = 1.9

_JACOBIAN_MODES = ("auto", "forward", "reverse", "bidirectional", "dense")


def _key(value: Any):
    """A hashable stand-in for an option (arrays and patterns compare by identity)."""
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


class SparseJacobian(Op):
    """``d expression / d wrt`` (``kind="jacobian"``) or ``d² cost / d wrt²`` (``"hessian"``)
    as one node, expanded at compile time (see the module docstring).

    ``inner_inputs[0]`` stands for ``wrt``, the others for the free inputs of the expression;
    ``options`` are the keywords of the eager :func:`sparsediff.jacobian` /
    :func:`sparsediff.hessian`.
    """

    def __init__(self, inner_inputs, inner_output, kind: str, options: dict):
        self.inner_inputs = list(inner_inputs)
        self.inner_output = inner_output
        self.kind = kind
        self.options = dict(options)
        self.format = self.options.get("format", "csr")
        self._compiled = None

    # Equal Ops (same inner computation and options) merge: several lazy Jacobians, one plan.
    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is not type(self) or other.kind != self.kind:
            return False
        if len(other.inner_inputs) != len(self.inner_inputs):
            return False
        if {k: _key(v) for k, v in self.options.items()} != {
            k: _key(v) for k, v in other.options.items()
        }:
            return False
        if [i.type for i in self.inner_inputs] != [i.type for i in other.inner_inputs]:
            return False
        return equal_computations(
            [self.inner_output], [other.inner_output], self.inner_inputs, other.inner_inputs
        )

    def __hash__(self):
        return hash(
            (
                type(self),
                self.kind,
                tuple(i.type for i in self.inner_inputs),
                self.inner_output.type,
                tuple(sorted((k, _key(v)) for k, v in self.options.items())),
            )
        )

    def __str__(self):
        name = "SparseHessian" if self.kind == "hessian" else "SparseJacobian"
        return f"{name}{{{self.format}}}"

    @property
    def shape(self) -> tuple[int, int]:
        n = int(np.prod(self.inner_inputs[0].type.shape, dtype=np.int64))
        if self.kind == "hessian":
            return n, n
        return int(np.prod(self.inner_output.type.shape, dtype=np.int64)), n

    def make_node(self, *inputs):
        if len(inputs) != len(self.inner_inputs):
            raise TypeError(f"{self} takes {len(self.inner_inputs)} inputs, got {len(inputs)}")
        inputs = [i.type.filter_variable(o) for i, o in zip(self.inner_inputs, inputs, strict=True)]
        out = ps.SparseTensorType(format=self.format, dtype=self.inner_output.dtype)()
        return Apply(self, inputs, [out])

    def inner_result(self, simplify: bool = False) -> Variable:
        """The eager sparse result in terms of ``inner_inputs`` (optionally simplified first)."""
        expression = self.inner_output
        if simplify:
            expression = _simplify(expression)
        return _eager(self.kind, expression, self.inner_inputs[0], self.options)

    def perform(self, node, inputs, outputs):
        # Reached only when the graph was compiled without rewrites: expand once, then run.
        if self._compiled is None:
            self._compiled = pytensor.function(
                self.inner_inputs, self.inner_result(), on_unused_input="ignore"
            )
        outputs[0][0] = self._compiled(*inputs)

    def pullback(self, inputs, outputs, output_grads):
        J = expand(self, inputs)
        floats = [i for i in inputs if i.type.dtype.startswith("float")]
        gs = iter(
            grad(
                None,
                floats,
                known_grads={J: output_grads[0]},
                disconnected_inputs="ignore",
                return_disconnected="zero",
            )
        )
        # integer inputs (indices): a zero gradient of float type, as PyTensor's Ops give
        return [
            next(gs)
            if i.type.dtype.startswith("float")
            else pt.zeros_like(i, dtype=pytensor.config.floatX)
            for i in inputs
        ]


# --------------------------------------------------------------------------------------------
# Building the node
# --------------------------------------------------------------------------------------------


def _make(kind: str, expression: Variable, wrt: Variable, options: dict) -> Variable:
    if wrt not in set(ancestors([expression])):
        if options.get("disconnected_inputs", "raise") == "raise":
            raise DisconnectedInputError(
                f"{'cost' if kind == 'hessian' else 'expression'} does not depend on wrt "
                f"{wrt}; pass disconnected_inputs='warn' or 'ignore' for an all-zero result"
            )
    free = [
        v
        for v in graph_inputs([expression], blockers=[wrt])
        if v is not wrt and not isinstance(v, Constant)
    ]
    outer = [wrt, *free]
    inner = [v.type() for v in outer]
    for i, o in zip(inner, outer, strict=True):
        i.name = o.name
    (inner_output,) = clone_replace([expression], replace=dict(zip(outer, inner, strict=True)))
    op = SparseJacobian(inner, inner_output, kind, options)
    return op(*outer)


def lazy_jacobian(expression, wrt, mode: str = "auto", **kwargs) -> Variable:
    """``sd.jacobian(expression, wrt, lazy=True)``: the checks the eager call makes on its
    arguments happen here; detection, coloring and building happen at compile time."""
    wrt_list, is_list = as_wrt_list(wrt)
    if is_list:  # one node per block: each is planned (and pruned) on its own
        _no_block_options(kwargs)
        return [lazy_jacobian(expression, w, mode, **kwargs) for w in wrt_list]
    expression = as_expression(expression)
    if mode not in _JACOBIAN_MODES:
        raise ValueError(
            f"unknown mode {mode!r}: use one of {', '.join(map(repr, _JACOBIAN_MODES))}"
        )
    check_format(kwargs.get("format", "csr"))
    _check_keywords("jacobian_plan", expression, wrt, mode, **kwargs)
    return _make("jacobian", expression, wrt_list[0], {"mode": mode, **kwargs})


def lazy_hessian(cost, wrt, **kwargs) -> Variable:
    """``sd.hessian(cost, wrt, lazy=True)``; see :func:`lazy_jacobian`."""
    cost = check_cost(cost)
    wrt_list, is_list = as_wrt_list(wrt)
    if is_list:  # the diagonal blocks, as the eager call (and pytensor.gradient.hessian) give
        _no_block_options(kwargs)
        return [lazy_hessian(cost, w, **kwargs) for w in wrt_list]
    check_format(kwargs.get("format", "csr"))
    _check_keywords("hessian_plan", cost, wrt, **kwargs)
    return _make("hessian", cost, wrt_list[0], kwargs)


def _no_block_options(kwargs: dict) -> None:
    """With a list ``wrt`` each block gets its own lazy node; a pattern or coloring given for
    the whole list cannot be split among them."""
    given = [k for k in ("sparsity", "coloring") if kwargs.get(k) is not None]
    if given:
        raise ValueError(
            f"lazy=True with a list wrt plans each block on its own: {', '.join(given)} for "
            "the whole list cannot be used; pass lazy=False, or one wrt per call"
        )


def _check_keywords(name: str, *args, **kwargs) -> None:
    """An unknown keyword fails at the call, with the eager ``TypeError``."""
    planner = {"jacobian_plan": jacobian_plan, "hessian_plan": hessian_plan}[name]
    inspect.signature(planner).bind(*args, **kwargs)


def _eager(kind: str, expression: Variable, wrt: Variable, options: dict) -> Variable:

    if kind == "hessian":
        return hessian(expression, wrt, **options)
    return jacobian(expression, wrt, **options)


def _simplify(expression: Variable) -> Variable:
    """``expression`` after ``canonicalize`` and ``stabilize`` (on a clone: the inner graph of
    the Op is never modified)."""
    return rewrite_graph(expression, include=("canonicalize", "stabilize"), clone=True)


def _outer(op: SparseJacobian, inputs, inner_graph: Variable | list) -> Variable | list:
    return graph_replace(inner_graph, dict(zip(op.inner_inputs, inputs, strict=True)), strict=False)


def _substitute_constants(op: SparseJacobian, inputs) -> SparseJacobian:
    """A copy of ``op`` whose inner graph has the constants the outer graph feeds it inlined
    (so that simplification can use them); ``wrt`` is never inlined."""
    repl = {
        i: o
        for i, o in zip(op.inner_inputs[1:], inputs[1:], strict=True)
        if isinstance(o, Constant)
    }
    if not repl:
        return op
    (out,) = clone_replace([op.inner_output], replace=repl)
    return SparseJacobian(op.inner_inputs, out, op.kind, op.options)


def expand(op_or_var, inputs=None) -> Variable:
    """The eager sparse result of a lazy node, in terms of its outer inputs.

    Takes the output of a :class:`SparseJacobian` node (or the Op and its inputs); anything
    else is returned as it is. The inner expression is simplified (``canonicalize``,
    ``stabilize``) before detection.
    """
    if inputs is None:
        var = op_or_var
        if not (var.owner is not None and isinstance(var.owner.op, SparseJacobian)):
            return var
        op, inputs = var.owner.op, var.owner.inputs
    else:
        op = op_or_var
    op = _substitute_constants(op, inputs)
    return _outer(op, inputs, op.inner_result(simplify=True))


# --------------------------------------------------------------------------------------------
# Products: J v (one JVP), Jᵀ w (one VJP), H v (one HVP)
# --------------------------------------------------------------------------------------------


def _jvp(expression: Variable, wrt: Variable, tangent: Variable) -> Variable:
    """``J @ tangent`` (``tangent`` shaped like ``wrt``), flattened: the Ops' forward rules,
    the double pullback where an Op has none."""

    if forward_rules.has_forward_rule([expression]):
        (out,) = forward_rules.pushforward([expression], [wrt], [tangent])
    else:
        try:
            out = pushforward(
                expression,
                [wrt],
                [tangent],
                use_op_pushforward=True,
                disconnected_outputs="ignore",
            )
        except Exception:
            out = pushforward_through_pullback(expression, [wrt], [tangent])
    return pt.as_tensor_variable(out).astype(expression.dtype).ravel()


def _vjp(expression: Variable, wrt: Variable, cotangent: Variable) -> Variable:
    """``Jᵀ @ cotangent`` (``cotangent`` shaped like ``expression``), flattened."""
    cost = (expression * cotangent).sum()
    return grad(cost, wrt, disconnected_inputs="ignore").astype(expression.dtype).ravel()


def _hvp(cost: Variable, wrt: Variable, tangent: Variable) -> Variable:
    """``H @ tangent``, flattened (reverse over reverse: defined wherever the gradient is)."""
    g = grad(cost, wrt, disconnected_inputs="ignore")
    return grad((g * tangent).sum(), wrt, disconnected_inputs="ignore").astype(cost.dtype).ravel()


def _product(op: SparseJacobian, inputs, vec: Variable, transposed: bool) -> Variable:
    """``J @ vec`` (or ``Jᵀ @ vec``) for a dense ``vec`` of shape ``(k,)`` or ``(k, p)``,
    built on the inner graph and mapped to the outer inputs."""
    expression, wrt = op.inner_output, op.inner_inputs[0]
    if op.kind == "hessian":
        shape_in, fn = wrt.type.shape, _hvp
    elif transposed:
        shape_in, fn = expression.type.shape, _vjp
    else:
        shape_in, fn = wrt.type.shape, _jvp
    t = pt.tensor(dtype=expression.dtype, shape=shape_in)
    single = fn(expression, wrt, t)
    if vec.ndim == 1:
        inner = graph_replace(single, {t: vec.astype(t.dtype).reshape(shape_in)}, strict=False)
    else:
        batch = vec.T.astype(t.dtype).reshape((vec.shape[1], *shape_in))
        inner = vectorize_graph(single, {t: batch}).T  # (k, out) -> (out, k)
    return _outer(op, inputs, inner)


def _lazy_owner(var: Variable):
    """``(op, inputs, transposed)`` when ``var`` is a lazy node's output or its transpose."""
    transposed = False
    if var.owner is not None and isinstance(var.owner.op, Transpose):
        var, transposed = var.owner.inputs[0], True
    if var.owner is not None and isinstance(var.owner.op, SparseJacobian):
        return var.owner.op, var.owner.inputs, transposed
    return None


def _is_matmul(op) -> bool:
    return isinstance(op, Blockwise) and isinstance(op.core_op, DenseDot)


@node_rewriter([Dot, StructuredDot, Blockwise])
def lazy_jacobian_product(fgraph, node):
    """``J @ v`` → one JVP, ``Jᵀ @ w`` → one VJP, ``H @ v`` → one HVP (no plan, no coloring)."""
    if isinstance(node.op, Blockwise) and not _is_matmul(node.op):
        return None
    a, b = node.inputs
    found = _lazy_owner(a)
    if found is None or isinstance(b.type, ps.SparseTensorType) or b.ndim not in (1, 2):
        return None
    op, inputs, transposed = found
    m, n = op.shape
    rows = n if transposed else m
    cols = m if transposed else n
    if b.type.shape[0] is not None and b.type.shape[0] != cols:
        return None  # a shape error: leave it to the Op that reports it
    try:
        out = _product(op, inputs, b, transposed)
    except Exception:
        if not isinstance(node.op, Blockwise):
            return None  # the sparse product of the expanded J computes it
        # A dense Matmul cannot multiply the expanded sparse J: give it the sparse product.
        J = expand(op, inputs)
        out = ps.structured_dot(J.T if transposed else J, b if b.ndim == 2 else b[:, None])
        out = out if b.ndim == 2 else out[:, 0]
    old = node.outputs[0]
    if b.ndim == 2 and out.type.shape[0] is None:
        out = pt.specify_shape(out, (rows, None))
    return [old.type.filter_variable(out.astype(old.dtype), allow_convert=True)]


# --------------------------------------------------------------------------------------------
# diag(J): the diagonal only
# --------------------------------------------------------------------------------------------


def diagonal_colors(pattern) -> np.ndarray:
    """Colors of the columns of a square pattern ``P`` such that ``(J @ seed_c)[j]`` is
    ``J[j, j]`` alone for every column ``j`` of color ``c``: a distance-1 coloring of the
    graph of ``P + Pᵀ`` (off the diagonal) — the column coloring of its edge-incidence matrix
    (one row per edge, nonzero at both ends), which has ``O(nnz)`` entries. The full Jacobian
    needs a distance-2 coloring, so usually more colors."""

    P = sp.coo_array(sp.csr_array(pattern, dtype=bool))
    n = P.shape[1]
    off = P.row != P.col
    r, c = np.minimum(P.row[off], P.col[off]), np.maximum(P.row[off], P.col[off])
    edges = np.unique(r * np.int64(n) + c)
    if edges.size == 0:
        return np.zeros(n, dtype=np.int64)
    rows = np.repeat(np.arange(edges.size), 2)
    cols = np.stack([edges // n, edges % n], axis=1).ravel()
    E = sp.csr_array((np.ones(cols.size, dtype=bool), (rows, cols)), shape=(edges.size, n))
    return as_colors(color(E, kind="column"), n, "column")


def _diagonal_only(op: SparseJacobian) -> Variable:
    """``diag(J)`` of a square Jacobian (or Hessian) with one JVP per :func:`diagonal_colors`
    color, on the simplified expression."""

    expression, wrt = _simplify(op.inner_output), op.inner_inputs[0]
    if op.kind == "hessian":
        expression = grad(expression, wrt, disconnected_inputs="ignore")
    pattern = jacobian_sparsity(expression, wrt, disconnected_inputs="ignore")
    colors = diagonal_colors(pattern)
    n = colors.size
    n_colors = int(colors.max(initial=-1)) + 1
    seeds = seed_matrix(colors, n_colors, dtype=expression.dtype)
    B = compressed_pushforward(expression, [wrt], seeds)  # (n_colors, n)
    return B[pt.constant(colors), pt.arange(n)]


@node_rewriter([Diag])
def lazy_jacobian_diagonal(fgraph, node):
    """``diag(J)`` of a square lazy Jacobian → the diagonal only (fewer colors)."""
    found = _lazy_owner(node.inputs[0])
    if found is None:
        return None
    op, inputs, _ = found
    m, n = op.shape
    if m != n:
        return None
    op = _substitute_constants(op, inputs)
    out = _outer(op, inputs, _diagonal_only(op))
    old = node.outputs[0]
    return [old.type.filter_variable(out.astype(old.dtype), allow_convert=True)]


# --------------------------------------------------------------------------------------------
# J[r0:r1, c0:c1]: plan only the block
# --------------------------------------------------------------------------------------------

#: Options that describe the whole matrix, meaningless for a block (dropped when planning one).
_WHOLE_MATRIX_OPTIONS = ("sparsity", "coloring", "kind", "method")


def _constant_slice(start, stop, step) -> slice | None:
    values = []
    for v in (start, stop, step):
        if not isinstance(v, Constant):
            return None
        data = v.data
        values.append(None if data is None else int(np.asarray(data)))
    return slice(*values)


def _block(op: SparseJacobian, rows: slice, cols: slice) -> Variable:
    """``J[rows, cols]`` planned on its own: the rows are a subset of the (simplified)
    outputs and the columns the derivative with respect to a new variable ``z`` set into
    ``wrt`` at those positions (``wrt.ravel()[cols] = z``, evaluated at ``z = wrt[cols]``), so
    detection and coloring see only the block."""

    expression, x = _simplify(op.inner_output), op.inner_inputs[0]
    if op.kind == "hessian":
        expression = grad(expression, x, disconnected_inputs="ignore")
    n = int(np.prod(x.type.shape, dtype=np.int64))
    n_cols = len(range(n)[cols])
    z = pt.tensor(dtype=x.dtype, shape=(n_cols,), name="block_wrt")
    x_block = pt.set_subtensor(x.ravel()[cols], z).reshape(x.type.shape)
    (selected,) = clone_replace([expression.ravel()[rows]], replace={x: x_block})
    options = {k: v for k, v in op.options.items() if k not in _WHOLE_MATRIX_OPTIONS}
    options.setdefault("disconnected_inputs", "ignore")
    J = jacobian(selected, z, **options)
    return graph_replace(J, {z: x.ravel()[cols]}, strict=False)


@node_rewriter([GetItem2d])
def lazy_jacobian_block(fgraph, node):
    """``J[r0:r1, c0:c1]`` (constant bounds) → a plan of that block only."""
    found = _lazy_owner(node.inputs[0])
    if found is None or found[2]:
        return None
    op, inputs, _ = found
    rows = _constant_slice(*node.inputs[1:4])
    cols = _constant_slice(*node.inputs[4:7])
    if rows is None or cols is None or node.outputs[0].format != op.format:
        return None
    m, n = op.shape
    if len(range(m)[rows]) == 0 or len(range(n)[cols]) == 0:
        return None
    op = _substitute_constants(op, inputs)
    return [_outer(op, inputs, _block(op, rows, cols))]


# --------------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------------


@node_rewriter([SparseJacobian])
def expand_lazy_jacobian(fgraph, node):
    """Replace a lazy node by the eager sparse graph, planned on the simplified expression."""
    out = expand(node.op, node.inputs)
    return [node.outputs[0].type.filter_variable(out, allow_convert=True)]
