"""``gather_rows`` and ``union`` (SciPy's compiled CSR indexing and merge) against dense
NumPy: canonical output, negative rows empty, any number of patterns."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff.sparsity import pattern as pat

dense = hnp.arrays(
    np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.booleans()
)


def _canonical(p) -> bool:
    q = p.copy()
    q.has_canonical_format = False
    q.sum_duplicates()
    return np.array_equal(q.indices, p.indices) and np.array_equal(q.indptr, p.indptr)


@settings(max_examples=60, deadline=None)
@given(D=dense, data=st.data())
def test_gather_rows_is_dense_row_selection(D, data):
    m = D.shape[0]
    rows = np.array(data.draw(st.lists(st.integers(-1, m - 1), max_size=12)), dtype=np.int64)
    out = pat.gather_rows(sp.csr_array(D), rows)
    want = np.zeros((rows.size, D.shape[1]), dtype=bool)
    want[rows >= 0] = D[rows[rows >= 0]]
    assert out.shape == want.shape and out.dtype == bool
    assert np.array_equal(out.toarray(), want) and _canonical(out)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    k=st.integers(1, 5),
    data=st.data(),
)
def test_union_is_dense_or(shape, k, data):
    blocks = [data.draw(hnp.arrays(np.bool_, shape, elements=st.booleans())) for _ in range(k)]
    patterns = [sp.csr_array(b) if b.any() else None for b in blocks]
    out = pat.union(patterns)
    want = np.logical_or.reduce(blocks)
    if out is None:
        assert not want.any()
    else:
        assert out.dtype == bool and np.array_equal(out.toarray(), want) and _canonical(out)


def test_union_of_the_same_pattern_twice_is_that_pattern():
    p = sp.csr_array(np.eye(4, dtype=bool))
    assert pat.union([p, p, None]) is p


def test_gather_rows_in_place_is_the_pattern_itself():
    """Rows 0 … m-1 (a reshape, a full slice) copy nothing; any other order is gathered, also
    when it differs from 0 … m-1 only past the first block the check compares."""
    m = 70_000
    p = pat.identity(m)
    assert pat.gather_rows(p, np.arange(m)) is p
    rows = np.arange(m)
    rows[[66_000, 66_001]] = rows[[66_001, 66_000]]
    out = pat.gather_rows(p, rows)
    assert out is not p and _canonical(out)
    assert np.array_equal(out.indices, rows) and out.nnz == m
