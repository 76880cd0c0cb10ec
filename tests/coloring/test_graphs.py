"""Input normalization and the CSR kernels behind every coloring."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff.coloring.graphs import Structure, as_structure, symmetric_adjacency

patterns = hnp.arrays(
    np.bool_, st.tuples(st.integers(0, 12), st.integers(0, 12)), elements=st.booleans()
)


def dense(s: Structure) -> np.ndarray:
    return s.to_scipy().toarray()


def canonical(s: Structure) -> bool:
    return all(
        np.all(np.diff(s.indices[s.indptr[i] : s.indptr[i + 1]]) > 0) for i in range(s.shape[0])
    )


@settings(max_examples=80, deadline=None)
@given(P=patterns, fmt=st.sampled_from(["dense", "csr", "csc", "coo", "lil", "dok"]))
def test_as_structure_roundtrip(P, fmt):
    src = P if fmt == "dense" else sp.csr_array(P).asformat(fmt)
    s = as_structure(src)
    assert s.shape == P.shape and s.indptr.dtype == np.int64 and s.indices.dtype == np.int64
    assert canonical(s)
    assert np.array_equal(dense(s), P)
    t = s.transpose()
    assert canonical(t) and np.array_equal(dense(t), P.T)


@settings(max_examples=80, deadline=None)
@given(P=st.integers(0, 12).flatmap(lambda n: hnp.arrays(np.bool_, (n, n))))
def test_symmetric_adjacency(P):
    s = as_structure(P)
    S = P | P.T
    off = S.copy()
    np.fill_diagonal(off, False)
    closed = S.copy()
    np.fill_diagonal(closed, True)
    a = symmetric_adjacency(s)
    c = symmetric_adjacency(s, diagonal=True)
    assert canonical(a) and canonical(c)
    assert np.array_equal(dense(a), off)
    assert np.array_equal(dense(c), closed)


def test_coo_duplicates_and_explicit_zeros():
    A = sp.coo_array(
        (np.array([0.0, 1.0, -1.0, 0.0]), (np.array([0, 1, 1, 2]), np.array([2, 0, 0, 1]))),
        shape=(3, 3),
    )
    s = as_structure(A)
    assert s.nnz == 3
    assert np.array_equal(dense(s), np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], bool))


def _work_by_gather(g) -> int:
    """Neighbour visits of one sweep, entry by entry: Σ_v Σ_{i ∈ A[v]} |B[i]|."""
    b_len = np.diff(g.b_ptr).astype(np.int64)
    return int(b_len[g.a_idx].sum()) if g.n else 0


@given(P=patterns)
def test_bipartite_is_the_csc_and_csr_arrays_and_its_work_the_sum_of_squares(P):
    from sparsediff.coloring.graphs import bipartite, two_hop

    s = as_structure(P)
    g = bipartite(s)
    t = s.transpose()  # the arrays bipartite used to build its graph from
    old = two_hop(s.shape[1], t.indptr, t.indices, s.indptr, s.indices)
    for name in ("a_ptr", "a_idx", "b_ptr", "b_idx"):
        got, want = getattr(g, name), getattr(old, name)
        assert got.dtype == want.dtype == np.int32 and np.array_equal(got, want), name
    assert g.transposed and not old.transposed
    assert g.work() == old.work() == _work_by_gather(g)


@given(P=st.integers(0, 12).flatmap(lambda n: hnp.arrays(np.bool_, (n, n))))
def test_work_of_the_symmetric_graphs(P):
    from sparsediff.coloring.graphs import adjacency_two_hop, closed_two_hop

    s = as_structure(P)
    closed = closed_two_hop(symmetric_adjacency(s, diagonal=True))
    assert closed.transposed and closed.work() == _work_by_gather(closed)
    adjacency = adjacency_two_hop(symmetric_adjacency(s))
    assert not adjacency.transposed and adjacency.work() == _work_by_gather(adjacency)
