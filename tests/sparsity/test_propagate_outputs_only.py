"""``propagate(..., outputs_only=True)``: the same output patterns, without the intermediate
ones (dropped once their last client has run, so that they do not all stay in memory)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from sparsediff.sparsity.graph import prepare_graph, wrt_seeds
from sparsediff.sparsity.propagate import propagate


def _graph():
    x = pt.vector("x", shape=(6,))
    y = pt.exp(x)
    z = y[1:] * y[:-1]
    out = pt.concatenate([z, x[:2] ** 2, y[3:4]])
    fgraph, (fresh,) = prepare_graph([out], [x], ())
    seeds, offsets = wrt_seeds([fresh])
    return fgraph, seeds, int(offsets[-1])


def test_outputs_only_keeps_the_outputs_and_drops_the_rest():
    fgraph, seeds, n = _graph()
    every = propagate(fgraph, seeds, n)
    few = propagate(fgraph, seeds, n, outputs_only=True)
    (out,) = fgraph.outputs
    assert (every[out] != few[out]).nnz == 0
    assert set(few) <= set(fgraph.outputs) | set(seeds)
    assert len([v for v, p in every.items() if p is not None]) > len(few)


def test_outputs_only_pattern_of_a_stencil():
    fgraph, seeds, n = _graph()
    (out,) = fgraph.outputs
    got = propagate(fgraph, seeds, n, outputs_only=True)[out].toarray()
    want = np.zeros((8, 6), dtype=bool)
    for k in range(5):
        want[k, [k, k + 1]] = True
    want[5, 0] = want[6, 1] = want[7, 3] = True
    assert np.array_equal(got, want)
