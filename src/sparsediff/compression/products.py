"""Compressed products: every color's JVP, VJP or Hessian-vector product in one graph.

* forward mode: ``B = J @ S`` with ``S`` of shape ``(n, n_colors)``: one JVP per color, all
  colors in one graph by ``vectorize_graph(pushforward(y, x, t), {t: Sᵀ})``;
* reverse mode: ``Bᵀ = Wᵀ @ J`` with ``W`` of shape ``(m, n_colors)``: one VJP per color,
  ``vectorize_graph(pullback(y, x, w), {w: Wᵀ})``;
* Hessians: ``B = H @ S``, batched Hessian-vector products, forward-over-reverse
  (``pushforward`` of the gradient) or reverse-over-reverse (``pullback`` of the gradient).

Every compressed graph is returned with its batch axis first and the remaining axes flattened:
``(n_colors, m)`` for forward mode, ``(n_colors, n)`` for reverse mode and Hessians. The seeds
come from :mod:`sparsediff.compression.seeds`; :mod:`sparsediff.compression.folding` then folds
what depends on them alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import grad, pullback, pushforward
from pytensor.graph.basic import Variable, clone_get_equiv
from pytensor.graph.op import HasInnerGraph
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.traversal import graph_inputs, toposort
from pytensor.tensor.type import TensorType

from sparsediff.compression import forward_rules
from sparsediff.compression.seeds import split_seeds
from sparsediff.compression.vectorize import core_shapes

__all__ = [
    "compressed_hvp",
    "compressed_pullback",
    "compressed_pushforward",
    "isolate_inner_graphs",
    "pushforward_through_pullback",
]


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


def _tangent_like(var: Variable) -> Variable:
    """A fresh root variable of ``var``'s type, to stand for one seed."""
    return var.type()


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
    batched = split_seeds(seeds, wrt)

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
