"""The validity check of ``forward_positions``/``reverse_positions``: by groups (one bit per
color and row, resp. column) when the layout stores them contiguously and there are at most 64
colors, by the key table otherwise; both must find a conflict exactly when there is one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff.coloring.validity import ColoringError
from sparsediff.decompression import forward_positions, layout, reverse_positions
from sparsediff.decompression import positions as pos_module


def _conflicts(D: np.ndarray, colors: np.ndarray, by_rows: bool) -> bool:
    """Whether some row (column) has two nonzeros whose columns (rows) share a color."""
    D = D if by_rows else D.T
    for line in D:
        c = colors[np.flatnonzero(line)]
        if np.unique(c).size < c.size:
            return True
    return False


cases = st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([3, 12, 70])).flatmap(
    lambda t: st.tuples(
        hnp.arrays(np.bool_, (t[0], t[1])),
        hnp.arrays(np.int64, t[1], elements=st.integers(0, t[2] - 1)),
        hnp.arrays(np.int64, t[0], elements=st.integers(0, t[2] - 1)),
    )
)


@settings(max_examples=150, deadline=None)
@given(case=cases, fmt=st.sampled_from(["csr", "csc"]))
def test_a_conflict_is_found_exactly_when_there_is_one(case, fmt):
    D, col_colors, row_colors = case
    lay = layout(sp.csr_array(D), fmt)
    for by_rows, positions, colors in (
        (True, forward_positions, col_colors),
        (False, reverse_positions, row_colors),
    ):
        if _conflicts(D, colors, by_rows):
            with pytest.raises(ColoringError, match="invalid"):
                positions(lay, colors)
        else:
            p = positions(lay, colors)
            size = lay.shape[0] if by_rows else lay.shape[1]
            expected = (
                colors[lay.cols] * size + lay.rows
                if by_rows
                else colors[lay.rows] * size + lay.cols
            )
            assert np.array_equal(p, expected)


@settings(max_examples=100, deadline=None)
@given(case=cases)
def test_the_group_check_names_a_conflicting_entry(case):
    D, colors, _ = case
    lay = layout(sp.csr_array(D), "csr")
    if not colors.size or colors.max() >= 64:
        return
    bad = pos_module._group_conflict(lay.indptr, lay.cols, colors)
    assert (bad is not None) == _conflicts(D, colors, True)
    if bad is not None:
        i, j = lay.rows[bad], lay.cols[bad]
        row = np.flatnonzero(D[i])
        assert D[i, j] and np.count_nonzero(colors[row] == colors[j]) >= 2


def test_the_group_check_on_a_row_layout_uses_no_key_table(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the key table ran")

    D = np.eye(6, dtype=bool) | np.eye(6, k=1, dtype=bool)
    lay = layout(sp.csr_array(D), "csr")
    colors = np.arange(6) % 2
    table = pos_module._first_conflict
    monkeypatch.setattr(pos_module, "_first_conflict", fail)
    forward_positions(lay, colors)  # valid: no table needed
    monkeypatch.setattr(pos_module, "_first_conflict", table)
    with pytest.raises(ColoringError, match="row 0 has two nonzero columns of color 0"):
        forward_positions(lay, np.array([0, 0, 1, 0, 1, 0]))


def test_popcount_without_bitwise_count(monkeypatch):
    x = np.array([0, 1, 0xFF, 0x8001, 2**63 + 5], dtype=np.uint64)
    want = [0, 1, 8, 2, 3]
    assert pos_module._popcount(x).tolist() == want
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert pos_module._popcount(x).tolist() == want
    assert pos_module._popcount(np.array([3, 7], dtype=np.uint8)).tolist() == [2, 3]
