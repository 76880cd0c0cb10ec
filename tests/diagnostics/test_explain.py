"""sd.explain_sparsity: the chain of Ops through which output i came to depend on input j."""

import numpy as np
import pytensor.tensor as pt
import pytest

import sparsediff as sd


def _model(n):
    x = pt.vector("x", shape=(n,))
    xp = pt.concatenate([[0.0], x, [0.0]])
    xp.name = "xp"
    lap = xp[:-2] - 2 * x + xp[2:]
    lap.name = "lap"
    mean = x.mean()  # the line that makes the Jacobian dense
    mean.name = "mean"
    F = lap - 0.1 * (pt.exp(x) - mean)
    F.name = "F"
    return x, F


def test_entry_path_and_culprit():
    x, F = _model(10)
    report = sd.explain_sparsity(F, x, (5, 0))
    assert report.connected and (report.row, report.column) == (5, 0)
    # From the output F[5] down to x[0].
    assert report.path[0].label == "F" and report.path[0].element == 5
    assert report.path[-1].label == "x" and report.path[-1].element == 0
    culprit = report.culprit
    assert culprit is not None and "Sum" in culprit.op
    assert culprit.depends_on == 10
    assert culprit.source is not None and "test_explain.py" in culprit.source
    text = str(report)
    assert "F[5] ← x[0]" in text and "coupling introduced here" in text
    assert "test_explain.py" in text


def test_local_coupling_is_the_stencil():
    x, F = _model(10)
    # Without the mean, F[5] depends on x[6] through the Laplacian's Add.
    report = sd.explain_sparsity(F.owner.inputs[0], x, (5, 6))
    assert report.culprit is not None and report.culprit.label == "lap"
    assert report.culprit.depends_on == 3
    assert report.culprit.fan_out == 3


def test_entry_not_in_pattern():
    n = 8
    x = pt.vector("x", shape=(n,))
    report = sd.explain_sparsity(pt.exp(x), x, (2, 5))
    assert not report.connected and report.path == []
    assert "not in the pattern" in str(report)


def test_densest_rows_and_columns():
    n = 8
    x = pt.vector("x", shape=(n,))
    F = pt.set_subtensor((x**2)[0], x.sum())  # row 0 is dense
    F.name = "F"
    report = sd.explain_sparsity(F, x, top=3)
    assert report.densest_rows[0] == (0, n)
    assert len(report.densest_rows) == 3 and len(report.densest_columns) == 3
    assert report.row == 0 and report.column == n - 1  # farthest from the diagonal
    assert report.culprit is not None and "Sum" in report.culprit.op
    assert "densest rows" in str(report)


def test_matrix_shapes_and_tuple_indices():
    x = pt.matrix("x", shape=(3, 4))
    A = pt.as_tensor(np.ones((4, 4)))
    G = pt.dot(x, A)
    G.name = "G"
    report = sd.explain_sparsity(G, x, ((1, 2), (1, 0)))
    assert report.row == 6 and report.column == 4 and report.connected
    assert "Dot" in report.culprit.op
    with pytest.raises(IndexError):
        sd.explain_sparsity(G, x, (12, 0))


def test_no_dependence():
    x = pt.vector("x", shape=(4,))
    report = sd.explain_sparsity(pt.floor(x), x)
    assert report.nnz == 0 and report.row is None
    assert "nothing to explain" in str(report)
