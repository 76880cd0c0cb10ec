"""Built-in sparsity rules: one module per Op family, and the one table from Op class to rule.

:data:`BUILTIN_RULES` is the whole list; :func:`register_builtin_rules` (called once by
:mod:`sparsediff._register`) puts it into the registry. An Op's own ``sparsity_rule`` method and
rules registered by users with ``sd.register_sparsity_rule`` take precedence (the registry is a
``functools.singledispatch``: the most specific class wins, so a rule for a subclass overrides
the one for its base).

=====================  ==========================================================================
module                 what its rules know
=====================  ==========================================================================
``elemwise``           derivative-aware scalar ops (comparisons, ``floor``, ``sign`` add nothing),
                       ``Composite``, ``switch``, broadcasting, constant zero factors
``scalar``             scalar Ops outside ``Elemwise``
``movement``           Ops that only move elements, by running the Op on element indices
``indexing``           ``inc_subtensor``/``set_subtensor`` (basic and advanced, duplicates)
``reduce``             reductions, cumulative sums/products, sort
``dot``                products; the structure of constant (dense or ``scipy.sparse``) operands
``blockwise``          batched Ops: the core rule per batch element
``convolution``        1-D/2-D convolutions: the window, a constant kernel's zeros, every mode
``ifelse``             the two branches joined; a constant condition keeps one
``opfromgraph``        the inner graph, or the gradient override ``pytensor.grad`` uses
``scan``               the loop unrolled, one inner propagation per step
=====================  ==========================================================================
"""

from __future__ import annotations

from pytensor.compile.builders import OpFromGraph
from pytensor.compile.ops import DeepCopyOp, TypeCastingOp
from pytensor.ifelse import IfElse
from pytensor.raise_op import CheckAndRaise
from pytensor.scalar import basic as ps
from pytensor.scan.op import Scan
from pytensor.sparse.math import Dot as SparseDot
from pytensor.sparse.math import StructuredDot, TrueDot
from pytensor.tensor.basic import (
    Alloc,
    ExtractDiag,
    Join,
    MakeVector,
    ScalarFromTensor,
    Split,
    TensorFromScalar,
)
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.elemwise import CAReduce, DimShuffle, Elemwise
from pytensor.tensor.extra_ops import CpuContiguous, CumOp, Repeat
from pytensor.tensor.math import Dot
from pytensor.tensor.reshape import JoinDims, SplitDims
from pytensor.tensor.shape import Reshape, SpecifyShape
from pytensor.tensor.signal.conv import Convolve1d, Convolve2d
from pytensor.tensor.sort import SortOp
from pytensor.tensor.subtensor import (
    AdvancedIncSubtensor,
    AdvancedIncSubtensor1,
    AdvancedSubtensor,
    AdvancedSubtensor1,
    IncSubtensor,
    Subtensor,
)

from sparsediff.sparsity.registry import register_sparsity_rule
from sparsediff.sparsity.rules.blockwise import blockwise_rule
from sparsediff.sparsity.rules.convolution import convolution_rule
from sparsediff.sparsity.rules.dot import dot_rule
from sparsediff.sparsity.rules.elemwise import elemwise_rule
from sparsediff.sparsity.rules.ifelse import ifelse_rule
from sparsediff.sparsity.rules.indexing import inc_subtensor_rule
from sparsediff.sparsity.rules.movement import (
    first_input_rule,
    first_is_data_rule,
    join_rule,
    make_vector_rule,
)
from sparsediff.sparsity.rules.opfromgraph import ofg_rule
from sparsediff.sparsity.rules.reduce import careduce_rule, cumop_rule, sort_rule
from sparsediff.sparsity.rules.scalar import scalar_op_rule
from sparsediff.sparsity.rules.scan import scan_rule

__all__ = ["BUILTIN_RULES", "register_builtin_rules"]

#: Every built-in rule, by Op class (grep here first: each Op sparsediff knows is named once).
BUILTIN_RULES = {
    # elementwise and scalar arithmetic
    Elemwise: elemwise_rule,
    ps.ScalarOp: scalar_op_rule,
    # identities: the output is the first input
    TypeCastingOp: first_input_rule,
    DeepCopyOp: first_input_rule,
    SpecifyShape: first_input_rule,
    CheckAndRaise: first_input_rule,
    CpuContiguous: first_input_rule,
    TensorFromScalar: first_input_rule,
    ScalarFromTensor: first_input_rule,
    # element moves, traced on indices
    DimShuffle: first_is_data_rule,
    Reshape: first_is_data_rule,
    JoinDims: first_is_data_rule,
    SplitDims: first_is_data_rule,
    Subtensor: first_is_data_rule,
    AdvancedSubtensor: first_is_data_rule,
    AdvancedSubtensor1: first_is_data_rule,
    Alloc: first_is_data_rule,
    Split: first_is_data_rule,
    Repeat: first_is_data_rule,
    ExtractDiag: first_is_data_rule,
    MakeVector: make_vector_rule,
    Join: join_rule,
    # writes into a buffer
    IncSubtensor: inc_subtensor_rule,
    AdvancedIncSubtensor1: inc_subtensor_rule,
    AdvancedIncSubtensor: inc_subtensor_rule,
    # reductions and scans along an axis
    CAReduce: careduce_rule,
    CumOp: cumop_rule,
    SortOp: sort_rule,
    # products
    Dot: dot_rule,
    StructuredDot: dot_rule,
    TrueDot: dot_rule,
    SparseDot: dot_rule,
    Blockwise: blockwise_rule,  # convolutions inside: rules/convolution.py
    Convolve1d: convolution_rule,
    Convolve2d: convolution_rule,
    # inner graphs
    IfElse: ifelse_rule,
    OpFromGraph: ofg_rule,
    Scan: scan_rule,
}


def register_builtin_rules() -> None:
    """Put :data:`BUILTIN_RULES` into the registry (idempotent)."""
    for op_class, rule in BUILTIN_RULES.items():
        register_sparsity_rule(op_class)(rule)
