"""The INLA step (sparsediff.optimize.laplace): sparse value and dL/dτ against the dense PyTensor
path, against central differences, and the `python -m sparsediff demo laplace` command."""

import numpy as np
import pytest

from sparsediff.__main__ import main
from sparsediff.optimize.laplace import dense_laplace, icar_poisson, sparse_laplace

from .problems import MODE


def test_sparse_laplace_matches_dense_path_and_finite_differences():
    problem = icar_poisson(5)
    sparse = sparse_laplace(problem, mode=MODE)
    dense = dense_laplace(problem, mode=MODE)
    x0 = np.zeros(problem.n)
    L, dL, ok, nit = sparse(x0, 1.7)
    Ld, dLd, okd = dense(x0, 1.7)
    assert ok and okd and nit >= 2
    np.testing.assert_allclose(L, Ld, rtol=1e-8)
    np.testing.assert_allclose(dL, dLd, rtol=1e-5)  # L-BFGS-B's x* is the less exact one
    h = 1e-5
    fd = (sparse(x0, 1.7 + h)[0] - sparse(x0, 1.7 - h)[0]) / (2 * h)
    np.testing.assert_allclose(dL, fd, rtol=1e-6)


def test_demo_laplace_command(capsys):
    status = main(["demo", "laplace", "--size", "6", "--dense-size", "0", "--backend", MODE])
    out = capsys.readouterr().out
    assert status == 0
    assert "n = 36" in out and "dL/dτ" in out and "central difference" in out


def test_demo_laplace_rejects_tiny_size():
    with pytest.raises(SystemExit):
        main(["demo", "laplace", "--size", "1"])
