"""Fold small integer subgraphs of constants (indices, shapes, pad widths) before detection.

PyTensor's canonicalization does not fold ``Alloc`` (by design: folding a large alloc costs
memory), so integer arrays built by ``set_subtensor`` on ``zeros`` stay symbolic: the pad widths
of ``pt.pad`` (and of ``convolve2d(..., mode="same")``) are an example, and rules that need
concrete indices would fall back to a dense block. Small integer results are cheap to fold.
"""

from __future__ import annotations

import numpy as np
from pytensor.graph.basic import Constant
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.tensor.rewriting.basic import unconditional_constant_folding
from pytensor.tensor.type import TensorType

__all__ = ["MAX_FOLDED_INDEX_SIZE", "fold_small_integer_constants"]

#: Largest integer constant (in elements) created by folding.
MAX_FOLDED_INDEX_SIZE = 4096
#: Canonicalize-and-fold rounds at most in :func:`fold_integer_graph`.
_MAX_ROUNDS = 4


def _small_integer(var) -> bool:
    t = var.type
    if not isinstance(t, TensorType) or not t.dtype.startswith(("int", "uint", "bool")):
        return False
    if any(s is None for s in t.shape):
        return False
    return int(np.prod(t.shape, dtype=np.int64)) <= MAX_FOLDED_INDEX_SIZE


@node_rewriter(None)
def fold_small_integer(fgraph, node):
    if not node.inputs or not all(isinstance(i, Constant) for i in node.inputs):
        return None
    if not all(_small_integer(o) for o in node.outputs):
        return None
    return unconditional_constant_folding.transform(fgraph, node)


def fold_small_integer_constants(fgraph: FunctionGraph) -> bool:
    """Fold, in place; returns whether anything changed."""
    before = len(fgraph.apply_nodes)
    dfs_rewriter(fold_small_integer, ignore_newtrees=False).rewrite(fgraph)
    return len(fgraph.apply_nodes) != before


def fold_integer_graph(outputs) -> list:
    """Canonicalize small integer ``outputs`` (e.g. a shape) and fold them as far as possible;
    returns new outputs (the caller's graph is untouched)."""
    from pytensor.graph.rewriting.utils import rewrite_graph

    fgraph = FunctionGraph(outputs=list(outputs), clone=True)
    for _ in range(_MAX_ROUNDS):
        rewrite_graph(fgraph, include=("canonicalize", "ShapeOpt"))
        if not fold_small_integer_constants(fgraph):
            break
    return list(fgraph.outputs)
