"""The public API: every exported name exists, and what users catch is exported (#12)."""

from __future__ import annotations

import numpy as np
import pytest

import sparsediff as sd


def test_every_public_name_exists():
    for name in sd.__all__:
        assert getattr(sd, name) is not None, name
    assert sorted(sd.__all__) == sorted(set(sd.__all__))


def test_errors_users_catch_are_exported():
    assert issubclass(sd.ColoringError, ValueError)
    assert issubclass(sd.CheckFailed, AssertionError)
    P = np.array([[1, 1], [0, 1]])
    with pytest.raises(sd.ColoringError, match="invalid column coloring"):
        sd.coloring.check_coloring(P, np.array([0, 0]), kind="column")
    with pytest.raises(sd.ColoringError, match="one color per column"):
        sd.coloring.check_coloring(P, np.array([0, 1, 2]), kind="column")
    with pytest.raises(sd.ColoringError, match="non-negative"):
        sd.coloring.check_coloring(P, np.array([0, -1]), kind="column")
