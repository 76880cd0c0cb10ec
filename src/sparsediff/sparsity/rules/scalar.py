"""Scalar Ops applied directly (outside Elemwise), as in scalar graphs built from tensors."""

from __future__ import annotations

from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.rules.elemwise import scalar_dependencies


def scalar_op_rule(op, node, input_patterns, ctx):
    deps = scalar_dependencies(op, len(node.inputs))
    return [pat.union([input_patterns[i] for i in sorted(used)]) for used in deps]
