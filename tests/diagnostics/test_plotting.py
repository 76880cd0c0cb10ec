"""sd.plot_sparsity: the pattern drawn, each color group in its own color."""

import numpy as np
import pytest
import scipy.sparse as sp

import sparsediff as sd

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


def _tridiagonal(n):
    return sp.csr_array(sp.diags([1, 1, 1], [-1, 0, 1], shape=(n, n), dtype=bool))


def _points(ax):
    (collection,) = ax.collections
    return collection.get_offsets(), collection.get_facecolors()


def test_pattern_only():
    P = _tridiagonal(10)
    ax = sd.plot_sparsity(P)
    offsets, _ = _points(ax)
    assert len(offsets) == P.nnz
    assert "nnz = 28" in ax.get_title()
    plt.close(ax.figure)


def test_column_coloring_groups_get_their_own_colors():
    P = _tridiagonal(12)
    c = sd.color(P, kind="column")
    fig, ax = plt.subplots()
    assert sd.plot_sparsity(P, c, ax=ax) is ax
    offsets, faces = _points(ax)
    cols = np.asarray(offsets)[:, 0].astype(int)
    # same color group ⇔ same face color
    by_group = {}
    for col, face in zip(cols, map(tuple, faces), strict=True):
        by_group.setdefault(int(c.colors[col]), set()).add(face)
    assert len(by_group) == c.n_colors == 3
    assert all(len(v) == 1 for v in by_group.values())
    assert len(set().union(*by_group.values())) == c.n_colors
    assert f"{c.n_colors} colors" in ax.get_title()
    plt.close(fig)


def test_row_coloring_dense_array_and_plan():
    P = np.zeros((4, 6), dtype=bool)
    P[0, :] = True
    P[1:, 0] = True
    c = sd.color(sp.csr_array(P), kind="row")
    ax = sd.plot_sparsity(P, c)
    assert "(row)" in ax.get_title()
    plt.close(ax.figure)

    from sparsediff.problems import bratu2d

    p = bratu2d(4)
    plan = sd.jacobian_plan(p.expression, p.x)
    ax = sd.plot_sparsity(plan)
    offsets, _ = _points(ax)
    assert len(offsets) == plan.nnz and f"{plan.n_colors} colors" in ax.get_title()
    plt.close(ax.figure)


class _Fake:
    colors = np.zeros(3, dtype=int)
    kind = "column"


def test_bad_coloring_length():
    with pytest.raises(ValueError, match="column coloring needs 5"):
        sd.plot_sparsity(_tridiagonal(5), _Fake())
