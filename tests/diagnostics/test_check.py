"""sd.check_jacobian / sd.check_hessian: the pattern holds every nonzero, the values agree."""

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.sparse as sp

import sparsediff as sd
from sparsediff.diagnostics.check import CheckFailed


def _stencil(n):
    x = pt.vector("x", shape=(n,))
    xp = pt.concatenate([[0.0], x, [0.0]])
    return x, xp[:-2] - 2 * x + xp[2:] - (pt.exp(x) + x**3)


@pytest.mark.parametrize("reference", ["dense", "probes"])
def test_correct_jacobian_passes(reference):
    x, F = _stencil(12)
    report = sd.check_jacobian(F, x, reference=reference)
    assert report.ok and bool(report)
    assert report.reference == reference
    assert report.n_points == 2
    assert report.missing == []
    assert report.max_abs_error < 1e-10
    text = str(report)
    assert "OK" in text and "12×12" in text and "max abs error" in text


def test_auto_uses_dense_for_small_and_probes_for_large():
    x, F = _stencil(12)
    assert sd.check_jacobian(F, x).reference == "dense"
    report = sd.check_jacobian(F, x, dense_max_size=5, n_points=1, n_probes=2)
    assert report.reference == "probes" and report.n_probes == 2 and report.ok
    assert "random probes" in str(report)


def test_finite_differences():
    x, F = _stencil(8)
    report = sd.check_jacobian(F, x, reference="fd", rtol=1e-4, atol=1e-6, n_points=1)
    assert report.ok, report
    assert report.max_rel_error < 1e-4


def test_missing_entries_are_reported():
    n = 10
    x, F = _stencil(n)
    # A wrong, too small pattern given by the user: only the diagonal.
    report = sd.check_jacobian(F, x, sparsity=sp.eye(n, format="csr"))
    assert not report.ok
    assert report.n_missing == 2 * (n - 1)
    assert (0, 1) in report.missing and (1, 0) in report.missing
    assert "MISSING" in str(report)
    with pytest.raises(CheckFailed, match="MISSING") as info:
        sd.check_jacobian(F, x, sparsity=sp.eye(n, format="csr"), raise_on_failure=True)
    assert info.value.report.n_missing == 2 * (n - 1)


def test_probes_detect_a_missing_entry():
    n = 10
    x, F = _stencil(n)
    report = sd.check_jacobian(F, x, sparsity=sp.eye(n, format="csr"), reference="probes")
    assert not report.ok
    assert report.max_abs_error > 1e-3


def test_points_and_parameters():
    n = 6
    x = pt.vector("x", shape=(n,))
    a = pt.scalar("a")
    F = a * x**2 + x[::-1]
    point = {x: np.arange(n, dtype=float), a: 2.0}
    report = sd.check_jacobian(F, x, point)
    assert report.ok and report.n_points == 1
    report = sd.check_jacobian(F, x, [np.ones(n), np.zeros(n)])
    assert report.ok and report.n_points == 2
    with pytest.raises(ValueError, match="not in the graph"):
        sd.check_jacobian(F, x, {pt.scalar("b"): 1.0})


def test_integer_parameter_needs_a_value():
    n = 5
    x = pt.vector("x", shape=(n,))
    k = pt.scalar("k", dtype="int64")
    F = x * k
    with pytest.raises(ValueError, match="int64 input"):
        sd.check_jacobian(F, x)
    assert sd.check_jacobian(F, x, {k: 3}).ok


def test_list_wrt():
    x = pt.vector("x", shape=(4,))
    y = pt.vector("y", shape=(4,))
    F = x * y + pt.roll(x, 1)
    report = sd.check_jacobian(F, [x, y])
    assert report.ok and report.shape == (4, 8)
    report = sd.check_jacobian(F, [x, y], reference="probes", n_points=1)
    assert report.ok


def test_nonfinite_reference_entries_are_skipped():
    n = 6
    x, F = _stencil(n)
    point = np.linspace(0.5, 1.5, n)
    point[2] = np.nan
    report = sd.check_jacobian(F, x, point)
    # The dense reference spreads the NaN over a whole column (0 * NaN in its VJPs); the
    # entries that are finite there agree, and nothing is reported missing.
    assert report.ok, report
    assert report.n_missing == 0 and report.n_nonfinite > 0
    assert "non-finite" in str(report)


@pytest.mark.parametrize("reference", ["dense", "probes"])
def test_check_hessian(reference):
    n = 8
    x = pt.vector("x", shape=(n,))
    cost = ((x[1:] - x[:-1] ** 2) ** 2).sum() + (x**4).sum()
    report = sd.check_hessian(cost, x, reference=reference, n_points=1)
    assert report.ok, report
    assert report.kind == "hessian" and report.shape == (n, n)
    assert "Hessian" in str(report)


@pytest.mark.parametrize("reference", ["dense", "probes"])
def test_check_hessian_list_wrt(reference):
    """A list wrt, like check_jacobian: the diagonal blocks, checked as one block diagonal."""
    x = pt.vector("x", shape=(5,))
    y = pt.matrix("y", shape=(2, 3))
    cost = ((x[1:] - x[:-1] ** 2) ** 2).sum() + (pt.exp(y) * y).sum() + (x[:2] * y[:, 0]).sum()
    report = sd.check_hessian(cost, [x, y], reference=reference, n_points=1)
    assert report.ok, report
    assert report.shape == (11, 11) and report.nnz == 5 + 8 + 6
    assert "diagonal blocks" in str(report)
    point = {x: np.linspace(0.5, 1.0, 5), y: np.ones((2, 3))}
    assert sd.check_hessian(cost, [x, y], point, reference=reference).ok


def test_check_hessian_list_wrt_finds_a_missing_nonzero():
    x = pt.vector("x", shape=(4,))
    y = pt.vector("y", shape=(3,))
    cost = (x**3).sum() + (y[1:] * y[:-1]).sum()
    wrong = [sp.eye(4, dtype=bool, format="csr"), sp.eye(3, dtype=bool, format="csr")]
    report = sd.check_hessian(cost, [x, y], sparsity=wrong, dense=True, reference="dense")
    assert not report.ok
    assert (4, 5) in report.missing and (5, 4) in report.missing  # y's block, offset by 4


def test_check_hessian_of_a_matrix_wrt():
    """Regression: the dense reference used pytensor.gradient.hessian, which refuses matrices."""
    y = pt.matrix("y", shape=(3, 2))
    cost = (pt.exp(y[1:] * y[:-1])).sum()
    report = sd.check_hessian(cost, y, reference="dense", n_points=1)
    assert report.ok, report
