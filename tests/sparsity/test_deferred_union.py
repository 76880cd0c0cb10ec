"""Detection leaves the union of an elemwise node unmerged while its only client is another
elemwise node (``pattern.Deferred``): a chain is merged once, from its leaves, into the same
pattern; nothing unmerged leaves ``propagate``."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff.problems import bratu2d
from sparsediff.sparsity import pattern as pat
from sparsediff.sparsity.graph import prepare_graph, wrt_seeds
from sparsediff.sparsity.propagate import propagate


def _count_merges(monkeypatch) -> list[int]:
    """The number of patterns of every union that merges two or more."""
    merges: list[int] = []
    union = pat.union

    def counting(patterns):
        k = len(pat._present(patterns))
        if k >= 2:
            merges.append(k)
        return union(patterns)

    monkeypatch.setattr(pat, "union", counting)
    return merges


def _undeferred(monkeypatch):
    """Detection as before: every elemwise union merged where it is made."""
    monkeypatch.setattr(pat, "deferred_union", lambda patterns: pat.union(patterns))


def _stencil(n=40):
    x = pt.vector("x", shape=(n,))
    p = pt.zeros(n + 2)
    p = pt.set_subtensor(p[1:-1], x)
    out = 2 * x - p[:-2] - p[2:] + (x**2 - p[1:-1] * 0.5) - pt.exp(x)
    return out, x


def test_an_elemwise_chain_is_merged_once_into_the_same_pattern(monkeypatch):
    out, x = _stencil()
    with monkeypatch.context() as m:
        _undeferred(m)
        before = _count_merges(m)
        want = sd.jacobian_sparsity(out, x)
    merges = _count_merges(monkeypatch)
    got = sd.jacobian_sparsity(out, x)
    assert isinstance(got, sp.csr_array) and got.has_canonical_format
    assert (got != want).nnz == 0 and got.nnz == 3 * 40 - 2
    assert len(before) > 1 and merges == [3]  # x, the left and the right neighbour


def test_bratu_pattern_unchanged_and_merged_once(monkeypatch):
    problem = bratu2d(12)
    merges = _count_merges(monkeypatch)
    got = sd.jacobian_sparsity(problem.expression, problem.x)
    assert len(merges) == 1 and merges[0] == 5  # u and its four neighbours, in one merge
    assert (got != sp.csr_array(problem.pattern(), dtype=bool)).nnz == 0


def test_a_union_read_twice_is_merged_once_and_deferred_inputs_are_merged_when_masked(
    monkeypatch,
):
    """``y`` has two clients: merged where it is made (else each client would merge it). A
    constant factor with zeros masks the rows of a deferred input: merged first."""
    x = pt.vector("x", shape=(30,))
    y = x[1:] - x[:-1]
    y = y * 3.0 + x[:-1] ** 2  # deferred: its one client is elemwise
    mask = np.ones(29)
    mask[::3] = 0.0
    z1 = (y * mask) - x[1:]  # the constant zeros mask the deferred y
    z2 = pt.exp(z1) + x[:-1]
    out = pt.concatenate([z1 * z2, z1 + 1.0])  # z1 read twice
    with monkeypatch.context() as m:
        _undeferred(m)
        want = sd.jacobian_sparsity(out, x)
    got = sd.jacobian_sparsity(out, x)
    assert (got != want).nnz == 0
    z1_rows = got.toarray()[29:]  # z1 + 1: the pattern of z1
    assert np.flatnonzero(z1_rows[0]).tolist() == [1]  # y[0] masked away: x[1] is left
    assert np.flatnonzero(z1_rows[1]).tolist() == [1, 2]  # y[1] kept: x[1], x[2]


@pytest.mark.parametrize("outputs_only", [False, True])
def test_propagate_returns_no_deferred_union(outputs_only):
    out, x = _stencil(12)
    fgraph, (fresh,) = prepare_graph([out], [x], ())
    seeds, offsets = wrt_seeds([fresh])
    patterns = propagate(fgraph, seeds, int(offsets[-1]), outputs_only=outputs_only)
    assert patterns and not any(isinstance(p, pat.Deferred) for p in patterns.values())
    (o,) = fgraph.outputs
    assert patterns[o].nnz == 3 * 12 - 2


def test_deferred_union_flattens_and_merges_to_the_union():
    rng = np.random.default_rng(0)
    parts = [sp.csr_array(rng.random((20, 15)) < 0.2) for _ in range(4)]
    for p in parts:
        p.sum_duplicates()
    d = pat.deferred_union([parts[0], None, parts[1]])
    assert isinstance(d, pat.Deferred) and d.shape == (20, 15)
    nested = pat.deferred_union([d, parts[2], parts[0], parts[3]])
    assert isinstance(nested, pat.Deferred) and len(nested.parts) == 4  # parts[0] once
    want = (parts[0] + parts[1] + parts[2] + parts[3]).astype(bool)
    got = nested.merge()
    assert got.has_canonical_format and (got != want).nnz == 0
    assert pat.deferred_union([parts[1], None]) is pat.union([parts[1]])  # one part: as is
    assert pat.union([d, parts[2]]).nnz == (parts[0] + parts[1] + parts[2]).astype(bool).nnz


def test_a_long_chain_defers_every_term_and_merges_once(monkeypatch):
    """A sum built term by term (300 shifted slices): one 300-way merge, the parts kept once
    each (found by identity, not by comparing every pair at every node)."""
    x = pt.vector("x", shape=(400,))
    acc = x[0:100]
    for k in range(1, 300):
        acc = acc + x[k : k + 100]
    merges = _count_merges(monkeypatch)
    got = sd.jacobian_sparsity(acc, x).toarray()
    want = np.zeros((100, 400), dtype=bool)
    for i in range(100):
        want[i, i : i + 300] = True
    assert np.array_equal(got, want)
    assert merges == [300]
