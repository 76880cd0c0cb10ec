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
