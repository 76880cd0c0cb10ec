"""Graph preparation for detection: one concrete, canonical copy of the graph to walk.

``wrt`` is replaced by variables of its static type; gradient-blocking Ops (``zero_grad``,
``disconnected_grad``, ``consider_constant``) become fresh independent inputs (they stop
dependence exactly where ``pytensor.grad`` would); ``OpFromGraph`` nodes without gradient
overrides are inlined; the result is canonicalized so that shapes and indices fold to constants.
The same steps prepare the inner graphs of ``OpFromGraph``/``Scan`` for the control-flow rules
(:func:`concrete_inner_graph`) and the graph :func:`sparsediff.explain_sparsity` walks.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import DisconnectedGrad, ZeroGrad
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.replace import clone_replace
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.graph.rewriting.utils import rewrite_graph
from pytensor.graph.traversal import ancestors
from scipy import sparse as sp

from sparsediff._fold_indices import fold_small_integer_constants
from sparsediff._validate import check_wrt
from sparsediff.sparsity import pattern as pat

__all__ = ["concrete_inner_graph", "inline_plain_ofg", "prepare_graph", "wrt_seeds"]


@node_rewriter([OpFromGraph])
def inline_plain_ofg(fgraph, node):
    """Inline OpFromGraph nodes whose gradient is their inner graph's (pad, softmax, einsum...)."""
    op = node.op
    if op.pullback_overrides is not None or op.pushforward_overrides is not None:
        return False
    if type(op).pullback is not OpFromGraph.pullback and not type(op).__module__.startswith(
        "pytensor."
    ):
        # A user subclass with its own gradient: the OpFromGraph rule reads the override.
        # (PyTensor's own subclasses, e.g. Softmax, differentiate like their inner graph.)
        return False
    frozen = op._frozen_fgraph
    return frozen.bind(dict(zip(frozen.inputs, node.inputs, strict=True)))


def prepare_graph(
    expressions: Sequence[Variable],
    wrt: Sequence[Variable],
    consider_constant: Sequence[Variable] = (),
) -> tuple[FunctionGraph, list[Variable]]:
    """A canonical, concrete copy of the graph; returns it and the fresh ``wrt`` variables."""
    fresh_wrt = [w.type.clone(shape=check_wrt(w))() for w in wrt]
    for fresh, w in zip(fresh_wrt, wrt, strict=True):
        fresh.name = w.name
    # consider_constant is cloned alongside, to find its copies in the cloned graph.
    cloned = clone_replace(
        [*expressions, *consider_constant], dict(zip(wrt, fresh_wrt, strict=True))
    )
    outputs, cloned_constants = cloned[: len(expressions)], cloned[len(expressions) :]
    others = [v for v in ancestors(outputs) if v.owner is None and v not in fresh_wrt]
    fgraph = FunctionGraph(inputs=[*fresh_wrt, *others], outputs=outputs, clone=False)
    constants = set(cloned_constants)
    blockers = [v for v in fgraph.variables if v in constants]
    _make_concrete(fgraph, extra_cuts=blockers, keep=fresh_wrt)
    return fgraph, fresh_wrt


def concrete_inner_graph(
    inner_inputs: Sequence[Variable],
    inner_outputs: Sequence[Variable],
    stand_ins: Sequence[Variable],
) -> FunctionGraph:
    """A canonical copy of an inner graph whose inputs are ``stand_ins``, prepared like
    :func:`prepare_graph` (plain ``OpFromGraph`` inlined, gradient blockers cut, shapes folded)."""
    outputs = clone_replace(list(inner_outputs), dict(zip(inner_inputs, stand_ins, strict=True)))
    fresh = [s for s in stand_ins if not isinstance(s, Constant)]
    fresh_set = set(fresh)
    others = [
        v
        for v in ancestors(outputs)
        if v.owner is None and not isinstance(v, Constant) and v not in fresh_set
    ]
    fgraph = FunctionGraph(inputs=[*fresh, *others], outputs=outputs, clone=False)
    _make_concrete(fgraph)
    return fgraph


def _make_concrete(
    fgraph: FunctionGraph, extra_cuts: Iterable[Variable] = (), keep: Sequence[Variable] = ()
) -> None:
    """Inline plain ``OpFromGraph``s, cut gradient blockers (and ``extra_cuts``) into fresh
    inputs (never those in ``keep``), then canonicalize, in place."""
    dfs_rewriter(inline_plain_ofg).rewrite(fgraph)
    cut = {
        node.outputs[0]
        for node in fgraph.toposort()
        if isinstance(node.op, ZeroGrad | DisconnectedGrad)
    }
    cut.update(extra_cuts)
    keep_set = set(keep)
    for var in cut:
        if var in keep_set:
            continue
        stand_in = var.type()
        stand_in.name = var.name
        fgraph.add_input(stand_in)
        fgraph.replace(var, stand_in, import_missing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rewrite_graph(fgraph, include=("ShapeOpt", "canonicalize"))
        if fold_small_integer_constants(fgraph):  # e.g. pt.pad's widths (see fold_indices)
            rewrite_graph(fgraph, include=("ShapeOpt", "canonicalize"))


def wrt_seeds(fresh_wrt: Sequence[Variable]) -> tuple[dict[Variable, pat.Pattern], list[int]]:
    """The pattern of each ``wrt`` (an identity block in its columns of the full Jacobian) and
    the column offsets of the blocks."""
    sizes = [int(np.prod(w.type.shape, dtype=np.int64)) for w in fresh_wrt]
    n_wrt = int(sum(sizes))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    seeds = {}
    for w, size, offset in zip(fresh_wrt, sizes, offsets, strict=False):
        eye = pat.identity(size)
        cols = eye.indices + offset if offset else eye.indices  # one wrt: no shifted copy
        seeds[w] = sp.csr_array((eye.data, cols, eye.indptr), shape=(size, n_wrt))
    return seeds, list(offsets)
