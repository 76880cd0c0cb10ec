"""The validity checkers: agree with brute force, and name the offending pair."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsediff.coloring import Coloring, check_coloring, is_valid_coloring
from tests.coloring.patterns import (
    bratu2d,
    bratu_optimal_coloring,
    brute_column_valid,
    brute_star_valid,
    brute_symmetric_recovery,
)


@st.composite
def pattern_and_colors(draw, square=False):
    m = draw(st.integers(0, 10))
    n = m if square else draw(st.integers(0, 10))
    P = draw(hnp.arrays(np.bool_, (m, n), elements=st.booleans()))
    size = n
    k = draw(st.integers(1, 4))
    colors = draw(hnp.arrays(np.int64, (size,), elements=st.integers(0, k - 1)))
    return P, colors


@settings(max_examples=150, deadline=None)
@given(pattern_and_colors())
def test_column_and_row_checkers_match_brute_force(case):
    P, colors = case
    assert is_valid_coloring(P, colors, kind="column") == brute_column_valid(P, colors)
    # a row coloring of Pᵀ is a column coloring of P
    assert is_valid_coloring(P.T, colors, kind="row") == brute_column_valid(P, colors)


@settings(max_examples=150, deadline=None)
@given(pattern_and_colors(square=True))
def test_star_checker_matches_brute_force(case):
    P, colors = case
    expected = brute_star_valid(P, colors)
    assert is_valid_coloring(P, colors, kind="star") == expected
    # with a proper coloring, star ⇔ direct symmetric recovery
    assert brute_symmetric_recovery(P, colors) == expected


def test_column_message_names_pair():
    P = np.array([[1, 0, 0, 1], [0, 1, 1, 0]], bool)
    with pytest.raises(ValueError, match=r"columns 0 and 3 share color 0 .* row 0"):
        check_coloring(P, Coloring(np.array([0, 0, 1, 0]), 2, "column"))
    assert is_valid_coloring(P, Coloring(np.array([0, 0, 1, 1]), 2, "column"))


def test_row_message_names_pair():
    P = np.array([[1, 0], [0, 1], [1, 0]], bool)
    with pytest.raises(ValueError, match=r"rows 0 and 2 share color 1 .* column 0"):
        check_coloring(P, Coloring(np.array([1, 0, 1]), 2, "row"))


def test_star_messages():
    path = sp.csr_array(sp.diags([1, 1, 1], [-1, 0, 1], shape=(4, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"adjacent vertices 1 and 2 share color 1"):
        check_coloring(path, Coloring(np.array([0, 1, 1, 0]), 2, "star"))
    with pytest.raises(ValueError, match=r"path 0 - 1 - 2 - 3 uses only colors 0 and 1"):
        check_coloring(path, Coloring(np.array([0, 1, 0, 1]), 2, "star"))
    check_coloring(path, Coloring(np.array([0, 1, 0, 2]), 3, "star"))


def test_bratu_optimal_is_valid_for_column_and_star():
    P = bratu2d(9, 7)
    c = bratu_optimal_coloring(9, 7)
    check_coloring(P, c, kind="column")
    check_coloring(P, c, kind="row")
    check_coloring(P, c, kind="star")  # distance-2 colorings are star colorings


def test_checker_argument_errors():
    P = np.eye(3)
    with pytest.raises(ValueError, match="one color per column"):
        check_coloring(P, np.zeros(2, dtype=int), kind="column")
    with pytest.raises(ValueError, match="one color per row"):
        check_coloring(np.ones((2, 3)), np.zeros(3, dtype=int), kind="row")
    with pytest.raises(ValueError, match="negative"):
        check_coloring(P, np.array([0, -1, 0]), kind="column")
    with pytest.raises(ValueError, match="integers"):
        check_coloring(P, np.array([0.0, 1.0, 0.0]), kind="column")
    with pytest.raises(TypeError, match="kind"):
        check_coloring(P, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="unknown coloring kind"):
        check_coloring(P, np.zeros(3, dtype=int), kind="diagonal")
    with pytest.raises(ValueError, match="square"):
        check_coloring(np.ones((2, 3)), np.zeros(3, dtype=int), kind="star")
    with pytest.raises(ValueError, match="kind 'row' given"):
        check_coloring(P, Coloring(np.zeros(3, dtype=int), 1, "column"), kind="row")


def test_empty_checks():
    for shape in [(0, 0), (0, 3), (3, 0)]:
        P = np.zeros(shape)
        check_coloring(P, np.zeros(shape[1], dtype=int), kind="column")
        check_coloring(P, np.zeros(shape[0], dtype=int), kind="row")
    check_coloring(np.zeros((0, 0)), np.zeros(0, dtype=int), kind="star")
