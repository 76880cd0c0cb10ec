"""What ``root`` and ``minimize`` share: the Op shape, unknowns packing, the implicit gradient.

The Op holds an inner graph ``[x, *params] -> implicit function`` (``F`` for root, ``∇f`` for
minimize) and solves it in ``perform`` with a sparse Newton method; the value of the outer
``x`` input at call time is the initial guess, as in ``pytensor.tensor.optimize``. Its gradient
is the implicit-function theorem written as two sparse steps and no dense matrix:

    λ  = A(x*)⁻ᵀ ḡ                    A = ∂F/∂x (root) or the Hessian (minimize): ImplicitAdjoint
    ḡθ = −(∂F/∂θ)ᵀ λ                  one pullback of F at x* with cotangent λ (a graph)

The adjoint solve reuses the factor of the last Newton step when the Op's own last solve is the
one being differentiated (iterative refinement against the exact ``A(x*)``, so the result is the
exact adjoint, not the adjoint of a neighbouring matrix); otherwise — other values, another
process, a refinement that stalls — it factors ``A(x*)``. The cache is an optimisation only:
results never depend on it. One Op instance is not meant to be evaluated from several threads
at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.null_type import NullType
from pytensor.graph.op import HasInnerGraph, Op, io_connection_pattern
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import graph_inputs
from pytensor.tensor.type import TensorType
from pytensor.tensor.variable import TensorVariable

from sparsediff._validate import check_wrt
from sparsediff.optimize import _factor

__all__ = ["ConvergenceWarning", "ImplicitAdjoint", "OptimizeOp", "pack_unknowns"]


class ConvergenceWarning(RuntimeWarning):
    """A solve inside ``sd.optimize.root``/``minimize`` failed; its ``success`` output is False."""


# --------------------------------------------------------------------------------------------
# unknowns: one flat vector inside, the user's variables outside


@dataclass(frozen=True)
class Packing:
    """How the user's unknowns map to the inner flat vector ``x``."""

    variables: tuple[TensorVariable, ...]  # as the user gave them (the initial guesses)
    shapes: tuple[tuple[int, ...], ...]
    is_list: bool
    flat: TensorVariable  # the inner unknown the expression is rewritten in

    @property
    def size(self) -> int:
        return int(self.flat.type.shape[0])

    def initial_guess(self) -> TensorVariable:
        """The outer value of ``x`` at call time: the user's variables, raveled and joined."""
        if len(self.variables) == 1 and self.variables[0].ndim == 1:
            return self.variables[0]
        parts = [v.ravel().astype(self.flat.dtype) for v in self.variables]
        return parts[0] if len(parts) == 1 else pt.concatenate(parts)

    def unpack(self, x_star: TensorVariable):
        out, offset = [], 0
        for v, shape in zip(self.variables, self.shapes, strict=True):
            size = int(np.prod(shape, dtype=np.int64))
            piece = x_star[offset : offset + size].reshape(shape).astype(v.dtype)
            out.append(piece)
            offset += size
        if self.is_list:
            return out
        if len(self.variables) == 1 and self.variables[0].ndim == 1:
            return x_star
        return out[0]


def pack_unknowns(expressions: list[Variable], variables, what: str):
    """Rewrite ``expressions`` in one flat unknown; check the variables are usable unknowns."""
    is_list = isinstance(variables, list | tuple)
    items = list(variables) if is_list else [variables]
    if not items:
        raise ValueError(f"{what}: the list of variables is empty")
    if len(set(items)) != len(items):
        raise ValueError(f"{what}: the same variable appears twice in the variables")
    shapes = []
    for v in items:
        shapes.append(check_wrt(v))
    dtype = ps.upcast(*(v.dtype for v in items))
    n = int(sum(int(np.prod(s, dtype=np.int64)) for s in shapes))
    if n == 0:
        raise ValueError(f"{what}: the variables have no entries")
    ancestors = set(graph_inputs(expressions, blockers=items))
    for v in items:
        if v not in ancestors:
            raise ValueError(
                f"{what}: the variable {v} is not an input of the computational graph of the "
                "expression"
            )
    if len(items) == 1 and items[0].ndim == 1:
        flat = items[0].type()
        flat.name = items[0].name
        replaced = graph_replace(expressions, {items[0]: flat}, strict=False)
    else:
        flat = pt.tensor(name="x_packed", shape=(n,), dtype=dtype)
        subs, offset = {}, 0
        for v, s in zip(items, shapes, strict=True):
            size = int(np.prod(s, dtype=np.int64))
            subs[v] = flat[offset : offset + size].reshape(s).astype(v.dtype)
            offset += size
        replaced = graph_replace(expressions, subs, strict=False)
    return Packing(tuple(items), tuple(shapes), is_list, flat), replaced


def find_parameters(expression: Variable, x: Variable) -> list[Variable]:
    """The non-constant root inputs of ``expression`` other than ``x``: the Op's parameters."""
    return [v for v in graph_inputs([expression]) if v is not x and not isinstance(v, Constant)]


# --------------------------------------------------------------------------------------------
# the state a solve leaves for its gradient


@dataclass
class SolveState:
    """The last solve of one Op: its point, parameters, and the factor of its last Newton
    matrix (``None`` if none was made, e.g. the initial guess was already a solution)."""

    x: np.ndarray | None = None
    params: list = field(default_factory=list)
    factor: _factor.Factor | None = None
    result: object = None
    #: how the last adjoint solve went: "reused" (the last Newton factor, refined) or "factored"
    adjoint: str = ""

    def matches(self, x, params) -> bool:
        if self.x is None or self.factor is None or len(params) != len(self.params):
            return False
        if not np.array_equal(self.x, x):
            return False
        return all(np.array_equal(a, b) for a, b in zip(self.params, params, strict=True))


def refined_solve(A, b: np.ndarray, factor, transposed: bool, max_sweeps: int = 10):
    """Solve ``A y = b`` (``Aᵀ y = b``) with the factor of a *nearby* matrix, by iterative
    refinement against ``A``; ``None`` unless the normwise backward error
    ``‖r‖∞ / (‖A‖∞ ‖y‖∞ + ‖b‖∞)`` reaches 10⁻¹⁴ — what a direct solve with ``A``'s own factor
    gives — within ``max_sweeps`` sweeps (then the caller factors ``A``)."""
    At = A.T if transposed else A
    b_norm = float(np.abs(b).max(initial=0.0))
    if b_norm == 0.0:
        return np.zeros_like(b)
    A_norm = float(np.asarray(abs(At).sum(axis=1)).max(initial=0.0))
    y = factor.solve(b, transposed=transposed)
    for _ in range(max_sweeps):
        if not np.all(np.isfinite(y)):
            return None
        r = b - At @ y
        if float(np.abs(r).max()) <= 1e-14 * (A_norm * float(np.abs(y).max()) + b_norm):
            return y
        y = y + factor.solve(r, transposed=transposed)
    return None


# --------------------------------------------------------------------------------------------
# the Op


class OptimizeOp(Op, HasInnerGraph):
    """Base of :class:`~sparsediff.optimize.root.RootOp` and
    :class:`~sparsediff.optimize.minimize.MinimizeOp`.

    Inputs ``(x0, *params)``; outputs ``(x_star, success, nit, norm)`` — the solution (or the last
    iterate), a scalar bool, the number of iterations and the final norm of the implicit
    function (‖F‖₂, or ‖∇f‖₂ for minimize). ``last_result`` holds the SciPy-style result of the
    last evaluation (with its ``message``). Equality is identity: two Ops with different inner
    graphs must never be merged.

    Subclasses set ``fgraph`` (outputs: ``[implicit function, ...]``), ``implicit`` (the inner
    implicit function: ``F`` or ``∇f``), ``symmetric`` (whether its Jacobian is), and implement
    ``_solve(x0, params) -> result`` and ``_matrix(x, params)`` (the sparse Jacobian of the
    implicit function at a point).
    """

    symmetric = False
    implicit: TensorVariable

    def __init__(self):
        self.state = SolveState()

    # HasInnerGraph ---------------------------------------------------------------------------
    @property
    def fn(self):
        """The compiled inner function (``[x, *params] -> [implicit function, matrix, ...]``)."""
        return self._function()

    @property
    def inner_inputs(self):
        return self.fgraph.inputs

    @property
    def inner_outputs(self):
        return self.fgraph.outputs

    def clone(self):
        # The inner graph is never rewritten through the clone (the solver compiles the
        # variables it planned on), so a shallow copy is a faithful clone. It shares the
        # state: PyTensor clones the Op when compiling, and the gradient's ImplicitAdjoint
        # (made from the original) must see the solve the compiled copy made.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    @property
    def last_result(self):
        """The SciPy-style result (``x``, ``success``, ``message``, ``nit``, ``norm``...) of the
        last evaluation of this Op or of its compiled copies; ``None`` before the first."""
        return self.state.result

    # Op ---------------------------------------------------------------------------------------
    def make_node(self, x0, *params):
        inputs = [pt.as_tensor_variable(x0), *params]
        if len(inputs) != len(self.fgraph.inputs):
            raise ValueError(
                f"{type(self).__name__} takes {len(self.fgraph.inputs)} inputs, got {len(inputs)}"
            )
        for outer, inner in zip(inputs, self.fgraph.inputs, strict=True):
            if not inner.type.is_super(outer.type):
                raise TypeError(f"input {outer} of type {outer.type} does not match {inner.type}")
        x = self.fgraph.inputs[0]
        outputs = [x.type(), ps.bool("success"), pt.lscalar("nit"), pt.dscalar("norm")]
        return Apply(self, inputs, outputs)

    def connection_pattern(self, node):
        pattern = io_connection_pattern(self.fgraph.inputs, [self.implicit])
        return [[bool(c), False, False, False] for (c,) in pattern]

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0], (), (), ()]

    def perform(self, node, inputs, outputs):
        x0, *params = inputs
        x0 = np.asarray(x0)
        result = self._solve(x0, params)
        self.state.result = result
        if not result.success:
            warnings.warn(
                f"{self._what}: {result.message}; its success output is False and gradients "
                "through it are NaN",
                ConvergenceWarning,
                stacklevel=2,
            )
        outputs[0][0] = np.asarray(result.x, dtype=x0.dtype).reshape(x0.shape)
        outputs[1][0] = np.bool_(result.success)
        outputs[2][0] = np.asarray(result.nit, dtype="int64")
        outputs[3][0] = np.asarray(result.norm, dtype="float64")

    def pullback(self, inputs, outputs, cotangents):
        x0, *params = inputs
        x_star, success = outputs[:2]
        g_bar = cotangents[0]
        disconnected = [DisconnectedType()() for _ in inputs]
        if isinstance(g_bar.type, DisconnectedType):
            return disconnected
        return [pt.zeros_like(x0), *implicit_pullback(self, x_star, success, params, g_bar)]

    # hooks -----------------------------------------------------------------------------------
    _what = "sparse solve"

    def _solve(self, x0, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _matrix(self, x, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _function(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, x, params, g_bar) -> tuple[np.ndarray, str]:
        """``A(x)⁻ᵀ ḡ`` for the gradient, and why it failed ("" if it did not)."""
        x = np.asarray(x, dtype=float).ravel()
        g_bar = np.asarray(g_bar, dtype=float).ravel()
        try:
            A = self._matrix(x, params)
        except Exception as err:
            return np.full_like(g_bar, np.nan), f"evaluating the matrix at x* failed: {err}"
        transposed = not self.symmetric
        if self.state.matches(x, params):
            y = refined_solve(A, g_bar, self.state.factor, transposed)
            if y is not None:
                self.state.adjoint = "reused"
                return y, ""
        self.state.adjoint = "factored"
        try:
            with np.errstate(all="ignore"):
                if self.symmetric:
                    try:
                        factor = _factor.spd(A)
                    except _factor.NotSPDError:
                        factor = _factor.lu(A)
                else:
                    factor = _factor.lu(A)
                y = factor.solve(g_bar, transposed=transposed)
        except (RuntimeError, ValueError, np.linalg.LinAlgError) as err:
            return np.full_like(g_bar, np.nan), f"the matrix at x* cannot be factored ({err})"
        if not np.all(np.isfinite(y)):
            return y, "the adjoint solve gave NaN or inf (the matrix at x* is singular)"
        return y, ""


class ImplicitAdjoint(Op):
    """``λ = A(x*)⁻ᵀ ḡ`` for an :class:`OptimizeOp` ``A``: inputs ``(x*, success, *params, ḡ)``.

    NaN when ``success`` is False (a failed solve has no derivative), or when the matrix at
    ``x*`` is singular (with a warning). Its own gradient (second derivatives through the
    solve) is not implemented.
    """

    def __init__(self, solve_op: OptimizeOp):
        self.solve_op = solve_op

    def make_node(self, x_star, success, *rest):
        x_star = pt.as_tensor_variable(x_star)
        return Apply(self, [x_star, success, *rest], [x_star.type()])

    def infer_shape(self, fgraph, node, input_shapes):
        return [input_shapes[0]]

    def perform(self, node, inputs, outputs):
        x_star, success, *params, g_bar = inputs
        g_bar = np.asarray(g_bar)
        if not bool(success):
            outputs[0][0] = np.full(g_bar.shape, np.nan, dtype=node.outputs[0].dtype)
            return
        y, why = self.solve_op.adjoint(x_star, params, g_bar)
        if why:
            warnings.warn(
                f"{self.solve_op._what}: gradient is NaN: {why}", ConvergenceWarning, stacklevel=2
            )
            y = np.full(g_bar.shape, np.nan)
        outputs[0][0] = np.asarray(y, dtype=node.outputs[0].dtype).reshape(g_bar.shape)

    def pullback(self, inputs, outputs, cotangents):
        why = "second derivatives through sd.optimize solves are not implemented"
        return [
            DisconnectedType()() if i == 1 else grad_not_implemented(self, i, v, why)
            for i, v in enumerate(inputs)
        ]

    def connection_pattern(self, node):
        return [[i != 1] for i in range(len(node.inputs))]


def implicit_pullback(op: OptimizeOp, x_star, success, params, g_bar) -> list[Variable]:
    """The gradients of a scalar loss w.r.t. ``params`` given ``ḡ`` = its gradient w.r.t. x*.

    One adjoint solve (λ) and one pullback of the implicit function at ``(x*, θ)`` with
    cotangent ``−λ`` w.r.t. all parameters at once: no Jacobian w.r.t. θ, whatever its size.
    """
    x_in, *params_in = op.fgraph.inputs
    lam = ImplicitAdjoint(op)(x_star, success, *params, g_bar)
    cot_in = op.implicit.type()
    grads_in = pytensor.grad(
        None,
        params_in,
        known_grads={op.implicit: cot_in},
        disconnected_inputs="ignore",
        null_gradients="return",
        return_disconnected="disconnected",
    )
    connected = [
        i for i, g in enumerate(grads_in) if not isinstance(g.type, DisconnectedType | NullType)
    ]
    out: list[Variable] = list(grads_in)
    if connected:
        replace = {x_in: x_star, cot_in: -lam.astype(cot_in.dtype)}
        replace.update(zip(params_in, params, strict=True))
        outer = graph_replace([grads_in[i] for i in connected], replace, strict=False)
        for i, g in zip(connected, outer, strict=True):
            if isinstance(params[i].type, TensorType) and g.type.dtype != params[i].dtype:
                g = g.astype(params[i].dtype)
            out[i] = g
    return out
