"""``IfElse``: each output joins the patterns of its two branches; the condition adds nothing
(``pytensor.grad`` treats it as piecewise constant). A constant condition keeps only the branch it
takes."""

from __future__ import annotations

from pytensor.ifelse import IfElse
from pytensor.tensor.type import TensorType

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.registry import NotConcrete, RuleContext

__all__ = ["ifelse_rule"]


def ifelse_rule(op: IfElse, node, input_patterns, ctx: RuleContext):
    """Union of both branches; the condition contributes nothing; a constant one picks."""
    n = op.n_outs
    cond = ctx.value(node.inputs[0])
    then_patterns = input_patterns[1 : 1 + n]
    else_patterns = input_patterns[1 + n : 1 + 2 * n]
    outputs = []
    for k, out in enumerate(node.outputs):
        then_var, else_var = node.inputs[1 + k], node.inputs[1 + n + k]
        if cond is not None:
            outputs.append(then_patterns[k] if bool(cond) else else_patterns[k])
            continue
        shape = ctx.shape(out) if isinstance(out.type, TensorType) else None
        for var in (then_var, else_var):
            if shape is not None and ctx.shape(var) != shape:
                raise NotConcrete(
                    f"the branches of {op} have different shapes {ctx.shape(then_var)} and "
                    f"{ctx.shape(else_var)}"
                )
        outputs.append(pat.union([then_patterns[k], else_patterns[k]]))
    return outputs
