"""Opt-in: turn PyTensor's own ``RootOp`` / ``MinimizeOp`` nodes of a graph into sparse ones.

``outputs = sd.optimize.sparsify_optimizers(outputs)`` returns the same graph with every
``pytensor.tensor.optimize.root`` / ``minimize`` node replaced by :func:`sparsediff.optimize.root`
/ :func:`~sparsediff.optimize.minimize` on the same inner graph, the same initial guess and the
same parameters — for code that builds its optimizers somewhere a user cannot change the import
(a library's model builder). Nothing happens unless it is called. The SciPy method and options
of the dense node are *not* carried over (they are SciPy's dense methods): the sparse node uses
``method`` / ``optimizer_kwargs`` given here. Gradients taken before the call refer to the old
nodes: take ``pytensor.grad`` of the returned outputs.
"""

from __future__ import annotations

from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import applys_between, graph_inputs

from sparsediff.optimize.minimize import minimize
from sparsediff.optimize.root import root

__all__ = ["sparsify_optimizers"]


def sparsify_optimizers(
    outputs, *, root_kwargs: dict | None = None, minimize_kwargs: dict | None = None
):
    """``outputs`` (a variable or a list) with PyTensor's RootOp/MinimizeOp nodes made sparse.

    ``root_kwargs`` / ``minimize_kwargs``: keywords for :func:`sparsediff.optimize.root` /
    :func:`~sparsediff.optimize.minimize` (``method``, ``optimizer_kwargs``, ``mode``...).
    Inner graphs whose unknown has no static shape raise (sparsediff needs its size).
    """
    from pytensor.tensor.optimize import MinimizeOp, RootOp

    single = not isinstance(outputs, list | tuple)
    outs = [outputs] if single else list(outputs)
    nodes = [
        node
        for node in applys_between(list(graph_inputs(outs)), outs)
        if type(node.op) in (RootOp, MinimizeOp)
    ]
    replacements = {}
    for node in nodes:
        inner_x, *inner_args = node.op.fgraph.inputs
        x0, *args = node.inputs
        if x0.owner is not None or not x0.type.shape or None in x0.type.shape:
            # the initial guess must be a variable with a static shape: make one
            import pytensor.tensor as pt

            x_var = pt.tensor(dtype=x0.dtype, shape=inner_x.type.shape)
            if None in x_var.type.shape:
                raise ValueError(
                    f"sparsify_optimizers: the unknown of {node.op} has no static shape "
                    f"({inner_x.type}); give it one (pt.specify_shape) to make it sparse"
                )
        else:
            x_var = x0
        target = node.op.fgraph.outputs[0]
        expression = graph_replace(
            target, dict(zip([inner_x, *inner_args], [x_var, *args], strict=True)), strict=False
        )
        if isinstance(node.op, RootOp):
            x_star, success = root(expression, x_var, **(root_kwargs or {}))
        else:
            x_star, success = minimize(expression, x_var, **(minimize_kwargs or {}))
        if x_var is not x0:
            x_star, success = graph_replace([x_star, success], {x_var: x0}, strict=False)
        replacements[node.outputs[0]] = x_star
        replacements[node.outputs[1]] = success
    if not replacements:
        return outputs
    new = graph_replace(outs, replacements, strict=False)
    return new[0] if single else new
