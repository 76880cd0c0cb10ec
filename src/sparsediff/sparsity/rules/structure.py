"""Ops that keep, move or copy elements: identities, reshapes, indexing reads, joins, allocs."""

from __future__ import annotations

from pytensor.compile.ops import DeepCopyOp, TypeCastingOp
from pytensor.raise_op import CheckAndRaise
from pytensor.tensor.basic import (
    Alloc,
    ExtractDiag,
    Join,
    MakeVector,
    ScalarFromTensor,
    Split,
    TensorFromScalar,
)
from pytensor.tensor.elemwise import DimShuffle
from pytensor.tensor.extra_ops import CpuContiguous, Repeat
from pytensor.tensor.reshape import JoinDims, SplitDims
from pytensor.tensor.shape import Reshape, SpecifyShape
from pytensor.tensor.subtensor import AdvancedSubtensor, AdvancedSubtensor1, Subtensor

from sparsediff.sparsity.registry import register_sparsity_rule
from sparsediff.sparsity.rules.trace import copy_rule


def _first_input(op, node, input_patterns, ctx):
    """Ops whose (every) output is its first input, unchanged."""
    return [input_patterns[0]] * len(node.outputs)


for _op in (
    TypeCastingOp,
    DeepCopyOp,
    SpecifyShape,
    CheckAndRaise,
    CpuContiguous,
    TensorFromScalar,
    ScalarFromTensor,
):
    register_sparsity_rule(_op)(_first_input)

_first_is_data = copy_rule([0])
for _op in (
    DimShuffle,
    Reshape,
    JoinDims,
    SplitDims,
    Subtensor,
    AdvancedSubtensor,
    AdvancedSubtensor1,
    Alloc,
    Split,
    Repeat,
    ExtractDiag,
):
    register_sparsity_rule(_op)(_first_is_data)

register_sparsity_rule(MakeVector)(copy_rule(None))


@register_sparsity_rule(Join)
def join_rule(op, node, input_patterns, ctx):
    return copy_rule(range(1, len(node.inputs)))(op, node, input_patterns, ctx)
