"""Wide fused kernels are split before Numba compiles them (issue #16)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.basic import in2out
from pytensor.scalar.basic import Composite
from pytensor.tensor.elemwise import Elemwise

from sparsediff.backends.numba_fusion import (
    MAX_OPERANDS,
    split_scalar_graph,
    split_wide_composites,
)


def _wide(k: int = 60):
    """k inputs, 3 outputs, sharing subexpressions: one kernel of k + 3 operands once fused."""
    xs = [pt.vector(f"x{i}", shape=(7,)) for i in range(k)]
    terms = [pt.exp(x) * x**1.5 for x in xs]
    total = sum(terms)
    outs = [total, pt.log1p(total) * terms[0], total - terms[-1] * terms[k // 2]]
    return xs, outs


#: No rewrites: evaluates a graph as it is (FAST_COMPILE would flatten the sums into one node
#: of more operands than NumPy's ufuncs take); C thunks (the Python ``perform`` of a
#: ``Composite`` differs from C and Numba by ~1e-8 relative).
PLAIN = Mode(linker="cvm", optimizer=None)


def _kernels(fgraph):
    return [n for n in fgraph.toposort() if isinstance(n.op, Elemwise)]


def _fused(xs, outs):
    """The graph after PyTensor's fusion (C backend, no in-place rewrites), as a FunctionGraph."""
    fn = pytensor.function(xs, outs, mode=get_mode("CVM").excluding("inplace"))
    return fn.maker.fgraph.clone()


def test_split_scalar_graph_respects_the_operand_limit():
    xs, outs = _wide(40)
    fg = _fused(xs, outs)
    (node,) = [n for n in _kernels(fg) if isinstance(n.op.scalar_op, Composite)]
    comp = node.op.scalar_op
    assert len(node.inputs) + len(node.outputs) > MAX_OPERANDS
    chunks = split_scalar_graph(list(comp.fgraph.inputs), list(comp.fgraph.outputs), 16)
    assert len(chunks) >= 3
    assert sum(len(c) for c in chunks) == len(comp.fgraph.apply_nodes)


def test_split_keeps_values_and_bounds_every_kernel():
    xs, outs = _wide(40)
    fg = _fused(xs, outs)
    in2out(split_wide_composites).rewrite(fg)
    kernels = _kernels(fg)
    assert len(kernels) >= 2
    assert max(len(n.inputs) + len(n.outputs) for n in kernels) <= MAX_OPERANDS
    rng = np.random.default_rng(0)
    values = [rng.uniform(0.1, 1.0, 7) for _ in xs]
    got = pytensor.function(fg.inputs, fg.outputs, mode=PLAIN)(*values)
    want = pytensor.function(xs, outs, mode=PLAIN)(*values)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13)


def test_narrow_kernels_and_c_backend_are_left_alone():
    xs, outs = _wide(8)
    fg = _fused(xs, outs)
    before = [n.op for n in _kernels(fg)]
    in2out(split_wide_composites).rewrite(fg)
    assert [n.op for n in _kernels(fg)] == before
    # the rewrite is tagged for Numba only: the C backend keeps its one wide kernel
    xs, outs = _wide(40)
    fn = pytensor.function(xs, outs, mode="CVM")
    assert len(_kernels(fn.maker.fgraph)) == 1


def test_numba_mode_splits_without_compiling():
    """The rewrite runs in Numba mode (checked on the graph: no JIT needed)."""
    xs, outs = _wide(40)
    fn = pytensor.function(xs, outs, mode="NUMBA")
    kernels = _kernels(fn.maker.fgraph)
    assert len(kernels) >= 2
    assert max(len(n.inputs) + len(n.outputs) for n in kernels) <= MAX_OPERANDS
    excluded = get_mode("NUMBA").excluding("sparsediff_split_wide_composites")
    fn = pytensor.function(xs, outs, mode=excluded)
    assert len(_kernels(fn.maker.fgraph)) == 1


@pytest.mark.numba
def test_split_kernels_run_in_numba():
    xs, outs = _wide(36)
    rng = np.random.default_rng(1)
    values = [rng.uniform(0.1, 1.0, 7) for _ in xs]
    got = pytensor.function(xs, outs, mode="NUMBA")(*values)
    want = pytensor.function(xs, outs, mode=PLAIN)(*values)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_split_fgraph_is_valid_with_broadcast_outputs():
    """An output that depends only on broadcastable inputs keeps the kernel's full shape."""
    a = pt.matrix("a", shape=(1, 5))
    bs = [pt.matrix(f"b{i}", shape=(4, 5)) for i in range(34)]
    wide = sum(pt.exp(b) for b in bs)
    narrow = pt.exp(a) * 2.0 + a  # same kernel after fusion only if PyTensor fuses it
    fg = FunctionGraph([a, *bs], [wide * narrow, narrow + wide], clone=True)
    fused = pytensor.function(
        fg.inputs, fg.outputs, mode=get_mode("CVM").excluding("inplace")
    ).maker.fgraph.clone()
    in2out(split_wide_composites).rewrite(fused)
    for out, orig in zip(fused.outputs, fg.outputs, strict=True):
        assert out.type.broadcastable == orig.type.broadcastable
    rng = np.random.default_rng(2)
    values = [rng.uniform(0.1, 1.0, (1, 5)), *[rng.uniform(0.1, 1.0, (4, 5)) for _ in bs]]
    got = pytensor.function(fused.inputs, fused.outputs, mode=PLAIN)(*values)
    want = pytensor.function(fg.inputs, fg.outputs, mode=PLAIN)(*values)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13)
